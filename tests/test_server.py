"""The audience server over real loopback sockets: pages, images, the WebSocket, and abuse."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from engine.config import AudienceConfig, ServerConfig
from engine.net.audience import Audience
from engine.net.http import CSP
from engine.net.server import AudienceServer
from tests.fakes import direct_ledger


@pytest.fixture
def web(tmp_path: Path) -> Path:
    root = tmp_path / "web"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>phone</title>")
    (root / "app.js").write_text("console.log('hi')")
    (tmp_path / "secret.txt").write_text("the API key")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    return root


@asynccontextmanager
async def running(web: Path, **server: Any) -> AsyncIterator[AudienceServer]:
    cfg = ServerConfig(host="127.0.0.1", port=0, **server)
    images = {"img-1": (b"\x89PNG fake", "image/png")}
    servers: list[AudienceServer] = []
    ledger = direct_ledger(Audience(AudienceConfig(cooldown=15.0, burst=2)), lambda out: servers[0].deliver(out))
    srv = AudienceServer(cfg, AudienceConfig(cooldown=15.0, burst=2), ledger,
                         images=images.get, web_root=web)
    servers.append(srv)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def run(web: Path, scenario: Callable[[AudienceServer], Awaitable[None]], **server: Any) -> None:
    async def main() -> None:
        async with running(web, **server) as srv:
            await scenario(srv)
    asyncio.run(main())


async def get(srv: AudienceServer, path: str) -> tuple[int, dict[str, str], bytes]:
    def fetch() -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(f"http://127.0.0.1:{srv.port}{path}")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            body = e.read()
            headers = dict(e.headers)
            e.close()
            return e.code, headers, body
    return await asyncio.to_thread(fetch)


async def raw_get(srv: AudienceServer, raw_path: str) -> int:
    """A request line sent as is (urllib would normalise the dots away)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(f"GET {raw_path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(line.split()[1])


@asynccontextmanager
async def phone(srv: AudienceServer, client: str = "phone-123456", local: str = "127.0.0.1"
                ) -> AsyncIterator[tuple[ClientConnection, dict[str, Any]]]:
    async with connect(f"ws://127.0.0.1:{srv.port}/ws?client={client}", local_addr=(local, 0)) as ws:
        welcome = json.loads(await ws.recv())
        yield ws, welcome


async def ask(ws: ClientConnection, message: str | bytes) -> dict[str, Any]:
    await ws.send(message)
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def still_served(srv: AudienceServer, local: str = "127.0.0.9") -> None:
    """A well-behaved phone (from another address) can connect and send a prompt."""
    async with phone(srv, "good-phone-1", local) as (ws, welcome):
        assert welcome["type"] == "welcome"
        reply = await ask(ws, json.dumps({"type": "prompt", "text": "a calm lake at dawn"}))
        assert reply["state"] == "queued"


def test_page_is_served_with_security_headers(web: Path) -> None:
    """/ is the phone page, with a strict CSP and no-sniff."""
    async def scenario(srv: AudienceServer) -> None:
        status, headers, body = await get(srv, "/")
        assert status == 200 and b"phone" in body
        assert headers["Content-Security-Policy"] == CSP and headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Content-Type"].startswith("text/html")
    run(web, scenario)


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/link.txt",
                                  "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "//etc/passwd", "/images/../../secret.txt",
                                  "/images/%2e%2e%2fsecret.png", "/web/index.html", "/app.js/..", "/.."])
def test_nothing_outside_web_and_images_is_readable(web: Path, path: str) -> None:
    """Traversal, encoded dots and symlinks all end in 404 (or 400)."""
    async def scenario(srv: AudienceServer) -> None:
        assert await raw_get(srv, path) in (400, 404)
    run(web, scenario)


def test_images_by_id_only(web: Path) -> None:
    """/images/<id>.png comes from the journal lookup; unknown ids are 404."""
    async def scenario(srv: AudienceServer) -> None:
        status, headers, body = await get(srv, "/images/img-1.png")
        assert (status, body, headers["Content-Type"]) == (200, b"\x89PNG fake", "image/png")
        assert (await get(srv, "/images/nope.png"))[0] == 404
    run(web, scenario)


def test_welcome_then_prompt_is_queued(web: Path) -> None:
    """The server speaks first; a prompt gets a queued status with id and ref."""
    async def scenario(srv: AudienceServer) -> None:
        async with phone(srv) as (ws, welcome):
            assert welcome["client_id"] == "phone-123456" and welcome["max_length"] == 200
            reply = await ask(ws, json.dumps({"type": "prompt", "text": "a neon whale", "ref": "r1"}))
            assert reply["type"] == "status" and reply["state"] == "queued" and reply["ref"] == "r1"
            assert reply["id"].startswith("p-") and reply["position"] == 1
    run(web, scenario)


def test_status_comes_back_after_reconnect(web: Path) -> None:
    """Reconnecting with the same client id lists that phone's prompts in welcome."""
    async def scenario(srv: AudienceServer) -> None:
        async with phone(srv) as (ws, _):
            sent = await ask(ws, json.dumps({"type": "prompt", "text": "a neon whale"}))
        async with phone(srv) as (_, welcome):
            assert [p["id"] for p in welcome["prompts"]] == [sent["id"]]
    run(web, scenario)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"), (b"\x00binary", "binary_not_allowed"), ('{"type": "dance"}', "unknown_type"),
        ('{"type": "prompt"}', "missing_field"), ('{"type": "prompt", "text": ["x"]}', "wrong_type"),
        ('{"type": "prompt", "text": "' + "long " * 100 + '"}', "too_long"),
    ],
)
def test_malformed_messages_get_errors_and_the_connection_stays(web: Path, frame: str | bytes, code: str) -> None:
    """Each malformed message gets its error code; the same connection then works."""
    async def scenario(srv: AudienceServer) -> None:
        async with phone(srv) as (ws, _):
            error = await ask(ws, frame)
            assert error["type"] == "error" and error["code"] == code and error["message"]
            reply = await ask(ws, json.dumps({"type": "prompt", "text": "after the error"}))
            assert reply["state"] == "queued"
        await still_served(srv)
    run(web, scenario)


def test_one_megabyte_message_closes_only_that_connection(web: Path) -> None:
    """A frame over max_message_bytes closes that socket (1009); others are served."""
    async def scenario(srv: AudienceServer) -> None:
        async with phone(srv) as (ws, _):
            await ws.send("x" * 1_000_000)
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        await still_served(srv)
    run(web, scenario)


def test_burst_of_100_prompts_is_rate_limited_not_lost(web: Path) -> None:
    """100 prompts at once: the burst is accepted, the rest rejected with retry_after; nothing else breaks."""
    async def scenario(srv: AudienceServer) -> None:
        async with phone(srv) as (ws, _):
            for i in range(100):
                await ws.send(json.dumps({"type": "prompt", "text": f"idea number {i} " + "abcdefghij"[i % 10] * 3}))
            replies = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(100)]
            accepted = {r["id"] for r in replies if r["state"] == "queued"}
            rejected = [r for r in replies if r["state"] == "rejected"]
            assert len(accepted) == 2 and len(rejected) == 98  # the burst of 2, then the cooldown
            assert all(r["retry_after"] > 0 for r in rejected)
            assert set(srv.intake.audience.positions()) == accepted  # every accepted prompt is still in line
        await still_served(srv)
    run(web, scenario, messages_burst=100, messages_burst_per_ip=200)  # the audience's limits, not the frames'


def test_abusive_client_is_disconnected(web: Path) -> None:
    """More than max_errors bad messages in 10 s closes the connection with 1008."""
    async def scenario(srv: AudienceServer) -> None:
        async with phone(srv) as (ws, _):
            with pytest.raises(ConnectionClosed) as info:
                for _ in range(50):
                    await ws.send("junk")
                    await asyncio.wait_for(ws.recv(), 5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        await still_served(srv)
    run(web, scenario, max_errors=5)


def test_500_connections_from_one_address_are_capped(web: Path) -> None:
    """One address gets max_connections_per_ip sockets; the rest are refused with 429."""
    async def scenario(srv: AudienceServer) -> None:
        async def try_one() -> ClientConnection | int:
            try:
                return await connect(f"ws://127.0.0.1:{srv.port}/ws", local_addr=("127.0.0.5", 0))
            except InvalidStatus as err:
                return err.response.status_code
        results = await asyncio.gather(*(try_one() for _ in range(500)))
        opened = [r for r in results if not isinstance(r, int)]
        assert len(opened) == 16 and set(r for r in results if isinstance(r, int)) == {429}
        await still_served(srv)
        for ws in opened:
            await ws.close()
    run(web, scenario, max_connections_per_ip=16, max_handshakes_per_ip=500)  # all 500 may be opening at once


def test_idle_phone_is_dropped(web: Path) -> None:
    """A phone that says nothing for idle_timeout is closed."""
    async def scenario(srv: AudienceServer) -> None:
        srv.cfg = ServerConfig(host="127.0.0.1", port=0, idle_timeout=1.0)
        async with phone(srv) as (ws, _):
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
    run(web, scenario)


@pytest.mark.parametrize("disguised", ["B4DW0RD at night", "a b.a.d.w.o.r.d party", "bádwörd", "ｂａｄｗｏｒｄ"])
def test_blocklisted_word_in_disguise_is_refused_over_the_socket(web: Path, disguised: str) -> None:
    """Leetspeak, punctuation, accents and full-width forms are seen through; the reason is polite."""
    from engine.net.moderation import Moderator

    async def scenario(srv: AudienceServer) -> None:
        srv.intake.audience.moderator = Moderator(["badword"])
        async with phone(srv) as (ws, _):
            reply = await ask(ws, json.dumps({"type": "prompt", "text": disguised}))
            assert reply["state"] == "rejected" and "badword" not in reply["reason"].lower()
            assert srv.intake.audience.queued_count == 0
        await still_served(srv)
    run(web, scenario)


def test_open_file_limit_is_lifted_for_a_crowd() -> None:
    """Linux's default of 1,024 open files would cap the show near a thousand phones."""
    import resource

    from engine.net.server import raise_open_files

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, soft), hard))
        wanted = 12256 if hard == resource.RLIM_INFINITY else min(12256, hard)
        assert raise_open_files(wanted) == wanted
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= wanted
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_flooding_phones_are_closed_while_a_quiet_phone_is_still_answered(web: Path) -> None:
    """Four phones sending pings as fast as they can are closed with 1008; another phone's pings get pongs."""
    async def flood(srv: AudienceServer, n: int) -> int | None:
        async with phone(srv, f"flood-phone-{n}", f"127.0.0.{20 + n}") as (ws, _):
            try:
                for _ in range(1000):  # as fast as the socket takes them: 50 times the burst
                    await ws.send('{"type": "ping"}')
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd is not None else None

    async def scenario(srv: AudienceServer) -> None:
        async with phone(srv, "quiet-phone-1", "127.0.0.9") as (quiet, _):
            floods = [asyncio.create_task(flood(srv, n)) for n in range(4)]
            answers = [(await ask(quiet, '{"type": "ping"}'))["type"] for _ in range(5)]
            assert await asyncio.gather(*floods) == [1008] * 4
            answers += [(await ask(quiet, '{"type": "ping"}'))["type"] for _ in range(5)]
            assert answers == ["pong"] * 10
    run(web, scenario)


def test_one_address_shares_one_message_allowance_across_its_connections(web: Path) -> None:
    """Three connections, each within its own limit, together past their address's: the rest are told too_fast."""
    async def scenario(srv: AudienceServer) -> None:
        async with phone(srv, "shared-phone-1", "127.0.0.6") as (a, _), \
                phone(srv, "shared-phone-2", "127.0.0.6") as (b, _), \
                phone(srv, "shared-phone-3", "127.0.0.6") as (c, _):
            replies = [await ask(ws, '{"type": "ping"}') for _ in range(4) for ws in (a, b, c)]
            assert [r["type"] for r in replies[:6]] == ["pong"] * 6
            assert {(r["type"], r.get("code")) for r in replies[6:]} == {("error", "too_fast")}
        async with phone(srv, "other-phone-1", "127.0.0.7") as (other, _):
            assert (await ask(other, '{"type": "ping"}'))["type"] == "pong"
    run(web, scenario, messages_per_s=100.0, messages_burst=100, messages_per_s_per_ip=0.1, messages_burst_per_ip=6)
