"""The dream layer on the GPU (engine/render/dream.py): its pixels over the program, its uploads, its source tap."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future

import moderngl
import numpy as np
import pytest

from engine.errors import ImageError
from engine.render.compositor import Compositor
from engine.render.dream import DreamLayer, DreamTap, check_frame
from engine.render.upload import TextureSlots
from engine.show import FramePlan, Layer
from tests.fakes import BLUE, GREEN, RED, assert_color, pixels, solid, target
from tests.test_compositor import upload

SIZE = (320, 180)
PURPLE = (128, 0, 128)  # red under blue at half mix


def frame(color: tuple[int, int, int], size: tuple[int, int] = (64, 36), channels: int = 3) -> np.ndarray:
    """A dream frame of one colour, (h, w, channels) uint8."""
    w, h = size
    px = np.full((h, w, channels), 255, dtype=np.uint8)
    px[..., :3] = color
    return px


def shown(layer: DreamLayer, px: np.ndarray) -> None:
    layer.start(px)
    while not layer.step():
        pass


@pytest.fixture
def comp(ctx: moderngl.Context, slots: TextureSlots) -> Iterator[Compositor]:
    c = Compositor(ctx, SIZE, slots, fit="letterbox")
    c.dream = DreamLayer(ctx, 1 << 20)
    yield c
    c.dream.release()
    c.release()


@pytest.fixture
def fb(ctx: moderngl.Context) -> Iterator[moderngl.Framebuffer]:
    f = target(ctx, SIZE)
    yield f
    f.release()


@pytest.fixture
def red(slots: TextureSlots) -> Layer:
    return upload(slots, solid(RED, (64, 36), "red"))


def draw(comp: Compositor, fb: moderngl.Framebuffer, layer: Layer, mix: float) -> np.ndarray:
    comp.dream_mix = mix
    comp.render(FramePlan(layer, None, 0.0, 0.0), 1.0, fb)
    return pixels(fb)


def test_a_dream_frame_at_half_mix_blends_over_the_program(comp: Compositor, fb: moderngl.Framebuffer,
                                                           red: Layer) -> None:
    """Blue dreamt over a red program at 0.5: purple everywhere."""
    assert comp.dream is not None
    shown(comp.dream, frame(BLUE))
    assert_color(draw(comp, fb, red, 0.5), PURPLE, tol=3.0)


def test_mix_zero_draws_nothing(comp: Compositor, fb: moderngl.Framebuffer, red: Layer) -> None:
    """At mix 0 the program is untouched."""
    assert comp.dream is not None
    shown(comp.dream, frame(BLUE))
    assert_color(draw(comp, fb, red, 0.0), RED)


def test_at_full_mix_the_dream_covers_the_program(comp: Compositor, fb: moderngl.Framebuffer, red: Layer) -> None:
    assert comp.dream is not None
    shown(comp.dream, frame(BLUE, channels=4))
    assert_color(draw(comp, fb, red, 1.0), BLUE)


def test_no_frame_yet_draws_nothing(comp: Compositor, fb: moderngl.Framebuffer, red: Layer) -> None:
    """The dream on, no frame come yet: the program as it is."""
    assert_color(draw(comp, fb, red, 1.0), RED)


def test_a_dream_frame_is_fitted_like_an_image(comp: Compositor, fb: moderngl.Framebuffer, red: Layer) -> None:
    """A square frame over a 16:9 program, letterboxed: dreamt in the middle, the program at the sides."""
    assert comp.dream is not None
    shown(comp.dream, frame(BLUE, (90, 90)))
    px = draw(comp, fb, red, 1.0)
    assert_color(px[:, 140:180], BLUE)
    assert_color(px[:, :60], RED)
    assert_color(px[:, -60:], RED)


def test_the_dream_is_upright(comp: Compositor, fb: moderngl.Framebuffer, red: Layer) -> None:
    """Rows arrive top first, like images: the top half of the frame is the top half of the screen."""
    assert comp.dream is not None
    px = frame(BLUE, (64, 36))
    px[:18] = GREEN
    shown(comp.dream, px)
    out = draw(comp, fb, red, 1.0)
    assert_color(out[10:80], GREEN)
    assert_color(out[100:170], BLUE)


def test_the_overlays_stay_over_the_dream(comp: Compositor, fb: moderngl.Framebuffer, red: Layer) -> None:
    """The HUD is drawn after the dream: sharp and readable at full mix."""
    assert comp.dream is not None
    shown(comp.dream, frame(BLUE))
    hud = np.zeros((40, 80, 4), dtype=np.uint8)
    hud[..., 1] = 255
    hud[..., 3] = 255
    comp.set_hud(hud)
    out = draw(comp, fb, red, 1.0)
    margin = max(8, SIZE[1] // 40)
    assert_color(out[margin + 5 : margin + 30, margin + 5 : margin + 70], GREEN)


def test_a_frame_goes_on_screen_only_once_whole(ctx: moderngl.Context, comp: Compositor,
                                                fb: moderngl.Framebuffer, red: Layer) -> None:
    """A small budget writes the next frame over several show frames; until its last band is in, the old
    frame stays on screen (never half old, half new)."""
    layer = DreamLayer(ctx, 64 * 3 * 10)  # ten rows of a 64-wide RGB frame per step
    comp.dream = layer
    try:
        shown(layer, frame(BLUE))
        layer.start(frame(GREEN))
        for _ in range(3):
            assert not layer.step()
            assert_color(draw(comp, fb, red, 1.0), BLUE)
        assert layer.step()
        assert_color(draw(comp, fb, red, 1.0), GREEN)
    finally:
        layer.release()


def test_frames_reuse_their_textures(ctx: moderngl.Context) -> None:
    """Made at start for the dream's size, two textures take every frame that fits: none is made per frame."""
    layer = DreamLayer(ctx, 1 << 20, side=128)
    try:
        for color, size in ((BLUE, (128, 72)), (GREEN, (72, 128)), (RED, (128, 72)), (BLUE, (100, 50))):
            shown(layer, frame(color, size))
        assert layer.allocations == 2 and layer.frames == 4
        shown(layer, frame(RED, (256, 144)))  # bigger than [dream] size: new ones, once
        shown(layer, frame(RED, (256, 144)))
        assert layer.allocations == 4
    finally:
        layer.release()


def test_clearing_takes_the_layer_away(comp: Compositor, fb: moderngl.Framebuffer, red: Layer) -> None:
    assert comp.dream is not None
    shown(comp.dream, frame(BLUE))
    comp.dream.clear()
    assert not comp.dream.shown
    assert_color(draw(comp, fb, red, 1.0), RED)


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 2), np.uint8),
                                 np.zeros((8, 8, 3), np.float32), np.zeros((0, 8, 3), np.uint8), "pixels"])
def test_a_bad_frame_is_refused_with_its_shape(bad: object) -> None:
    with pytest.raises(ImageError, match=r"dream frame: expected an \(h, w, 3 or 4\) uint8 array"):
        check_frame(bad)


def test_the_dream_source_is_the_program_without_the_dream_and_the_overlays(
        ctx: moderngl.Context, comp: Compositor, fb: moderngl.Framebuffer, red: Layer) -> None:
    """A scaled capture wish is grabbed while the frame is drawn, before the dream and the HUD, and answered on
    the next frame: the red program at the wished size, though the screen shows blue with a HUD."""
    assert comp.dream is not None
    shown(comp.dream, frame(BLUE))
    comp.set_hud(np.full((40, 80, 4), 255, dtype=np.uint8))
    tap = DreamTap(ctx)
    try:
        wanted: Future[np.ndarray] = Future()
        tap.wish(wanted, 64, SIZE)
        comp.dream_mix = 1.0
        plan = FramePlan(red, None, 0.0, 0.0)
        comp.render(plan, 1.0, fb, tap=tap.tap_for(SIZE))
        assert not wanted.done()  # read back without waiting: answered on a later frame
        assert_color(pixels(fb)[100:170, 100:300], BLUE)
        tap.answer()
        got = wanted.result(timeout=1)
        assert got.shape == (36, 64, 3)
        assert_color(got, RED)
        assert tap.tap_for(SIZE) is None  # nothing more wished: no grab
    finally:
        tap.release()


def test_wishes_left_when_the_show_stops_are_told_so(ctx: moderngl.Context) -> None:
    tap = DreamTap(ctx)
    wanted: Future[np.ndarray] = Future()
    tap.wish(wanted, 64, SIZE)
    tap.release()
    with pytest.raises(Exception, match="the show stopped"):
        wanted.result(timeout=1)
