"""The dream layer on the GPU: the newest dream frame, over the program, at the VJ's mix.

Frames come from the backstage (engine/gen/local/dream.py) through the inbox's ``DreamSlot``; the
show thread never waits for one. Getting a frame onto the GPU follows the image rules
(engine/render/upload.py), so a dream at 20 fps never costs a frame its budget:
- two textures take turns: the next frame is written into the one not on screen, a band of rows
  per frame within the upload budget, and shown only once it is whole (never half old, half new);
- textures are square, made for the largest frame seen and reused for every frame that fits (a
  frame is written into their top-left corner and only that region is sampled), so a new frame
  allocates nothing; a bigger frame, or one with another channel count, makes new ones (rare: the
  first frame, a new ``[dream] size``).

Drawn like an image (letterbox or cover, never stretched), blended over the program at ``mix``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import moderngl
import numpy as np

from engine.errors import ImageError, RenderError
from engine.render import builtin
from engine.render.fit import fit_transform
from engine.render.gl import build_program, set_uniform
from engine.render.preview import PreviewGrabber

DREAM_FS = """
#version 330
in vec2 uv;
out vec4 fragColor;
uniform sampler2D uTex;
uniform vec4 uXform;   // screen uv -> texture uv: scale.xy, offset.xy (engine/render/fit.py)
uniform vec4 uRegion;  // the frame's extent in the texture, and half a texel (no bleed from outside it)
uniform float uMix;
void main() {
    vec2 t = uv * uXform.xy + uXform.zw;
    if (t.x < 0.0 || t.y < 0.0 || t.x > uRegion.x || t.y > uRegion.y) discard;  // letterbox: the program shows
    vec4 c = texture(uTex, clamp(t, uRegion.zw, uRegion.xy - uRegion.zw));
    fragColor = vec4(c.rgb, c.a * uMix);
}
"""


@dataclass
class _Frame:
    """One texture of the pair and the frame it holds (or is being written with)."""

    texture: moderngl.Texture
    side: int
    components: int
    size: tuple[int, int] = (0, 0)  # (w, h) of the frame in its top-left corner

    def fits(self, w: int, h: int, components: int) -> bool:
        return components == self.components and w <= self.side and h <= self.side


def check_frame(pixels: object) -> np.ndarray:
    """A dream frame as the show takes it: (h, w, 3 or 4) uint8, C-contiguous; ImageError otherwise."""
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 3 \
            or pixels.shape[2] not in (3, 4) or pixels.shape[0] < 1 or pixels.shape[1] < 1:
        shape = getattr(pixels, "shape", None)
        raise ImageError(f"dream frame: expected an (h, w, 3 or 4) uint8 array, got {shape}")
    return np.ascontiguousarray(pixels)


class DreamLayer:
    """The newest whole dream frame on the GPU (``shown``), the next one written ``budget`` bytes per ``step``."""

    def __init__(self, ctx: moderngl.Context, budget: int, side: int = 0) -> None:
        self.ctx = ctx
        self.budget = max(1, budget)
        self._front: _Frame | None = None
        self._back: _Frame | None = None
        self._pixels: np.ndarray | None = None  # the frame being written into the back texture
        self._row = 0
        self.frames = 0  # whole frames put on screen so far
        self.allocations = 0  # textures made so far (tests check that frames reuse them)
        self.program = build_program(ctx, "builtin:dream", builtin.FULLSCREEN_VS, DREAM_FS)
        self._vao = ctx.vertex_array(self.program, [])
        set_uniform(self.program, "uTex", 0)
        if side > 0:  # made at start-up when the dream is on: the first frame allocates nothing
            self._front, self._back = self._texture(side, 3), self._texture(side, 3)

    @property
    def busy(self) -> bool:
        """A frame is being written: ``step()`` until it is on screen."""
        return self._pixels is not None

    @property
    def shown(self) -> bool:
        return self._front is not None and self._front.size != (0, 0)

    def _texture(self, side: int, components: int) -> _Frame:
        tex = self.ctx.texture((side, side), components, alignment=1)
        tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        tex.repeat_x = tex.repeat_y = False
        self.allocations += 1
        return _Frame(tex, side, components)

    def start(self, pixels: np.ndarray) -> None:
        """Begin writing ``pixels`` (checked with ``check_frame``) into the texture not on screen."""
        pixels = check_frame(pixels)
        h, w, components = pixels.shape
        back = self._back
        if back is None or not back.fits(w, h, components):
            if back is not None:
                back.texture.release()
            side = max(w, h, back.side if back is not None and back.components == components else 0)
            back = self._back = self._texture(side, components)
        back.size = (0, 0)  # not whole until the last band is in
        self._pixels, self._row = pixels, 0

    def step(self) -> bool:
        """Write the next band; True when the frame is whole and now the one on screen."""
        pixels, back = self._pixels, self._back
        if pixels is None or back is None:
            return False
        h, w, components = pixels.shape
        rows = max(1, self.budget // (w * components))
        end = min(h, self._row + rows)
        back.texture.write(pixels[self._row:end], viewport=(0, self._row, w, end - self._row), alignment=1)
        self._row = end
        if end < h:
            return False
        back.size = (w, h)
        self._front, self._back = back, self._front
        self._pixels = None
        self.frames += 1
        return True

    def clear(self) -> None:
        """No frame on screen any more (the dream stopped); the textures stay for the next one."""
        self._pixels = None
        for frame in (self._front, self._back):
            if frame is not None:
                frame.size = (0, 0)

    def draw(self, screen: tuple[int, int], fit: str, mix: float) -> None:
        """Blend the frame on screen over whatever the bound framebuffer holds; nothing at mix 0 or with no frame."""
        front = self._front
        if mix <= 0.0 or front is None or front.size == (0, 0):
            return
        f = fit_transform(screen, front.size, front.side, fit)
        half = 0.5 / front.side
        set_uniform(self.program, "uXform", f.as_xform())
        set_uniform(self.program, "uRegion", (*f.region, half, half))
        set_uniform(self.program, "uMix", min(1.0, float(mix)))
        ctx = self.ctx
        front.texture.use(0)
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        self._vao.render(moderngl.TRIANGLES, vertices=3)
        ctx.disable(moderngl.BLEND)

    def release(self) -> None:
        for frame in (self._front, self._back):
            if frame is not None:
                frame.texture.release()
        self._front = self._back = None
        self._pixels = None
        self._vao.release()
        self.program.release()


class DreamTap:
    """The dream's source picture: the program (before the dream and the overlays) scaled down and read back
    without waiting, for capture wishes with a ``longest`` side (``engine.contract.CaptureWish``).

    Per frame, on the render thread: ``answer()`` first (it maps the buffer an earlier grab filled and
    answers the wishes that grab was for), then ``wanted`` says whether to pass ``grab`` as the
    compositor's tap this frame. The wishes that come while a grab is on its way wait for the next one.
    """

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.grabber: PreviewGrabber | None = None
        self._longest = 0
        self._waiting: list[Future[np.ndarray]] = []  # wishes for the next grab
        self._grabbed: list[Future[np.ndarray]] = []  # wishes the grab on its way will answer
        self._size = (0, 0)

    def wish(self, answer: Future[np.ndarray], longest: int, size: tuple[int, int]) -> None:
        """A wish for the program at ``longest`` pixels on its longest side, the output being ``size``."""
        if not answer.set_running_or_notify_cancel():
            return
        self._waiting.append(answer)
        w, h = size
        width = max(2, min(w, round(longest * w / max(w, h))))
        if self.grabber is None or self.grabber.width != width:
            if self.grabber is not None:
                self.grabber.release()
                self._fail(self._grabbed, "the output size changed")
            self.grabber = PreviewGrabber(self.ctx, width)

    @property
    def wanted(self) -> bool:
        return bool(self._waiting) and not self._grabbed

    def answer(self) -> None:
        """Answer the wishes of the last grab with its pixels, if it was queued (frames ago: nothing waits)."""
        if not self._grabbed or self.grabber is None:
            return
        wishes, self._grabbed = self._grabbed, []
        try:
            pixels = self.grabber.poll()
        except Exception as err:
            self._fail(wishes, f"{type(err).__name__}: {err}")
            return
        if pixels is None:
            self._fail(wishes, "no picture")
            return
        for wish in wishes:
            wish.set_result(pixels)

    def grab(self, target: moderngl.Framebuffer) -> None:
        """The compositor's tap: queue the scale-down and the read-back of the picture so far."""
        if self.grabber is None or not self._waiting:
            return
        wishes, self._waiting = self._waiting, []
        try:
            self.grabber.grab(target, self._size)
        except Exception as err:
            self._fail(wishes, f"{type(err).__name__}: {err}")
            return
        self._grabbed = wishes

    def tap_for(self, size: tuple[int, int]) -> Callable[[moderngl.Framebuffer], None] | None:
        """This frame's tap for an output of ``size``, or None when no wish waits."""
        if not self.wanted:
            return None
        self._size = size
        return self.grab

    @staticmethod
    def _fail(wishes: list[Future[np.ndarray]], why: str) -> None:
        for wish in wishes:
            wish.set_exception(RenderError(f"dream source: {why}"))
        wishes.clear()

    def release(self) -> None:
        self._fail(self._waiting, "the show stopped")
        self._fail(self._grabbed, "the show stopped")
        if self.grabber is not None:
            self.grabber.release()
            self.grabber = None
