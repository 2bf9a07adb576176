"""Cluster benchmark: phones split over 1 and then 2 intakes, one show, one Redis, all on this machine.

The roles run exactly as a technician starts them (docs/cluster.md), each a process of its own, traffic on
loopback only:

- ``redis-server`` on a free port of 127.0.0.1 (AOF on, ``appendfsync everysec``, as docs/cluster.md requires;
  its data in the run's temporary folder);
- the show: ``python -m engine show --headless --size 160x90 --fps 10 --redis URL --port P``, configured to
  accept a flood (``audience.cooldown=0``, a queue of 100,000, 100 prompts waiting per phone: what
  ``bench/audience.py`` sets) and to spend next to no CPU on images. No generate worker runs, so the show's
  remote generator hands each prompt the pipeline asks for to its offline generator (procedural, here
  128x128, ``generation.in_flight=1``); ``show.hold=3600`` with ``show.max_wait=0`` keeps the first image on
  screen, so the pipeline stops asking once a few images wait, and every other prompt stays in the line. The
  run counts the images the show made and the jobs it handed to the job stream;
- k = 1, then 2 intakes: ``python -m engine intake --redis URL --port Pi``, with the same ``[audience]`` and
  ``[server]`` limits as the show, so the gate in Redis (per-phone and per-address buckets) lets the flood
  through, and ``audience.feed=true`` so the feed channel reaches the phones;
- k Node load clients (``bench/load/client.js``, the one ``bench/audience.py`` drives), each connecting
  ``--phones / k`` phones to its own intake, each phone from its own source address (127.0.x.y, the ranges of
  the clients disjoint), pinging like the page.

For each k, once the phones are held:

1. push to all: the bench PUBLISHes ``--pushes`` lines on the show's feed channel (``sc:main:feed``, the one
   the show publishes a prompt on when it goes on screen), one a second, each ``bench-push SEQ SENT_MS``
   stamped with the bench's clock; every intake relays it to all its phones as a ``feed`` message, and the
   client times each arrival against that stamp (its clock's offset from the bench's, measured over its pipe
   before the run, taken off). Reported: p50/p99/max over every phone and push, and how many phones got
   every push;
2. prompts: the phones send prompts open loop at ``--rate`` a second in all (split over the clients by
   their phones; the phones take turns, each text different) for ``--seconds``, at most ``--outstanding``
   unanswered in all. A prompt is accepted when its ``queued`` status reaches its phone: intake (gate in
   Redis, XADD) → the prompt stream → the show's ledger → journal (SQLite) → status channel → the intake →
   the phone. Reported: prompts accepted per second (first send to last acceptance) and the p99 time from
   send to that status, and both for each second of the phase. With the defaults (2,000 phones, 400/s) each
   phone sends its first prompt in the first 5 s and its second after that, while its first still waits
   (nothing leaves the line): the show's ledger counts a second prompt's place in the round-robin line over
   every phone waiting, so it costs more than a first one (``Audience._new_position``).

Between k = 1 and k = 2 the clients, the intakes and the show are stopped, Redis is emptied (FLUSHALL), and
a new show starts in a new folder (a new journal), so both runs start from the same state: an empty line.

Every process's CPU seconds are printed for each phase (show and its backstage process, each intake, Redis,
the load clients, this bench, and the machine's other processes). On 2 cores all of them share the same two
cores, so 2 intakes cannot add a core: the runs show the shape of the scaling (where the CPU goes as phones
move to a second intake: the push fan-out splits, the show and Redis do not), not its ceiling; the paper
arithmetic for 80,000 phones is in docs/cluster.md. Figures are reported, never asserted: exit 0 (2 if the
bench could not set up, 130 when interrupted).

Everything stops by itself: every wait has a deadline, the load clients exit when their stdin closes, and
the roles and Redis run in sessions of their own (a Ctrl-C reaches the bench, which kills them), die with
the bench (PR_SET_PDEATHSIG), and are stopped (SIGTERM, then SIGKILL) at the end of each run.

Run from the repository root: ``.venv/bin/python bench/cluster.py`` (``--quick`` for a smoke run: 300 phones,
4 pushes, 3 s of prompts; ``--phones N``, ``--pushes N``, ``--rate R``, ``--seconds S``, ``--keep`` to keep the
roles' logs). The load client's dependency (``ws``) is installed with npm the first time, as for
``bench/audience.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.audience import (  # noqa: E402
    CONNECT_CONCURRENCY,
    OTHERS_LIMIT,
    ClientError,
    LoadClient,
    SetupError,
    ensure_client,
    pct,
    prompt_texts,
    push_rows,
    row,
    run_to_the_end,
    wait_for_quiet,
    worst,
)
from bench.soak import Child, free_port, machine_cpu  # noqa: E402
from engine.cluster.keys import JOBS_GROUP, PROMPTS_GROUP, Keys  # noqa: E402

SHOW = "main"
KEYS = Keys(SHOW)
SIZE = "160x90"
SIZE_GENERATED = "128x128"
FIRST_ADDRESS = 256  # phone addresses start at 127.0.1.x (client.js addressFor), away from 127.0.0.1
PUSH_EVERY_S = 1.0
ROLE_START_S = 90.0  # the show loads GL and its shaders; on a busy 2-core machine that takes a while
STOP_S = 20.0

# What the show and every intake are told: the audience accepts a flood (bench/audience.py's bench_config), the
# feed reaches the phones, and (server_sets) the server takes every phone, on loopback.
AUDIENCE_SETS = (
    "audience.cooldown=0", "audience.burst=50", "audience.max_queue=100000", "audience.max_pending_per_client=100",
    "audience.max_phones=1000000", "audience.feed=true",
)


def server_sets(phones: int) -> tuple[str, ...]:
    return ("server.host=\"127.0.0.1\"", f"server.max_connections={max(12000, phones + 2000)}")


# The show alone: nothing generated on its own CPU (no worker runs: one job out, the rest wait in line), a
# small cheap screen.
SHOW_SETS = (
    "generation.backend=\"procedural\"", "generation.in_flight=1", "generation.width=128", "generation.height=128",
    "demo.interval=0", "overlay.qr=\"off\"", "show.max_wait=0", "show.hold=3600",
)


# --- settings ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    phones: int
    pushes: int
    rate: float
    seconds: float
    outstanding: int
    grace_s: float
    quick: bool
    keep: bool
    intakes: tuple[int, ...] = (1, 2)


def parse_args(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 phones, 4 pushes, 3 s of prompts")
    parser.add_argument("--phones", type=int, default=None, help="phones in all, split over the intakes "
                        "(default 2000; 300 quick)")
    parser.add_argument("--pushes", type=int, default=None, help="feed lines pushed to every phone (default 10; "
                        "4 quick)")
    parser.add_argument("--rate", type=float, default=400.0, help="prompts a second offered, all phones together")
    parser.add_argument("--seconds", type=float, default=None, help="seconds of prompts (default 10; 3 quick)")
    parser.add_argument("--outstanding", type=int, default=500, help="unanswered prompts at most, in all")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (the roles' logs)")
    args = parser.parse_args(argv)
    quick = args.quick
    phones = args.phones if args.phones is not None else (300 if quick else 2000)
    pushes = args.pushes if args.pushes is not None else (4 if quick else 10)
    seconds = args.seconds if args.seconds is not None else (3.0 if quick else 10.0)
    if phones < 2 or pushes < 1 or args.rate <= 0 or seconds <= 0 or args.outstanding < 2:
        parser.error("need phones >= 2, pushes >= 1, rate > 0, seconds > 0, outstanding >= 2")
    return Settings(phones=phones, pushes=pushes, rate=args.rate, seconds=seconds, outstanding=args.outstanding,
                    grace_s=5.0 if quick else 8.0, quick=quick, keep=args.keep)


def split(total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` near-equal whole shares."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# --- the processes ----------------------------------------------------------------------------------------


class Role(Child):
    """A process of the run (a role or redis-server), in a session of its own, its output in a log file."""

    def __init__(self, name: str, args: list[str], cwd: Path) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        super().__init__(args, cwd, env, cwd / f"{name}.log")
        self.name = name
        self.ps = psutil.Process(self.pid)

    def ready(self, pattern: str, timeout: float = ROLE_START_S) -> None:
        """Wait for a log line matching ``pattern``; ``SetupError`` with the log's end if it exits or is slow."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if rx.search(self.log()):
                return
            if not self.alive():
                raise SetupError(f"{self.name} exited ({self.proc.returncode}) before saying {pattern!r}:\n"
                                 f"{self.tail()}")
            time.sleep(0.1)
        raise SetupError(f"{self.name} did not say {pattern!r} within {timeout:g} s:\n{self.tail()}")

    def problems(self) -> list[str]:
        """Its log's ERROR and Traceback lines."""
        return [line for line in self.log().splitlines() if " ERROR " in line or line.startswith("Traceback")]

    def tail(self, lines: int = 25) -> str:
        return "\n".join("    " + line for line in self.log().splitlines()[-lines:])

    def stop(self) -> int | None:
        """SIGTERM, up to ``STOP_S`` to exit, then SIGKILL of what is left (its children too); its exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(Exception):
                self.proc.wait(STOP_S)
        code = self.proc.poll()
        self.kill()
        return code

    def cpu(self) -> tuple[float, float]:
        """CPU seconds so far: (this process, its descendants)."""
        own = _cpu(self.ps)
        try:
            family = self.ps.children(recursive=True)
        except psutil.Error:
            family = []
        return own, sum(_cpu(p) for p in family)


def _cpu(p: psutil.Process) -> float:
    try:
        t = p.cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system)


def start_redis(folder: Path, taken: set[int]) -> tuple[Role, str]:
    """``redis-server`` as docs/cluster.md requires it (AOF, everysec), on loopback; its URL once it answers."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SetupError("redis-server not found (Debian package redis-server)")
    port = free_port(taken)
    proc = Role("redis", [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
                          "--appendfsync", "everysec", "--dir", str(folder), "--protected-mode", "no"], folder)
    url = f"redis://127.0.0.1:{port}/0"
    r = redis.Redis.from_url(url, socket_timeout=2)
    deadline = time.monotonic() + 15
    while True:
        try:
            if r.ping():
                break
        except redis.RedisError:
            pass
        if not proc.alive() or time.monotonic() > deadline:
            proc.kill()
            raise SetupError(f"redis-server did not answer on port {port}:\n{proc.tail()}")
        time.sleep(0.05)
    r.close()
    return proc, url


def start_show(folder: Path, url: str, port: int, s: Settings) -> Role:
    sets = [*AUDIENCE_SETS, *server_sets(s.phones), *SHOW_SETS, f"store.output_dir=\"{folder / 'output'}\"",
            f"shaders.dir=\"{ROOT / 'shaders'}\""]
    args = [sys.executable, "-m", "engine", "show", "--headless", "--size", SIZE, "--fps", "10", "--redis", url,
            "--port", str(port), "--log-level", "info"]
    for item in sets:
        args += ["--set", item]
    show = Role("show", args, folder)
    show.ready(rf"cluster: show '{SHOW}' on Redis")
    show.ready(r"audience server on")
    return show


def start_intake(folder: Path, url: str, port: int, s: Settings) -> Role:
    args = [sys.executable, "-m", "engine", "intake", "--redis", url, "--port", str(port), "--log-level", "info"]
    for item in (*AUDIENCE_SETS, *server_sets(s.phones)):
        args += ["--set", item]
    intake = Role(folder.name, args, folder)
    intake.ready(r"intake ready on")
    return intake


# --- CPU by phase -----------------------------------------------------------------------------------------


CPU_COLUMNS = ("show", "show bs", "intake 1", "intake 2", "redis", "clients", "bench", "others")


def cpu_snapshot(show: Role | None, intakes: Sequence[Role], redis_proc: Role, clients: Sequence[LoadClient]
                 ) -> dict[str, float]:
    """CPU seconds so far by column; ``others``: what the rest of the machine used (other tenants, tests)."""
    out: dict[str, float] = {}
    if show is not None:
        out["show"], out["show bs"] = show.cpu()
    for i, intake in enumerate(intakes):
        out[f"intake {i + 1}"] = sum(intake.cpu())
    out["redis"] = sum(redis_proc.cpu())
    out["clients"] = sum(_cpu(psutil.Process(c.proc.pid)) for c in clients if c.proc.poll() is None)
    out["bench"] = _cpu(psutil.Process())
    busy, _total = machine_cpu()
    out["others"] = busy - sum(out.values())
    return out


@dataclass
class Phase:
    name: str
    wall_s: float
    cpu: dict[str, float]  # column → CPU seconds during the phase


# --- one run: k intakes -----------------------------------------------------------------------------------


@dataclass
class Run:
    intakes: int
    ports: list[int] = field(default_factory=list)
    phones: list[int] = field(default_factory=list)  # per client
    offsets: list[tuple[float, float]] = field(default_factory=list)  # per client: (client - bench, round trip) ms
    connected: list[dict[str, Any]] = field(default_factory=list)
    subscribers: int = 0  # the feed channel's, before the pushes
    push_sent: dict[str, tuple[float, int]] = field(default_factory=dict)  # "feed-SEQ" → (sent ms, phones)
    push_receivers: list[int] = field(default_factory=list)  # PUBLISH's answer for each push
    push_lat: dict[str, list[float]] = field(default_factory=dict)  # "feed-SEQ" → ms, offsets taken off
    feeds_per_phone: dict[int, int] = field(default_factory=dict)  # pushes received → phones
    prompts: list[dict[str, Any]] = field(default_factory=list)  # per client, its "prompts" event
    counts: list[dict[str, Any]] = field(default_factory=list)  # per client, its "count" at the end
    redis_after: dict[str, Any] = field(default_factory=dict)
    images: int = 0  # image files the show wrote (its offline generator: no worker runs)
    phases: list[Phase] = field(default_factory=list)
    exits: dict[str, int | None] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)  # role → its log's ERROR and Traceback lines
    error: str | None = None

    # -- derived figures --
    def every_push(self) -> list[float]:
        return [x for lat in self.push_lat.values() for x in lat]

    def prompt_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(send time, s from the first send; time to the first status, ms or -1; state 1 queued, 2 rejected,
        3 other) over every client, send times on the bench's clock."""
        sends, acks, states = [], [], []
        for p, (offset, _rtt) in zip(self.prompts, self.offsets, strict=False):
            if not p:
                continue
            sends.append(float(p.get("t0", 0.0)) - offset + np.asarray(p["sendAt"], dtype=float))
            acks.append(np.asarray(p["ack"], dtype=float))
            states.append(np.asarray(p["state"], dtype=int))
        if not sends:
            return np.zeros(0), np.zeros(0), np.zeros(0, dtype=int)
        send = np.concatenate(sends)
        return (send - send.min()) / 1000, np.concatenate(acks), np.concatenate(states)

    def accepted_per_s(self) -> float:
        send, ack, state = self.prompt_arrays()
        accepted = (ack >= 0) & (state == 1)
        if not accepted.any():
            return 0.0
        span = float((send + ack / 1000)[accepted].max())
        return float(accepted.sum()) / span if span > 0 else float("nan")

    def ack_p99(self) -> float:
        _send, ack, state = self.prompt_arrays()
        return pct(ack[(ack >= 0) & (state == 1)], 99)

    def phones_held(self) -> int:
        return sum(int(c.get("open", 0)) for c in self.connected)


class Bench:
    def __init__(self, s: Settings, node: str, work: Path, redis_proc: Role, url: str, taken: set[int]) -> None:
        self.s, self.node, self.work, self.redis_proc, self.url, self.taken = s, node, work, redis_proc, url, taken
        self.r = redis.Redis.from_url(url, socket_timeout=10)
        self.texts = prompt_texts(max(1, round(s.rate * s.seconds)))
        self.show: Role | None = None
        self.intakes: list[Role] = []
        self.clients: list[LoadClient] = []
        self.node_info: dict[str, Any] = {}
        self.t0 = time.monotonic()

    def say(self, what: str) -> None:
        print(f"  [{time.monotonic() - self.t0:6.1f} s] {what}", flush=True)

    def run(self, k: int) -> Run:
        """k intakes, from an empty Redis and a new show; stops every process of the run before returning."""
        s, run = self.s, Run(k)
        self.r.flushall()
        folder = self.work / f"{k}-intakes"
        try:  # a failed start-up or a Ctrl-C: everything of the run killed at once
            show_port = free_port(self.taken)
            self.say(f"{k} intake(s): show on 127.0.0.1:{show_port}")
            self.show = start_show(folder / "show", self.url, show_port, s)
            for i in range(k):
                port = free_port(self.taken)
                run.ports.append(port)
                self.say(f"intake {i + 1} on 127.0.0.1:{port}")
                self.intakes.append(start_intake(folder / f"intake-{i + 1}", self.url, port, s))
            run.phones = split(s.phones, k)
            for i in range(k):
                self.clients.append(LoadClient(self.node, group=f"load client {i + 1}"))
            self.node_info = self.clients[0].info
            run.offsets = [c.clock_offset() for c in self.clients]
            try:
                self._measure(run)
            except (ClientError, redis.RedisError) as err:
                run.error = f"{type(err).__name__}: {err}"
                self.say(f"the run stopped early: {run.error}")
        except BaseException:
            self.close()
            raise
        self._stop(run)  # in order, each given its time
        return run

    def _snapshot(self) -> dict[str, float]:
        return cpu_snapshot(self.show, self.intakes, self.redis_proc, self.clients)

    def _phase_end(self, run: Run, name: str, start: float, cpu0: dict[str, float]) -> tuple[float, dict[str, float]]:
        now, cpu1 = time.monotonic(), self._snapshot()
        run.phases.append(Phase(name, now - start, {c: cpu1.get(c, 0.0) - cpu0.get(c, 0.0) for c in cpu1}))
        return now, cpu1

    def _measure(self, run: Run) -> None:
        s = self.s
        # connect: each client its phones to its own intake, the address ranges one after the other
        self.say(f"connect: {s.phones} phones over {run.intakes} intake(s)")
        start, cpu0 = time.monotonic(), self._snapshot()
        first = FIRST_ADDRESS
        for client, port, n in zip(self.clients, run.ports, run.phones, strict=True):
            client.send({"cmd": "connect", "url": f"ws://127.0.0.1:{port}/ws", "n": n, "perIp": 1,
                         "firstAddress": first, "concurrency": CONNECT_CONCURRENCY, "handshakeMs": 20000,
                         "deadlineMs": 30000 + 20 * n})
            first += n
        run.connected = [c.expect("connected", 60 + 0.03 * n) for c, n in zip(self.clients, run.phones, strict=True)]
        for c in self.clients:
            c.request({"cmd": "pings"}, "pings", 10)
        self.say(f"connected: {run.phones_held()} of {s.phones}")
        start, cpu0 = self._phase_end(run, "connect", start, cpu0)

        # push to all: the feed channel, as the show publishes a prompt going on screen
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            run.subscribers = int(dict(self.r.pubsub_numsub(KEYS.feed)).get(KEYS.feed.encode(), 0))
            if run.subscribers >= run.intakes:
                break
            time.sleep(0.1)
        self.say(f"push: {s.pushes} feed lines, {PUSH_EVERY_S:g} s apart ({run.subscribers} subscriber(s))")
        start, cpu0 = time.monotonic(), self._snapshot()
        held = run.phones_held()
        for seq in range(s.pushes):
            sent = time.time() * 1000
            run.push_receivers.append(int(self.r.publish(KEYS.feed, f"bench-push {seq} {sent:.3f}".encode())))
            run.push_sent[f"feed-{seq}"] = (sent, held)
            time.sleep(PUSH_EVERY_S)
        time.sleep(1.0)  # stragglers
        for c, (offset, _rtt) in zip(self.clients, run.offsets, strict=True):
            got = c.request({"cmd": "pushes"}, "pushes", 30)
            for pid, lat in got["lat"].items():
                if pid.startswith("feed-"):
                    run.push_lat.setdefault(pid, []).extend(x - offset for x in lat)
            for n_pushes, phones in got.get("feedsPerPhone", {}).items():
                run.feeds_per_phone[int(n_pushes)] = run.feeds_per_phone.get(int(n_pushes), 0) + int(phones)
        start, cpu0 = self._phase_end(run, "push", start, cpu0)

        # prompts: open loop, split over the clients by their phones
        self.say(f"prompts: {s.rate:g}/s for {s.seconds:g} s")
        texts = iter(self.texts)
        for c, n in zip(self.clients, run.phones, strict=True):
            share = n / s.phones
            count = max(1, round(s.rate * share * s.seconds))
            mine = [t for _, t in zip(range(count), texts, strict=False)] or self.texts[:1]
            c.send({"cmd": "prompts", "count": count, "rate": s.rate * share, "cycle": True,
                    "maxOutstanding": max(1, round(s.outstanding * share)), "windowMs": s.seconds * 1000,
                    "graceMs": s.grace_s * 1000, "texts": mine})
        run.prompts = [c.expect("prompts", s.seconds + s.grace_s + 30) for c in self.clients]
        self._phase_end(run, "prompts", start, cpu0)
        self.say(f"accepted: {run.accepted_per_s():.0f}/s")

        run.counts = [c.request({"cmd": "count"}, "count", 10) for c in self.clients]
        run.redis_after = self._redis_state()

    def _redis_state(self) -> dict[str, Any]:
        """The streams after the prompts: entries, and those the show has not acknowledged; the jobs handed out."""
        out: dict[str, Any] = {}
        for name, key, group in (("prompts", KEYS.prompts, PROMPTS_GROUP), ("jobs", KEYS.jobs, JOBS_GROUP)):
            try:
                out[f"{name} entries"] = int(self.r.xlen(key))
                out[f"{name} pending"] = int(self.r.xpending(key, group)["pending"])
            except redis.RedisError as err:
                out[f"{name} error"] = str(err).splitlines()[0][:120]
        return out

    def _stop(self, run: Run) -> None:
        """The clients (phones closed), then the intakes, then the show; each given its time, then killed."""
        for c in self.clients:
            with contextlib.suppress(Exception):
                c.request({"cmd": "close", "deadlineMs": 5000}, "closed", 15)
            c.close()
        self.clients = []
        roles = [(f"intake {i + 1}", intake) for i, intake in enumerate(self.intakes)]
        if self.show is not None:
            roles.append(("show", self.show))
        for name, role in roles:
            run.exits[name] = role.stop()
            run.problems[name] = role.problems()
        self.intakes, self.show = [], None
        output = self.work / f"{run.intakes}-intakes" / "show" / "output"
        run.images = sum(1 for f in output.rglob("*") if f.suffix in (".png", ".jpg", ".jpeg", ".webp"))

    def close(self) -> None:
        """Whatever is still running, killed (a run cut short); again is harmless."""
        for c in self.clients:
            c.close()
        for p in [*self.intakes, *([self.show] if self.show else [])]:
            p.kill()
        self.clients, self.intakes, self.show = [], [], None


# --- report -----------------------------------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b and a == a and b == b else "-"


def report_run(s: Settings, run: Run) -> None:
    print()
    print(f"{run.intakes} intake(s): {s.phones} phones split {run.phones} (ports {run.ports})")
    for i, (offset, rtt) in enumerate(run.offsets):
        print(f"  clock: client {i + 1} - bench = {offset:+.3f} ms (pipe round trip {rtt:.3f} ms), taken off")
    if run.error:
        print(f"  NOTE: the run stopped early ({run.error}); the figures below cover what ran")
    for i, c in enumerate(run.connected):
        fails = f"; failed: {json.dumps(c['failures'])}" if c.get("failures") else ""
        print(f"  client {i + 1}: {c.get('open')} of {run.phones[i]} phones held, opened in "
              f"{float(c.get('ms', 0)) / 1000:.1f} s{fails}")
    print()
    row(f"push to all ({len(run.push_sent)} feed lines)", ["p50", "p99", "max", "  arrived"],
        f"(ms, arrival - send; PUBLISH reached {run.push_receivers} subscriber(s))")
    every = push_rows(run.push_sent, run.push_lat, 0.0)
    row("all pushes", [pct(every, 50), pct(every, 99), worst(every)])
    full = run.feeds_per_phone.get(len(run.push_sent), 0)
    spread = json.dumps({str(k): v for k, v in sorted(run.feeds_per_phone.items(), reverse=True)})
    row("phones that got every push", [full], f"of {sum(run.feeds_per_phone.values())} open (pushes: phones "
        f"{spread})")
    report_prompts(s, run)
    if run.redis_after:
        print(f"  Redis after the prompts: {json.dumps(run.redis_after)}")
        print("    (prompts: the stream's entries, and those the show has not acknowledged; jobs: handed to workers)")
    print(f"  images the show made: {run.images} (its offline generator, {SIZE_GENERATED}: no worker runs; "
          "show.hold=3600 keeps the pipeline from asking for more)")
    report_cpu(run)
    if run.exits:
        print(f"  exit codes after SIGTERM: {json.dumps(run.exits)}")
    for name, lines in run.problems.items():
        if lines:
            print(f"  {name} logged {len(lines)} ERROR/Traceback line(s), the first: {lines[0][:200]}")


def report_prompts(s: Settings, run: Run) -> None:
    print()
    offered = f"{s.rate:g}/s offered for {s.seconds:g} s, at most {s.outstanding} unanswered"
    row(f"prompts ({offered})", ["value"])
    if not any(run.prompts):
        row("no prompt results", [], "the run stopped before this phase")
        return
    send, ack, state = run.prompt_arrays()
    answered = ack >= 0
    accepted = answered & (state == 1)
    planned = sum(int(p.get("planned", 0)) for p in run.prompts)
    sent = sum(int(p.get("sent", 0)) for p in run.prompts)
    reasons: dict[str, int] = {}
    for p in run.prompts:
        for why, n in p.get("reasons", {}).items():
            reasons[why] = reasons.get(why, 0) + int(n)
    row("planned / sent / answered", [f"{planned}/{sent}/{int(answered.sum())}"],
        f"{int((~answered).sum())} unanswered at the end")
    row("accepted (queued)", [int(accepted.sum())], f"not accepted: {json.dumps(reasons) if reasons else 'none'}")
    row("accepted per second", [run.accepted_per_s()], "(first send to last acceptance)")
    lat = ack[accepted]
    row("send -> queued status (ms)", ["p50", "p99", "max"])
    row("", [pct(lat, 50), pct(lat, 99), worst(lat)])
    if not accepted.any():
        return
    # Per second: whether the line keeps up as it grows (nothing leaves it: no worker runs).
    at = send + np.where(answered, ack, 0) / 1000
    row("  second of the phase", ["sent", "accepted", "p99 ms"], "(sent that second; accepted that second; "
        "p99 send -> queued of those sent that second)")
    for sec in range(int(np.ceil(max(at[accepted].max(), send.max())))):
        sent_then = (send >= sec) & (send < sec + 1)
        lat_then = ack[sent_then & accepted]
        row(f"  {sec}-{sec + 1} s", [int(sent_then.sum()), int((accepted & (at >= sec) & (at < sec + 1)).sum()),
                                     pct(lat_then, 99) if lat_then.size else "-"])


def report_cpu(run: Run) -> None:
    print()
    columns = [c for c in CPU_COLUMNS if any(c in p.cpu for p in run.phases)]
    cores = os.cpu_count() or 1
    row("CPU seconds by phase", ["wall s", *columns, f"% of {cores}"], width=9)
    busy: list[str] = []
    for p in run.phases:
        used = sum(v for c, v in p.cpu.items())
        row(f"  {p.name}", [p.wall_s, *[p.cpu.get(c, 0.0) for c in columns], 100 * used / (cores * p.wall_s)],
            width=9)
        if 100 * p.cpu.get("others", 0.0) / p.wall_s > OTHERS_LIMIT:
            busy.append(p.name)
    print(f"    show bs = the show's backstage process (server, ledger, Redis link); others = every other process on "
          f"the machine; % of {cores} = all of it over every core")
    if busy:
        print(f"    NOTE: other processes took more than {OTHERS_LIMIT:g}% of a core during: {', '.join(busy)}; "
              "those figures moved with them")


def report_summary(s: Settings, runs: Sequence[Run]) -> None:
    print()
    print(f"Summary: {s.phones} phones, {s.rate:g} prompts/s offered, {s.pushes} pushes to all")
    head = ["accepted/s", "prompt p99", "push p50", "push p99", "phones", "all pushes"]
    row("", head, width=12)
    figures: list[tuple[float, float, float, float]] = []
    for run in runs:
        every = run.every_push()
        f = (run.accepted_per_s(), run.ack_p99(), pct(every, 50), pct(every, 99))
        figures.append(f)
        row(f"{run.intakes} intake(s)", [*f, run.phones_held(), run.feeds_per_phone.get(len(run.push_sent), 0)],
            width=12)
    if len(figures) == 2:
        a, b = figures
        row(f"{runs[1].intakes}/{runs[0].intakes} ratio", [ratio(y, x) for x, y in zip(a, b, strict=True)], width=12)
    print("  (ms for the p50/p99 columns; phones: held; all pushes: phones that got every push)")
    print(f"  On {os.cpu_count()} cores every process shares the same cores: this is the shape of the scaling, not its "
          "ceiling.")
    print("  The paper arithmetic for 80,000 phones over 8 intakes and 4 screens: docs/cluster.md.")


def print_header(s: Settings, node_info: dict[str, Any], url: str) -> None:
    print()
    print("Stagecraft cluster benchmark: phones over 1 and then 2 intakes, one show, one Redis, on loopback")
    print(f"  {os.cpu_count()} CPUs | Python {platform.python_version()} | redis-py {redis.__version__} | "
          f"node {node_info.get('node')} + ws {node_info.get('ws')} | Redis {url}")
    print(f"  show: python -m engine show --headless --size {SIZE} --fps 10, {', '.join(AUDIENCE_SETS)}, "
          f"{', '.join(SHOW_SETS)}; no generate worker")
    print(f"  each run: a new show (new journal) on an emptied Redis (FLUSHALL); {s.phones} phones, one source "
          f"address each, pinging like the page")


# --- entry point ------------------------------------------------------------------------------------------


def run(s: Settings) -> None:
    node = ensure_client()
    wait_for_quiet(20 if s.quick else 60)
    work = Path(tempfile.mkdtemp(prefix="stagecraft-bench-cluster-"))
    taken: set[int] = set()
    redis_proc: Role | None = None
    bench: Bench | None = None
    runs: list[Run] = []
    url = ""
    try:
        redis_proc, url = start_redis(work / "redis", taken)
        bench = Bench(s, node, work, redis_proc, url, taken)
        bench.say(f"redis-server on {url}")
        for k in s.intakes:
            runs.append(bench.run(k))
    finally:
        if bench is not None:
            bench.close()
            bench.r.close()
        if redis_proc is not None:
            redis_proc.stop()
        if s.keep:
            print(f"  logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    assert bench is not None
    print_header(s, bench.node_info, url)
    for r in runs:
        report_run(s, r)
    report_summary(s, runs)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    return run_to_the_end(lambda: run(settings), "cluster", "clients, intakes, show and Redis stopped")


if __name__ == "__main__":
    sys.exit(main())
