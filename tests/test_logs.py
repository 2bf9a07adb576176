"""Throttled log lines: what strangers send never writes the log for them."""

from __future__ import annotations

from engine.logs import LogThrottle, held_back
from tests.fakes import FakeClock


def test_one_line_per_key_per_interval_with_the_count_held_back() -> None:
    """Within the interval a key is quiet; the next line says how many were held back."""
    clock = FakeClock()
    throttle = LogThrottle(5.0, clock=clock)
    assert [throttle.admit("10.0.0.1") for _ in range(4)] == [0, None, None, None]
    clock.now = 5.0
    assert throttle.admit("10.0.0.1") == 3


def test_keys_are_throttled_apart() -> None:
    """Another source gets its own line."""
    throttle = LogThrottle(5.0, clock=FakeClock())
    assert (throttle.admit("10.0.0.1"), throttle.admit("10.0.0.2")) == (0, 0)


def test_past_max_keys_the_other_sources_share_one_line() -> None:
    """Forged source addresses cannot make one line each: beyond max_keys they share a key."""
    throttle = LogThrottle(60.0, max_keys=3, clock=FakeClock())
    admitted = [throttle.admit(f"10.0.0.{n}") for n in range(100)]
    assert sum(a is not None for a in admitted) == 4


def test_expired_keys_make_room_again() -> None:
    """Once a key's interval has passed, a new source may have a line of its own again."""
    clock = FakeClock()
    throttle = LogThrottle(60.0, max_keys=1, clock=clock)
    throttle.admit("10.0.0.1")
    clock.now = 61.0
    assert throttle.admit("10.0.0.2") == 0  # its own line, where 10.0.0.1's was
    assert [throttle.admit("10.0.0.3"), throttle.admit("10.0.0.4")] == [0, None]  # the shared key's


def test_held_back_tail() -> None:
    """Nothing held back: no tail."""
    assert (held_back(0), held_back(2)) == ("", " (2 more like this not logged)")
