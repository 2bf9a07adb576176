"""The control page over real loopback sockets: the gate, sessions, the socket's conversation, the VJ's operations."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from engine.backstage import Backstage
from engine.commands import Action, Command
from engine.contract import Inbox, ShaderProblem, ShowImage, ShowSnapshot, StateBoard
from engine.net.vj_auth import COOKIE
from engine.store import Journal
from tests.engine_process import free_port
from tests.fakes import make_config, phone_prompt, wait_for

TOKEN = "test-token-0123456789"
ROUTES = ("/vj", "/vj/", "/vj/vj.js", "/vj/vj.css", "/vj/index.html", "/vj/images/p-1-1.png", "/vj/nothing")


def started(journal: Journal, overrides: dict[str, Any] | None = None) -> Backstage:
    cfg = make_config({"server.host": "127.0.0.1", "server.port": free_port(), "generation.backend": "procedural",
                       "generation.width": 128, "generation.height": 128, "vj.token": TOKEN,
                       **(overrides or {})})
    b = Backstage(cfg, Inbox(), StateBoard(), "http://127.0.0.1", journal=journal)
    b.start()
    return b


@pytest.fixture
def bs(journal: Journal) -> Iterator[Backstage]:
    b = started(journal, {"audience.moderation": "approve"})
    yield b
    b.stop()


def base(b: Backstage) -> str:
    return f"http://127.0.0.1:{b.port}"


def http_client(url: str = "") -> httpx.Client:
    """The server answers one HTTP request per connection (it is a WebSocket server first)."""
    return httpx.Client(base_url=url, limits=httpx.Limits(max_keepalive_connections=0))


def session_of(response: httpx.Response) -> str:
    """The session id a login set, after checking the cookie's attributes."""
    assert response.status_code == 303 and response.headers["location"] == "/vj", response.text
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/vj" in cookie
    name, _, value = cookie.split(";")[0].partition("=")
    assert name == COOKIE and value
    return value


def log_in(url: str, secret: str = TOKEN, param: str = "token") -> str:
    """A new session for ``secret`` (the token, or a pairing code as ``code``)."""
    with http_client(url) as client:
        return session_of(client.get("/vj", params={param: secret}, follow_redirects=False))


@contextmanager
def login(b: Backstage, url: str | None = None) -> Iterator[httpx.Client]:
    with http_client(url or base(b)) as client:
        session_of(client.get("/vj", params={"token": TOKEN}, follow_redirects=False))
        yield client


def socket_headers(port: int, session: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={session}", "Origin": f"http://127.0.0.1:{port}"}


@asynccontextmanager
async def page(b: Backstage, port: int | None = None, session: str | None = None) -> AsyncIterator[Page]:
    port = port or b.port or 0
    headers = socket_headers(port, session or await asyncio.to_thread(log_in, f"http://127.0.0.1:{port}"))
    async with connect(f"ws://127.0.0.1:{port}/vj/ws", additional_headers=headers) as ws:
        p = Page(ws)
        await p.until(lambda: "hello" in p.parts and "shaders" in p.parts and "queue" in p.parts)
        yield p


class Page:
    """A scripted control page: keeps the latest of each part, answers by ref."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.parts: dict[str, dict[str, Any]] = {}
        self.replies: dict[str, dict[str, Any]] = {}
        self.binary = 0
        self._n = 0

    async def _read(self, timeout: float) -> None:
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(frame, bytes):
            self.binary += 1
            return
        msg = json.loads(frame)
        if msg["type"] in ("ack", "error", "pong") and msg.get("ref"):
            self.replies[msg["ref"]] = msg
        else:
            self.parts[msg["type"]] = msg

    async def until(self, cond: Callable[[], bool], timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not cond():
            left = deadline - loop.time()
            assert left > 0, f"timed out; parts: {sorted(self.parts)}"
            await self._read(left)

    async def ask(self, **msg: object) -> dict[str, Any]:
        self._n += 1
        ref = f"r{self._n}"
        await self.ws.send(json.dumps({**msg, "ref": ref}))
        await self.until(lambda: ref in self.replies)
        return self.replies[ref]


# --- the gate -------------------------------------------------------------------------------
def test_without_the_token_every_route_refuses_and_leaks_nothing(bs: Backstage, journal: Journal) -> None:
    asyncio.run(phone_prompt(bs.port, "a secret lighthouse"))
    with http_client(base(bs)) as client:
        for route in ROUTES:
            for headers in ({}, {"Cookie": "stagecraft_vj=wrong-token-1"}):
                r = client.get(route, headers=headers)
                assert r.status_code == 401, route
                body = r.text
                assert "lighthouse" not in body and str(journal.folder) not in body and TOKEN not in body
                assert "type=\"password\"" in body  # a login form, nothing else
                assert r.headers["cache-control"] == "no-store"
    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(_open(f"ws://127.0.0.1:{bs.port}/vj/ws"))
    assert refused.value.response.status_code == 401


async def _open(url: str, **kw: Any) -> None:
    async with connect(url, **kw):
        pass


def test_wrong_tokens_are_limited_per_address(bs: Backstage) -> None:
    """Guesses get 429 with Retry-After after a few, while the right token still logs in."""
    with http_client(base(bs)) as client:
        answers = [client.get("/vj", params={"token": f"guess-{i}-xxxxx"}) for i in range(6)]
        assert [r.status_code for r in answers] == [401] * 4 + [429, 429]
        assert int(answers[-1].headers["retry-after"]) > 0
        session_of(client.get("/vj", params={"token": TOKEN}, follow_redirects=False))


def test_the_cookie_holds_a_session_not_the_token(bs: Backstage) -> None:
    """What the browser keeps is a random session id; the token never reaches a cookie."""
    with http_client(base(bs)) as client:
        r = client.get("/vj", params={"token": TOKEN}, follow_redirects=False)
        assert TOKEN not in r.headers["set-cookie"] and len(session_of(r)) >= 43
        assert r.headers["location"] == "/vj"  # the token leaves the address bar too


def test_guessers_behind_the_vjs_address_never_lock_the_vj_out(bs: Backstage) -> None:
    """Fifty wrong guesses from the VJ's own address: the VJ's cookie and a socket reconnect still get in."""
    session = log_in(base(bs))
    with http_client(base(bs)) as client:
        codes = {client.get("/vj", params={"token": f"crowd-guess-{i:03d}"}).status_code for i in range(50)}
        assert codes == {401, 429}
        assert client.get("/vj", headers={"Cookie": f"{COOKIE}={session}"}).status_code == 200

    async def reconnect() -> None:
        async with page(bs, session=session) as p:
            assert (await p.ask(type="ping"))["type"] == "pong"

    asyncio.run(reconnect())
    assert log_in(base(bs)) != session  # and the token still logs in


def test_a_guesser_is_throttled_and_reported_once(bs: Backstage, caplog: pytest.LogCaptureFixture) -> None:
    """Guess after guess from one address: 429s, and one warning on the console, not one per guess."""
    with caplog.at_level(logging.INFO), http_client(base(bs)) as client:
        for i in range(30):
            r = client.get("/vj", params={"code": f"ABCD-{i:04d}"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    warnings = [rec for rec in caplog.records if rec.levelno >= logging.WARNING and "wrong" in rec.getMessage()]
    assert len(warnings) == 1 and "127.0.0.1" in warnings[0].getMessage()


def test_a_pairing_code_logs_in_once(bs: Backstage, caplog: pytest.LogCaptureFixture) -> None:
    """P's code, read off the console, opens the page through /vj?code=; the second use is refused."""
    code = pairing_code(bs, caplog)
    log_in(base(bs), code, "code")
    with http_client(base(bs)) as client:
        again = client.get("/vj", params={"code": code}, follow_redirects=False)
        assert again.status_code == 401 and "set-cookie" not in again.headers


def pairing_code(b: Backstage, caplog: pytest.LogCaptureFixture) -> str:
    """Press P (``Backstage.pair``) and read the code off the console's log."""
    with caplog.at_level(logging.WARNING, logger="engine.backstage.runner"):
        b.pair()
        deadline = time.monotonic() + 5
        while not any("pairing code" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "no pairing code was logged"
            time.sleep(0.01)
    line = next(r.getMessage() for r in caplog.records if "pairing code" in r.getMessage())
    assert b.vj_url in line
    return line.split("pairing code: ")[1].split()[0]


def test_an_ended_session_is_refused(bs: Backstage) -> None:
    """Once its login is revoked, the cookie opens neither the page nor the socket, and the browser forgets it."""
    session = log_in(base(bs))
    assert bs.parts is not None and bs.parts.vj is not None
    bs.call(bs.parts.vj.gate.end_all_sessions)
    with http_client(base(bs)) as client:
        deadline = time.monotonic() + 5
        while (r := client.get("/vj", headers={"Cookie": f"{COOKIE}={session}"})).status_code != 401:
            assert time.monotonic() < deadline
        assert "Max-Age=0" in r.headers["set-cookie"]
    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(_open(f"ws://127.0.0.1:{bs.port}/vj/ws", additional_headers=socket_headers(bs.port or 0, session)))
    assert refused.value.response.status_code == 401


def test_logout_ends_the_session(bs: Backstage) -> None:
    """logout: acknowledged, the socket closes, and the cookie no longer opens anything."""
    session = log_in(base(bs))

    async def go() -> int | None:
        async with page(bs, session=session) as p:
            assert (await p.ask(type="logout"))["type"] == "ack"
            with pytest.raises(ConnectionClosed):
                await p.until(lambda: False)
            return p.ws.close_code

    assert asyncio.run(go()) == 1008
    with http_client(base(bs)) as client:
        assert client.get("/vj", headers={"Cookie": f"{COOKIE}={session}"}).status_code == 401
    kept = log_in(base(bs))
    with http_client(base(bs)) as client:
        assert client.get("/vj", headers={"Cookie": f"{COOKIE}={kept}"}).status_code == 200


def test_logout_everywhere_closes_every_page(bs: Backstage) -> None:
    """logout with everywhere ends every login, and the other open pages are closed too."""
    async def go() -> int | None:
        async with page(bs) as other, page(bs) as mine:
            assert (await mine.ask(type="logout", everywhere=True))["type"] == "ack"
            with pytest.raises(ConnectionClosed):
                await other.until(lambda: False)
            return other.ws.close_code

    assert asyncio.run(go()) == 1008


def test_a_malformed_logout_ends_nothing(bs: Backstage) -> None:
    """logout's everywhere must be a bool; anything else is refused and the page stays logged in."""
    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        async with page(bs) as p:
            return await p.ask(type="logout", everywhere="yes"), await p.ask(type="ping")

    refused, still = asyncio.run(go())
    assert refused["code"] == "bad_message" and still["type"] == "pong"


def test_the_page_cannot_ask_for_a_pairing_code(bs: Backstage) -> None:
    """Pairing codes are made on the show machine's keyboard only."""
    async def go() -> dict[str, Any]:
        async with page(bs) as p:
            return await p.ask(type="command", action="pair")

    assert asyncio.run(go())["code"] == "not_allowed"


def test_login_sets_a_cookie_and_serves_the_page(bs: Backstage) -> None:
    with login(bs) as client:
        r = client.get("/vj")
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert client.get("/vj/vj.js").status_code == 200
        assert client.get("/vj/vj.css").status_code == 200
        assert client.get("/vj/images/nope-1.png").status_code == 404
    with http_client(base(bs)) as public:  # the phone page never lists or serves the control page
        assert public.get("/vj/index.html").status_code == 401
        assert "/vj" not in public.get("/").text


def test_socket_from_a_foreign_origin_is_refused(bs: Backstage) -> None:
    headers = {"Cookie": f"{COOKIE}={log_in(base(bs))}", "Origin": "http://evil.example"}
    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(_open(f"ws://127.0.0.1:{bs.port}/vj/ws", additional_headers=headers))
    assert refused.value.response.status_code == 403


def test_the_audience_socket_cannot_send_vj_commands(bs: Backstage) -> None:
    async def go() -> list[dict[str, Any]]:
        async with connect(f"ws://127.0.0.1:{bs.port}/ws?client=phone-evil0001") as ws:
            await ws.recv()
            out = []
            for msg in ({"type": "command", "action": "blackout"}, {"type": "approve", "id": "p-1"},
                        {"type": "prompt", "text": "x", "as": "vj"}):
                await ws.send(json.dumps(msg))
                out.append(json.loads(await ws.recv()))
            return out

    replies = asyncio.run(go())
    assert [r["type"] for r in replies[:2]] == ["error", "error"]
    with pytest.raises(queue.Empty):
        bs.inbox.commands.get_nowait()


# --- the conversation ----------------------------------------------------------------------
def test_moderation_from_the_page(bs: Backstage, journal: Journal) -> None:
    async def go() -> None:
        first = await phone_prompt(bs.port, "a glass octopus", "phone-aaaaaaa1")
        second = await phone_prompt(bs.port, "burning library", "phone-bbbbbbb1")
        third = await phone_prompt(bs.port, "meadow of clocks", "phone-ccccccc1")
        async with page(bs) as p:
            assert p.parts["hello"]["moderation"] == "approve"
            await p.until(lambda: len(p.parts["queue"]["pending"]) == 3)
            assert [i["text"] for i in p.parts["queue"]["pending"]] == ["a glass octopus", "burning library",
                                                                         "meadow of clocks"]
            assert (await p.ask(type="reject", id=second["id"], reason="not tonight"))["type"] == "ack"
            # The journal is written in the scribe's next round, after the ack.
            await asyncio.to_thread(wait_for, lambda: getattr(journal.prompt(second["id"]), "reason", None)
                                    == "not tonight")
            assert (await p.ask(type="ban", id=third["id"]))["type"] == "ack"
            assert (await p.ask(type="approve", id=first["id"]))["type"] == "ack"
            image = bs.inbox.images.get(timeout=10)
            assert image.caption == "a glass octopus"
            missing = await p.ask(type="approve", id="p-000000000000")
            assert missing["type"] == "error" and missing["code"] == "not_found"
            await p.until(lambda: p.parts["queue"]["pending"] == [])
            banned = await phone_prompt(bs.port, "another one", "phone-ccccccc1")
            assert banned["state"] == "rejected"

    asyncio.run(go())


def test_manual_prompt_skips_the_line_and_commands_reach_the_show(bs: Backstage) -> None:
    async def go() -> None:
        async with page(bs) as p:
            reply = await p.ask(type="prompt", text="the VJ's comet")
            assert reply["type"] == "ack" and reply["id"].startswith("p-")
            image = bs.inbox.images.get(timeout=10)
            assert image.caption == "the VJ's comet"
            assert (await p.ask(type="command", action="blackout"))["type"] == "ack"
            assert bs.inbox.commands.get(timeout=1) == Command(Action.BLACKOUT, source="vj")
            refused = await p.ask(type="command", action="quit")
            assert refused["code"] == "not_allowed"

    asyncio.run(go())


def test_the_dream_mix_slider_reaches_the_show_and_follows_it(bs: Backstage) -> None:
    """The page's dream slider is one command; the show's mix comes back in the show part."""
    async def go() -> None:
        async with page(bs) as p:
            assert (await p.ask(type="command", action="dream_mix", value=0.75))["type"] == "ack"
            assert bs.inbox.commands.get(timeout=1) == Command(Action.DREAM_MIX, 0.75, source="vj")
            bs.board.publish(ShowSnapshot(dream_mix=0.75, dream_fps=18.46))
            await p.until(lambda: p.parts["show"]["dream_mix"] == 0.75)
            assert p.parts["show"]["dream_fps"] == 18.5

    asyncio.run(go())


def test_reorder_and_remove(journal: Journal) -> None:
    b = started(journal, {"audience.moderation": "auto", "generation.in_flight": 1})
    # The show never takes images here, so after the first two the pipeline waits and the line stays put.
    try:
        session = log_in(base(b))  # before the prompts: the page opens right after them, while the line waits

        async def go() -> None:
            ids = [(await phone_prompt(b.port, t, f"phone-{i:08d}"))["id"]
                   for i, t in enumerate(["one fox", "two owls", "three bears", "four cats", "five eels"])]
            async with page(b, session=session) as p:
                await p.until(lambda: len(p.parts["queue"]["line"]) >= 2)
                line = [i["id"] for i in p.parts["queue"]["line"]]
                last = line[-1]
                assert (await p.ask(type="move", id=last, to=0))["type"] == "ack"
                await p.until(lambda: p.parts["queue"]["line"][0]["id"] == last)
                assert (await p.ask(type="remove", id=last))["type"] == "ack"
                await p.until(lambda: last not in [i["id"] for i in p.parts["queue"]["line"]])
                assert set(ids) >= set(line)

        asyncio.run(go())
    finally:
        b.stop()


def test_settings_are_validated_and_used_for_the_next_prompt(bs: Backstage) -> None:
    async def go() -> None:
        async with page(bs) as p:
            await p.until(lambda: "generation" in p.parts)
            assert p.parts["generation"]["output_dir"] == str(bs.journal.folder)  # type: ignore[union-attr]
            assert "16:9" in p.parts["generation"]["choices"]["aspect_ratio"]
            ok = await p.ask(type="settings", values={"steps": 20, "cfg_scale": 7.5, "negative_prompt": "text"})
            assert ok["type"] == "ack"
            await p.until(lambda: p.parts["generation"]["settings"]["steps"] == 20)
            bad = await p.ask(type="settings", values={"steps": 500})
            assert bad["code"] == "bad_message" and "steps" in bad["message"] and "10 to 50" in bad["message"]
            assert bs.pipeline is not None and bs.pipeline.cfg.generation.steps == 20
            assert bs.pipeline.cfg.generation.negative_prompt == "text"

    asyncio.run(go())


def test_gallery_image_goes_back_on_screen(bs: Backstage, journal: Journal) -> None:
    async def go() -> None:
        async with page(bs) as p:
            reply = await p.ask(type="prompt", text="a lantern")
            first = bs.inbox.images.get(timeout=10)
            journal.mark_shown(first.id)  # as the pipeline does when the show puts it on screen:
            bs.board.publish(ShowSnapshot(current_id=first.id))
            await p.until(lambda: any(i["id"] == first.id for i in p.parts["gallery"]["images"]))
            item = next(i for i in p.parts["gallery"]["images"] if i["id"] == first.id)
            assert item["text"] == "a lantern" and item["prompt_id"] == reply["id"]
            assert (await p.ask(type="reshow", image=first.id))["type"] == "ack"
            again: ShowImage = bs.inbox.images.get(timeout=10)
            assert again.urgent and again.caption == "a lantern" and again.id.startswith(first.id)
            assert again.pixels.shape == first.pixels.shape
            missing = await p.ask(type="reshow", image="nope-1")
            assert missing["code"] == "not_found"
        with login(bs) as client:
            r = client.get(item["url"])
            assert r.status_code == 200 and r.headers["content-type"] == "image/png"

    asyncio.run(go())


def test_state_parts_follow_the_show(bs: Backstage) -> None:
    async def go() -> None:
        async with page(bs) as p:
            bad = ShaderProblem("shaders/effects/bad.fs", 12, "'x' undeclared")
            bs.board.publish(ShowSnapshot(blackout=True, frozen=True, effects=("glow",), fps=59.9,
                                          shader_errors=(bad,)))
            await p.until(lambda: p.parts["show"]["blackout"] and p.parts["show"]["frozen"])
            assert p.parts["show"]["effects"] == ["glow"]
            await p.until(lambda: bool(p.parts["shaders"]["errors"]))
            assert p.parts["shaders"]["errors"] == [
                {"file": "shaders/effects/bad.fs", "line": 12, "message": "'x' undeclared"}]
            assert p.parts["backend"]["name"] == "procedural" and p.parts["backend"]["status"] == "ok"
            assert p.parts["tempo"]["source"] == "none"
            assert p.parts["midi"]["available"] is False
            refused = await p.ask(type="midi_learn", target={"action": "blackout"})
            assert refused["code"] == "failed" and "[midi] input" in refused["message"]
            assert (await p.ask(type="ping"))["type"] == "pong"

    asyncio.run(go())


def test_flooding_page_is_slowed_not_obeyed(bs: Backstage) -> None:
    async def go() -> list[str]:
        async with page(bs) as p:
            for i in range(300):
                await p.ws.send(json.dumps({"type": "command", "action": "hud", "ref": f"f{i}"}))
            await p.until(lambda: "f299" in p.replies)
            return [p.replies[f"f{i}"].get("code", "ok") for i in range(300)]

    codes = asyncio.run(go())
    assert "too_fast" in codes and codes.count("ok") >= 100


def test_control_page_on_its_own_port(journal: Journal) -> None:
    server_port = free_port()
    with socket.socket() as hold:  # free_port() answers the lowest free one: hold the first to get another
        hold.bind(("127.0.0.1", server_port))
        vj_port = free_port()
    b = started(journal, {"server.port": server_port, "vj.host": "127.0.0.1", "vj.port": vj_port})
    try:
        assert b.vj_url == f"http://127.0.0.1:{vj_port}/vj"
        with http_client() as client:
            assert client.get(f"{base(b)}/vj", params={"token": TOKEN}).status_code == 404
            assert client.get(f"http://127.0.0.1:{vj_port}/").status_code == 404
        with login(b, f"http://127.0.0.1:{vj_port}") as client:
            assert client.get("/vj").status_code == 200

        async def go() -> None:
            async with page(b, vj_port) as p:
                assert (await p.ask(type="command", action="next"))["type"] == "ack"

        asyncio.run(go())
    finally:
        b.stop()


def test_backend_status_follows_stability_and_never_shows_the_key(journal: Journal,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """ok with credits while the (mock) API answers; offline with the reason in words once the breaker opens."""
    from engine.gen.mock_stability import MockStabilityServer, Scripted, serve_in_thread

    key = "sk-vjtest-0123456789abcdef"
    monkeypatch.delenv("STABILITY_API_KEY", raising=False)
    monkeypatch.delenv("STABILITY_API_HOST", raising=False)
    with serve_in_thread(MockStabilityServer(key, scale=1 / 16)) as mock:
        b = started(journal, {"generation.backend": "stability", "stability.api_host": mock.url,
                              "stability.api_key": key, "stability.max_retries": 0,
                              "stability.breaker_failures": 1, "stability.breaker_cooldown": 600.0})
        try:
            async def go() -> list[str]:
                async with page(b) as p:
                    await p.until(lambda: p.parts["backend"]["credits"] is not None)
                    assert p.parts["backend"]["name"] == "stability" and p.parts["backend"]["status"] == "ok"
                    mock.script(Scripted(status=500, match="generate"))
                    await p.ask(type="prompt", text="a storm over the sea")
                    await p.until(lambda: p.parts["backend"]["status"] == "offline")
                    assert p.parts["backend"]["errors"]  # the fallback is explained in words
                    return [json.dumps(v) for v in p.parts.values()]

            texts = asyncio.run(go())
            image = b.inbox.images.get(timeout=10)  # the offline generator stood in
            assert image.caption == "a storm over the sea"
            assert not any(key in t for t in texts)
        finally:
            b.stop()
