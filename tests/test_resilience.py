"""The sans-I/O resilience pieces: backoff jitter, the sliding-window rate limiter, the circuit breaker."""

from __future__ import annotations

from engine.gen.resilience import BreakerState, CircuitBreaker, SlidingWindowLimiter, backoff_delay


def test_backoff_jitter_stays_within_bounds() -> None:
    """Full jitter: 0 ≤ delay ≤ min(cap, base·2^attempt), reaching the cap."""
    for attempt in range(8):
        ceiling = min(30.0, 1.0 * 2 ** attempt)
        assert backoff_delay(attempt, 1.0, 30.0, 0.0) == 0.0
        assert backoff_delay(attempt, 1.0, 30.0, 0.999999) <= ceiling
        assert backoff_delay(attempt, 1.0, 30.0, 0.999999) > 0.99 * ceiling


def test_sliding_window_limiter() -> None:
    """N sends per window; the next waits until the oldest leaves the window; pauses hold everyone."""
    lim = SlidingWindowLimiter(3, 10.0)
    assert [lim.try_acquire(0.0), lim.try_acquire(1.0), lim.try_acquire(2.0)] == [0.0, 0.0, 0.0]
    assert lim.try_acquire(4.0) == 6.0
    assert lim.try_acquire(10.0) == 0.0
    lim.pause_until(50.0)
    assert lim.try_acquire(45.0) == 5.0
    assert lim.try_acquire(50.0) == 0.0


def test_breaker_state_machine() -> None:
    """closed → open after N failures → half-open probe after the cooldown → closed or open again."""
    b = CircuitBreaker(failures=2, cooldown=10.0)
    b.failure(0.0)
    assert b.peek(0.0) is BreakerState.CLOSED
    b.failure(1.0)
    assert b.peek(1.0) is BreakerState.OPEN and b.admit(5.0).value == "reject"
    assert b.peek(11.0) is BreakerState.HALF_OPEN
    assert b.admit(11.0).value == "probe" and b.admit(11.0).value == "reject"
    b.failure(12.0)
    assert b.peek(12.0) is BreakerState.OPEN and b.retry_in(12.0) == 10.0
    assert b.admit(22.0).value == "probe"
    b.success()
    assert b.peek(22.0) is BreakerState.CLOSED and b.consecutive_failures == 0
