"""Captions: the prompt's words as a lower third under its image ([overlay] captions).

Two halves, neither touching GL:

- ``paint_caption`` (backstage, in the worker pool, when the image is made): the text wrapped by pixel
  width, cut to ``caption_max_lines`` with an ellipsis, and painted white with a black outline and a
  soft shadow over a band that darkens toward the screen's edge, as one RGBA picture the full width of
  the screen. PIL takes milliseconds per caption: far too slow for the render thread, so the picture
  rides to the show on the ``ShowImage`` (``caption_pixels``), like the image itself.
- ``Captions`` (render thread): which caption belongs to which layer, how visible each one is this
  frame, and what the VJ hid. The compositor draws what ``Captions.frame`` returns, after the effects
  and the dream, under the join card and the HUD (engine/render/compositor.py).

Why the band is painted at the show's size and not at a fixed one: text painted for the pixels it
lands on is sharp, and the backstage already reads the show's size to fit the image. The show scales
the band by the screen's width when the two differ (the window went fullscreen after the caption was
painted, or the show had not said its size yet: then it is painted for ``REFERENCE_SIZE``), so a
caption is never wrong, at worst a little soft until the next image.

On screen, a caption fades in with its image's transition and out with it (two captions crossfade
while two images do), and goes after ``caption_seconds`` of show time once its image is fully in (0:
as long as the image). Show time stops while the show is frozen, and so does the caption's clock.
The VJ hides a caption by image id (``Action.CAPTION``): the one on screen now, or any image's
whenever it shows, re-shows from the gallery included (``caption_key``).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from engine.config import OverlayConfig
from engine.contract import ShowImage
from engine.render.overlay import Font, card_font, draws
from engine.show import FramePlan, Layer

log = logging.getLogger(__name__)

REFERENCE_SIZE = (1920, 1080)  # painted for this when the show has not said its size yet
BOLD_FONT = "DejaVuSans-Bold.ttf"  # the default caption face, where installed (Pillow's own font otherwise)
ELLIPSIS = "…"
SHADOW_ALPHA = 0.6  # the band's darkness at the text: white text stays readable on a white picture
DROP_SHADOW_ALPHA = 0.55  # the soft shadow around the letters (the outline's blurred copy)
SIDE_MARGIN = 0.05  # of the screen's width on each side: the title-safe area
EDGE_MARGIN = 0.05  # of the screen's height between the text and the screen's edge
FADE_OUT_S = 0.6  # a caption's last seconds, fading out (never more than a quarter of caption_seconds)
KEPT = 64  # captions the show remembers (images waiting, coming and on screen are far fewer)
_REPEAT = re.compile(r"-again\d+$")  # engine/backstage/control.py names a re-shown image "<id>-again<n>"


def caption_key(image_id: str) -> str:
    """The image a show id stands for: a re-shown image's caption is hidden when its original's is."""
    return _REPEAT.sub("", image_id)


# --- painting (backstage) ---------------------------------------------------------------------------
@lru_cache(maxsize=16)
def _font_file(path: str, size: int) -> Font | None:
    try:
        return ImageFont.truetype(path, size)
    except OSError:
        return None


def caption_font(text: str, size: int, path: str = "") -> tuple[Font, str]:
    """The face to paint ``text`` in at ``size`` px, and the text to paint with it.

    ``path`` (``[overlay] caption_font``) when it loads and draws every letter, else DejaVu Sans Bold
    when installed and it does, else the join card's choice (``overlay.card_font``: Pillow's own font or
    a system font that has the letters; at worst the letters written without their accents, never a box).
    """
    for name in (path, BOLD_FONT):
        if not name:
            continue
        f = _font_file(name, size)
        if f is None:
            if name == path:
                log.warning("[overlay] caption_font %r cannot be read; using another font", path)
            continue
        if all(draws(f, ch) for ch in text):
            return f, text
    return card_font(text, size)


def _width(font: Font, text: str, stroke: int) -> float:
    return float(font.getlength(text)) + 2 * stroke


def wrap(text: str, font: Font, width: float, max_lines: int, stroke: int = 0) -> list[str]:
    """``text`` in lines no wider than ``width`` px, at most ``max_lines``; the last ends with "…" when cut.

    Lines break between words; a word wider than a line is broken between letters.
    """
    ellipsis = ELLIPSIS if draws(font, ELLIPSIS) else "..."

    def fits(s: str) -> bool:
        return _width(font, s, stroke) <= width

    lines: list[str] = []
    line = ""
    for word in text.split():
        if len(lines) > max_lines:
            break
        candidate = f"{line} {word}" if line else word
        if fits(candidate):
            line = candidate
            continue
        if line:
            lines.append(line)
        while len(word) > 1 and not fits(word):
            cut = max(1, next((n for n in range(len(word) - 1, 0, -1) if fits(word[:n])), 1))
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line:
        lines.append(line)
    if len(lines) <= max_lines:
        return lines
    last = lines[max_lines - 1]
    while last and not fits(last.rstrip(" ,.;:-") + ellipsis):
        last = last[:-1]
    return [*lines[: max_lines - 1], last.rstrip(" ,.;:-") + ellipsis]


def _mask(size: tuple[int, int], lines: list[str], font: Font, spots: list[tuple[int, int]], stroke: int
          ) -> np.ndarray:
    img = Image.new("L", size, 0)
    draw = ImageDraw.Draw(img)
    for line, xy in zip(lines, spots, strict=True):
        draw.text(xy, line, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    return np.asarray(img, dtype=np.float32) / 255.0


def paint_caption(text: str, size: tuple[int, int], cfg: OverlayConfig) -> np.ndarray | None:
    """The caption band for ``text`` on a ``size`` (w, h) screen: (band height, w, 4) uint8 RGBA, top row first.

    Its bottom row sits on the screen's bottom edge (its top row on the top edge with
    ``caption_position = "top"``). None when there is nothing to write.
    """
    text = " ".join(text.split())
    w, h = size if size[0] > 0 and size[1] > 0 else REFERENCE_SIZE
    px = max(8, round(cfg.caption_size * h))
    font, text = caption_font(text, px, cfg.caption_font)
    if not text.strip():
        return None
    stroke = max(1, round(px / 14))
    side = max(px // 2, round(w * SIDE_MARGIN))
    lines = wrap(text, font, w - 2 * side, cfg.caption_max_lines, stroke)
    line_h = round(px * 1.25)
    edge = max(px // 2, round(h * EDGE_MARGIN))
    fade = round(line_h * 1.5)  # the band's soft end, toward the picture
    text_h = len(lines) * line_h
    band_h = fade + text_h + edge
    top = cfg.caption_position == "top"
    first = edge if top else fade
    spots = [(round((w - _width(font, line, 0)) / 2), first + i * line_h) for i, line in enumerate(lines)]
    # The band: transparent at its picture end, SHADOW_ALPHA black across the text.
    ramp = np.clip(np.arange(band_h, dtype=np.float32) / max(1, fade), 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp) * SHADOW_ALPHA
    band = np.repeat((ramp[::-1] if top else ramp)[:, None], w, axis=1)
    outline = _mask((w, band_h), lines, font, spots, stroke)
    fill = _mask((w, band_h), lines, font, spots, 0)
    blur = Image.fromarray((outline * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(max(1.0, px / 8)))
    shadow = np.asarray(blur, dtype=np.float32) / 255.0 * DROP_SHADOW_ALPHA
    # Black over black over black, then white letters: "over" with straight alpha, only the letters lit.
    alpha = band
    for layer in (shadow, outline, fill):
        alpha = layer + alpha * (1.0 - layer)
    out = np.empty((band_h, w, 4), dtype=np.uint8)
    lit = np.divide(fill, alpha, out=np.zeros_like(fill), where=alpha > 0)
    out[..., :3] = np.round(lit * 255.0).astype(np.uint8)[..., None]
    out[..., 3] = np.round(alpha * 255.0).astype(np.uint8)
    return out


# --- on screen (render thread) ------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CaptionDraw:
    """One caption to draw this frame: the band (RGBA, full screen width as painted) at this opacity."""

    id: str  # the layer's image id: the compositor keeps its texture while the id is listed
    pixels: np.ndarray
    opacity: float
    top: bool


@dataclass
class _Entry:
    text: str
    pixels: np.ndarray | None
    since: float | None = None  # show time its image was fully in


class Captions:
    """Which caption each layer carries, how visible it is, and what the VJ hid; no GL."""

    def __init__(self, cfg: OverlayConfig) -> None:
        self.seconds = cfg.caption_seconds
        self.top = cfg.caption_position == "top"
        self.hidden: set[str] = set()  # caption_key()s the VJ hid
        self.text = ""  # the caption most on screen now ("" when none is)
        self.text_hidden = False  # ... and the VJ hid it
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._on_screen: tuple[str, ...] = ()

    def take(self, image: ShowImage) -> None:
        """An image went to the GPU: remember its caption until its layer retires."""
        self._entries[image.id] = _Entry(image.caption, image.caption_pixels)
        while len(self._entries) > KEPT:  # a layer that never reached the screen (its upload failed)
            self._entries.popitem(last=False)

    def life(self, age: float) -> float:
        """1 while a caption shows, fading to 0 at ``caption_seconds`` after its image came in (0: forever)."""
        if self.seconds <= 0:
            return 1.0
        fade = min(FADE_OUT_S, self.seconds / 4)
        return min(1.0, max(0.0, (self.seconds - age) / fade))

    def frame(self, plan: FramePlan, t: float) -> list[CaptionDraw]:
        """The captions to draw over ``plan`` at show time ``t``: each layer's at its weight in the
        transition times its life, 0 when hidden (listed all the same: the texture stays)."""
        for gone in plan.retired:
            self._entries.pop(gone.id, None)
        weights: list[tuple[Layer | None, float, bool]] = [
            (plan.current, 1.0 - plan.progress if plan.incoming else 1.0, True), (plan.incoming, plan.progress, False)]
        draws: list[CaptionDraw] = []
        best, best_weight, on_screen = None, 0.0, []
        for layer, weight, is_in in weights:
            entry = self._entries.get(layer.id) if layer is not None else None
            if layer is None or entry is None or entry.pixels is None:
                continue
            on_screen.append(layer.id)
            if is_in and entry.since is None:
                entry.since = t
            life = self.life(t - entry.since) if entry.since is not None else 1.0
            hidden = caption_key(layer.id) in self.hidden
            draws.append(CaptionDraw(layer.id, entry.pixels, 0.0 if hidden else weight * life, self.top))
            if life > 0 and weight >= best_weight:
                best, best_weight = layer.id, weight
        self._on_screen = tuple(on_screen)
        shown = self._entries.get(best) if best is not None else None
        self.text = shown.text if shown is not None else ""
        self.text_hidden = best is not None and caption_key(best) in self.hidden
        return draws

    def command(self, value: float | tuple[float, ...] | None, name: str = "") -> None:
        """``Action.CAPTION``: value 0 hides, 1 shows again, none toggles; the caption of image ``name``,
        else the ones on screen now (both during a transition)."""
        if isinstance(value, tuple):
            value = value[0] if value else None
        keys = {caption_key(name)} if name else {caption_key(i) for i in self._on_screen}
        if not keys:
            return
        hide = not keys <= self.hidden if value is None else value < 0.5  # none: hidden ones show, else all hide
        if hide:
            self.hidden |= keys
        else:
            self.hidden -= keys
