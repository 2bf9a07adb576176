"""NDI out (NdiSink) and in (NdiSource) through the real NDI 6 runtime, on loopback only.

Everything that sends runs in a child process inside a loopback-only network namespace (tests/netns.py):
the ``child_*`` functions below are that child's side, run as ``python -c "from tests.test_ndi import ..."``;
each prints its measurements as one JSON line, and the test asserts on them.

NDI's video codec is lossy even on loopback, so pictures are compared by their mean absolute difference
over all four channels, with a looser bound on each channel so that a swapped or flipped channel still
fails. Measured with the NDI 6.3.2 runtime of cyndilib 0.1.3, decoded by the SDK to RGBX/RGBA as receivers
see it: 1.85-1.9/255 over the frame (R 2.3-2.4, G 1.1, B 4.0, alpha 0), almost all of it the SDK's steady
colour offset (grey 128 arrives as 127/127/125, white as 253/253/251) rather than noise.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from engine.inputs import ndi_source
from engine.inputs.ndi_source import NdiSource, list_ndi_sources, matches, to_rgba
from engine.output.ndi import NdiSink
from engine.output.sink import OutputFrame
from tests.netns import run_json_in_netns

MAD_LIMIT = 2 / 255  # mean absolute difference over the frame, all channels
CHANNEL_LIMIT = 6 / 255  # the same for any one channel (a swapped channel is off by tens)
WAIT_S = 10.0
SINK_NAME = "Stagecraft test"
SENDER_NAME = "Stagecraft cam"
SIZES = ((640, 360), (1920, 1080))


# --- pictures and their comparison (both sides) ---

def make_picture(width: int, height: int) -> np.ndarray:
    """RGBA test card: red rises left to right, green top to bottom, blue along the diagonal; a saturated
    blue rectangle, a white disc and a yellow square at alpha 96 (which only an alpha sink keeps)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / (width - 1), y / (height - 1)
    pic = np.empty((height, width, 4), np.uint8)
    pic[..., 0] = np.round(255 * u)
    pic[..., 1] = np.round(255 * v)
    pic[..., 2] = np.round(64 + 128 * (u + v) / 2)
    pic[..., 3] = 255
    pic[height // 8: height * 3 // 8, width // 10: width * 3 // 10] = (20, 40, 230, 255)
    disc = (x - width * 0.65) ** 2 + (y - height * 0.55) ** 2 < (height * 0.2) ** 2
    pic[disc] = (255, 255, 255, 255)
    pic[height * 5 // 8: height * 7 // 8, width // 10: width * 3 // 10] = (240, 220, 30, 96)
    return pic


def opaque(pic: np.ndarray) -> np.ndarray:
    out = pic.copy()
    out[..., 3] = 255
    return out


def compare(got: np.ndarray, want: np.ndarray) -> dict[str, Any]:
    """Mean absolute difference (0..1) over the frame and per channel, and the sizes."""
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16)) / 255
    return {"size": [int(got.shape[1]), int(got.shape[0])], "want_size": [int(want.shape[1]), int(want.shape[0])],
            "mad": float(diff.mean()), "channels": [float(c) for c in diff.mean(axis=(0, 1))]}


def assert_same_picture(result: dict[str, Any]) -> None:
    """The received picture is the sent one, within NDI's loss."""
    assert result["size"] == result["want_size"], result
    assert result["mad"] < MAD_LIMIT, f"mean abs diff {result['mad'] * 255:.2f}/255: {result}"
    worst = max(result["channels"])
    assert worst < CHANNEL_LIMIT, f"a channel is off by {worst * 255:.2f}/255 on average: {result}"


def wait_for(predicate: Any, timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# --- the child's side, inside the namespace ---

class ProbeReceiver:
    """A plain cyndilib receiver, RGBX/RGBA as NDI's own decoder gives it, for the source named ``stream``."""

    def __init__(self, stream: str) -> None:
        self.lib = ndi_source.load_cyndilib()
        self.stream = stream
        self.finder = self.lib.Finder()
        self.finder.open()
        self.receiver: Any = None
        self.frame: Any = None
        self.received = 0

    def connect(self, keep_alive: Any) -> bool:
        """Find the source and connect; ``keep_alive()`` is called while waiting (a sink sends on offer)."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            for name in self.finder.get_source_names():
                if matches(name, self.stream):
                    lib = self.lib
                    self.receiver = lib.Receiver(color_format=lib.RecvColorFormat.RGBX_RGBA,
                                                 bandwidth=lib.RecvBandwidth.highest, recv_name="probe")
                    self.frame = lib.VideoRecvFrame()
                    self.receiver.set_video_frame(self.frame)
                    self.receiver.set_source(self.finder.get_source(name))
                    return True
            keep_alive()
            time.sleep(0.03)
        return False

    def next_of_size(self, size: tuple[int, int], keep_alive: Any) -> np.ndarray | None:
        """The first frame of ``size`` to arrive within WAIT_S (after a reopen, older sizes still come)."""
        video = self.lib.receiver.ReceiveFrameType.recv_video
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            keep_alive()
            if self.receiver.receive(video, 30) != video:
                continue
            self.received += 1
            data = np.empty(self.frame.get_buffer_size(), np.uint8)
            if not self.frame.fill_p_data(data):
                continue
            if tuple(self.frame.get_resolution()) == size:
                fourcc = self.lib.FourCC(self.frame.get_fourcc()).name
                return to_rgba(data, *size, self.frame.get_line_stride(), fourcc)
        return None

    def close(self) -> None:
        if self.receiver is not None:
            self.receiver.disconnect()
        self.finder.close()


def child_sink_round_trip(alpha: bool) -> None:
    """NdiSink sends each of SIZES (one sender, reopened for the second); a probe receiver compares."""
    sink = NdiSink(SINK_NAME, alpha=alpha)
    probe = ProbeReceiver(SINK_NAME)
    out: dict[str, Any] = {"pictures": []}
    index = 0
    started = time.monotonic()
    try:
        for size in SIZES:
            pic = make_picture(*size)
            pic.flags.writeable = False
            want = pic if alpha else opaque(pic)

            def offer(pic: np.ndarray = pic) -> None:
                nonlocal index
                index += 1
                sink.offer(OutputFrame(pic, time.monotonic(), index))

            if probe.receiver is None and not probe.connect(offer):
                out["error"] = f"no source matching {SINK_NAME!r} in {probe.finder.get_source_names()}"
                break
            t0 = time.monotonic()
            got = probe.next_of_size(size, offer)
            if got is None:
                out["error"] = f"no {size[0]}x{size[1]} frame within {WAIT_S} s"
                break
            result = compare(got, want)
            result["first_frame_s"] = round(time.monotonic() - t0, 3)
            out["pictures"].append(result)
        wait_for(lambda: sink.state().receivers >= 1, 3.0)
        state = sink.state()
        out.update(state=state.state, detail=state.detail, receivers=state.receivers, offered=index,
                   sent=state.frames, dropped=state.dropped, received=probe.received,
                   seconds=round(time.monotonic() - started, 2))
    finally:
        probe.close()
        sink.close()
    print(json.dumps(out))


class CardSender:
    """A plain cyndilib sender (no Stagecraft code) sending ``pic`` (opaque RGBA) at 30 fps from a thread."""

    def __init__(self, name: str, pic: np.ndarray) -> None:
        lib = ndi_source.load_cyndilib()
        h, w = pic.shape[:2]
        frame = lib.VideoSendFrame()
        frame.set_resolution(w, h)
        frame.set_frame_rate(Fraction(30))
        frame.set_fourcc(lib.FourCC.RGBX)
        self.sender = lib.Sender(name, clock_video=False)
        self.sender.set_video_frame(frame)
        self.sender.open()
        self.name = str(self.sender.name)
        self._flat = pic.reshape(-1).copy()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._thread.start()

    def _send(self) -> None:
        while not self._stop.wait(1 / 30):
            self.sender.write_video_async(self._flat)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sender.close()


def child_source_receives() -> None:
    """A test card sender; NdiSource finds it by the bracket name. A ticking thread measures how long the
    input ever kept another Python thread from running."""
    pic = opaque(make_picture(1280, 720))
    sender = CardSender(SENDER_NAME, pic)
    out: dict[str, Any] = {}
    gaps: list[float] = []
    stop = threading.Event()

    def tick() -> None:  # a stand-in for the render thread
        last = time.monotonic()
        while not stop.wait(0.002):
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    source = NdiSource(SENDER_NAME, retry_s=0.5)
    try:
        started = time.monotonic()
        wait_for(lambda: source.latest()[1] is not None)
        out["first_frame_s"] = round(time.monotonic() - started, 3)
        _seq, got = source.latest()
        if got is not None:
            out["picture"] = compare(got, pic)
            out["writeable"] = bool(got.flags.writeable)
        wait_for(lambda: source.state().frames >= 30, 5.0)
        state = source.state()
        out.update(name=state.name, state=state.state, detail=state.detail, size=list(state.size), frames=state.frames,
                   seconds=round(time.monotonic() - started, 2), max_tick_gap_ms=round(max(gaps) * 1000, 1),
                   listed=list_ndi_sources(1.0), sender=sender.name)
    finally:
        source.close()
        stop.set()
        ticker.join()
        sender.close()
    print(json.dumps(out))


def child_source_comes_back() -> None:
    """NdiSource on a sender that stops, then starts again (under the same name) with another picture."""
    first = opaque(make_picture(640, 360))
    second = np.ascontiguousarray(first[::-1, ::-1])
    out: dict[str, Any] = {}
    sender = CardSender(SENDER_NAME, first)
    source = NdiSource(SENDER_NAME, retry_s=0.3, find_s=1.0, lost_s=1.0)
    try:
        wait_for(lambda: source.latest()[1] is not None)
        out["before"] = source.state().state
        sender.close()
        stopped = time.monotonic()
        wait_for(lambda: source.state().state != "on")
        out["gone"] = {"state": source.state().state, "detail": source.state().detail,
                       "after_s": round(time.monotonic() - stopped, 2)}
        sender = CardSender(SENDER_NAME, second)
        restarted = time.monotonic()

        def showing_second() -> bool:
            got = source.latest()[1]
            return got is not None and compare(got, second)["mad"] < MAD_LIMIT

        out["back_s"] = round(time.monotonic() - restarted, 2) if wait_for(showing_second) else None
        got = source.latest()[1]
        assert got is not None
        out["after"] = {"state": source.state().state, "picture": compare(got, second)}
    finally:
        source.close()
        sender.close()
    print(json.dumps(out))


def child_source_absent() -> None:
    """NdiSource for a name nobody sends."""
    source = NdiSource("nobody", retry_s=0.5, find_s=1.0)
    try:
        wait_for(lambda: source.state().state != "starting")
        state = source.state()
        alive = source._thread.is_alive()
    finally:
        source.close()
    print(json.dumps({"state": state.state, "detail": state.detail, "alive": alive}))


# --- the tests ---

def test_sink_round_trip_opaque() -> None:
    """NdiSink without alpha: the probe sees the picture at 640x360 and then 1920x1080, opaque; state on."""
    out = run_json_in_netns("from tests.test_ndi import child_sink_round_trip; child_sink_round_trip(False)")
    assert "error" not in out, out
    assert [p["size"] for p in out["pictures"]] == [list(s) for s in SIZES]
    for picture in out["pictures"]:
        assert_same_picture(picture)
        assert picture["channels"][3] == 0, "the alpha-96 square must arrive opaque"
    assert out["state"] == "on", out
    assert out["detail"].startswith('NDI "') and f"({SINK_NAME})" in out["detail"] and "1920x1080@60" in out["detail"]
    assert out["receivers"] >= 1, out
    assert out["sent"] >= 2, out


def test_sink_round_trip_keeps_alpha() -> None:
    """NdiSink with alpha: the half-transparent square arrives half-transparent."""
    out = run_json_in_netns("from tests.test_ndi import child_sink_round_trip; child_sink_round_trip(True)")
    assert "error" not in out, out
    for picture in out["pictures"]:
        assert_same_picture(picture)
        assert picture["channels"][3] < 0.5 / 255, "the alpha-96 square must keep its alpha"
    assert "with alpha" in out["detail"], out


def test_source_receives_named_sender() -> None:
    """NdiSource finds a sender by the name in brackets and hands out its picture as RGBA; state on, right size."""
    out = run_json_in_netns("from tests.test_ndi import child_source_receives; child_source_receives()")
    assert "picture" in out, f"no frame within {WAIT_S} s: {out}"
    assert_same_picture(out["picture"])
    assert out["writeable"] is False
    assert out["name"] == f"ndi:{SENDER_NAME}"
    assert out["state"] == "on", out
    assert out["detail"] == f'NDI "{out["sender"]}"'
    assert out["size"] == [1280, 720]
    assert out["frames"] >= 30
    assert out["sender"] in out["listed"]


def test_source_follows_a_sender_that_restarts() -> None:
    """A sender that goes away takes the input out of "on"; started again, its new picture comes through."""
    out = run_json_in_netns("from tests.test_ndi import child_source_comes_back; child_source_comes_back()")
    assert out["before"] == "on", out
    assert out["gone"]["state"] in ("error", "unavailable"), out
    assert "'Stagecraft cam'" in out["gone"]["detail"], out
    assert out["back_s"] is not None, f"the restarted sender's picture never came through: {out}"
    assert out["after"]["state"] == "on", out
    assert_same_picture(out["after"]["picture"])


def test_source_absent_is_unavailable() -> None:
    """NdiSource("nobody") says no such source, naming it, and keeps trying."""
    out = run_json_in_netns("from tests.test_ndi import child_source_absent; child_source_absent()")
    assert out["state"] == "unavailable", out
    assert "'nobody'" in out["detail"], out
    assert out["alive"] is True


def test_sink_without_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cyndilib: the sink is "unavailable" with how to install it; offer stays instant; close works."""
    monkeypatch.setitem(sys.modules, "cyndilib", None)
    sink = NdiSink(SINK_NAME)
    try:
        assert wait_for(lambda: sink.state().state != "starting", 5.0)
        state = sink.state()
        assert state.state == "unavailable"
        assert state.detail.startswith("no NDI library: pip install cyndilib")
        assert state.receivers == -1
        pixels = np.zeros((360, 640, 4), np.uint8)
        t0 = time.monotonic()
        for i in range(100):
            sink.offer(OutputFrame(pixels, t0, i))
        assert time.monotonic() - t0 < 0.5  # generous: a mailbox put each
    finally:
        sink.close()
    assert not sink._thread.is_alive()
    assert sink.state().state == "unavailable"


def test_source_without_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cyndilib: the source is "unavailable" with how to install it, and tries again without raising."""
    monkeypatch.setitem(sys.modules, "cyndilib", None)
    calls = 0
    load = ndi_source.load_cyndilib

    def counting_load() -> Any:
        nonlocal calls
        calls += 1
        return load()

    monkeypatch.setattr(ndi_source, "load_cyndilib", counting_load)
    source = NdiSource("Stagecraft cam", retry_s=0.02)
    try:
        assert wait_for(lambda: calls >= 3, 5.0), f"{calls} tries"
        state = source.state()
        assert state.state == "unavailable"
        assert state.name == "ndi:Stagecraft cam"
        assert state.detail.startswith("no NDI library: pip install cyndilib")
        assert source.latest() == (0, None)
    finally:
        source.close()
    assert not source._thread.is_alive()


def test_list_sources_without_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cyndilib: no sources, no error."""
    monkeypatch.setitem(sys.modules, "cyndilib", None)
    assert list_ndi_sources(0.1) == []


@pytest.mark.parametrize(("listed", "wanted", "expected"), [
    ("STUDIO (Cam 1)", "STUDIO (Cam 1)", True),
    ("STUDIO (Cam 1)", "Cam 1", True),
    ("STUDIO (Cam 1)", "Cam", False),
    ("STUDIO (Cam 1)", "STUDIO", False),
    ("STUDIO (Cam (wide))", "Cam (wide)", True),
])
def test_source_name_matches(listed: str, wanted: str, expected: bool) -> None:
    """A source is named in full or by the part in brackets, nothing looser."""
    assert matches(listed, wanted) is expected


def test_to_rgba_padded_bgrx() -> None:
    """BGRX rows with padding become RGBA, opaque, top row first."""
    w, h, stride = 3, 2, 16
    data = np.zeros(stride * h, np.uint8)
    rows = data.reshape(h, stride)
    rows[0, :12] = [1, 2, 3, 0] * 3  # B G R X
    rows[1, :12] = [4, 5, 6, 0] * 3
    pixels = to_rgba(data, w, h, stride, "BGRX")
    assert pixels.shape == (2, 3, 4)
    assert pixels[0, 0].tolist() == [3, 2, 1, 255]
    assert pixels[1, 2].tolist() == [6, 5, 4, 255]


def test_to_rgba_keeps_alpha() -> None:
    """RGBA with a tight stride is the same bytes, alpha kept."""
    data = np.arange(2 * 2 * 4, dtype=np.uint8)
    pixels = to_rgba(data, 2, 2, 8, "RGBA")
    assert pixels.reshape(-1).tolist() == data.tolist()


def test_to_rgba_rejects_yuv() -> None:
    """A YUV frame (a receiver not asked for RGB) is an error naming the format."""
    with pytest.raises(ValueError, match="NDI frame in UYVY"):
        to_rgba(np.zeros(8, np.uint8), 2, 1, 4, "UYVY")
