"""Render benchmark: the engine's per-frame path against a bare moderngl floor.

At 1280x720 and 1920x1080, for a crossfade plus the glow effect, in one run:

1. engine: ``ShowLoop.frame(now, fbo)`` - commands, upload step, director plan,
   ``Compositor.render``, stats and snapshot - with a transition always in progress;
2. floor: the same two shader passes at the same size (crossfade of two image textures into an
   offscreen texture, glow from it into the target) drawn by a loop that does nothing else;
3. engine/floor for the median and p99 frame (target <= 1.15x);
4. ``ShowLoop.cpu_ms``: the show thread's CPU per frame outside GL calls (target < 1 ms);
5. arrivals: a 2048x2048 image enters the inbox every 30 frames and goes the real way (queue,
   ``Uploader`` bands within ``render.upload_mb_per_frame``, ``Director``); the worst frame among
   those that take or upload an image, against the median frame of the same loop (target <= 1.5x);
6. preview on vs off: two twin engine loops drawn frame by frame in turns, one watched by a control
   page (``board.preview_viewers`` 1, ``vj.preview_fps`` 5: every 12th frame grabs), the other not,
   swapping roles every 60 frames; on/off for the median and p99 frame (target <= 1.10x), the
   worst grabbing frame against the median "off" frame, and, for information, what backstage then
   pays to JPEG-encode one preview;
7. outputs at 1920x1080 (bench/render_outputs.py): NDI on vs off and recording on vs off, each by two
   twin engine loops with an ``OutputHub``, frame by frame, in stints on, off beside the other twin's
   output, and off with no output running; on/off (the latter) for the median and p99 frame (target
   <= 1.10x), the show thread's CPU per frame on and off, and the CPU per frame sent (NDI sender) or
   encoded (x264) of the output's own threads. NDI runs in a child process inside a loopback-only
   network namespace, or is skipped with the reason; it is never sent on the real network.
8. projection mapping at 1920x1080 (bench/render_mapping.py): corner pin + 16x16 mesh + edge blend
   against the same texture copied unwarped, frame by frame; the difference per frame (target <= 0.5 ms)
   and the ratio, with the pin, the mesh and masks priced on their own.

Why ratios: on llvmpipe (software GL) absolute times swing up to 2x between runs on a shared
machine, so only figures taken in the same run, interleaved, compare. A frame's time is wall time
around the frame and ``ctx.finish()``, so the rendering itself is counted; the show thread's CPU
time (``time.thread_time``) is printed beside it, since llvmpipe renders on other threads. The
engine runs on a synthetic 60 fps clock, so every frame sees the same show time whatever the
machine's speed. Missed targets are reported, never asserted: the script exits 0.

Run from the repository root: ``.venv/bin/python bench/render.py`` (``--quick`` for a smoke run,
``--only-outputs`` for item 7 alone).
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import moderngl
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.config import Config, with_overrides  # noqa: E402
from engine.contract import Inbox, ShowImage  # noqa: E402
from engine.output.hub import OutputHub  # noqa: E402
from engine.render import builtin  # noqa: E402
from engine.render.fit import fit_transform  # noqa: E402
from engine.render.gl import standalone_context  # noqa: E402
from engine.render.show_loop import ShowLoop  # noqa: E402
from engine.shaders.gltransition import parse_gl_transition  # noqa: E402
from engine.shaders.loader import load_shader  # noqa: E402
from engine.shaders.params import ParamStore  # noqa: E402
from engine.shaders.translate import translate  # noqa: E402

GLOW = ROOT / "shaders" / "effects" / "glow.fs"
SIZES: tuple[tuple[int, int], ...] = ((1280, 720), (1920, 1080))
FRAME_DT = 1.0 / 60.0  # the synthetic clock: a 60 fps show
JOIN_URL = "http://192.168.1.20:3000"

PLAIN_IMAGE = 1024  # the images crossfaded in the engine/floor comparison (a typical generated image)
ARRIVAL_IMAGE = 2048  # the images that arrive during the upload measurement (render.max_image_size)
ARRIVAL_EVERY = 30  # frames between two arrivals
# The comparison's transition is the longest the config allows, so it is still running on the last
# measured frame: at 60 fps, 60 s last 3600 frames, more than warm-up and measurement together.
PLAIN_TRANSITION_S = 60.0
# Arrivals: each transition lasts exactly ARRIVAL_EVERY frames (half a frame short, so rounding
# cannot add one). The director then takes images exactly as fast as they come: a transition is
# always running (a frame showing one image alone samples one texture twice and is cheaper), and
# every image leaves the queue on the frame it arrives instead of waiting for the director.
ARRIVAL_TRANSITION_S = (ARRIVAL_EVERY - 0.5) * FRAME_DT
MAX_FRAMES = 3500  # warm-up + measured frames, so the comparison's transition never ends
PRIME_FRAMES_MAX = 64

TARGET_RATIO = 1.15
TARGET_CPU_MS = 1.0
TARGET_ARRIVAL_RATIO = 1.5

PREVIEW_FPS = 5.0  # vj.preview_fps: at 60 fps, every 12th frame grabs while someone watches
PREVIEW_WIDTH = 384
PREVIEW_QUALITY = 70
PREVIEW_STINT = 60  # measured frames a twin spends watched (or not) before the twins swap roles
TARGET_PREVIEW_RATIO = 1.10
JPEG_RUNS = 20

BASE_OVERRIDES: dict[str, object] = {
    "render.max_image_size": 2048,
    "shaders.effects": ["glow"],
    "shaders.dir": str(ROOT / "shaders"),
    "show.hold": 0.0,
}


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Series:
    """Per-frame wall and thread-CPU times of one loop, in milliseconds."""

    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def add(self, wall_ms: float, cpu_ms: float) -> None:
        self.wall_ms.append(wall_ms)
        self.cpu_ms.append(cpu_ms)


def median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def p99(values: Sequence[float]) -> float:
    return float(np.percentile(values, 99)) if len(values) else float("nan")


def timed(ctx: moderngl.Context, draw: Callable[[], None]) -> tuple[float, float]:
    """Wall and thread-CPU milliseconds of ``draw()`` plus ``ctx.finish()`` (the GPU's share)."""
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    draw()
    ctx.finish()
    return (time.perf_counter() - wall0) * 1000.0, (time.thread_time() - cpu0) * 1000.0


class Loop(Protocol):
    def frame(self, record: bool) -> None: ...

    def release(self) -> None: ...


def run_interleaved(loops: Sequence[Loop], warmup: int, frames: int, block: int) -> None:
    """Warm every loop up, then measure them in turns of ``block`` frames each.

    On this shared 2-core machine the speed changes under us: other tenants of the host slow
    every frame by up to 2x, in bursts of a fraction of a second to seconds. Measuring one loop
    after another would charge a burst to whichever loop ran during it. Taking turns spreads the
    bursts evenly over all loops, so a ratio between two loops compares like with like. The
    default turn is a single frame, the finest split: every frame ends in ``ctx.finish()``, so no
    work of one loop overlaps the next, and each loop binds its own textures and buffers anyway.
    The order reverses every round so no loop always runs right after the same other one.
    """
    for loop in loops:
        for _ in range(warmup):
            loop.frame(record=False)
    done = 0
    rounds = 0
    while done < frames:
        n = min(block, frames - done)
        for loop in loops if rounds % 2 == 0 else list(reversed(loops)):
            for _ in range(n):
                loop.frame(record=True)
        done += n
        rounds += 1


# --- shared set-up --------------------------------------------------------------------------


def make_image(side: int, seed: int) -> np.ndarray:
    """An opaque (side, side, 4) uint8 picture; noise, so no texture cache gets an easy ride."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(side, side, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    return pixels


def bench_config(size: tuple[int, int], transition: float, extra: dict[str, object] | None = None) -> Config:
    w, h = size
    overrides = {**BASE_OVERRIDES, "show.transition": transition, "window.width": w, "window.height": h}
    return with_overrides(Config(), {**overrides, **(extra or {})})


def color_target(ctx: moderngl.Context, size: tuple[int, int]) -> moderngl.Framebuffer:
    return ctx.framebuffer(color_attachments=[ctx.texture(size, 4)])


def release_target(fb: moderngl.Framebuffer) -> None:
    for att in fb.color_attachments:
        att.release()
    fb.release()


class SyntheticClock:
    """Show time that advances one 60 fps frame per call, whatever the machine's speed."""

    def __init__(self) -> None:
        self.now = 0.0

    def tick(self) -> float:
        now = self.now
        self.now += FRAME_DT
        return now


def prime(
    show: ShowLoop, clock: SyntheticClock, target: moderngl.Framebuffer, images: Sequence[np.ndarray]
) -> None:
    """Bring image 0 on screen and image 1 in, through the inbox, so measuring starts mid-transition.

    The first image fades in from the idle screen; the clock jumps over that fade so the idle
    visual (not part of this benchmark) is drawn only once.
    """
    for i, pixels in enumerate(images[:2]):
        show.inbox.images.put(ShowImage(f"prime-{i}", pixels))
    for _ in range(PRIME_FRAMES_MAX):
        d = show.director
        if d.current is not None and d.incoming is not None:
            return
        show.frame(clock.now, target)
        if show.errors:
            raise RuntimeError(f"the engine reported an error while priming: {show.errors[-1]}")
        clock.now += d.transition if (d.current is None and d.incoming is not None) else FRAME_DT
    raise RuntimeError("the director never got to a transition between two images")


# --- the three loops ------------------------------------------------------------------------


def uniform(prog: moderngl.Program, name: str) -> moderngl.Uniform | None:
    """The named uniform, or None where the driver stripped it as unused."""
    member = prog.get(name, None)
    return member if isinstance(member, moderngl.Uniform) else None


class FloorLoop:
    """The same two passes the compositor draws, by the least code that can draw them."""

    def __init__(
        self, ctx: moderngl.Context, cfg: Config, size: tuple[int, int], images: Sequence[np.ndarray]
    ) -> None:
        self.ctx = ctx
        self.series = Series()
        self.frames = 0
        slot = cfg.render.max_image_size
        # Same as the engine's slots: square textures of the largest size, the image in a corner.
        self.textures = [self._slot_texture(slot, pixels) for pixels in images[:2]]
        self.mix_tex = ctx.texture(size, 4)
        self.mix_tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self.mix_tex.repeat_x = self.mix_tex.repeat_y = False
        self.mix_fb = ctx.framebuffer(color_attachments=[self.mix_tex])
        self.target = color_target(ctx, size)
        # The very GLSL the engine compiles: the built-in crossfade and the library's glow, translated.
        crossfade = translate(parse_gl_transition(Path("builtin:crossfade"), builtin.CROSSFADE_GL_TRANSITION))
        self.glow_src = load_shader(GLOW)
        glow = translate(self.glow_src)
        self.mix_prog = ctx.program(vertex_shader=crossfade.vertex, fragment_shader=crossfade.fragment)
        self.glow_prog = ctx.program(vertex_shader=glow.vertex, fragment_shader=glow.fragment)
        self.mix_vao = ctx.vertex_array(self.mix_prog, [])
        self.glow_vao = ctx.vertex_array(self.glow_prog, [])
        self._set_constant_uniforms(cfg, size, images)
        progress = uniform(self.mix_prog, "progress")
        if progress is None:
            raise RuntimeError("the crossfade shader lost its progress uniform")
        self._progress = progress
        # Drivers strip unused uniforms; set TIME only where a pass reads it.
        self._times = [u for p in (self.mix_prog, self.glow_prog) if (u := uniform(p, "TIME")) is not None]

    def _slot_texture(self, slot: int, pixels: np.ndarray) -> moderngl.Texture:
        tex = self.ctx.texture((slot, slot), 4)
        tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        tex.repeat_x = tex.repeat_y = False
        h, w = pixels.shape[:2]
        tex.write(pixels, viewport=(0, 0, w, h))
        return tex

    def _set_constant_uniforms(
        self, cfg: Config, size: tuple[int, int], images: Sequence[np.ndarray]
    ) -> None:
        """Set once what the compositor sets every frame: samplers, fit transforms, sizes."""
        w, h = size
        slot = cfg.render.max_image_size
        half = 0.5 / slot
        values: dict[tuple[moderngl.Program, str], object] = {
            (self.mix_prog, "ratio"): w / h,
            (self.glow_prog, "inputImage"): 0,
            (self.glow_prog, "RENDERSIZE"): (float(w), float(h)),
        }
        params = ParamStore()
        params.adapt(self.glow_src.inputs)
        for name, value in params.values().items():
            values[self.glow_prog, name] = value
        for unit, (which, pixels) in enumerate(zip(("From", "To"), images[:2], strict=True)):
            fit = fit_transform(size, (pixels.shape[1], pixels.shape[0]), slot, cfg.show.fit)
            values[self.mix_prog, f"u{which}"] = unit
            values[self.mix_prog, f"u{which}Xform"] = fit.as_xform()
            values[self.mix_prog, f"u{which}Region"] = (*fit.region, half, half)
        for (prog, name), value in values.items():
            if (u := uniform(prog, name)) is not None:
                u.value = value

    def _draw(self) -> None:
        t = self.frames * FRAME_DT
        self._progress.value = (t / PLAIN_TRANSITION_S) % 1.0
        for u in self._times:
            u.value = t
        # State set every frame because the engine loops share this context (and texture units).
        self.ctx.disable(moderngl.BLEND)
        self.mix_fb.use()
        self.textures[0].use(0)
        self.textures[1].use(1)
        self.mix_vao.render(moderngl.TRIANGLES, vertices=3)
        self.target.use()
        self.mix_tex.use(0)
        self.glow_vao.render(moderngl.TRIANGLES, vertices=3)

    def frame(self, record: bool) -> None:
        wall, cpu = timed(self.ctx, self._draw)
        self.frames += 1
        if record:
            self.series.add(wall, cpu)

    def release(self) -> None:
        for vao in (self.mix_vao, self.glow_vao):
            vao.release()
        for prog in (self.mix_prog, self.glow_prog):
            prog.release()
        for tex in self.textures:
            tex.release()
        release_target(self.mix_fb)
        release_target(self.target)


class EngineLoop:
    """``ShowLoop.frame`` on a synthetic clock, into an offscreen target, mid-transition."""

    def __init__(
        self,
        ctx: moderngl.Context,
        cfg: Config,
        size: tuple[int, int],
        images: Sequence[np.ndarray],
        outputs: OutputHub | None = None,
    ) -> None:
        self.ctx = ctx
        self.series = Series()
        self.cpu_ms: list[float] = []  # ShowLoop.cpu_ms per recorded frame
        self.clock = SyntheticClock()
        self.target = color_target(ctx, size)
        self.show = ShowLoop(ctx, cfg, size, Inbox(), JOIN_URL, outputs=outputs)
        prime(self.show, self.clock, self.target, images)

    def frame(self, record: bool) -> None:
        now = self.clock.tick()
        wall, cpu = timed(self.ctx, lambda: self.show.frame(now, self.target))
        # ShowLoop.frame reports a failure instead of raising; a failed frame is no measurement.
        if self.show.errors:
            raise RuntimeError(f"the engine reported an error, figures would be void: {self.show.errors[-1]}")
        if record:
            self.series.add(wall, cpu)
            self.cpu_ms.append(self.show.cpu_ms)

    def release(self) -> None:
        self.show.release()
        release_target(self.target)


class ArrivalLoop(EngineLoop):
    """``EngineLoop`` with a new 2048x2048 image put in the inbox every ``ARRIVAL_EVERY`` frames.

    An arrival frame is the one that takes an image from the queue, and every later frame that
    writes a band of it: the uploader was busy before it.
    """

    def __init__(
        self,
        ctx: moderngl.Context,
        cfg: Config,
        size: tuple[int, int],
        images: Sequence[np.ndarray],
        first_arrival: int,
    ) -> None:
        super().__init__(ctx, cfg, size, images)
        self.images = images
        self.first_arrival = first_arrival
        self.frames = 0
        self.sent = 0
        self.arrival: list[bool] = []  # per recorded frame

    def frame(self, record: bool) -> None:
        if self.frames >= self.first_arrival and (self.frames - self.first_arrival) % ARRIVAL_EVERY == 0:
            pixels = self.images[self.sent % len(self.images)]
            self.show.inbox.images.put(ShowImage(f"arrival-{self.sent}", pixels))
            self.sent += 1
        queued, busy = self.show.inbox.images.qsize(), self.show.uploader.busy
        super().frame(record)
        self.frames += 1
        if record:
            self.arrival.append(busy or self.show.inbox.images.qsize() < queued)

    def split(self) -> tuple[Series, Series]:
        """The recorded frames as (arrival frames, the other frames)."""
        hits, rest = Series(), Series()
        for wall, cpu, hit in zip(self.series.wall_ms, self.series.cpu_ms, self.arrival, strict=True):
            (hits if hit else rest).add(wall, cpu)
        return hits, rest


class PreviewLoop(EngineLoop):
    """``EngineLoop`` whose control page comes and goes, to price the live preview.

    Two twins run in turns, frame by frame (``run_interleaved``), one watched while the other is
    not, swapping every ``PREVIEW_STINT`` measured frames: so every "on" frame has an "off" frame
    drawn right beside it on the same machine, and each twin is on as often as off (a difference
    between the two instances cancels out). With frames of 50 to 200 ms here, turns of 30 frames
    of one loop would last seconds, as long as the host's slow spells. Warm-up is watched, so both
    twins have compiled the preview shader before measuring.
    """

    def __init__(
        self,
        ctx: moderngl.Context,
        cfg: Config,
        size: tuple[int, int],
        images: Sequence[np.ndarray],
        watched_first: bool,
    ) -> None:
        super().__init__(ctx, cfg, size, images)
        self.watched_first = watched_first
        self.measured = 0
        self.on, self.off, self.grabbing = Series(), Series(), Series()

    def _grabs(self) -> int:
        return self.show.grabber.grabs if self.show.grabber is not None else 0

    def frame(self, record: bool) -> None:
        on = not record or ((self.measured // PREVIEW_STINT) % 2 == 0) == self.watched_first
        self.show.board.preview_viewers = 1 if on else 0
        grabs = self._grabs()
        super().frame(record)
        if record:
            self.measured += 1
            wall, cpu = self.series.wall_ms[-1], self.series.cpu_ms[-1]
            (self.on if on else self.off).add(wall, cpu)
            if self._grabs() > grabs:
                self.grabbing.add(wall, cpu)

    def jpeg(self) -> tuple[float, int, tuple[int, int]] | None:
        """Backstage's share: median ms to JPEG-encode the last preview, its bytes, its (w, h)."""
        pixels = self.show.board.preview()[1]
        if pixels is None:
            return None
        times, size = [], 0
        for _ in range(JPEG_RUNS):
            out = io.BytesIO()
            t0 = time.perf_counter()
            Image.fromarray(pixels).save(out, "JPEG", quality=PREVIEW_QUALITY)
            times.append((time.perf_counter() - t0) * 1000.0)
            size = out.tell()
        return median(times), size, (pixels.shape[1], pixels.shape[0])


# --- one size -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    frames: int
    warmup: int
    block: int
    preview_frames: int
    outputs_frames: int = 0  # 0: no outputs rows
    only_outputs: bool = False


@dataclass
class SizeResult:
    size: tuple[int, int]
    floor: FloorLoop
    engine: EngineLoop
    arrivals: ArrivalLoop
    previews: tuple[PreviewLoop, PreviewLoop]


def measure_size(
    ctx: moderngl.Context,
    size: tuple[int, int],
    settings: Settings,
    plain: Sequence[np.ndarray],
    big: Sequence[np.ndarray],
) -> SizeResult:
    plain_cfg = bench_config(size, PLAIN_TRANSITION_S)
    arrival_cfg = bench_config(size, ARRIVAL_TRANSITION_S)
    floor = FloorLoop(ctx, plain_cfg, size, plain)
    engine = EngineLoop(ctx, plain_cfg, size, plain)
    # Arrivals fall on the first measured frame and every ARRIVAL_EVERY frames before and after it,
    # so a warm-up of at least ARRIVAL_EVERY frames warms the upload path too.
    arrivals = ArrivalLoop(ctx, arrival_cfg, size, big, first_arrival=settings.warmup % ARRIVAL_EVERY)
    preview_cfg = bench_config(size, PLAIN_TRANSITION_S, {
        "vj.preview_fps": PREVIEW_FPS, "vj.preview_width": PREVIEW_WIDTH, "vj.preview_quality": PREVIEW_QUALITY,
    })
    previews = (PreviewLoop(ctx, preview_cfg, size, plain, True), PreviewLoop(ctx, preview_cfg, size, plain, False))
    loops: list[Loop] = [floor, engine, arrivals]
    # As the app does: start-up objects out of the collector's way, so collections stay short.
    gc.collect()
    gc.freeze()
    try:
        run_interleaved(loops, settings.warmup, settings.frames, settings.block)
        # Warm-up: at least one watched frame compiles the preview shader; 1 frame per turn, always.
        run_interleaved(previews, max(1, settings.warmup), settings.preview_frames, 1)
    finally:
        for loop in (*loops, *previews):
            loop.release()
        gc.unfreeze()
    return SizeResult(size, floor, engine, arrivals, previews)


# --- report ---------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def print_header(ctx: moderngl.Context, settings: Settings) -> None:
    cfg = bench_config(SIZES[0], PLAIN_TRANSITION_S)
    turns = "frame by frame" if settings.block == 1 else f"in turns of {settings.block} frames"
    print("Stagecraft render benchmark: ShowLoop.frame against a bare moderngl floor")
    print(f"  GL: {ctx.info['GL_RENDERER']} | Python {platform.python_version()} | {os.cpu_count()} CPUs")
    print(
        f"  {settings.frames} measured frames per loop and size after {settings.warmup} warm-up frames; "
        f"the loops alternate {turns}"
    )
    print(
        f"  config: effects={','.join(cfg.shaders.effects)} fit={cfg.show.fit} hold={cfg.show.hold:g} s "
        f"max_image_size={cfg.render.max_image_size} upload_mb_per_frame={cfg.render.upload_mb_per_frame:g} "
        f"image_slots={cfg.render.image_slots} qr={cfg.overlay.qr} hud={cfg.overlay.hud}"
    )
    print(
        f"  floor and engine: crossfade of two {PLAIN_IMAGE}x{PLAIN_IMAGE} images "
        f"(a {PLAIN_TRANSITION_S:g} s transition, always in progress) + glow"
    )
    print(
        f"  arrival loop: the engine, with a new {ARRIVAL_IMAGE}x{ARRIVAL_IMAGE} image in the inbox every "
        f"{ARRIVAL_EVERY} frames (transitions of {ARRIVAL_EVERY} frames, back to back)"
    )
    print(
        f"  preview twins: the engine with vj.preview_fps={PREVIEW_FPS:g} preview_width={PREVIEW_WIDTH}, "
        f"{settings.preview_frames} measured frames each, frame by frame; one has board.preview_viewers=1, "
        f"the other 0, swapping every {PREVIEW_STINT} frames"
    )
    print("  frame = wall time of the frame + ctx.finish(); cpu = the show thread's time.thread_time")


def print_row(label: str, cells: Sequence[float | str] = (), note: str = "") -> None:
    text = "".join(f"{c:>9.2f}" if isinstance(c, float) else f"{c:>9}" for c in cells)
    print(f"  {label:<36}{text:<36}  {note}".rstrip())


def wall_and_cpu(s: Series) -> list[float | str]:
    return [median(s.wall_ms), p99(s.wall_ms), median(s.cpu_ms), p99(s.cpu_ms)]


def worst(values: Sequence[float]) -> float:
    return max(values, default=float("nan"))


def report_comparison(floor: Series, engine: EngineLoop) -> list[bool]:
    """Rows for the floor, the engine, their ratios and cpu_ms; whether each target was met."""
    med_ratio = median(engine.series.wall_ms) / median(floor.wall_ms)
    p99_ratio = p99(engine.series.wall_ms) / p99(floor.wall_ms)
    cpu_med, cpu_p99 = median(engine.cpu_ms), p99(engine.cpu_ms)
    cpu_ok = cpu_med < TARGET_CPU_MS and cpu_p99 < TARGET_CPU_MS
    print_row("floor: bare moderngl (baseline)", wall_and_cpu(floor))
    print_row("engine: ShowLoop.frame", wall_and_cpu(engine.series))
    print_row(
        "engine / floor",
        [f"{med_ratio:.2f}x", f"{p99_ratio:.2f}x"],
        f"target <= {TARGET_RATIO:.2f}x: median {verdict(med_ratio <= TARGET_RATIO)}, "
        f"p99 {verdict(p99_ratio <= TARGET_RATIO)}",
    )
    print_row(
        "engine: ShowLoop.cpu_ms (outside GL)",
        [f"{cpu_med:.3f}", f"{cpu_p99:.3f}"],
        f"target < {TARGET_CPU_MS:g} ms: {verdict(cpu_ok)}",
    )
    return [med_ratio <= TARGET_RATIO, p99_ratio <= TARGET_RATIO, cpu_ok]


def report_arrivals(arrivals: ArrivalLoop, floor: Series) -> bool:
    """Rows for the loop that receives images; whether the arrival target was met."""
    hits, rest = arrivals.split()
    loop_med = median(arrivals.series.wall_ms)
    ratio = worst(hits.wall_ms) / loop_med
    ok = bool(hits.wall_ms) and ratio <= TARGET_ARRIVAL_RATIO
    print_row(
        f"arrival loop: all {len(arrivals.series.wall_ms)} frames",
        wall_and_cpu(arrivals.series),
        f"cpu_ms median {median(arrivals.cpu_ms):.3f}, p99 {p99(arrivals.cpu_ms):.3f}",
    )
    print_row(
        f"arrival frames: {len(hits.wall_ms)} ({arrivals.sent} images)",
        wall_and_cpu(hits),
        f"worst {worst(hits.wall_ms):.2f}",
    )
    print_row(
        "arrival worst / arrival loop median",
        [f"{ratio:.2f}x"],
        f"target <= {TARGET_ARRIVAL_RATIO:.2f}x: {verdict(ok)}",
    )
    # A worst frame is at the mercy of the host: the same ratio for frames that upload nothing
    # tells a slow upload from a noisy machine.
    print_row(
        "  noise reference: worst / median of",
        [f"{worst(floor.wall_ms) / median(floor.wall_ms):.2f}x", f"{worst(rest.wall_ms) / loop_med:.2f}x"],
        "the floor; the arrival loop's other frames",
    )
    return ok


def merged(parts: Sequence[Series]) -> Series:
    out = Series()
    for part in parts:
        out.wall_ms += part.wall_ms
        out.cpu_ms += part.cpu_ms
    return out


def report_preview(previews: Sequence[PreviewLoop]) -> list[bool]:
    """Rows for the frames with and without a preview viewer; whether each target was met."""
    on, off = merged([p.on for p in previews]), merged([p.off for p in previews])
    grabbing = merged([p.grabbing for p in previews])
    off_med = median(off.wall_ms)
    med_ratio = median(on.wall_ms) / off_med
    p99_ratio = p99(on.wall_ms) / p99(off.wall_ms)
    grab_ratio = worst(grabbing.wall_ms) / off_med
    print_row(f"preview off: {len(off.wall_ms)} frames (baseline)", wall_and_cpu(off), "board.preview_viewers = 0")
    print_row(f"preview on: {len(on.wall_ms)} frames", wall_and_cpu(on), "board.preview_viewers = 1")
    print_row(
        "preview on / off",
        [f"{med_ratio:.2f}x", f"{p99_ratio:.2f}x"],
        f"target <= {TARGET_PREVIEW_RATIO:.2f}x: median {verdict(med_ratio <= TARGET_PREVIEW_RATIO)}, "
        f"p99 {verdict(p99_ratio <= TARGET_PREVIEW_RATIO)}",
    )
    print_row(f"grab frames: {len(grabbing.wall_ms)}", wall_and_cpu(grabbing), f"worst {worst(grabbing.wall_ms):.2f}")
    print_row(
        "worst grab frame / off median",
        [f"{grab_ratio:.2f}x"],
        f"noise reference: worst / median of the off frames {worst(off.wall_ms) / off_med:.2f}x",
    )
    jpeg = previews[0].jpeg() or previews[1].jpeg()
    if jpeg is None:
        print_row("backstage: JPEG encode", [], "no preview was published: too few frames to time it")
    else:
        jpeg_ms, jpeg_bytes, (pw, ph) = jpeg
        print_row(
            f"backstage: JPEG of a {pw}x{ph} preview",
            [f"{jpeg_ms:.2f}"],
            f"ms; PIL, quality {PREVIEW_QUALITY}, median of {JPEG_RUNS}; {jpeg_bytes / 1024:.0f} KB",
        )
    return [med_ratio <= TARGET_PREVIEW_RATIO, p99_ratio <= TARGET_PREVIEW_RATIO]


def report_size(result: SizeResult) -> list[bool]:
    """Print one size's table; return whether each target was met."""
    w, h = result.size
    print()
    print_row(f"{w}x{h}", ["median", "p99", "cpu med", "cpu p99"], "(ms; cpu = show-thread CPU)")
    met = report_comparison(result.floor.series, result.engine)
    met.append(report_arrivals(result.arrivals, result.floor.series))
    met += report_preview(result.previews)
    return met


# --- entry point ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--frames", type=int, default=200, help="measured frames per loop and size")
    parser.add_argument("--warmup", type=int, default=30, help="warm-up frames per loop and size")
    parser.add_argument("--block", type=int, default=1, help="frames per turn when the loops take turns")
    parser.add_argument(
        "--preview-frames", type=int, default=300, help="measured frames of each of the two preview twins"
    )
    parser.add_argument(
        "--outputs", action=argparse.BooleanOptionalAction, default=True,
        help="the outputs rows at 1920x1080: NDI (in a loopback-only network namespace) and recording, on vs off",
    )
    parser.add_argument("--outputs-frames", type=int, default=120, help="measured frames of each outputs twin")
    parser.add_argument("--only-outputs", action="store_true", help="the outputs rows alone")
    parser.add_argument(
        "--quick", action="store_true",
        help="smoke run: 20 frames (12 per preview twin and per outputs twin), 5 warm-up frames",
    )
    args = parser.parse_args(argv)
    frames, warmup = (20, 5) if args.quick else (args.frames, args.warmup)
    preview_frames = 12 if args.quick else args.preview_frames
    outputs_frames = 0 if not (args.outputs or args.only_outputs) else 12 if args.quick else args.outputs_frames
    if frames < 1 or warmup < 0 or frames + warmup > MAX_FRAMES or args.block < 1:
        parser.error(f"need frames >= 1, warmup >= 0, frames + warmup <= {MAX_FRAMES}, block >= 1")
    if preview_frames < 1 or preview_frames + max(1, warmup) > MAX_FRAMES:
        parser.error(f"need preview frames >= 1, preview frames + warmup <= {MAX_FRAMES}")
    if args.outputs_frames < 1 or args.outputs_frames + warmup > MAX_FRAMES:
        parser.error(f"need outputs frames >= 1, outputs frames + warmup <= {MAX_FRAMES}")
    return Settings(frames=frames, warmup=warmup, block=args.block, preview_frames=preview_frames,
                    outputs_frames=outputs_frames, only_outputs=args.only_outputs)


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_args(argv)
    plain = [make_image(PLAIN_IMAGE, seed) for seed in (1, 2)]
    big = [make_image(ARRIVAL_IMAGE, seed) for seed in (3, 4)]
    ctx = standalone_context()
    try:
        print_header(ctx, settings)
        met: list[bool] = []
        for size in () if settings.only_outputs else SIZES:
            met += report_size(measure_size(ctx, size, settings, plain, big))
        if settings.outputs_frames:
            from bench.render_outputs import report_outputs  # here: it imports this module

            met += report_outputs(ctx, settings.outputs_frames, settings.warmup)
        if not settings.only_outputs:
            from bench.render_mapping import report_mapping

            print()
            met += report_mapping(ctx, settings.frames, settings.warmup)
    finally:
        ctx.release()
    print(f"\n{sum(met)} of {len(met)} targets met (figures are reported, never asserted)")


if __name__ == "__main__":
    main()
