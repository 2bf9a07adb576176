"""Overlay pictures made on the CPU: the join card (QR code + URL) and the HUD.

Plain RGBA arrays (top row first), no GL: the compositor uploads them when they
change, which is rarely (the HUD at a few hertz, the join card on resize).

The join card's headline speaks every language the phone page offers, one line each, from the
page's own catalogs (``join_headline``). Pillow's bundled font has no accented letters, so a
headline it cannot draw is drawn in a system font that can (``card_font``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import segno
from PIL import Image, ImageDraw, ImageFont

from engine.config import OverlayConfig
from engine.contract import ShowSnapshot
from engine.net import i18n
from engine.output.sink import OutputState

INK = (16, 12, 28, 255)
PAPER = (255, 255, 255, 255)
TEXT = (235, 235, 245, 255)

DEFAULT_HEADLINE = OverlayConfig().headline
"""``[overlay] headline`` left as it ships: the card then says the catalogs' ``join.headline``."""
# Fonts with the accented letters of the languages the page speaks, by the names Pillow finds in the
# system's font folders (Linux, macOS, Windows); the first one that draws the whole text is used.
FALLBACK_FONTS = ("DejaVuSans.ttf", "NotoSans-Regular.ttf", "LiberationSans-Regular.ttf", "FreeSans.ttf",
                  "Arial.ttf", "arial.ttf", "Helvetica.ttc")
_NO_GLYPH = "\U0010fffd"  # a private-use code point no font draws: its picture is the font's "missing" box

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=16)
def font(size: int) -> Font:
    """Pillow's bundled scalable font: no system fonts needed on a bare machine."""
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=16)
def _system_font(name: str, size: int) -> Font | None:
    try:
        return ImageFont.truetype(name, size)
    except OSError:
        return None


def _picture(f: Font, ch: str) -> bytes:
    left, top, right, bottom = (int(v) for v in f.getbbox(ch))
    img = Image.new("L", (max(1, right - left), max(1, bottom - top)))
    ImageDraw.Draw(img).text((-left, -top), ch, font=f, fill=255)
    return bytes(img.size[0].to_bytes(4, "little")) + img.tobytes()


@lru_cache(maxsize=4096)
def draws(f: Font, ch: str) -> bool:
    """Whether ``f`` has a glyph for ``ch`` (its picture is not the missing-glyph box)."""
    return ch.isspace() or _picture(f, ch) != _picture(f, _NO_GLYPH)


def card_font(text: str, size: int) -> tuple[Font, str]:
    """A font that draws all of ``text``, and the text to draw with it.

    The bundled font when it can (the card's usual look), else the first system font in
    ``FALLBACK_FONTS`` that can; on a machine with none, the bundled font with the letters it lacks
    written without their accents ("Envia"), and anything else it lacks left out, never a box.
    """
    bundled = font(size)
    if all(draws(bundled, ch) for ch in text):
        return bundled, text
    for name in FALLBACK_FONTS:
        f = _system_font(name, size)
        if f is not None and all(draws(f, ch) for ch in text):
            return f, text
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return bundled, "".join(c for c in plain if draws(bundled, c))


def join_headline(headline: str, languages: Sequence[str], root: Path = i18n.I18N_ROOT) -> str:
    """The join card's headline in every language offered (``[audience] languages``), one line each.

    Each line is the catalog's ``join.headline`` ("Send your prompt", "Envía tu prompt"), in the
    order the languages are listed. A ``headline`` changed from its default is the VJ's own English
    words: it replaces the English line (or comes first when English is not offered), since no
    catalog can translate it. An empty ``headline`` means no headline at all.
    """
    if not headline:
        return ""
    catalogs = i18n.load(languages, root)
    custom = headline != DEFAULT_HEADLINE
    lines: list[str] = [headline] if custom and i18n.REFERENCE not in catalogs.languages else []
    for code in catalogs.languages:
        if code == i18n.REFERENCE and custom:
            line = headline
        else:
            try:
                line = catalogs.text(code, "join.headline")
            except KeyError:  # no English catalog behind a catalog that lacks the key
                continue
        if line not in lines:
            lines.append(line)
    return "\n".join(lines) or headline


def qr_modules(text: str, border: int = 4) -> np.ndarray:
    """The QR code of ``text`` as a boolean matrix (True = dark), quiet zone included."""
    code = segno.make(text, error="m", micro=False)
    m = np.array([[bool(v) for v in row] for row in code.matrix], dtype=bool)
    return np.pad(m, border, constant_values=False)


def qr_image(text: str, height: int) -> np.ndarray:
    """A crisp QR code no taller than ``height`` pixels: whole pixels per module."""
    m = qr_modules(text)
    scale = max(1, height // m.shape[0])
    big = np.kron(m, np.ones((scale, scale), dtype=bool))
    rgba = np.empty((*big.shape, 4), dtype=np.uint8)
    rgba[big] = INK
    rgba[~big] = PAPER
    return rgba


def _text_size(draw: ImageDraw.ImageDraw, text: str, size: int) -> tuple[int, int]:
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font(size))
    return int(x1 - x0), int(y1 - y0)


def join_card(url: str, qr_height: int, headline: str = "", url_px: int | None = None) -> np.ndarray:
    """A white card: optional headline (one line per ``\\n``, centred: ``join_headline``), the QR code,
    and the join URL under it."""
    qr = qr_image(url, qr_height)
    url_px = url_px or max(12, qr.shape[0] // 10)
    head_px = int(url_px * 1.5)
    pad = max(6, url_px // 2)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    uw, uh = _text_size(probe, url, url_px)
    head_font, head_text = card_font(headline, head_px)
    lines = [line for line in head_text.split("\n") if line.strip()]
    gap = max(2, head_px // 4)
    boxes = [probe.textbbox((0, 0), line, font=head_font) for line in lines]
    line_h = max((int(b[3]) for b in boxes), default=0)  # one height for every line: accents never push one down
    hw = max((int(b[2] - b[0]) for b in boxes), default=0)
    hh = len(lines) * line_h + (len(lines) - 1) * gap if lines else 0
    width = max(qr.shape[1], uw, hw) + 2 * pad
    height = pad + (hh + pad if lines else 0) + qr.shape[0] + pad + uh + pad
    card = Image.new("RGBA", (width, height), PAPER)
    draw = ImageDraw.Draw(card)
    y = pad
    for line, box in zip(lines, boxes, strict=True):
        draw.text(((width - int(box[2] - box[0])) // 2 - int(box[0]), y), line, font=head_font, fill=INK, anchor="la")
        y += line_h + gap
    if lines:
        y += pad - gap
    card.paste(Image.fromarray(qr, "RGBA"), ((width - qr.shape[1]) // 2, y))
    y += qr.shape[0] + pad
    draw.text(((width - uw) // 2, y), url, font=font(url_px), fill=INK)
    return np.asarray(card, dtype=np.uint8).copy()


def output_line(o: OutputState) -> str:
    """One output in a few words: "record on 12.3 s 4.1 MB", "ndi unavailable: no NDI library ..."."""
    if o.state != "on":
        return f"{o.name} {o.state}: {o.detail}"
    if o.name == "record":
        return f"REC {o.seconds:.0f} s {o.bytes / 1e6:.1f} MB {Path(o.file).name}  dropped {o.dropped}"
    receivers = f" receivers {o.receivers}" if o.receivers >= 0 else ""
    return f"{o.name} {o.detail}{receivers}  dropped {o.dropped}"


def hud_lines(s: ShowSnapshot, join_url: str) -> list[str]:
    """What the HUD says, from the show's published state alone."""
    w, h = s.size
    lines = [
        f"{s.fps:5.1f} fps   frame {s.frame_ms:5.1f} ms   p99 {s.frame_p99_ms:5.1f} ms"
        f"   work {s.work_ms:4.1f} ms   cpu {s.cpu_ms:4.2f} ms",
        f"queue {s.queue_len}   on screen {s.current_id or 'idle'}   {w}x{h}"
        + ("   BLACKOUT" if s.blackout else ""),
        f"fx {' > '.join(s.effects) or 'none'}   transition {s.transition}   join {join_url}",
        f"audio: {s.audio}",
    ]
    lines += [output_line(o) for o in s.outputs if o.state != "off"]
    lines += [f"input {i.name}: {i.state} {i.detail}".rstrip() for i in s.inputs if i.state != "on"]
    lines += [f"! {e}" for e in s.shader_errors[:2]]
    lines += [f"! {e}" for e in s.errors[-2:]]
    return lines


@dataclass(frozen=True)
class HudLayout:
    width: int = 760
    font_px: int = 18
    lines: int = 9

    @property
    def height(self) -> int:
        return self.lines * (self.font_px + 6) + 12


def hud_image(lines: list[str], layout: HudLayout) -> np.ndarray:
    """The HUD panel: text on a translucent box that covers only the text; the rest is clear.

    The picture keeps the layout's fixed size so the GPU texture is reused.
    """
    img = Image.new("RGBA", (layout.width, layout.height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    shown = lines[: layout.lines]
    if not shown:
        return np.asarray(img, dtype=np.uint8).copy()
    step = layout.font_px + 6
    widest = max(_text_size(draw, line, layout.font_px)[0] for line in shown)
    box = (0, 0, min(layout.width, widest + 20) - 1, len(shown) * step + 12 - 1)
    draw.rectangle(box, fill=(0, 0, 0, 170))
    for i, line in enumerate(shown):
        draw.text((10, 6 + i * step), line, font=font(layout.font_px), fill=TEXT)
    return np.asarray(img, dtype=np.uint8).copy()
