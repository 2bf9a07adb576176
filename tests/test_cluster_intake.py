"""Two intakes (in this process, on loopback ports) and a real redis-server, with WebSocket phones: prompts into the
stream, statuses back to the right phone only, history on another intake, the gate's refusals, images, resends."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from engine.cluster.gate import Gate
from engine.cluster.images import lookup
from engine.cluster.intake import RedisIntake, main, run_intake
from engine.cluster.keys import Keys
from engine.cluster.link import close
from engine.cluster.link import connect as redis_connect
from engine.cluster.show_link import ShowLink
from engine.cluster.wire import PROMPT_ID, PromptEntry, read_prompt, statuses_message
from engine.config import AudienceConfig, ClusterConfig, ServerConfig
from engine.contract import State
from engine.net.protocol import PromptStatus
from engine.net.server import AudienceServer
from tests.engine_process import free_port
from tests.fakes import make_config
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (the fixture)

SHOW = "intake-test"
KEYS = Keys(SHOW)
OPEN = AudienceConfig(cooldown=0.0, burst=10)


@pytest.fixture
def server(redis_server: RedisServer) -> RedisServer:  # noqa: F811
    return redis_server


@pytest.fixture
def web(tmp_path: Path) -> Path:
    root = tmp_path / "web"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>phone</title>")
    return root


@dataclass
class Rig:
    r: Any  # a client of the test's own, the fake show's
    servers: list[AudienceServer] = field(default_factory=list)
    intakes: list[RedisIntake] = field(default_factory=list)

    def port(self, n: int) -> int:
        return self.servers[n].port


@asynccontextmanager
async def intakes(server: RedisServer, web: Path, audience: AudienceConfig = OPEN, **options: float
                  ) -> AsyncIterator[Rig]:
    """Two intakes, each with its own Redis client (as two processes would), subscribed and listening."""
    rig = Rig(await redis_connect(server.url))
    clients = []
    try:
        for _ in range(2):
            r = await redis_connect(server.url)
            clients.append(r)
            intake = RedisIntake(r, KEYS, Gate(r, KEYS, audience, dupe_window=60.0), **options)
            srv = AudienceServer(ServerConfig(host="127.0.0.1", port=0), audience, intake, images=lookup(r, KEYS),
                                 web_root=web)
            srv.intakes = ("http://127.0.0.1:1", "http://127.0.0.1:2")
            intake.attach(srv)
            await intake.start()
            await srv.start()
            rig.servers.append(srv)
            rig.intakes.append(intake)
        for intake in rig.intakes:
            await asyncio.wait_for(intake.subscribed.wait(), 5)
        yield rig
    finally:
        for srv in rig.servers:
            await srv.stop()
        for intake in rig.intakes:
            await intake.aclose()
        for r in [*clients, rig.r]:
            await close(r)


@asynccontextmanager
async def fake_show(rig: Rig, answer: bool = True) -> AsyncIterator[ShowLink]:
    """A show that queues every prompt at place 1 (the real ledger is tested in test_cluster_show_link.py)."""
    links: list[ShowLink] = []

    def submit(entry: PromptEntry) -> None:
        if answer:
            links[0].deliver([(entry.client_id, PromptStatus(entry.id, entry.text, State.QUEUED, 1, ref=entry.ref))])

    link = ShowLink(rig.r, KEYS, ClusterConfig(show=SHOW), submit)
    links.append(link)
    await link.start()
    try:
        yield link
    finally:
        await link.aclose()


@asynccontextmanager
async def phone(port: int, client: str) -> AsyncIterator[tuple[ClientConnection, dict[str, Any]]]:
    async with connect(f"ws://127.0.0.1:{port}/ws?client={client}") as ws:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert welcome["type"] == "welcome"
        yield ws, welcome


async def send(ws: ClientConnection, text: str, ref: str = "r1") -> None:
    await ws.send(json.dumps({"type": "prompt", "text": text, "ref": ref}))


async def heard(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.02)


async def stream(r: Any) -> list[PromptEntry]:
    return [read_prompt(fields) for _id, fields in await r.xrange(KEYS.prompts)]


def run(scenario: Awaitable[None], timeout: float = 30.0) -> None:
    asyncio.run(asyncio.wait_for(scenario, timeout))


def get(port: int, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as err:
        body = err.read()
        err.close()
        return err.code, err.headers["Content-Type"], body


def test_a_phones_prompt_reaches_the_stream_with_its_client_id_and_address(server: RedisServer, web: Path) -> None:
    """The prompt goes into the show's stream under a fresh prompt id, with the phone's id, address and ref."""
    async def scenario() -> None:
        async with intakes(server, web) as rig, phone(rig.port(0), "phone-aaaaaaaa") as (ws, _welcome):
            await send(ws, "a red fox", "ref-7")
            await until(lambda: _count(rig.r, 1), "the stream entry")
            [entry] = await stream(rig.r)
            assert PROMPT_ID.fullmatch(entry.id)
            assert (entry.client_id, entry.ip, entry.text, entry.ref) == ("phone-aaaaaaaa", "127.0.0.1", "a red fox",
                                                                         "ref-7")
    run(scenario())


async def _count(r: Any, n: int) -> bool:
    return len(await stream(r)) >= n


def test_a_published_status_reaches_only_its_phone(server: RedisServer, web: Path) -> None:
    """A status for A reaches A; B (other intake) and C (A's intake) hear only their own, sent after it."""
    async def scenario() -> None:
        async with intakes(server, web) as rig, \
                phone(rig.port(0), "phone-aaaaaaaa") as (a, _wa), \
                phone(rig.port(1), "phone-bbbbbbbb") as (b, _wb), \
                phone(rig.port(0), "phone-cccccccc") as (c, _wc):
            for client in ("phone-aaaaaaaa", "phone-bbbbbbbb", "phone-cccccccc"):
                status = PromptStatus(f"p-{client[-1] * 12}", f"from {client}", State.QUEUED, 2)
                await rig.r.publish(KEYS.status, statuses_message([(client, status)]))
            for ws, letter in ((a, "a"), (b, "b"), (c, "c")):
                message = await heard(ws)
                assert (message["type"], message["id"], message["state"]) == ("status", f"p-{letter * 12}", "queued")
    run(scenario())


def test_a_phone_that_moves_to_the_other_intake_finds_its_history_in_the_welcome(server: RedisServer,
                                                                                   web: Path) -> None:
    """Queued through intake 1 (the show's status, by Redis); intake 2's welcome lists it, and the intakes."""
    async def scenario() -> None:
        async with intakes(server, web) as rig, fake_show(rig):
            async with phone(rig.port(0), "phone-aaaaaaaa") as (ws, welcome):
                assert welcome["prompts"] == []
                await send(ws, "a red fox", "ref-1")
                status = await heard(ws)
                assert (status["state"], status["position"], status["ref"]) == ("queued", 1, "ref-1")
            async with phone(rig.port(1), "phone-aaaaaaaa") as (_ws, welcome):
                assert [(p["id"], p["state"], p["text"]) for p in welcome["prompts"]] == [
                    (status["id"], "queued", "a red fox")]
                assert welcome["intakes"] == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    run(scenario())


def test_a_refusal_at_the_gate_reaches_the_phone_at_once_in_the_audiences_words(server: RedisServer,
                                                                                 web: Path) -> None:
    """burst 1: the second prompt is refused by the intake itself (slow down, with retry_after); it is not in the
    stream, nor in the phone's history."""
    async def scenario() -> None:
        async with intakes(server, web, AudienceConfig(cooldown=30.0, burst=1)) as rig, \
                phone(rig.port(0), "phone-aaaaaaaa") as (ws, _welcome):
            await send(ws, "a red fox", "ref-1")
            await until(lambda: _count(rig.r, 1), "the first prompt in the stream")
            await send(ws, "a blue whale", "ref-2")
            refusal = await heard(ws, 2.0)
            assert (refusal["state"], refusal["ref"], refusal["reason_code"]) == ("rejected", "ref-2", "slow_down")
            assert 29 < refusal["retry_after"] <= 30 and refusal["reason_params"] == {"seconds": 30}
            await send(ws, "A red fox!", "ref-3")  # another intake's phone would be told the same: one gate
            assert (await heard(ws, 2.0))["reason_code"] == "slow_down"
            assert [e.text for e in await stream(rig.r)] == ["a red fox"]
            assert await rig.r.hlen(KEYS.phone("phone-aaaaaaaa")) == 0
    run(scenario())


def test_a_duplicate_is_refused_at_the_gate_on_any_intake(server: RedisServer, web: Path) -> None:
    """The same text from the same phone, sent to the other intake: "duplicate", in the audience's words."""
    async def scenario() -> None:
        async with intakes(server, web) as rig:
            async with phone(rig.port(0), "phone-aaaaaaaa") as (ws, _welcome):
                await send(ws, "a red fox")
                await until(lambda: _count(rig.r, 1), "the first prompt in the stream")
            async with phone(rig.port(1), "phone-aaaaaaaa") as (ws, _welcome):
                await send(ws, "A Red Fox.", "ref-2")
                refusal = await heard(ws, 2.0)
                assert (refusal["state"], refusal["reason_code"]) == ("rejected", "duplicate")
    run(scenario())


def test_an_image_is_served_by_both_intakes_and_a_missing_one_is_404(server: RedisServer, web: Path) -> None:
    """put_image on the show's side; both intakes serve the bytes, typed by their content; unknown ids 404."""
    async def scenario() -> None:
        async with intakes(server, web) as rig, fake_show(rig) as link:
            jpeg = b"\xff\xd8\xff\xe0" + b"pixels" * 100
            link.put_image("p-0123456789ab-1", jpeg)
            assert await link.flush(5)
            for n in (0, 1):
                assert await asyncio.to_thread(get, rig.port(n), "/images/p-0123456789ab-1.jpg") == (
                    200, "image/jpeg", jpeg)
                status, _type, _body = await asyncio.to_thread(get, rig.port(n), "/images/p-ffffffffffff-1.png")
                assert status == 404
    run(scenario())


def test_an_unanswered_prompt_is_added_again_under_the_same_id_until_the_show_answers(server: RedisServer,
                                                                                       web: Path) -> None:
    """No show: the intake adds the prompt again (same id) every resend_after; once a status comes, it stops."""
    async def scenario() -> None:
        async with intakes(server, web, resend_after=0.3) as rig, \
                phone(rig.port(0), "phone-aaaaaaaa") as (ws, _welcome):
            await send(ws, "a red fox")
            await until(lambda: _count(rig.r, 3), "two more entries")
            entries = await stream(rig.r)
            assert len({e.id for e in entries}) == 1 and rig.intakes[0].pending
            status = PromptStatus(entries[0].id, "a red fox", State.QUEUED, 1)
            await rig.r.publish(KEYS.status, statuses_message([("phone-aaaaaaaa", status)]))
            assert (await heard(ws))["state"] == "queued"
            assert not rig.intakes[0].pending
            await asyncio.sleep(0.3)  # a resend already on its way when the status came
            settled = len(await stream(rig.r))
            await asyncio.sleep(0.8)
            assert len(await stream(rig.r)) == settled
    run(scenario())


def test_a_prompt_the_show_never_answers_fails_and_may_be_sent_again(server: RedisServer, web: Path) -> None:
    """After give_up_after the phone hears "failed" (busy, in its language); the same text is then let through."""
    async def scenario() -> None:
        async with intakes(server, web, resend_after=0.2, give_up_after=0.8) as rig, \
                phone(rig.port(0), "phone-aaaaaaaa") as (ws, _welcome):
            await send(ws, "a red fox", "ref-1")
            failed = await heard(ws)
            assert (failed["state"], failed["ref"], failed["reason_code"]) == ("failed", "ref-1", "busy")
            before = len(await stream(rig.r))
            await until(lambda: _no_marks(rig.r), "the duplicate mark taken back")
            await send(ws, "a red fox", "ref-2")
            await until(lambda: _count(rig.r, before + 1), "the same text, let through again")
    run(scenario())


async def _no_marks(r: Any) -> bool:
    return not [k async for k in r.scan_iter(match=KEYS.dupe("*", "*"))]


def test_after_redis_restarts_phones_hear_their_history_again(server: RedisServer, web: Path) -> None:
    """Pub/Sub loses what was published while away: on subscribing again, each phone here is sent its history."""
    async def scenario() -> None:
        async with intakes(server, web) as rig, fake_show(rig), \
                phone(rig.port(0), "phone-aaaaaaaa") as (ws, _welcome):
            await send(ws, "a red fox", "ref-1")
            first = await heard(ws)
            await asyncio.to_thread(server.restart)
            again = await heard(ws, 15.0)
            assert (again["id"], again["state"], again["ref"]) == (first["id"], "queued", "ref-1")
    run(scenario())


def test_run_intake_serves_phones_and_not_the_vj_page(server: RedisServer, web: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """The role as the CLI starts it: ready line, the [cluster] intakes in the welcome, /vj not served."""
    caplog.set_level(logging.INFO, logger="engine.cluster.intake")
    port = free_port()
    cfg = make_config({"cluster.redis": server.url, "cluster.show": SHOW, "server.host": "127.0.0.1",
                       "server.port": port, "cluster.intakes": ["http://10.0.0.5:3000", "http://10.0.0.6:3000"]})

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_intake(cfg, stop))

        async def ready() -> bool:
            return any(f"intake ready on 127.0.0.1:{port}, show {SHOW}" in m for m in caplog.messages)

        await until(ready, "the ready line")
        async with phone(port, "phone-aaaaaaaa") as (_ws, welcome):
            assert welcome["intakes"] == ["http://10.0.0.5:3000", "http://10.0.0.6:3000"]
        for path in ("/vj", "/vj/index.html"):
            status, _type, _body = await asyncio.to_thread(get, port, path)
            assert status == 404
        stop.set()
        await asyncio.wait_for(task, 10)
    run(scenario())


def test_main_without_redis_is_one_error_line_and_exit_code_1(capsys: pytest.CaptureFixture[str]) -> None:
    """An unreachable Redis at start: ``error: cannot reach Redis at ...`` and 1, no traceback, no retry loop."""
    cfg = make_config({"cluster.redis": f"redis://127.0.0.1:{free_port()}/0", "server.host": "127.0.0.1",
                       "server.port": free_port()})
    assert main(cfg) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: cannot reach Redis at redis://127.0.0.1:")
