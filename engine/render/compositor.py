"""Draws one frame of the show into any framebuffer, window or not.

Passes, in order:
1. idle visual into its own buffer, only while no image is current;
2. transition: the current layer (or the idle buffer) and the incoming one,
   each through its fit transform, mixed by ``progress``;
3. effect over the result (skipped with ``effect = "none"``);
4. overlays: the join card (large when idle, in a corner otherwise) and the HUD;
5. blackout: black over everything, at the plan's level.
The same object runs in a pyglet window, under EGL for ``--headless`` and in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import moderngl
import numpy as np

from engine.render import builtin
from engine.render.fit import IDENTITY, FitTransform, fit_transform
from engine.render.gl import build_program, set_uniform
from engine.render.overlay import join_card
from engine.render.upload import TextureSlots
from engine.show import FramePlan, Layer


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
        effect: str = "glow",
    ) -> None:
        self.ctx = ctx
        self.slots = slots
        self.fit = fit
        self.effect = effect
        self.size = (0, 0)
        vs = builtin.FULLSCREEN_VS
        self.idle_prog = build_program(ctx, "builtin:idle", vs, builtin.IDLE_FS)
        self.transition_prog = build_program(ctx, "builtin:crossfade", vs, builtin.CROSSFADE_FS)
        self.effect_prog = build_program(ctx, "builtin:glow", vs, builtin.GLOW_FS)
        self.overlay_prog = build_program(ctx, "builtin:overlay", builtin.OVERLAY_VS, builtin.OVERLAY_FS)
        self.solid_prog = build_program(ctx, "builtin:solid", vs, builtin.SOLID_FS)
        self._vaos = {
            p: ctx.vertex_array(p, [])
            for p in (
                self.idle_prog, self.transition_prog, self.effect_prog, self.overlay_prog, self.solid_prog
            )
        }
        self._fits: dict[tuple[str, int], FitTransform] = {}
        self._idle: _Buffer | None = None
        self._mix: _Buffer | None = None
        self._join: JoinInfo | None = None
        self._card_big: _Overlay | None = None
        self._card_small: _Overlay | None = None
        self._hud: _Overlay | None = None
        self.resize(size)

    # --- set-up ---------------------------------------------------------------
    def _buffer(self, size: tuple[int, int]) -> _Buffer:
        tex = self.ctx.texture(size, 4)
        tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        tex.repeat_x = False
        tex.repeat_y = False
        return _Buffer(tex, self.ctx.framebuffer(color_attachments=[tex]))

    def resize(self, size: tuple[int, int]) -> None:
        """Output size changed (window resize, fullscreen): rebuild size-bound buffers."""
        size = (max(1, int(size[0])), max(1, int(size[1])))
        if size == self.size:
            return
        self.size = size
        for buf in (self._idle, self._mix):
            if buf is not None:
                buf.release()
        self._idle = self._buffer(size)
        self._mix = self._buffer(size)
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

    def set_effect(self, effect: str) -> None:
        self.effect = effect

    # --- drawing --------------------------------------------------------------
    def _fit_for(self, layer: Layer) -> FitTransform:
        key = (layer.id, layer.slot)
        fit = self._fits.get(key)
        if fit is None:
            fit = fit_transform(self.size, (layer.width, layer.height), self.slots.size, self.fit)
            self._fits[key] = fit
        return fit

    def _bind_layer(self, which: str, unit: int, layer: Layer | None) -> None:
        prog = self.transition_prog
        if layer is None:
            assert self._idle is not None
            self._idle.texture.use(unit)
            fit, half = IDENTITY, (0.5 / self.size[0], 0.5 / self.size[1])
        else:
            self.slots.texture(layer.slot).use(unit)
            fit, half = self._fit_for(layer), (0.5 / self.slots.size, 0.5 / self.slots.size)
        set_uniform(prog, f"u{which}", unit)
        set_uniform(prog, f"u{which}Xform", fit.as_xform())
        set_uniform(prog, f"u{which}Region", (*fit.region, *half))

    def render(self, plan: FramePlan, t: float, target: moderngl.Framebuffer) -> None:
        ctx = self.ctx
        w, h = self.size
        for layer in plan.retired:
            self._fits.pop((layer.id, layer.slot), None)
        ctx.disable(moderngl.BLEND)
        idle = plan.current is None
        if idle:
            assert self._idle is not None
            self._idle.fbo.use()
            set_uniform(self.idle_prog, "uResolution", (float(w), float(h)))
            set_uniform(self.idle_prog, "uTime", t)
            self._vaos[self.idle_prog].render(moderngl.TRIANGLES, vertices=3)

        use_effect = self.effect != "none"
        assert self._mix is not None
        out = self._mix.fbo if use_effect else target
        out.use()
        ctx.viewport = (0, 0, w, h)
        incoming = plan.incoming if plan.incoming is not None else plan.current
        self._bind_layer("From", 0, plan.current)
        self._bind_layer("To", 1, incoming)
        prog = self.transition_prog
        set_uniform(prog, "progress", plan.progress if plan.incoming is not None else 0.0)
        set_uniform(prog, "ratio", w / h)
        set_uniform(prog, "uTime", t)
        self._vaos[prog].render(moderngl.TRIANGLES, vertices=3)

        if use_effect:
            target.use()
            ctx.viewport = (0, 0, w, h)
            self._mix.texture.use(0)
            fx = self.effect_prog
            set_uniform(fx, "uInput", 0)
            set_uniform(fx, "uResolution", (float(w), float(h)))
            set_uniform(fx, "uTime", t)
            self._vaos[fx].render(moderngl.TRIANGLES, vertices=3)

        self._draw_overlays(idle, plan)
        if plan.blackout > 0.0:
            ctx.enable(moderngl.BLEND)
            ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
            set_uniform(self.solid_prog, "uColor", (0.0, 0.0, 0.0, min(1.0, plan.blackout)))
            self._vaos[self.solid_prog].render(moderngl.TRIANGLES, vertices=3)
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
        for buf in (self._idle, self._mix):
            if buf is not None:
                buf.release()
        for item in (self._card_big, self._card_small, self._hud):
            if item is not None:
                item.release()
        for vao in self._vaos.values():
            vao.release()
        for prog in self._vaos:
            prog.release()
