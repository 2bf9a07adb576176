"""Audience load benchmark: thousands of phones against the engine's audience server, while the show renders.

One run, on this machine, traffic on loopback only:

1. connections: a Node ``ws`` load client (``bench/load/client.js``, its own process) opens
   ``--connections`` WebSockets (default 10,000), each phone from its own source address
   (127.0.x.y, so the per-address cap stays the engine's default) and pinging like the real page;
   reported: the most held at once (target: all of them);
2. push: the engine side calls ``AudienceServer.broadcast_all`` on the backstage loop (through
   ``Backstage.call``) with a status message stamped with its send time; every phone notes the
   arrival; p50/p99/max of arrival - send over several pushes (target p99 < 250 ms);
2b. the push baseline (skip it with ``--no-relay``): once the engine's phones have left, a Node ``ws``
   relay (``bench/load/relay.js``, its own process, 127.0.0.1 on a port below 32768: the seed's
   stack) takes the same phones from the same load client (same count, same source
   addresses, same pings), and gets the same pushes: the same status message, stamped by the bench
   as it asks, the same number, the same spacing, each one written to every phone in one loop
   before the next (the engine's ``broadcast_all``; the relay's loop of ``ws.send`` over one encoded
   buffer), timed by the same client against its clock offset measured again, the same way, just
   before. All along the show renders exactly as during the engine's pushes (the same ``ShowLoop``,
   main thread, pacer; the engine's backstage idles with no phones; its frames are rows of 4, with no
   target). Reported: both p50/p99 and their ratio, engine / relay (target: push p99 <= 1.0x the
   relay's);
3. prompts: phones send prompts at 1,000/s (open loop, at most ``MAX_OUTSTANDING`` unanswered);
   the audience is configured to accept them (no cooldown, a queue of 100,000); reported: accepted
   per second and the p99 time from send to the first ``status`` (target 1,000/s, p99 < 100 ms);
4. the show: all along, a real ``ShowLoop`` renders on the main thread of the engine process,
   wired as ``engine.app.run`` wires it (backstage thread started, shader watcher, then
   ``gc.collect(); gc.freeze()``, then a headless EGL context, 640x360, paced at 60 fps by
   ``FramePacer``; crossfade + glow with images present). Per frame: wall time of the frame +
   ``ctx.finish()`` and how late it started against the pacer's schedule. The same loop with no
   connections, measured first in the same run, is the baseline (target: p99 loaded/idle < 1.25x).

The pipeline must not spend the CPU on images: the backstage reads a state board of its own on
which the bench has published ``ShowSnapshot(queue_len=99)``, so its workers wait for the show's
backlog to drain, which never happens (the real show publishes on a separate board). The journal
is real (a temporary folder, deleted at the end), so every accepted prompt is written to SQLite
before the phone hears "queued", as in a show.

Arrival times come from the client's clock; its offset from the engine's clock is measured over
the stdin/stdout pipe before the run (the figure is printed). Everything stops by itself: every
wait has a deadline, the client and the relay exit when their stdin closes, and both children are
killed on the way out whatever happened (Ctrl-C included). Missed targets are reported, never asserted: exit 0.

The machine is shared: the CPU table has a column for every other process, and the run says when
they took cores during a phase, since the show's frame times then move with them.

Placement: ``--backstage process`` (the default, as the engine's ``server.backstage``) runs the
backstage in a process of its own through the engine's own bridge; ``--backstage thread`` keeps it
in the show's process. Experiments (not the engine's settings; the header says when one is used):
``--pin`` renders on CPU 0 with llvmpipe on one thread and puts the backstage process and the load client
on CPU 1, modelling a show whose rendering does not share the crowd's cores (as with a GPU);
``--gc off`` disables the cyclic GC after start-up; ``--gc-threshold A,B,C`` sets the collector's
thresholds (``700,10,1000000000``: young collections only, never an automatic full one);
``--switch-interval S`` sets the GIL switch interval of the show's process.

Run from the repository root: ``.venv/bin/python bench/audience.py`` (``--quick`` for a smoke run,
``--connections N``, ``--no-relay`` to skip the Node relay baseline). It installs the load client's
one dependency (``ws``, which the relay uses too) with npm into ``bench/load/node_modules`` the
first time.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import queue
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import websockets

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.backstage import Backstage  # noqa: E402
from engine.backstage.process import BackstageProcess  # noqa: E402
from engine.config import Config, with_overrides  # noqa: E402
from engine.contract import Inbox, ShowImage, ShowSnapshot, StateBoard  # noqa: E402
from engine.net import protocol  # noqa: E402
from engine.net.audience import Audience, Prompt  # noqa: E402
from engine.net.moderation import Moderator  # noqa: E402
from engine.net.server import FILES_IN_RESERVE, raise_open_files  # noqa: E402
from engine.pacing import FramePacer  # noqa: E402
from engine.render.gl import standalone_context  # noqa: E402
from engine.render.show_loop import ShowLoop  # noqa: E402
from engine.shaders.watch import ShaderWatcher  # noqa: E402
from engine.store import Journal  # noqa: E402

LOAD_DIR = ROOT / "bench" / "load"
CLIENT_JS = LOAD_DIR / "client.js"
RELAY_JS = LOAD_DIR / "relay.js"  # the same-run baseline: a Node ws relay
JOIN_URL = "http://192.168.1.20:3000"
SIZE = (640, 360)
FPS = 60.0
PERIOD_MS = 1000.0 / FPS
IMAGE_SIDE = 1024  # the images crossfaded on screen (a typical generated image)
TRANSITION_S = 30.0  # transitions back to back (hold 0), so a crossfade is always drawn
PORT_RANGE = (20000, 32000)  # below the ephemeral range (32768+) that the phones' sockets use
CONNECT_CONCURRENCY = 64  # handshakes in flight (asyncio's listen backlog is 100)
MAX_OUTSTANDING = 500  # prompts sent and not yet answered, at most (keeps a slow engine's backlog bounded)
PROMPT_RATE = 1000.0
OTHERS_LIMIT = 25.0  # % of one core used by other processes above which a phase's figures are suspect

TARGET_PUSH_P99_MS = 250.0
TARGET_PUSH_RATIO = 1.0  # engine push p99 / the Node ws relay's, same run, same phones, same show
TARGET_ACCEPTED_PER_S = 1000.0
TARGET_ACK_P99_MS = 100.0
TARGET_FRAME_RATIO = 1.25

ADJECTIVES = ("neon", "glowing", "crystal", "velvet", "golden", "frozen", "electric", "misty", "cosmic",
              "paper", "liquid", "ancient", "tiny", "giant", "silver", "rainbow", "quiet", "stormy")
SUBJECTS = ("whale", "fox", "lighthouse", "forest", "city", "dragon", "garden", "robot", "owl", "ship",
            "mountain", "jellyfish", "castle", "tiger", "balloon", "train", "river", "moon")
PLACES = ("over the city", "under the sea", "in the clouds", "on a frozen lake", "in a desert at dusk",
          "among the stars", "in a rainy street", "on a mountain top", "in a field of flowers")
STYLES = ("watercolor", "synthwave", "oil painting", "pixel art", "ink drawing", "stained glass", "photograph")


# --- settings ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    connections: int
    per_ip: int
    idle_s: float
    pushes: int
    push_every_s: float
    prompt_count: int
    prompt_window_s: float
    prompt_grace_s: float
    quick: bool
    gc_mode: str
    gc_threshold: tuple[int, int, int] | None
    switch_interval: float | None
    placement: str
    pin: bool = False
    relay: bool = True  # the Node ws relay baseline (phase 2b)


def parse_args(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smoke run (~30 s): 2,000 phones, short phases")
    parser.add_argument("--connections", type=int, default=None, help="phones to connect (default 10000; 2000 quick)")
    parser.add_argument("--per-ip", type=int, default=1, help="phones per source address")
    parser.add_argument("--idle", type=float, default=None, help="seconds of idle baseline (default 15; 5 quick)")
    parser.add_argument("--pushes", type=int, default=None, help="pushes to all phones (default 10; 4 quick)")
    parser.add_argument("--prompt-seconds", type=float, default=None,
                        help="seconds of prompts at 1,000/s (default 8; 2 quick)")
    # Experiments only: these are not what the engine does. The header says so when one is used.
    parser.add_argument("--gc", choices=("engine", "off"), default="engine",
                        help="experiment: 'off' disables the cyclic GC after start-up (the engine does not)")
    parser.add_argument("--gc-threshold", default=None, help="experiment: gc.set_threshold(A,B,C) after start-up")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="experiment: sys.setswitchinterval(SECONDS) for the show's process")
    parser.add_argument("--backstage", choices=("thread", "process"), default="process",
                        help="'process' (the engine's default, server.backstage) or 'thread' (server.backstage = "
                             "\"thread\": the backstage shares the show's process)")
    parser.add_argument("--pin", action="store_true",
                        help="experiment: the show renders on CPU 0 (llvmpipe on one thread), the backstage process "
                             "and the load client run on CPU 1: a show whose rendering does not share the crowd's "
                             "cores, as with a GPU")
    parser.add_argument("--no-relay", dest="relay", action="store_false",
                        help="skip the same-run baseline: the same phones and pushes against a Node ws relay")
    args = parser.parse_args(argv)
    if args.pin and (not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2):
        parser.error("--pin needs Linux and at least 2 CPUs")
    quick = args.quick
    connections = args.connections if args.connections is not None else (2000 if quick else 10000)
    idle_s = args.idle if args.idle is not None else (5.0 if quick else 15.0)
    pushes = args.pushes if args.pushes is not None else (4 if quick else 10)
    window = args.prompt_seconds if args.prompt_seconds is not None else (2.0 if quick else 8.0)
    threshold = None
    if args.gc_threshold:
        try:
            a, b, c = (int(x) for x in args.gc_threshold.split(","))
        except ValueError:
            parser.error("--gc-threshold wants three integers: A,B,C")
        threshold = (a, b, c)
    if connections < 1 or args.per_ip < 1 or idle_s <= 0 or pushes < 1 or window <= 0:
        parser.error("need connections >= 1, per-ip >= 1, idle > 0, pushes >= 1, prompt-seconds > 0")
    return Settings(
        connections=connections, per_ip=args.per_ip, idle_s=idle_s, pushes=pushes, push_every_s=1.0,
        prompt_count=min(connections, int(PROMPT_RATE * window)), prompt_window_s=window,
        prompt_grace_s=5.0 if quick else 8.0, quick=quick, gc_mode=args.gc, gc_threshold=threshold,
        switch_interval=args.switch_interval, placement=args.backstage, pin=args.pin, relay=args.relay,
    )


def bench_config(settings: Settings, port: int, output_dir: Path) -> Config:
    overrides: dict[str, object] = {
        "server.host": "127.0.0.1",
        "server.port": port,
        "server.max_connections": max(12000, settings.connections + 2000),
        # One phone per source address by default, so the engine's per-address cap (16) stays as it is.
        "server.max_connections_per_ip": max(16, settings.per_ip),
        # Prompts are accepted: no cooldown, a queue long enough for every one, and no per-phone cap that bites.
        "audience.cooldown": 0.0,
        "audience.burst": 50,
        "audience.max_queue": 100000,
        "audience.max_pending_per_client": 100,
        "generation.backend": "procedural",
        "generation.in_flight": 1,
        "demo.interval": 0.0,
        "store.output_dir": str(output_dir),
        "shaders.dir": str(ROOT / "shaders"),
        "shaders.effects": ["glow"],
        "shaders.transition": "crossfade",
        "show.transition": TRANSITION_S,
        "show.hold": 0.0,
        "window.width": SIZE[0],
        "window.height": SIZE[1],
        "render.max_image_size": 2048,
    }
    return with_overrides(Config(), overrides)


# --- set-up ---------------------------------------------------------------------------------------


class SetupError(Exception):
    """The benchmark cannot run here (no node, npm failed, no GL)."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 below the ephemeral range."""
    ports = list(range(*PORT_RANGE))
    random.Random().shuffle(ports)
    for port in ports[:200]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SetupError(f"no free port in {PORT_RANGE}")


def ensure_client() -> str:
    """The node binary, with the load client's dependency installed; prints what it installs."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None:
        raise SetupError("node not found: the load client needs Node.js 18 or newer")
    if not (LOAD_DIR / "node_modules" / "ws" / "package.json").is_file():
        if npm is None:
            raise SetupError("npm not found: cannot install the load client's dependency (ws)")
        print(f"installing the load client's dependency (ws, see {LOAD_DIR.relative_to(ROOT)}/package.json): "
              f"npm install --no-audit --no-fund in {LOAD_DIR.relative_to(ROOT)}", flush=True)
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=LOAD_DIR, capture_output=True,
                              text=True, timeout=300, check=False)
        if done.returncode != 0 or not (LOAD_DIR / "node_modules" / "ws" / "package.json").is_file():
            raise SetupError(f"npm install failed ({done.returncode}): {done.stderr.strip()[-800:]}")
        print("  " + (done.stdout.strip().splitlines() or ["installed"])[-1], flush=True)
    return node


def prompt_texts(n: int) -> list[str]:
    """Distinct, harmless prompts of a typical length; any the blocklist would refuse are left out."""
    rng = random.Random(7)
    moderator = Moderator.from_files()
    texts: list[str] = []
    seen: set[str] = set()
    while len(texts) < n:
        text = f"a {rng.choice(ADJECTIVES)} {rng.choice(SUBJECTS)} {rng.choice(PLACES)}, {rng.choice(STYLES)}"
        if text not in seen and moderator.check(text).allowed:
            seen.add(text)
            texts.append(text)
    return texts


def make_image(side: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(side, side, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    return pixels


# --- measuring ------------------------------------------------------------------------------------


class Phases:
    """The run's phases in order; the render loop tags each frame with the current one."""

    def __init__(self) -> None:
        self.names: list[str] = ["start-up"]
        self.starts: list[float] = [time.perf_counter()]
        self.cpu: list[dict[str, float]] = [cpu_snapshot()]
        self.current = 0
        self.t0 = self.starts[0]

    def enter(self, name: str) -> None:
        self.names.append(name)
        self.starts.append(time.perf_counter())
        self.cpu.append(cpu_snapshot())
        self.current = len(self.names) - 1
        print(f"  [{self.starts[-1] - self.t0:6.1f} s] {name}", flush=True)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def span(self, i: int) -> tuple[float, float]:
        end = self.starts[i + 1] if i + 1 < len(self.starts) else time.perf_counter()
        return self.starts[i], end


@dataclass
class FrameLog:
    phase: array[int] = field(default_factory=lambda: array("b"))
    start: array[float] = field(default_factory=lambda: array("d"))
    wall_ms: array[float] = field(default_factory=lambda: array("d"))
    delay_ms: array[float] = field(default_factory=lambda: array("d"))
    cpu_ms: array[float] = field(default_factory=lambda: array("d"))

    def of(self, phase: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        mask = np.frombuffer(self.phase, dtype=np.int8) == phase
        return (np.frombuffer(self.start)[mask], np.frombuffer(self.wall_ms)[mask],
                np.frombuffer(self.delay_ms)[mask], np.frombuffer(self.cpu_ms)[mask])


class GcLog:
    """Every collection's start, duration, generation and thread, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.events: list[tuple[float, float, int, int]] = []  # start, ms, generation, native thread id
        self._started: dict[int, float] = {}

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        tid = threading.get_native_id()
        if phase == "start":
            self._started[tid] = time.perf_counter()
        else:
            t0 = self._started.pop(tid, None)
            if t0 is not None:
                self.events.append((t0, (time.perf_counter() - t0) * 1000, info["generation"], tid))


def _thread_times() -> dict[int, tuple[str, float]]:
    """tid → (comm, CPU seconds) for every thread of this process."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[str, float]] = {}
    base = Path("/proc/self/task")
    for task in base.iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            stat = (task / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        out[int(task.name)] = (comm, (int(fields[11]) + int(fields[12])) / tick)
    return out


CHILDREN: dict[str, int] = {}  # CPU group → pid of a child process
EXITED: dict[str, float] = {}  # CPU group → CPU seconds of a child process that has been stopped


def _self_cpu() -> float:
    return _proc_cpu(os.getpid())


def _proc_cpu(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> float:
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(parts) - parts[3] - parts[4]) / os.sysconf("SC_CLK_TCK")


def others_load(seconds: float = 1.0) -> float:
    """Percent of one core that other processes (not this one, not its children) used over ``seconds``."""
    def sample() -> tuple[float, float]:
        return _machine_busy(), _self_cpu() + sum(_proc_cpu(pid) for pid in CHILDREN.values())

    busy0, ours0 = sample()
    time.sleep(seconds)
    busy1, ours1 = sample()
    return 100 * ((busy1 - busy0) - (ours1 - ours0)) / seconds


def wait_for_quiet(limit_s: float) -> float:
    """Wait (up to ``limit_s``) until other processes leave the cores alone; their last load, % of a core."""
    load = others_load()
    if load <= OTHERS_LIMIT:
        return load
    print(f"  other processes use {load:.0f}% of a core: waiting up to {limit_s:g} s for the machine to quiet down",
          flush=True)
    deadline = time.monotonic() + limit_s
    while load > OTHERS_LIMIT and time.monotonic() < deadline:
        load = others_load()
    print(f"  other processes now use {load:.0f}% of a core; going ahead", flush=True)
    return load


def cpu_snapshot() -> dict[str, float]:
    """CPU seconds so far by group: render thread, backstage, GL workers, other threads, children, others."""
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    main_id = threading.main_thread().native_id
    groups: dict[str, float] = {}
    for tid, (comm, seconds) in _thread_times().items():
        name = names.get(tid, comm)
        if tid == main_id:
            group = "render (main thread)"
        elif name == "backstage":
            group = "backstage loop"
        elif name.startswith("backstage-worker") or name.startswith("asyncio"):
            group = "backstage workers"
        elif name.startswith("bench-"):
            group = "bench harness"
        elif comm.startswith("llvmpipe") or comm.startswith("gallium"):
            group = "GL (llvmpipe)"
        else:
            group = "other engine threads"
        groups[group] = groups.get(group, 0.0) + seconds
    ours = _self_cpu()
    for name, pid in CHILDREN.items():
        groups[name] = _proc_cpu(pid)
        ours += groups[name]
    for name, seconds in EXITED.items():  # gone, but its CPU stays counted (ours, not other processes')
        groups[name] = seconds
        ours += seconds
    # Whatever else ran on the machine meanwhile (other tenants, tests): it takes cores from the show too.
    groups["other processes"] = _machine_busy() - ours
    return groups


# --- the load client ------------------------------------------------------------------------------


class ClientError(Exception):
    """The load client died, said something unexpected, or did not answer in time."""


class LoadClient:
    """A Node process spoken to in JSON lines (the load client, or with ``script=RELAY_JS`` the relay);
    events come through a reader thread into a queue. ``started`` gets it as soon as the process exists,
    before it is ready, so whoever holds that list can stop it at any moment."""

    def __init__(self, node: str, cpus: set[int] | None = None, script: Path = CLIENT_JS,
                 args: Sequence[str] = (), group: str = "load client (node)",
                 started: list[LoadClient] | None = None) -> None:
        self.node, self.cpus, self.group = node, cpus, group
        self.proc = subprocess.Popen(
            [node, str(script), *args], cwd=LOAD_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, bufsize=1,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        if started is not None:
            started.append(self)
        CHILDREN[group] = self.proc.pid
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, name="bench-reader", daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_err, name="bench-stderr", daemon=True)
        self._err_reader.start()
        try:
            self.info = self.expect("ready", 20)
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                self.events.put(json.loads(line))
        self.events.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())

    def send(self, cmd: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as err:
            raise ClientError(f"the load client is gone ({err}); stderr: {self.stderr[-5:]}") from err

    def expect(self, ev: str, timeout: float, on_other: Callable[[dict[str, Any]], None] | None = None
               ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ClientError(f"no {ev!r} from the {self.group} within {timeout:g} s")
            try:
                event = self.events.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if event is None:
                raise ClientError(f"the {self.group} exited ({self.proc.poll()}); stderr: {self.stderr[-5:]}")
            if event.get("ev") == ev:
                return event
            if event.get("ev") == "error":
                raise ClientError(f"{self.group}: {event.get('message')}")
            if on_other is not None:
                on_other(event)

    def request(self, cmd: dict[str, Any], ev: str, timeout: float) -> dict[str, Any]:
        self.send(cmd)
        return self.expect(ev, timeout)

    def clock_offset(self, rounds: int = 30) -> tuple[float, float]:
        """(client clock - engine clock, round trip) in ms, from the fastest of ``rounds`` exchanges."""
        best: tuple[float, float] | None = None
        for _ in range(rounds):
            t = time.time() * 1000
            reply = self.request({"cmd": "clock", "t": t}, "clock", 5)
            t2 = time.time() * 1000
            rtt = t2 - t
            offset = float(reply["node"]) - (t + t2) / 2
            if best is None or rtt < best[1]:
                best = (offset, rtt)
        assert best is not None
        return best

    def close(self) -> None:
        """Close stdin (the client exits on that), then terminate, then kill; never leaves it running."""
        if CHILDREN.get(self.group) == self.proc.pid:  # its CPU, read while it still exists
            EXITED[self.group] = _proc_cpu(self.proc.pid)
            CHILDREN.pop(self.group, None)
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)


# --- where the backstage runs ---------------------------------------------------------------------------


PushTiming = tuple[float, float]  # (ms from the request to broadcast_all starting on the loop, ms inside it)


def broadcast_timed(backstage: Backstage, message: str, sent_ms: float, timings: list[PushTiming],
                    done: threading.Event) -> None:
    """Ask the backstage loop to push ``message`` to every phone; ``done`` is set once broadcast_all returned."""
    server = backstage.server
    assert server is not None

    def on_loop() -> None:
        start = time.time() * 1000
        t0 = time.perf_counter()
        try:
            server.broadcast_all(message)
        finally:
            timings.append((start - sent_ms, (time.perf_counter() - t0) * 1000))
            done.set()

    backstage.call(on_loop)


class ThreadBackstage:
    """The engine's placement: ``Backstage`` as a thread of the show's process (``engine.app.run``)."""

    label = "backstage thread in the show's process, as engine.app.run with server.backstage = \"thread\""

    def __init__(self, cfg: Config, inbox: Inbox, output_dir: Path) -> None:
        # The pipeline reads its own board, on which the show's backlog never drains: it never generates.
        board = StateBoard()
        board.publish(ShowSnapshot(queue_len=99, size=SIZE))
        self.journal = Journal.open(output_dir)
        self.backstage = Backstage(cfg, inbox, board, JOIN_URL, journal=self.journal)
        self.timings: list[PushTiming] = []
        self.gc_events: list[tuple[float, float, int, int]] = []

    def start(self) -> None:
        self.backstage.start()

    def connections(self) -> int:
        server = self.backstage.server
        return server.connections if server is not None else 0

    def push(self, message: str, sent_ms: float, timeout: float) -> bool:
        done = threading.Event()
        broadcast_timed(self.backstage, message, sent_ms, self.timings, done)
        return done.wait(timeout)

    def stop(self) -> None:
        self.backstage.stop()
        self.journal.close()


PROBE: dict[str, Any] = {}  # in the backstage process: what the bench's probe keeps between questions


SHOW_CPUS, CROWD_CPUS = {0}, {1}  # --pin


def pin_threads(cpus: set[int]) -> None:
    """Every thread of this process onto ``cpus`` (threads made later inherit it)."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), cpus)


def bench_probe(backstage: Backstage, question: tuple[Any, ...]) -> Any:
    """The bench's questions to the engine's backstage process (``BackstageProcess.ask``), answered there."""
    kind = question[0]
    if kind == "setup":
        settings: Settings = question[1]
        apply_gc_experiment(settings, switch_interval=False)
        PROBE["timings"] = []
        PROBE["gc"] = GcLog()
        if settings.pin:
            pin_threads(CROWD_CPUS)
        gc.callbacks.append(PROBE["gc"])
        return os.getpid()
    if kind == "connections":
        server = backstage.server
        return server.connections if server is not None else 0
    if kind == "push":
        done = threading.Event()
        broadcast_timed(backstage, question[1], question[2], PROBE["timings"], done)
        done.wait(question[3])
        return done.is_set()
    if kind == "results":
        return PROBE["timings"], PROBE["gc"].events
    raise ValueError(f"unknown question {kind!r}")


class ProcessBackstage:
    """The engine's placement (``server.backstage = "process"``): ``engine.backstage.process.BackstageProcess``,
    the same bridge ``engine.app.run`` uses, with the bench's probe in the child for push timings."""

    label = "backstage in its own process, as engine.app.run (server.backstage = \"process\")"

    def __init__(self, settings: Settings, cfg: Config, inbox: Inbox) -> None:
        # As ThreadBackstage: the backstage sees a show whose backlog never drains, so it never generates.
        board = StateBoard()
        board.publish(ShowSnapshot(queue_len=99, size=SIZE))
        self.settings = settings
        self.process = BackstageProcess(cfg, inbox, board, JOIN_URL, probe=bench_probe)
        self.timings: list[PushTiming] = []
        self.gc_events: list[tuple[float, float, int, int]] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        self.process.start()
        CHILDREN["backstage process"] = int(self.process.ask(("setup", self.settings), 30))

    def _ask(self, question: tuple[Any, ...], timeout: float) -> Any:
        with self._lock:
            try:
                return self.process.ask(question, timeout)
            except queue.Empty:
                raise ClientError(f"the backstage process did not answer {question[0]!r} within {timeout:g} s") \
                    from None

    def connections(self) -> int:
        return int(self._ask(("connections",), 30))

    def push(self, message: str, sent_ms: float, timeout: float) -> bool:
        return bool(self._ask(("push", message, sent_ms, timeout), timeout + 5))

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.timings, self.gc_events = self._ask(("results",), 20)
        self.process.stop()


BackstageHandle = ThreadBackstage | ProcessBackstage


# --- the scenario (a thread of the engine process, mostly blocked on the client's pipe) ----------------


@dataclass
class RelayResults:
    """Phase 2b, the Node ws relay: the same phones and pushes as the engine's, in the same run."""

    port: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # the relay's "ready"
    clock_offset_ms: float = 0.0  # client - engine, measured again (as before the run) before this phase
    clock_rtt_ms: float = 0.0
    relay_offset_ms: float = 0.0  # relay - engine, for its timings only
    connect: dict[str, Any] = field(default_factory=dict)
    held_after_push: dict[str, Any] = field(default_factory=dict)
    connections_max: int = 0
    connections_end: int = 0
    push_sent: dict[str, tuple[float, int]] = field(default_factory=dict)  # id → (sent ms, phones open)
    timings: list[PushTiming] = field(default_factory=list)  # (ms to the relay's loop starting, ms in it)
    closed: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Results:
    clock_offset_ms: float = 0.0
    clock_rtt_ms: float = 0.0
    connect: dict[str, Any] = field(default_factory=dict)
    held_after_push: dict[str, Any] = field(default_factory=dict)
    server_connections_max: int = 0
    server_connections_end: int = 0
    push_sent: dict[str, tuple[float, int]] = field(default_factory=dict)  # id → (sent ms, phones open)
    push_lat: dict[str, list[float]] = field(default_factory=dict)
    prompts: dict[str, Any] = field(default_factory=dict)
    closed: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    relay: RelayResults = field(default_factory=RelayResults)


class Conductor:
    def __init__(self, settings: Settings, client: LoadClient, backstage: BackstageHandle, phases: Phases,
                 texts: list[str], port: int) -> None:
        self.s = settings
        self.client = client
        self.backstage = backstage
        self.phases = phases
        self.texts = texts
        self.port = port
        self.results = Results()
        self.done = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench-conductor", daemon=True)
        self.relays: list[LoadClient] = []  # the relay process, from the moment it exists (stop_relay)

    def start(self) -> None:
        self.thread.start()

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise ClientError("stopped")

    def _server_connections(self) -> int:
        return self.backstage.connections()

    def _note_connections(self) -> None:
        self.results.server_connections_max = max(self.results.server_connections_max, self._server_connections())

    def _run(self) -> None:
        try:
            self._scenario()
        except Exception as err:
            self.results.error = f"{type(err).__name__}: {err}"
            print(f"  the run stopped early: {self.results.error}", flush=True)
        finally:
            self.done.set()

    def _push(self, pid: str, message: str, sent: float) -> None:
        """The engine's push: ``broadcast_all`` on the backstage loop; returns once it has."""
        if not self.backstage.push(message, sent, 60):
            raise ClientError(f"{pid}: broadcast_all did not return within 60 s")

    def _pushes(self, prefix: str, push: Callable[[str, str, float], None], open_phones: int,
                sent_at: dict[str, tuple[float, int]], note: Callable[[], None]) -> dict[str, Any]:
        """The push measurement, the same for the engine and the relay: ``pushes`` status messages,
        ``push_every_s`` apart, each stamped with the time the bench asks for it and handed to ``push``,
        which returns once the server has written it to every phone (pushes never overlap); then a
        second for stragglers. Returns the client's count of phones still open."""
        for seq in range(self.s.pushes):
            pid = f"{prefix}-{seq}"
            sent = time.time() * 1000
            message = protocol.encode({"type": "status", "id": pid, "text": "a neon whale over the city",
                                       "state": "showing", "image_url": "/images/bench-push.png", "sent": sent})
            sent_at[pid] = (sent, open_phones)
            push(pid, message, sent)
            self._sleep(self.s.push_every_s)
            note()
        self._sleep(1.0)
        held = self.client.request({"cmd": "count"}, "count", 10)
        note()
        return held

    def _connect(self, port: int, who: str, note: Callable[[], None], count: Callable[[], int]) -> dict[str, Any]:
        """The phones to ws://127.0.0.1:port/ws (the same count, addresses and pace for either server),
        then their pings; ``note`` and ``who``'s ``count`` on each progress report. Returns the client's
        "connected"."""
        s, client = self.s, self.client

        def progress(event: dict[str, Any]) -> None:
            if event.get("ev") == "progress":
                note()
                print(f"             {event['open']:>6} phones connected ({who} counts {count()})", flush=True)

        client.send({"cmd": "connect", "url": f"ws://127.0.0.1:{port}/ws", "n": s.connections,
                     "perIp": s.per_ip, "firstAddress": 256, "concurrency": CONNECT_CONCURRENCY,
                     "handshakeMs": 20000, "deadlineMs": 30000 + 20 * s.connections})
        connected = client.expect("connected", 60 + 0.03 * s.connections, progress)
        note()
        client.request({"cmd": "pings"}, "pings", 10)
        return connected

    def _close(self, count: Callable[[], int]) -> tuple[dict[str, Any], int]:
        """Every phone closes; wait (10 s at most) for the server's ``count`` to reach 0, then 2 s.
        Returns the client's "closed" and the server's last count."""
        closed = self.client.request({"cmd": "close", "deadlineMs": 10000}, "closed", 30)
        deadline = time.monotonic() + 10
        while count() > 0 and time.monotonic() < deadline:
            self._sleep(0.1)
        end = count()
        self._sleep(2.0)
        return closed, end

    # phase 2b: the same-run baseline, a Node ws relay

    def _relay_connections(self) -> int:
        if not self.relays:
            return 0
        return int(self.relays[-1].request({"cmd": "count"}, "count", 10)["open"])

    def _note_relay(self) -> None:
        rr = self.results.relay
        rr.connections_max = max(rr.connections_max, self._relay_connections())

    def _relay_push(self, pid: str, message: str, sent: float) -> None:
        """The relay's push: one loop of ws.send over every open phone, in the relay; returns once done."""
        rr = self.results.relay
        done = self.relays[-1].request({"cmd": "push", "id": pid, "message": message}, "pushed", 60)
        rr.timings.append((float(done["start"]) - rr.relay_offset_ms - sent, float(done["ms"])))

    def _start_relay(self) -> LoadClient:
        """``node relay.js PORT`` on a free port below the ephemeral range (another if that one is taken)."""
        rr = self.results.relay
        failure: ClientError | None = None
        for _ in range(3):
            if self.stop.is_set():
                raise ClientError("stopped")
            port = free_port()
            try:
                relay = LoadClient(self.client.node, self.client.cpus, script=RELAY_JS, args=(str(port),),
                                   group="node ws relay", started=self.relays)
            except ClientError as err:
                failure = err
                continue
            rr.port, rr.info = port, relay.info
            return relay
        assert failure is not None
        raise failure

    def stop_relay(self) -> None:
        """Stop the relay, whatever state it is in (any thread; again is harmless)."""
        for relay in list(self.relays):
            relay.close()

    def _relay_phase(self) -> None:
        """Phase 2b: the same phones, pushes and clock-offset measurement against a Node ws relay, while
        the show renders on the main thread as it did during the engine's pushes."""
        rr = self.results.relay
        self.phases.enter("relay connect")
        rr.clock_offset_ms, rr.clock_rtt_ms = self.client.clock_offset()
        try:
            relay = self._start_relay()
            rr.relay_offset_ms = relay.clock_offset()[0]
            rr.connect = self._connect(rr.port, "relay", self._note_relay, self._relay_connections)

            self.phases.enter("relay push")
            rr.held_after_push = self._pushes("relay", self._relay_push, int(rr.connect["open"]), rr.push_sent,
                                              self._note_relay)

            self.phases.enter("relay close")
            rr.closed, rr.connections_end = self._close(self._relay_connections)
        finally:
            self.stop_relay()

    def _scenario(self) -> None:
        s, r, client = self.s, self.results, self.client
        r.clock_offset_ms, r.clock_rtt_ms = client.clock_offset()
        self.phases.enter("warm-up")
        self._sleep(2.0)
        self.phases.enter("idle")
        self._sleep(s.idle_s)

        self.phases.enter("connect")
        r.connect = self._connect(self.port, "server", self._note_connections, self._server_connections)

        self.phases.enter("push")
        r.held_after_push = self._pushes("push", self._push, int(r.connect["open"]), r.push_sent,
                                         self._note_connections)

        self.phases.enter("prompts")
        count = min(s.prompt_count, int(r.held_after_push["open"]))
        client.send({"cmd": "prompts", "count": count, "rate": PROMPT_RATE, "maxOutstanding": MAX_OUTSTANDING,
                     "windowMs": s.prompt_window_s * 1000, "graceMs": s.prompt_grace_s * 1000,
                     "texts": self.texts})
        r.prompts = client.expect("prompts", s.prompt_window_s + s.prompt_grace_s + 30)
        self._note_connections()

        self.phases.enter("close")
        r.closed, r.server_connections_end = self._close(self._server_connections)

        if s.relay:
            try:
                self._relay_phase()
            except Exception as err:
                if self.stop.is_set():
                    raise
                r.relay.error = f"{type(err).__name__}: {err}"
                print(f"  the relay phase stopped early: {r.relay.error}", flush=True)
        self.phases.enter("idle again")
        self._sleep(s.idle_s)

        self.phases.enter("report")
        r.push_lat = client.request({"cmd": "pushes"}, "pushes", 30)["lat"]


# --- the show ---------------------------------------------------------------------------------------


class Show:
    """``ShowLoop`` on a headless context, wired like ``engine.render.headless.run_headless``."""

    def __init__(self, cfg: Config, inbox: Inbox, board: StateBoard) -> None:
        self.ctx = standalone_context()
        self.fb = self.ctx.framebuffer(color_attachments=[self.ctx.texture(SIZE, 4)])
        self.show = ShowLoop(self.ctx, cfg, SIZE, inbox, JOIN_URL, board)
        self.inbox = inbox
        self.images = [make_image(IMAGE_SIDE, seed) for seed in (1, 2, 3)]
        self.sent = 0
        self.offset = 0.0  # show time = perf_counter() + offset (the fade from the idle screen is skipped)
        self.uploads = 0

    def feed(self) -> None:
        """Keep images waiting, as a busy pipeline would, so transitions run back to back."""
        while self.inbox.images.qsize() < 2:
            self.inbox.images.put(ShowImage(f"img-{self.sent}", self.images[self.sent % len(self.images)]))
            self.sent += 1

    def prime(self) -> None:
        """Bring one image on screen and the next one in, so every measured frame draws a crossfade."""
        self.feed()
        for _ in range(240):
            d = self.show.director
            if d.current is not None and d.incoming is not None:
                return
            self.show.frame(time.perf_counter() + self.offset, self.fb)
            self.ctx.finish()
            if self.show.errors:
                raise SetupError(f"the show reported an error while priming: {self.show.errors[-1]}")
            if d.current is None and d.incoming is not None:
                self.offset += TRANSITION_S
            self.feed()
        raise SetupError("the director never got to a transition between two images")

    def run(self, log: FrameLog, phases: Phases, until: threading.Event, deadline: float) -> None:
        """The headless driver's loop, timed: frame, ctx.finish(), pacer; until ``until`` or ``deadline``."""
        pacer = FramePacer(FPS)
        due: float | None = None
        while not until.is_set():
            start = time.perf_counter()
            cpu0 = time.thread_time()
            waiting = self.inbox.images.qsize()
            busy = self.show.uploader.busy
            self.show.frame(start + self.offset, self.fb)
            self.ctx.finish()
            end = time.perf_counter()
            log.phase.append(phases.current)
            log.start.append(start)
            log.wall_ms.append((end - start) * 1000)
            log.delay_ms.append(0.0 if due is None else (start - due) * 1000)
            log.cpu_ms.append((time.thread_time() - cpu0) * 1000)
            self.uploads += int(busy or self.inbox.images.qsize() < waiting)  # this frame wrote image texels
            self.feed()
            if end > deadline:
                break
            # The pacer's next deadline is when the next frame is due; read before wait() moves it.
            due = pacer.deadline
            pacer.wait()
            if due is None:
                due = time.perf_counter()

    def release(self) -> None:
        self.show.release()
        self.fb.release()
        self.ctx.release()


# --- offline figures: where the prompt path spends its time -----------------------------------------


def submit_cost(cfg: Config, texts: list[str], depths: Sequence[int], n: int) -> list[tuple[int, float]]:
    """Mean ms per ``Audience.submit`` (accepted) with ``depth`` prompts already queued, one thread, no sockets."""
    out = []
    moderator = Moderator.from_files()
    for depth in depths:
        audience = Audience(cfg.audience, moderator)
        for i in range(depth):
            audience.restore(Prompt(f"p-fill-{i}", f"fill-{i:06d}", f"10.1.{i // 250}.{i % 250}", "filler", 0.0))
        audience.submit("warm-up-client", "10.9.9.9", "a warm up prompt", "w")  # tells the restored their place
        t0 = time.perf_counter()
        for k in range(n):
            audience.submit(f"cost-{k:06d}", f"10.2.{k // 250}.{k % 250}", texts[k % len(texts)], f"r{k}")
        out.append((depth, (time.perf_counter() - t0) * 1000 / n))
    return out


def journal_cost(n: int) -> float:
    """Mean ms per ``Journal.record_prompt`` (SQLite, WAL) in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="stagecraft-bench-journal-"))
    try:
        journal = Journal.open(folder)
        try:
            t0 = time.perf_counter()
            for k in range(n):
                journal.record_prompt(f"p-cost-{k}", f"client-{k:06d}", "a neon whale", {"moderation": "auto"})
            return (time.perf_counter() - t0) * 1000 / n
        finally:
            journal.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- report -----------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def pct(values: np.ndarray | Sequence[float], q: float) -> float:
    arr = np.asarray(values, dtype=float)
    return float(np.percentile(arr, q)) if arr.size else float("nan")


def worst(values: np.ndarray | Sequence[float]) -> float:
    arr = np.asarray(values, dtype=float)
    return float(arr.max()) if arr.size else float("nan")


def row(label: str, cells: Sequence[float | str | int] = (), note: str = "", width: int = 10) -> None:
    text = ""
    for c in cells:
        if isinstance(c, float):
            text += f"{c:>{width}.1f}" if abs(c) >= 100 or c != c else f"{c:>{width}.2f}"
        else:
            text += f"{c!s:>{width}}"
    print(f"  {label:<38}{text}  {note}".rstrip())


@dataclass
class Verdicts:
    met: list[bool] = field(default_factory=list)

    def add(self, ok: bool) -> str:
        self.met.append(ok)
        return verdict(ok)


def print_header(s: Settings, ctx_info: str, client: dict[str, Any], nofile: tuple[int, int], r: Results,
                 port: int, placement: str, frozen: int) -> None:
    print()
    print("Stagecraft audience benchmark: phones on loopback against the audience server, while the show renders")
    print(f"  GL: {ctx_info} | Python {platform.python_version()} | websockets {websockets.__version__} | "
          f"{os.cpu_count()} CPUs | server 127.0.0.1:{port} | RLIMIT_NOFILE {nofile[0]}/{nofile[1]}")
    print(f"  show: ShowLoop {SIZE[0]}x{SIZE[1]} paced at {FPS:g} fps on the main thread; crossfade + glow of "
          f"{IMAGE_SIDE}x{IMAGE_SIDE} images, back-to-back {TRANSITION_S:g} s transitions, join QR in the corner")
    print(f"  backstage: {placement}; audience server, audience (cooldown 0, queue 100,000), journal (temp folder), "
          "pipeline held idle")
    client_nofile = client.get("nofile") or {}
    print(f"  load client: node {client.get('node')} + ws {client.get('ws')}, one process, {s.per_ip} phone(s) per "
          f"source address 127.0.x.y, each pinging every 20 s like the page; RLIMIT_NOFILE "
          f"{client_nofile.get('soft')}/{client_nofile.get('hard')}")
    gc_note = f"gc.collect(); gc.freeze() after start-up, as engine.app.run ({frozen} objects frozen)"
    if s.gc_mode == "off":
        gc_note += " + gc.disable() (EXPERIMENT, not the engine's setting)"
    if s.gc_threshold is not None:
        gc_note += f" + gc.set_threshold{s.gc_threshold} (EXPERIMENT, not the engine's setting)"
    if s.switch_interval is not None:
        gc_note += f"; sys.setswitchinterval({s.switch_interval:g}) in the show's process (EXPERIMENT)"
    print(f"  GC: {gc_note}")
    if s.pin:
        print("  pinned (EXPERIMENT): the show on CPU 0 with llvmpipe on one thread, the backstage process and the "
              "load client on CPU 1; models a show whose rendering does not share the crowd's cores (a GPU)")
    print(f"  clocks: client - engine = {r.clock_offset_ms:+.3f} ms (pipe round trip {r.clock_rtt_ms:.3f} ms), "
          "subtracted from every arrival")
    if s.relay:
        rr = r.relay
        print(f"  baseline: Node ws relay (bench/load/relay.js, node {rr.info.get('node')} + ws {rr.info.get('ws')}, "
              f"own process) on 127.0.0.1:{rr.port}, after the engine's phones left: the same client, phones, "
              f"pushes and show; client - engine measured again before it: {rr.clock_offset_ms:+.3f} ms "
              f"(round trip {rr.clock_rtt_ms:.3f} ms)")


def report_connections(s: Settings, r: Results, v: Verdicts) -> int:
    c = r.connect
    held = r.held_after_push
    open_now = int(held.get("open", c.get("open", 0)))
    most = max(int(c.get("open", 0)), open_now)
    print()
    row("1. connections", ["value", "target"])
    row("most held at once (client side)", [most, s.connections],
        f">= {s.connections}: {v.add(most >= s.connections)}")
    row("server's count at its highest", [r.server_connections_max])
    row("still open after the pushes", [open_now], f"closed meanwhile: {held.get('closeCodes') or 'none'}")
    ms = float(c.get("ms", 0.0))
    rate = most / (ms / 1000) if ms > 0 else float("nan")
    row("time to open them (s)", [ms / 1000], f"{rate:.0f} handshakes/s, {CONNECT_CONCURRENCY} in flight")
    if c.get("failures"):
        row("failed openings", [sum(c["failures"].values())], json.dumps(c["failures"]))
    return most


def push_rows(sent_at: dict[str, tuple[float, int]], lat_by_id: dict[str, list[float]], offset_ms: float
              ) -> list[float]:
    """A row per push (ms, arrival - send, the client's clock offset taken off); returns every latency."""
    every: list[float] = []
    for pid, (_sent, expected) in sorted(sent_at.items(), key=lambda kv: int(kv[0].split("-")[1])):
        lat = np.asarray(lat_by_id.get(pid, []), dtype=float) - offset_ms
        every += lat.tolist()
        row(f"  {pid}", [pct(lat, 50), pct(lat, 99), worst(lat), f"  {lat.size}/{expected}"])
    return every


def timing_rows(timings: Sequence[PushTiming], start: tuple[str, str], inside: tuple[str, str]) -> None:
    """Where a push's time went on the server's side: (label, note) for the wait, then for the send loop."""
    if timings:
        delays = [d for d, _ in timings]
        calls = [c for _, c in timings]
        row(start[0], [pct(delays, 50), pct(delays, 99), worst(delays)], start[1])
        row(inside[0], [pct(calls, 50), pct(calls, 99), worst(calls)], inside[1])


def report_pushes(r: Results, timings: Sequence[PushTiming], v: Verdicts) -> list[float]:
    """Section 2; returns every latency (for the ratio to the relay's)."""
    print()
    row(f"2. push to all ({len(r.push_sent)} pushes)", ["p50", "p99", "max", "  arrived"], "(ms, arrival - send)")
    every = push_rows(r.push_sent, r.push_lat, r.clock_offset_ms)
    ok = bool(every) and pct(every, 99) < TARGET_PUSH_P99_MS
    row("all pushes", [pct(every, 50), pct(every, 99), worst(every)],
        f"target p99 < {TARGET_PUSH_P99_MS:g} ms: {v.add(ok)}")
    timing_rows(timings, ("  request -> broadcast_all starts", "(ms: backstage.call waiting for the loop)"),
                ("  inside broadcast_all()", "(ms the loop spends writing the frames)"))
    return every


def _ms(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def report_relay(s: Settings, r: Results, engine: Sequence[float], v: Verdicts) -> None:
    """Section 2b: the same pushes to a Node ws relay in the same run, and the engine's ratio to it."""
    rr = r.relay
    print()
    row(f"2b. same pushes, Node ws relay ({len(rr.push_sent)})", ["p50", "p99", "max", "  arrived"],
        "(ms, arrival - send; same run, phones, client, show)")
    if rr.error:
        row("  the relay phase stopped early", [], rr.error)
    c = rr.connect
    if c:
        most = max(int(c.get("open", 0)), int(rr.held_after_push.get("open", 0)))
        failed = f"; failed openings: {json.dumps(c['failures'])}" if c.get("failures") else ""
        row("  phones held (client side)", [most],
            f"of {s.connections}; opened in {float(c.get('ms', 0)) / 1000:.1f} s; the relay counted "
            f"{rr.connections_max} at most, {rr.connections_end} after they closed{failed}")
    relay = push_rows(rr.push_sent, r.push_lat, rr.clock_offset_ms)
    row("all pushes", [pct(relay, 50), pct(relay, 99), worst(relay)])
    timing_rows(rr.timings, ("  request -> the relay's loop starts", "(ms: the command crossing the pipe)"),
                ("  inside the relay's send loop", "(ms the relay spends writing the frames)"))
    for q in (50, 99):
        if not engine or not relay:
            line = f"push p{q}: no {'engine' if not engine else 'relay'} figures, no ratio"
            ok = False
        else:
            e, b = pct(engine, q), pct(relay, q)
            ok = e / b <= TARGET_PUSH_RATIO
            line = f"push p{q}: engine {_ms(e)} ms, node ws relay {_ms(b)} ms: {e / b:.2f}x"
        if q == 99:
            line += f" (target <= {TARGET_PUSH_RATIO:.1f}x): {v.add(ok)}"
        print(f"  {line}")


def report_prompts(r: Results, v: Verdicts) -> None:
    p = r.prompts
    print()
    row(f"3. prompts ({PROMPT_RATE:,.0f}/s offered)", ["value", "target"])
    if not p:
        row("no prompt results", [], "the run stopped before this phase")
        v.add(False)
        v.add(False)
        return
    send = np.asarray(p["sendAt"], dtype=float) / 1000
    ack = np.asarray(p["ack"], dtype=float)
    state = np.asarray(p["state"], dtype=int)
    acked = ack >= 0
    accepted = acked & (state == 1)
    acked_at = send + np.where(acked, ack, 0) / 1000
    span = float(acked_at[accepted].max() - send.min()) if accepted.any() else float("nan")
    rate = float(accepted.sum()) / span if accepted.any() and span > 0 else 0.0
    row("planned / sent / answered", [f"{p['planned']}/{p['sent']}/{int(acked.sum())}"],
        f"{int((~acked).sum())} unanswered at the end; sending pauses while {MAX_OUTSTANDING} are unanswered")
    row("accepted (queued)", [int(accepted.sum())], f"not accepted: {json.dumps(p['reasons']) or 'none'}")
    row("accepted per second", [rate, TARGET_ACCEPTED_PER_S],
        f">= {TARGET_ACCEPTED_PER_S:,.0f}/s: {v.add(rate >= TARGET_ACCEPTED_PER_S)} (first send to last accepted)")
    lat = ack[acked]
    row("time to acknowledgement (ms)", ["p50", "p99", "max"])
    row("", [pct(lat, 50), pct(lat, 99), worst(lat)],
        f"p99 < {TARGET_ACK_P99_MS:g} ms: {v.add(lat.size > 0 and pct(lat, 99) < TARGET_ACK_P99_MS)}")
    # Per second: how the intake keeps up as the queue grows (in this bench nothing leaves the queue).
    if accepted.any():
        row("  second of the phase", ["sent", "accepted", "queued", "ack p99"],
            "(prompts sent that second; answers that second; queue at its end; ms)")
        last = int(np.ceil(max(acked_at[acked].max(), send.max())))
        for sec in range(last):
            sent_then = (send >= sec) & (send < sec + 1)
            got = int((accepted & (acked_at >= sec) & (acked_at < sec + 1)).sum())
            depth = int((accepted & (acked_at < sec + 1)).sum())
            answered_then = sent_then & acked
            p99s: float | str = pct(ack[answered_then], 99) if answered_then.any() else "-"
            row(f"  {sec}-{sec + 1} s", [int(sent_then.sum()), got, depth, p99s])


def report_offline(costs: list[tuple[int, float]], journal_ms: float) -> None:
    print()
    print("  where an accepted prompt's time goes (measured after the run: one thread, no sockets, no show):")
    for depth, ms in costs:
        print(f"    Audience.submit with {depth:>6,} prompts queued: {ms:8.3f} ms  "
              f"(at most {1000 / ms:,.0f}/s on a free core)")
    print(f"    Journal.record_prompt (SQLite WAL, synchronous=NORMAL): {journal_ms:.3f} ms")


@dataclass
class PhaseFrames:
    name: str
    wall: np.ndarray
    delay: np.ndarray
    cpu: np.ndarray
    start: np.ndarray


def frames_of(log: FrameLog, phases: Phases, name: str) -> PhaseFrames | None:
    if name not in phases.names:
        return None
    start, wall, delay, cpu = log.of(phases.index(name))
    return PhaseFrames(name, wall, delay, cpu, start) if wall.size else None


GcEvent = tuple[float, float, int, int]  # perf_counter start, ms, generation, native thread id
LOADED = ("connect", "push", "prompts")
PHASE_LABELS = {
    "idle": "idle, no phones (baseline)",
    "connect": "phones connecting",
    "push": "phones held + pushes",
    "prompts": "prompts",
    "close": "phones leaving (no target)",
    "relay connect": "phones connecting to the relay",
    "relay push": "relay phones held + pushes",
    "relay close": "phones leaving the relay",
    "idle again": "idle again (drift check)",
}


def report_frames(log: FrameLog, phases: Phases, gcs: Sequence[GcEvent], names: dict[int, str], uploads: int,
                  v: Verdicts) -> bool | None:
    print()
    row("4. show frames (ms)", ["frames", "p50", "p99", "max", "p99/idle", "> 1/60 s", "late", "late max"])
    print("     frame = ShowLoop.frame + ctx.finish(), wall time; late = frames starting more than 1/60 s after the")
    print("     pacer's deadline; late max = the longest such start delay")
    idle = frames_of(log, phases, "idle")
    if idle is None:
        row("no idle frames", [], "the run stopped before the baseline")
        return None
    base_p99 = pct(idle.wall, 99)
    held = True
    loaded: list[np.ndarray] = []
    worst_lines: list[str] = []
    for name, label in PHASE_LABELS.items():
        f = frames_of(log, phases, name)
        if f is None:
            continue
        p99w = pct(f.wall, 99)
        ratio = p99w / base_p99
        note = ""
        if name in LOADED:
            ok = ratio < TARGET_FRAME_RATIO
            held = held and ok
            loaded.append(f.wall)
            note = f"< {TARGET_FRAME_RATIO:g}x: {v.add(ok)}"
        row(label, [f.wall.size, pct(f.wall, 50), p99w, worst(f.wall), f"{ratio:.2f}x", int((f.wall > PERIOD_MS).sum()),
                    int((f.delay > PERIOD_MS).sum()), worst(f.delay)], note)
        # The frame that kept the picture longest: its own time plus how late it started.
        k = int(np.argmax(f.wall + np.maximum(f.delay, 0)))
        t0 = f.start[k] - max(float(f.delay[k]), 0.0) / 1000
        t1 = f.start[k] + float(f.wall[k]) / 1000
        overlap = [e for e in gcs if e[0] < t1 and e[0] + e[1] / 1000 > t0]
        cause = "no GC overlapping it"
        if overlap:
            g = max(overlap, key=lambda e: e[1])
            cause = f"overlapping a gen-{g[2]} GC of {g[1]:.1f} ms in the {names.get(g[3], str(g[3]))}"
        worst_lines.append(f"{name}: {f.delay[k]:.1f} ms late + {f.wall[k]:.1f} ms frame, {cause}")
    if loaded:
        every = np.concatenate(loaded)
        row("all loaded phases", [every.size, pct(every, 50), pct(every, 99), worst(every),
                                  f"{pct(every, 99) / base_p99:.2f}x", int((every > PERIOD_MS).sum())])
    print(f"    render thread CPU per frame (idle): median {pct(idle.cpu, 50):.2f} ms (llvmpipe draws on threads of "
          f"its own); {uploads} frames in the run uploaded an image")
    print("    longest picture hold of each phase:")
    for line in worst_lines:
        print(f"      {line}")
    return held


def report_gc(gcs: Sequence[GcEvent], phases: Phases, names: dict[int, str]) -> None:
    print()
    row("GC collections by phase", ["gen0", "gen1", "gen2", "gen2 max", "any max", "in render"],
        "(ms; where the longest ran)")
    main_id = threading.main_thread().native_id
    for i, name in enumerate(phases.names):
        if name in ("start-up", "report"):
            continue
        t0, t1 = phases.span(i)
        evs = [e for e in gcs if t0 <= e[0] < t1]
        if not evs:
            row(name, [0, 0, 0, "-", "-", 0])
            continue
        counts = [sum(1 for e in evs if e[2] == g) for g in (0, 1, 2)]
        g2 = [e[1] for e in evs if e[2] == 2]
        longest = max(evs, key=lambda e: e[1])
        in_render = sum(1 for e in evs if e[3] == main_id)
        row(name, [*counts, max(g2) if g2 else "-", longest[1], in_render], names.get(longest[3], str(longest[3])))


CPU_GROUPS = (
    ("render (main thread)", "render"),
    ("GL (llvmpipe)", "llvmpipe"),
    ("backstage loop", "bs loop"),
    ("backstage workers", "bs pool"),
    ("backstage process", "bs proc"),
    ("other engine threads", "other thr"),
    ("bench harness", "harness"),
    ("load client (node)", "node"),
    ("node ws relay", "relay"),
    ("other processes", "others"),
)


def report_cpu(phases: Phases) -> list[str]:
    """The CPU table; returns the phases during which other processes took more than OTHERS_LIMIT."""
    print()
    busy: list[str] = []
    groups = [g for g, _ in CPU_GROUPS if any(g in snap for snap in phases.cpu)]
    row("CPU by phase (% of one core; 2 = 200)", [dict(CPU_GROUPS)[g] for g in groups])
    for i, name in enumerate(phases.names):
        if name in ("start-up", "report") or i + 1 >= len(phases.cpu):
            continue
        seconds = phases.starts[i + 1] - phases.starts[i]
        a, b = phases.cpu[i], phases.cpu[i + 1]
        row(name, [100 * (b.get(g, 0.0) - a.get(g, 0.0)) / seconds for g in groups])
        if 100 * (b.get("other processes", 0.0) - a.get("other processes", 0.0)) / seconds > OTHERS_LIMIT:
            busy.append(name)
    print("    others = every other process on the machine (other tenants, tests): they take cores from the show too")
    return busy


# --- entry point ------------------------------------------------------------------------------------


def apply_gc_experiment(s: Settings, switch_interval: bool = True) -> None:
    if s.gc_threshold is not None:
        gc.set_threshold(*s.gc_threshold)
    if s.gc_mode == "off":
        gc.disable()
    if switch_interval and s.switch_interval is not None:
        sys.setswitchinterval(s.switch_interval)


def run(s: Settings) -> None:
    node = ensure_client()
    port = free_port()
    wait_for_quiet(60 if not s.quick else 20)
    texts = prompt_texts(1000)
    output_dir = Path(tempfile.mkdtemp(prefix="stagecraft-bench-audience-"))
    cfg = bench_config(s, port, output_dir)
    # As the engine's server does; the load client, started below, inherits the limit.
    raise_open_files(cfg.server.max_connections + FILES_IN_RESERVE)
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    phases = Phases()
    print(f"  [{0.0:6.1f} s] start-up: load client, backstage on 127.0.0.1:{port}, show", flush=True)
    client: LoadClient | None = None
    backstage: BackstageHandle | None = None
    watcher: ShaderWatcher | None = None
    show: Show | None = None
    conductor: Conductor | None = None
    log = FrameLog()
    gcs = GcLog()
    names: dict[int, str] = {}
    ctx_info = "?"
    uploads = 0
    frozen = 0
    try:
        if s.pin:
            os.environ["LP_NUM_THREADS"] = "1"  # read when the GL context is made, below
            pin_threads(SHOW_CPUS)
        client = LoadClient(node, CROWD_CPUS if s.pin else None)
        inbox = Inbox()
        if s.placement == "process":
            backstage = ProcessBackstage(s, cfg, inbox)
        else:
            backstage = ThreadBackstage(cfg, inbox, output_dir)
        backstage.start()
        if cfg.shaders.hot_reload:
            watcher = ShaderWatcher(Path(cfg.shaders.dir), inbox.shader_changes)
            watcher.start()
        # As engine.app.run: start-up objects out of every collection, then the show.
        gc.collect()
        gc.freeze()
        frozen = gc.get_freeze_count()
        apply_gc_experiment(s)
        show = Show(cfg, inbox, StateBoard())
        ctx_info = str(show.ctx.info["GL_RENDERER"])
        show.prime()
        gc.callbacks.append(gcs)
        conductor = Conductor(s, client, backstage, phases, texts, port)
        conductor.start()
        limit = 120 + 2 * s.idle_s + 0.05 * s.connections + 5 * s.pushes + 4 * s.prompt_window_s
        if s.relay:  # phase 2b: the relay's connect, pushes and close
            limit += 30 + 0.05 * s.connections + 5 * s.pushes
        show.run(log, phases, conductor.done, time.perf_counter() + limit)
        if not conductor.done.is_set():
            conductor.results.error = conductor.results.error or "the run took too long and was cut short"
        names = {t.native_id: f"{t.name} thread" for t in threading.enumerate() if t.native_id is not None}
        names[threading.main_thread().native_id or 0] = "render (main) thread"
    finally:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(gcs)
        if conductor is not None:
            conductor.stop.set()
            conductor.stop_relay()
        if client is not None:
            client.close()
        if watcher is not None:
            watcher.stop()
        if backstage is not None:
            backstage.stop()
        if show is not None:
            uploads = show.uploads
            show.release()
        shutil.rmtree(output_dir, ignore_errors=True)
        gc.enable()
        gc.unfreeze()
    assert conductor is not None and client is not None and backstage is not None
    r = conductor.results
    events: list[GcEvent] = [*gcs.events, *backstage.gc_events]
    if isinstance(backstage, ProcessBackstage):
        names.update({e[3]: "backstage process" for e in backstage.gc_events})
    costs = submit_cost(cfg, texts, (0, 1000, 4000) if s.quick else (0, 1000, 4000, 10000), 30)
    journal_ms = journal_cost(200)

    print_header(s, ctx_info, client.info, nofile, r, port, backstage.label, frozen)
    if r.error:
        print(f"  NOTE: the run stopped early ({r.error}); the figures below cover what ran")
    v = Verdicts()
    report_connections(s, r, v)
    engine_pushes = report_pushes(r, backstage.timings, v)
    if s.relay:
        report_relay(s, r, engine_pushes, v)
    report_prompts(r, v)
    report_offline(costs, journal_ms)
    # Only the show's own process's collections can hold up its frames.
    held = report_frames(log, phases, gcs.events, names, uploads, v)
    report_gc(events, phases, names)
    busy = report_cpu(phases)
    print()
    if busy:
        print(f"  WARNING: other processes took more than {OTHERS_LIMIT:g}% of a core during: {', '.join(busy)}.")
        if "idle" in busy:
            print("  The baseline itself was measured under that outside load, so every frame ratio is suspect,")
            print("  an 'ok' as much as a 'MISS'. Rerun on a quiet machine ('idle again' shows the drift).")
        else:
            print("  Phases measured under different outside load do not compare; rerun on a quiet machine before")
            print("  trusting those rows ('idle again' shows how far the baseline drifted).")
    where = "in a process of its own" if s.placement == "process" else "as a thread in the same process"
    if held:
        print(f"  The show held its frame time under audience load with the backstage {where}.")
    elif held is not None and s.placement == "thread":
        print(f"  The show did NOT hold its frame time under audience load with the backstage {where}")
        print("  (the MISS rows under 4). The backstage thread and the render thread share one GIL: moderngl keeps it")
        print("  while it waits for the GL, so the backstage gets the gaps between frames, and each of its full GC")
        print("  passes (every object of every connection) stops the show for its whole length. The backstage in")
        print("  its own process is the remedy to evaluate: run again with --backstage process.")
    elif held is not None:
        print(f"  The show did NOT hold its frame time under audience load with the backstage {where}")
        print("  (the MISS rows under 4): no GIL or GC stalls cross the process boundary, but on this machine the")
        print("  backstage process, the load client and llvmpipe's threads share the same cores (see the CPU table).")
    print(f"\n{sum(v.met)} of {len(v.met)} targets met (figures are reported, never asserted)")


def run_to_the_end(bench: Callable[[], None], what: str, stopped: str) -> int:
    """Run a benchmark; its exit code. SIGTERM takes the same way out as Ctrl-C: every finally block runs and
    the children are stopped. A setup failure is one line and 2, an interruption 130."""
    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        bench()
    except SetupError as err:
        print(f"cannot run the {what} benchmark: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: {stopped}", file=sys.stderr)
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    return run_to_the_end(lambda: run(settings), "audience", "load client and relay stopped, sockets closed")


if __name__ == "__main__":
    sys.exit(main())
