"""A live video source read by a thread of its own; the render thread takes only its newest frame.

A source (camera, NDI receiver) implements ``_open``, ``_read`` and ``_close``. The thread keeps the
newest frame with a sequence number; ``latest()`` is a lock and two reads, safe for the render
thread. A source that cannot open (no library, no device, no sender) says so in its state and
tries again every ``retry_s``: a camera plugged in mid-show, or a sender that comes up late, is
picked up without a restart. Nothing here ever raises into the show.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

RETRY_S = 2.0


@dataclass(frozen=True)
class InputState:
    """One live input as the HUD and the VJ page show it."""

    name: str  # the source's name as the VJ picks it: "camera:/dev/video0", "ndi:STUDIO (Cam 1)"
    state: str  # "off", "starting", "on", "unavailable", "error"
    detail: str = ""
    frames: int = 0
    size: tuple[int, int] = (0, 0)


class SourceUnavailable(Exception):
    """The source cannot run here (library, runtime, device or sender missing): a status line, then a retry."""


class ThreadedSource:
    """Reads frames on its own thread; ``latest()`` gives (sequence, RGBA (h, w, 4) uint8 top first, or None).

    Frames larger than ``max_size`` on their longest side are scaled down here, on the source's
    thread, so the render thread only ever copies a bounded picture to the GPU.
    """

    max_size = 0  # longest side of the frames handed out; 0 = as they come

    def __init__(self, name: str, retry_s: float = RETRY_S, sleep: Callable[[float], None] = time.sleep) -> None:
        self.name = name
        self.retry_s = retry_s
        self._sleep = sleep
        self._lock = threading.Lock()
        self._seq = 0
        self._frame: np.ndarray | None = None
        self._state = InputState(name, "starting")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"input-{name}", daemon=True)
        self._thread.start()

    # --- for subclasses ---
    def _open(self) -> str:
        """Connect; return the detail line for "on". Raise SourceUnavailable when it cannot run here."""
        raise NotImplementedError

    def _read(self) -> np.ndarray | None:
        """The next frame as RGBA (h, w, 4) uint8, top row first, blocking; None when none came this time."""
        raise NotImplementedError

    def _close(self) -> None:
        """Release what ``_open`` made."""

    # --- for the render thread ---
    def latest(self) -> tuple[int, np.ndarray | None]:
        with self._lock:
            return self._seq, self._frame

    def state(self) -> InputState:
        with self._lock:
            return self._state

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    # --- the thread ---
    def _set(self, state: str, detail: str, size: tuple[int, int] = (0, 0)) -> None:
        with self._lock:
            self._state = InputState(self.name, state, detail, self._seq, size)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                detail = self._open()
            except SourceUnavailable as err:
                self._set("unavailable", str(err))
                self._stop.wait(self.retry_s)
                continue
            except Exception as err:
                self._set("error", f"{type(err).__name__}: {err}")
                self._stop.wait(self.retry_s)
                continue
            self._set("on", detail)
            try:
                self._pump(detail)
            except Exception as err:
                log.warning("input %s: %s: %s", self.name, type(err).__name__, err)
                self._set("error", f"lost: {type(err).__name__}: {err}; retrying")
            finally:
                try:
                    self._close()
                except Exception as err:
                    log.warning("input %s: closing failed: %s", self.name, err)
            self._stop.wait(self.retry_s)

    def _pump(self, detail: str) -> None:
        while not self._stop.is_set():
            frame = self._read()
            if frame is None:
                continue
            frame = _fit(frame, self.max_size)
            frame.flags.writeable = False
            with self._lock:
                self._seq += 1
                self._frame = frame
                h, w = frame.shape[:2]
                if self._state.size != (w, h) or self._seq % 30 == 0:
                    self._state = InputState(self.name, "on", detail, self._seq, (w, h))


def _fit(frame: np.ndarray, longest: int) -> np.ndarray:
    """``frame`` scaled down (bilinear) so that its longest side is at most ``longest`` (0: unchanged)."""
    h, w = frame.shape[:2]
    if longest <= 0 or max(w, h) <= longest:
        return frame
    from PIL import Image

    scale = longest / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR))
