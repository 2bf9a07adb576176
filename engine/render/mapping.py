"""Projection mapping: the last GPU pass on each output, from the program's canvas to one projector.

One :class:`Mapper` per output (per window). ``render(source, target, size)`` draws the output's part of
the canvas texture into ``target``, in one pass (after an edit or a resize, one more first: the bake, 2-3):

1. **Warp.** A vertex grid, tessellated on the CPU (``venue.tessellate``), carries each vertex's place in
   the corner-pinned square and its content coordinate. The vertex shader applies the corner pin's
   homography and hands GL the homogeneous W, so GL's perspective-correct interpolation makes the pin
   exact at every pixel (no mesh: one quad is enough). A mesh warp is the Catmull-Rom surface through
   the control points, evaluated at the grid's vertices.
   Why a tessellated mesh rather than per fragment: the warp goes content → output, and a fragment
   shader would need the inverse (output → content) of a bicubic surface, an iterative solve per
   pixel. The forward mesh costs the GPU a few thousand triangles, and the CPU work is done once per
   edit, not per frame (8 quads per patch: ``venue.QUADS_PER_PATCH`` says why that is close enough).
2. **Edge blend**, from the content coordinate (so the ramp follows the warp): a smoothstep per side, a
   weight in linear light; the pixel is picture * weight ** (1/gamma), so the projector's light,
   pixel ** gamma, is picture light * weight, and facing ramps sum to 1.
3. **Masks**, in output coordinates: an even-odd point-in-polygon test against each polygon's edges,
   read from a float texture (one row per polygon: its bounding box, its edge count, then its edges),
   after a bounding-box check. A texture, not uniform arrays, so neither the number of polygons nor
   their vertices press on uniform limits; even-odd, so concave and self-crossing polygons mask exactly
   what they enclose; per fragment, so no stencil buffer is needed in the target (the window's
   framebuffer may have none). Polygons are OR-ed: overlapping masks stay black.
   Blend and masks depend on the profile and the output's size, never on the picture, so they are
   *baked*: after an edit or a resize, one pass draws the same mesh into an attenuation texture of the
   output's size (R16F: weight ** (1/gamma), 0 under a mask). The same triangles rasterize to the same
   fragments, so each frame multiplies by one texelFetch at the fragment's own pixel, whatever the
   number of masks and vertices. (On llvmpipe at 1080p, computing them every frame cost 13 ms for the
   ramps and 100 ms for 4 masks of 16 vertices; the fetch costs a few.)
4. **Test pattern** (``test_pattern=True``) instead of the picture, warped, blended and masked the same
   way: lines every 1/16 of the *canvas* (brighter every 1/4), so where two projectors overlap their
   lines must coincide; the output's border, colour-coded corner triangles (red top-left, green top-right,
   blue bottom-right, yellow bottom-left), a crosshair at its centre and its name.

Outside the warped picture the target is black. The bound framebuffer and viewport are restored;
blending is assumed off, as the compositor leaves it. Only the render thread may call a Mapper.
"""

from __future__ import annotations

import moderngl
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.errors import RenderError
from engine.render.gl import build_program, restore_framebuffer, set_uniform
from engine.render.venue import OutputMapping, homography, tessellate

MAPPING_VS = """
#version 330
uniform mat3 uHomography;  // the corner-pinned unit square -> output coordinates (y down), homogeneous
in vec2 aPinned;           // where the mesh puts this vertex, in the corner-pinned square
in vec2 aContent;          // the picture's coordinate here: 0..1 across the output's region, y down
out vec2 vContent;
void main() {
    vec3 p = uHomography * vec3(aPinned, 1.0);
    vContent = aContent;
    // Output (x, y) = p.xy / p.z to clip space, keeping p.z as w: interpolation is perspective-correct.
    gl_Position = vec4(2.0 * p.x - p.z, p.z - 2.0 * p.y, 0.0, p.z);
}
"""

# The body of the fragment shader: ``fragment_shader()`` puts a #version line and the PATTERN, ATTEN and
# BAKE switches above it.
MAPPING_FS = """
in vec2 vContent;
out vec4 fragColor;
uniform sampler2D uSource;   // the canvas, GL rows (bottom up)
uniform sampler2D uMasks;    // RGBA32F, a row per polygon: bbox, (edge count), edges (ax, ay, bx, by)
uniform sampler2D uLabel;    // the output's name, white on black, top row first
uniform sampler2D uAtten;    // the baked blend and masks, one texel per output pixel
uniform vec4 uRegion;        // x, y, w, h of the canvas, y down
uniform vec4 uBlend;         // left, right, top, bottom ramp widths in content units
uniform float uInvGamma;
uniform int uMaskCount;
uniform vec2 uSize;          // the output in pixels
uniform vec4 uLabelRect;     // x, y, w, h of the name in content coordinates

float ramp(float x, float width) {
    return width > 0.0 ? smoothstep(0.0, width, x) : 1.0;
}

bool masked(vec2 p) {
    for (int i = 0; i < uMaskCount; ++i) {
        vec4 box = texelFetch(uMasks, ivec2(0, i), 0);
        if (any(lessThan(p, box.xy)) || any(greaterThan(p, box.zw))) continue;
        int n = int(texelFetch(uMasks, ivec2(1, i), 0).x);
        bool inside = false;
        for (int k = 0; k < n; ++k) {
            vec4 e = texelFetch(uMasks, ivec2(2 + k, i), 0);
            if ((e.y > p.y) != (e.w > p.y)) {
                float x = e.x + (p.y - e.y) * (e.z - e.x) / (e.w - e.y);
                if (p.x < x) inside = !inside;
            }
        }
        if (inside) return true;
    }
    return false;
}

float grid_line(vec2 g, float width) {
    // Distance to the nearest integer line of g, in pixels wherever the warp puts it.
    vec2 d = abs(fract(g + 0.5) - 0.5) / max(fwidth(g), vec2(1e-6));
    return 1.0 - clamp(min(d.x, d.y) - width, 0.0, 1.0);
}

vec3 pattern(vec2 c, vec2 canvas) {
    vec3 col = vec3(0.5) * grid_line(canvas * 16.0, 0.25);
    col = max(col, vec3(1.0) * grid_line(canvas * 4.0, 0.75));
    vec2 px = max(fwidth(c), vec2(1e-6));  // content units per pixel
    vec2 edge = min(c, 1.0 - c) / px;
    if (min(edge.x, edge.y) < 2.0) col = vec3(1.0);
    const float k = 1.0 / 12.0;
    if (c.x + c.y < k) col = vec3(1.0, 0.1, 0.1);
    if (1.0 - c.x + c.y < k) col = vec3(0.1, 1.0, 0.1);
    if (2.0 - c.x - c.y < k) col = vec3(0.2, 0.4, 1.0);
    if (c.x + 1.0 - c.y < k) col = vec3(1.0, 1.0, 0.1);
    vec2 q = (c - 0.5) / px;  // pixels from the centre
    float r = 0.06 * uSize.y;
    if (abs(length(q) - r) < 1.0 || (abs(q.x) < 1.0 && abs(q.y) < 1.5 * r) || (abs(q.y) < 1.0 && abs(q.x) < 1.5 * r))
        col = vec3(0.1, 1.0, 1.0);
    vec2 l = (c - uLabelRect.xy) / uLabelRect.zw;
    if (all(greaterThanEqual(l, vec2(0.0))) && all(lessThanEqual(l, vec2(1.0))))
        col = max(col, vec3(texture(uLabel, l).r));
    return col;
}

void main() {
#if BAKE
    float w = ramp(vContent.x, uBlend.x) * ramp(1.0 - vContent.x, uBlend.y)
            * ramp(vContent.y, uBlend.z) * ramp(1.0 - vContent.y, uBlend.w);
    vec2 p = vec2(gl_FragCoord.x, uSize.y - gl_FragCoord.y) / uSize;  // output coordinates, y down
    fragColor = vec4(masked(p) ? 0.0 : pow(w, uInvGamma), 0.0, 0.0, 1.0);
#else
    vec2 canvas = uRegion.xy + vContent * uRegion.zw;
#if PATTERN
    vec3 col = pattern(vContent, canvas);
#else
    vec3 col = texture(uSource, vec2(canvas.x, 1.0 - canvas.y)).rgb;
#endif
#if ATTEN
    col *= texelFetch(uAtten, ivec2(gl_FragCoord.xy), 0).r;
#endif
    fragColor = vec4(col, 1.0);
#endif
}
"""


def fragment_shader(pattern: bool, atten: bool, bake: bool) -> str:
    """MAPPING_FS with only the parts a pass uses: software GL pays for a branch not taken, uniform or not
    (llvmpipe at 1080p: the test pattern's code alone cost 15 ms a frame, an empty mask loop 13 ms)."""
    switches = "".join(f"#define {k} {int(v)}\n" for k, v in (("PATTERN", pattern), ("ATTEN", atten), ("BAKE", bake)))
    return "#version 330\n" + switches + MAPPING_FS


LABEL_PX = 64  # the name's font size in its texture
LABEL_HEIGHT = 0.08  # the name's height, in content units (of the output's height)


def mask_rows(masks: tuple[tuple[tuple[float, float], ...], ...]) -> np.ndarray:
    """The masks texture's texels: (polygons, 2 + most edges, 4) float32, as MAPPING_FS reads them."""
    if not masks:
        return np.zeros((1, 1, 4), dtype=np.float32)
    out = np.zeros((len(masks), 2 + max(len(m) for m in masks), 4), dtype=np.float32)
    for i, poly in enumerate(masks):
        p = np.asarray(poly, dtype=np.float64)
        out[i, 0] = (*p.min(axis=0), *p.max(axis=0))
        out[i, 1, 0] = len(p)
        out[i, 2: 2 + len(p), :2] = p
        out[i, 2: 2 + len(p), 2:] = np.roll(p, -1, axis=0)
    return out


def label_image(name: str) -> np.ndarray:
    """The output's name, white on black, as an (h, w) uint8 array, top row first."""
    f = ImageFont.load_default(size=LABEL_PX)  # Pillow's bundled scalable font: no system fonts needed
    x0, y0, x1, y1 = f.getbbox(name)
    pad = LABEL_PX // 8
    img = Image.new("L", (int(x1 - x0) + 2 * pad, int(y1 - y0) + 2 * pad), 0)
    ImageDraw.Draw(img).text((pad - x0, pad - y0), name, fill=255, font=f)
    return np.asarray(img, dtype=np.uint8)


Variant = tuple[bool, bool, bool]  # (pattern, atten, bake): which parts MAPPING_FS is compiled with


class Mapper:
    """The mapping pass of one output: ``render()`` each frame, ``update()`` on an edit, ``release()`` at the end.

    One program per variant of the fragment shader in use (picture or test pattern, with or without the
    attenuation; the bake), compiled when first needed and kept; all share the vertex grid and the textures.
    """

    def __init__(self, ctx: moderngl.Context, output: OutputMapping) -> None:
        self.ctx = ctx
        self.output = output
        self._programs: dict[Variant, tuple[moderngl.Program, moderngl.VertexArray]] = {}
        self._uniforms: dict[str, object] = {"uSource": 0, "uMasks": 1, "uLabel": 2, "uAtten": 3}
        # A sampler object, so the caller's texture keeps its own filter and wrap settings.
        self._sampler = ctx.sampler(repeat_x=False, repeat_y=False, filter=(moderngl.LINEAR, moderngl.LINEAR))
        self._vbo: moderngl.Buffer | None = None
        self._ibo: moderngl.Buffer | None = None
        self._masks: moderngl.Texture | None = None
        self._label: moderngl.Texture | None = None
        self._label_aspect = 1.0
        self._size = (0, 0)
        self._atten: moderngl.Texture | None = None  # the baked blend and masks, at the output's size
        self._atten_fbo: moderngl.Framebuffer | None = None
        self._atten_stale = True
        try:
            self._set_mesh(output)
            self._set_masks(output)
            self._set_label(output)
            self._set_uniforms(output)
            # Compile now what this output will draw with, so a driver's complaint comes with the Mapper.
            self._program((False, self._attenuated(output), False))
            if self._attenuated(output):
                self._program((False, False, True))
        except moderngl.Error as err:
            self.release()
            raise RenderError(f"mapping {output.name!r}: cannot make its GL objects: {err}") from err
        except Exception:
            self.release()
            raise

    # --- edits --------------------------------------------------------------------------------------------
    def update(self, output: OutputMapping) -> None:
        """Take a live edit: only what changed is rebuilt (a moved corner is a uniform, a moved mesh point a
        buffer write). ``output`` should come from ``load_venue`` or ``check_venue``: nothing is checked here."""
        old, self.output = self.output, output
        self._atten_stale = self._atten_stale or output != old
        try:
            if output.mesh != old.mesh:
                self._set_mesh(output)
            if output.masks != old.masks:
                self._set_masks(output)
            if output.name != old.name:
                self._set_label(output)
                self._size = (0, 0)  # the label's place depends on its aspect
        except moderngl.Error as err:
            raise RenderError(f"mapping {output.name!r}: cannot update its GL objects: {err}") from err
        self._set_uniforms(output)

    @staticmethod
    def _attenuated(output: OutputMapping) -> bool:
        """Whether the output has an edge blend or masks: something to bake and multiply by."""
        b = output.blend
        return max(b.left, b.right, b.top, b.bottom) > 0.0 or bool(output.masks)

    def _program(self, variant: Variant) -> tuple[moderngl.Program, moderngl.VertexArray]:
        """The program for ``variant`` and its vertex array, made on first use with the current uniforms."""
        made = self._programs.get(variant)
        if made is None:
            prog = build_program(self.ctx, "builtin:mapping", MAPPING_VS, fragment_shader(*variant))
            for name, value in self._uniforms.items():
                set_uniform(prog, name, value)
            made = self._programs[variant] = (prog, self._vertex_array(prog))
        return made

    def _vertex_array(self, prog: moderngl.Program) -> moderngl.VertexArray:
        assert self._vbo is not None and self._ibo is not None
        return self.ctx.vertex_array(
            prog, [(self._vbo, "2f 2f", "aPinned", "aContent")], index_buffer=self._ibo, index_element_size=4
        )

    def _set(self, name: str, value: object) -> None:
        """Set a uniform in every program, and remember it for programs made later."""
        self._uniforms[name] = value
        for prog, _ in self._programs.values():
            set_uniform(prog, name, value)

    def _set_mesh(self, output: OutputMapping) -> None:
        vertices, indices = tessellate(output.mesh)
        if self._vbo is not None and self._ibo is not None and self._vbo.size == vertices.nbytes \
                and self._ibo.size == indices.nbytes:
            self._vbo.write(vertices)  # the same grid, moved: no new objects
            return
        for obj in (*(vao for _, vao in self._programs.values()), self._vbo, self._ibo):
            if obj is not None:
                obj.release()
        self._vbo = self.ctx.buffer(vertices)
        self._ibo = self.ctx.buffer(indices)
        self._programs = {k: (prog, self._vertex_array(prog)) for k, (prog, _) in self._programs.items()}

    def _set_masks(self, output: OutputMapping) -> None:
        rows = mask_rows(output.masks)
        if self._masks is not None:
            self._masks.release()
        self._masks = self.ctx.texture((rows.shape[1], rows.shape[0]), 4, rows.tobytes(), dtype="f4")
        self._masks.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._set("uMaskCount", len(output.masks))

    def _set_label(self, output: OutputMapping) -> None:
        img = label_image(output.name)
        h, w = img.shape
        if self._label is not None:
            self._label.release()
        self._label = self.ctx.texture((w, h), 1, img.tobytes(), alignment=1)
        self._label.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self._label.repeat_x = self._label.repeat_y = False
        self._label_aspect = w / h

    def _set_uniforms(self, output: OutputMapping) -> None:
        # GLSL matrices are column-major.
        self._set("uHomography", tuple(float(v) for v in homography(output.corners).T.reshape(-1)))
        x, y, w, h = output.region
        b = output.blend
        self._set("uRegion", (x, y, w, h))
        self._set("uBlend", (b.left / w, b.right / w, b.top / h, b.bottom / h))
        self._set("uInvGamma", 1.0 / b.gamma)

    def _set_size(self, size: tuple[int, int]) -> None:
        self._size = size
        self._atten_stale = True
        w, h = size
        self._set("uSize", (float(w), float(h)))
        # The name under the crosshair, its aspect kept on an unwarped output, at most 0.8 wide.
        lw = min(0.8, LABEL_HEIGHT * self._label_aspect * h / w)
        lh = lw * w / (self._label_aspect * h)
        self._set("uLabelRect", (0.5 - lw / 2, 0.62, lw, lh))

    # --- per frame ----------------------------------------------------------------------------------------
    def render(
        self,
        source: moderngl.Texture,
        target: moderngl.Framebuffer,
        size: tuple[int, int],
        test_pattern: bool = False,
    ) -> None:
        """Draw this output's picture of the canvas ``source`` (or the test pattern) into ``target``.

        ``size`` is the output's size in pixels: the part of ``target`` drawn, from its bottom-left corner.
        The whole of it is written (black outside the warped picture and under the masks).
        """
        ctx = self.ctx
        w, h = max(1, int(size[0])), max(1, int(size[1]))
        previous, viewport = ctx.fbo, ctx.viewport
        try:
            if (w, h) != self._size:
                self._set_size((w, h))
            atten = self._attenuated(self.output)
            if atten and self._atten_stale:
                self._bake()
            _, vao = self._program((test_pattern, atten, False))
            target.use()
            ctx.viewport = (0, 0, w, h)
            target.clear(0.0, 0.0, 0.0, 1.0, viewport=(0, 0, w, h))
            assert self._label is not None
            source.use(0)
            self._sampler.use(0)
            self._label.use(2)
            if atten:
                assert self._atten is not None
                self._atten.use(3)
            vao.render(moderngl.TRIANGLES)
            self._sampler.clear(0)  # a bound sampler would override the next draw's texture settings
        except moderngl.Error as err:
            raise RenderError(f"mapping {self.output.name!r}: drawing failed: {err}") from err
        finally:
            restore_framebuffer(ctx, previous, viewport)

    def _bake(self) -> None:
        """Draw the blend and masks into the attenuation texture, at the output's size."""
        ctx = self.ctx
        w, h = self._size
        if self._atten is None or self._atten.size != (w, h):
            for obj in (self._atten_fbo, self._atten):
                if obj is not None:
                    obj.release()
            self._atten = ctx.texture((w, h), 1, dtype="f2")
            self._atten_fbo = ctx.framebuffer(color_attachments=[self._atten])
        assert self._atten_fbo is not None and self._masks is not None
        _, vao = self._program((False, False, True))
        self._atten_fbo.use()
        ctx.viewport = (0, 0, w, h)
        self._atten_fbo.clear(0.0, 0.0, 0.0, 1.0)
        self._masks.use(1)
        vao.render(moderngl.TRIANGLES)
        self._atten_stale = False

    def release(self) -> None:
        for prog, vao in self._programs.values():
            vao.release()
            prog.release()
        self._programs = {}
        for obj in (self._vbo, self._ibo, self._masks, self._label, self._atten_fbo, self._atten):
            if obj is not None:
                obj.release()
        self._vbo = self._ibo = None
        self._masks = self._label = self._atten = None
        self._atten_fbo = None
        self._sampler.release()
