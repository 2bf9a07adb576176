"""Captions: painting the prompt's words (no GL), the show's bookkeeping, and the caption on the real show's frame.

``python -m tests.test_captions docs/caption.png`` renders the documentation's screenshot again.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import moderngl
import numpy as np
import pytest
from PIL import Image

from engine.commands import Action, Command
from engine.config import Config, OverlayConfig
from engine.contract import Inbox, ShowImage, ShowSnapshot
from engine.errors import ImageError
from engine.gen.pipeline import show_image
from engine.gen.procedural import procedural_image
from engine.net import protocol
from engine.net.vj_state import show_state
from engine.render.captions import ELLIPSIS, Captions, caption_font, caption_key, paint_caption, wrap
from engine.render.show_loop import ShowLoop
from engine.show import FramePlan, Layer
from tests.fakes import make_config, pixels, target

SIZE = (320, 180)
WORDS = "a glass octopus playing the drums"
LONG = ("a neon whale swimming slowly over a sleeping city at night while a thousand paper lanterns drift up "
        "into a violet sky full of comets, old satellites and a very surprised moon that waves back at everyone")
SHOW = {"overlay.captions": True, "overlay.caption_size": 0.1, "show.transition": 1.0, "show.hold": 60.0}


# --- domain assertions ------------------------------------------------------------------------------
def luminance(px: np.ndarray) -> np.ndarray:
    return np.asarray(px, dtype=np.float64) @ np.array([0.2126, 0.7152, 0.0722])


def assert_same(a: np.ndarray, b: np.ndarray, what: str, tol: float = 3.0) -> None:
    """Two renders agree pixel for pixel (within ``tol`` per channel)."""
    worst = float(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())
    assert worst <= tol, f"{what}: differs by up to {worst:.0f} (tolerance {tol:g})"


def assert_caption_drawn(with_caption: np.ndarray, without: np.ndarray, band_rows: int) -> None:
    """The caption band differs strongly from the same frame without a caption; the rest does not."""
    band = np.abs(with_caption[-band_rows:].astype(np.int16) - without[-band_rows:].astype(np.int16))
    assert float(band.mean()) > 15.0, f"the caption band barely changed (mean difference {band.mean():.1f})"
    assert float((band.max(axis=2) > 100).mean()) > 0.02, "no strong strokes (letters) in the caption band"
    assert_same(with_caption[:-band_rows], without[:-band_rows], "the picture above the caption")


def assert_readable(band: np.ndarray) -> None:
    """Letters and their outline or shadow: both very light and very dark pixels in the band."""
    lum = luminance(band)
    light, dark = float(np.percentile(lum, 99.5)), float(np.percentile(lum, 1))
    assert light >= 200 and dark <= 60 and light - dark >= 160, f"low contrast: light {light:.0f}, dark {dark:.0f}"


# --- painting -----------------------------------------------------------------------------------------
def overlay(**values: object) -> OverlayConfig:
    return OverlayConfig(**{"captions": True, **values})  # type: ignore[arg-type]


def test_a_long_prompt_is_cut_to_the_line_limit_with_an_ellipsis() -> None:
    """A very long prompt fills at most caption_max_lines lines, each within the width; the last ends with "…"."""
    font, _ = caption_font(LONG, 40)
    lines = wrap(LONG, font, 800, 2, stroke=3)
    assert len(lines) == 2 and lines[-1].endswith(ELLIPSIS)
    assert all(font.getlength(line) + 6 <= 800 for line in lines)
    assert " ".join(lines).removesuffix(ELLIPSIS).rstrip() in LONG


def test_a_short_prompt_is_one_line_and_never_cut() -> None:
    """Words that fit stay whole, with no ellipsis."""
    font, _ = caption_font(WORDS, 40)
    assert wrap(WORDS, font, 1800, 2) == [WORDS]


def test_lines_break_between_words_and_a_word_too_long_between_letters() -> None:
    """Breaks fall between words; a word wider than a line is split, never drawn past the margin."""
    font, _ = caption_font("x", 30)
    lines = wrap("tiny " + "w" * 30, font, 300, 6)
    assert len(lines) > 2 and lines[0] == "tiny" and "".join(lines[1:]) == "w" * 30
    assert all(font.getlength(line) <= 300 for line in lines)


def test_the_band_is_as_wide_as_the_screen_and_grows_with_the_lines() -> None:
    """One line, then the most lines allowed: same width, a taller band; more text is cut, not taller."""
    cfg = overlay(caption_max_lines=3)
    one = paint_caption(WORDS, (1280, 720), cfg)
    three = paint_caption(LONG, (1280, 720), cfg)
    more = paint_caption(LONG + " " + LONG, (1280, 720), cfg)
    assert one is not None and three is not None and more is not None
    assert one.shape[1] == three.shape[1] == 1280 and one.dtype == np.uint8 and one.shape[2] == 4
    assert three.shape[0] > one.shape[0] and more.shape == three.shape


def test_the_caption_size_is_a_fraction_of_the_screen_height() -> None:
    """A larger caption_size paints taller letters; a screen twice as tall, a band twice as tall."""
    small = paint_caption(WORDS, (1280, 720), overlay(caption_size=0.03))
    large = paint_caption(WORDS, (1280, 720), overlay(caption_size=0.08))
    double = paint_caption(WORDS, (2560, 1440), overlay(caption_size=0.03))
    assert small is not None and large is not None and double is not None
    assert large.shape[0] > 2 * small.shape[0] * 0.9
    assert abs(double.shape[0] - 2 * small.shape[0]) <= 0.05 * double.shape[0]  # whole pixels round apart


def test_the_band_fades_toward_the_picture_and_sits_on_the_chosen_edge() -> None:
    """Bottom: clear at its top row, dark at its bottom; top: the other way round."""
    bottom = paint_caption(WORDS, SIZE, overlay())
    top = paint_caption(WORDS, SIZE, overlay(caption_position="top"))
    assert bottom is not None and top is not None
    assert bottom[0, :, 3].max() == 0 and bottom[-1, :, 3].min() > 100
    assert top[-1, :, 3].max() == 0 and top[0, :, 3].min() > 100


def test_nothing_to_write_paints_nothing() -> None:
    """Blank words make no band."""
    assert paint_caption("   ", SIZE, overlay()) is None


def test_accents_are_drawn_and_a_missing_font_file_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    """Spanish words keep their accents; an unreadable caption_font is a log line, not a failure."""
    _font, text = caption_font("canción de cuna", 30, "/nonexistent/font.ttf")
    assert text == "canción de cuna"
    assert paint_caption("canción de cuna", SIZE, overlay(caption_font="/nonexistent/font.ttf")) is not None
    assert "caption_font" in caplog.text


def test_a_malformed_caption_picture_is_refused() -> None:
    """ShowImage checks its caption band like its pixels."""
    px = np.zeros((8, 8, 4), np.uint8)
    with pytest.raises(ImageError, match="caption"):
        ShowImage("i", px, caption="x", caption_pixels=np.zeros((8, 8, 3), np.uint8))


def test_captions_are_painted_backstage_only_when_on() -> None:
    """show_image paints the band for the show's size when [overlay] captions is on; off, none."""
    px = np.zeros((90, 160, 4), np.uint8)

    async def both() -> tuple[ShowImage, ShowImage]:
        with ThreadPoolExecutor(1) as pool:
            on = await show_image(make_config({"overlay.captions": True}), pool, "a", px, WORDS, (640, 360))
            off = await show_image(make_config(), pool, "b", px, WORDS, (640, 360))
        return on, off
    on, off = asyncio.run(both())
    assert on.caption_pixels is not None and on.caption_pixels.shape[1] == 640 and on.caption == WORDS
    assert off.caption_pixels is None and off.caption == WORDS


# --- the show's bookkeeping (no GL) -----------------------------------------------------------------------
def layer(image_id: str) -> Layer:
    return Layer(image_id, 0, 64, 64)


def remembered(*ids: str, seconds: float = 8.0) -> Captions:
    caps = Captions(overlay(caption_seconds=seconds))
    for i in ids:
        caps.take(ShowImage(i, np.zeros((4, 4, 4), np.uint8), caption=f"words of {i}",
                            caption_pixels=np.full((2, 4, 4), 255, np.uint8)))
    return caps


def opacities(caps: Captions, plan: FramePlan, t: float) -> dict[str, float]:
    return {d.id: round(d.opacity, 3) for d in caps.frame(plan, t)}


def test_two_captions_crossfade_with_their_images() -> None:
    """During a transition the outgoing caption fades out as the incoming one fades in."""
    caps = remembered("a", "b")
    assert opacities(caps, FramePlan(layer("a"), None, 0.0, 0.0), 0.0) == {"a": 1.0}
    assert opacities(caps, FramePlan(layer("a"), layer("b"), 0.25, 0.0), 1.0) == {"a": 0.75, "b": 0.25}
    assert caps.text == "words of a"
    assert opacities(caps, FramePlan(layer("a"), layer("b"), 0.75, 0.0), 1.5) == {"a": 0.25, "b": 0.75}
    assert caps.text == "words of b"


def test_a_caption_goes_after_caption_seconds_once_its_image_is_in() -> None:
    """Full until its last moments, gone at caption_seconds; with 0 it stays as long as the image."""
    caps, forever = remembered("a", seconds=4.0), remembered("a", seconds=0.0)
    plan = FramePlan(layer("a"), None, 0.0, 0.0)
    assert opacities(caps, plan, 10.0) == {"a": 1.0}
    assert opacities(caps, plan, 13.0) == {"a": 1.0}
    assert opacities(caps, plan, 14.0) == {"a": 0.0} and caps.text == ""
    assert opacities(forever, plan, 10.0) == opacities(forever, plan, 1000.0) == {"a": 1.0}


def test_a_retired_layer_forgets_its_caption() -> None:
    """Retired layers drop their captions; an image without a band draws nothing."""
    caps = remembered("a")
    caps.frame(FramePlan(None, None, 0.0, 0.0, retired=(layer("a"),)), 0.0)
    assert caps.frame(FramePlan(layer("a"), None, 0.0, 0.0), 0.0) == []


def test_the_vj_hides_the_caption_on_screen_and_shows_it_again() -> None:
    """Value 0 hides what is on screen (both during a transition), 1 shows it, none toggles."""
    caps = remembered("a", "b")
    plan = FramePlan(layer("a"), layer("b"), 0.5, 0.0)
    caps.frame(plan, 0.0)
    caps.command(0.0)
    assert opacities(caps, plan, 0.1) == {"a": 0.0, "b": 0.0} and caps.text_hidden
    caps.command(1.0)
    assert opacities(caps, plan, 0.2) == {"a": 0.5, "b": 0.5} and not caps.text_hidden
    caps.command(None)
    assert opacities(caps, plan, 0.3) == {"a": 0.0, "b": 0.0}


def test_a_caption_hidden_by_image_id_stays_hidden_whenever_it_shows() -> None:
    """name= hides that image's caption before it comes, and again when it is re-shown from the gallery."""
    caps = remembered("p-1-1", "p-1-1-again3")
    caps.command(0.0, "p-1-1")
    assert opacities(caps, FramePlan(layer("p-1-1"), None, 0.0, 0.0), 0.0) == {"p-1-1": 0.0}
    assert opacities(caps, FramePlan(layer("p-1-1-again3"), None, 0.0, 0.0), 1.0) == {"p-1-1-again3": 0.0}
    assert caps.text == "words of p-1-1-again3" and caps.text_hidden
    assert caption_key("p-1-1-again3") == "p-1-1"


# --- the real show on EGL ------------------------------------------------------------------------------------
@pytest.fixture
def fb(ctx: moderngl.Context) -> Iterator[moderngl.Framebuffer]:
    f = target(ctx, SIZE)
    yield f
    f.release()


def picture(size: tuple[int, int] = SIZE) -> np.ndarray:
    return procedural_image("a copper dragon over the sea", 3, *size)


def solid_picture(value: int) -> np.ndarray:
    px = np.full((SIZE[1], SIZE[0], 4), value, np.uint8)
    px[..., 3] = 255
    return px


class Twins:
    """Two real shows fed the same image, one with its caption band and one without, drawn at the same times."""

    def __init__(self, ctx: moderngl.Context, cfg: Config, px: np.ndarray, words: str = WORDS) -> None:
        self.band = paint_caption(words, SIZE, cfg.overlay)
        assert self.band is not None
        self.shows = [ShowLoop(ctx, cfg, SIZE, Inbox(), "http://127.0.0.1:3000") for _ in range(2)]
        self.shows[0].inbox.images.put(ShowImage("img-1", px, caption=words, caption_pixels=self.band))
        self.shows[1].inbox.images.put(ShowImage("img-1", px, caption=words))
        self.fbs = [target(ctx, SIZE) for _ in range(2)]

    @property
    def rows(self) -> int:
        return int(self.band.shape[0])

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        out = []
        for show, fb in zip(self.shows, self.fbs, strict=True):
            show.frame(t, fb)
            out.append(pixels(fb))
        return out[0], out[1]

    def release(self) -> None:
        for show, fb in zip(self.shows, self.fbs, strict=True):
            show.release()
            fb.color_attachments[0].release()
            fb.release()


@pytest.fixture
def twins(ctx: moderngl.Context) -> Iterator[Twins]:
    t = Twins(ctx, make_config(SHOW), picture())
    yield t
    t.release()


def test_the_caption_is_drawn_over_its_image_and_the_vj_can_hide_it(twins: Twins) -> None:
    """The band differs strongly from the caption-less render, the rest not; hidden, the band matches again."""
    twins.at(0.0)
    shown, plain = twins.at(1.5)
    assert_caption_drawn(shown, plain, twins.rows)
    snap = twins.shows[0].board.read()
    assert (snap.caption, snap.caption_hidden) == (WORDS, False)
    twins.shows[0].inbox.commands.put(Command(Action.CAPTION, 0.0, source="vj"))
    hidden, plain = twins.at(1.6)
    assert_same(hidden, plain, "the frame with the caption hidden")
    assert twins.shows[0].board.read().caption_hidden
    twins.shows[0].inbox.commands.put(Command(Action.CAPTION, 1.0, source="vj"))
    again, plain = twins.at(1.7)
    assert_caption_drawn(again, plain, twins.rows)


def test_the_caption_fades_in_with_its_image(twins: Twins) -> None:
    """Halfway through the image's transition the caption is halfway in."""
    twins.at(0.0)
    half, plain = twins.at(0.5)
    full, plain_full = twins.at(1.5)
    half_diff = np.abs(half[-twins.rows:].astype(np.int16) - plain[-twins.rows:].astype(np.int16)).mean()
    full_diff = np.abs(full[-twins.rows:].astype(np.int16) - plain_full[-twins.rows:].astype(np.int16)).mean()
    assert 0.3 * full_diff < half_diff < 0.7 * full_diff


def test_the_caption_is_gone_after_caption_seconds(ctx: moderngl.Context) -> None:
    """caption_seconds = 2: drawn at 3 s of show time, gone at 3.6 s; the snapshot says no caption then."""
    twins = Twins(ctx, make_config({**SHOW, "overlay.caption_seconds": 2.0}), picture())
    try:
        twins.at(0.0)
        twins.at(1.5)  # the image is fully in
        assert_caption_drawn(*twins.at(3.0), twins.rows)
        gone, plain = twins.at(3.6)
        assert_same(gone, plain, "the frame after caption_seconds")
        assert twins.shows[0].board.read().caption == ""
    finally:
        twins.release()


def test_with_zero_seconds_the_caption_stays_as_long_as_its_image(ctx: moderngl.Context) -> None:
    """caption_seconds = 0: still there after a long while."""
    twins = Twins(ctx, make_config({**SHOW, "overlay.caption_seconds": 0.0}), picture())
    try:
        twins.at(0.0)
        twins.at(1.5)
        assert_caption_drawn(*twins.at(59.0), twins.rows)
    finally:
        twins.release()


@pytest.mark.parametrize("value", [255, 0], ids=["white", "black"])
def test_the_caption_is_readable_on_white_and_on_black(ctx: moderngl.Context, value: int) -> None:
    """On a white and on a black picture, the band holds light letters and dark outline or shadow."""
    twins = Twins(ctx, make_config(SHOW), solid_picture(value))
    try:
        twins.at(0.0)
        shown, plain = twins.at(1.5)
        assert_caption_drawn(shown, plain, twins.rows)
        assert_readable(shown[-twins.rows:])
    finally:
        twins.release()


def test_a_caption_painted_for_another_size_is_scaled_to_the_screen(ctx: moderngl.Context, fb: moderngl.Framebuffer
                                                                    ) -> None:
    """A band painted for a screen twice as wide covers the same rows, scaled by the GPU."""
    cfg = make_config(SHOW)
    band = paint_caption(WORDS, (SIZE[0] * 2, SIZE[1] * 2), cfg.overlay)
    assert band is not None
    show = ShowLoop(ctx, cfg, SIZE, Inbox(), "http://127.0.0.1:3000")
    try:
        show.inbox.images.put(ShowImage("big", solid_picture(255), caption=WORDS, caption_pixels=band))
        show.frame(0.0, fb)
        show.frame(1.5, fb)
        frame = pixels(fb)
        rows = band.shape[0] // 2
        assert_readable(frame[-rows:])
        assert float(np.abs(frame[: -rows - 2].astype(np.int16) - 255).max()) <= 3
    finally:
        show.release()


# --- what the other ends are told ----------------------------------------------------------------------------
def test_the_show_message_carries_the_caption_and_its_state() -> None:
    """The control page's show message says the words on screen and whether the VJ hid them."""
    msg = show_state(ShowSnapshot(caption=WORDS, caption_hidden=True))
    assert (msg["caption"], msg["caption_hidden"]) == (WORDS, True)


def test_welcome_says_whether_captions_are_on() -> None:
    """welcome.captions: true with [overlay] captions, false by default."""
    assert json.loads(protocol.welcome("abcdefgh", 200, 15.0, [], True, captions=True))["captions"] is True
    assert json.loads(protocol.welcome("abcdefgh", 200, 15.0, [], True))["captions"] is False


# --- the documentation's screenshot ------------------------------------------------------------------------------
SHOT_SIZE = (1280, 720)
SHOT_WORDS = "a neon whale swimming over the city at night, with lanterns drifting up into a violet sky"


def screenshot(ctx: moderngl.Context) -> np.ndarray:
    """The real show at 1280x720: a generated image with its caption, as the projector shows it (RGB rows)."""
    cfg = make_config({"overlay.captions": True, "show.transition": 1.0, "show.hold": 60.0,
                       "render.max_image_size": 1280, "show.fit": "cover"})
    band = paint_caption(SHOT_WORDS, SHOT_SIZE, cfg.overlay)
    show = ShowLoop(ctx, cfg, SHOT_SIZE, Inbox(), "http://127.0.0.1:3000")
    fb = target(ctx, SHOT_SIZE)
    try:
        show.inbox.images.put(ShowImage("shot", procedural_image(SHOT_WORDS, 0, *SHOT_SIZE), caption=SHOT_WORDS,
                                        caption_pixels=band))
        for t in (0.0, 0.5, 1.5):
            show.frame(t, fb)
        return pixels(fb)
    finally:
        show.release()
        fb.color_attachments[0].release()
        fb.release()


def test_the_screenshot_shows_a_caption(ctx: moderngl.Context, tmp_path: Path) -> None:
    """The documentation's picture is a 1280x720 PNG with a readable caption at the bottom."""
    path = tmp_path / "caption.png"
    Image.fromarray(screenshot(ctx)).save(path)
    shot = np.asarray(Image.open(path).convert("RGB"))
    assert shot.shape == (720, 1280, 3)
    assert_readable(shot[-90:])


if __name__ == "__main__":
    from engine.render.gl import standalone_context

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/caption.png")
    gl = standalone_context()
    Image.fromarray(screenshot(gl)).save(out, optimize=True)
    gl.release()
    print(f"wrote {out}")
