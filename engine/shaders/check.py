"""``python -m engine check-shaders PATH...``: lint shaders before a show.

Each file is parsed, compiled and drawn for one frame in a headless context (a
float target, so NaN shows up); one line per file, ``ok PATH`` or
``FAIL PATH:LINE: message``, then a count. Exit code 0 only if every file passes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

import moderngl
import numpy as np

from engine.errors import RenderError, ShaderError
from engine.gen.procedural import procedural_image
from engine.render.fit import IDENTITY
from engine.render.gl import standalone_context
from engine.shaders.loader import SHADER_SUFFIXES, load_shader
from engine.shaders.params import ParamStore
from engine.shaders.program import FrameInputs, IsfProgram, LayerBinding, SharedTextures
from engine.shaders.source import Dialect, Kind, ShaderSource

CHECK_SIZE = (320, 180)


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
    """A headless context with test pictures, drawing one frame of any shader."""

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
        program = IsfProgram(self.ctx, src, self.shared)
        try:
            params = ParamStore()
            params.adapt(src.inputs)
            a, b = self.pictures
            for i in range(frames):
                frame = FrameInputs(time=1.0 + i / 60, delta=1 / 60, frame=i)
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
            return data.reshape(h, w, 4)[::-1].copy()
        finally:
            program.release()

    def check(self, path: Path) -> ShaderError | None:
        try:
            pixels = self.render(load_shader(path))
        except ShaderError as err:
            return err
        except Exception as err:  # a linter must report, never crash, whatever the file holds
            return ShaderError(str(path), None, f"unexpected failure: {type(err).__name__}: {err}")
        if not np.isfinite(pixels).all():
            return ShaderError(str(path), None, "the frame contains NaN or infinite values")
        return None

    def release(self) -> None:
        for tex in self.pictures:
            tex.release()
        self.fbo.release()
        self.target.release()
        self.shared.release()


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
    failed = 0
    try:
        for path in files:
            problem = checker.check(path)
            if problem is None:
                print(f"ok {path}", file=out)
            else:
                failed += 1
                print(f"FAIL {problem}", file=out)
    finally:
        checker.release()
        ctx.release()
    print(f"{len(files) - failed} ok, {failed} failed", file=out)
    return 0 if failed == 0 else 1
