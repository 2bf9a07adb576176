"""Draws one frame of the show into any framebuffer, window or not.

Passes, in order:
1. idle visual into its own buffer, only while no image is current;
2. transition: the current layer (or the idle buffer) and the incoming one,
   each through its fit transform, mixed by the active transition (the built-in
   crossfade, a gl-transition, or an ISF transition fed fitted copies of both);
   with no transition running, the crossfade at 0 draws the current layer;
3. the effect chain (up to three library shaders, each reading the last);
4. the dream layer (engine/render/dream.py), fitted like an image, blended at its mix; first, the
   picture so far may be tapped (the dream's source: the program without the dream and the overlays);
5. captions (engine/render/captions.py): each layer's band, painted backstage, across the screen's
   bottom (or top) at the opacity the show gave it;
6. overlays: the join card (large when idle, in a corner otherwise) and the HUD;
7. blackout: black over everything, at the plan's level.
The same object runs in a pyglet window, under EGL for ``--headless`` and in tests.

Why the dream sits after the effects and under the overlays: it is a picture of the program (made
from it, at the VJ's mix), so the effects of the chain have already shaped what it dreams on and are
not applied twice; the join card and the HUD must stay sharp and scannable over it, and the blackout
must cover it like everything else. Captions sit over the dream for the same reason as the join card
(words stay sharp, and the dream never dreams them) and under the card and the HUD, which the VJ needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import moderngl
import numpy as np

from engine.render import builtin
from engine.render.captions import CaptionDraw
from engine.render.dream import DreamLayer
from engine.render.fit import IDENTITY, FitTransform, fit_transform
from engine.render.gl import build_program, set_uniform
from engine.render.overlay import join_card
from engine.render.upload import TextureSlots
from engine.shaders.gltransition import parse_gl_transition
from engine.shaders.library import ShaderLibrary
from engine.shaders.program import FrameInputs, IsfProgram, LayerBinding, SharedTextures
from engine.shaders.source import Dialect, Value
from engine.show import FramePlan, Layer

BUILTIN_TRANSITION = "crossfade"
MAX_EFFECTS = 3
SPARE_CAPTIONS = 2  # caption textures kept for reuse: a caption band is usually the size of the last one


@dataclass(frozen=True)
class JoinInfo:
    url: str
    headline: str = "Send your prompt"
    qr_mode: str = "always"  # always | idle | off
    qr_size: float = 0.16  # corner card's QR height, fraction of screen height


class _Overlay:
    """A CPU-made RGBA picture on the GPU, drawn at a pixel rectangle."""

    def __init__(self, ctx: moderngl.Context, pixels: np.ndarray) -> None:
        h, w = pixels.shape[:2]
        self.size = (w, h)
        self.texture = ctx.texture((w, h), 4, np.ascontiguousarray(pixels))
        self.texture.filter = (moderngl.NEAREST, moderngl.NEAREST)

    def update(self, pixels: np.ndarray) -> None:
        self.texture.write(np.ascontiguousarray(pixels))

    def release(self) -> None:
        self.texture.release()


@dataclass
class _Buffer:
    """An offscreen colour buffer the compositor draws into and samples from."""

    texture: moderngl.Texture
    fbo: moderngl.Framebuffer

    def release(self) -> None:
        self.fbo.release()
        self.texture.release()


class Compositor:
    def __init__(
        self,
        ctx: moderngl.Context,
        size: tuple[int, int],
        slots: TextureSlots,
        fit: str = "letterbox",
        library: ShaderLibrary | None = None,
        shared: SharedTextures | None = None,
    ) -> None:
        self.ctx = ctx
        self.slots = slots
        self.fit = fit
        self.library = library
        self.shared = shared or (library.shared if library else SharedTextures(ctx))
        self._owns_shared = shared is None and library is None
        self.effects: list[str] = []
        self.transition = BUILTIN_TRANSITION
        self.size = (0, 0)
        vs = builtin.FULLSCREEN_VS
        self.idle_prog = build_program(ctx, "builtin:idle", vs, builtin.IDLE_FS)
        self.overlay_prog = build_program(ctx, "builtin:overlay", builtin.OVERLAY_VS, builtin.OVERLAY_FS)
        self.solid_prog = build_program(ctx, "builtin:solid", vs, builtin.SOLID_FS)
        self.crossfade = IsfProgram(
            ctx, parse_gl_transition(Path("builtin:crossfade"), builtin.CROSSFADE_GL_TRANSITION), self.shared
        )
        self._vaos = {p: ctx.vertex_array(p, []) for p in (self.idle_prog, self.overlay_prog, self.solid_prog)}
        self._fits: dict[tuple[str, int], FitTransform] = {}
        self._buffers: dict[str, _Buffer] = {}
        self._join: JoinInfo | None = None
        self._card_big: _Overlay | None = None
        self._card_small: _Overlay | None = None
        self._hud: _Overlay | None = None
        self.dream: DreamLayer | None = None  # the show loop's, when the dream runs
        self.dream_mix = 0.0
        self.captions: Sequence[CaptionDraw] = ()  # the show loop's, each frame
        self._caption_textures: dict[str, _Overlay] = {}  # by image id, while the show lists it
        self._caption_spares: list[_Overlay] = []
        self.resize(size)

    # --- set-up ---------------------------------------------------------------
    def _buffer(self, name: str) -> _Buffer:
        """A colour buffer at the output size, made on first use (fitted layers, effect ping-pong)."""
        buf = self._buffers.get(name)
        if buf is None:
            tex = self.ctx.texture(self.size, 4)
            tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
            tex.repeat_x = False
            tex.repeat_y = False
            buf = _Buffer(tex, self.ctx.framebuffer(color_attachments=[tex]))
            self._buffers[name] = buf
        return buf

    def resize(self, size: tuple[int, int]) -> None:
        """Output size changed (window resize, fullscreen): rebuild size-bound buffers."""
        size = (max(1, int(size[0])), max(1, int(size[1])))
        if size == self.size:
            return
        self.size = size
        for buf in self._buffers.values():
            buf.release()
        self._buffers.clear()
        self._fits.clear()
        if self._join is not None:
            self.set_join(self._join)

    def set_join(self, join: JoinInfo) -> None:
        """Make the join cards for this URL at this output size."""
        self._join = join
        for card in (self._card_big, self._card_small):
            if card is not None:
                card.release()
        self._card_big = self._card_small = None
        if join.qr_mode == "off":
            return
        h = self.size[1]
        self._card_big = _Overlay(self.ctx, join_card(join.url, int(h * 0.5), join.headline))
        if join.qr_mode == "always":
            self._card_small = _Overlay(self.ctx, join_card(join.url, int(h * join.qr_size)))

    def set_hud(self, pixels: np.ndarray | None) -> None:
        """Show this HUD picture (RGBA, top row first), or hide the HUD with None."""
        same_size = self._hud is not None and pixels is not None and self._hud.size == pixels.shape[1::-1]
        if same_size and self._hud is not None and pixels is not None:
            self._hud.update(pixels)
            return
        if self._hud is not None:
            self._hud.release()
            self._hud = None
        if pixels is not None:
            self._hud = _Overlay(self.ctx, pixels)

    # --- drawing --------------------------------------------------------------
    def _fit_for(self, layer: Layer) -> FitTransform:
        key = (layer.id, layer.slot)
        fit = self._fits.get(key)
        if fit is None:
            fit = fit_transform(self.size, (layer.width, layer.height), self.slots.size, self.fit)
            self._fits[key] = fit
        return fit

    def _binding(self, layer: Layer | None) -> LayerBinding:
        """How to sample a layer: its slot through its fit, or the idle buffer as is."""
        if layer is None:
            w, h = self.size
            return LayerBinding(self._buffer("idle").texture, IDENTITY.as_xform(),
                                (*IDENTITY.region, 0.5 / w, 0.5 / h))
        fit = self._fit_for(layer)
        half = 0.5 / self.slots.size
        return LayerBinding(self.slots.texture(layer.slot), fit.as_xform(), (*fit.region, half, half))

    def _active_effects(self) -> list[tuple[IsfProgram, dict[str, Value]]]:
        if self.library is None:
            return []
        out = []
        for name in self.effects[:MAX_EFFECTS]:
            entry = self.library.get(name)
            if entry is not None and entry.program is not None:
                out.append((entry.program, entry.params.frame_values()))
        return out

    def render(self, plan: FramePlan, t: float, target: moderngl.Framebuffer,
               frame: FrameInputs | None = None, tap: Callable[[moderngl.Framebuffer], None] | None = None) -> None:
        """Draw ``plan`` into ``target``; ``tap`` sees the target after the effects, before the dream and overlays."""
        ctx = self.ctx
        w, h = self.size
        frame = frame or FrameInputs(time=t, delta=0.0, frame=0)
        for layer in plan.retired:
            self._fits.pop((layer.id, layer.slot), None)
        ctx.disable(moderngl.BLEND)
        idle = plan.current is None
        if idle:
            self._buffer("idle").fbo.use()
            ctx.viewport = (0, 0, w, h)
            set_uniform(self.idle_prog, "uResolution", (float(w), float(h)))
            set_uniform(self.idle_prog, "uTime", t)
            self._vaos[self.idle_prog].render(moderngl.TRIANGLES, vertices=3)

        effects = self._active_effects()
        stage = self._buffer("mix") if effects else None
        self._draw_transition(plan, frame, stage.fbo if stage else target)

        source = stage.texture if stage else None
        for i, (program, params) in enumerate(effects):
            last = i == len(effects) - 1
            out = None if last else self._buffer(f"fx{i % 2}")
            assert source is not None
            program.render(out.fbo if out else target, self.size, frame, params, images={"inputImage": source})
            if out is not None:
                source = out.texture

        if tap is not None:
            tap(target)
        target.use()
        ctx.viewport = (0, 0, w, h)
        if self.dream is not None:
            self.dream.draw(self.size, self.fit, self.dream_mix)
        self._draw_captions()
        self._draw_overlays(idle, plan)
        if plan.blackout > 0.0:
            ctx.enable(moderngl.BLEND)
            ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
            set_uniform(self.solid_prog, "uColor", (0.0, 0.0, 0.0, min(1.0, plan.blackout)))
            self._vaos[self.solid_prog].render(moderngl.TRIANGLES, vertices=3)
            ctx.disable(moderngl.BLEND)

    def _draw_transition(self, plan: FramePlan, frame: FrameInputs, out: moderngl.Framebuffer) -> None:
        src = self._binding(plan.current)
        if plan.incoming is None:
            self.crossfade.render(out, self.size, frame, {}, layers=(src, src), extra={"progress": 0.0})
            return
        dst = self._binding(plan.incoming)
        entry = self.library.get(self.transition) if self.library and self.transition != BUILTIN_TRANSITION \
            else None
        program = entry.program if entry is not None else None
        if program is None or entry is None:
            self.crossfade.render(out, self.size, frame, {}, layers=(src, dst), extra={"progress": plan.progress})
            return
        params = entry.params.frame_values()  # a fresh dict: progress can be added to it
        if program.src.dialect is Dialect.GL_TRANSITION:
            program.render(out, self.size, frame, params, layers=(src, dst), extra={"progress": plan.progress})
            return
        # ISF transitions sample startImage/endImage directly: give them fitted full-screen copies.
        start, end = self._buffer("start"), self._buffer("end")
        self.crossfade.render(start.fbo, self.size, frame, {}, layers=(src, src), extra={"progress": 0.0})
        self.crossfade.render(end.fbo, self.size, frame, {}, layers=(dst, dst), extra={"progress": 0.0})
        params["progress"] = plan.progress
        program.render(out, self.size, frame, params, images={"startImage": start.texture, "endImage": end.texture})

    def _caption_texture(self, draw: CaptionDraw) -> _Overlay:
        """The GPU copy of a caption band: made when its layer first shows, reusing a spare of its size."""
        item = self._caption_textures.get(draw.id)
        if item is None:
            size = draw.pixels.shape[1::-1]
            spare = next((s for s in self._caption_spares if s.size == size), None)
            if spare is not None:
                self._caption_spares.remove(spare)
                spare.update(draw.pixels)
                item = spare
            else:
                item = _Overlay(self.ctx, draw.pixels)
                item.texture.filter = (moderngl.LINEAR, moderngl.LINEAR)  # scaled when the screen changed size
            self._caption_textures[draw.id] = item
        return item

    def _draw_captions(self) -> None:
        """Each listed caption across the screen's width (scaled from the width it was painted for),
        on the bottom or top edge; a texture no longer listed becomes a spare or is freed."""
        listed = {d.id for d in self.captions}
        for gone in [i for i in self._caption_textures if i not in listed]:
            item = self._caption_textures.pop(gone)
            if len(self._caption_spares) < SPARE_CAPTIONS:
                self._caption_spares.append(item)
            else:
                item.release()
        shown = [(self._caption_texture(d), d) for d in self.captions]
        if not any(d.opacity > 0.0 for d in self.captions):
            return
        ctx, prog = self.ctx, self.overlay_prog
        w, h = self.size
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        set_uniform(prog, "uTex", 0)
        for item, d in shown:
            if d.opacity <= 0.0:
                continue
            band_h = item.size[1] * w / item.size[0] / h * 2  # clip-space height
            rect = (-1.0, 1.0 - band_h, 1.0, 1.0) if d.top else (-1.0, -1.0, 1.0, -1.0 + band_h)
            item.texture.use(0)
            set_uniform(prog, "uRect", rect)
            set_uniform(prog, "uOpacity", min(1.0, d.opacity))
            self._vaos[prog].render(moderngl.TRIANGLE_STRIP, vertices=4)
        ctx.disable(moderngl.BLEND)

    def _draw_overlays(self, idle: bool, plan: FramePlan) -> None:
        w, h = self.size
        margin = max(8, h // 40)
        items: list[tuple[_Overlay, float, float, float]] = []
        # The big card fades out as the first image comes in.
        if idle and self._card_big is not None:
            cw, ch = self._card_big.size
            fade = 1.0 - (plan.progress if plan.incoming is not None else 0.0)
            items.append((self._card_big, (w - cw) / 2, (h - ch) / 2, fade))
        elif self._card_small is not None:
            cw, ch = self._card_small.size
            items.append((self._card_small, w - cw - margin, h - ch - margin, 1.0))
        if self._hud is not None:
            items.append((self._hud, margin, margin, 1.0))
        if not items:
            return
        ctx = self.ctx
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        prog = self.overlay_prog
        set_uniform(prog, "uTex", 0)
        for item, x, y, opacity in items:
            iw, ih = item.size
            # Whole pixels keep the QR modules crisp.
            x, y = float(round(x)), float(round(y))
            rect = (x / w * 2 - 1, 1 - (y + ih) / h * 2, (x + iw) / w * 2 - 1, 1 - y / h * 2)
            item.texture.use(0)
            set_uniform(prog, "uRect", rect)
            set_uniform(prog, "uOpacity", opacity)
            self._vaos[prog].render(moderngl.TRIANGLE_STRIP, vertices=4)
        ctx.disable(moderngl.BLEND)

    def release(self) -> None:
        for buf in self._buffers.values():
            buf.release()
        self._buffers.clear()
        for item in (self._card_big, self._card_small, self._hud, *self._caption_textures.values(),
                     *self._caption_spares):
            if item is not None:
                item.release()
        self._caption_textures.clear()
        self._caption_spares.clear()
        for vao in self._vaos.values():
            vao.release()
        for prog in self._vaos:
            prog.release()
        self.crossfade.release()
        if self._owns_shared:
            self.shared.release()
