"""The show with live audio: it keeps rendering when the device vanishes, and taps set the tempo."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import moderngl
import pytest

from engine.audio.live import LiveAudio, TapTempo
from engine.commands import Action, Command
from engine.config import AudioConfig
from engine.contract import Inbox
from engine.render.show_loop import ShowLoop
from tests.fakes import make_config, target
from tests.test_audio_input import FakeCard

SIZE = (64, 36)


def frames_until(show: ShowLoop, fb: moderngl.Framebuffer, cond: Callable[[], bool], timeout: float = 10.0) -> int:
    """Render frames (as the show does) until ``cond()``; the number of frames drawn meanwhile."""
    deadline, n = time.monotonic() + timeout, 0
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        show.frame(time.monotonic(), fb)
        n += 1
        time.sleep(0.01)
    return n


@pytest.fixture
def fb(ctx: moderngl.Context) -> Iterator[moderngl.Framebuffer]:
    f = target(ctx, SIZE)
    yield f
    f.release()


def test_show_keeps_rendering_while_the_device_vanishes_and_returns(ctx: moderngl.Context,
                                                                     fb: moderngl.Framebuffer) -> None:
    """Unplug the card mid-show: frames go on, the HUD says so; plug it back: audio is back."""
    card = FakeCard()
    live = LiveAudio(AudioConfig(device="Mixer", blocksize=256), layer=card)
    live.thread.retry_s = 0.1
    live.thread.stall_s = 0.2
    show = ShowLoop(ctx, make_config(), SIZE, Inbox(), "http://x", live=live)
    live.start()
    try:
        frames_until(show, fb, lambda: "Mixer USB" in show.board.read().audio)
        card.present = False
        drawn = frames_until(show, fb, lambda: "no audio" in show.board.read().audio)
        assert drawn > 0 and not show.errors
        card.present = True
        frames_until(show, fb, lambda: show.board.read().audio.startswith("Mixer USB"))
        assert show.board.read().frame > drawn
    finally:
        live.stop()
        show.release()


def test_tap_tempo_locks_the_beat(ctx: moderngl.Context, fb: moderngl.Framebuffer) -> None:
    """T pressed every half second: the tempo locks at 120 bpm, with no sound input at all."""
    clock = [100.0]
    live = LiveAudio(AudioConfig(device="none", blocksize=256), clock=lambda: clock[0])
    show = ShowLoop(ctx, make_config(), SIZE, Inbox(), "http://x", live=live)
    live.start()
    try:
        for _ in range(4):
            show.inbox.commands.put(Command(Action.TAP, source="keyboard"))
            show.frame(time.monotonic(), fb)
            clock[0] += 0.5
            time.sleep(0.05)
        frames_until(show, fb, lambda: "120.0 bpm (locked)" in show.board.read().audio)
        show.inbox.commands.put(Command(Action.BPM, 0.0))
        frames_until(show, fb, lambda: "locked" not in show.board.read().audio)
    finally:
        live.stop()
        show.release()


def test_tap_tempo_math() -> None:
    """Three or more taps give the median interval's tempo; a long pause starts over."""
    taps = TapTempo()
    assert taps.tap(0.0) is None and taps.tap(0.5) is None
    assert taps.tap(1.0) == pytest.approx(120.0)
    assert taps.tap(1.4) == pytest.approx(120.0)  # one short interval does not move the median of 3
    assert taps.tap(5.0) is None  # a pause: a new sequence
