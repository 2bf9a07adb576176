"""Where an image lands on screen: letterbox or cover, never stretched.

Pure arithmetic, so the pixel rules are tested without GL. The result maps a
screen coordinate (0..1, origin bottom-left) to a coordinate in the texture slot
that holds the image (top row uploaded first, so the y axis flips).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FitTransform:
    scale: tuple[float, float]
    offset: tuple[float, float]
    region: tuple[float, float]  # the image's extent inside its slot, in texture units

    def as_xform(self) -> tuple[float, float, float, float]:
        return (*self.scale, *self.offset)


def fit_transform(
    screen: tuple[int, int], image: tuple[int, int], slot: int, mode: str
) -> FitTransform:
    """Screen uv → slot texture uv for an image of ``image`` pixels in a ``slot``-sized texture."""
    sw, sh = screen
    iw, ih = image
    pick = min if mode == "letterbox" else max
    s = pick(sw / iw, sh / ih)
    dw = iw * s / sw  # image width as a fraction of the screen width
    dh = ih * s / sh
    rx, ry = iw / slot, ih / slot
    return FitTransform(
        scale=(rx / dw, -ry / dh),
        offset=((0.5 - 0.5 / dw) * rx, (0.5 + 0.5 / dh) * ry),
        region=(rx, ry),
    )


def screen_rect(
    screen: tuple[int, int], image: tuple[int, int], mode: str
) -> tuple[float, float, float, float]:
    """The image's rectangle on screen in pixels (x, y from top-left, w, h); may exceed the screen."""
    sw, sh = screen
    iw, ih = image
    pick = min if mode == "letterbox" else max
    s = pick(sw / iw, sh / ih)
    w, h = iw * s, ih * s
    return ((sw - w) / 2, (sh - h) / 2, w, h)


IDENTITY = FitTransform(scale=(1.0, 1.0), offset=(0.0, 0.0), region=(1.0, 1.0))
