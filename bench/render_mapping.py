"""Render benchmark, mapping rows: the projection-mapping pass at 1920x1080 against an unwarped copy, in one run.

Loops drawn frame by frame in turns (``run_interleaved`` of bench/render.py), each from the same 1920x1080
source texture (noise, so no texture cache gets an easy ride) into a 1920x1080 target of its own:

1. copy (the baseline): the frame unwarped, a plain full-screen copy, ``FULLSCREEN_VS`` and one bilinear
   fetch per pixel: what an output costs without a venue profile;
2. mapped: ``Mapper.render`` with a corner pin, a 16x16 mesh whose inner control points are all moved
   (tessellated into 120 x 120 quads) and a right-side edge blend (gamma 2.2), no masks;
3. for information, where the time goes: the corner pin alone (one quad, no blend), the pin and the mesh
   (no blend), and mapped + masks: 4 masks of 16 vertices each (concave stars), baked with the blend, so
   they should cost what the blend alone does.

Target: mapped costs at most 0.5 ms more than copy per frame, for the median and the p99 frame (the ratio is
printed beside it). A frame's time is wall time around the draw and ``ctx.finish()`` (``timed``), so the
rendering is counted; figures are reported, never asserted.

Run through ``bench/render.py`` once wired in, or alone: ``.venv/bin/python bench/render_mapping.py``.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import moderngl
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.render import (  # noqa: E402
    Loop,
    Series,
    color_target,
    median,
    p99,
    print_row,
    release_target,
    run_interleaved,
    timed,
    verdict,
    wall_and_cpu,
)
from engine.render import builtin  # noqa: E402
from engine.render.gl import build_program, standalone_context  # noqa: E402
from engine.render.mapping import Mapper  # noqa: E402
from engine.render.venue import Blend, Mesh, OutputMapping  # noqa: E402

SIZE = (1920, 1080)
MESH_SIDE = 16
TARGET_EXTRA_MS = 0.5
PIN = ((0.03, 0.02), (0.98, 0.05), (0.96, 0.97), (0.01, 0.95))

COPY_FS = """
#version 330
in vec2 uv;
out vec4 fragColor;
uniform sampler2D uSource;
void main() {
    fragColor = vec4(texture(uSource, uv).rgb, 1.0);
}
"""


def wavy_mesh(side: int) -> Mesh:
    """A side x side grid, every inner point moved by up to a third of a cell: a curved screen's kind of mesh."""
    base = Mesh.identity(side, side)
    cell = 1.0 / (side - 1)
    points = []
    for k, (x, y) in enumerate(base.points):
        i, j = k % side, k // side
        inner = 0 < i < side - 1 and 0 < j < side - 1
        dx = 0.33 * cell * math.sin(3.1 * y + 1.7 * x) if inner else 0.0
        dy = 0.33 * cell * math.cos(2.3 * x - 1.3 * y) if inner else 0.0
        points.append((x + dx, y + dy))
    return Mesh(side, side, tuple(points))


def star(cx: float, cy: float, r: float, tips: int = 8) -> tuple[tuple[float, float], ...]:
    """A concave star of 2 * tips vertices."""
    out = []
    for k in range(2 * tips):
        a = math.pi * k / tips
        rr = r if k % 2 == 0 else 0.45 * r
        out.append((cx + rr * math.cos(a) * SIZE[1] / SIZE[0], cy + rr * math.sin(a)))
    return tuple(out)


MAPPED = OutputMapping("bench", region=(0.0, 0.0, 1.0, 1.0), corners=PIN, mesh=wavy_mesh(MESH_SIDE),
                       blend=Blend(right=0.1, gamma=2.2))
PIN_ONLY = OutputMapping(MAPPED.name, corners=PIN)
PIN_MESH = OutputMapping(MAPPED.name, corners=PIN, mesh=MAPPED.mesh)
MASKED = OutputMapping(MAPPED.name, MAPPED.region, MAPPED.corners, MAPPED.mesh, MAPPED.blend,
                       masks=tuple(star(x, y, 0.12) for x, y in ((0.2, 0.2), (0.8, 0.2), (0.2, 0.8), (0.8, 0.8))))


class CopyLoop:
    """The frame unwarped: one full-screen triangle, one fetch per pixel."""

    def __init__(self, ctx: moderngl.Context, source: moderngl.Texture) -> None:
        self.ctx = ctx
        self.series = Series()
        self.source = source
        self.target = color_target(ctx, SIZE)
        self.program = build_program(ctx, "bench:copy", builtin.FULLSCREEN_VS, COPY_FS)
        self.vao = ctx.vertex_array(self.program, [])
        self.sampler = ctx.sampler(repeat_x=False, repeat_y=False, filter=(moderngl.LINEAR, moderngl.LINEAR))

    def _draw(self) -> None:
        self.target.use()
        self.source.use(0)
        self.sampler.use(0)
        self.vao.render(moderngl.TRIANGLES, vertices=3)
        self.sampler.clear(0)

    def frame(self, record: bool) -> None:
        wall, cpu = timed(self.ctx, self._draw)
        if record:
            self.series.add(wall, cpu)

    def release(self) -> None:
        self.sampler.release()
        self.vao.release()
        self.program.release()
        release_target(self.target)


class MappedLoop:
    """``Mapper.render`` of the same frame."""

    def __init__(self, ctx: moderngl.Context, source: moderngl.Texture, output: OutputMapping) -> None:
        self.ctx = ctx
        self.series = Series()
        self.source = source
        self.target = color_target(ctx, SIZE)
        self.mapper = Mapper(ctx, output)

    def frame(self, record: bool) -> None:
        wall, cpu = timed(self.ctx, lambda: self.mapper.render(self.source, self.target, SIZE))
        if record:
            self.series.add(wall, cpu)

    def release(self) -> None:
        self.mapper.release()
        release_target(self.target)


def report_difference(label: str, loop: Series, baseline: Series) -> list[bool]:
    """Rows of (loop - baseline) ms and loop / baseline for the median and p99; whether each is within target."""
    med, tail = median(loop.wall_ms) - median(baseline.wall_ms), p99(loop.wall_ms) - p99(baseline.wall_ms)
    ratios = median(loop.wall_ms) / median(baseline.wall_ms), p99(loop.wall_ms) / p99(baseline.wall_ms)
    print_row(f"{label} - copy (ms)", [f"{med:+.2f}", f"{tail:+.2f}"],
              f"target <= +{TARGET_EXTRA_MS:g} ms: median {verdict(med <= TARGET_EXTRA_MS)}, "
              f"p99 {verdict(tail <= TARGET_EXTRA_MS)}")
    print_row(f"{label} / copy", [f"{ratios[0]:.2f}x", f"{ratios[1]:.2f}x"])
    return [med <= TARGET_EXTRA_MS, tail <= TARGET_EXTRA_MS]


def report_mapping(ctx: moderngl.Context, frames: int = 200, warmup: int = 30) -> list[bool]:
    """Print the mapping rows at 1920x1080; return whether each target was met."""
    w, h = SIZE
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    source = ctx.texture(SIZE, 4, pixels.tobytes())
    copy = CopyLoop(ctx, source)
    mapped = MappedLoop(ctx, source, MAPPED)
    parts = [MappedLoop(ctx, source, output) for output in (PIN_ONLY, PIN_MESH, MASKED)]
    loops: list[Loop] = [copy, mapped, *parts]
    print()
    print(f"  mapping at {w}x{h}: {frames} measured frames per loop after {warmup} warm-up, frame by frame; "
          f"mapped = corner pin + {MESH_SIDE}x{MESH_SIDE} mesh + edge blend,")
    print("  copy = the same texture drawn unwarped (full-screen triangle, one fetch); see bench/render_mapping.py")
    print_row(f"{w}x{h} mapping", ["median", "p99", "cpu med", "cpu p99"], "(ms; cpu = show-thread CPU)")
    gc.collect()
    gc.freeze()
    try:
        run_interleaved(loops, warmup, frames, 1)
    finally:
        for loop in loops:
            loop.release()
        source.release()
        gc.unfreeze()
    print_row("copy: unwarped (baseline)", wall_and_cpu(copy.series))
    print_row(f"mapped: pin + {MESH_SIDE}x{MESH_SIDE} mesh + blend", wall_and_cpu(mapped.series))
    met = report_difference("mapped", mapped.series, copy.series)
    labels = ("pin alone", f"pin + {MESH_SIDE}x{MESH_SIDE} mesh",
              f"mapped + {len(MASKED.masks)} masks x {len(MASKED.masks[0])}")
    for label, part in zip(labels, parts, strict=True):
        print_row(label, wall_and_cpu(part.series),
                  f"- copy: median {median(part.series.wall_ms) - median(copy.series.wall_ms):+.2f} ms")
    if "llvmpipe" in str(ctx.info.get("GL_RENDERER", "")):
        print("  note: software GL here, where each triangle (the mesh: 29k) and each extra texture fetch (the baked "
              "blend) costs CPU time;")
        print("  the target is meant for a GPU (none was measured here): the rows above say where the time goes.")
    return met


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the mapping rows of bench/render.py")
    parser.add_argument("--frames", type=int, default=200, help="measured frames per loop")
    parser.add_argument("--warmup", type=int, default=30, help="warm-up frames per loop")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 frames, 5 warm-up frames")
    args = parser.parse_args(argv)
    frames, warmup = (20, 5) if args.quick else (args.frames, args.warmup)
    ctx = standalone_context()
    try:
        print(f"  GL: {ctx.info['GL_RENDERER']}")
        met = report_mapping(ctx, frames, warmup)
    finally:
        ctx.release()
    print(f"\n{sum(met)} of {len(met)} targets met (figures are reported, never asserted)")


if __name__ == "__main__":
    main()
