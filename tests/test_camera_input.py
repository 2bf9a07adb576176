"""Camera input through PyAV: a lavfi ``testsrc2`` graph stands in for the camera, on the camera's own code path.

The stand-in graph ends in ``realtime`` so it delivers at 30 fps as a camera does (bare lavfi renders as fast
as it is read). Option plumbing for real devices (v4l2, avfoundation, dshow) is tested on the function that
builds ``av.open``'s arguments; no test here needs a webcam.
"""

from __future__ import annotations

import errno
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import av
import numpy as np
import pytest

from engine.inputs import camera
from engine.inputs.camera import CameraSource, OpenArgs, list_cameras, open_args
from engine.inputs.source import InputState
from tests.fakes import wait_for

TESTSRC = "testsrc2=size=320x240:rate=30"
STAND_IN = f"{TESTSRC},realtime"
WAIT_S = 5.0

# testsrc2's six bars, left to right, as RGB.
BARS = [(255, 0, 0), (0, 255, 0), (255, 255, 0), (0, 0, 255), (255, 0, 255), (0, 255, 255)]

S = TypeVar("S", bound=CameraSource)


class RecordingCamera(CameraSource):
    """A camera whose opens are counted and whose state changes are kept, in order."""

    def __init__(self, device: str, **kwargs: Any) -> None:
        self.opens = 0
        self.changes: list[InputState] = []
        super().__init__(device, **kwargs)

    def _open(self) -> str:
        self.opens += 1
        return super()._open()

    def _set(self, state: str, detail: str, size: tuple[int, int] = (0, 0)) -> None:
        super()._set(state, detail, size)
        self.changes.append(self.state())


class VanishingCamera(RecordingCamera):
    """The stand-in camera unplugged after ``frames`` frames of its first session: PyAV's ENODEV, as v4l2 gives it."""

    def __init__(self, device: str, frames: int, **kwargs: Any) -> None:
        self.vanish_after = frames
        self.read = 0
        super().__init__(device, **kwargs)

    def _read(self) -> np.ndarray | None:
        if self.opens == 1 and self.read == self.vanish_after:
            av.error.err_check(-errno.ENODEV)
        frame = super()._read()
        self.read += frame is not None
        return frame


@pytest.fixture
def start() -> Iterator[Callable[[S], S]]:
    """Keeps each source a test starts and closes them all afterwards."""
    started: list[CameraSource] = []

    def keep(source: S) -> S:
        started.append(source)
        return source

    yield keep
    for source in started:
        source.close()


def mjpeg_stream(colours: list[int], corrupt: bytes = b"\xff\xd8\xff\xd9") -> bytes:
    """Grey 64x48 JPEG frames, one per colour, each but the last followed by a corrupt one (start and end only)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mjpeg") as out:
        stream = out.add_stream("mjpeg", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        packets = []
        for c in colours:
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), c, np.uint8), format="rgb24")
            packets += [bytes(p) for p in stream.encode(frame)]
        packets += [bytes(p) for p in stream.encode(None)]
    return corrupt.join(packets)


def decoded_testsrc2(index: int) -> np.ndarray:
    """Frame ``index`` of the stand-in graph, decoded directly with PyAV, as RGBA."""
    with av.open(TESTSRC, format="lavfi") as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgba")
    raise AssertionError(f"testsrc2 ended before frame {index}")


def assert_testsrc2_bars(frame: np.ndarray) -> None:
    """Each of the six bars, read down its middle, is mostly its colour (the moving parts cover only a little)."""
    w = frame.shape[1]
    for i, rgb in enumerate(BARS):
        x = int((i + 0.5) * w / len(BARS))
        median = np.median(frame[:, x - 4 : x + 5, :3].reshape(-1, 3), axis=0)
        assert np.abs(median - rgb).max() <= 16, f"bar {i} at x={x} is {median}, not {rgb}"


def wait_frames(source: CameraSource, after: int, count: int = 1) -> tuple[int, np.ndarray]:
    """Wait until ``source`` has a frame numbered at least ``after + count``; return it."""
    wait_for(lambda: source.latest()[0] >= after + count, WAIT_S, f"{source.name}: frame {after + count}")
    seq, frame = source.latest()
    assert frame is not None
    return seq, frame


# --- the stand-in camera -----------------------------------------------------------------
def test_stand_in_camera_comes_on(start: Callable[[CameraSource], CameraSource]) -> None:
    """The lavfi stand-in reaches "on" with a detail line giving its size and rate."""
    source = start(CameraSource(STAND_IN, input_format="lavfi"))
    wait_for(lambda: source.state().state == "on", WAIT_S, "camera on")
    state = source.state()
    assert state.name == f"camera:{STAND_IN}"
    assert state.detail == "320x240 yuv420p 30 fps (lavfi)"


def test_frames_arrive_numbered_as_rgba(start: Callable[[CameraSource], CameraSource]) -> None:
    """``latest()`` gives read-only RGBA (240, 320, 4) uint8 frames with sequence numbers that grow."""
    source = start(CameraSource(STAND_IN, input_format="lavfi"))
    first, frame = wait_frames(source, 0)
    second, _ = wait_frames(source, first)
    assert second > first
    assert frame.shape == (240, 320, 4) and frame.dtype == np.uint8
    assert not frame.flags.writeable
    assert (frame[..., 3] == 255).all()
    assert source.state().size == (320, 240)


def test_picture_is_testsrc2(start: Callable[[CameraSource], CameraSource]) -> None:
    """Frame n from the source is testsrc2's frame n - 1, pixel for pixel, colour bars and all."""
    source = start(CameraSource(STAND_IN, input_format="lavfi"))
    seq, frame = wait_frames(source, 0, 3)
    assert np.array_equal(frame, decoded_testsrc2(seq - 1))
    assert_testsrc2_bars(frame)


# --- arguments for real devices ------------------------------------------------------------
def test_v4l2_gets_size_and_rate() -> None:
    """On Linux the device is opened with v4l2, ``video_size`` and ``framerate``."""
    args = open_args("/dev/video0", (1280, 720), 29.97, platform="linux")
    assert args == OpenArgs("/dev/video0", "v4l2", {"video_size": "1280x720", "framerate": "29.97"})


def test_unset_size_and_rate_leave_the_device_its_own() -> None:
    """No size and no rate: no options, so the driver keeps its current mode."""
    assert open_args("/dev/video0", platform="linux") == OpenArgs("/dev/video0", "v4l2", {})


def test_extra_options_ask_for_mjpeg() -> None:
    """Extra options (MJPEG for HD at full rate) go to the demuxer after size and rate."""
    args = open_args("/dev/video0", (1920, 1080), 30, options={"input_format": "mjpeg"}, platform="linux")
    assert args.options == {"video_size": "1920x1080", "framerate": "30", "input_format": "mjpeg"}


def test_macos_uses_avfoundation_at_30_fps() -> None:
    """On macOS: avfoundation, the device as given, 30 fps unless asked (its default 29.97 is often refused)."""
    assert open_args("0", platform="darwin") == OpenArgs("0", "avfoundation", {"framerate": "30"})
    assert open_args("0", fps=60, platform="darwin").options == {"framerate": "60"}


def test_windows_uses_dshow_with_video_prefix() -> None:
    """On Windows: dshow, and a bare camera name gets ``video=``; one that has it keeps it as it is."""
    assert open_args("Logitech C920", platform="win32") == OpenArgs("video=Logitech C920", "dshow", {})
    assert open_args("video=Logitech C920", platform="win32").file == "video=Logitech C920"


def test_given_input_format_wins() -> None:
    """An explicit ``input_format`` replaces the platform's demuxer."""
    assert open_args(TESTSRC, input_format="lavfi", platform="win32") == OpenArgs(TESTSRC, "lavfi", {})


def test_camera_source_opens_with_its_arguments(monkeypatch: pytest.MonkeyPatch,
                                                start: Callable[[CameraSource], CameraSource]) -> None:
    """``CameraSource`` hands ``av.open`` the device, the demuxer and the size and rate options."""
    calls: list[tuple[Any, ...]] = []

    def fake_open(file: str, format: str, options: dict[str, str]) -> Any:
        calls.append((file, format, options))
        raise av.error.FileNotFoundError(errno.ENOENT, "No such file or directory", file)

    monkeypatch.setattr(camera.av, "open", fake_open)
    source = start(CameraSource("/dev/video3", (640, 480), 25, input_format="v4l2", retry_s=10))
    wait_for(lambda: bool(calls), WAIT_S, "av.open called")
    source.close()
    assert calls == [("/dev/video3", "v4l2", {"video_size": "640x480", "framerate": "25"})]


# --- when the camera is missing, goes away, or sends garbage --------------------------------
def test_missing_device_is_unavailable_and_retried(start: Callable[[CameraSource], CameraSource]) -> None:
    """No /dev/video99: "unavailable" naming the device, opened again every ``retry_s``, and closed at once."""
    source = start(RecordingCamera("/dev/video99", input_format="v4l2", retry_s=0.02))
    wait_for(lambda: source.opens >= 3, WAIT_S, "three tries to open")
    state = source.state()
    assert state.state == "unavailable"
    assert state.detail == "no camera at /dev/video99: No such file or directory"
    source.close(timeout=1.0)
    assert not source._thread.is_alive()


def test_vanished_camera_is_reopened(start: Callable[[CameraSource], CameraSource]) -> None:
    """The camera unplugged mid-stream: "error ... retrying", then it is opened again and frames flow on."""
    source = start(VanishingCamera(STAND_IN, frames=4, input_format="lavfi", retry_s=0.05))
    wait_for(lambda: source.opens == 2, WAIT_S, "camera reopened")
    wait_frames(source, 4, 3)
    states = [(s.state, s.detail) for s in source.changes]
    assert states[:3] == [
        ("on", "320x240 yuv420p 30 fps (lavfi)"),
        ("error", "lost: OSError: [Errno 19] No such device; retrying"),
        ("on", "320x240 yuv420p 30 fps (lavfi)"),
    ]
    assert source.changes[1].frames == 4


def test_corrupt_frames_are_skipped(tmp_path: Path, start: Callable[[CameraSource], CameraSource]) -> None:
    """Corrupt MJPEG frames between good ones are dropped without losing the camera; only the end of the stream does."""
    path = tmp_path / "camera.mjpeg"
    path.write_bytes(mjpeg_stream([40, 120, 200]))
    source = start(RecordingCamera(str(path), input_format="mjpeg", retry_s=10))
    wait_for(lambda: source.state().state == "error", WAIT_S, "the stream's end")
    lost = source.state()
    assert lost.detail == "lost: EOFError: the camera stopped sending; retrying"
    assert lost.frames == 3
    _, frame = source.latest()
    assert frame is not None and abs(int(frame[0, 0, 1]) - 200) <= 4


# --- listing cameras -----------------------------------------------------------------------
def test_no_video_nodes_lists_no_cameras(tmp_path: Path) -> None:
    """A /dev with no video nodes lists no cameras."""
    (tmp_path / "null").touch()
    assert list_cameras(tmp_path, platform="linux") == []


def test_video_nodes_listed_in_number_order(tmp_path: Path) -> None:
    """/dev/video* nodes are listed in number order (video2 before video10); other names are not cameras."""
    for name in ("video2", "video10", "video0", "vhci", "video-meta", "null"):
        (tmp_path / name).touch()
    assert list_cameras(tmp_path, platform="linux") == [str(tmp_path / n) for n in ("video0", "video2", "video10")]


def test_this_machine_lists_its_video_nodes() -> None:
    """The real /dev: every entry is a /dev/videoN that exists (none on the CI machines, which have no camera)."""
    found = list_cameras()
    assert all(Path(p).exists() and Path(p).name.startswith("video") for p in found)
    assert found == sorted(found, key=lambda p: int(Path(p).name[5:]))


def test_platform_without_device_list_gives_none() -> None:
    """Where FFmpeg cannot list the platform's cameras (here: no avfoundation at all), the list is empty."""
    assert list_cameras(platform="darwin") == []
