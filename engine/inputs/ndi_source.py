"""An NDI source on the LAN as a live input: found by name, received as RGBA on the input's own thread.

The VJ names a source as NDI lists it, "HOST (Name)", or only the part in brackets. ``_open`` looks for it
for ``find_s`` and raises ``SourceUnavailable`` when it is not there, so ThreadedSource tries again later: a
sender that comes up mid-show is picked up. Once connected, NDI itself reconnects to a sender that restarts
(the sink does so when its size changes); a sender gone for ``lost_s`` ends the connection, and the input
goes back to looking for it.

Frames come through NDI's frame sync, which always holds the newest one: a slow reader skips frames instead
of falling behind. NDI's own decoder turns them into RGBA (RGBX for a source without alpha, shown opaque).
Measured on loopback, its colours sit 1 to 3 levels under the sender's (a neutral grey 128 comes back as
127/127/125): the SDK's doing, and what every NDI receiver shows; decoding UYVY ourselves would be closer
but costs tens of ms a frame at 1080p in numpy."""

from __future__ import annotations

import importlib
import time
from typing import Any

import numpy as np

from engine.inputs.source import RETRY_S, SourceUnavailable, ThreadedSource

FIND_S = 3.0  # how long _open looks for the source
READ_S = 0.5  # _read's wait for a frame
POLL_S = 0.004  # how often _read asks the frame sync for a new frame
LOST_S = 5.0  # no new frame and no connection this long: the sender is gone
RECEIVER_NAME = "Stagecraft"


def load_cyndilib() -> Any:
    """The cyndilib module (Any: it ships no typing marker), or ``SourceUnavailable`` saying how to get it."""
    try:
        return importlib.import_module("cyndilib")
    except (ImportError, OSError) as err:  # OSError: the wheel's libndi failed to load
        raise SourceUnavailable(f"no NDI library: pip install cyndilib ({type(err).__name__}: {err})") from err


def matches(listed: str, wanted: str) -> bool:
    """Whether the NDI name ``listed`` ("HOST (Name)") is the source the VJ named ``wanted``: all of it, or
    the part in brackets."""
    if listed == wanted:
        return True
    _host, bracket, rest = listed.partition(" (")
    return bool(bracket) and rest.endswith(")") and rest[:-1] == wanted


def to_rgba(data: np.ndarray, width: int, height: int, stride: int, fourcc: str) -> np.ndarray:
    """One received frame as RGBA (h, w, 4) uint8, top row first. ``data``: the frame's bytes, rows
    ``stride`` bytes apart; ``fourcc``: "RGBA", "RGBX", "BGRA" or "BGRX". Alpha is 255 for the X formats.
    ``data`` is the caller's to give away: the result may be a view of it."""
    if fourcc not in ("RGBA", "RGBX", "BGRA", "BGRX"):
        raise ValueError(f"NDI frame in {fourcc}, expected RGBA/RGBX or BGRA/BGRX")
    rows = data[: stride * height].reshape(height, stride)
    pixels = rows[:, : width * 4].reshape(height, width, 4)
    if fourcc.startswith("BGR"):
        pixels = pixels[..., [2, 1, 0, 3]]  # a copy, in RGBA order
    elif stride != width * 4:
        pixels = np.ascontiguousarray(pixels)
    if fourcc.endswith("X"):
        pixels[..., 3] = 255
    return pixels


def list_ndi_sources(timeout: float = 1.0) -> list[str]:
    """The NDI sources seen within ``timeout`` s ("HOST (Name)"); empty without the library."""
    try:
        lib = load_cyndilib()
    except SourceUnavailable:
        return []
    finder = lib.Finder()
    finder.open()
    try:
        time.sleep(timeout)
        return [str(name) for name in finder.get_source_names()]
    finally:
        finder.close()


class NdiSource(ThreadedSource):
    """Receives the NDI source ``source`` as the input "ndi:SOURCE"."""

    def __init__(self, source: str, retry_s: float = RETRY_S, *, find_s: float = FIND_S,
                 lost_s: float = LOST_S) -> None:
        # Set before the base class starts the input's thread, which calls _open at once.
        self.source = source
        self.find_s = find_s
        self.lost_s = lost_s
        self._lib: Any = None
        self._finder: Any = None
        self._receiver: Any = None
        self._video: Any = None  # the frame sync's VideoFrameSync
        self._stamp: tuple[float, float] | None = None  # (timestamp, timecode) of the frame last handed out
        self._last_frame = 0.0
        super().__init__(f"ndi:{source}", retry_s)

    def _open(self) -> str:
        lib = self._lib = load_cyndilib()
        finder = lib.Finder()
        finder.open()
        try:
            found = self._find(finder)
        finally:
            finder.close()  # stops its thread; the found Source stays valid while the finder lives
        if found is None:
            raise SourceUnavailable(f"no NDI source {self.source!r} found")
        receiver = lib.Receiver(color_format=lib.RecvColorFormat.RGBX_RGBA, bandwidth=lib.RecvBandwidth.highest,
                                recv_name=RECEIVER_NAME)
        video = lib.VideoFrameSync()
        receiver.frame_sync.set_video_frame(video)
        receiver.set_source(found)
        self._finder, self._receiver, self._video = finder, receiver, video
        self._stamp, self._last_frame = None, time.monotonic()
        return f'NDI "{found.name}"'

    def _find(self, finder: Any) -> Any:
        """The Source named like ``self.source``, looked for up to ``find_s``; None if absent (or closing)."""
        deadline = time.monotonic() + self.find_s
        while True:
            for name in finder.get_source_names():
                if matches(name, self.source):
                    return finder.get_source(name)
            if time.monotonic() >= deadline or self._stop.wait(0.05):
                return None

    def _read(self) -> np.ndarray | None:
        """The newest frame not handed out yet, polled every POLL_S for up to READ_S; None if none came.

        Polled through NDI's frame sync, never with a blocking ``Receiver.receive``: cyndilib holds the GIL
        for the whole of that call (its timeout, and ~10 ms of decoding a 1080p frame), which would stall the
        render thread. The frame sync decodes on NDI's own threads; a capture is ~15 µs, a copy ~1 ms at 1080p.
        """
        sync, video = self._receiver.frame_sync, self._video
        deadline = time.monotonic() + READ_S
        while True:
            sync.capture_video()
            w, h = video.get_resolution()
            stamp = (video.get_timestamp_posix(), video.get_timecode_posix())
            if w > 0 and h > 0 and stamp != self._stamp:
                break
            now = time.monotonic()
            if now - self._last_frame > self.lost_s and self._receiver.get_num_connections() == 0:
                raise ConnectionError(f"NDI source {self.source!r} gone")
            if now >= deadline or self._stop.wait(POLL_S):
                return None
        self._stamp, self._last_frame = stamp, time.monotonic()
        fourcc = str(self._lib.FourCC(video.get_fourcc()).name)
        stride = int(video.get_line_stride())
        with memoryview(video) as view:  # releasing the view frees NDI's frame
            data = np.frombuffer(view, np.uint8).copy()
        return to_rgba(data, int(w), int(h), stride, fourcc)

    def _close(self) -> None:
        receiver, self._receiver, self._video, self._finder = self._receiver, None, None, None
        if receiver is not None:
            receiver.disconnect()
