"""Frame pacing and statistics with an injected clock: no sleeping."""

from __future__ import annotations

import pytest

from engine.pacing import FramePacer, FrameTimer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def test_pacer_sleeps_the_rest_of_the_period() -> None:
    """A 4 ms frame at 100 fps sleeps 6 ms."""
    clock = FakeClock()
    pacer = FramePacer(100.0, clock, clock.sleep)
    pacer.wait()  # first frame sets the schedule
    clock.now += 0.004
    pacer.wait()
    assert clock.slept == [pytest.approx(0.006)]


def test_pacer_keeps_cadence_after_a_slightly_late_frame() -> None:
    """A frame a little late does not push every later deadline back."""
    clock = FakeClock()
    pacer = FramePacer(100.0, clock, clock.sleep)
    pacer.wait()  # deadline 0.01
    clock.now = 0.012  # 2 ms late: no sleep, next deadline 0.02
    pacer.wait()
    clock.now = 0.015
    pacer.wait()
    assert clock.slept == [pytest.approx(0.005)]


def test_pacer_resets_after_a_long_stall() -> None:
    """After a stall of several periods it restarts from now rather than rushing."""
    clock = FakeClock()
    pacer = FramePacer(100.0, clock, clock.sleep)
    pacer.wait()
    clock.now = 0.5
    pacer.wait()  # way behind: new deadline 0.51
    clock.now = 0.505
    pacer.wait()
    assert clock.slept == [pytest.approx(0.005)]


def test_unpaced_never_sleeps() -> None:
    """fps 0 leaves pacing to vsync or to nobody."""
    clock = FakeClock()
    pacer = FramePacer(0.0, clock, clock.sleep)
    for _ in range(3):
        pacer.wait()
    assert clock.slept == []


def test_frame_timer_reports_fps_median_and_p99() -> None:
    """Statistics come from the intervals between ticks."""
    timer = FrameTimer()
    t = 0.0
    for i in range(101):
        timer.tick(t)
        t += 0.05 if i == 50 else 0.01
    s = timer.stats()
    assert s.frame_ms == pytest.approx(10.0)
    assert s.p99_ms == pytest.approx(10.0)
    assert 90 < s.fps < 100


def test_frame_timer_empty() -> None:
    """No frames yet: zeros, not a crash."""
    assert FrameTimer().stats().fps == 0.0
