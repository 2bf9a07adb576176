"""The live preview: scaled down on the GPU, read back a frame later, handed over through the board."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import moderngl
import numpy as np
import pytest

from engine.config import Config
from engine.contract import Inbox
from engine.render.preview import PreviewGrabber, preview_size
from engine.render.show_loop import ShowLoop
from tests.fakes import BLUE, GREEN, RED, ROOT, assert_color, make_config, pixels, quadrants, solid
from tests.xwindow import start_xvfb

WHITE = (255, 255, 255)
FPS = 60.0


# --- helpers --------------------------------------------------------------------------------


def shown(ctx: moderngl.Context, rgba: np.ndarray, renderbuffer: bool = False) -> moderngl.Framebuffer:
    """A framebuffer that shows ``rgba`` (top row first) the way the projector would show it."""
    h, w = rgba.shape[:2]
    tex = ctx.texture((w, h), 4, np.ascontiguousarray(rgba[::-1]))  # GL rows run bottom up
    fb = ctx.framebuffer(color_attachments=[tex])
    if not renderbuffer:
        return fb
    # Like the window's own framebuffer: nothing the grabber can sample, only copy.
    rb = ctx.renderbuffer((w, h), 4)
    out = ctx.framebuffer(color_attachments=[rb])
    ctx.copy_framebuffer(out, fb)
    release(fb)
    return out


def release(fb: moderngl.Framebuffer) -> None:
    for att in fb.color_attachments:
        att.release()
    fb.release()


def assert_quadrants(px: np.ndarray, margin: int) -> None:
    """Red top-left, green top-right, blue bottom-left, white bottom-right, ``margin`` pixels from any edge."""
    h, w = px.shape[:2]
    cy, cx = h // 2, w // 2
    m = margin
    assert_color(px[m : cy - m, m : cx - m], RED, tol=4)
    assert_color(px[m : cy - m, cx + m : w - m], GREEN, tol=4)
    assert_color(px[cy + m : h - m, m : cx - m], BLUE, tol=4)
    assert_color(px[cy + m : h - m, cx + m : w - m], WHITE, tol=4)


@pytest.fixture
def grabber(ctx: moderngl.Context) -> Iterator[PreviewGrabber]:
    g = PreviewGrabber(ctx, 64)
    yield g
    g.release()


# --- the grabber ----------------------------------------------------------------------------


def test_first_poll_is_empty_and_the_grab_arrives_on_the_next(ctx: moderngl.Context, grabber: PreviewGrabber) -> None:
    """poll() before any grab is None; after grab(), the next poll() has the picture, top row first."""
    fb = shown(ctx, quadrants((320, 180)).pixels)
    try:
        assert pixels(fb)[0, 0].tolist() == list(RED)  # the source as shown: red at the top left
        assert grabber.poll() is None
        grabber.grab(fb, (320, 180))
        px = grabber.poll()
        assert px is not None and px.shape == (36, 64, 3) and px.dtype == np.uint8
        assert_quadrants(px, margin=2)
        assert grabber.poll() is None  # each grab is handed over once
    finally:
        release(fb)


@pytest.mark.parametrize(
    ("width", "source", "expected"),
    [(384, (1920, 1080), (384, 216)), (100, (1000, 333), (100, 34)), (64, (1280, 1024), (64, 52)),
     (64, (4000, 10), (64, 2))],
)
def test_preview_keeps_the_aspect_with_an_even_height(width: int, source: tuple[int, int],
                                                      expected: tuple[int, int]) -> None:
    """Height follows the source's aspect ratio, rounded to an even number, at least 2."""
    assert preview_size(width, source) == expected


def test_fine_checkerboard_is_filtered_to_flat_grey(ctx: moderngl.Context) -> None:
    """1-pixel squares at 1920x1080 come out an even grey: the scale-down filters, it does not point-sample."""
    yy, xx = np.mgrid[0:1080, 0:1920]
    checker = ((xx + yy) % 2 * 255).astype(np.uint8)
    rgba = np.dstack([checker, checker, checker, np.full_like(checker, 255)])
    fb = shown(ctx, rgba)
    g = PreviewGrabber(ctx, 384)
    try:
        g.grab(fb, (1920, 1080))
        px = g.poll()
        assert px is not None and px.shape == (216, 384, 3)
        values = px.astype(np.float64)
        assert abs(values.mean() - 127.5) < 2.0
        assert values.std() < 2.0, f"checkerboard aliases: std {values.std():.1f}"
    finally:
        g.release()
        release(fb)


def test_window_like_source_is_copied_then_scaled(ctx: moderngl.Context, grabber: PreviewGrabber) -> None:
    """A framebuffer with no texture to sample (a renderbuffer, like the window's) gives the same picture."""
    fb = shown(ctx, quadrants((320, 180)).pixels, renderbuffer=True)
    try:
        grabber.grab(fb, (320, 180))
        px = grabber.poll()
        assert px is not None and px.shape == (36, 64, 3)
        assert_quadrants(px, margin=2)
    finally:
        release(fb)


def test_size_change_reallocates_and_still_works(ctx: moderngl.Context, grabber: PreviewGrabber) -> None:
    """A new source size (a resized window) gives a preview of the new shape, right way up."""
    wide = shown(ctx, quadrants((320, 180)).pixels)
    tall = shown(ctx, quadrants((180, 320)).pixels)
    try:
        grabber.grab(wide, (320, 180))
        assert grabber.poll() is not None
        grabber.grab(tall, (180, 320))
        px = grabber.poll()
        assert px is not None and px.shape == (114, 64, 3)
        assert_quadrants(px, margin=2)
        grabber.grab(wide, (320, 180))
        px = grabber.poll()
        assert px is not None and px.shape == (36, 64, 3)
        assert_quadrants(px, margin=2)
    finally:
        release(wide)
        release(tall)


def test_the_callers_framebuffer_and_viewport_are_restored(ctx: moderngl.Context,
                                                           grabber: PreviewGrabber) -> None:
    """After grab() the caller's framebuffer is still bound with its viewport, and GL reports no error."""
    source = shown(ctx, quadrants((320, 180)).pixels)
    other = shown(ctx, solid(BLUE, (200, 100)).pixels)
    try:
        other.use()
        ctx.viewport = (3, 4, 50, 60)
        _ = ctx.error  # only the grab's own errors count here
        grabber.grab(source, (320, 180))
        assert ctx.fbo is other
        assert ctx.viewport == (3, 4, 50, 60)
        assert ctx.error == "GL_NO_ERROR"
        other.clear(1.0, 0.0, 0.0, 1.0)  # the caller's next command lands in its own framebuffer
        assert_color(pixels(other), RED)
        assert_quadrants(pixels(source), margin=1)
    finally:
        release(source)
        release(other)


WINDOW_SCRIPT = """
import json
import pyglet
pyglet.options["debug_gl"] = False
import pyglet.window
import moderngl
from engine.render.preview import PreviewGrabber

win = pyglet.window.Window(width=320, height=180)
ctx = moderngl.create_context(require=330)
w, h = win.get_framebuffer_size()
ctx.screen.use()
for x, y, color in [(0, h // 2, (1, 0, 0)), (w // 2, h // 2, (0, 1, 0)), (0, 0, (0, 0, 1)), (w // 2, 0, (1, 1, 1))]:
    ctx.screen.clear(*color, 1.0, viewport=(x, y, w // 2, h // 2))  # GL's y runs up: red is top left
grabber = PreviewGrabber(ctx, 64)
grabber.grab(ctx.screen, (w, h))
px = grabber.poll()
print(json.dumps({"pixels": px.tolist(), "error": ctx.error, "bound": ctx.fbo is ctx.screen}))
grabber.release()
win.close()
"""


def test_window_framebuffer_is_grabbed() -> None:
    """The window's own framebuffer (ctx.screen, under Xvfb) is grabbed right way up, without a GL error."""
    server = start_xvfb()
    try:
        run = subprocess.run([sys.executable, "-c", WINDOW_SCRIPT], cwd=ROOT, env=server.env(),
                             capture_output=True, text=True, timeout=60)
    finally:
        server.stop()
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["error"] == "GL_NO_ERROR" and result["bound"]
    px = np.array(result["pixels"], dtype=np.uint8)
    assert px.shape == (36, 64, 3)
    assert_quadrants(px, margin=2)


# --- through the show loop ------------------------------------------------------------------

SIZE = (160, 90)


def show_with(ctx: moderngl.Context, cfg: Config) -> ShowLoop:
    return ShowLoop(ctx, cfg, SIZE, Inbox(), "http://127.0.0.1:3000")


def preview_config(fps: float) -> Config:
    return make_config({"show.transition": 1.0, "show.hold": 5.0, "show.fit": "cover", "vj.preview_fps": fps,
                        "vj.preview_width": 64})


@pytest.fixture
def fb(ctx: moderngl.Context) -> Iterator[moderngl.Framebuffer]:
    f = ctx.framebuffer(color_attachments=[ctx.texture(SIZE, 4)])
    yield f
    release(f)


def run_frames(show: ShowLoop, fb: moderngl.Framebuffer, start: float, seconds: float) -> float:
    """Frames at 60 fps on a synthetic clock from ``start``; returns the time after the last."""
    n = round(seconds * FPS)
    for i in range(n):
        show.frame(start + i / FPS, fb)
    return start + n / FPS


def test_nobody_watching_means_no_grab(ctx: moderngl.Context, fb: moderngl.Framebuffer) -> None:
    """With no control page asking, the grabber is never even made."""
    show = show_with(ctx, preview_config(10.0))
    try:
        run_frames(show, fb, 0.0, 1.0)
        assert show.grabber is None
        assert show.board.preview() == (0, None)
    finally:
        show.release()


def test_a_viewer_gets_the_picture_at_preview_fps(ctx: moderngl.Context, fb: moderngl.Framebuffer) -> None:
    """One viewer, preview_fps 10: about 20 previews in 2 s of 60 fps frames, showing what is on screen."""
    show = show_with(ctx, preview_config(10.0))
    try:
        show.board.preview_viewers = 1
        show.inbox.images.put(solid(RED, (32, 32), "red"))
        run_frames(show, fb, 0.0, 2.0)
        seq, px = show.board.preview()
        assert 19 <= seq <= 21
        assert px is not None and px.shape == (36, 64, 3)
        assert_color(px, RED, tol=4)  # the red image was on screen from 1 s
        assert_color(pixels(fb), RED)  # and the grabs left the show's own picture alone
        assert not show.errors
    finally:
        show.release()


def test_preview_fps_zero_turns_the_preview_off(ctx: moderngl.Context, fb: moderngl.Framebuffer) -> None:
    """vj.preview_fps = 0: no previews, even with a viewer."""
    show = show_with(ctx, preview_config(0.0))
    try:
        show.board.preview_viewers = 1
        run_frames(show, fb, 0.0, 1.0)
        assert show.grabber is None
        assert show.board.preview() == (0, None)
    finally:
        show.release()


def test_an_old_picture_is_not_shown_after_a_pause(ctx: moderngl.Context, fb: moderngl.Framebuffer) -> None:
    """When a viewer comes back, the grab left over from before the pause is dropped, not published."""
    show = show_with(ctx, preview_config(10.0))
    try:
        show.board.preview_viewers = 1
        t = run_frames(show, fb, 0.0, 0.5)
        before = show.board.preview()[0]
        show.board.preview_viewers = 0
        t = run_frames(show, fb, t, 1.0)
        show.board.preview_viewers = 1
        show.frame(t, fb)
        assert show.board.preview()[0] == before
        run_frames(show, fb, t + 1 / FPS, 0.2)
        assert show.board.preview()[0] > before
    finally:
        show.release()


def test_a_slow_show_still_gets_previews(ctx: moderngl.Context, fb: moderngl.Framebuffer) -> None:
    """At 2 frames a second, below preview_fps, every frame after the first publishes one."""
    show = show_with(ctx, preview_config(10.0))
    try:
        show.board.preview_viewers = 1
        for i in range(6):
            show.frame(i * 0.5, fb)
        assert show.board.preview()[0] == 5
    finally:
        show.release()


def test_a_failing_preview_is_reported_once_and_turned_off(
    ctx: moderngl.Context, fb: moderngl.Framebuffer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while grabbing is reported once; the preview stops and the frames go on."""
    show = show_with(ctx, preview_config(10.0))

    def broken(self: PreviewGrabber, source: moderngl.Framebuffer, size: tuple[int, int]) -> None:
        raise RuntimeError("driver hiccup")

    monkeypatch.setattr(PreviewGrabber, "grab", broken)
    try:
        show.board.preview_viewers = 1
        run_frames(show, fb, 0.0, 1.0)
        assert [e for e in show.errors if "preview" in e] == [
            "preview turned off for this show: RuntimeError: driver hiccup"
        ]
        assert show.board.read().frame == 60
        assert not any("frame failed" in e for e in show.errors)
    finally:
        show.release()
