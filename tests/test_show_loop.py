"""One frame at a time on the render thread: inbox, uploads, commands, snapshots."""

from __future__ import annotations

from collections.abc import Iterator

import moderngl
import numpy as np
import pytest

from engine.commands import Action, Command
from engine.config import Config
from engine.contract import Inbox
from engine.render.show_loop import ShowLoop
from tests.fakes import BLUE, RED, assert_color, make_config, pixels, solid, target

SIZE = (160, 90)


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def requests() -> list[int]:
    return []


def loop_for(ctx: moderngl.Context, inbox: Inbox, requests: list[int], cfg: Config) -> ShowLoop:
    return ShowLoop(ctx, cfg, SIZE, inbox, "http://127.0.0.1:3000", request_image=lambda: requests.append(1))


@pytest.fixture
def show(ctx: moderngl.Context, inbox: Inbox, requests: list[int]) -> Iterator[ShowLoop]:
    cfg = make_config({"show.transition": 1.0, "show.hold": 5.0, "show.fit": "cover"})
    s = loop_for(ctx, inbox, requests, cfg)
    yield s
    s.release()


@pytest.fixture
def fb(ctx: moderngl.Context) -> Iterator[moderngl.Framebuffer]:
    f = target(ctx, SIZE)
    yield f
    f.release()


def test_empty_inbox_never_blocks_and_shows_idle(show: ShowLoop, fb: moderngl.Framebuffer) -> None:
    """Frames with nothing queued render the idle plan."""
    for i in range(3):
        show.frame(i / 60, fb)
    assert show.board.read().frame == 3
    assert show.board.read().current_id is None


def test_takes_at_most_one_image_per_frame(show: ShowLoop, inbox: Inbox, fb: moderngl.Framebuffer) -> None:
    """Three queued images leave the queue one frame at a time."""
    for i in range(3):
        inbox.images.put(solid(RED, (32, 32), f"i{i}"))
    show.frame(0.0, fb)
    assert inbox.images.qsize() == 2
    show.frame(0.01, fb)
    assert inbox.images.qsize() == 1


def test_ready_line_is_bounded_by_free_slots(show: ShowLoop, inbox: Inbox, fb: moderngl.Framebuffer) -> None:
    """With 4 slots, one image on screen and one ready: the rest wait in the queue, counted."""
    for i in range(6):
        inbox.images.put(solid(RED, (32, 32), f"i{i}"))
    for t in (0.0, 0.1, 0.2, 1.5, 1.6, 1.7):
        show.frame(t, fb)
    assert show.board.read().current_id == "i0"
    assert show.director.ready_count == 1
    assert inbox.images.qsize() == 4
    assert show.board.read().queue_len == 5


def test_image_reaches_the_screen(show: ShowLoop, inbox: Inbox, fb: moderngl.Framebuffer) -> None:
    """An image put in the inbox is on screen after its transition."""
    inbox.images.put(solid(RED, (32, 32), "red"))
    show.frame(0.0, fb)  # uploaded and the transition starts
    show.frame(1.5, fb)  # transition over
    assert show.board.read().current_id == "red"
    assert_color(pixels(fb), RED)


def test_bad_image_is_reported_and_the_show_goes_on(show: ShowLoop, inbox: Inbox,
                                                    fb: moderngl.Framebuffer) -> None:
    """An oversized image is refused with a clear error; the next good one still plays."""
    inbox.images.put(solid(RED, (4096, 8), "huge"))
    inbox.images.put(solid(RED, (32, 32), "good"))
    show.frame(0.0, fb)
    assert any("huge" in e and "render.max_image_size" in e for e in show.board.read().errors)
    show.frame(0.1, fb)
    show.frame(2.0, fb)
    assert show.board.read().current_id == "good"


def test_next_with_nothing_ready_asks_backstage(show: ShowLoop, inbox: Inbox, requests: list[int],
                                               fb: moderngl.Framebuffer) -> None:
    """Space with an empty line requests an image from the sources."""
    inbox.commands.put(Command(Action.NEXT))
    show.frame(0.0, fb)
    assert requests == [1]


def test_next_skips_the_hold(show: ShowLoop, inbox: Inbox, requests: list[int],
                             fb: moderngl.Framebuffer) -> None:
    """Space brings a ready image in before the hold is over, without asking for more."""
    inbox.images.put(solid(RED, (32, 32), "a"))
    show.frame(0.0, fb)
    show.frame(1.5, fb)
    inbox.images.put(solid(RED, (32, 32), "b"))
    show.frame(1.6, fb)  # b uploaded, waits for the hold
    assert show.board.read().incoming_id is None
    inbox.commands.put(Command(Action.NEXT))
    show.frame(1.7, fb)
    assert show.board.read().incoming_id == "b"
    assert requests == []


def test_blackout_command_fades_to_black(ctx: moderngl.Context, inbox: Inbox, requests: list[int],
                                         fb: moderngl.Framebuffer) -> None:
    """B fades the picture to black over blackout_fade, and B again brings it back."""
    show = loop_for(ctx, inbox, requests, make_config({"show.blackout_fade": 1.0}))
    try:
        inbox.commands.put(Command(Action.BLACKOUT))
        show.frame(0.0, fb)
        show.frame(1.0, fb)
        assert show.board.read().blackout
        assert_color(pixels(fb), (0, 0, 0))
        inbox.commands.put(Command(Action.BLACKOUT))
        show.frame(1.1, fb)
        show.frame(2.2, fb)
        assert not show.board.read().blackout
        assert float(pixels(fb).mean()) > 5
    finally:
        show.release()


def test_hud_toggles(show: ShowLoop, inbox: Inbox, fb: moderngl.Framebuffer) -> None:
    """H shows the HUD, H again hides it; the snapshot says which."""
    inbox.commands.put(Command(Action.HUD))
    show.frame(0.0, fb)
    assert show.board.read().hud
    inbox.commands.put(Command(Action.HUD, 0.0))
    show.frame(0.1, fb)
    assert not show.board.read().hud


def test_hud_picture_from_backstage_is_drawn_while_the_hud_is_on(
    show: ShowLoop, inbox: Inbox, fb: moderngl.Framebuffer
) -> None:
    """A HUD picture painted backstage appears top-left; hidden again when H turns the HUD off."""
    hud = np.zeros((40, 80, 4), dtype=np.uint8)
    hud[..., 1] = 255
    hud[..., 3] = 255
    inbox.commands.put(Command(Action.HUD))
    inbox.hud.put(hud)
    show.frame(0.0, fb)
    margin = max(8, SIZE[1] // 40)
    assert_color(pixels(fb)[margin + 5 : margin + 30, margin + 5 : margin + 70], (0, 255, 0))
    inbox.commands.put(Command(Action.HUD))
    show.frame(0.1, fb)
    assert pixels(fb)[margin + 10, margin + 10, 1] < 200


def test_hud_picture_is_ignored_while_the_hud_is_off(show: ShowLoop, inbox: Inbox,
                                                     fb: moderngl.Framebuffer) -> None:
    """A late HUD picture does not bring the HUD back after H hid it."""
    hud = np.full((40, 80, 4), 255, dtype=np.uint8)
    inbox.hud.put(hud)
    show.frame(0.0, fb)
    margin = max(8, SIZE[1] // 40)
    assert pixels(fb)[margin + 10, margin + 10].min() < 250


@pytest.mark.parametrize("action", [Action.QUIT, Action.FULLSCREEN, Action.ESCAPE])
def test_window_commands_go_to_the_driver(show: ShowLoop, inbox: Inbox, fb: moderngl.Framebuffer,
                                          action: Action) -> None:
    """Quit, fullscreen and escape are handed to whoever owns the window."""
    inbox.commands.put(Command(action))
    show.frame(0.0, fb)
    assert [c.action for c in show.driver_actions] == [action]


def test_cpu_time_outside_gl_is_measured(show: ShowLoop, fb: moderngl.Framebuffer) -> None:
    """The loop reports its own CPU cost per frame (for the HUD and the benchmark)."""
    show.frame(0.0, fb)
    assert show.cpu_ms >= 0.0


def test_capture_returns_the_frame(show: ShowLoop, inbox: Inbox, fb: moderngl.Framebuffer) -> None:
    """capture() renders the current plan offscreen at the output size."""
    inbox.images.put(solid(RED, (32, 32), "red"))
    show.frame(0.0, fb)
    show.frame(1.5, fb)
    rgb = show.capture(1.5)
    assert rgb.shape == (SIZE[1], SIZE[0], 3)
    assert_color(rgb, RED)


def test_a_failing_frame_is_reported_once_and_the_show_goes_on(
    show: ShowLoop,
    fb: moderngl.Framebuffer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unexpected error while drawing is logged once, shown on the HUD, and frames continue."""
    real = show.compositor.render

    def broken(*args: object) -> None:
        raise RuntimeError("driver hiccup")

    monkeypatch.setattr(show.compositor, "render", broken)
    show.frame(0.0, fb)
    show.frame(0.1, fb)
    assert caplog.text.count("frame failed: RuntimeError: driver hiccup") == 1
    assert show.errors[-1] == "frame failed: RuntimeError: driver hiccup"
    monkeypatch.setattr(show.compositor, "render", real)
    show.frame(0.2, fb)
    assert show.board.read().frame >= 1


def test_capture_request_is_answered_between_frames(show: ShowLoop, inbox: Inbox, fb: moderngl.Framebuffer) -> None:
    """A program-frame request from backstage gets the current picture at the output size."""
    from concurrent.futures import Future

    wanted: Future[np.ndarray] = Future()
    inbox.captures.put(wanted)
    inbox.images.put(solid(RED, (32, 32), "red"))
    show.frame(0.0, fb)
    assert wanted.result(timeout=1).shape == (SIZE[1], SIZE[0], 3)


def test_freeze_holds_the_picture_and_blackout_still_fades(show: ShowLoop, inbox: Inbox,
                                                            fb: moderngl.Framebuffer) -> None:
    """Frozen, a transition halfway stays halfway however long it lasts; the blackout still fades, and
    unfreezing carries on from the same point rather than jumping ahead."""
    inbox.images.put(solid(RED, (32, 32), "red"))
    for t in (0.0, 0.05, 1.2, 1.3):
        show.frame(t, fb)
    inbox.images.put(solid(BLUE, (32, 32), "blue"))
    inbox.commands.put(Command(Action.NEXT))
    show.frame(1.4, fb)
    show.frame(1.5, fb)  # the transition starts
    show.frame(2.0, fb)  # halfway
    halfway = pixels(fb).copy()
    inbox.commands.put(Command(Action.FREEZE))
    show.frame(2.0, fb)
    show.frame(60.0, fb)
    snap = show.board.read()
    assert snap.frozen and snap.incoming_id == "blue"
    assert np.abs(pixels(fb).astype(int) - halfway.astype(int)).max() <= 2
    inbox.commands.put(Command(Action.BLACKOUT, 1.0))
    show.frame(61.0, fb)
    show.frame(70.0, fb)
    assert_color(pixels(fb), (0, 0, 0))
    inbox.commands.put(Command(Action.BLACKOUT, 0.0))
    inbox.commands.put(Command(Action.FREEZE, 0.0))
    show.frame(80.0, fb)
    show.frame(80.1, fb)
    snap = show.board.read()
    assert not snap.frozen and snap.incoming_id == "blue"  # 0.6 s of the 1 s transition has run, not 78 s
    show.frame(81.0, fb)
    assert show.board.read().current_id == "blue"


def test_the_lines_pace_sets_the_hold(show: ShowLoop) -> None:
    """A HOLD command from the backstage changes how long images stay; no value goes back to [show] hold."""
    show.apply(Command(Action.HOLD, 3.5, source="pace"), 0.0)
    assert show.director.hold == 3.5
    show.apply(Command(Action.HOLD, None, source="pace"), 0.0)
    assert show.director.hold == show.cfg.show.hold
