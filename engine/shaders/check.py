"""``python -m engine check-shaders PATH...``: lint shaders before a show.

Each file is parsed, compiled and drawn headless into a float target (so NaN shows up),
from the show's first frame on: TIME 0, TIMEDELTA 0, FRAMEINDEX 0, then a few frames with
TIME moving on (``CHECK_TIMES``). One line per file, ``ok PATH``, ``warn PATH: message`` (it
passes, but read the message) or ``FAIL PATH:LINE: message``, then a count. Exit code 0
only if no file failed.

NaN and infinity: a shader is refused only when its output stays NaN or infinite. When only
its first frames have them (a division by TIME or TIMEDELTA, both 0 on the first frame), or
when they go away once one of its inputs moves off its default (a division by a default of
0), it passes with a warning saying so, since other hosts show such shaders and a VJ can fix
the input. The warning and the refusal give the share of pixels affected.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import moderngl
import numpy as np

from engine.errors import RenderError, ShaderError
from engine.gen.procedural import procedural_image
from engine.render.fit import IDENTITY
from engine.render.gl import standalone_context
from engine.shaders.loader import SHADER_SUFFIXES, load_shader
from engine.shaders.params import ParamError, ParamStore
from engine.shaders.program import FrameInputs, IsfProgram, LayerBinding, SharedTextures
from engine.shaders.source import VECTOR_SIZE, Dialect, Input, InputType, Kind, ShaderSource, Value

CHECK_SIZE = (320, 180)
# The show's first frame has TIME 0 and TIMEDELTA 0 (show_loop._frame_inputs); later ones move on.
CHECK_TIMES = (0.0, 1 / 60, 0.5, 1.0, 2.0)
MAX_TRIALS = 12  # other input settings tried on a shader whose output stays NaN at its defaults


@dataclass(frozen=True)
class CheckResult:
    """One file's verdict: an error (it fails), or warnings (it passes; something to know)."""

    path: Path
    error: ShaderError | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Run:
    """Frames drawn at ``CHECK_TIMES``: the share of non-finite pixels in each, and the program's warnings."""

    bad: tuple[float, ...]
    warnings: tuple[str, ...]

    @property
    def stays_bad(self) -> bool:
        return self.bad[-1] > 0


def shader_files(paths: Iterable[Path]) -> list[Path]:
    """The shader files named, and every shader file under the folders named."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix in SHADER_SUFFIXES and f.is_file())
        else:
            out.append(p)
    return out


class Checker:
    """A headless context with test pictures, drawing frames of any shader."""

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int] = CHECK_SIZE) -> None:
        self.ctx = ctx
        self.size = size
        self.shared = SharedTextures(ctx)
        self.pictures = [self._picture(seed) for seed in (3, 8)]
        self.target = ctx.texture(size, 4, dtype="f4")
        self.fbo = ctx.framebuffer(color_attachments=[self.target])

    def _picture(self, seed: int) -> moderngl.Texture:
        pixels = np.ascontiguousarray(procedural_image("shader check picture", seed, 256, 256)[::-1])
        tex = self.ctx.texture((256, 256), 4, pixels)
        tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        return tex

    def render(self, src: ShaderSource, frames: int = 1, progress: float = 0.5) -> np.ndarray:
        """Draw ``frames`` frames of ``src`` with default parameters; the last as (h, w, 4) float32."""
        times = [1.0 + i / 60 for i in range(frames)]
        program = IsfProgram(self.ctx, src, self.shared)
        try:
            last = np.empty(0, np.float32)
            for pixels in self._frames(program, times, {}, progress):
                last = pixels
            return last
        finally:
            program.release()

    def _frames(self, program: IsfProgram, times: Sequence[float], overrides: Mapping[str, object],
                progress: float = 0.5) -> Iterator[np.ndarray]:
        """Each frame at ``times`` as (h, w, 4) float32, top row first; ``overrides`` change inputs."""
        src = program.src
        params = ParamStore()
        params.adapt(src.inputs)
        for name, value in overrides.items():
            try:
                params.set(name, value)
            except ParamError:
                continue  # a value its type refuses: that trial runs at the default
        a, b = self.pictures
        previous = times[0]
        for i, t in enumerate(times):
            frame = FrameInputs(time=t, delta=t - previous, frame=i)
            previous = t
            values = params.frame_values()
            if src.dialect is Dialect.GL_TRANSITION:
                region = (*IDENTITY.region, 0.5 / 256, 0.5 / 256)
                xform = IDENTITY.as_xform()
                layers = (LayerBinding(a, xform, region), LayerBinding(b, xform, region))
                program.render(self.fbo, self.size, frame, values, layers=layers, extra={"progress": progress})
            elif src.kind is Kind.TRANSITION:
                values["progress"] = progress
                program.render(self.fbo, self.size, frame, values, images={"startImage": a, "endImage": b})
            else:
                program.render(self.fbo, self.size, frame, values, images={"inputImage": a})
            w, h = self.size
            data = np.frombuffer(self.fbo.read(components=4, dtype="f4"), dtype=np.float32)
            yield data.reshape(h, w, 4)[::-1].copy()

    def _run(self, src: ShaderSource, overrides: Mapping[str, object]) -> _Run:
        program = IsfProgram(self.ctx, src, self.shared)
        try:
            bad = tuple(float((~np.isfinite(px)).any(axis=2).mean())
                        for px in self._frames(program, CHECK_TIMES, overrides))
            return _Run(bad, program.warnings)
        finally:
            program.release()

    def check(self, path: Path) -> CheckResult:
        try:
            src = load_shader(path)
            first = self._run(src, {})
            if not any(first.bad):
                return CheckResult(path, None, first.warnings)
            error, warning = self._judge_nan(src, first)
        except ShaderError as err:
            return CheckResult(path, err)
        except Exception as err:  # a linter must report, never crash, whatever the file holds
            return CheckResult(path, ShaderError(str(path), None, f"unexpected failure: {type(err).__name__}: {err}"))
        return CheckResult(path, error, first.warnings + ((warning,) if warning else ()))

    def _judge_nan(self, src: ShaderSource, first: _Run) -> tuple[ShaderError | None, str | None]:
        """A refusal if the output stays NaN whatever the inputs tried, else a warning saying when it is NaN."""
        worst = _share(max(first.bad))
        if not first.stays_bad:
            since = next(t for t, b in zip(CHECK_TIMES[::-1], first.bad[::-1], strict=True) if b)
            clean = CHECK_TIMES[CHECK_TIMES.index(since) + 1]
            return None, (f"NaN or infinite values in {worst} of the pixels up to TIME={since:g} with its default "
                          f"values, finite from TIME={clean:g} on: it loads, and its first frame may show black "
                          "or garbage there (a division by TIME or TIMEDELTA, both 0 on the show's first frame?)")
        tried = 0
        for label, overrides in _trials(src.params):
            tried += 1
            if not self._run(src, overrides).stays_bad:
                return None, (f"its output stays NaN or infinite in {worst} of the pixels with its default values, "
                              f"but not with {label}: it loads; set {label} before showing it, or fix the file's "
                              "DEFAULT")
        others = f" and with {tried} other input setting{'s' if tried != 1 else ''}" if tried else ""
        kept = ""
        if first.bad[0] > 0 and any(p.persistent for p in src.passes):
            kept = " (from the first frame, TIME 0, on: a persistent buffer keeps a NaN once it has one)"
        return ShaderError(str(src.path), None,
                           f"its output stays NaN or infinite in {_share(first.bad[-1])} of the pixels over "
                           f"{len(CHECK_TIMES)} frames to TIME={CHECK_TIMES[-1]:g} with its default values{others}"
                           f"{kept}: the show would draw black or garbage there"), None

    def release(self) -> None:
        for tex in self.pictures:
            tex.release()
        self.fbo.release()
        self.target.release()
        self.shared.release()


def _share(fraction: float) -> str:
    return "under 1%" if fraction < 0.01 else f"{fraction:.0%}"


def _trials(params: Sequence[Input]) -> Iterator[tuple[str, dict[str, object]]]:
    """Other input settings to try, one input at a time (its far end first, then the other), then all at once."""
    candidates = [(inp, _candidates(inp)) for inp in params]
    yielded = 0
    for round_ in range(2):
        for inp, values in candidates:
            if round_ < len(values) and yielded < MAX_TRIALS:
                yielded += 1
                yield f"{inp.name} = {_show(values[round_])}", {inp.name: values[round_]}
    middles: dict[str, object] = {inp.name: m for inp in params if (m := _middle(inp)) is not None}
    if len(middles) > 1 and yielded < MAX_TRIALS:
        yield "every input halfway along its range", middles


def _candidates(inp: Input) -> list[object]:
    """Values of ``inp`` other than its default, those far from it first."""
    if inp.type is InputType.EVENT:
        return []
    if inp.type is InputType.BOOL:
        return [not inp.default]
    if inp.values:
        return [v for v in (inp.values[-1], inp.values[0]) if v != inp.default]
    lo, hi = _bounds(inp)
    out = [v for v in (hi, lo) if v != inp.default]
    return sorted(out, key=lambda v: -_distance(v, inp.default))


def _bounds(inp: Input) -> tuple[Value, Value]:
    n = VECTOR_SIZE.get(inp.type)
    if n is None:
        lo = inp.min if inp.min is not None else 0.0
        hi = inp.max if inp.max is not None else 1.0
        return lo, hi
    lo_v = inp.min if isinstance(inp.min, tuple) else (0.0,) * n
    hi_v = inp.max if isinstance(inp.max, tuple) else (1.0,) * n
    return lo_v, hi_v


def _middle(inp: Input) -> Value | None:
    if inp.type in (InputType.EVENT, InputType.BOOL) or inp.values:
        return None
    lo, hi = _bounds(inp)
    if isinstance(lo, tuple) and isinstance(hi, tuple):
        return tuple((x + y) / 2 for x, y in zip(lo, hi, strict=False))
    if isinstance(lo, int | float) and isinstance(hi, int | float):
        mid = (lo + hi) / 2
        return round(mid) if inp.type in (InputType.LONG, InputType.INT) else mid
    return None


def _distance(a: object, b: object) -> float:
    xs = a if isinstance(a, tuple) else (a,)
    ys = b if isinstance(b, tuple) else (b,) * len(xs)
    try:
        return sum(abs(float(x) - float(y)) for x, y in zip(xs, ys, strict=False))
    except (TypeError, ValueError):
        return 0.0


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(f"{v:g}" for v in value) + ")"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def run(paths: Sequence[str], out: TextIO = sys.stdout) -> int:
    """Check every shader under ``paths`` (the command line reads them: ``cli.check_shaders_paths``)."""
    files = shader_files(Path(p) for p in paths)
    if not files:
        print(f"no shader files ({', '.join(SHADER_SUFFIXES)}) under {' '.join(paths)}", file=out)
        return 1
    try:
        ctx = standalone_context()
    except RenderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    checker = Checker(ctx)
    failed = warned = 0
    try:
        for path in files:
            result = checker.check(path)
            if result.error is not None:
                failed += 1
                print(f"FAIL {result.error}", file=out)
            elif result.warnings:
                warned += 1
                for warning in result.warnings:
                    print(f"warn {path}: {warning}", file=out)
            else:
                print(f"ok {path}", file=out)
    finally:
        checker.release()
        ctx.release()
    summary = f"{len(files) - failed} ok, {failed} failed"
    print(summary + (f" ({warned} of the ok with warnings)" if warned else ""), file=out)
    return 0 if failed == 0 else 1
