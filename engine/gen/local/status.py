"""What the VJ (page and HUD) sees of the local model: its state, load progress, device, memory, speed.

Pure: no torch. The worker and the generator fill a ``LocalStatus``; ``backstage.control`` turns it
into the page's backend part and the HUD's one line.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from enum import StrEnum


class LocalState(StrEnum):
    LOADING = "loading"  # reading weights onto the device (the show paints offline meanwhile)
    WARMING = "warming"  # one image so the first audience image has no compile stall
    READY = "ready"
    FAILED = "failed"  # the model cannot be used; ``message`` says why (offline images meanwhile)
    CLOSED = "closed"


@dataclass(frozen=True)
class LocalStatus:
    """One look at the local backend, as the VJ page and the HUD show it."""

    state: LocalState
    progress: float  # of the load, 0..1
    line: str  # in plain words: "loading 40%: unet", "ready", "failed: <why>"
    model: str
    device: str  # "cuda float16", "cpu float32"; "" until known
    memory_mb: float
    images_per_s: float  # while generating, over the last images; 0 before the first
    last_error: str | None  # the last generation's failure, plain words
    load_s: float | None  # seconds the last load (and warm-up) took

    @property
    def page_status(self) -> str:
        """The page's own three words: ready is ok, loading or warming is degraded, failed is offline."""
        if self.state is LocalState.READY:
            return "ok" if self.last_error is None else "degraded"
        return "degraded" if self.state in (LocalState.LOADING, LocalState.WARMING) else "offline"

    def summary(self) -> str:
        """The HUD's words after "images: local"."""
        if self.state is LocalState.READY:
            speed = f", {self.images_per_s:.2f} images/s" if self.images_per_s > 0 else ""
            problem = f"   ! {self.last_error}" if self.last_error else ""
            return f"ready   {self.model} on {self.device}, {self.memory_mb:.0f} MB{speed}{problem}"
        if self.state is LocalState.FAILED:
            return f"failed (offline images)   ! {self.line}"
        return f"{self.line} (offline images meanwhile)"


class RateMeter:
    """Images per second of generating time, over the last ``keep`` jobs (idle time does not count)."""

    def __init__(self, keep: int = 20) -> None:
        self._jobs: deque[tuple[int, float]] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, images: int, seconds: float) -> None:
        with self._lock:
            self._jobs.append((images, max(seconds, 1e-6)))

    def rate(self) -> float:
        with self._lock:
            images = sum(n for n, _ in self._jobs)
            seconds = sum(s for _, s in self._jobs)
        return images / seconds if seconds > 0 else 0.0
