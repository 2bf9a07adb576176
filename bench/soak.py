"""Soak: a show-day rehearsal of the whole engine, with a crowd, a VJ and a fault every 90 seconds.

One run, on this machine, traffic on 127.0.0.1 only. It starts, each as a process of its own:

- the loopback Stability mock (``python -m engine.gen.mock_stability``: half-size pictures, 2 s per answer,
  credits that never run out), whose fault endpoint (``/_mock/faults``) the soak drives;
- a dummy JACK server of its own (``jackd -n stagecraft-soak-PID --no-realtime -d dummy -r 48000 -p 512``: no
  sound card, its capture ports give silence), the engine's sound input; without jackd (Debian package
  jackd2) the soak says so, the engine gets ``--audio none`` and the audio fault is not run;
- the engine: ``python -m engine --headless --size 640x360 --generator stability``, pointed at the mock
  through ``STABILITY_API_HOST``/``STABILITY_API_KEY`` and at the JACK server through ``JACK_DEFAULT_SERVER``
  (with ``JACK_NO_START_SERVER``), in a temporary folder holding its output (``--output``) and a copy of
  ``shaders/`` (``[shaders] dir``, so faults can break it), listening to the JACK server's capture ports
  (``--audio system``: PortAudio's name for them), with a known ``--vj-token``, a free port below 32768,
  ``server.host`` 127.0.0.1 and the glow effect on; its log (both of its processes) goes to a file.
  It runs in the temporary folder, so without ``--config`` it has no config.toml: the engine's defaults.

In the soak's own process (one asyncio loop): ``--phones`` phones (500) that behave like the phone page
(``web/app.js``): each from its own source address (127.0.x.y, so the engine's per-address caps stay as they
are), with its own client id kept across reconnects (``?client=``), a ping every 20 s, a connection silent for
45 s (or without its welcome after 12 s) dropped and made again, reconnects with the page's backoff (0.5 s
doubling to 10 s, 50-100 % jitter). ``--prompters`` of them (2) send a prompt every cooldown (15 s, the
engine's default ``[audience]`` limits: 8 prompts a minute, about what the show puts on screen at its
default pace, hold 8 s + transition 2 s, faster when a line builds); once a minute another one sends
garbage (a frame that is not JSON, a JSON array, a prompt whose text is a number, an unknown type, a binary
frame, then an 8 KB frame, over ``server.max_message_bytes``). A VJ page logs in with the token
(``GET /vj?token=`` → cookie, logging in again when a restarted backstage no longer knows the session), opens
``/vj/ws``, asks for the preview, and reads every state message.

The timeline: start-up (mock, engine, VJ page, phones until 95 % are online), then ``--minutes`` (60;
``--quick``: 3) of show with a fault every ``--fault-every`` seconds (90; quick: 20, with shorter faults,
so that each runs once), in this order, over and over:

1. ``backstage-kill``: SIGKILL of the backstage process (psutil: the show's child whose command line is
   multiprocessing's ``spawn_main``; the engine names it ``stagecraft-backstage``, but only inside Python);
2. ``backstage-stop``: SIGSTOP of it for 10 s, then SIGCONT;
3. ``shader-syntax``: ``effects/glow.fs`` (in the chain) gets a line that is not GLSL, fixed 20 s later;
4. ``shader-delete``: ``effects/glow.fs`` deleted, written back 20 s later;
5. ``disk``: the day folder (``output/<date>/``) refuses new files for 60 s. Permissions would not do it here:
   the soak runs as root, which ignores them. ``chattr +i`` does (ext4 here; root with CAP_LINUX_IMMUTABLE
   gets EPERM creating a file in an immutable folder), so that is what is used, checked by trying to create
   a file; as another user, ``chmod 555``. Files already open (the journal's SQLite and its WAL) still take
   writes: what fails is every new image file (the engine writes each to a temporary name first);
6. ``audio``: SIGKILL of the JACK server (the sound card gone, as a crash of the audio server would take it),
   started again under the same name 20 s later;
7. ``stability``: the mock answers 500s, then holds every request unanswered (closing it at the phase's
   end), then refuses with 429s under a lockout (``rate_limit`` 0), ~20 s each (scripted answers are topped
   up as the engine uses them; the mock is reset between phases). The hanging phase comes before the
   lockout, not after it: a 429 without Retry-After makes the client send nothing for 60 s, so requests
   to hang would never come. It is last in the cycle because that 60 s wait outlasts the fault.

A fault starts only once the previous one has ended and its recovery has been measured (or given up on
after 60 s; 25 s quick; 90 s for ``stability``), so a slow recovery pushes the next fault back; none starts
if it cannot end before the run does. Then prompts stop, accepted prompts get a grace period (up to 180 s,
the engine's ``[show] max_wait``) to reach the screen, the show gets SIGTERM, and the journal is read back.

Reading the report: each line is a figure, its target, and ``ok`` or ``MISS``; missed targets are reported,
never asserted (exit 0; 1 only if the soak could not run at all, 130 when interrupted).

- show crashes: the show's process exiting before the final SIGTERM (target 0);
- black frames: preview JPEGs (the program output, 384 px wide, 5 a second, decoded with PIL) whose mean
  level is under 3/255, outside a blackout; the run's count of samples beside it (target 0 black);
- longest frame: the worst ``frame_p99_ms`` the VJ page was sent (the show's rolling p99 frame interval over
  its last 240 frames, read 10 times a second: the snapshot has no maximum, so one lone long frame does not
  show), the lowest fps, and which fault was on at the time; no target printed (the show targets 60 fps);
- new images on screen: how many (grace period included), and the longest wait between two (the show's
  ``current`` image changing), with what was going on when it ended;
- prompts: every prompt a phone sent, by fate: shown (``showing`` or ``done`` reached), refused (``rejected``
  with its reason, or an ``error`` reply), failed, **lost** (accepted and neither shown, failed nor refused
  by the end of the grace period; target 0), unanswered (no reply ever: the frame went down with a killed
  backstage; looked up in the journal by client and text);
- journal: every accepted prompt is in the journal after the run (target: all), with the number whose
  images have no file on disk;
- faults: one line each, with what "recovered" means for it (below), the time, and the target (5 s;
  phones back after a kill: 10 s). ``noticed`` says whether the engine showed the fault at all (error in
  the VJ state, a log line, dropped phones); a fault it never noticed has nothing to recover from;
  - ``backstage-kill``: from the SIGKILL until a phone has an answer again (a pong, after it reconnected),
    and "phones back": until 95 % of the phones have reconnected and answered a ping (each phone pings as
    soon as its welcome arrives);
  - ``backstage-stop``: from the SIGCONT until 95 % of the phones have answered a ping (every phone online
    pings at the SIGCONT; phones that dropped meanwhile ping when they are back);
  - ``shader-syntax`` / ``shader-delete``: from the fix until the VJ page's ``shaders`` state has no error for
    glow (catalog and error list); noticed = the error appeared during the fault;
  - ``stability``: from the end of the client's own wait after the last phase (the mock healthy again, and
    the API's 60 s lockout after a 429 or the breaker's cooldown over, as the VJ page's ``backend.resume_in``
    says) until the VJ page's ``backend`` status is ``ok`` again (the engine's Stability client has had a
    success since); prompts meanwhile get offline images; each phase lists the
    image requests the mock got and the status meanwhile, and a note says when the first image request
    after the fault reached the mock;
  - ``disk``: the VJ page sends its own prompt (made next, ahead of the line) just after the folder is locked,
    so an image must be written during the fault; from the folder taking files again until the first new image
    file appears in it (the images held in memory are written then); noticed = the engine logged "cannot write";
  - ``audio``: from the JACK server answering again (``jack_lsp``) until the VJ page's ``tempo.audio`` names the
    device (``system``) again, that is until the engine listens to it again; noticed = it stopped naming it
    during the fault (the engine said "no audio");
- memory: RSS of the show's and the backstage's processes, sampled every 10 s, mean over the first and the
  last 5 minutes of the show (quick: 1 minute), and the growth (target < 5 %); when the backstage of the
  last minutes is not the first one (it was killed in between) that line is not judged, and the
  backstage process that lived longest is judged over its own life instead;
- garbage: each kind of bad frame and the engine's answers (error code, or the close code), with what was
  going on when one was not the expected answer (rounds wait while the backstage is killed or stopped);
- exit: the show's exit code after SIGTERM (target 0) and the number of "Traceback" in the engine's log
  (target 0), with the first lines of each, and the log's ERROR lines by kind.

The CPU line says how busy the machine's 2 cores were: on this machine the phones, the engine's two
processes and llvmpipe share them, so frame times and recovery times are the machine's as much as the
engine's.

Run from the repository root: ``.venv/bin/python bench/soak.py`` (``--quick`` for a 3-minute run,
``--phones N``, ``--prompters N``, ``--minutes M``, ``--fault-every S``, ``--config PATH`` for the show's
config.toml, ``--keep`` to keep the temporary folder with the logs).
Every wait has a deadline; the children are killed on the way out whatever happens (Ctrl-C and SIGTERM
included), and die with the soak if it is killed (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime
import io
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from PIL import Image
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.gen.images import IMAGE_FILE  # noqa: E402
from engine.net.moderation import Moderator  # noqa: E402
from engine.net.vj_hub import SLOW_PARTS_S  # noqa: E402
from engine.store import Journal  # noqa: E402

PYTHON = sys.executable
JACK_DEVICE = "system"  # the dummy JACK server's capture ports, as PortAudio lists them (host API "JACK ...")
JACK_START_S = 10.0
PORT_RANGE = (20000, 32000)  # below the ephemeral range (32768+) that the phones' sockets use
SIZE = "640x360"
TOKEN = "soak-vj-token-0123456789"
API_KEY = "sk-mock-soak"
COOKIE = "stagecraft_vj"
MOCK_LATENCY = 2.0  # seconds per mock answer, as --stability-mock
EFFECT = "glow"  # the effect in the chain, which the shader faults break
COOLDOWN = 15.0  # [audience] cooldown: the engine's default, the prompters' pace

# The phone page's timings (web/app.js).
PING_S, DEAD_S, CONNECT_S, TICK_S = 20.0, 45.0, 12.0, 2.5
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 10.0

MEMORY_EVERY_S = 10.0
GRACE_S = 180.0  # the engine's [show] max_wait: its own target from a prompt to the screen
BLACK_LEVEL = 3.0  # mean 0..255 under which a preview frame counts as black

TARGET_RECOVERY_S = 5.0
TARGET_PHONES_BACK_S = 10.0
TARGET_MEMORY_GROWTH = 5.0  # percent

ADJECTIVES = ("neon", "glowing", "crystal", "velvet", "golden", "frozen", "electric", "misty", "cosmic",
              "paper", "liquid", "ancient", "tiny", "giant", "silver", "rainbow", "quiet", "stormy")
SUBJECTS = ("whale", "fox", "lighthouse", "forest", "city", "dragon", "garden", "robot", "owl", "ship",
            "mountain", "jellyfish", "castle", "tiger", "balloon", "train", "river", "moon", "violin",
            "volcano", "octopus", "bicycle", "cathedral", "hummingbird")
PLACES = ("over the city", "under the sea", "in the clouds", "on a frozen lake", "in a desert at dusk",
          "among the stars", "in a rainy street", "on a mountain top", "in a field of flowers",
          "inside a snow globe", "at the bottom of a well")
STYLES = ("watercolor", "synthwave", "oil painting", "pixel art", "ink drawing", "stained glass", "photograph",
          "charcoal sketch", "papercut")

FAULTS = ("backstage-kill", "backstage-stop", "shader-syntax", "shader-delete", "disk", "audio", "stability")


class SetupError(Exception):
    """The soak cannot run here (the engine or the mock would not start)."""


# --- settings ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    minutes: float
    quick: bool
    phones: int
    prompters: int
    fault_every_s: float
    stop_s: float  # backstage-stop length
    shader_s: float  # shader faults' length
    stability_s: float  # each of the three Stability phases
    disk_s: float
    audio_s: float
    warmup_s: float
    recovery_limit_s: float
    grace_s: float
    memory_window_s: float
    keep: bool
    config: Path | None = None

    def duration(self, fault: str) -> float:
        return {"backstage-kill": 0.0, "backstage-stop": self.stop_s, "shader-syntax": self.shader_s,
                "shader-delete": self.shader_s, "stability": 3 * self.stability_s, "disk": self.disk_s,
                "audio": self.audio_s}[fault]


def parse_args(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help="3 minutes, faults every 20 s and shorter (each fault once), for development")
    parser.add_argument("--minutes", type=float, default=None, help="minutes of show (default 60; 3 quick)")
    parser.add_argument("--phones", type=int, default=500, help="phones connected all along")
    parser.add_argument("--prompters", type=int, default=2, help="phones among them sending a prompt every cooldown")
    parser.add_argument("--fault-every", type=float, default=None, help="seconds between faults (default 90; 20 quick)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, journal) and say where")
    parser.add_argument("--config", type=Path, default=None,
                        help="the show's config.toml for the engine (default: none, the engine's defaults; the "
                             "soak's own settings are passed as flags and win)")
    args = parser.parse_args(argv)
    quick = args.quick
    minutes = args.minutes if args.minutes is not None else (3.0 if quick else 60.0)
    if minutes <= 0 or args.phones < 1 or not 0 <= args.prompters <= args.phones:
        parser.error("need minutes > 0, phones >= 1, 0 <= prompters <= phones")
    return Settings(
        minutes=minutes, quick=quick, phones=args.phones, prompters=args.prompters,
        fault_every_s=args.fault_every if args.fault_every is not None else (20.0 if quick else 90.0),
        stop_s=5.0 if quick else 10.0, shader_s=6.0 if quick else 20.0, stability_s=8.0 if quick else 20.0,
        disk_s=10.0 if quick else 60.0, audio_s=6.0 if quick else 20.0, warmup_s=10.0 if quick else 30.0,
        recovery_limit_s=25.0 if quick else 60.0, grace_s=GRACE_S,
        memory_window_s=60.0 if quick else 300.0, keep=args.keep,
        config=args.config.resolve() if args.config is not None else None,
    )


# --- small helpers ----------------------------------------------------------------------------------


def now() -> float:
    return time.monotonic()


def free_port(taken: set[int]) -> int:
    """A free TCP port on 127.0.0.1 below the ephemeral range."""
    ports = list(range(*PORT_RANGE))
    random.Random().shuffle(ports)
    for port in ports[:300]:
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise SetupError(f"no free port in {PORT_RANGE}")


async def when(condition: Callable[[], bool], deadline: float, step: float = 0.1) -> float | None:
    """The monotonic time at which ``condition()`` first held (checked every ``step``), or None by ``deadline``."""
    while True:
        if condition():
            return now()
        if now() >= deadline:
            return None
        await asyncio.sleep(min(step, max(0.0, deadline - now())))


def _die_with_parent() -> None:
    """In a child, before exec: the kernel kills it if the soak dies (even by SIGKILL)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def prompt_texts(seed: int, n: int, moderator: Moderator) -> list[str]:
    """Distinct prompts for one phone, each unlike its last ten (the engine refuses near-duplicates)."""
    rng = random.Random(seed)
    texts: list[str] = []
    for i in itertools.count():
        if len(texts) >= n:
            break
        text = (f"a {rng.choice(ADJECTIVES)} {SUBJECTS[(seed + i) % len(SUBJECTS)]} "
                f"{PLACES[(seed * 3 + i * 5) % len(PLACES)]}, {STYLES[(seed + i * 2) % len(STYLES)]}")
        if moderator.check(text).allowed:
            texts.append(text)
    return texts


# --- the processes ----------------------------------------------------------------------------------


class Child:
    """A process the soak started, its output in a log file; ``kill()`` is safe to call any time, twice."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL it and every process under it, whatever state they are in (stopped ones too)."""
        try:
            family = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            family = []
        for p in family:
            with contextlib.suppress(psutil.Error):
                p.kill()
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self._log.close()


class Mock(Child):
    """``python -m engine.gen.mock_stability`` and its HTTP control endpoints."""

    def __init__(self, port: int, cwd: Path, env: dict[str, str]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        super().__init__([PYTHON, "-m", "engine.gen.mock_stability", "--port", str(port), "--key", API_KEY,
                          "--scale", "0.5", "--latency", str(MOCK_LATENCY), "--credits", "1000000000"],
                         cwd, env, cwd / "mock.log")
        # The mock's HTTP reader takes one request per connection comfortably: no keep-alive.
        self.http = httpx.AsyncClient(base_url=self.url, timeout=5.0,
                                      limits=httpx.Limits(max_keepalive_connections=0))

    async def ready(self, timeout: float) -> None:
        deadline = now() + timeout
        while now() < deadline:
            if not self.alive():
                raise SetupError(f"the Stability mock exited ({self.proc.returncode}): {self.log()[-500:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await self.http.get("/_mock/stats")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
        raise SetupError(f"the Stability mock did not answer within {timeout:g} s")

    async def faults(self, doc: dict[str, Any]) -> None:
        r = await self.http.post("/_mock/faults", json=doc)
        if r.status_code != 200:
            raise RuntimeError(f"mock faults {doc!r}: {r.status_code} {r.text[:200]}")

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = (await self.http.get("/_mock/stats")).json()
        return result

    async def healthy(self) -> None:
        """Back to a plain API: no script, no lockout, the usual latency (reset clears latency too)."""
        await self.http.post("/_mock/reset")
        await self.faults({"latency": MOCK_LATENCY, "rate_limit": None})

    async def close(self) -> None:
        await self.http.aclose()


class Engine(Child):
    """``python -m engine`` as the show runs it; the backstage is its child process."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        super().__init__([PYTHON, "-m", "engine", *args], cwd, env, cwd / "engine.log")
        self.show = psutil.Process(self.proc.pid)

    async def ready(self, timeout: float) -> None:
        deadline = now() + timeout
        while now() < deadline:
            if "audience server on" in self.log():
                return
            if not self.alive():
                raise SetupError(f"the engine exited at start ({self.proc.returncode}):\n{self.log()[-2000:]}")
            await asyncio.sleep(0.2)
        raise SetupError(f"the engine did not serve within {timeout:g} s:\n{self.log()[-2000:]}")

    def backstage(self) -> psutil.Process | None:
        """The live backstage process: the show's child started by multiprocessing's spawn (not its resource
        tracker). The engine calls it ``stagecraft-backstage``, a name only Python sees."""
        try:
            children = self.show.children()
        except psutil.Error:
            return None
        for child in children:
            try:
                cmd = " ".join(child.cmdline())
                if "spawn_main" in cmd and child.status() != psutil.STATUS_ZOMBIE:
                    return child
            except psutil.Error:
                continue
        return None

    def day_folders(self, output: Path) -> list[Path]:
        return sorted(p for p in output.iterdir() if p.is_dir() and re.fullmatch(r"\d{4}-\d\d-\d\d", p.name))

    async def terminate(self, timeout: float) -> int | None:
        """SIGTERM to the show's process only (not its group), as a service manager would; its exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        deadline = now() + timeout
        while self.alive() and now() < deadline:
            await asyncio.sleep(0.1)
        return self.proc.poll()


class Jack:
    """The engine's sound input: a dummy JACK server of the soak's own, under one name, that the audio fault
    SIGKILLs and starts again (each start a ``Child``, its log ``jackd-N.log``)."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.name = f"stagecraft-soak-{os.getpid()}"
        self.cwd = cwd
        self.env = {**env, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}  # for its clients
        self.server: Child | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.server.pid if self.server is not None else None

    @staticmethod
    def missing() -> str:
        """Why there can be no JACK server here ("" when there can)."""
        gone = [tool for tool in ("jackd", "jack_lsp") if shutil.which(tool) is None]
        return f"{' and '.join(gone)} not installed (Debian package jackd2)" if gone else ""

    async def start(self, timeout: float = JACK_START_S) -> None:
        """Start it and wait until it answers ``jack_lsp``."""
        self.starts += 1
        self.server = server = Child([shutil.which("jackd") or "jackd", "-n", self.name, "--no-realtime", "-d", "dummy",
                                      "-r", "48000", "-p", "512"], self.cwd, self.env,
                                     self.cwd / f"jackd-{self.starts}.log")
        deadline = now() + timeout
        while now() < deadline:
            if not server.alive():
                raise SetupError(f"jackd exited ({server.proc.returncode}): {server.log()[-500:]}")
            if await self.answers():
                return
            await asyncio.sleep(0.05)
        raise SetupError(f"jackd did not answer within {timeout:g} s: {server.log()[-500:]}")

    async def answers(self) -> bool:
        probe = await asyncio.create_subprocess_exec("jack_lsp", env=self.env, stdin=subprocess.DEVNULL,
                                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return await probe.wait() == 0

    def kill(self) -> None:
        """SIGKILL (its pid), as a crash would: its clients, the engine's sound input, are left to notice."""
        if self.server is not None:
            self.server.kill()

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 10 s; then what a killed one left in /dev/shm. jackd waits 5 s for a client that
        vanished mid-cycle (a killed engine's) before it exits: killed meanwhile, it would stay in JACK's registry
        of servers (8 at most, for all users) until a server of the same name starts again."""
        server = self.server
        if server is not None:
            if server.alive():
                server.proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    server.proc.wait(10)
            server.kill()
        for leftover in Path("/dev/shm").glob(f"jack*_{self.name}_*"):
            with contextlib.suppress(OSError):
                leftover.unlink()


# --- the crowd --------------------------------------------------------------------------------------


@dataclass
class Sent:
    """One prompt a phone sent, and what it heard of it."""

    text: str
    ref: str
    at: float
    id: str | None = None
    states: list[str] = field(default_factory=list)
    reason: str | None = None
    error: str | None = None  # an ``error`` reply naming its ref (too_long, ...)

    @property
    def accepted(self) -> bool:
        return self.id is not None and any(s in ("queued", "generating", "showing", "done", "failed")
                                           for s in self.states)

    @property
    def fate(self) -> str:
        if self.error is not None or "rejected" in self.states:
            return "refused"
        if "showing" in self.states or "done" in self.states:
            return "shown"
        if "failed" in self.states:
            return "failed"
        if self.accepted:
            return "lost"
        return "unanswered"


def address(i: int) -> str:
    """Phone i's source address: 127.0.1.1 onward, skipping .0 and .255 (127.0.0.x is the VJ's)."""
    return f"127.0.{1 + i // 254}.{1 + i % 254}"


class Phone:
    """One phone page: connects, pings, reconnects with backoff, remembers what became of its prompts."""

    def __init__(self, index: int, port: int) -> None:
        self.client_id = f"soak{os.getpid()}-{index:05d}"
        self.url = f"ws://127.0.0.1:{port}/ws?client={self.client_id}"
        self.ip = address(index)
        self.ws: ClientConnection | None = None
        self.connects = 0
        self.drops = 0
        self.answered_at = -math.inf  # the last pong
        self.last_msg = 0.0
        self.last_ping = 0.0
        self.sent: dict[str, Sent] = {}  # ref → prompt
        self.by_id: dict[str, Sent] = {}
        self.errors: list[str] = []  # codes of every error reply, in order
        self.closes: list[int | None] = []  # close codes the server sent, in order
        self._refs = itertools.count(1)

    @property
    def online(self) -> bool:
        return self.ws is not None

    async def live(self, crowd: Crowd) -> None:
        attempts = 0
        while not crowd.stop.is_set():
            ws = await self._open()
            if ws is None:
                base = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** attempts)
                attempts += 1
                await asyncio.sleep(base / 2 + random.random() * base / 2)
                continue
            attempts = 0
            await self._session(ws, crowd)
            if not crowd.reconnect:
                return
            self.drops += 1
            base = BACKOFF_MIN_S
            attempts = 1
            await asyncio.sleep(base / 2 + random.random() * base / 2)

    async def _open(self) -> ClientConnection | None:
        """A connection that has said welcome, or None (refused, timed out, closed)."""
        ws: ClientConnection | None = None
        try:
            async with asyncio.timeout(CONNECT_S):
                ws = await connect(self.url, local_addr=(self.ip, 0), ping_interval=None, close_timeout=2,
                                   open_timeout=CONNECT_S)
                first = json.loads(await ws.recv())
            if first.get("type") != "welcome":
                raise ValueError(f"first message {first.get('type')!r}")
        except (OSError, TimeoutError, WebSocketException, ValueError):
            if ws is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2):
                        await ws.close()
            return None
        self.connects += 1
        self.last_msg = now()
        for status in first.get("prompts") or ():
            self._status(status)
        return ws

    async def _session(self, ws: ClientConnection, crowd: Crowd) -> None:
        self.ws = ws
        await self.ping()  # the soak's probe: answered once this phone is really back
        try:
            while not crowd.stop.is_set():
                frame: str | bytes | None = None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TICK_S):
                        frame = await ws.recv()
                t = now()
                if frame is not None:
                    self.last_msg = t
                    self._on_frame(frame)
                if t - self.last_msg > DEAD_S:
                    break
                if t - self.last_ping >= PING_S - 0.25:
                    await self.ping()
        except ConnectionClosed as closed:
            self.closes.append(closed.rcvd.code if closed.rcvd is not None else None)
        finally:
            self.ws = None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await ws.close()

    def _on_frame(self, frame: str | bytes) -> None:
        if not isinstance(frame, str):
            return
        with contextlib.suppress(ValueError):
            msg = json.loads(frame)
            kind = msg.get("type")
            if kind == "pong":
                self.answered_at = now()
            elif kind == "status":
                self._status(msg)
            elif kind == "error":
                self.errors.append(str(msg.get("code")))
                sent = self.sent.get(msg.get("ref") or "")
                if sent is not None:
                    sent.error = str(msg.get("code"))

    def _status(self, msg: dict[str, Any]) -> None:
        pid, ref = msg.get("id"), msg.get("ref")
        sent = self.by_id.get(pid) if pid else None
        if sent is None and ref:
            sent = self.sent.get(ref)
        if sent is None:  # a status the welcome repeats for a prompt whose first reply was lost: by text
            sent = next((s for s in self.sent.values() if s.id is None and s.text == msg.get("text")), None)
        if sent is None:
            return
        if pid and sent.id is None:
            sent.id = pid
            self.by_id[pid] = sent
        state = str(msg.get("state"))
        if not sent.states or sent.states[-1] != state:
            sent.states.append(state)
        if msg.get("reason"):
            sent.reason = str(msg["reason"])

    async def send(self, data: str | bytes) -> bool:
        ws = self.ws
        if ws is None:
            return False
        try:
            await ws.send(data)
        except (ConnectionClosed, OSError):
            return False
        return True

    async def ping(self) -> None:
        self.last_ping = now()
        await self.send('{"type":"ping"}')

    async def prompt(self, text: str) -> bool:
        ref = f"s{next(self._refs)}"
        self.sent[ref] = Sent(text, ref, now())
        ok = await self.send(json.dumps({"type": "prompt", "text": text, "ref": ref}))
        if not ok:
            del self.sent[ref]  # the page would not send while offline either
        return ok


GARBAGE: tuple[tuple[str, str | bytes, str], ...] = (
    ("not JSON", "{this is not json", "bad_json"),
    ("a JSON array", "[1, 2, 3]", "bad_json"),
    ("text of the wrong type", json.dumps({"type": "prompt", "text": 42}), "wrong_type"),
    ("an unknown type", json.dumps({"type": "dance", "moves": 3}), "unknown_type"),
    ("a binary frame", b"\x00\x01\x02garbage", "binary_not_allowed"),
    ("an 8 KB frame", json.dumps({"type": "prompt", "text": "x" * 8192}), "close 1009"),
)


class Crowd:
    """Every phone, and the questions the faults ask of them all."""

    def __init__(self, count: int, port: int) -> None:
        self.phones = [Phone(i, port) for i in range(count)]
        self.stop = asyncio.Event()
        self.reconnect = True
        self.tasks: list[asyncio.Task[None]] = []
        self.garbage: list[tuple[str, str, str, str]] = []  # (what, expected, answer, what the soak was doing)

    async def start(self) -> None:
        for phone in self.phones:  # 100 handshakes a second, as a crowd arriving (asyncio's backlog is 100)
            self.tasks.append(asyncio.create_task(phone.live(self)))
            await asyncio.sleep(0.01)

    def online(self) -> int:
        return sum(p.online for p in self.phones)

    def answered_since(self, t: float) -> int:
        return sum(p.answered_at >= t for p in self.phones)

    def drops(self) -> int:
        return sum(p.drops for p in self.phones)

    async def ping_all(self) -> None:
        await asyncio.gather(*(p.ping() for p in self.phones if p.online))

    async def prompter(self, phone: Phone, texts: list[str], until: Callable[[], bool]) -> None:
        """One prompt per cooldown (plus a little), while the phone is online; texts in turn."""
        await asyncio.sleep(random.random() * COOLDOWN)
        for text in itertools.cycle(texts):
            if until():
                return
            while not phone.online and not until():
                await asyncio.sleep(0.5)
            await phone.prompt(text)
            await asyncio.sleep(COOLDOWN + random.random())

    async def send_garbage(self, phone: Phone, label: Callable[[], str]) -> None:
        """One of every kind of bad frame from one phone, each answer noted (the oversized one closes it)."""
        for what, frame, expected in GARBAGE:
            during = label()
            if not phone.online:
                self.garbage.append((what, expected, "phone offline", during))
                continue
            errors, closes = len(phone.errors), len(phone.closes)
            sent = now()
            await phone.send(frame)

            def answered_since(errors: int = errors, closes: int = closes) -> bool:
                return len(phone.errors) > errors or len(phone.closes) > closes

            answered = await when(answered_since, sent + 5.0, 0.05)
            if answered is None:
                answer = "no answer in 5 s"
            elif len(phone.closes) > closes:
                answer = f"close {phone.closes[-1]}"
            else:
                answer = phone.errors[-1]
            self.garbage.append((what, expected, answer, during))

    async def close(self) -> None:
        self.stop.set()
        self.reconnect = False
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


# --- the VJ page ------------------------------------------------------------------------------------


class VjPage:
    """The control page: logs in, watches the state parts and samples the preview for black frames."""

    def __init__(self, port: int, label: Callable[[], str]) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/vj/ws"
        self.label = label  # the fault on now, for the worst frame's note
        self.parts: dict[str, dict[str, Any]] = {}
        self.connected_at = -math.inf
        self.online = False
        self.connects = 0
        self.logins = 0
        self.samples = 0
        self.black: list[tuple[float, float, str]] = []  # (time, mean level, fault on)
        self.worst_p99 = (0.0, 0.0, "")  # (ms, time, fault on)
        self.lowest_fps = (math.inf, 0.0, "")
        self.undecodable = 0
        self.current: str | None = None
        self.frames: list[tuple[float, float]] = []  # (fps, frame_p99_ms) of every show message
        self.changes: list[tuple[float, str]] = []  # (time, what was on) of each new image on screen
        self._ws: ClientConnection | None = None

    async def login(self) -> str:
        async with httpx.AsyncClient(base_url=self.base, timeout=5.0,
                                     limits=httpx.Limits(max_keepalive_connections=0)) as http:
            r = await http.get("/vj", params={"token": TOKEN}, follow_redirects=False)
        session = r.cookies.get(COOKIE)
        if r.status_code != 303 or not session:
            raise RuntimeError(f"VJ login answered {r.status_code}")
        self.logins += 1
        return str(session)

    async def live(self, stop: asyncio.Event) -> None:
        session: str | None = None
        attempts = 0
        while not stop.is_set():
            try:
                if session is None:
                    session = await self.login()
                async with asyncio.timeout(10):
                    ws = await connect(self.ws_url, additional_headers={"Cookie": f"{COOKIE}={session}"},
                                       ping_interval=None, max_size=4 << 20, close_timeout=2)
            except InvalidStatus as err:
                if err.response.status_code == 401:  # a restarted backstage knows no sessions: log in again
                    session = None
            except (OSError, TimeoutError, WebSocketException, httpx.HTTPError, RuntimeError):
                pass
            else:
                attempts = 0
                await self._session(ws, stop)
                continue
            attempts += 1
            await asyncio.sleep(min(5.0, 0.25 * 2 ** attempts))

    async def _session(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        self.connects += 1
        self.online = True
        self.connected_at = now()
        self._ws = ws
        try:
            await ws.send(json.dumps({"type": "preview", "on": True}))
            pinged = now()
            while not stop.is_set():
                frame: str | bytes | None = None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2.0):
                        frame = await ws.recv()
                if frame is not None:
                    self._on_frame(frame)
                if now() - pinged > 10:
                    pinged = now()
                    await ws.send('{"type":"ping"}')
        except ConnectionClosed:
            pass
        finally:
            self.online = False
            self._ws = None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await ws.close()

    async def prompt(self, text: str) -> bool:
        """The VJ's own prompt (generated next, ahead of the line); False when the page is not connected."""
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(json.dumps({"type": "prompt", "text": text}))
        except ConnectionClosed:
            return False
        return True

    def _on_frame(self, frame: str | bytes) -> None:
        t = now()
        if isinstance(frame, bytes):
            if self.parts.get("show", {}).get("blackout"):
                return
            try:
                level = float(np.asarray(Image.open(io.BytesIO(frame)).convert("L"), dtype=np.float32).mean())
            except (OSError, ValueError):
                self.undecodable += 1
                return
            self.samples += 1
            if level < BLACK_LEVEL:
                self.black.append((t, level, self.label()))
            return
        with contextlib.suppress(ValueError):
            msg = json.loads(frame)
            kind = msg.pop("type", None)
            if isinstance(kind, str):
                self.parts[kind] = msg
            if kind == "show":
                p99, fps = float(msg.get("frame_p99_ms") or 0), float(msg.get("fps") or 0)
                self.frames.append((fps, p99))
                if p99 > self.worst_p99[0]:
                    self.worst_p99 = (p99, t, self.label())
                if 0 < fps < self.lowest_fps[0]:
                    self.lowest_fps = (fps, t, self.label())
                if msg.get("current") and msg.get("current") != self.current:
                    self.current = msg["current"]
                    self.changes.append((t, self.label()))

    # What the faults look at.
    def backend_status(self) -> str:
        return str(self.parts.get("backend", {}).get("status", "?"))

    def audio(self) -> str:
        return str(self.parts.get("tempo", {}).get("audio", "?"))

    def shader_error(self, name: str) -> str | None:
        """The error the VJ state shows for shader ``name`` (catalog or error list), or None."""
        shaders = self.parts.get("shaders", {})
        for info in [*shaders.get("effects", []), *shaders.get("transitions", [])]:
            if info.get("name") == name and info.get("error"):
                return str(info["error"])
        for problem in shaders.get("errors", []):
            if Path(str(problem.get("file", ""))).stem == name:
                return str(problem.get("message"))
        return None


# --- faults -----------------------------------------------------------------------------------------


@dataclass
class FaultRun:
    kind: str
    start: float  # monotonic
    end: float = 0.0
    noticed: str = ""  # what showed the engine saw it
    recovery_s: float | None = None
    phones_back_s: float | None = None  # backstage-kill only
    measure: str = ""
    notes: list[str] = field(default_factory=list)


class Faults:
    """Each fault, its undo (run on the way out if the fault was cut short), and its recovery measurement."""

    def __init__(self, s: Settings, engine: Engine, mock: Mock, crowd: Crowd, vj: VjPage, work: Path,
                 output: Path, jack: Jack | None, no_jack: str) -> None:
        self.s, self.engine, self.mock, self.crowd, self.vj = s, engine, mock, crowd, vj
        self.shader = work / "shaders" / "effects" / f"{EFFECT}.fs"
        self.output, self.jack, self.no_jack = output, jack, no_jack
        self.undo: dict[str, Callable[[], None]] = {}
        self.runs: list[FaultRun] = []
        self.active = ""

    async def run(self, kind: str) -> FaultRun:
        run = FaultRun(kind, now())
        self.runs.append(run)
        self.active = kind
        try:
            await getattr(self, kind.replace("-", "_"))(run)
        except Exception as err:  # a fault that could not be carried out is reported, the soak goes on
            run.notes.append(f"the soak could not carry it out: {type(err).__name__}: {err}")
        finally:
            self.active = ""
            if not run.end:
                run.end = now()
        return run

    def restore_all(self) -> None:
        for name, undo in list(self.undo.items()):
            with contextlib.suppress(Exception):
                undo()
            self.undo.pop(name, None)

    # 1. SIGKILL of the backstage
    async def backstage_kill(self, run: FaultRun) -> None:
        run.measure = "SIGKILL → a phone answered again; phones back: 95 % reconnected and answered a ping"
        victim = self.engine.backstage()
        if victim is None:
            run.notes.append("no backstage process found: not run")
            return
        drops = self.crowd.drops()
        victim.kill()
        run.end = t0 = now()
        limit = t0 + self.s.recovery_limit_s
        first, back = await asyncio.gather(
            when(lambda: self.crowd.answered_since(t0) >= 1, limit),
            when(lambda: self.crowd.answered_since(t0) >= 0.95 * len(self.crowd.phones), limit))
        run.recovery_s = None if first is None else first - t0
        run.phones_back_s = None if back is None else back - t0
        replaced = self.engine.backstage()
        run.noticed = f"{self.crowd.drops() - drops} phone drops"
        if replaced is None or replaced.pid == victim.pid:
            run.notes.append("no new backstage process yet")
        if back is None:
            run.notes.append(f"{self.crowd.answered_since(t0)} of {len(self.crowd.phones)} phones back "
                             f"after {self.s.recovery_limit_s:g} s")
        await when(lambda: self.vj.connected_at >= t0, now() + 10)
        vj_back = self.vj.connected_at - t0
        run.notes.append(f"VJ page back after {vj_back:.1f} s (logged in again)" if vj_back >= 0
                         else "VJ page not back")

    # 2. SIGSTOP / SIGCONT of the backstage
    async def backstage_stop(self, run: FaultRun) -> None:
        run.measure = f"SIGSTOP {self.s.stop_s:g} s; SIGCONT → 95 % of phones answered a ping"
        victim = self.engine.backstage()
        if victim is None:
            run.notes.append("no backstage process found: not run")
            return
        drops = self.crowd.drops()
        victim.suspend()
        self.undo["backstage-stop"] = lambda: victim.resume()
        await asyncio.sleep(self.s.stop_s)
        victim.resume()
        self.undo.pop("backstage-stop", None)
        run.end = t0 = now()
        await self.crowd.ping_all()
        back = await when(lambda: self.crowd.answered_since(t0) >= 0.95 * len(self.crowd.phones),
                          t0 + self.s.recovery_limit_s)
        run.recovery_s = None if back is None else back - t0
        run.noticed = f"{self.crowd.drops() - drops} phone drops"
        if back is None:
            run.notes.append(f"{self.crowd.answered_since(t0)} of {len(self.crowd.phones)} phones answered")

    # 3-4. the shader in use broken, then fixed
    async def _shader_fault(self, run: FaultRun, break_it: Callable[[bytes], None], what: str) -> None:
        original = self.shader.read_bytes()

        def fix() -> None:
            self.shader.write_bytes(original)

        self.undo[run.kind] = fix
        break_it(original)
        seen = await when(lambda: self.vj.shader_error(EFFECT) is not None, now() + self.s.shader_s)
        run.noticed = (f"error on the VJ page after {seen - run.start:.1f} s: {self.vj.shader_error(EFFECT)!r}"[:140]
                       if seen is not None else "no error on the VJ page")
        await asyncio.sleep(max(0.0, run.start + self.s.shader_s - now()))
        fix()
        self.undo.pop(run.kind, None)
        run.end = t0 = now()
        run.measure = f"{what} {self.s.shader_s:g} s; fixed → no error for {EFFECT} in the VJ state"
        ok = await when(lambda: self.vj.shader_error(EFFECT) is None, t0 + self.s.recovery_limit_s)
        run.recovery_s = None if ok is None else ok - t0

    async def shader_syntax(self, run: FaultRun) -> None:
        def garble(src: bytes) -> None:
            self.shader.write_bytes(src + b"\nthis line is not glsl (soak)\n")

        await self._shader_fault(run, garble, f"{EFFECT}.fs given a syntax error")

    async def shader_delete(self, run: FaultRun) -> None:
        await self._shader_fault(run, lambda src: self.shader.unlink(), f"{EFFECT}.fs deleted")

    # 7. Stability: 500s, then a 429 lockout, then hanging requests
    async def stability(self, run: FaultRun) -> None:
        # The hanging phase comes before the lockout: after a 429 without Retry-After the client sends nothing
        # for 60 s, so hanging requests placed after it would never be asked for.
        phases: list[tuple[str, Callable[[float], Awaitable[None]]]] = [
            ("500s", lambda left: self.mock.faults({"script": [{"status": 500}] * 20})),
            ("hanging", lambda left: self.mock.faults({"script": [{"action": "hang", "hold": max(0.5, left)}] * 3})),
            ("429 lockout", lambda left: self.mock.faults({"rate_limit": 0, "lockout": max(1.0, left)})),
        ]
        await self.mock.healthy()  # zero the mock's request counts: each phase counts its own
        seen: list[str] = []
        for name, inject in phases:
            end = now() + self.s.stability_s
            statuses: Counter[str] = Counter()
            try:
                await inject(end - now())
                while now() < end:  # scripted answers are used once each: keep a few queued
                    statuses[self.vj.backend_status()] += 1
                    if name != "429 lockout" and (await self.mock.stats())["scripted_left"] < 3:
                        await inject(end - now())
                    await asyncio.sleep(0.5)
                requests = sum(n for path, n in (await self.mock.stats())["requests"].items() if "/generate/" in path)
            finally:
                await self.mock.healthy()  # also zeroes the mock's request counts
            seen.append(f"{name}: {requests} image requests, VJ backend {'/'.join(sorted(statuses))}")
        run.end = t0 = now()
        run.noticed = "; ".join(seen)
        # The API's rule (stability-api.md): after a 429 without Retry-After, send nothing for 60 s; the breaker,
        # once open, waits its cooldown. The engine says how long its rules still hold it (resume_in, offline
        # images meanwhile): recovery is timed from the end of that wait, which no engine may shorten.
        await asyncio.sleep(SLOW_PARTS_S + 0.5)  # the VJ page's next backend state, from after the mock's return
        held = float(self.vj.parts.get("backend", {}).get("resume_in") or 0.0)
        allowed = t0 + held
        run.measure = (f"500s, hanging, 429 lockout, {self.s.stability_s:g} s each; the end of the client's own "
                       f"wait (the API's 60 s lockout, the breaker's cooldown) → the VJ page's backend status is "
                       f"ok again")
        run.notes.append(f"the client's rules held it {held:.0f} s after the mock's return (offline images "
                         f"meanwhile)")
        # Also when the engine next asks the healthy mock for an image (a request already on its way when the
        # lockout began may arrive at once, while later ones wait out the 429: a note, not the measure).
        first_request: float | None = None
        limit = allowed + self.s.recovery_limit_s
        while now() < limit:
            if first_request is None and any("/generate/" in path for path in (await self.mock.stats())["requests"]):
                first_request = now() - t0
            if self.vj.backend_status() == "ok":
                run.recovery_s = max(0.0, now() - allowed)
                break
            await asyncio.sleep(0.25)
        if first_request is not None:
            run.notes.append(f"the first image request reached the healthy mock after {first_request:.1f} s")
        if run.recovery_s is None:
            backend = self.vj.parts.get("backend", {})
            run.notes.append(f"backend still {backend.get('status')!r}: {backend.get('line', '')}"[:160])

    # 5. the day folder refuses new files
    async def disk(self, run: FaultRun) -> None:
        folders = self.engine.day_folders(self.output)
        if not folders:
            run.notes.append("no day folder yet: not run")
            return
        folder = folders[-1]
        how = lock_folder(folder)
        self.undo["disk"] = lambda: unlock_folder(folder, how)
        run.notes.append(f"{folder.name}/ made unwritable with {how}")
        mark = len(self.engine.log())
        # An image to write while the folder refuses it: the VJ's prompt goes ahead of the line.
        if not await self.vj.prompt("the soak's disk test: a lighthouse in a storm"):
            run.notes.append("the VJ page was not connected: no image made on purpose during the fault")
        await asyncio.sleep(max(0.0, run.start + self.s.disk_s - now()))
        unlock_folder(folder, how)
        self.undo.pop("disk", None)
        run.end = t0 = now()
        logged = self.engine.log()[mark:]
        run.noticed = ("engine logged 'cannot write images'" if "cannot write images" in logged
                       else "nothing logged (no image to write during the fault?)")
        files = image_files(folder)
        run.measure = (f"folder refuses new files {self.s.disk_s:g} s, a VJ prompt made meanwhile; writable → the "
                       f"next image file appears")
        ok = await when(lambda: bool(image_files(folder) - files), t0 + self.s.recovery_limit_s, 0.25)
        run.recovery_s = None if ok is None else ok - t0

    # 6. the JACK server of the sound input dies and comes back
    async def audio(self, run: FaultRun) -> None:
        if self.jack is None:
            run.notes.append(f"no JACK server, {self.no_jack}: not run")
            return
        before = self.vj.audio()
        if before != JACK_DEVICE:
            run.notes.append(f"the engine was not listening to {JACK_DEVICE!r} before the fault: {before!r}"[:160])
        self.jack.kill()
        states: Counter[str] = Counter()
        gone: tuple[float, str] | None = None
        while now() < run.start + self.s.audio_s:
            state = self.vj.audio()
            states[state] += 1
            if gone is None and state != JACK_DEVICE:
                gone = (now() - run.start, state)
            await asyncio.sleep(0.25)
        started = now()
        await self.jack.start()
        run.end = t0 = now()
        run.measure = (f"jackd SIGKILLed, started again {self.s.audio_s:g} s later; answering jack_lsp → the VJ "
                       f"state's tempo.audio names {JACK_DEVICE!r} again")
        run.notes.append(f"jackd answered {t0 - started:.1f} s after its start; audio states during the fault: "
                         f"{', '.join(sorted(states))}"[:200])
        run.noticed = (f"after {gone[0]:.1f} s: {gone[1]!r}"[:160] if gone is not None
                       else f"no: the VJ state named {JACK_DEVICE!r} all along")
        ok = await when(lambda: self.vj.audio() == JACK_DEVICE, t0 + self.s.recovery_limit_s)
        run.recovery_s = None if ok is None else ok - t0
        if ok is None:
            run.notes.append(f"audio still {self.vj.audio()!r}"[:160])


def image_files(folder: Path) -> set[str]:
    try:
        return {p.name for p in folder.iterdir() if IMAGE_FILE.match(p.name)}
    except OSError:
        return set()


def lock_folder(folder: Path) -> str:
    """Make ``folder`` refuse new files, in a way that holds for root too; checked by trying. Returns how."""
    def chattr() -> None:
        subprocess.run(["chattr", "+i", str(folder)], check=True, capture_output=True, timeout=10)

    tries: list[tuple[str, Callable[[], None]]] = [("chattr +i", chattr)] if shutil.which("chattr") else []
    tries.append(("chmod 555", lambda: folder.chmod(0o555)))
    for how, lock in tries:
        try:
            lock()
        except (OSError, subprocess.SubprocessError):
            continue
        probe = folder / ".soak-probe"
        try:
            probe.write_bytes(b"x")
        except OSError:
            return how
        probe.unlink()
        unlock_folder(folder, how)
    raise RuntimeError("could not make the folder refuse writes (no chattr, and root ignores permissions)")


def unlock_folder(folder: Path, how: str) -> None:
    if how == "chattr +i":
        subprocess.run(["chattr", "-i", str(folder)], check=False, capture_output=True, timeout=10)
    else:
        folder.chmod(0o755)


# --- watching ---------------------------------------------------------------------------------------


@dataclass
class Watch:
    """What the soak samples all along: memory, CPU, whether the show is up."""

    memory: list[tuple[float, int, int, int]] = field(default_factory=list)  # (time, show RSS, backstage RSS, pid)
    show_exit: tuple[float, int] | None = None  # (time, code) if the show exited before the SIGTERM
    cpu_start: tuple[float, float] = (0.0, 0.0)  # (busy, total) seconds of the machine
    cpu_end: tuple[float, float] = (0.0, 0.0)


def machine_cpu() -> tuple[float, float]:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + t.steal, sum(t)


async def watch(engine: Engine, w: Watch, stop: asyncio.Event) -> None:
    next_memory = now()
    while not stop.is_set():
        if w.show_exit is None and not engine.alive():
            w.show_exit = (now(), engine.proc.returncode)
            stop.set()  # the run cannot go on without a show
            return
        if now() >= next_memory:
            next_memory += MEMORY_EVERY_S
            bs = engine.backstage()
            try:
                show_rss = engine.show.memory_info().rss
                bs_rss = bs.memory_info().rss if bs is not None else 0
            except psutil.Error:
                continue
            w.memory.append((now(), show_rss, bs_rss, bs.pid if bs is not None else 0))
        await asyncio.sleep(0.5)


# --- the run ----------------------------------------------------------------------------------------


@dataclass
class Results:
    settings: Settings
    engine_args: list[str] = field(default_factory=list)
    audio: str = ""  # the engine's sound input
    t0: float = 0.0  # the show's start (phones online)
    t_end: float = 0.0  # the end of the show's minutes (prompts stop, the grace period starts)
    t_term: float = 0.0  # the SIGTERM
    connect_s: float | None = None
    watch: Watch = field(default_factory=Watch)
    faults: list[FaultRun] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    prompts: list[Sent] = field(default_factory=list)
    prompt_owner: dict[int, str] = field(default_factory=dict)  # id(Sent) → client id
    settled_s: float | None = None
    journal: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    log: str = ""
    note: str = ""
    crowd: Crowd | None = None
    vj: VjPage | None = None


class Soak:
    def __init__(self, s: Settings) -> None:
        self.s = s
        self.work = Path(tempfile.mkdtemp(prefix="stagecraft-soak-"))
        self.output = self.work / "output"
        self.r = Results(s)
        self.mock: Mock | None = None
        self.engine: Engine | None = None
        self.faults: Faults | None = None
        self.jack: Jack | None = None
        self.phase = "start-up"  # what the soak is doing when no fault is on, for the report's notes

    def stage(self) -> dict[str, str]:
        """The temporary folder: a copy of the shaders; the environment the children run in."""
        shutil.copytree(ROOT / "shaders", self.work / "shaders")
        self.output.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        return env

    async def sound_input(self, env: dict[str, str]) -> tuple[list[str], dict[str, str], str]:
        """The JACK server, if there can be one: the engine's ``--audio`` flag, its environment, and why not."""
        no_jack = Jack.missing()
        if not no_jack:
            self.jack = Jack(self.work, env)
            try:
                await self.jack.start()
            except SetupError as err:
                no_jack = f"it would not start: {err}"
                self.jack.stop()
                self.jack = None
        if self.jack is None:
            print(f"  [start] no JACK server for the sound input: {no_jack}; the engine runs with --audio none "
                  "and the audio fault is not run", flush=True)
            self.r.audio = f"none (no JACK server: {no_jack})"[:200]
            return ["--audio", "none"], env, no_jack
        print(f"  [start] JACK server {self.jack.name} up (pid {self.jack.pid})", flush=True)
        self.r.audio = f"{JACK_DEVICE!r} of the dummy JACK server {self.jack.name}"
        return ["--audio", JACK_DEVICE], self.jack.env, ""

    async def run(self) -> Results:
        s, r = self.s, self.r
        taken: set[int] = set()
        env = self.stage()
        mock_port, port = free_port(taken), free_port(taken)
        print(f"  [start] temporary folder {self.work}", flush=True)
        self.mock = Mock(mock_port, self.work, env)
        await self.mock.ready(30)
        audio_args, env, no_jack = await self.sound_input(env)
        env = {**env, "STABILITY_API_KEY": API_KEY, "STABILITY_API_HOST": self.mock.url}
        r.engine_args = [
            "--headless", "--size", SIZE, "--generator", "stability", "--port", str(port),
            "--output", str(self.output), "--vj-token", TOKEN, *audio_args, "--effect", EFFECT,
            "--set", f'shaders.dir="{self.work / "shaders"}"', "--set", 'server.host="127.0.0.1"',
            "--set", f"audience.cooldown={COOLDOWN}",
            # Each phone has its own address, so the per-address caps stay the engine's; room for all of them.
            "--set", f"server.max_connections={max(12000, 2 * s.phones)}",
        ]
        if s.config is not None:
            r.engine_args += ["--config", str(s.config)]
        self.engine = Engine(r.engine_args, self.work, env)
        await self.engine.ready(120)
        print(f"  [start] engine up (show pid {self.engine.pid}), mock on {mock_port}, audience on {port}",
              flush=True)

        crowd = Crowd(s.phones, port)
        r.crowd = crowd
        vj = VjPage(port, self.label)
        self.faults = faults = Faults(s, self.engine, self.mock, crowd, vj, self.work, self.output, self.jack, no_jack)
        r.vj = vj
        stop = asyncio.Event()
        vj_task = asyncio.create_task(vj.live(stop))
        started = now()
        await crowd.start()
        online = await when(lambda: crowd.online() >= 0.95 * s.phones, now() + 120, 0.25)
        r.connect_s = None if online is None else online - started
        print(f"  [start] {crowd.online()} of {s.phones} phones online"
              + (f" after {r.connect_s:.1f} s" if r.connect_s is not None else " (95 % not reached in 120 s)"),
              flush=True)

        r.t0 = now()
        self.phase = "warm-up"
        r.watch.cpu_start = machine_cpu()
        end = r.t0 + 60 * s.minutes
        show_over = asyncio.Event()
        background = [asyncio.create_task(watch(self.engine, r.watch, show_over))]
        texts = Moderator.from_files()
        for k, phone in enumerate(crowd.phones[: s.prompters]):
            background.append(asyncio.create_task(
                crowd.prompter(phone, prompt_texts(k, 400, texts), lambda: now() >= end or show_over.is_set())))
        background.append(asyncio.create_task(self.garbage(crowd, end, show_over)))
        try:
            await self.fault_schedule(end, show_over)
            if show_over.is_set():
                r.note = "the show's process exited mid-run: the run stopped there"
            # Prompts stop at the end; what was accepted gets the grace period to reach the screen.
            r.t_end = now()
            self.phase = "grace period"
            r.watch.cpu_end = machine_cpu()
            print(f"  [{self.t():6.1f} s] show over: grace period for accepted prompts (up to {s.grace_s:g} s)",
                  flush=True)
            settled = await when(lambda: show_over.is_set() or not any(
                p.accepted and p.fate == "lost" for phone in crowd.phones for p in phone.sent.values()),
                now() + s.grace_s, 0.5)
            r.settled_s = None if settled is None else settled - r.t_end
            crowd.reconnect = False
            background[0].cancel()  # the watch: the show is about to exit, on purpose
            print(f"  [{self.t():6.1f} s] SIGTERM to the show", flush=True)
            r.t_term = now()
            r.exit_code = await self.engine.terminate(30)
            if r.exit_code is None:
                self.engine.kill()  # before the journal is read below
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            stop.set()
            vj_task.cancel()
            await asyncio.gather(vj_task, return_exceptions=True)
            await crowd.close()
        for phone in crowd.phones:
            for p in phone.sent.values():
                r.prompts.append(p)
                r.prompt_owner[id(p)] = phone.client_id
        r.faults = faults.runs
        r.log = self.engine.log()
        r.journal = read_journal(self.engine.day_folders(self.output), r)
        return r

    def t(self) -> float:
        return now() - self.r.t0

    def label(self) -> str:
        """What is going on now: the fault on, or the soak's phase."""
        return (self.faults.active if self.faults is not None else "") or self.phase

    async def fault_schedule(self, end: float, show_over: asyncio.Event) -> None:
        """Faults in turn, one every ``fault_every_s`` at most, each measured before the next; then wait."""
        assert self.faults is not None
        s = self.s
        next_at = self.r.t0 + s.warmup_s
        for kind in itertools.cycle(FAULTS):
            if show_over.is_set():
                return
            if next_at + s.duration(kind) >= end:
                break
            await wait_until(next_at, show_over)
            if show_over.is_set():
                return
            print(f"  [{self.t():6.1f} s] fault: {kind}", flush=True)
            run = await self.faults.run(kind)
            self.phase = "between faults"
            rec = "not within the limit" if run.recovery_s is None else f"{run.recovery_s:.1f} s"
            print(f"  [{self.t():6.1f} s]   {kind}: recovery {rec}; noticed: {run.noticed}", flush=True)
            next_at = max(run.start + s.fault_every_s, now() + 1.0)
        done = {f.kind for f in self.faults.runs}
        self.r.skipped = [k for k in FAULTS if k not in done]
        self.phase = "after the last fault"
        await wait_until(end, show_over)

    async def garbage(self, crowd: Crowd, end: float, show_over: asyncio.Event) -> None:
        """Once a minute, one phone (not a prompter) sends every kind of garbage; not while the backstage is
        killed or stopped (its answers would come late, or not at all, and say nothing about the garbage)."""
        others = crowd.phones[self.s.prompters:] or crowd.phones
        for n in itertools.count():
            if await wait_until(min(end, self.r.t0 + 45 + 60 * n), show_over) or now() >= end:
                return
            await when(lambda: not self.label().startswith("backstage-"), min(end, now() + 60), 0.5)
            await crowd.send_garbage(others[(n * 37) % len(others)], self.label)

    def cleanup(self) -> None:
        """Whatever happened: undo the faults, kill the children, remove (or keep) the temporary folder."""
        if self.faults is not None:
            self.faults.restore_all()
        for child in (self.engine, self.mock):
            if child is not None:
                child.kill()
        if self.jack is not None:
            self.jack.stop()
        for folder in self.output.glob("*"):  # an immutable folder would survive rmtree
            if folder.is_dir():
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    if shutil.which("chattr"):
                        unlock_folder(folder, "chattr +i")
                    unlock_folder(folder, "chmod 555")
        if self.s.keep:
            print(f"\nkept: {self.work} (engine.log, mock.log, jackd-N.log, output/)")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


async def wait_until(t: float, stop: asyncio.Event) -> bool:
    """Sleep until monotonic ``t`` or until ``stop`` is set; True if stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, t - now()))
    return stop.is_set()


def read_journal(folders: list[Path], r: Results) -> dict[str, Any]:
    """After the show stopped: every accepted prompt in the journal? images without a file? unanswered ones?"""
    found: dict[str, Any] = {}
    by_client: dict[str, set[str]] = {}
    files_missing = 0
    errors: list[str] = []
    accepted = [p for p in r.prompts if p.id is not None and p.accepted]
    for folder in folders:
        try:
            journal = Journal.open(folder.parent, today=datetime.date.fromisoformat(folder.name))
        except Exception as err:
            errors.append(f"{folder.name}: {type(err).__name__}: {err}")
            continue
        with journal:
            for p in accepted:
                if p.id is not None and p.id not in found and (rec := journal.prompt(p.id)) is not None:
                    found[p.id] = rec.state
                    for image in journal.images(p.id):
                        path = journal.image_path(image.id)
                        files_missing += path is None or not path.is_file()
            for client in {r.prompt_owner[id(p)] for p in r.prompts if p.fate == "unanswered"}:
                by_client.setdefault(client, set()).update(x.text for x in journal.prompts(client, limit=10000))
    unanswered = [p for p in r.prompts if p.fate == "unanswered"]
    journaled = sum(p.text in by_client.get(r.prompt_owner[id(p)], set()) for p in unanswered)
    return {"accepted": len(accepted), "found": len(found), "states": Counter(str(s) for s in found.values()),
            "files_missing": files_missing, "unanswered_in_journal": journaled, "errors": errors,
            "folders": [f.name for f in folders]}


# --- the report -------------------------------------------------------------------------------------


class Report:
    def __init__(self, r: Results) -> None:
        self.r = r
        self.met: list[bool] = []

    def verdict(self, ok: bool) -> str:
        self.met.append(ok)
        return "ok" if ok else "MISS"

    def line(self, label: str, figure: str, target: str = "", ok: bool | None = None) -> None:
        mark = "" if ok is None else self.verdict(ok)
        print(f"  {label:<34} {figure:<44} {target:<18} {mark}".rstrip())

    def print(self) -> None:
        r, s = self.r, self.r.settings
        print("\n=== soak report ===")
        print(f"  {s.minutes:g} min of show{' (quick)' if s.quick else ''}, {s.phones} phones "
              f"({s.prompters} sending a prompt every {COOLDOWN:g} s), VJ page with preview, fault every "
              f"{s.fault_every_s:g} s at most; sound input {r.audio}")
        print(f"  engine: python -m engine {' '.join(r.engine_args)}")
        busy = (r.watch.cpu_end[0] - r.watch.cpu_start[0]) / max(1e-9, r.watch.cpu_end[1] - r.watch.cpu_start[1])
        print(f"  machine: {psutil.cpu_count()} cores, {100 * busy:.0f} % busy during the show (all processes)")
        if r.note:
            print(f"  NOTE: {r.note}")
        print()
        self.show()
        self.prompts()
        self.faults()
        self.memory()
        self.exit()
        print(f"\n{sum(self.met)} of {len(self.met)} targets met (figures are reported, never asserted)")

    def show(self) -> None:
        r, vj = self.r, self.r.vj
        crashed = r.watch.show_exit is not None
        self.line("show crashes", f"{int(crashed)}" + (f" (exit {r.watch.show_exit[1]} at "
                  f"{r.watch.show_exit[0] - r.t0:.0f} s)" if r.watch.show_exit else ""), "0", not crashed)
        if vj is None:
            return
        black = len(vj.black)
        self.line("black frames (preview samples)", f"{black} of {vj.samples} samples", "0",
                  black == 0 and vj.samples > 0)
        for t, level, fault in vj.black[:5]:
            print(f"    black at {t - r.t0:.1f} s (mean {level:.1f}/255, during: {fault})")
        p99, t, fault = vj.worst_p99
        self.line("longest frame (worst rolling p99)", f"{p99:.1f} ms at {t - r.t0:.0f} s, during: {fault}")
        if vj.frames:
            fps_p50, p99_p50 = np.median(np.array(vj.frames), axis=0)
            self.line("typical (median of the run)", f"{fps_p50:.1f} fps, rolling p99 {p99_p50:.1f} ms")
        fps, t, fault = vj.lowest_fps
        if fps < math.inf:
            self.line("lowest fps (rolling, 240 frames)", f"{fps:.1f} at {t - r.t0:.0f} s, during: {fault}")
        changes = [(t, label) for t, label in vj.changes if r.t0 <= t <= (r.t_term or now())]
        if len(changes) >= 2:
            gap, (t, label) = max((b[0] - a[0], b) for a, b in itertools.pairwise(changes))
            self.line("new images on screen", f"{len(changes)}; longest wait {gap:.0f} s, ending at "
                      f"{t - r.t0:.0f} s (during: {label})")
        self.line("VJ page", f"{vj.connects} connections, {vj.logins} logins")
        if r.connect_s is not None:
            self.line("phones online at start", f"95 % after {r.connect_s:.1f} s")

    def prompts(self) -> None:
        r = self.r
        fates = Counter(p.fate for p in r.prompts)
        print()
        self.line("prompts sent", f"{len(r.prompts)}: " + ", ".join(f"{n} {k}" for k, n in sorted(fates.items())))
        self.line("prompts lost", f"{fates['lost']}", "0", fates["lost"] == 0)
        reasons = Counter((p.reason or p.error or "?")[:70] for p in r.prompts if p.fate == "refused")
        for reason, n in reasons.most_common(5):
            print(f"    refused x{n}: {reason}")
        for p in [p for p in r.prompts if p.fate == "lost"][:5]:
            print(f"    lost: {p.id} sent at {p.at - r.t0:.0f} s, heard {'/'.join(p.states)}")
        if r.settled_s is not None:
            print(f"    every accepted prompt settled {r.settled_s:.0f} s after the show's end")
        j = r.journal
        self.line("accepted prompts in the journal", f"{j.get('found', 0)} of {j.get('accepted', 0)}"
                  f" (states: {dict(j.get('states', {}))})", "all",
                  j.get("found", 0) == j.get("accepted", 0) and not j.get("errors"))
        self.line("their images without a file", f"{j.get('files_missing', 0)}")
        if fates["unanswered"]:
            print(f"    unanswered prompts found in the journal anyway: {j.get('unanswered_in_journal', 0)} "
                  f"of {fates['unanswered']}")
        for err in j.get("errors", []):
            print(f"    journal: {err}")
        if r.crowd is not None and r.crowd.garbage:
            rounds = len(r.crowd.garbage) // len(GARBAGE)
            print(f"  garbage, {rounds} rounds (the engine's answer to each kind of bad frame):")
            for what, _, expected in GARBAGE:
                answers = Counter(answer if answer == expected else f"{answer} (during: {during})"
                                  for w, _, answer, during in r.crowd.garbage if w == what)
                print(f"    {what} (expected {expected}): " + ", ".join(f"{a} x{n}" for a, n in answers.items()))

    def faults(self) -> None:
        r = self.r
        print("\n  faults (recovery: see the module docstring for what each measures)")
        for f in r.faults:
            rec = "never (limit)" if f.recovery_s is None else f"{f.recovery_s:.1f} s"
            self.line(f"{f.kind} at {f.start - r.t0:.0f} s", f"recovered in {rec}", f"< {TARGET_RECOVERY_S:g} s",
                      f.recovery_s is not None and f.recovery_s < TARGET_RECOVERY_S)
            if f.kind == "backstage-kill" and f.recovery_s is not None:
                back = "never (limit)" if f.phones_back_s is None else f"{f.phones_back_s:.1f} s"
                self.line("  phones back (95 %)", back, f"< {TARGET_PHONES_BACK_S:g} s",
                          f.phones_back_s is not None and f.phones_back_s < TARGET_PHONES_BACK_S)
            print(f"    measured: {f.measure}")
            if f.noticed:
                print(f"    noticed: {f.noticed}")
            for note in f.notes:
                print(f"    note: {note}")
        if r.skipped:
            print(f"  not run (no time left in the run): {', '.join(r.skipped)}")

    def memory(self) -> None:
        r, s = self.r, self.r.settings
        w = s.memory_window_s
        samples = [m for m in r.watch.memory if m[0] <= r.t_end]
        print()
        if len(samples) < 2:
            self.line("memory", "too few samples")
            return

        def growth(label: str, rows: list[tuple[float, int]], judged: bool, note: str = "") -> None:
            t_first, t_last = rows[0][0], rows[-1][0]
            a = float(np.mean([v for t, v in rows if t <= t_first + w]))
            b = float(np.mean([v for t, v in rows if t >= t_last - w]))
            pct = 100 * (b - a) / a
            self.line(label, f"{a / 2**20:.0f} → {b / 2**20:.0f} MB, {pct:+.1f} %{note}",
                      f"< {TARGET_MEMORY_GROWTH:g} %" if judged else "", pct < TARGET_MEMORY_GROWTH if judged else None)

        span = f"first/last {w / 60:g} min"
        growth(f"show RSS, {span}", [(t, show) for t, show, _, _ in samples], True)
        backstage = [(t, rss, pid) for t, _, rss, pid in samples if rss]
        if not backstage:
            return
        firsts = {pid for t, _, pid in backstage if t <= backstage[0][0] + w}
        lasts = {pid for t, _, pid in backstage if t >= backstage[-1][0] - w}
        restarted = firsts != lasts
        growth(f"backstage RSS, {span}", [(t, rss) for t, rss, _ in backstage], not restarted,
               " (different processes: killed and restarted in between; not judged)" if restarted else "")
        if restarted:  # the one that lived longest, over its own life
            lives: dict[int, list[tuple[float, int]]] = {}
            for t, rss, pid in backstage:
                lives.setdefault(pid, []).append((t, rss))
            pid, life = max(lives.items(), key=lambda kv: kv[1][-1][0] - kv[1][0][0])
            minutes = (life[-1][0] - life[0][0]) / 60
            if len(life) >= 4 and minutes * 60 >= 2 * w:
                growth(f"  longest-lived backstage ({minutes:.0f} min)", life, True)
            else:
                print(f"    no backstage process lived {2 * w / 60:g} min (longest: {minutes:.1f} min)")

    def exit(self) -> None:
        r = self.r
        print()
        code = "still running after 30 s (killed)" if r.exit_code is None else str(r.exit_code)
        self.line("exit code after SIGTERM", code, "0", r.exit_code == 0)
        tracebacks = [m.start() for m in re.finditer("Traceback", r.log)]
        self.line("'Traceback' in the engine's log", f"{len(tracebacks)}", "0", not tracebacks)
        for at in tracebacks[:3]:
            lines = r.log[at:].splitlines()
            last = next((ln for ln in lines[1:40] if ln and not ln.startswith((" ", "Traceback", "During"))), "")
            head = r.log[:at].splitlines()[-1:] or [""]
            print(f"    after: {head[0][:110]}")
            print(f"    ends:  {last[:110]}")
        levels = Counter(m.group(1) for m in re.finditer(r"^\S+ (ERROR|WARNING|CRITICAL) ", r.log, re.M))
        print(f"    engine log: {dict(levels)} (ERROR/WARNING lines, faults included)")
        errors = Counter(re.sub(r"\d+", "N", m.group(1))[:100]
                         for m in re.finditer(r"^\S+ ERROR\s+(.*)$", r.log, re.M))
        for text, n in errors.most_common(8):
            print(f"      ERROR x{n}: {text}")


# --- entry point ------------------------------------------------------------------------------------


async def run(s: Settings) -> int:
    soak = Soak(s)
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:  # SIGTERM takes the same way out as Ctrl-C: every finally runs, the children die
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        results = await soak.run()
    except SetupError as err:
        print(f"cannot run the soak: {err}", file=sys.stderr)
        return 1
    except asyncio.CancelledError:
        print("\ninterrupted: children killed, faults undone", file=sys.stderr)
        return 130
    finally:
        with contextlib.suppress(Exception):
            if soak.mock is not None:
                await soak.mock.close()
        soak.cleanup()
    Report(results).print()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    # Ctrl-C stops the soak even when it was started with SIGINT ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return asyncio.run(run(settings))
    except KeyboardInterrupt:
        print("\ninterrupted: children killed, faults undone", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
