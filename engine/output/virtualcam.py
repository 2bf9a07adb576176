"""Program out as a webcam: v4l2loopback on Linux, OBS's virtual camera on macOS and Windows (pyvirtualcam).

pyvirtualcam (https://github.com/letmaik/pyvirtualcam) opens ``Camera(width, height, fps, fmt=..., device=...)``
and takes one ``(h, w, channels)`` uint8 frame per ``send``. Two of its rules shape this sink:

- Which pixel formats a backend takes is fixed in its native code: only Unity Capture (Windows) takes RGBA;
  v4l2loopback and OBS take RGB (and YUV formats), and raise ``RuntimeError`` for RGBA. There is no way to ask a
  backend before opening it, so ``_open`` asks for RGBA and falls back to RGB, dropping alpha in ``_send``. (On a
  Windows machine with both OBS and Unity Capture installed this prefers Unity Capture; name the device to choose.)
- A camera's size is fixed once opened, so a program frame of another size is letterboxed into it.

The show already paces frames, so ``cam.sleep_until_next_frame()`` is never called: the camera sends what it gets.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import numpy as np

from engine.output.sink import OutputFrame, ThreadedSink, Unavailable
from engine.render.fit import screen_rect

# Read when the sink opens, so tests can run another platform's hint.
PLATFORM = sys.platform

LINUX_HINT = "load v4l2loopback: sudo modprobe v4l2loopback devices=1 exclusive_caps=1"
OBS_HINT = "install OBS and start its virtual camera once"


def device_hint(platform: str) -> str:
    """What a person does on ``platform`` (a ``sys.platform`` value) to get a virtual camera device."""
    return LINUX_HINT if platform.startswith("linux") else OBS_HINT


class Letterbox:
    """Fits frames of any size into a fixed ``size`` (w, h): nearest-neighbour scaling, black bars, never stretched.

    Nearest-neighbour (numpy fancy indexing) because it costs one gather per frame and no extra library; a size
    mismatch is a misconfiguration to notice, not a look to polish. The sample grid is built once per source size.
    """

    def __init__(self, size: tuple[int, int], channels: int) -> None:
        self.size = size
        self.channels = channels
        self._source: tuple[int, int] | None = None
        self._canvas = np.zeros((size[1], size[0], channels), np.uint8)
        self._rows = np.zeros(0, np.intp)
        self._cols = np.zeros(0, np.intp)
        self._at = (0, 0)

    def fit(self, pixels: np.ndarray) -> np.ndarray:
        """``pixels`` (h, w, channels) as a C-contiguous (H, W, channels) frame of this box's size."""
        h, w = int(pixels.shape[0]), int(pixels.shape[1])
        if (w, h) == self.size:
            return np.ascontiguousarray(pixels)
        if self._source != (w, h):
            self._plan(w, h)
        x0, y0 = self._at
        self._canvas[y0:y0 + len(self._rows), x0:x0 + len(self._cols)] = pixels[self._rows[:, None], self._cols]
        return self._canvas

    def _plan(self, w: int, h: int) -> None:
        cw, ch = self.size
        x, y, fw, fh = screen_rect((cw, ch), (w, h), "letterbox")
        nw, nh = max(1, min(cw, round(fw))), max(1, min(ch, round(fh)))
        self._at = (min(cw - nw, max(0, round(x))), min(ch - nh, max(0, round(y))))
        # The centre of each output pixel, mapped back into the source.
        self._cols = np.minimum(((np.arange(nw) + 0.5) * w / nw).astype(np.intp), w - 1)
        self._rows = np.minimum(((np.arange(nh) + 0.5) * h / nh).astype(np.intp), h - 1)
        self._canvas[:] = 0  # the bars of an earlier source size are not this one's
        self._source = (w, h)


class VirtualCamSink(ThreadedSink):
    """The program as a virtual webcam of ``size`` (w, h) at ``fps``; ``device`` picks one ("" = the first free)."""

    name = "virtualcam"

    def __init__(self, size: tuple[int, int], fps: float, device: str = "") -> None:
        self.size = size
        self.fps = fps
        self.device = device
        self._cam: Any = None
        self._alpha = False
        self._fit = Letterbox(size, 3)
        super().__init__()

    def _open(self) -> str:
        try:
            pyvirtualcam: Any = importlib.import_module("pyvirtualcam")
        except ImportError as err:
            raise Unavailable("no pyvirtualcam: pip install pyvirtualcam") from err
        fmt = pyvirtualcam.PixelFormat
        w, h = self.size
        reason = ""
        for pixel_format in (fmt.RGBA, fmt.RGB):
            try:
                cam = pyvirtualcam.Camera(w, h, self.fps, fmt=pixel_format, device=self.device or None)
            except RuntimeError as err:  # every backend refused; the RGB attempt's reasons are the real ones
                reason = "; ".join(line.strip() for line in str(err).splitlines() if line.strip()).rstrip(".")
                continue
            self._cam = cam
            self._alpha = pixel_format == fmt.RGBA
            self._fit = Letterbox(self.size, 4 if self._alpha else 3)
            return f"virtual camera {cam.device} {w}x{h}@{self.fps:g}"
        raise Unavailable(f"no virtual camera: {reason}; {device_hint(PLATFORM)}")

    def _send(self, frame: OutputFrame) -> None:
        pixels = frame.pixels if self._alpha else frame.pixels[:, :, :3]
        self._cam.send(self._fit.fit(pixels))

    def _close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            cam.close()
