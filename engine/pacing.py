"""Frame pacing and frame statistics, with time injected so tests never sleep."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class FramePacer:
    """Keeps a steady cadence: each frame has a deadline one period after the last.

    Deadlines advance by whole periods, so a late frame does not shift every later
    one; after a stall longer than a period the schedule restarts from now instead
    of rushing to catch up. ``fps <= 0`` never waits (vsync or a benchmark paces).
    """

    def __init__(
        self,
        fps: float,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.period = 1.0 / fps if fps > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._deadline: float | None = None

    @property
    def deadline(self) -> float | None:
        """When the next frame is due (None before the first frame or when unpaced)."""
        return self._deadline

    def wait(self) -> None:
        if self.period <= 0:
            return
        now = self._clock()
        if self._deadline is None:
            self._deadline = now + self.period
            return
        if now < self._deadline:
            self._sleep(self._deadline - now)
            self._deadline += self.period
        elif now - self._deadline > self.period:
            self._deadline = now + self.period
        else:
            self._deadline += self.period


@dataclass(frozen=True)
class FrameStats:
    fps: float
    frame_ms: float
    p99_ms: float


class FrameTimer:
    """Rolling frame-interval statistics over the last ``window`` frames."""

    def __init__(self, window: int = 240) -> None:
        self._intervals: deque[float] = deque(maxlen=window)
        self._last: float | None = None

    def tick(self, now: float) -> None:
        if self._last is not None:
            self._intervals.append(now - self._last)
        self._last = now

    def stats(self) -> FrameStats:
        if not self._intervals:
            return FrameStats(0.0, 0.0, 0.0)
        ordered = sorted(self._intervals)
        mean = sum(ordered) / len(ordered)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        return FrameStats(1.0 / mean if mean > 0 else 0.0, ordered[len(ordered) // 2] * 1000, p99 * 1000)
