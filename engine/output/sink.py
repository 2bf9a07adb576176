"""What every output shares: the frame handed out, the sink's contract, and its state for the VJ.

The render thread reads program frames back asynchronously (engine/output/readback.py) and hands
each one to every sink with ``offer()``, which must return at once: a sink keeps only the newest
frame in a one-slot mailbox and sends it from a thread of its own. A slow or vanished receiver
therefore drops its own frames (counted in ``dropped``), never the show's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputFrame:
    """One program frame: ``pixels`` (h, w, 4) uint8 RGBA, top row first, read-only (possibly a view with a
    negative row stride: a sink that needs C-contiguous memory copies it on its own thread); ``time``: show
    wall time (s, the drivers' time.perf_counter clock) when it was drawn; ``index``: the show's frame number."""

    pixels: np.ndarray
    time: float
    index: int

    @property
    def size(self) -> tuple[int, int]:
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


@dataclass(frozen=True)
class OutputState:
    """One output as the HUD and the VJ page show it; crosses to the backstage process whole."""

    name: str  # "ndi", "virtualcam", "syphon", "spout", "record"
    state: str  # "off", "starting", "on", "unavailable", "error"
    detail: str = ""  # one line a person reads: "NDI 'Stagecraft' 1920x1080@60", "no NDI runtime: ..."
    receivers: int = -1  # connected receivers where the output can tell, else -1
    frames: int = 0  # frames sent (or encoded)
    dropped: int = 0  # frames dropped because the sink was still busy with an older one
    seconds: float = 0.0  # recording: seconds recorded so far
    bytes: int = 0  # recording: file size so far
    file: str = ""  # recording: the file being (or last) written


class Sink(Protocol):
    """An output fed by the render thread. ``offer`` never blocks; the rest may be slow (not on the render thread)."""

    name: str

    def offer(self, frame: OutputFrame) -> None: ...

    def state(self) -> OutputState: ...

    def close(self) -> None: ...


class Mailbox:
    """A one-slot mailbox: the newest frame replaces an unsent one (counted as dropped)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: OutputFrame | None = None
        self._closed = False
        self.dropped = 0

    def put(self, frame: OutputFrame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify()

    def take(self, timeout: float | None = None) -> OutputFrame | None:
        """The newest frame, waiting up to ``timeout`` s; None on timeout or once closed."""
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class ThreadedSink:
    """A sink that sends from its own thread: subclasses implement ``_open``, ``_send`` and ``_close``.

    ``_open`` runs on the sink's thread (a slow library load or a connection never touches the render
    thread). Any exception from it marks the sink "unavailable" (a missing library or runtime) or
    "error"; from ``_send`` it is "error" with the reason, and the sink stops sending: never a crash.
    """

    name = "sink"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._box = Mailbox()
        self._lock = threading.Lock()
        self._state = OutputState(self.name, "starting")
        self.frames = 0
        self._thread = threading.Thread(target=self._run, name=f"output-{self.name}", daemon=True)
        self._thread.start()

    # --- for subclasses ---
    def _open(self) -> str:
        """Connect; return the detail line for the "on" state. Raise ``Unavailable`` when the library is missing."""
        raise NotImplementedError

    def _send(self, frame: OutputFrame) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Release what ``_open`` made (called on the sink's thread)."""

    def _receivers(self) -> int:
        return -1

    # --- the contract ---
    def offer(self, frame: OutputFrame) -> None:
        self._box.put(frame)

    def state(self) -> OutputState:
        with self._lock:
            s = self._state
        if s.state != "on":
            return OutputState(s.name, s.state, s.detail, -1, self.frames, self._box.dropped)
        return OutputState(s.name, s.state, s.detail, self._receivers(), self.frames, self._box.dropped)

    def close(self, timeout: float = 2.0) -> None:
        self._box.close()
        self._thread.join(timeout)

    def _set(self, state: str, detail: str) -> None:
        with self._lock:
            self._state = OutputState(self.name, state, detail)

    def _run(self) -> None:
        try:
            detail = self._open()
        except Unavailable as err:
            self._set("unavailable", str(err))
            self._drain()
            return
        except Exception as err:
            self._set("error", f"{type(err).__name__}: {err}")
            self._drain()
            return
        self._set("on", detail)
        try:
            while True:
                frame = self._box.take(timeout=0.5)
                if frame is None:
                    if self._box.closed:
                        break
                    continue
                self._send(frame)
                self.frames += 1
        except Exception as err:
            self._set("error", f"stopped: {type(err).__name__}: {err}")
            self._drain()
        finally:
            try:
                self._close()
            except Exception as err:  # closing is best effort: the show goes on either way
                log.warning("%s output: closing failed: %s: %s", self.name, type(err).__name__, err)

    def _drain(self) -> None:
        """After a failure: keep taking frames (so nothing piles up) until closed."""
        while not self._box.closed:
            self._box.take(timeout=0.5)


class Unavailable(Exception):
    """The output cannot run on this machine (library, runtime or device missing): a status line, not a crash."""
