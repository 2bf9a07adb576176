"""Program out as an NDI source on the LAN (OBS, Resolume, vMix, a streaming PC pick it up by name).

The NDI 6 runtime comes inside the ``cyndilib`` wheel, imported on the sink's own thread when it starts:
without it the sink is "unavailable" with the reason, and the show goes on.

cyndilib fixes a sender's resolution, pixel format and frame rate while it is open, so the sender opens
with the first frame and, when the program's size changes, closes and opens again under the same name:
receivers see the source vanish for about a second and reconnect by themselves. Frames go out as soon as
they arrive (``clock_video=False``): the render loop paces the show, NDI only labels the stream with
``fps``.

With ``alpha=False`` frames go out as RGBX, which NDI sends without an alpha plane: every receiver sees an
opaque picture, whatever the alpha bytes hold. With ``alpha=True`` they go out as RGBA (straight alpha, as
the program renders it).
"""

from __future__ import annotations

import importlib
import threading
from fractions import Fraction
from typing import Any

import numpy as np

from engine.output.sink import OutputFrame, ThreadedSink, Unavailable


def load_cyndilib() -> Any:
    """The cyndilib module (Any: it ships no typing marker), or ``Unavailable`` saying how to get it."""
    try:
        return importlib.import_module("cyndilib")
    except (ImportError, OSError) as err:  # OSError: the wheel's libndi failed to load
        raise Unavailable(f"no NDI library: pip install cyndilib ({type(err).__name__}: {err})") from err


class NdiSink(ThreadedSink):
    """Sends the program as the NDI source "HOST (source_name)"."""

    name = "ndi"

    def __init__(self, source_name: str, alpha: bool = False, *, fps: int | Fraction = 60) -> None:
        # Set before the base class starts the sink's thread, which calls _open at once.
        self.source_name = source_name
        self.alpha = alpha
        self.fps = Fraction(fps)
        self._lib: Any = None
        self._sender: Any = None  # open while _size is set
        self._size: tuple[int, int] | None = None
        self._scratch = np.empty((0, 0, 4), np.uint8)
        self._sender_lock = threading.Lock()  # _receivers() runs on other threads than a reopen
        super().__init__()

    def _open(self) -> str:
        self._lib = load_cyndilib()
        return f'NDI "{self.source_name}" waiting for the first frame'

    def _send(self, frame: OutputFrame) -> None:
        if frame.size != self._size:
            self._reopen(frame.size)
        # cyndilib takes only writable buffers and the frame is read-only: one copy of its pixels.
        np.copyto(self._scratch, frame.pixels)
        self._sender.write_video_async(self._scratch.reshape(-1))

    def _reopen(self, size: tuple[int, int]) -> None:
        """Open the sender for frames of ``size``, closing one open at another size."""
        lib = self._lib
        w, h = size
        with self._sender_lock:
            self._shut()
            frame = lib.VideoSendFrame()
            frame.set_resolution(w, h)
            frame.set_frame_rate(self.fps)
            frame.set_fourcc(lib.FourCC.RGBA if self.alpha else lib.FourCC.RGBX)
            sender = lib.Sender(self.source_name, clock_video=False)
            sender.set_video_frame(frame)
            sender.open()
            self._sender, self._size = sender, size
        self._scratch = np.empty((h, w, 4), np.uint8)
        alpha = " with alpha" if self.alpha else ""
        self._set("on", f'NDI "{sender.name}" {w}x{h}@{float(self.fps):.4g}{alpha}')

    def _shut(self) -> None:
        sender, self._sender, self._size = self._sender, None, None
        if sender is not None:
            sender.close()  # waits for the frame in flight (async send) before freeing its buffer

    def _close(self) -> None:
        with self._sender_lock:
            self._shut()

    def _receivers(self) -> int:
        """Receivers connected now; 0 while no sender is open (none can be). Never waits for a reopen in
        progress (state() may be asked on the render thread): that counts as 0 too."""
        if not self._sender_lock.acquire(blocking=False):
            return 0
        try:
            return 0 if self._sender is None else int(self._sender.get_num_connections(0.0))
        finally:
            self._sender_lock.release()
