"""One frame at a time on the render thread: inbox, uploads, commands, snapshots."""

from __future__ import annotations

from collections.abc import Iterator

import moderngl
import numpy as np
import pytest

from engine.commands import Action, Command
from engine.config import Config
from engine.contract import CaptureWish, Inbox
from engine.render.show_loop import ShowLoop
from tests.fakes import BLUE, GREEN, RED, assert_color, make_config, pixels, solid, target

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
    inbox.captures.put(CaptureWish(wanted))
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


# --- the dream layer ---------------------------------------------------------------------------------
def dream_frame(color: tuple[int, int, int], size: tuple[int, int] = (64, 36)) -> np.ndarray:
    w, h = size
    px = np.empty((h, w, 3), dtype=np.uint8)
    px[...] = color
    return px


def on_red(show: ShowLoop, inbox: Inbox, fb: moderngl.Framebuffer) -> None:
    """A red image on screen, its transition over."""
    inbox.images.put(solid(RED, (32, 32), "red"))
    show.frame(0.0, fb)
    show.frame(1.5, fb)


def test_a_dream_frame_is_drawn_over_the_program_at_the_mix(show: ShowLoop, inbox: Inbox,
                                                             fb: moderngl.Framebuffer) -> None:
    """The newest frame in the slot is blended over the picture; the snapshot says the mix and the dream's fps."""
    on_red(show, inbox, fb)
    inbox.commands.put(Command(Action.DREAM_MIX, 0.5))
    inbox.dream.put(dream_frame(GREEN))
    inbox.dream.put(dream_frame(BLUE))  # newer: the green one is never drawn
    show.frame(1.6, fb)
    assert_color(pixels(fb), (128, 0, 128), tol=3.0)
    assert show.dream.frames == 1 and show.board.read().dream_mix == 0.5
    for i in range(4):
        inbox.dream.put(dream_frame(BLUE))
        show.frame(1.7 + i * 0.1, fb)
    assert show.board.read().dream_fps == pytest.approx(10.0)


def test_dream_mix_zero_costs_nothing_and_takes_nothing(show: ShowLoop, inbox: Inbox,
                                                        fb: moderngl.Framebuffer) -> None:
    """At mix 0 nothing is drawn and no frame is uploaded; raised again, the newest frame comes in."""
    on_red(show, inbox, fb)
    inbox.commands.put(Command(Action.DREAM_MIX, 0.0))
    inbox.dream.put(dream_frame(BLUE))
    show.frame(1.6, fb)
    assert_color(pixels(fb), RED)
    assert show.dream.frames == 0 and show.board.read().dream_mix == 0.0
    inbox.commands.put(Command(Action.DREAM_MIX, 1.0))
    show.frame(1.7, fb)
    assert_color(pixels(fb), BLUE)


def test_the_dream_mix_is_clamped_and_none_is_the_configured_one(show: ShowLoop) -> None:
    """Off at start without [dream] enabled; any value is brought into 0..1; none is [dream] mix."""
    assert show.compositor.dream_mix == 0.0
    show.apply(Command(Action.DREAM_MIX, 3.0), 0.0)
    assert show.compositor.dream_mix == 1.0
    show.apply(Command(Action.DREAM_MIX, -1.0), 0.0)
    assert show.compositor.dream_mix == 0.0
    show.apply(Command(Action.DREAM_MIX, float("nan")), 0.0)
    assert show.compositor.dream_mix == 0.0
    show.apply(Command(Action.DREAM_MIX), 0.0)
    assert show.compositor.dream_mix == show.cfg.dream.mix


def test_a_dream_frame_waits_while_an_image_band_is_written(show: ShowLoop, inbox: Inbox,
                                                            fb: moderngl.Framebuffer) -> None:
    """The two uploads never add up past the frame's budget: the dream's waits for a frame with no image band."""
    inbox.commands.put(Command(Action.DREAM_MIX, 0.5))
    inbox.images.put(solid(RED, (32, 32), "red"))
    inbox.dream.put(dream_frame(BLUE))
    show.frame(0.0, fb)
    assert show.dream.frames == 0
    show.frame(0.1, fb)
    assert show.dream.frames == 1


def test_a_frozen_show_holds_its_dream_frame(show: ShowLoop, inbox: Inbox, fb: moderngl.Framebuffer) -> None:
    on_red(show, inbox, fb)
    inbox.commands.put(Command(Action.DREAM_MIX, 1.0))
    inbox.dream.put(dream_frame(BLUE))
    show.frame(1.6, fb)
    inbox.commands.put(Command(Action.FREEZE, 1.0))
    inbox.dream.put(dream_frame(GREEN))
    show.frame(1.7, fb)
    assert_color(pixels(fb), BLUE)
    inbox.commands.put(Command(Action.FREEZE, 0.0))
    show.frame(1.8, fb)
    assert_color(pixels(fb), GREEN)


def test_no_dream_frame_any_more_takes_the_layer_away(show: ShowLoop, inbox: Inbox,
                                                      fb: moderngl.Framebuffer) -> None:
    on_red(show, inbox, fb)
    inbox.commands.put(Command(Action.DREAM_MIX, 1.0))
    inbox.dream.put(dream_frame(BLUE))
    show.frame(1.6, fb)
    inbox.dream.put(None)
    show.frame(1.7, fb)
    assert_color(pixels(fb), RED)


def test_a_bad_dream_frame_is_reported_and_the_show_goes_on(show: ShowLoop, inbox: Inbox,
                                                            fb: moderngl.Framebuffer) -> None:
    on_red(show, inbox, fb)
    inbox.commands.put(Command(Action.DREAM_MIX, 0.5))
    inbox.dream.put(np.zeros((8, 8), dtype=np.uint8))
    show.frame(1.6, fb)
    assert any("dream frame" in e for e in show.board.read().errors)
    assert_color(pixels(fb), RED)


def test_a_scaled_capture_wish_is_answered_without_a_second_draw(show: ShowLoop, inbox: Inbox,
                                                                  fb: moderngl.Framebuffer) -> None:
    """The dream's source: the program at the wished size, a frame or two after the wish, without the dream."""
    from concurrent.futures import Future

    on_red(show, inbox, fb)
    inbox.commands.put(Command(Action.DREAM_MIX, 1.0))
    inbox.dream.put(dream_frame(BLUE))
    wanted: Future[np.ndarray] = Future()
    inbox.captures.put(CaptureWish(wanted, 64))
    t = 1.6
    while not wanted.done() and t < 2.0:
        show.frame(t, fb)
        t += 0.01
    got = wanted.result(timeout=0)
    assert got.shape == (36, 64, 3)
    assert_color(got, RED)
    assert_color(pixels(fb), BLUE)


def test_a_slow_dream_never_holds_the_show(ctx: moderngl.Context, inbox: Inbox, fb: moderngl.Framebuffer) -> None:
    """A dream whose step takes 1 s and more: the show draws every frame meanwhile, doing per frame the same
    work as with no dream at all (one upload when a dream frame comes, nothing while it waits for one), and
    holds the last dream frame; the next frame is drawn as soon as it comes. Deterministic: the producer's
    step lasts until the test ends it, after the show's frames; a show that waited for it would never get
    there (and the producer would give up after 10 s, failing the checks)."""
    import threading
    import time

    runs: dict[str, tuple[int, int, list[float]]] = {}
    for name in ("no dream", "slow dream"):
        show = ShowLoop(ctx, make_config({"dream.enabled": True, "dream.mix": 0.5, "dream.size": 128,
                                          "show.transition": 0.5, "show.hold": 60.0, "show.fit": "cover"}), SIZE,
                        inbox, "http://127.0.0.1:3000")
        inbox.images.put(solid(RED, (32, 32), "red"))
        step_over = threading.Event()
        gave_up: list[bool] = []

        def dream(step_over: threading.Event, gave_up: list[bool]) -> None:
            """The dream loop: one frame, then a step that takes as long as the test says."""
            inbox.dream.put(dream_frame(BLUE))
            gave_up.append(not step_over.wait(10.0))
            inbox.dream.put(dream_frame(GREEN))

        producer = threading.Thread(target=dream, args=(step_over, gave_up), daemon=True)
        if name == "slow dream":
            producer.start()
            while inbox.dream.latest()[1] is None:
                time.sleep(0.001)
        times = []
        try:
            for i in range(120):
                start = time.perf_counter()
                show.frame(i / 60, fb)
                ctx.finish()
                times.append(time.perf_counter() - start)
            drawn, uploads = show.board.read().frame, show.dream.frames
            if name == "slow dream":
                assert producer.is_alive() and not step_over.is_set()  # its step still going: nobody waited
                assert_color(pixels(fb), (128, 0, 128), tol=3.0)  # its last frame held
                step_over.set()
                producer.join(5)
                show.frame(2.0, fb)
                assert_color(pixels(fb), (128, 128, 0), tol=3.0)  # the next one, at once
                assert gave_up == [False]
        finally:
            show.release()
            inbox.dream.put(None)
        runs[name] = (drawn, uploads, times)
    assert runs["no dream"][:2] == (120, 0)
    assert runs["slow dream"][:2] == (120, 1)  # the same frames; one dream upload in 2 s of show
    # For the record, not asserted (wall time on a shared machine); the slow dream's frames also draw its layer.
    for name, (_, _, times) in runs.items():
        ordered = sorted(times)
        print(f"{name}: frame p50 {ordered[60] * 1000:.2f} ms, p99 {ordered[118] * 1000:.2f} ms")
