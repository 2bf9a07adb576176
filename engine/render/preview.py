"""A small live copy of the program output for the VJ page, read back without stalling the show.

A grab only queues GPU work, on the render thread, right after the frame is drawn:
1. one pass box-filters the frame down to the preview size, straight from the target's texture
   (the window's own framebuffer cannot be sampled, so it is first copied into a texture of ours);
2. the small picture is read into a pixel buffer object: the call returns at once and the GPU
   fills the buffer when it gets there.
The next ``poll()``, frames later, maps that buffer: the GPU finished it long ago, so nothing
waits. JPEG encoding is backstage's job; this module hands over raw RGB rows.
On llvmpipe (software GL) the scale-down pass does wait, for the frame to finish rendering: it
cannot sample a texture still being drawn. That wait is not extra there (the frame must finish
before it is shown anyway); on a GPU the pass is simply queued behind the frame.

Order per frame: ``poll()`` then ``grab()``. Two buffers take turns, so a read-back is never
queued into the buffer that was just mapped (a driver may otherwise wait for the unmap, or copy).
"""

from __future__ import annotations

import math
from collections import deque

import moderngl
import numpy as np

from engine.errors import RenderError
from engine.render import builtin
from engine.render.gl import build_program, restore_framebuffer, set_uniform

# Each tap sits on a corner between four source pixels, so one bilinear fetch is their exact
# mean; taps two pixels apart make a box filter over a (2 * taps) pixel square. That is a quarter of
# the fetches of a plain box filter, and cheaper on llvmpipe than copying the frame and building
# mipmaps (a prototype, 1920x1080 -> 384x216 on llvmpipe: 1.9 ms against 3 to 5 ms).
PREVIEW_FS = """
#version 330
uniform sampler2D uSource;
uniform vec2 uSourceSize;  // the picture's size in source pixels (the texture may be larger)
uniform vec2 uScale;       // source pixels per preview pixel
uniform ivec2 uTaps;       // bilinear taps per axis
uniform vec2 uSnap;        // 1 where the axis shrinks (taps on pixel corners), 0 where it grows
uniform float uHeight;     // the preview's height in pixels
out vec4 fragColor;
void main() {
    vec2 texel = 1.0 / vec2(textureSize(uSource, 0));
    // Flipped vertically: preview row 0 is the picture's top row, so the read-back is top first.
    vec2 centre = vec2(gl_FragCoord.x, uHeight - gl_FragCoord.y) * uScale;
    vec2 first = mix(centre, floor(centre - vec2(uTaps) + 0.5) + 1.0, uSnap);
    vec2 lo = mix(vec2(0.5), vec2(1.0), uSnap);  // whole 2x2 blocks stay inside the picture
    vec3 sum = vec3(0.0);
    for (int j = 0; j < uTaps.y; ++j) {
        for (int i = 0; i < uTaps.x; ++i) {
            vec2 p = clamp(first + 2.0 * vec2(i, j), lo, uSourceSize - lo);
            sum += texture(uSource, p * texel).rgb;
        }
    }
    fragColor = vec4(sum / float(uTaps.x * uTaps.y), 1.0);
}
"""


def preview_size(width: int, source: tuple[int, int]) -> tuple[int, int]:
    """``width`` wide, with the source's aspect ratio; the height even (video encoders like it) and >= 2."""
    sw, sh = source
    return width, max(2, 2 * round(width * sh / (2 * sw)))


class PreviewGrabber:
    """Scales the program output and reads it back asynchronously: ``poll()``, then ``grab()``.

    The VJ page's preview is ``width`` wide with the program's aspect, RGB, one grab late. The
    outputs (NDI, recording: engine/output/hub.py) ask for a fixed ``size`` (scaled to fill it), RGBA,
    and ``buffers=3``: each poll then maps a grab two frames old, which a real GPU has long finished
    even when it runs a frame behind the CPU.
    """

    def __init__(
        self,
        ctx: moderngl.Context,
        width: int,
        *,
        size: tuple[int, int] | None = None,
        components: int = 3,
        buffers: int = 2,
    ) -> None:
        if width < 1 and size is None:
            raise ValueError(f"preview width must be at least 1 pixel, not {width}")
        if size is not None and (size[0] < 1 or size[1] < 1):
            raise ValueError(f"read-back size must be at least 1x1, not {size[0]}x{size[1]}")
        if components not in (3, 4) or buffers < 2:
            raise ValueError("components must be 3 or 4 and buffers at least 2")
        self.ctx = ctx
        self.width = width
        self.fixed = size
        self.components = components
        self.buffer_count = buffers
        self.size = (0, 0)  # the read-back's (w, h), known from the first grab
        self._source_size = (0, 0)
        self._program = build_program(ctx, "builtin:preview", builtin.FULLSCREEN_VS, PREVIEW_FS)
        self._vao = ctx.vertex_array(self._program, [])
        # A sampler object, so the caller's texture keeps its own filter and wrap settings.
        self._sampler = ctx.sampler(repeat_x=False, repeat_y=False, filter=(moderngl.LINEAR, moderngl.LINEAR))
        set_uniform(self._program, "uSource", 0)
        self._texture: moderngl.Texture | None = None  # the preview picture, drawn on the GPU
        self._fbo: moderngl.Framebuffer | None = None
        self._buffers: list[moderngl.Buffer] = []  # the pixel buffer objects, taking turns
        self._next = 0  # the buffer the next grab reads into
        # (buffer, stamp, rows bottom up) of the grabs not yet polled, oldest first
        self._pending: deque[tuple[int, object, bool]] = deque()
        self.stamp: object = None  # what the caller passed with the grab that the last poll returned
        self._copy: moderngl.Texture | None = None  # the window's frame, copied (only for the screen)
        self.grabs = 0  # grabs queued so far (for tests and the benchmark)

    # --- per frame ------------------------------------------------------------
    def poll(self) -> np.ndarray | None:
        """The last grab's pixels as a read-only (h, w, 3) uint8 array, top row first; None if none is new.

        Call it before ``grab()`` in a frame: the buffer it maps was queued frames ago.
        """
        if len(self._pending) < self.buffer_count - 1:
            return None
        index, self.stamp, flipped = self._pending.popleft()
        return self._read(index, flipped)

    def _read(self, index: int, flipped: bool) -> np.ndarray:
        w, h = self.size
        try:
            data = self._buffers[index].read()
        except moderngl.Error as err:
            raise RenderError(f"preview: reading the pixel buffer failed: {err}") from err
        pixels = np.frombuffer(data, dtype=np.uint8).reshape(h, w, self.components)
        return pixels[::-1] if flipped else pixels

    def drain(self) -> list[tuple[np.ndarray, object]]:
        """Every grab not yet polled, oldest first, with its stamp: at the end of a show (this may wait for the GPU)."""
        out = []
        while self._pending:
            index, stamp, flipped = self._pending.popleft()
            out.append((self._read(index, flipped), stamp))
        return out

    def grab(self, source: moderngl.Framebuffer, size: tuple[int, int], stamp: object = None) -> None:
        """Queue the scale-down of ``source`` (the frame just drawn, ``size`` pixels) and its read-back.

        Returns without waiting for the GPU. The bound framebuffer and viewport are restored;
        blending is assumed off, as the compositor leaves it.
        """
        ctx = self.ctx
        previous, viewport = ctx.fbo, ctx.viewport
        try:
            self._allocate(size)
            assert self._fbo is not None
            w, h = self.size
            # At the source's own size, from a texture we may read: no pass at all, the source itself is read
            # into the buffer (rows bottom up: poll flips them, for free, as a view).
            direct = (w, h) == (int(size[0]), int(size[1])) and self._texture_of(source) is not None
            if direct:
                read_from = source
            else:
                picture = self._sampleable(source)
                self._fbo.use()
                picture.use(0)
                self._sampler.use(0)
                self._vao.render(moderngl.TRIANGLES, vertices=3)
                self._sampler.clear(0)  # a bound sampler would override the next draw's texture settings
                read_from = self._fbo
            read_from.read_into(
                self._buffers[self._next], viewport=(0, 0, w, h), components=self.components, alignment=1
            )
        except moderngl.Error as err:
            raise RenderError(f"preview: grabbing the frame failed: {err}") from err
        finally:
            restore_framebuffer(ctx, previous, viewport)
        if len(self._pending) >= self.buffer_count - 1:
            self._pending.popleft()  # never polled: the buffer it used is the next one written
        self._pending.append((self._next, stamp, direct))
        self._next = (self._next + 1) % self.buffer_count
        self.grabs += 1

    # --- set-up ---------------------------------------------------------------
    @staticmethod
    def _texture_of(source: moderngl.Framebuffer) -> moderngl.Texture | None:
        attachments = source.color_attachments or ()
        first = attachments[0] if attachments else None
        return first if isinstance(first, moderngl.Texture) and first.samples == 0 else None

    def _sampleable(self, source: moderngl.Framebuffer) -> moderngl.Texture:
        """The source's own texture, or, for the window's framebuffer (no texture), a copy of it."""
        first = self._texture_of(source)
        if first is not None:
            return first
        if self._copy is None:
            self._copy = self.ctx.texture(self._source_size, 4)
        self.ctx.copy_framebuffer(self._copy, source)
        return self._copy

    def _allocate(self, source: tuple[int, int]) -> None:
        """Size-bound objects, rebuilt only when the source size changes (an unpolled grab is dropped)."""
        source = (max(1, int(source[0])), max(1, int(source[1])))
        if source == self._source_size:
            return
        self._source_size = source
        if self._copy is not None:
            self._copy.release()
            self._copy = None
        size = self.fixed or preview_size(self.width, source)
        if size != self.size:
            self._release_size_bound()
            w, h = self.size = size
            self._texture = self.ctx.texture(size, 4)
            self._fbo = self.ctx.framebuffer(color_attachments=[self._texture])
            self._buffers = [self.ctx.buffer(reserve=w * h * self.components) for _ in range(self.buffer_count)]
        scale = (source[0] / size[0], source[1] / size[1])
        set_uniform(self._program, "uSourceSize", (float(source[0]), float(source[1])))
        set_uniform(self._program, "uScale", scale)
        set_uniform(self._program, "uTaps", tuple(max(1, math.ceil(s / 2 - 1e-9)) for s in scale))
        set_uniform(self._program, "uSnap", tuple(1.0 if s > 1.0 else 0.0 for s in scale))
        set_uniform(self._program, "uHeight", float(size[1]))

    def _release_size_bound(self) -> None:
        for obj in (self._fbo, self._texture, *self._buffers):
            if obj is not None:
                obj.release()
        self._fbo = self._texture = None
        self._buffers = []
        self._pending.clear()
        self._next = 0

    def release(self) -> None:
        self._release_size_bound()
        if self._copy is not None:
            self._copy.release()
            self._copy = None
        self._sampler.release()
        self._vao.release()
        self._program.release()
