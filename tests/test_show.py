"""The director: hold, transitions, skip and blackout, with time as plain numbers."""

from __future__ import annotations

import numpy as np
import pytest

from engine.contract import ShowImage
from engine.errors import ImageError
from engine.show import BeatInfo, Director, Layer


def layer(name: str, slot: int = 0) -> Layer:
    return Layer(name, slot, 64, 64)


def director(transition: float = 2.0, hold: float = 5.0, fade: float = 1.0, max_ready: int = 2) -> Director:
    return Director(transition, hold, fade, max_ready)


def test_idle_until_the_first_image() -> None:
    """With nothing offered the plan is the idle visual."""
    plan = director().update(0.0)
    assert plan.current is None and plan.incoming is None and plan.progress == 0.0


def test_first_image_transitions_in_from_idle_at_once() -> None:
    """The first image does not wait for a hold: it starts coming in immediately."""
    d = director()
    d.offer(layer("a"))
    plan = d.update(10.0)
    assert plan.current is None and plan.incoming == layer("a") and plan.progress == 0.0
    assert d.update(11.0).progress == pytest.approx(0.5)
    plan = d.update(12.0)
    assert plan.current == layer("a") and plan.incoming is None


def test_next_image_waits_for_the_hold() -> None:
    """A ready image comes in only after the current one has been up for ``hold`` seconds."""
    d = director(transition=1.0, hold=5.0)
    d.offer(layer("a"))
    d.update(0.0)
    d.update(1.0)  # a is current from t=1
    d.offer(layer("b", 1))
    assert d.update(5.9).incoming is None
    assert d.update(6.0).incoming == layer("b", 1)


def test_finished_transition_retires_the_old_layer_once() -> None:
    """The outgoing layer is handed back exactly once, when its transition ends."""
    d = director(transition=1.0, hold=0.0)
    d.offer(layer("a", 0))
    d.update(0.0)
    d.update(1.0)
    d.offer(layer("b", 1))
    d.update(1.0)
    plan = d.update(2.0)
    assert plan.retired == (layer("a", 0),)
    assert d.update(2.5).retired == ()


def test_request_next_skips_the_hold() -> None:
    """Space brings the ready image in now, hold or not."""
    d = director(transition=1.0, hold=100.0)
    d.offer(layer("a"))
    d.update(0.0)
    d.update(1.0)
    d.offer(layer("b", 1))
    assert d.request_next() is True
    assert d.update(1.1).incoming == layer("b", 1)


def test_request_next_with_nothing_ready_says_so_and_takes_the_next_arrival() -> None:
    """Nothing ready: request_next returns False, and the next image to arrive skips the hold."""
    d = director(transition=1.0, hold=100.0)
    d.offer(layer("a"))
    d.update(0.0)
    d.update(1.0)
    assert d.request_next() is False
    d.offer(layer("b", 1))
    assert d.update(2.0).incoming == layer("b", 1)


def test_zero_transition_cuts() -> None:
    """transition = 0 swaps images on the frame they are due."""
    d = director(transition=0.0, hold=0.0)
    d.offer(layer("a"))
    plan = d.update(0.0)
    assert plan.current == layer("a") and plan.incoming is None


def test_wants_more_is_bounded() -> None:
    """The director asks for images only while its ready line has room."""
    d = director(max_ready=2)
    assert d.wants_more
    d.offer(layer("a"))
    d.offer(layer("b", 1))
    assert not d.wants_more


def test_blackout_fades_in_and_out() -> None:
    """Blackout ramps over blackout_fade seconds both ways."""
    d = director(fade=2.0)
    d.set_blackout(True, 10.0)
    assert d.update(11.0).blackout == pytest.approx(0.5)
    assert d.update(12.5).blackout == 1.0
    d.set_blackout(False, 20.0)
    assert d.update(21.0).blackout == pytest.approx(0.5)
    assert d.update(22.0).blackout == 0.0


def test_blackout_reverses_mid_fade_without_a_jump() -> None:
    """Releasing blackout halfway down fades back from where it was."""
    d = director(fade=2.0)
    d.set_blackout(True, 0.0)
    d.set_blackout(False, 1.0)  # level 0.5 at this moment
    assert d.update(1.0).blackout == pytest.approx(0.5)
    assert d.update(1.5).blackout == pytest.approx(0.25)


def test_blackout_without_fade_is_immediate() -> None:
    """blackout_fade = 0 goes to black on the same frame."""
    d = director(fade=0.0)
    d.set_blackout(True, 3.0)
    assert d.update(3.0).blackout == 1.0


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((4, 4, 3), dtype=np.uint8),
        np.zeros((4, 4, 4), dtype=np.float32),
        np.zeros((0, 4, 4), dtype=np.uint8),
        "not an array",
    ],
)
def test_show_image_rejects_bad_arrays(pixels: object) -> None:
    """Only (h, w, 4) uint8 pictures can enter the show."""
    with pytest.raises(ImageError, match="image x"):
        ShowImage("x", pixels)  # type: ignore[arg-type]


def test_show_image_makes_views_contiguous() -> None:
    """A strided view is copied to a contiguous array so it can be uploaded in bands."""
    base = np.zeros((8, 8, 4), dtype=np.uint8)
    img = ShowImage("x", base[:, ::2])
    assert img.pixels.flags.c_contiguous and img.width == 4 and img.height == 8


def beat_at(count: int, beat: bool = True, bar_beat: int = 0, period: float = 0.5) -> BeatInfo:
    return BeatInfo(beat, count, bar_beat, period)


def test_beat_mode_waits_for_the_beat_and_lands_on_one() -> None:
    """A due image starts on the next beat, and its transition lasts whole beats."""
    d = Director(transition=1.2, hold=0.0, blackout_fade=1.0, transition_on="beat")
    d.offer(layer("a"))
    d.update(0.0, beat_at(0, beat=False))
    d.update(2.0, beat_at(0, beat=False))  # a is current now (first image never waits)
    d.offer(layer("b", 1))
    assert d.update(2.1, beat_at(4, beat=False)).incoming is None
    assert d.update(2.2, beat_at(5)).incoming == layer("b", 1)
    assert d.update(3.1, beat_at(6, beat=False)).incoming is not None  # 1.2 s → 2 beats of 0.5 s = 1.0 s
    assert d.update(3.2, beat_at(7)).current == layer("b", 1)


def test_bar_mode_waits_for_the_downbeat() -> None:
    """transition_on = bar: only the bar's first beat starts a transition."""
    d = Director(transition=0.5, hold=0.0, blackout_fade=1.0, transition_on="bar")
    d.offer(layer("a"))
    d.update(0.0)
    d.update(1.0)
    d.offer(layer("b", 1))
    assert d.update(1.1, beat_at(5, bar_beat=2)).incoming is None
    assert d.update(1.6, beat_at(8, bar_beat=1)).incoming == layer("b", 1)


def test_every_n_beats() -> None:
    """With every = 4, only every fourth beat is a cue."""
    d = Director(transition=0.5, hold=0.0, blackout_fade=1.0, transition_on="beat", every=4)
    d.offer(layer("a"))
    d.update(0.0)
    d.update(1.0)
    d.offer(layer("b", 1))
    assert d.update(1.1, beat_at(6)).incoming is None
    assert d.update(1.6, beat_at(8)).incoming == layer("b", 1)


def test_no_confident_tempo_falls_back_to_time() -> None:
    """Without a tempo (period 0) beat mode behaves like time mode: the show never waits forever."""
    d = Director(transition=0.5, hold=0.0, blackout_fade=1.0, transition_on="beat")
    d.offer(layer("a"))
    d.update(0.0)
    d.update(1.0)
    d.offer(layer("b", 1))
    assert d.update(1.1, BeatInfo(False, 0, 0, 0.0)).incoming == layer("b", 1)


def test_an_urgent_image_jumps_the_line_and_comes_in_now() -> None:
    """The VJ's re-shown gallery image goes ahead of the ones waiting and skips the rest of the hold."""
    d = Director(transition=1.0, hold=10.0, blackout_fade=0.5, max_ready=3)
    d.offer(layer("a"))
    d.update(0.0)
    d.update(1.5)  # a is on screen, its hold has just begun
    d.offer(layer("b", 1))
    d.offer(layer("again", 2), front=True)
    plan = d.update(2.0)
    assert plan.incoming is not None and plan.incoming.id == "again"
    d.update(3.1)
    plan = d.update(4.0)
    assert plan.current is not None and plan.current.id == "again" and plan.incoming is None  # b waits its turn
