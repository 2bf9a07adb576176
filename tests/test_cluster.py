"""The cluster end to end: a real redis-server, the show, two intakes and generate workers as separate processes
(``python -m engine show|intake|generate``), phones on both intakes.

Each role runs exactly as a technician starts it. Phones are plain WebSocket clients speaking the phone page's
protocol (one Chromium test drives the real page). Everything is on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect
from websockets.asyncio.client import ClientConnection, connect

from tests.engine_process import EngineProcess, free_port, run_engine
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (the fixture)
from tests.test_vj_server import TOKEN, page

AUDIENCE = ["--set", "audience.cooldown=0.1", "--set", "audience.burst=10"]  # every role reads the same limits
SHOW_ARGS = ["--headless", "--size", "160x90", "--fps", "10", "--set", "show.hold=0.6", "--set", "show.hold_min=0.3",
             "--set", "show.transition=0.1", "--set", "generation.width=128", "--set", "generation.height=128",
             "--set", "overlay.qr=\"off\"", *AUDIENCE]
ROLE_LOG = "--log-level", "info"


def free_ports(n: int, taken: int) -> tuple[int, ...]:
    """``n`` free ports, none of them ``taken`` (the show's, chosen but not bound yet)."""
    out: list[int] = []
    sockets = []
    try:
        while len(out) < n:
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", free_port()))
            except OSError:
                s.close()
                continue
            sockets.append(s)  # held, so free_port moves on to the next one
            port = s.getsockname()[1]
            if port != taken:
                out.append(port)
    finally:
        for s in sockets:
            s.close()
    return tuple(out)


class Cluster:
    """The roles of one show as processes, started and stopped by the test."""

    def __init__(self, redis: RedisServer, folder: Path) -> None:
        self.redis, self.folder = redis, folder
        self.procs: list[EngineProcess] = []
        self.show_port = free_port()

    def _start(self, args: list[str], name: str) -> EngineProcess:
        cwd = self.folder / name
        cwd.mkdir(parents=True, exist_ok=True)
        p = EngineProcess(args, cwd)
        self.procs.append(p)
        return p

    def show(self, *extra: str) -> EngineProcess:
        p = self._start(["show", "--redis", self.redis.url, "--port", str(self.show_port), *SHOW_ARGS, *extra],
                        "show")
        p.wait_for("cluster: show 'main' on Redis", 60)
        p.wait_for("audience server on", 60)
        return p

    def intake(self, port: int, *extra: str) -> EngineProcess:
        p = self._start(["intake", "--redis", self.redis.url, "--port", str(port), *ROLE_LOG, *AUDIENCE, *extra],
                        f"intake-{port}")
        p.wait_for("intake ready on", 30)
        return p

    def worker(self, *extra: str) -> EngineProcess:
        p = self._start(["generate", "--redis", self.redis.url, "--generator", "procedural", *ROLE_LOG, *extra],
                        f"worker-{len(self.procs)}")
        p.wait_for("generate worker .* ready", 30)
        return p

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            with contextlib.suppress(AssertionError):  # one that will not stop is killed below
                p.wait(20)
            p.kill()


@pytest.fixture
def cluster(redis_server: RedisServer, tmp_path: Path) -> Iterator[Cluster]:  # noqa: F811
    c = Cluster(redis_server, tmp_path)
    yield c
    c.stop()
    for p in c.procs:
        assert "Traceback" not in p.output, p.output


class Phone:
    """A phone: its socket to one intake and every status it heard, per prompt, in order."""

    def __init__(self, client: str) -> None:
        self.client = client
        self.ws: ClientConnection | None = None
        self.welcome: dict[str, Any] = {}
        self.heard: dict[str, list[dict[str, Any]]] = {}  # prompt id → statuses
        self.by_ref: dict[str, str] = {}  # ref → prompt id
        self.order: list[tuple[float, str, str]] = []  # (when, prompt id, state)
        self._reader: asyncio.Task[None] | None = None

    async def join(self, port: int) -> None:
        await self.leave()
        self.ws = await connect(f"ws://127.0.0.1:{port}/ws?client={self.client}")
        self.welcome = json.loads(await self.ws.recv())
        assert self.welcome["type"] == "welcome", self.welcome
        for status in self.welcome["prompts"]:
            self._note(status)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            msg = json.loads(frame)
            if msg.get("type") == "status":
                self._note(msg)

    def _note(self, status: dict[str, Any]) -> None:
        self.heard.setdefault(status["id"], []).append(status)
        if status.get("ref"):
            self.by_ref[status["ref"]] = status["id"]
        self.order.append((time.monotonic(), status["id"], status["state"]))

    async def send(self, text: str, ref: str) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps({"type": "prompt", "text": text, "ref": ref}))

    def state(self, prompt_id: str) -> str | None:
        heard = self.heard.get(prompt_id)
        return heard[-1]["state"] if heard else None

    async def leave(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if self.ws is not None:
            await self.ws.close()
            self.ws = None


async def until(cond: Callable[[], bool], what: str, timeout: float = 30.0,
                detail: Callable[[], object] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {detail()}")
        await asyncio.sleep(0.05)


def states(*phones: Phone) -> dict[str, dict[str, str]]:
    return {p.client: {pid: f"{p.state(pid)} {p.heard[pid][-1].get('reason', '')}" for pid in p.heard}
            for p in phones}


def first_time(phone: Phone, prompt_id: str, state: str) -> float:
    return next(t for t, pid, s in phone.order if pid == prompt_id and s == state)


# --- the roles ------------------------------------------------------------------------------------------------
def test_two_intakes_one_show_one_worker_fair_order_and_own_statuses(cluster: Cluster) -> None:
    """Phones on two intakes: every prompt is generated by the worker and shown, in round-robin order across
    phones whichever intake they use; each phone hears its own prompts' statuses and no one else's."""
    cluster.show("--set", "generation.in_flight=1")
    ports = free_ports(2, cluster.show_port)
    for port in ports:
        cluster.intake(port)
    cluster.worker("--generator", "stability", "--stability-mock", "--mock-latency", "1.5")

    async def go() -> None:
        a, b, c, d = (Phone("phone-aaaa0001"), Phone("phone-bbbb0002"), Phone("phone-cccc0003"),
                      Phone("phone-dddd0004"))
        await a.join(ports[0])
        await b.join(ports[1])
        await c.join(ports[0])
        await d.join(ports[1])
        # One job at a time, 1.5 s each: while D's prompt is being made, the others line up behind it.
        await d.send("an opening act of fireworks", "d0")
        await until(lambda: "d0" in d.by_ref and d.state(d.by_ref["d0"]) == "generating", "the first job started")
        for i, text in enumerate(("a red kite over hills", "submarine in a teacup", "volcano made of candy")):
            await a.send(text, f"a{i}")
        for i, text in enumerate(("a blue whale in the sky", "robot knitting a scarf", "desert of mirrors")):
            await b.send(text, f"b{i}")
        await c.send("a green forest of glass", "c0")
        refs = {a: ["a0", "a1", "a2"], b: ["b0", "b1", "b2"], c: ["c0"]}
        await until(lambda: all(r in p.by_ref for p, rs in refs.items() for r in rs), "every prompt queued")
        ids = {p: [p.by_ref[r] for r in rs] for p, rs in refs.items()}
        await until(lambda: all(p.state(i) in ("showing", "done") for p, pids in ids.items() for i in pids),
                    "every prompt on screen", 60, lambda: states(a, b, c))
        # Each phone heard only its own prompts.
        for p, pids in ids.items():
            assert set(p.heard) == set(pids), (p.client, sorted(p.heard))
        # A sent all three of its prompts before B and C sent theirs, B on the other intake, yet round k of every
        # phone started before anyone's round k + 1.
        started = sorted((first_time(p, i, "generating"), p.client, k) for p, pids in ids.items()
                         for k, i in enumerate(pids))
        assert [k for _t, _c, k in started] == [0, 0, 0, 1, 1, 2, 2], started
        for p in (a, b, c, d):
            await p.leave()

    asyncio.run(go())


def test_a_phone_moves_to_the_other_intake_and_keeps_its_history(cluster: Cluster) -> None:
    """A phone's prompt sent through one intake; it connects to the other: its welcome carries the prompt with
    its state, and the statuses after that reach it there. The image is served by both intakes. A ban from the
    show's control page is then enforced by both intakes."""
    cluster.show("--vj-token", TOKEN)
    ports = free_ports(2, cluster.show_port)
    for port in ports:
        cluster.intake(port)
    cluster.worker()

    async def go() -> None:
        p = Phone("phone-mover001")
        await p.join(ports[0])
        await p.send("a lighthouse made of coral", "m0")
        await until(lambda: "m0" in p.by_ref, "queued")
        pid = p.by_ref["m0"]
        await p.join(ports[1])
        assert [s["id"] for s in p.welcome["prompts"]] == [pid]
        await until(lambda: p.state(pid) in ("showing", "done"), "on screen, heard on the second intake", 60)
        url = next(s["image_url"] for s in reversed(p.heard[pid]) if s.get("image_url"))
        async with httpx.AsyncClient() as http:
            for port in ports:
                r = await http.get(f"http://127.0.0.1:{port}{url}")
                assert r.status_code == 200 and r.content[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1",
                                                                  b"RIFF"), (port, r.status_code)
        # The VJ bans the phone from the show's control page: every intake's gate refuses it from then on.
        async with page(SimpleNamespace(port=cluster.show_port), cluster.show_port) as vj:  # type: ignore[arg-type]
            assert (await vj.ask(type="ban", id=pid))["type"] == "ack"
        await asyncio.sleep(0.5)
        for port in ports:
            await p.join(port)
            await p.send(f"a sneaky prompt through {port}", f"ban{port}")
            await until(lambda: f"ban{port}" in p.by_ref, "the refusal", 10)  # noqa: B023
            refused = p.heard[p.by_ref[f"ban{port}"]][-1]
            assert refused["state"] == "rejected" and refused.get("reason_code") == "banned", refused
        await p.leave()

    asyncio.run(go())


def test_a_worker_killed_mid_prompt_is_replaced_and_the_prompt_finished(cluster: Cluster) -> None:
    """kill -9 of the only worker while it generates (a slow mocked API): a second worker takes the job over
    after [cluster] claim_after, and the phone sees its prompt on screen."""
    cluster.show("--set", "cluster.claim_after=5")
    (port,) = free_ports(1, cluster.show_port)
    cluster.intake(port)
    slow = ("--generator", "stability", "--stability-mock", "--mock-latency", "20", "--set", "cluster.claim_after=5")
    first = cluster.worker(*slow)

    async def go() -> None:
        p = Phone("phone-killed01")
        await p.join(port)
        await p.send("a clockwork owl at midnight", "k0")
        await until(lambda: "k0" in p.by_ref, "queued")
        pid = p.by_ref["k0"]
        await until(lambda: p.state(pid) == "generating", "generating")
        await asyncio.sleep(1.0)  # the worker has the job
        first.proc.send_signal(signal.SIGKILL)
        first.wait(10)
        second = cluster.worker("--set", "cluster.claim_after=5")
        await until(lambda: p.state(pid) in ("showing", "done"), "the prompt finished by the second worker", 60)
        assert "reclaimed job " + pid in second.output, second.output
        await p.leave()

    asyncio.run(go())


def test_a_redis_restart_mid_stream_loses_nothing_acknowledged(cluster: Cluster) -> None:
    """Prompts flowing; Redis killed (SIGKILL: only what its AOF has survives) and started again: every prompt a
    phone was told was queued is shown, and the roles reconnected by themselves."""
    cluster.show()
    (port,) = free_ports(1, cluster.show_port)
    cluster.intake(port)
    cluster.worker()

    async def go() -> None:
        phones = [Phone(f"phone-restart{i:02d}") for i in range(4)]
        for ph in phones:
            await ph.join(port)
        for i, ph in enumerate(phones):
            await ph.send(f"a paper boat on a river {i}", "r0")
        await until(lambda: all("r0" in ph.by_ref for ph in phones), "the first prompts queued")
        await asyncio.sleep(1.5)  # appendfsync everysec: what was acknowledged is on disk now
        restart = asyncio.create_task(asyncio.to_thread(cluster.redis.restart, True, 3.0))
        await asyncio.sleep(0.5)
        for i, ph in enumerate(phones):  # sent while Redis is away: the intake holds them until it is back
            await ph.send(f"a second paper boat {i}", "r1")
        await restart
        acknowledged = lambda: [(ph, ph.by_ref[r]) for ph in phones for r in ("r0", "r1") if r in ph.by_ref]  # noqa: E731
        await until(lambda: len(acknowledged()) == 8, "every prompt queued after the restart", 60)
        await until(lambda: all(ph.state(pid) in ("showing", "done") for ph, pid in acknowledged()),
                    "every acknowledged prompt on screen", 90)
        for ph in phones:
            await ph.leave()

    asyncio.run(go())


def test_a_role_without_redis_says_so_and_exits_1(tmp_path: Path) -> None:
    for role in (["show", "--headless", "--frames", "1"], ["intake"], ["generate"]):
        rc, out = run_engine([*role, "--redis", "redis://127.0.0.1:1/0"], tmp_path, timeout=30)
        assert rc == 1, out
        lines = [ln for ln in out.splitlines() if ln.startswith("error:")]
        assert lines == [lines[0]] and "cannot reach Redis at redis://127.0.0.1:1/0" in lines[0], out


def test_the_page_moves_to_another_intake_when_its_own_is_killed(cluster: Cluster, browser: Browser) -> None:
    """The real phone page on intake 1; intake 1 killed: the page connects to intake 2 (from [cluster] intakes)
    by itself, shows its prompt's history, and its next prompt is queued there."""
    ports = free_ports(2, cluster.show_port)
    urls = f'cluster.intakes=["http://127.0.0.1:{ports[0]}", "http://127.0.0.1:{ports[1]}"]'
    cluster.show()
    first = cluster.intake(ports[0], "--set", urls)
    cluster.intake(ports[1], "--set", urls)
    cluster.worker()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{ports[0]}/")
        page.locator("#prompt").fill("a violin made of ice")
        page.locator("#send").click()
        expect(page.locator("#prompts li")).to_have_count(1, timeout=20000)
        first.proc.send_signal(signal.SIGKILL)
        first.wait(10)
        expect(page.locator("#status-banner")).to_be_hidden(timeout=30000)  # online again, on the other intake
        page.locator("#prompt").fill("a cello made of fire")
        page.locator("#send").click()
        expect(page.locator("#prompts li")).to_have_count(2, timeout=20000)
    finally:
        context.close()
