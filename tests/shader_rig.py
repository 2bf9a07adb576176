"""Draw one shader at a time on llvmpipe and read the result back as floats."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import moderngl
import numpy as np

from engine.render.fit import IDENTITY
from engine.shaders.loader import load_shader
from engine.shaders.params import ParamStore
from engine.shaders.program import FrameInputs, IsfProgram, LayerBinding, SharedTextures
from engine.shaders.source import Dialect, Kind, Value


def solid_texture(
    ctx: moderngl.Context, rgb: tuple[int, int, int], size: tuple[int, int] = (16, 16)
) -> moderngl.Texture:
    px = np.empty((size[1], size[0], 4), np.uint8)
    px[..., :3] = rgb
    px[..., 3] = 255
    return ctx.texture(size, 4, px)


class ShaderRig:
    def __init__(self, ctx: moderngl.Context, size: tuple[int, int] = (64, 32)) -> None:
        self.ctx = ctx
        self.size = size
        self.shared = SharedTextures(ctx)
        self.target = ctx.texture(size, 4, dtype="f4")
        self.fbo = ctx.framebuffer(color_attachments=[self.target])
        self.red = solid_texture(ctx, (255, 0, 0))
        self.blue = solid_texture(ctx, (0, 0, 255))
        self.programs: list[IsfProgram] = []

    def program(self, path: Path) -> IsfProgram:
        p = IsfProgram(self.ctx, load_shader(path), self.shared)
        self.programs.append(p)
        return p

    def draw(self, program: IsfProgram, params: Mapping[str, object] | None = None, *, time: float = 1.0,
             delta: float = 1 / 60, progress: float = 0.5, images: Mapping[str, moderngl.Texture] | None = None,
             frame: FrameInputs | None = None) -> np.ndarray:
        """One frame with default parameters overridden by ``params``; (h, w, 4) float, top row first."""
        store = ParamStore()
        store.adapt(program.src.inputs)
        for k, v in (params or {}).items():
            store.set(k, v)
        values: dict[str, Value] = store.frame_values()
        frame = frame or FrameInputs(time=time, delta=delta, frame=program.frame_index)
        if program.src.dialect is Dialect.GL_TRANSITION:
            region = (*IDENTITY.region, 0.5 / 16, 0.5 / 16)
            layers = (LayerBinding(self.red, IDENTITY.as_xform(), region),
                      LayerBinding(self.blue, IDENTITY.as_xform(), region))
            program.render(self.fbo, self.size, frame, values, layers=layers, extra={"progress": progress})
        elif program.src.kind is Kind.TRANSITION:
            values["progress"] = progress
            program.render(self.fbo, self.size, frame, values,
                           images={"startImage": self.red, "endImage": self.blue, **(images or {})})
        else:
            program.render(self.fbo, self.size, frame, values, images={"inputImage": self.red, **(images or {})})
        w, h = self.size
        data = np.frombuffer(self.fbo.read(components=4, dtype="f4"), dtype=np.float32)
        return data.reshape(h, w, 4)[::-1].copy()

    def release(self) -> None:
        for p in self.programs:
            p.release()
        for t in (self.red, self.blue, self.target):
            t.release()
        self.fbo.release()
        self.shared.release()
