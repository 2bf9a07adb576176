"""Virtual camera, Syphon and Spout outputs, each against a stand-in for its library's sender.

None of these can run for real here (no /dev/video*, no macOS, no Windows), so each stand-in mimics the part of
the real library's API the sink uses: the same names and signatures, the same checks on what it is given, and a
record of it. The real pyvirtualcam is used once, for the no-device case this machine really has.
"""

from __future__ import annotations

import enum
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import Any

import numpy as np
import pytest

from engine.output import spout as spout_module
from engine.output import syphon as syphon_module
from engine.output import virtualcam as virtualcam_module
from engine.output.sink import OutputFrame, OutputState, ThreadedSink
from engine.output.spout import GL_RGBA, SpoutSink
from engine.output.syphon import SyphonSink
from engine.output.virtualcam import VirtualCamSink
from tests.fakes import wait_for

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


# --- frames and waiting ---

def make_frame(w: int, h: int, index: int = 0) -> OutputFrame:
    """A read-only RGBA frame, top row first: quadrants red, green / blue, white, alpha varying by row."""
    px = np.zeros((h, w, 4), np.uint8)
    px[: h // 2, : w // 2, :3] = RED
    px[: h // 2, w // 2 :, :3] = GREEN
    px[h // 2 :, : w // 2, :3] = BLUE
    px[h // 2 :, w // 2 :, :3] = WHITE
    px[:, :, 3] = (np.arange(h) % 256)[:, None]
    px.setflags(write=False)
    return OutputFrame(px, time.monotonic(), index)


def settled(sink: ThreadedSink) -> OutputState:
    """The sink's state once its thread has opened (or failed to open) its sender."""
    wait_for(lambda: sink.state().state != "starting", timeout=5.0, what=f"{sink.name} left 'starting'")
    return sink.state()


def assert_state(sink: ThreadedSink, state: str, *detail: str) -> OutputState:
    """The sink settles in ``state`` with a detail line holding each of ``detail``."""
    s = settled(sink)
    assert s.state == state, f"{sink.name}: {s.state} ({s.detail})"
    for part in detail:
        assert part in s.detail, f"{part!r} not in {s.detail!r}"
    return s


@pytest.fixture
def sinks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ThreadedSink]]:
    """Sinks made by the test, closed after it (before its stand-in modules are taken back out)."""
    made: list[ThreadedSink] = []
    yield made
    for sink in made:
        sink.close()


# --- a stand-in for pyvirtualcam (pyvirtualcam/camera.py) ---

class PixelFormat(enum.Enum):
    """pyvirtualcam.PixelFormat: libyuv FourCC codes."""

    RGB = "raw "
    BGR = "24BG"
    RGBA = "ABGR"


class FakeCameraLib:
    """pyvirtualcam's module surface: ``Camera(width, height, fps, *, fmt, device, ...)`` and ``PixelFormat``.

    ``formats`` are what the backend takes (v4l2loopback and OBS: RGB, not RGBA); ``refuse`` makes every open
    fail the way pyvirtualcam does when no backend has a device.
    """

    def __init__(self, formats: tuple[PixelFormat, ...] = (PixelFormat.RGB,), refuse: str = "",
                 send_error: str = "") -> None:
        self.formats = formats
        self.refuse = refuse
        self.send_error = send_error
        self.cameras: list[FakeCamera] = []
        self.attempts: list[PixelFormat] = []

    def module(self) -> types.ModuleType:
        lib = self
        mod = types.ModuleType("pyvirtualcam")
        mod.PixelFormat = PixelFormat  # type: ignore[attr-defined]

        class Camera(FakeCamera):
            def __init__(self, width: int, height: int, fps: float, *, fmt: PixelFormat = PixelFormat.RGB,
                         device: str | None = None, backend: str | None = None, print_fps: bool = False,
                         **kw: Any) -> None:
                super().__init__(lib, width, height, fps, fmt, device)

        mod.Camera = Camera  # type: ignore[attr-defined]
        return mod


class FakeCamera:
    def __init__(self, lib: FakeCameraLib, width: int, height: int, fps: float, fmt: PixelFormat,
                 device: str | None) -> None:
        lib.attempts.append(fmt)
        if lib.refuse:
            raise RuntimeError(f"'v4l2loopback' backend: {lib.refuse}")
        if fmt not in lib.formats:
            raise RuntimeError("'v4l2loopback' backend: Unsupported image format.")
        self.lib = lib
        self.width, self.height, self.fps, self.fmt = width, height, fps, fmt
        self.device_arg = device
        self.frames: list[np.ndarray] = []
        self.closed = False
        lib.cameras.append(self)

    @property
    def device(self) -> str:
        return self.device_arg or "/dev/video7"

    def send(self, frame: np.ndarray) -> None:
        if self.lib.send_error:
            raise RuntimeError(self.lib.send_error)
        if frame.dtype != np.uint8:
            raise TypeError(f"unexpected frame dtype: {frame.dtype} != uint8")
        shape = (self.height, self.width, 4 if self.fmt == PixelFormat.RGBA else 3)
        if frame.shape != shape:
            raise ValueError(f"unexpected frame shape: {frame.shape} != {shape}")
        self.frames.append(frame.copy())

    def close(self) -> None:
        self.closed = True


def install_camera(monkeypatch: pytest.MonkeyPatch, lib: FakeCameraLib) -> FakeCameraLib:
    monkeypatch.setitem(sys.modules, "pyvirtualcam", lib.module())
    return lib


def first_camera(lib: FakeCameraLib, frames: int = 1) -> FakeCamera:
    wait_for(lambda: bool(lib.cameras) and len(lib.cameras[0].frames) >= frames, timeout=5.0,
             what="the camera got the frames")
    return lib.cameras[0]


# --- a stand-in for syphon-python (syphon/server.py, syphon/utils/raw.py, syphon/utils/numpy.py) and PyObjC ---

class FakeTexture:
    """An MTLTexture: ``width()``, ``height()``, and the RGBA bytes last copied in."""

    def __init__(self, width: int, height: int) -> None:
        self._w, self._h = width, height
        self.data: bytes = b""

    def width(self) -> int:
        return self._w

    def height(self) -> int:
        return self._h


class FakeSyphon:
    def __init__(self, send_error: str = "") -> None:
        self.send_error = send_error
        self.servers: list[Any] = []
        self.textures: list[FakeTexture] = []
        self.pools = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeSyphon:
        lib = self
        metal_device = object()  # what MTLCreateSystemDefaultDevice() would give

        class SyphonMetalServer:
            def __init__(self, name: str, device: Any | None = None, command_queue: Any | None = None) -> None:
                self.name = name
                self.device = device if device is not None else metal_device
                self.published: list[tuple[bytes, tuple[int, int], bool]] = []
                self.clients = False
                self.stopped = False
                lib.servers.append(self)

            def publish_frame_texture(self, texture: FakeTexture, region: Any = None, size: Any = None,
                                      is_flipped: bool = False, command_buffer: Any = None,
                                      auto_commit: bool = True) -> None:
                if lib.send_error:
                    raise RuntimeError(lib.send_error)
                self.published.append((texture.data, (texture.width(), texture.height()), is_flipped))

            @property
            def has_clients(self) -> bool:
                return self.clients

            def stop(self) -> None:
                self.stopped = True

        def create_mtl_texture(device: Any, width: int, height: int, pixel_format: int = 70) -> FakeTexture:
            assert device is metal_device
            texture = FakeTexture(width, height)
            lib.textures.append(texture)
            return texture

        def copy_image_to_mtl_texture(image: np.ndarray, texture: FakeTexture) -> None:
            assert len(image.shape) == 3, "Image has to be of shape (m, n, 4)"
            assert image.shape[2] == 4, "Image has to be of shape (m, n, 4)"
            assert image.shape[:2] == (texture.height(), texture.width())  # replaceRegion covers the texture
            texture.data = image.tobytes()

        def autorelease_pool() -> nullcontext[None]:
            lib.pools += 1
            return nullcontext()

        syphon = types.ModuleType("syphon")
        syphon.SyphonMetalServer = SyphonMetalServer  # type: ignore[attr-defined]
        utils = types.ModuleType("syphon.utils")
        raw = types.ModuleType("syphon.utils.raw")
        raw.create_mtl_texture = create_mtl_texture  # type: ignore[attr-defined]
        numpy_utils = types.ModuleType("syphon.utils.numpy")
        numpy_utils.copy_image_to_mtl_texture = copy_image_to_mtl_texture  # type: ignore[attr-defined]
        objc = types.ModuleType("objc")
        objc.autorelease_pool = autorelease_pool  # type: ignore[attr-defined]
        for name, mod in (("syphon", syphon), ("syphon.utils", utils), ("syphon.utils.raw", raw),
                          ("syphon.utils.numpy", numpy_utils), ("objc", objc)):
            monkeypatch.setitem(sys.modules, name, mod)
        monkeypatch.setattr(syphon_module, "PLATFORM", "darwin")
        return self

    def published(self, count: int = 1) -> list[tuple[bytes, tuple[int, int], bool]]:
        wait_for(lambda: bool(self.servers) and len(self.servers[0].published) >= count, timeout=5.0,
                 what="the Syphon server published the frames")
        return list(self.servers[0].published)


# --- a stand-in for SpoutGL (src/PySpoutGL.cpp) ---

class FakeSpout:
    def __init__(self, result: bool = True, send_error: str = "") -> None:
        self.result = result
        self.send_error = send_error
        self.senders: list[Any] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeSpout:
        lib = self

        class SpoutSender:
            def __init__(self) -> None:
                self.calls: list[tuple[str, int]] = []  # (method, thread id)
                self.name = ""
                self.images: list[tuple[bytes, int, int, int, bool, int]] = []
                lib.senders.append(self)

            def _call(self, method: str) -> None:
                self.calls.append((method, threading.get_ident()))

            def createOpenGL(self) -> bool:
                self._call("createOpenGL")
                return True

            def closeOpenGL(self) -> bool:
                self._call("closeOpenGL")
                return True

            def setSenderName(self, name: str) -> None:
                self._call("setSenderName")
                self.name = name

            def sendImage(self, buffer: Any, width: int, height: int, glFormat: int, invert: bool,
                          hostFbo: int) -> bool:
                self._call("sendImage")
                if lib.send_error:
                    raise RuntimeError(lib.send_error)
                view = memoryview(buffer)
                if view.nbytes < width * height * 4:
                    raise BufferError("Buffer not large enough")
                if not view.c_contiguous:
                    raise BufferError("Buffer must be contiguous")
                self.images.append((view.tobytes(), width, height, glFormat, invert, hostFbo))
                return lib.result

            def releaseSender(self) -> None:
                self._call("releaseSender")

        mod = types.ModuleType("SpoutGL")
        mod.SpoutSender = SpoutSender  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "SpoutGL", mod)
        monkeypatch.setattr(spout_module, "PLATFORM", "win32")
        return self

    def sender(self, images: int = 0, calls: int = 0) -> Any:
        wait_for(lambda: bool(self.senders) and len(self.senders[0].images) >= images
                 and len(self.senders[0].calls) >= calls, timeout=5.0, what="the Spout sender got the frames")
        return self.senders[0]


# --- virtual camera ---

def test_virtualcam_sends_rgb_without_alpha(monkeypatch: pytest.MonkeyPatch, sinks: list[ThreadedSink]) -> None:
    """A backend without RGBA (v4l2loopback, OBS) gets RGB: the frame's pixels, alpha dropped."""
    lib = install_camera(monkeypatch, FakeCameraLib(formats=(PixelFormat.RGB,)))
    sinks.append(sink := VirtualCamSink((64, 48), 30))
    assert_state(sink, "on")
    frame = make_frame(64, 48)
    sink.offer(frame)
    cam = first_camera(lib)
    assert (cam.width, cam.height, cam.fps, cam.fmt, cam.device_arg) == (64, 48, 30, PixelFormat.RGB, None)
    assert lib.attempts == [PixelFormat.RGBA, PixelFormat.RGB]
    np.testing.assert_array_equal(cam.frames[0], frame.pixels[:, :, :3])


def test_virtualcam_sends_rgba_where_the_backend_takes_it(monkeypatch: pytest.MonkeyPatch,
                                                          sinks: list[ThreadedSink]) -> None:
    """A backend that takes RGBA (Unity Capture) gets the frame's pixels as they are."""
    lib = install_camera(monkeypatch, FakeCameraLib(formats=(PixelFormat.RGB, PixelFormat.RGBA)))
    sinks.append(sink := VirtualCamSink((64, 48), 30))
    frame = make_frame(64, 48)
    sink.offer(frame)
    cam = first_camera(lib)
    assert cam.fmt == PixelFormat.RGBA
    np.testing.assert_array_equal(cam.frames[0], frame.pixels)


def test_virtualcam_letterboxes_other_sizes(monkeypatch: pytest.MonkeyPatch, sinks: list[ThreadedSink]) -> None:
    """A 32x32 frame in a 64x48 camera: scaled to 48x48, centred, black bars, top still on top."""
    lib = install_camera(monkeypatch, FakeCameraLib())
    sinks.append(sink := VirtualCamSink((64, 48), 30))
    sink.offer(make_frame(32, 32))
    sent = first_camera(lib).frames[0]
    assert sent.shape == (48, 64, 3)
    assert not sent[:, :8].any() and not sent[:, 56:].any()  # the bars
    assert tuple(sent[0, 8]) == RED and tuple(sent[0, 55]) == GREEN
    assert tuple(sent[47, 8]) == BLUE and tuple(sent[47, 55]) == WHITE


def test_virtualcam_letterbox_follows_a_size_change(monkeypatch: pytest.MonkeyPatch,
                                                    sinks: list[ThreadedSink]) -> None:
    """After a wide frame, a tall one leaves no stale pixels in its bars."""
    lib = install_camera(monkeypatch, FakeCameraLib())
    sinks.append(sink := VirtualCamSink((64, 48), 30))
    sink.offer(make_frame(64, 16))  # bars top and bottom
    first_camera(lib)
    sink.offer(make_frame(16, 48))  # bars left and right
    sent = first_camera(lib, frames=2).frames[1]
    assert not sent[:, :24].any() and not sent[:, 40:].any()
    assert tuple(sent[0, 24]) == RED and tuple(sent[47, 39]) == WHITE


def test_virtualcam_detail_names_device_size_and_rate(monkeypatch: pytest.MonkeyPatch,
                                                      sinks: list[ThreadedSink]) -> None:
    """The VJ reads which device the camera is and at what size and rate; a named device is the one opened."""
    lib = install_camera(monkeypatch, FakeCameraLib())
    sinks.append(sink := VirtualCamSink((1280, 720), 30, device="/dev/video2"))
    assert_state(sink, "on", "virtual camera /dev/video2 1280x720@30")
    assert lib.cameras[0].device_arg == "/dev/video2"


def test_virtualcam_close_closes_the_camera(monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing the sink closes the camera (pyvirtualcam frees the device)."""
    lib = install_camera(monkeypatch, FakeCameraLib())
    sink = VirtualCamSink((64, 48), 30)
    assert_state(sink, "on")
    sink.close()
    assert lib.cameras[0].closed


def test_virtualcam_without_pyvirtualcam_is_unavailable(monkeypatch: pytest.MonkeyPatch,
                                                        sinks: list[ThreadedSink]) -> None:
    """No library: a status line with the install command; offering frames still returns at once."""
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)
    sinks.append(sink := VirtualCamSink((64, 48), 30))
    assert_state(sink, "unavailable", "pip install pyvirtualcam")
    assert_offers_return_at_once(sink)


@pytest.mark.parametrize(("platform", "hint"), [
    ("linux", "sudo modprobe v4l2loopback devices=1 exclusive_caps=1"),
    ("win32", "install OBS and start its virtual camera once"),
    ("darwin", "install OBS and start its virtual camera once"),
])
def test_virtualcam_without_device_names_the_reason_and_a_fix(monkeypatch: pytest.MonkeyPatch,
                                                               sinks: list[ThreadedSink], platform: str,
                                                               hint: str) -> None:
    """No device: pyvirtualcam's own reason, then what to do on this platform."""
    install_camera(monkeypatch, FakeCameraLib(refuse="No v4l2 loopback device found at /dev/video[0-99]."))
    monkeypatch.setattr(virtualcam_module, "PLATFORM", platform)
    sinks.append(sink := VirtualCamSink((64, 48), 30))
    assert_state(sink, "unavailable", "No v4l2 loopback device found", hint)


def test_real_pyvirtualcam_without_device_is_unavailable(sinks: list[ThreadedSink]) -> None:
    """The real pyvirtualcam on this machine (no /dev/video*): unavailable, with the v4l2loopback hint."""
    assert sys.modules.get("pyvirtualcam", sys) is not None
    sinks.append(sink := VirtualCamSink((64, 48), 30))
    assert_state(sink, "unavailable", "v4l2", "sudo modprobe v4l2loopback")
    assert "Unsupported image format" not in sink.state().detail  # the RGB attempt's reason, not RGBA's
    assert_offers_return_at_once(sink)


# --- Syphon ---

def test_syphon_publishes_frames_top_first(monkeypatch: pytest.MonkeyPatch, sinks: list[ThreadedSink]) -> None:
    """Each frame's RGBA pixels go into a texture of its size, published flipped (our rows are top first)."""
    lib = FakeSyphon().install(monkeypatch)
    sinks.append(sink := SyphonSink("Stagecraft"))
    assert_state(sink, "on", "Syphon server 'Stagecraft'")
    frame = make_frame(32, 16)
    sink.offer(frame)
    data, size, flipped = lib.published()[0]
    assert lib.servers[0].name == "Stagecraft"
    assert (data, size, flipped) == (frame.pixels.tobytes(), (32, 16), True)
    assert lib.pools >= 2  # the server made, and the frame sent, inside autorelease pools


def test_syphon_remakes_the_texture_when_the_size_changes(monkeypatch: pytest.MonkeyPatch,
                                                          sinks: list[ThreadedSink]) -> None:
    """Same size: one texture reused; a new size: a new texture of that size."""
    lib = FakeSyphon().install(monkeypatch)
    sinks.append(sink := SyphonSink("Stagecraft"))
    for count, (w, h) in enumerate([(32, 16), (32, 16), (8, 24)], start=1):
        sink.offer(make_frame(w, h, count))
        lib.published(count)
    assert [(t.width(), t.height()) for t in lib.textures] == [(32, 16), (8, 24)]


def test_syphon_receivers_say_whether_clients_are_attached(monkeypatch: pytest.MonkeyPatch,
                                                           sinks: list[ThreadedSink]) -> None:
    """``has_clients`` becomes 1 or 0 receivers."""
    lib = FakeSyphon().install(monkeypatch)
    sinks.append(sink := SyphonSink("Stagecraft"))
    assert assert_state(sink, "on").receivers == 0
    lib.servers[0].clients = True
    assert sink.state().receivers == 1


def test_syphon_close_stops_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing the sink stops the Syphon server."""
    lib = FakeSyphon().install(monkeypatch)
    sink = SyphonSink("Stagecraft")
    assert_state(sink, "on")
    sink.close()
    assert lib.servers[0].stopped


def test_syphon_off_macos_is_unavailable(monkeypatch: pytest.MonkeyPatch, sinks: list[ThreadedSink]) -> None:
    """On Linux or Windows, Syphon is a status line, whether or not some ``syphon`` module imports."""
    FakeSyphon().install(monkeypatch)
    monkeypatch.setattr(syphon_module, "PLATFORM", "linux")
    sinks.append(sink := SyphonSink("Stagecraft"))
    assert_state(sink, "unavailable", "Syphon is macOS only")


def test_syphon_without_library_is_unavailable(monkeypatch: pytest.MonkeyPatch, sinks: list[ThreadedSink]) -> None:
    """On macOS without syphon-python: the install command; offering still returns at once."""
    monkeypatch.setitem(sys.modules, "syphon", None)
    monkeypatch.setattr(syphon_module, "PLATFORM", "darwin")
    sinks.append(sink := SyphonSink("Stagecraft"))
    assert_state(sink, "unavailable", "pip install syphon-python")
    assert_offers_return_at_once(sink)


# --- Spout ---

def test_spout_sends_rgba_images_top_first(monkeypatch: pytest.MonkeyPatch, sinks: list[ThreadedSink]) -> None:
    """sendImage(pixels, width, height, GL_RGBA, invert=False, 0) under the sender's name."""
    lib = FakeSpout().install(monkeypatch)
    sinks.append(sink := SpoutSink("Stagecraft"))
    assert_state(sink, "on", "Spout sender 'Stagecraft'")
    frame = make_frame(32, 16)
    sink.offer(frame)
    sender = lib.sender(images=1)
    assert sender.name == "Stagecraft"
    assert sender.images[0] == (frame.pixels.tobytes(), 32, 16, GL_RGBA, False, 0)
    assert GL_RGBA == 0x1908


def test_spout_makes_its_gl_context_on_the_sending_thread(monkeypatch: pytest.MonkeyPatch,
                                                          sinks: list[ThreadedSink]) -> None:
    """createOpenGL runs first, on the thread that sends, which is not the caller's."""
    lib = FakeSpout().install(monkeypatch)
    sinks.append(sink := SpoutSink("Stagecraft"))
    sink.offer(make_frame(8, 8))
    calls = lib.sender(images=1).calls
    assert [name for name, _ in calls] == ["createOpenGL", "setSenderName", "sendImage"]
    assert len({ident for _, ident in calls}) == 1
    assert calls[0][1] != threading.get_ident()


def test_spout_close_releases_the_sender_then_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """releaseSender while the GL context is current, then closeOpenGL."""
    lib = FakeSpout().install(monkeypatch)
    sink = SpoutSink("Stagecraft")
    assert_state(sink, "on")
    sink.close()
    assert [name for name, _ in lib.senders[0].calls][-2:] == ["releaseSender", "closeOpenGL"]


def test_spout_that_never_shares_becomes_an_error(monkeypatch: pytest.MonkeyPatch,
                                                  sinks: list[ThreadedSink]) -> None:
    """sendImage returning False frame after frame ends in "error", not a silent black output."""
    lib = FakeSpout(result=False).install(monkeypatch)
    monkeypatch.setattr(spout_module, "MAX_MISSES", 3)
    sinks.append(sink := SpoutSink("Stagecraft"))
    for i in range(3):
        sink.offer(make_frame(8, 8, i))
        lib.sender(images=i + 1)
    wait_for(lambda: sink.state().state == "error", timeout=5.0, what="the sink became 'error'")
    assert "did not share 3 frames" in sink.state().detail


def test_spout_off_windows_is_unavailable(monkeypatch: pytest.MonkeyPatch, sinks: list[ThreadedSink]) -> None:
    """On Linux or macOS, Spout is a status line."""
    FakeSpout().install(monkeypatch)
    monkeypatch.setattr(spout_module, "PLATFORM", "darwin")
    sinks.append(sink := SpoutSink("Stagecraft"))
    assert_state(sink, "unavailable", "Spout is Windows only")


def test_spout_without_library_is_unavailable(monkeypatch: pytest.MonkeyPatch, sinks: list[ThreadedSink]) -> None:
    """On Windows without SpoutGL: the install command; offering still returns at once."""
    monkeypatch.setitem(sys.modules, "SpoutGL", None)
    monkeypatch.setattr(spout_module, "PLATFORM", "win32")
    sinks.append(sink := SpoutSink("Stagecraft"))
    assert_state(sink, "unavailable", "pip install SpoutGL")
    assert_offers_return_at_once(sink)


# --- a sender that fails mid-show ---

def camera_failing(monkeypatch: pytest.MonkeyPatch) -> ThreadedSink:
    install_camera(monkeypatch, FakeCameraLib(send_error="device went away"))
    return VirtualCamSink((8, 8), 30)


def syphon_failing(monkeypatch: pytest.MonkeyPatch) -> ThreadedSink:
    FakeSyphon(send_error="device went away").install(monkeypatch)
    return SyphonSink("Stagecraft")


def spout_failing(monkeypatch: pytest.MonkeyPatch) -> ThreadedSink:
    FakeSpout(send_error="device went away").install(monkeypatch)
    return SpoutSink("Stagecraft")


@pytest.mark.parametrize("make", [camera_failing, syphon_failing, spout_failing], ids=["virtualcam", "syphon", "spout"])
def test_sender_raising_in_send_is_an_error_not_a_crash(monkeypatch: pytest.MonkeyPatch, sinks: list[ThreadedSink],
                                                        make: Callable[[pytest.MonkeyPatch], ThreadedSink]) -> None:
    """The sender raising stops that output with the reason; the caller never sees the exception."""
    sinks.append(sink := make(monkeypatch))
    assert_state(sink, "on")
    sink.offer(make_frame(8, 8))
    wait_for(lambda: sink.state().state == "error", timeout=5.0, what="the sink became 'error'")
    assert "RuntimeError: device went away" in sink.state().detail
    assert_offers_return_at_once(sink)


def assert_offers_return_at_once(sink: ThreadedSink) -> None:
    """Offering frames to a sink that sends nothing neither raises nor waits (a generous bound: no sleeping)."""
    frame = make_frame(8, 8)
    start = time.monotonic()
    for i in range(100):
        sink.offer(OutputFrame(frame.pixels, frame.time, i))
    assert time.monotonic() - start < 1.0
