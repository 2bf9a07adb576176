"""Render benchmark, outputs rows: NDI out and recording, each on against off at 1920x1080, in one run.

For each output, two twin engine loops (``ShowLoop`` with an ``OutputHub``, on the synthetic 60 fps clock)
are drawn frame by frame in turns. A twin's measured frames fall in stints of equal length, three roles
in a cycle, the twins out of step on the first two:

    twin A:  on      beside  quiet  on      beside  quiet ...
    twin B:  beside  on      quiet  beside  on      quiet ...

"on": the hub reads the frame back (PBOs) and hands it to the output; "beside": the hub is off, but the other
twin's output is running, so the output's threads compete for the cores during this frame as during an "on"
one; "quiet": no output runs in the process (before a quiet stint the output's threads are waited for until
idle). So on/beside prices the hub's own work in the frame (show-thread CPU, and its read-back in GL: at the
program's size a direct read, else a scale pass first), frame by frame; on/quiet prices everything, the
output's threads competing for the cores included, in neighbouring stints. Threads that run beside the show
cannot be priced frame by frame: whatever an "on" frame hands them, they work off during the frames that
follow, whichever twin draws those.

The hubs finish the frame (``ctx.finish()``) before their own work, on and off alike, so that
``OutputHub.frame``'s wall time is the hub's alone; on llvmpipe this moves no work, since the read-back
waits for the frame there anyway.

NDI: one real ``NdiSink`` (cyndilib) named by ``[output] ndi``, shared by both twins' hubs (one sender,
as a show has), no receiver. An NDI sender listens on 0.0.0.0 and announces itself by multicast, so this
part runs in a child process inside a loopback-only network namespace (``unshare -n``, NDI pointed at
127.0.0.1 through ``NDI_CONFIG_DIR``); the child checks it sees no interface but ``lo`` before it sends.
Where no namespace can be made, a row says NDI was skipped and why: it is never sent on the real network.

Recording: each twin's hub owns a ``Recorder`` (``[record] preset`` ultrafast, 8000 kbit/s) writing into
a temporary folder, deleted at the end. One file per twin: a twin that turns on again hands out the two
read-backs still in flight from its last stint, and in the other twin's file those would come late.

CPU of the output's own threads comes from ``/proc/self/task/<tid>/schedstat`` (ns on a CPU; ``stat``'s
utime + stime where schedstat is missing), over the measured frames, per frame sent or encoded. The
threads: the Python thread named ``output-ndi`` or ``output-record`` (found through
``threading.enumerate``), plus the native threads born after the output was made and before the
measurement ended (NDI's ``ndis:*``/``disc:*``, x264's workers). The show thread's CPU is
``time.thread_time`` around the frame, as in the other rows.

Run through ``bench/render.py`` (``--only-outputs`` for these rows alone); ``--child-ndi`` is the
namespace child's entry point.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import moderngl
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.render import (  # noqa: E402
    PLAIN_IMAGE,
    PLAIN_TRANSITION_S,
    EngineLoop,
    Series,
    bench_config,
    make_image,
    median,
    merged,
    p99,
    print_row,
    run_interleaved,
    verdict,
    wall_and_cpu,
)
from engine.config import Config  # noqa: E402
from engine.output.hub import OutputHub, make_sinks  # noqa: E402
from engine.output.sink import OutputState, Sink  # noqa: E402
from engine.render.gl import standalone_context  # noqa: E402
from tests.netns import NDI_CONFIG, netns_problem  # noqa: E402  (the tests' namespace probe and NDI config)

SIZE = (1920, 1080)
SHOW_FPS = 60.0
NDI_NAME = "Stagecraft bench"
RECORD_PRESET = "ultrafast"
TARGET_RATIO = 1.10
ROLES = ("on", "beside", "quiet")
PATTERNS = (("on", "beside", "quiet"), ("beside", "on", "quiet"))  # twin A, twin B
WARMUP_MAX = 10  # warm-up frames per twin: enough to open the sender or encoder
WARMUP_MIN = 3  # a read-back hands a frame out two frames after its grab
SETTLE_IDLE_NS = 1_000_000  # the output's threads are idle once they take less than 1 ms in ...
SETTLE_POLL_S = 0.05  # ... 50 ms,
SETTLE_MAX_S = 3.0  # waiting no longer than this
START_TIMEOUT_S = 10.0
CHILD_TIMEOUT_S = 900
MET_PREFIX = "MET "  # the child's last line: the targets met, as JSON


# --- the output's threads -------------------------------------------------------------------


Snapshot = dict[int, tuple[str, int]]  # tid -> (comm, CPU ns so far)


def _cpu_ns(task: Path) -> int:
    try:
        return int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):  # no schedstat in this kernel: clock ticks from stat
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def threads_now() -> Snapshot:
    """Every thread of this process with its CPU time so far; {} where there is no /proc."""
    out: Snapshot = {}
    root = Path("/proc/self/task")
    try:
        tids = os.listdir(root)
    except OSError:
        return out
    for tid in tids:
        try:
            out[int(tid)] = ((root / tid / "comm").read_text().strip(), _cpu_ns(root / tid))
        except (OSError, ValueError, IndexError):  # the thread ended meanwhile
            continue
    return out


def python_threads() -> dict[int, str]:
    return {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}


class OutputThreads:
    """The threads an output added to the process: its Python thread(s) by name, and the native ones born since."""

    def __init__(self, python_name: str) -> None:
        self.python_name = python_name
        self.before: Snapshot = {}

    def mark(self) -> None:
        """Take note of the threads there are before the output starts: those born later are its own."""
        self.before = threads_now()

    def groups(self, snap: Snapshot) -> tuple[set[int], set[int]]:
        """(the output's Python threads, the native threads born since it was made)."""
        names = python_threads()
        own = {tid for tid, name in names.items() if name == self.python_name and tid in snap}
        native = {tid for tid in snap if tid not in self.before and tid not in names}
        return own, native

    def cpu_ns(self, snap: Snapshot) -> int:
        own, native = self.groups(snap)
        return sum(snap[tid][1] for tid in own | native)

    def settle(self) -> None:
        """Wait until the output's threads are idle, so that a quiet frame pays nothing for earlier frames."""
        deadline = time.monotonic() + SETTLE_MAX_S
        last = self.cpu_ns(threads_now())
        while time.monotonic() < deadline:
            time.sleep(SETTLE_POLL_S)
            now = self.cpu_ns(threads_now())
            if now - last < SETTLE_IDLE_NS:
                return
            last = now


@dataclass(frozen=True)
class ThreadCost:
    """CPU ms the output's threads took over the measured frames: its Python thread(s), the native ones."""

    own_ms: float
    native_ms: float
    native_names: tuple[str, ...]  # the native threads' names, busiest first
    native_count: int
    measured: bool  # False where /proc could not be read


def thread_cost(threads: OutputThreads, start: Snapshot, end: Snapshot) -> ThreadCost:
    own, native = threads.groups(end)

    def spent(tids: set[int]) -> float:
        return sum(end[t][1] - (start[t][1] if t in start else 0) for t in tids) / 1e6

    by_name: dict[str, float] = {}
    for tid in native:
        by_name[end[tid][0]] = by_name.get(end[tid][0], 0.0) + spent({tid})
    names = tuple(sorted(by_name, key=lambda n: -by_name[n]))
    return ThreadCost(spent(own), spent(native), names, len(native), bool(end))


# --- the twins ------------------------------------------------------------------------------


class GatedHub(OutputHub):
    """An ``OutputHub`` the benchmark turns on and off; off, the show sees a hub without outputs.

    On, ``frame()`` is timed (wall and the show thread's CPU), so the hub's own share is known.
    """

    def __init__(
        self, ctx: moderngl.Context, cfg: Config, size: tuple[int, int], sinks: Sequence[Sink] | None = None
    ) -> None:
        super().__init__(ctx, cfg, size, SHOW_FPS, sinks=sinks)
        self.on = False  # off while the twin is built and primed: the output starts with the warm-up
        self.last_ms = (0.0, 0.0)

    def frame(self, target: moderngl.Framebuffer, size: tuple[int, int], now: float, index: int) -> None:
        # The frame finished first, on and off alike, so that the wall time below is the hub's own: its scale
        # pass and read-back. On llvmpipe this moves no work (the read-back waits for the frame there anyway).
        self.ctx.finish()
        if not self.on:
            return
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        super().frame(target, size, now, index)
        self.last_ms = ((time.perf_counter() - wall0) * 1000.0, (time.thread_time() - cpu0) * 1000.0)

    def states(self) -> tuple[OutputState, ...]:
        # A show without outputs publishes the recorder's state only (the NDI sink's asks NDI for receivers).
        return super().states() if self.on else (self.recorder.state(),)


class OutputTwin(EngineLoop):
    """``EngineLoop`` whose hub is on, off beside its twin's output, or off in a quiet stint, by ``pattern``."""

    def __init__(
        self,
        ctx: moderngl.Context,
        cfg: Config,
        images: Sequence[np.ndarray],
        hub: GatedHub,
        pattern: tuple[str, ...],
        stint: int,
        threads: OutputThreads,
    ) -> None:
        self.hub = hub
        super().__init__(ctx, cfg, SIZE, images, outputs=hub)
        self.pattern, self.stint, self.threads = pattern, stint, threads
        self.measured = 0
        self.roles = {role: Series() for role in ROLES}
        self.hub_ms = Series()  # OutputHub.frame on the show thread, per "on" frame

    def frame(self, record: bool) -> None:
        role = self.pattern[(self.measured // self.stint) % len(self.pattern)] if record else "on"
        if record and role == "quiet" and self.measured % self.stint == 0:
            self.threads.settle()
        self.hub.on = role == "on"
        super().frame(record)
        if record:
            self.measured += 1
            self.roles[role].add(self.series.wall_ms[-1], self.series.cpu_ms[-1])
            if role == "on":
                self.hub_ms.add(*self.hub.last_ms)


@dataclass(frozen=True)
class Counts:
    frames: int  # sent or encoded
    dropped: int
    receivers: int
    bytes: int


def counts(states: Sequence[OutputState]) -> Counts:
    return Counts(sum(s.frames for s in states), sum(s.dropped for s in states),
                  max((s.receivers for s in states), default=-1), sum(s.bytes for s in states))


@dataclass
class Measured:
    twins: tuple[OutputTwin, OutputTwin]
    cost: ThreadCost
    start: Counts
    end: Counts
    detail: str  # the output's state line at the end


def measure(
    twins: tuple[OutputTwin, OutputTwin],
    threads: OutputThreads,
    warmup: int,
    frames: int,
    states: Callable[[], Sequence[OutputState]],
) -> Measured:
    gc.collect()
    gc.freeze()  # as render.py and the app do: start-up objects out of the collector's way
    try:
        run_interleaved(twins, warmup, 0, 1)
        snap0, count0 = threads_now(), counts(states())
        run_interleaved(twins, 0, frames, 1)
        snap1, count1 = threads_now(), counts(states())
    finally:
        gc.unfreeze()
    detail = "; ".join(s.detail for s in states())
    return Measured(twins, thread_cost(threads, snap0, snap1), count0, count1, detail)


def release_all(twins: Sequence[OutputTwin], hubs: Sequence[GatedHub]) -> None:
    """Release the twins (each closes its hub: a recording is finalised) and any hub no twin got."""
    owned = {id(t.hub) for t in twins}
    for twin in twins:
        twin.release()
    for hub in hubs:
        if id(hub) not in owned:
            hub.close()


def stint_for(frames: int) -> int:
    """Stints of a sixth of the measured frames: every role twice per twin."""
    return max(1, frames // (2 * len(ROLES)))


# --- report ---------------------------------------------------------------------------------


def report_twins(what: str, m: Measured) -> list[bool]:
    """The rows every output shares: on, beside and quiet frames, the ratios, the hub on the show thread."""
    role = {r: merged([t.roles[r] for t in m.twins]) for r in ROLES}
    on, beside, quiet = role["on"], role["beside"], role["quiet"]
    q_med, q_p99 = median(on.wall_ms) / median(quiet.wall_ms), p99(on.wall_ms) / p99(quiet.wall_ms)
    b_med, b_p99 = median(on.wall_ms) / median(beside.wall_ms), p99(on.wall_ms) / p99(beside.wall_ms)
    print_row(f"{what} off, quiet: {len(quiet.wall_ms)} frames", wall_and_cpu(quiet),
              "baseline: no output running in the process")
    print_row(f"{what} off, beside: {len(beside.wall_ms)} frames", wall_and_cpu(beside),
              "the other twin's output running meanwhile")
    print_row(f"{what} on: {len(on.wall_ms)} frames", wall_and_cpu(on))
    print_row(
        f"{what} on / off quiet",
        [f"{q_med:.2f}x", f"{q_p99:.2f}x"],
        f"target <= {TARGET_RATIO:.2f}x: median {verdict(q_med <= TARGET_RATIO)}, p99 {verdict(q_p99 <= TARGET_RATIO)}"
        " (all costs; neighbouring stints)",
    )
    print_row(f"{what} on / off beside", [f"{b_med:.2f}x", f"{b_p99:.2f}x"],
              "for information: the hub's own work, frame by frame (the output's threads busy beside both)")
    hub = merged([t.hub_ms for t in m.twins])
    print_row("  of which OutputHub.frame (on)", wall_and_cpu(hub),
              "after ctx.finish(): read-back (direct at full size), hand-off")
    print_row(f"show CPU/frame, {what} on - off",
              [f"{median(on.cpu_ms) - median(quiet.cpu_ms):+.2f}", f"{median(on.cpu_ms) - median(beside.cpu_ms):+.2f}"],
              "ms, difference of the medians: against quiet, against beside")
    return [q_med <= TARGET_RATIO, q_p99 <= TARGET_RATIO]


def per_frame(ms: float, frames: int) -> str:
    return f"{ms / frames:.2f}" if frames > 0 else "n/a"


def process_name() -> str:
    try:
        return Path("/proc/self/comm").read_text().strip()
    except OSError:
        return ""


def report_threads(label: str, own_name: str, native_label: str, m: Measured, done: int) -> None:
    c = m.cost
    if not c.measured:
        print_row(label, [], "n/a: no /proc/self/task here to read threads' CPU time")
        return
    # Threads that never named themselves carry the name of the thread that made them (the process's).
    names = [n for n in c.native_names if n != process_name()] or ["unnamed"]
    listed = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    print_row(label, [per_frame(c.own_ms + c.native_ms, done)],
              f"ms = {own_name} {per_frame(c.own_ms, done)} + {native_label} {per_frame(c.native_ms, done)} "
              f"({c.native_count} threads: {listed})")


def report_ndi(m: Measured) -> list[bool]:
    met = report_twins("NDI", m)
    sent, dropped = m.end.frames - m.start.frames, m.end.dropped - m.start.dropped
    report_threads("NDI sender: CPU per sent frame", "output-ndi thread", "NDI runtime", m, sent)
    print_row("NDI frames while measuring", [sent, dropped],
              f"sent, dropped (mailbox); {m.end.receivers} receivers (NDI 6 compresses every frame even with none)")
    print_row("  sender", [], m.detail)
    return met


def report_record(m: Measured, final: Sequence[OutputState]) -> list[bool]:
    met = report_twins("record", m)
    done, dropped = m.end.frames - m.start.frames, m.end.dropped - m.start.dropped
    report_threads("encoder: CPU per encoded frame", "output-record threads", "x264's", m, done)
    print_row("encoded frames while measuring", [done, dropped], "encoded, dropped (queue full or late)")
    print_row("  files", [], f"{len(final)} of {sum(s.seconds for s in final):.1f} s, "
              f"{sum(s.bytes for s in final) / 1e6:.1f} MB in all ({RECORD_PRESET}), deleted; "
              + "; ".join(f"{s.state}: {s.detail}" for s in final))
    return met


# --- NDI, in a loopback-only namespace -----------------------------------------------------


def only_loopback() -> str | None:
    """Why this process must not send NDI (an interface beside ``lo``), or None."""
    try:
        names = sorted(name for _, name in socket.if_nameindex())
    except OSError as err:
        return f"cannot list network interfaces: {err}"
    if names != ["lo"]:
        return f"interfaces {', '.join(names)} are not loopback only"
    if not os.environ.get("NDI_CONFIG_DIR"):
        return "NDI_CONFIG_DIR is not set"
    return None


def measure_ndi(ctx: moderngl.Context, frames: int, warmup: int, images: Sequence[np.ndarray]) -> list[bool]:
    """The NDI rows, in this process; it must be the namespace child (checked first)."""
    problem = only_loopback()
    if problem is not None:
        print_row("NDI on vs off: skipped", [], f"refusing to send NDI here: {problem}")
        return []
    cfg = bench_config(SIZE, PLAIN_TRANSITION_S, {"output.ndi": NDI_NAME})
    threads = OutputThreads("output-ndi")
    sinks = make_sinks(cfg, SIZE, SHOW_FPS)  # the hub's own factory: one NdiSink, shared by both twins
    hubs = [GatedHub(ctx, cfg, SIZE, sinks) for _ in PATTERNS]
    twins: list[OutputTwin] = []
    try:
        for hub, pattern in zip(hubs, PATTERNS, strict=True):
            twins.append(OutputTwin(ctx, cfg, images, hub, pattern, stint_for(frames), threads))
        a, b = twins
        threads.mark()  # the sender opens with the first frame the warm-up hands it

        def states() -> list[OutputState]:
            return [s.state() for s in sinks]

        m = measure((a, b), threads, warmup, frames, states)
        if not m.detail or states()[0].state != "on":
            print_row("NDI on vs off: failed", [], f"the sink is not sending: {states()[0]}")
            return []
        return report_ndi(m)
    finally:
        release_all(twins, hubs)
        for sink in sinks:
            sink.close()


def run_ndi_child(frames: int, warmup: int) -> list[bool]:
    """Run the NDI rows in a child inside a loopback-only namespace; print its rows; the targets it met."""
    problem = netns_problem()
    if problem is not None:
        print_row("NDI on vs off: skipped", [], f"no loopback-only network namespace ({problem}); "
                  "NDI is never sent on the real network")
        return []
    with tempfile.TemporaryDirectory(prefix="ndi-config-") as config_dir:
        (Path(config_dir) / "ndi-config.v1.json").write_text(json.dumps(NDI_CONFIG))
        env = {**os.environ, "NDI_CONFIG_DIR": config_dir}
        # $0 and $@ of the shell: the Python and its arguments, so that nothing needs quoting.
        command = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', sys.executable,
                   str(Path(__file__).resolve()), "--child-ndi", "--frames", str(frames), "--warmup", str(warmup)]
        try:
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=CHILD_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            print_row("NDI on vs off: failed", [], f"the namespace child ran over {CHILD_TIMEOUT_S} s")
            return []
    met: list[bool] = []
    for line in done.stdout.splitlines():
        if line.startswith(MET_PREFIX):
            met = [bool(v) for v in json.loads(line[len(MET_PREFIX):])]
        else:
            print(line)
    if done.returncode != 0:
        print_row("NDI on vs off: failed", [], f"the namespace child exited {done.returncode}:")
        for line in done.stderr.strip().splitlines()[-8:]:
            print(f"    {line}")
    return met


# --- recording ------------------------------------------------------------------------------


def measure_record(ctx: moderngl.Context, frames: int, warmup: int, images: Sequence[np.ndarray]) -> list[bool]:
    with tempfile.TemporaryDirectory(prefix="stagecraft-bench-record-") as folder:
        cfg = bench_config(SIZE, PLAIN_TRANSITION_S, {
            "record.preset": RECORD_PRESET, "record.audio": False, "store.output_dir": folder,
        })
        hubs = [GatedHub(ctx, cfg, SIZE) for _ in PATTERNS]
        twins: list[OutputTwin] = []
        try:
            threads = OutputThreads("output-record")
            for hub, pattern in zip(hubs, PATTERNS, strict=True):
                twins.append(OutputTwin(ctx, cfg, images, hub, pattern, stint_for(frames), threads))
            threads.mark()  # x264's threads start with the first frame encoded
            for hub, name in zip(hubs, "ab", strict=True):
                hub.record(True, str(Path(folder) / f"twin-{name}.mp4"))
            deadline = time.monotonic() + START_TIMEOUT_S
            while not all(h.recorder.recording for h in hubs) and time.monotonic() < deadline:
                time.sleep(0.02)
            if not all(h.recorder.recording for h in hubs):
                why = "; ".join(f"{s.state}: {s.detail}" for h in hubs for s in OutputHub.states(h)[-1:])
                print_row("record on vs off: failed", [], f"the recording did not start: {why}")
                return []
            a, b = twins
            m = measure((a, b), threads, warmup, frames, lambda: [h.recorder.state() for h in hubs])
        finally:
            release_all(twins, hubs)  # finalises the files
        return report_record(m, [h.recorder.state() for h in hubs])


# --- entry points ---------------------------------------------------------------------------


def report_outputs(ctx: moderngl.Context, frames: int, warmup: int) -> list[bool]:
    """Print the outputs rows at 1920x1080 (NDI through a namespace child); return whether each target was met."""
    warmup = min(max(warmup, WARMUP_MIN), WARMUP_MAX)
    images = [make_image(PLAIN_IMAGE, seed) for seed in (1, 2)]
    w, h = SIZE
    stint = stint_for(frames)
    print()
    print(f"  outputs twins at {w}x{h}: two engine loops with an OutputHub, {frames} measured frames each after "
          f"{warmup} warm-up, frame by frame;")
    print(f"  roles in stints of {stint} frames: on, off beside the other twin's output, off quiet (no output "
          "running); see bench/render_outputs.py")
    print_row(f"{w}x{h} outputs", ["median", "p99", "cpu med", "cpu p99"], "(ms; cpu = show-thread CPU)")
    met = run_ndi_child(frames, warmup)
    met += measure_record(ctx, frames, warmup, images)
    print(f"  note: {os.cpu_count()} CPUs and software GL here, so these ratios are a worst case: the hub's read-back "
          "is CPU work (OutputHub.frame's wall),")
    print("  and llvmpipe's rendering, the NDI runtime and x264 compete for the same cores; on a GPU machine the "
          "read-back is GPU work and the render leaves the cores to them.")
    return met


def child_main(frames: int, warmup: int) -> None:
    images = [make_image(PLAIN_IMAGE, seed) for seed in (1, 2)]
    ctx = standalone_context()
    try:
        met = measure_ndi(ctx, frames, warmup, images)
    finally:
        ctx.release()
    print(MET_PREFIX + json.dumps(met), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the outputs rows of bench/render.py (run that instead)")
    parser.add_argument("--child-ndi", action="store_true", help="internal: the NDI rows, in the namespace child")
    parser.add_argument("--frames", type=int, default=120, help="measured frames per twin")
    parser.add_argument("--warmup", type=int, default=WARMUP_MAX, help="warm-up frames per twin")
    args = parser.parse_args(argv)
    if args.child_ndi:
        child_main(args.frames, args.warmup)
        return
    ctx = standalone_context()
    try:
        met = report_outputs(ctx, args.frames, args.warmup)
    finally:
        ctx.release()
    print(f"\n{sum(met)} of {len(met)} targets met (figures are reported, never asserted)")


if __name__ == "__main__":
    main()
