"""A camera (webcam, capture card) read through PyAV on the source's own thread.

The device is opened with FFmpeg's capture demuxer for the platform: ``v4l2`` on Linux
(``/dev/video0``), ``avfoundation`` on macOS (``"0"`` or the camera's name) and ``dshow`` on
Windows (``"video=NAME"``; a bare name gets the ``video=`` added). ``input_format`` names another
demuxer; the tests use ``lavfi`` with a ``testsrc2`` graph as a stand-in camera, through the same
code as a real one.

What can go wrong and where it goes, following ``ThreadedSource``:

- no device, no permission, device busy, format unknown to this FFmpeg → ``SourceUnavailable``
  ("no camera at /dev/video0: No such file or directory"), tried again every ``retry_s``, so a
  camera plugged in mid-show is picked up;
- the device vanishing mid-stream → PyAV's error propagates, the base class shows "error ...
  retrying" and reopens;
- one corrupt frame (USB webcams sending MJPEG do this now and then) → skipped; it is not worth
  dropping the camera for ``retry_s``.

A camera that stalls without erroring (still plugged in, sending nothing) blocks the read in the
driver: FFmpeg's capture demuxers do not check an interrupt while waiting, so no read timeout
helps there. ``close()`` then returns after its join timeout and the daemon thread ends with the
process.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.container import InputContainer
from av.packet import Packet
from av.video.stream import VideoStream

from engine.inputs.source import RETRY_S, SourceUnavailable, ThreadedSource

log = logging.getLogger(__name__)

DEV = Path("/dev")

# avfoundation's default rate is NTSC's 29.97, which many Mac cameras (the built-in FaceTime ones
# among them) refuse outright; 30 is what they offer.
AVFOUNDATION_FPS = 30.0


def default_format(platform: str = sys.platform) -> str:
    """FFmpeg's capture demuxer for cameras on ``platform`` (``sys.platform``'s spelling)."""
    if platform == "darwin":
        return "avfoundation"
    if platform == "win32":
        return "dshow"
    return "v4l2"


@dataclass(frozen=True)
class OpenArgs:
    """What ``av.open`` gets for one camera: the device as the demuxer spells it, the demuxer, its options."""

    file: str
    format: str
    options: Mapping[str, str]


def open_args(device: str, size: tuple[int, int] = (0, 0), fps: float = 0.0, input_format: str = "",
              options: Mapping[str, str] | None = None, platform: str = sys.platform) -> OpenArgs:
    """The ``av.open`` arguments for ``device``; zero ``size`` / ``fps`` leave the device's own choice."""
    fmt = input_format or default_format(platform)
    opts: dict[str, str] = {}
    if size != (0, 0):
        opts["video_size"] = f"{size[0]}x{size[1]}"
    if fps > 0:
        opts["framerate"] = f"{fps:g}"
    elif fmt == "avfoundation":
        opts["framerate"] = f"{AVFOUNDATION_FPS:g}"
    opts.update(options or {})
    file = device
    if fmt == "dshow" and not device.startswith("video="):
        file = f"video={device}"
    return OpenArgs(file, fmt, opts)


class CameraSource(ThreadedSource):
    """A camera as a live input named ``camera:<device>``; frames are RGBA (h, w, 4) uint8, top row first.

    ``options`` go to the demuxer as they are, after ``video_size`` / ``framerate``. USB webcams
    usually deliver HD at full rate only as MJPEG: ``{"input_format": "mjpeg"}`` on Linux,
    ``{"vcodec": "mjpeg"}`` on Windows.
    """

    def __init__(self, device: str, size: tuple[int, int] = (0, 0), fps: float = 0.0, input_format: str = "",
                 retry_s: float = RETRY_S, options: Mapping[str, str] | None = None) -> None:
        self.device = device
        self.args = open_args(device, size, fps, input_format, options)
        self._container: InputContainer | None = None
        self._packets: Iterator[Packet[VideoStream]] = iter(())
        # Set before the base class starts the thread, which calls _open at once.
        super().__init__(f"camera:{device}", retry_s)

    def _open(self) -> str:
        try:
            container = av.open(self.args.file, format=self.args.format, options=dict(self.args.options))
        except (av.FFmpegError, OSError, ValueError) as err:
            # PyAV's str() adds FFmpeg's last logged error, which may come from another thread's
            # call; strerror is this call's own reason.
            log.debug("camera %s: %s", self.device, err)
            reason = err.strerror if isinstance(err, av.FFmpegError) and err.strerror else str(err)
            raise SourceUnavailable(f"no camera at {self.device}: {reason}") from err
        if not container.streams.video:
            container.close()
            raise SourceUnavailable(f"no camera at {self.device}: no video stream")
        stream = container.streams.video[0]
        self._container = container
        self._packets = container.demux(stream)
        return _describe(stream, self.args.format)

    def _read(self) -> np.ndarray | None:
        packet = next(self._packets, None)
        if packet is None:
            raise EOFError("the camera stopped sending")
        try:
            frames = packet.decode()
        except av.InvalidDataError as err:
            log.debug("camera %s: skipped a corrupt frame: %s", self.device, err)
            return None
        if not frames:
            return None
        return frames[-1].to_ndarray(format="rgba")

    def _close(self) -> None:
        container, self._container = self._container, None
        self._packets = iter(())
        if container is not None:
            container.close()


def _describe(stream: VideoStream, fmt: str) -> str:
    """The "on" line: "1280x720 mjpeg 30 fps (v4l2)"; raw formats by pixel format ("yuyv422")."""
    ctx = stream.codec_context
    kind = ctx.name if ctx.name not in ("rawvideo", "wrapped_avframe") else (ctx.pix_fmt or ctx.name)
    rate = stream.average_rate or stream.guessed_rate
    fps = f" {float(rate):g} fps" if rate else ""
    return f"{ctx.width}x{ctx.height} {kind}{fps} ({fmt})"


def list_cameras(dev: Path = DEV, platform: str = sys.platform) -> list[str]:
    """The camera devices this machine has, as ``CameraSource`` takes them.

    Linux: the ``/dev/video*`` nodes in number order (video2 before video10). A USB webcam often
    has two, the second for metadata only; that one opens as "unavailable". Elsewhere: what
    FFmpeg's device list gives for the platform's demuxer (``dshow`` has one, as ``video=NAME``
    with the camera's friendly name); ``avfoundation`` has none (it only prints its devices to the
    log), so macOS gets an empty list and its cameras are opened as ``"0"``, ``"1"`` or by name.
    """
    if platform not in ("darwin", "win32"):
        nodes = [p.name for p in dev.glob("video*") if re.fullmatch(r"video\d+", p.name)]
        return [str(dev / n) for n in sorted(nodes, key=lambda n: int(n[5:]))]
    fmt = default_format(platform)
    try:
        devices = av.device.enumerate_input_devices(fmt)
    except (av.FFmpegError, OSError, ValueError) as err:
        log.debug("cameras: %s cannot list its devices: %s", fmt, err)
        return []
    found = [d.description or d.name for d in devices if "video" in d.media_types]
    return [f"video={name}" for name in found] if fmt == "dshow" else found
