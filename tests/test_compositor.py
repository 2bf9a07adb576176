"""The compositor's pixels on llvmpipe: transitions, fit, idle screen, overlays, blackout."""

from __future__ import annotations

from collections.abc import Iterator

import moderngl
import numpy as np
import pytest
import zxingcpp

from engine.contract import ShowImage
from engine.render.compositor import Compositor, JoinInfo
from engine.render.overlay import HudLayout, hud_image
from engine.render.upload import TextureSlots, Uploader
from engine.shaders.library import ShaderLibrary
from engine.shaders.program import SharedTextures
from engine.show import FramePlan, Layer
from tests.fakes import BLUE, RED, TEST_SHADERS, assert_color, assert_not_uniform, pixels, quadrants, solid, target

SIZE = (320, 180)
URL = "http://192.168.1.23:3000"


@pytest.fixture
def library(ctx: moderngl.Context) -> Iterator[ShaderLibrary]:
    shared = SharedTextures(ctx)
    lib = ShaderLibrary(ctx, TEST_SHADERS, shared)
    lib.load(TEST_SHADERS / "vignette.fs")
    yield lib
    lib.release()
    shared.release()


@pytest.fixture
def comp(ctx: moderngl.Context, slots: TextureSlots) -> Iterator[Compositor]:
    c = Compositor(ctx, SIZE, slots, fit="letterbox")
    yield c
    c.release()


@pytest.fixture
def fb(ctx: moderngl.Context) -> Iterator[moderngl.Framebuffer]:
    f = target(ctx, SIZE)
    yield f
    f.release()


def upload(slots: TextureSlots, image: ShowImage) -> Layer:
    up = Uploader(slots, 1 << 20)
    assert up.start(image)
    while (layer := up.step()) is None:
        pass
    return layer


def draw(comp: Compositor, fb: moderngl.Framebuffer, plan: FramePlan, t: float = 1.0) -> np.ndarray:
    comp.render(plan, t, fb)
    return pixels(fb)


def test_transition_halfway_blends_red_and_blue(comp: Compositor, slots: TextureSlots,
                                                 fb: moderngl.Framebuffer) -> None:
    """At progress 0.5 the crossfade is an even mix of the two images."""
    comp.fit = "cover"
    red = upload(slots, solid(RED, (64, 64), "red"))
    blue = upload(slots, solid(BLUE, (64, 64), "blue"))
    px = draw(comp, fb, FramePlan(red, blue, 0.5, 0.0))
    assert_color(px, (127.5, 0, 127.5), tol=2.0)


def test_transition_ends_show_only_each_image(comp: Compositor, slots: TextureSlots,
                                              fb: moderngl.Framebuffer) -> None:
    """Progress 0 shows the outgoing image, 1 the incoming one."""
    comp.fit = "cover"
    red = upload(slots, solid(RED, (64, 64), "red"))
    blue = upload(slots, solid(BLUE, (64, 64), "blue"))
    assert_color(draw(comp, fb, FramePlan(red, blue, 0.0, 0.0)), RED)
    assert_color(draw(comp, fb, FramePlan(red, blue, 1.0, 0.0)), BLUE)


def test_letterbox_puts_bars_at_the_sides(comp: Compositor, slots: TextureSlots,
                                          fb: moderngl.Framebuffer) -> None:
    """A square image on 16:9 fills the middle 180x180 and leaves black bars of 70 px."""
    red = upload(slots, solid(RED, (100, 100), "red"))
    px = draw(comp, fb, FramePlan(red, None, 0.0, 0.0))
    assert_color(px[:, :69], (0, 0, 0))
    assert_color(px[:, -69:], (0, 0, 0))
    assert_color(px[:, 71:249], RED)


def test_letterbox_of_a_wide_image_puts_bars_top_and_bottom(comp: Compositor, slots: TextureSlots,
                                                            fb: moderngl.Framebuffer) -> None:
    """A 4:1 image on 16:9 is full width with bars above and below."""
    red = upload(slots, solid(RED, (200, 50), "wide"))
    px = draw(comp, fb, FramePlan(red, None, 0.0, 0.0))
    # 320 wide → 80 tall, centred: rows 50..130
    assert_color(px[:49], (0, 0, 0))
    assert_color(px[-49:], (0, 0, 0))
    assert_color(px[51:129], RED)


def test_cover_fills_the_screen(comp: Compositor, slots: TextureSlots, fb: moderngl.Framebuffer) -> None:
    """Cover crops instead of leaving bars: no black anywhere."""
    comp.fit = "cover"
    red = upload(slots, solid(RED, (100, 100), "red"))
    assert_color(draw(comp, fb, FramePlan(red, None, 0.0, 0.0)), RED)


def test_image_is_upright_and_not_mirrored(comp: Compositor, slots: TextureSlots,
                                           fb: moderngl.Framebuffer) -> None:
    """The top-left of the image appears top-left on screen."""
    comp.fit = "cover"
    q = upload(slots, quadrants((64, 64)))
    px = draw(comp, fb, FramePlan(q, None, 0.0, 0.0))
    h, w = px.shape[:2]
    # cover crops top and bottom: sample well inside each quadrant
    assert_color(px[h // 2 - 20 : h // 2 - 10, 20:40], RED)
    assert_color(px[h // 2 - 20 : h // 2 - 10, w - 40 : w - 20], (0, 255, 0))
    assert_color(px[h // 2 + 10 : h // 2 + 20, 20:40], BLUE)


def test_slot_contents_outside_the_image_never_bleed(ctx: moderngl.Context, fb: moderngl.Framebuffer) -> None:
    """A small image in a slot that held a bigger one shows only itself."""
    one = TextureSlots(ctx, 256, 1)
    comp = Compositor(ctx, SIZE, one, fit="cover")
    try:
        big = upload(one, solid(BLUE, (256, 256), "big"))
        one.release(big.slot)
        small = upload(one, solid(RED, (30, 30), "small"))
        assert small.slot == big.slot
        assert_color(draw(comp, fb, FramePlan(small, None, 0.0, 0.0)), RED)
    finally:
        comp.release()
        one.release_all()


def test_idle_screen_is_animated_and_not_uniform(comp: Compositor, fb: moderngl.Framebuffer) -> None:
    """Before any image the idle visual moves and has structure."""
    a = draw(comp, fb, FramePlan(None, None, 0.0, 0.0), t=1.0)
    b = draw(comp, fb, FramePlan(None, None, 0.0, 0.0), t=3.0)
    assert_not_uniform(a)
    assert float(np.abs(a.astype(int) - b.astype(int)).mean()) > 1.0


def test_idle_screen_shows_a_qr_code_of_the_join_url(ctx: moderngl.Context, slots: TextureSlots,
                                                      library: ShaderLibrary) -> None:
    """The idle frame contains a QR code that decodes to the join URL (with an effect on)."""
    size = (1280, 720)
    comp = Compositor(ctx, size, slots, library=library)
    comp.effects = ["vignette"]
    comp.set_join(JoinInfo(URL))
    fb = target(ctx, size)
    try:
        px = draw(comp, fb, FramePlan(None, None, 0.0, 0.0))
    finally:
        comp.release()
        fb.release()
    assert_not_uniform(px)
    assert [r.text for r in zxingcpp.read_barcodes(px)] == [URL]


def test_corner_qr_stays_when_images_play(ctx: moderngl.Context, slots: TextureSlots) -> None:
    """With qr = "always" the join code is still readable over an image."""
    size = (1280, 720)
    comp = Compositor(ctx, size, slots)
    comp.set_join(JoinInfo(URL, qr_mode="always", qr_size=0.2))
    fb = target(ctx, size)
    try:
        red = upload(slots, solid(RED, (64, 64), "red"))
        px = draw(comp, fb, FramePlan(red, None, 0.0, 0.0))
    finally:
        comp.release()
        fb.release()
    assert [r.text for r in zxingcpp.read_barcodes(px)] == [URL]


def test_qr_idle_only_hides_it_over_images(ctx: moderngl.Context, slots: TextureSlots,
                                            fb: moderngl.Framebuffer) -> None:
    """With qr = "idle" an image is shown clean."""
    comp = Compositor(ctx, SIZE, slots, fit="cover")
    comp.set_join(JoinInfo(URL, qr_mode="idle"))
    try:
        red = upload(slots, solid(RED, (64, 64), "red"))
        assert_color(draw(comp, fb, FramePlan(red, None, 0.0, 0.0)), RED)
    finally:
        comp.release()


def test_effect_chain_changes_the_picture(ctx: moderngl.Context, slots: TextureSlots,
                                          fb: moderngl.Framebuffer, library: ShaderLibrary) -> None:
    """The effect pass runs over the composite (the vignette darkens the corners)."""
    comp = Compositor(ctx, SIZE, slots, fit="cover", library=library)
    comp.effects = ["vignette"]
    try:
        grey = upload(slots, solid((128, 128, 128), (64, 64), "grey"))
        px = draw(comp, fb, FramePlan(grey, None, 0.0, 0.0))
    finally:
        comp.release()
    assert px[0, 0, 0] < px[90, 160, 0] - 10


def test_full_blackout_is_black_over_everything(ctx: moderngl.Context, slots: TextureSlots,
                                                fb: moderngl.Framebuffer, library: ShaderLibrary) -> None:
    """Blackout 1 covers image and overlays alike."""
    comp = Compositor(ctx, SIZE, slots, library=library)
    comp.effects = ["vignette"]
    comp.set_join(JoinInfo(URL))
    comp.set_hud(hud_image(["hud"], HudLayout()))
    try:
        assert_color(draw(comp, fb, FramePlan(None, None, 0.0, 1.0)), (0, 0, 0))
    finally:
        comp.release()


def test_half_blackout_halves_the_picture(comp: Compositor, slots: TextureSlots,
                                          fb: moderngl.Framebuffer) -> None:
    """Blackout 0.5 is half brightness."""
    comp.fit = "cover"
    red = upload(slots, solid(RED, (64, 64), "red"))
    assert_color(draw(comp, fb, FramePlan(red, None, 0.0, 0.5)), (127.5, 0, 0), tol=2.0)


def test_resize_follows_the_output(comp: Compositor, slots: TextureSlots, ctx: moderngl.Context) -> None:
    """After resize the compositor fills a target of the new size, bars recomputed."""
    comp.resize((180, 180))
    fb = target(ctx, (180, 180))
    try:
        red = upload(slots, solid(RED, (100, 100), "red"))
        assert_color(draw(comp, fb, FramePlan(red, None, 0.0, 0.0)), RED)
    finally:
        fb.release()
