"""Keeping a flaky remote generator usable during a show: backoff, rate limit, circuit breaker, health.

All sans-I/O: every method takes the time as an argument and nothing sleeps here, so the generator's
injected ``clock``, ``sleep`` and ``random`` make every timing testable. ``Health`` gathers what the
generator learns from each outcome (the breaker, the last error, the credits) into the ``StabilityStatus``
the VJ page shows.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from engine.gen.base import FailureKind, GenerationError

RATE_WINDOW = 10.0  # seconds: the API counts requests per 10 s
# Outcomes that prove Stability is up (it answered, the prompt or our request was the problem).
_NEUTRAL = frozenset({FailureKind.MODERATED, FailureKind.BAD_REQUEST, FailureKind.TOO_LARGE,
                      FailureKind.UNPROCESSABLE})
# Outcomes about the sender's prompt, not about the backend: not shown to the VJ as an error.
_SENDER_ONLY = frozenset({FailureKind.MODERATED, FailureKind.UNPROCESSABLE})
# Outcomes that say Stability (or the way to it) is down for now, not that something is wrong with us.
_TRANSIENT = frozenset({FailureKind.NETWORK, FailureKind.SERVER, FailureKind.RATE_LIMITED, FailureKind.UNAVAILABLE,
                        FailureKind.BAD_RESPONSE})
# Outcomes no retry or wait will fix: the breaker opens at once.
_FATAL = frozenset({FailureKind.UNAUTHORIZED, FailureKind.PAYMENT})


def backoff_delay(attempt: int, base: float, cap: float, rnd: float) -> float:
    """Full jitter: ``rnd`` (0..1) times ``base * 2**attempt``, the ceiling capped at ``cap``."""
    return rnd * min(cap, base * 2.0 ** attempt)


def retry_delay(err: GenerationError, attempt: int, base: float, cap: float, max_wait: float,
                random: Callable[[], float]) -> float | None:
    """Seconds before retry ``attempt + 1``; None when the server asks for a longer wait than a prompt may
    spend (``max_wait``): the caller falls back to the offline generator instead of holding the line."""
    if err.retry_after is not None:
        return err.retry_after if err.retry_after <= max_wait else None
    return backoff_delay(attempt, base, cap, random())


class SlidingWindowLimiter:
    """At most ``limit`` sends in any ``window`` seconds (sans-I/O: the caller passes the time and sleeps)."""

    def __init__(self, limit: int, window: float = RATE_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._sent: deque[float] = deque()
        self._paused_until = -math.inf

    def try_acquire(self, now: float) -> float:
        """Take a slot and return 0, or return how many seconds to wait before asking again."""
        if now < self._paused_until:
            return self._paused_until - now
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        if len(self._sent) >= self.limit:
            return self._sent[0] + self.window - now
        self._sent.append(now)
        return 0.0

    def pause_until(self, when: float) -> None:
        """Hold every send until ``when`` (after a 429 the whole client backs off, not one request)."""
        self._paused_until = max(self._paused_until, when)

    def paused_for(self, now: float) -> float:
        """Seconds left of a pause (0 when sends may go)."""
        return max(0.0, self._paused_until - now)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Admission(StrEnum):
    PASS = "pass"  # closed: go
    PROBE = "probe"  # the one request allowed through after the cooldown
    REJECT = "reject"  # open (or a probe is already out): fail fast


class CircuitBreaker:
    """Opens after ``failures`` failed generations in a row; after ``cooldown`` lets one probe through.

    Sans-I/O: every method takes the time. A probe's success closes it, a failure re-opens it (restarting
    the cooldown). ``trip`` opens it at once, for outcomes no retry will fix (wrong key, no credits).
    """

    def __init__(self, failures: int, cooldown: float) -> None:
        self.threshold = failures
        self.cooldown = cooldown
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at = -math.inf

    def peek(self, now: float) -> BreakerState:
        """The state a request would meet now: OPEN reads HALF_OPEN once the cooldown is over."""
        if self.state is BreakerState.OPEN and now - self.opened_at >= self.cooldown:
            return BreakerState.HALF_OPEN
        return self.state

    def retry_in(self, now: float) -> float:
        return max(0.0, self.opened_at + self.cooldown - now) if self.state is not BreakerState.CLOSED else 0.0

    def admit(self, now: float) -> Admission:
        if self.state is BreakerState.CLOSED:
            return Admission.PASS
        if self.state is BreakerState.OPEN and now - self.opened_at >= self.cooldown:
            self.state = BreakerState.HALF_OPEN
            return Admission.PROBE
        return Admission.REJECT

    def success(self) -> None:
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0

    def failure(self, now: float) -> None:
        self.consecutive_failures += 1
        if self.state is BreakerState.HALF_OPEN or self.consecutive_failures >= self.threshold:
            self._open(now)

    def trip(self, now: float) -> None:
        self.consecutive_failures += 1
        self._open(now)

    def abandon_probe(self) -> None:
        """The probe was cancelled without an answer: the next request may probe again."""
        if self.state is BreakerState.HALF_OPEN:
            self.state = BreakerState.OPEN

    def _open(self, now: float) -> None:
        self.state = BreakerState.OPEN
        self.opened_at = now


@dataclass(frozen=True)
class StabilityStatus:
    """What the VJ page shows about Stability. ``last_error`` is plain words, the key redacted."""

    state: Literal["ok", "degraded", "offline"]
    breaker: BreakerState
    last_error: str | None
    credits: float | None
    consecutive_failures: int
    resume_in: float = 0.0  # seconds until requests go out again (a 429 lockout or the open breaker); 0 = now


class Health:
    """The breaker plus what the VJ page shows (last error, credits), fed every outcome by the generator.

    Messages are passed through ``redact`` before they are kept, since error bodies may echo the key.
    """

    def __init__(self, failures: int, cooldown: float, redact: Callable[[str], str]) -> None:
        self.breaker = CircuitBreaker(failures, cooldown)
        self._redact = redact
        self._gen_error: str | None = None
        self._balance_error: str | None = None
        self._balance_kind: FailureKind | None = None
        self._credits: float | None = None

    def generation_failed(self, err: GenerationError, now: float) -> None:
        """Feed one generation's failure to the breaker and the status."""
        if err.kind in _FATAL:
            self.breaker.trip(now)
        elif err.kind in _NEUTRAL:
            self.breaker.success()  # Stability answered: it is up
        else:
            self.breaker.failure(now)
        if err.kind in _SENDER_ONLY:
            self._gen_error = None
        else:
            self._gen_error = self._redact(err.vj_message)

    def generation_succeeded(self) -> None:
        self.breaker.success()
        self._gen_error = None
        if self._balance_kind in _TRANSIENT:  # an image came back: the outage the balance poll saw is over
            self._balance_error = self._balance_kind = None

    def balance_read(self, credits: float) -> None:
        self._credits = credits
        self._balance_error = self._balance_kind = None

    def balance_failed(self, err: GenerationError) -> None:
        self._balance_error = self._redact(err.vj_message)
        self._balance_kind = err.kind

    def status(self, now: float, paused_for: float = 0.0) -> StabilityStatus:
        """``paused_for``: seconds left of the client's 429 pause, shown as part of ``resume_in``."""
        breaker = self.breaker.peek(now)
        last = self._gen_error or self._balance_error
        state: Literal["ok", "degraded", "offline"]
        if breaker is not BreakerState.CLOSED:
            state = "offline"
        elif last or self.breaker.consecutive_failures or paused_for > 0:
            state = "degraded"
        else:
            state = "ok"
        return StabilityStatus(state, breaker, self._redact(last) if last else None, self._credits,
                               self.breaker.consecutive_failures,
                               round(max(paused_for, self.breaker.retry_in(now)), 1))
