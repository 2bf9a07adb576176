"""Letterbox and cover arithmetic."""

from __future__ import annotations

import pytest

from engine.render.fit import fit_transform, screen_rect


def apply(fit: object, u: float, v: float) -> tuple[float, float]:
    sx, sy = fit.scale  # type: ignore[attr-defined]
    ox, oy = fit.offset  # type: ignore[attr-defined]
    return (u * sx + ox, v * sy + oy)


def test_letterbox_square_on_wide_screen_leaves_side_bars() -> None:
    """A square image on 16:9 is full height, centred, with bars left and right."""
    assert screen_rect((1600, 900), (100, 100), "letterbox") == (350.0, 0.0, 900.0, 900.0)


def test_cover_square_on_wide_screen_crops_top_and_bottom() -> None:
    """Cover fills the width and lets the height overflow equally."""
    assert screen_rect((1600, 900), (100, 100), "cover") == (0.0, -350.0, 1600.0, 1600.0)


def test_letterbox_never_stretches() -> None:
    """The displayed rectangle keeps the image's aspect ratio."""
    _, _, w, h = screen_rect((1280, 720), (800, 600), "letterbox")
    assert w / h == pytest.approx(800 / 600)


def test_transform_maps_image_corners_into_its_slot_region() -> None:
    """Screen points at the image's edges land on the edges of its region in the slot (y flipped)."""
    fit = fit_transform((200, 100), (100, 100), 200, "letterbox")
    assert fit.region == (0.5, 0.5)
    assert apply(fit, 0.25, 1.0) == pytest.approx((0.0, 0.0))  # image top-left
    assert apply(fit, 0.75, 0.0) == pytest.approx((0.5, 0.5))  # image bottom-right
    assert apply(fit, 0.1, 0.5)[0] < 0  # in the bar: outside the region
