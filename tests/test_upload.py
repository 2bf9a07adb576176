"""Texture slots and banded uploads."""

from __future__ import annotations

import moderngl
import numpy as np
import pytest

from engine.contract import ShowImage
from engine.errors import ImageError
from engine.render.upload import TextureSlots, Uploader
from tests.fakes import solid


def test_upload_is_spread_over_frames_within_the_budget(ctx: moderngl.Context) -> None:
    """A 256x256 image (256 KiB) with a 64 KiB budget takes four steps, 64 rows each."""
    slots = TextureSlots(ctx, 256, 2)
    try:
        up = Uploader(slots, 64 * 1024)
        rng = np.random.default_rng(1)
        px = rng.integers(0, 255, (256, 256, 4), dtype=np.uint8)
        assert up.start(ShowImage("r", px))
        results = [up.step() for _ in range(4)]
        assert results[:3] == [None, None, None]
        layer = results[3]
        assert layer is not None and (layer.width, layer.height) == (256, 256)
        assert not up.busy
        got = np.frombuffer(slots.texture(layer.slot).read(), dtype=np.uint8).reshape(256, 256, 4)
        assert np.array_equal(got, px)
    finally:
        slots.release_all()


def test_smaller_image_goes_into_the_slot_corner(ctx: moderngl.Context) -> None:
    """An image smaller than the slot is written at the slot's origin, rows in order."""
    slots = TextureSlots(ctx, 128, 1)
    try:
        up = Uploader(slots, 1 << 20)
        px = np.zeros((10, 20, 4), dtype=np.uint8)
        px[0] = 200  # first (top) row
        up.start(ShowImage("s", px))
        layer = up.step()
        assert layer is not None
        got = np.frombuffer(slots.texture(0).read(), dtype=np.uint8).reshape(128, 128, 4)
        assert np.array_equal(got[:10, :20], px)
    finally:
        slots.release_all()


def test_too_big_image_is_refused_with_the_limit_named(ctx: moderngl.Context) -> None:
    """An image over render.max_image_size is an ImageError, not a GL failure."""
    slots = TextureSlots(ctx, 64, 1)
    try:
        with pytest.raises(ImageError, match=r"100x10 is larger than render.max_image_size \(64\)"):
            Uploader(slots, 1024).start(solid((0, 0, 0), (100, 10), "big"))
        assert slots.free_count == 1
    finally:
        slots.release_all()


def test_no_free_slot_means_try_later(ctx: moderngl.Context) -> None:
    """start() returns False when every slot is taken, and uploads nothing."""
    slots = TextureSlots(ctx, 64, 1)
    try:
        assert slots.acquire() == 0
        up = Uploader(slots, 1024)
        assert up.start(solid((1, 2, 3), (8, 8))) is False
        assert not up.busy
    finally:
        slots.release_all()


def test_slots_are_handed_out_once() -> None:
    """Releasing twice does not duplicate a slot."""
    class FakeCtx:
        def texture(self, size: tuple[int, int], comps: int) -> object:
            class T:
                filter = None
                repeat_x = repeat_y = True

                def release(self) -> None:
                    pass
            return T()

    slots = TextureSlots(FakeCtx(), 16, 2)  # type: ignore[arg-type]
    a = slots.acquire()
    assert a is not None
    slots.release(a)
    slots.release(a)
    assert slots.free_count == 2
