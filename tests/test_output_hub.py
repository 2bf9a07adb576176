"""The outputs' render-thread side and the live input layer, with stand-in sinks, recorder and sources."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import moderngl
import numpy as np
import pytest

from engine.cli import build_parser, overrides_from_args
from engine.commands import Action, Command, command_for_key
from engine.config import Config, parse_wxh, with_overrides
from engine.contract import Inbox
from engine.control.osc_map import command_for
from engine.errors import ConfigError
from engine.inputs.source import InputState
from engine.output.hub import OutputHub
from engine.output.sink import OutputFrame, OutputState, ThreadedSink
from engine.render.overlay import hud_lines
from engine.render.show_loop import ShowLoop
from tests.fakes import BLUE, GREEN, RED, assert_color, make_config, pixels, solid, wait_for

SIZE = (160, 96)


class FakeSink:
    """Keeps every frame offered (a stand-in for NDI & co.)."""

    name = "fake"

    def __init__(self) -> None:
        self.frames: list[OutputFrame] = []
        self.closed = False

    def offer(self, frame: OutputFrame) -> None:
        self.frames.append(frame)

    def state(self) -> OutputState:
        return OutputState(self.name, "on", "fake", frames=len(self.frames))

    def close(self) -> None:
        self.closed = True


class FakeRecorder(FakeSink):
    name = "record"

    def __init__(self) -> None:
        super().__init__()
        self.recording = False
        self.starts: list[Path | None] = []
        self.audio: list[int] = []

    def start(self, path: Path | None = None) -> Path:
        self.starts.append(path)
        self.recording = True
        return path or Path("auto.mp4")

    def stop(self) -> None:
        self.recording = False

    def offer(self, frame: OutputFrame) -> None:
        if self.recording:
            self.frames.append(frame)

    def push_audio(self, block: np.ndarray, sample_rate: int) -> None:
        self.audio.append(len(block))

    def state(self) -> OutputState:
        return OutputState("record", "on" if self.recording else "off", "", frames=len(self.frames))

    def close(self) -> None:
        self.stop()


def colour_target(ctx: moderngl.Context, size: tuple[int, int], colour: tuple[int, int, int]) -> moderngl.Framebuffer:
    fb = ctx.framebuffer(color_attachments=[ctx.texture(size, 4)])
    fb.use()
    fb.clear(*(c / 255 for c in colour), 1.0)
    return fb


def halves_target(ctx: moderngl.Context, size: tuple[int, int]) -> moderngl.Framebuffer:
    """Top half red, bottom half blue, as the projector shows it (GL rows run bottom up)."""
    w, h = size
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[: h // 2, :, 0] = 255
    rgba[h // 2 :, :, 2] = 255
    rgba[..., 3] = 255
    return ctx.framebuffer(color_attachments=[ctx.texture(size, 4, np.ascontiguousarray(rgba[::-1]))])


@pytest.fixture
def hub_parts(ctx: moderngl.Context) -> Iterator[tuple[FakeSink, FakeRecorder]]:
    yield FakeSink(), FakeRecorder()


def make_hub(ctx: moderngl.Context, sink: FakeSink, rec: FakeRecorder, **overrides: object) -> OutputHub:
    cfg = make_config(dict(overrides))
    return OutputHub(ctx, cfg, SIZE, 60.0, sinks=[sink], recorder=rec)


def test_outputs_get_the_program_at_full_size_two_ticks_late(ctx: moderngl.Context, hub_parts: tuple) -> None:
    sink, rec = hub_parts
    hub = make_hub(ctx, sink, rec)
    fb = halves_target(ctx, SIZE)
    try:
        for i in range(5):
            hub.frame(fb, SIZE, now=i / 60, index=i)
        assert [f.index for f in sink.frames] == [0, 1, 2]  # each tick maps the grab made two ticks before
        frame = sink.frames[0]
        assert frame.size == SIZE and frame.pixels.shape == (96, 160, 4)
        assert frame.time == pytest.approx(0.0)
        px = frame.pixels.astype(int)
        assert np.abs(px[:48, :, :3] - [255, 0, 0]).max() <= 1  # top row first, exact at full size
        assert np.abs(px[48:, :, :3] - [0, 0, 255]).max() <= 1
        assert (px[..., 3] == 255).all()
        assert not frame.pixels.flags.writeable
    finally:
        hub.close()
        fb.release()


def test_outputs_are_paced_at_their_own_rate_and_size(ctx: moderngl.Context, hub_parts: tuple) -> None:
    sink, rec = hub_parts
    hub = make_hub(ctx, sink, rec, **{"output.fps": 30.0, "output.size": "80x48"})
    fb = halves_target(ctx, SIZE)
    try:
        for i in range(12):
            hub.frame(fb, SIZE, now=i / 60, index=i)
        indexes = [f.index for f in sink.frames]
        assert indexes == [0, 2, 4, 6]  # every other frame of a 60 fps show, two ticks late
        px = sink.frames[-1].pixels.astype(int)
        assert px.shape == (48, 80, 4)
        assert np.abs(px[:20, :, :3] - [255, 0, 0]).max() <= 2 and np.abs(px[28:, :, :3] - [0, 0, 255]).max() <= 2
    finally:
        hub.close()
        fb.release()


class SlowSink(ThreadedSink):
    """A receiver that takes 50 ms per frame: the show must not notice."""

    name = "slow"

    def _open(self) -> str:
        return "slow receiver"

    def _send(self, frame: OutputFrame) -> None:
        time.sleep(0.05)


def test_a_slow_receiver_drops_its_own_frames_never_the_shows(ctx: moderngl.Context) -> None:
    slow = SlowSink()
    rec = FakeRecorder()
    hub = OutputHub(ctx, make_config(), SIZE, 60.0, sinks=[slow], recorder=rec)
    fb = colour_target(ctx, SIZE, GREEN)
    try:
        for i in range(40):
            hub.frame(fb, SIZE, now=i / 60, index=i)  # as fast as the GPU reads back, not 60 fps
        wait_for(lambda: slow.frames >= 1, what="the slow sink never sent")
        state = slow.state()
        assert state.state == "on" and state.detail == "slow receiver"
        assert state.dropped > 0 and state.frames + state.dropped <= 38
    finally:
        hub.close()
        fb.release()


def test_the_recording_reads_back_only_while_it_records_and_gets_the_last_frames(ctx: moderngl.Context) -> None:
    rec = FakeRecorder()
    hub = OutputHub(ctx, make_config(), SIZE, 60.0, sinks=[], recorder=rec)
    fb = colour_target(ctx, SIZE, BLUE)
    try:
        for i in range(3):
            hub.frame(fb, SIZE, now=i / 60, index=i)
        assert all(feed.reader is None for feed in hub.feeds)  # not recording: no GPU work at all
        hub.record(True)
        wait_for(lambda: rec.recording, what="the control thread never started the recording")
        for i in range(3, 10):
            hub.frame(fb, SIZE, now=i / 60, index=i)
        assert [f.index for f in rec.frames] == [3, 4, 5, 6, 7]
    finally:
        hub.close()  # drains the two frames still in flight into the recording, then stops it
        fb.release()
    assert [f.index for f in rec.frames][-2:] == [8, 9]
    assert not rec.recording


def test_record_toggles_on_the_control_thread_and_config_starts_it_before_the_first_frame(
    ctx: moderngl.Context,
) -> None:
    rec = FakeRecorder()
    hub = OutputHub(ctx, make_config({"record.enabled": True, "record.file": "first.mp4"}), SIZE, 60.0, sinks=[],
                    recorder=rec)
    try:
        assert rec.recording and rec.starts == [Path("first.mp4")]
        hub.record(None)
        wait_for(lambda: not rec.recording, what="toggle did not stop")
        hub.record(None)
        wait_for(lambda: rec.recording, what="toggle did not start")
        assert rec.starts[-1] is None  # a later start is a new time-stamped file
    finally:
        hub.close()


def test_a_recorder_that_cannot_start_is_an_error_line_not_a_crash(ctx: moderngl.Context) -> None:
    class Refuses(FakeRecorder):
        def start(self, path: Path | None = None) -> Path:
            raise RuntimeError("cannot write /nowhere/x.mp4: Permission denied")

    hub = OutputHub(ctx, make_config(), SIZE, 60.0, sinks=[], recorder=Refuses())
    try:
        hub.record(True)
        wait_for(lambda: hub.states()[-1].state == "error", what="no error state")
        assert "Permission denied" in hub.states()[-1].detail
    finally:
        hub.close()


def test_missing_output_libraries_are_status_lines(ctx: moderngl.Context, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cyndilib", None)
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)
    cfg = make_config({"output.ndi": "Stagecraft", "output.virtualcam": True})
    hub = OutputHub(ctx, cfg, SIZE, 60.0, recorder=FakeRecorder())
    try:
        wait_for(lambda: all(s.state != "starting" for s in hub.states()), what="outputs still starting")
        states = {s.name: s for s in hub.states()}
        assert states["ndi"].state == "unavailable" and states["virtualcam"].state == "unavailable"
        fb = colour_target(ctx, SIZE, RED)
        for i in range(4):
            hub.frame(fb, SIZE, now=i / 60, index=i)  # frames still flow to nowhere, nothing raises
        fb.release()
        from engine.contract import ShowSnapshot

        lines = hud_lines(ShowSnapshot(outputs=hub.states()), "http://x")
        assert any(line.startswith("ndi unavailable:") for line in lines)
    finally:
        hub.close()


# --- live inputs ---------------------------------------------------------------------------------


class FakeSource:
    """A live source whose newest frame the test sets."""

    max_size = 0

    def __init__(self, name: str = "camera:fake") -> None:
        self.name = name
        self.seq = 0
        self.frame: np.ndarray | None = None
        self.closed = False

    def show(self, colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> None:
        self.frame = solid(colour, size).pixels
        self.seq += 1

    def latest(self) -> tuple[int, np.ndarray | None]:
        return self.seq, self.frame

    def state(self) -> InputState:
        return InputState(self.name, "on" if self.frame is not None else "starting", "fake", self.seq)

    def close(self) -> None:
        self.closed = True


def live_show(ctx: moderngl.Context, source: FakeSource) -> tuple[ShowLoop, Inbox]:
    cfg = make_config({"show.transition": 0.0, "show.hold": 0.0, "show.fit": "cover"})
    inbox = Inbox()
    show = ShowLoop(ctx, cfg, SIZE, inbox, "http://x", outputs=OutputHub(ctx, cfg, SIZE, 60.0, sinks=[],
                    recorder=FakeRecorder()), sources={"camera": source})  # type: ignore[dict-item]
    return show, inbox


def test_a_picked_live_input_shows_its_newest_frame_and_stays_until_unpicked(ctx: moderngl.Context) -> None:
    source = FakeSource()
    show, inbox = live_show(ctx, source)
    fb = ctx.framebuffer(color_attachments=[ctx.texture(SIZE, 4)])
    try:
        inbox.images.put(solid(RED, id="img-1"))
        for i in range(4):
            show.frame(i / 60, fb)
        assert_color(pixels(fb), RED)
        show.apply(Command(Action.INPUT, name="camera"), 4 / 60)
        show.frame(5 / 60, fb)  # no frame yet: the image stays
        assert_color(pixels(fb), RED)
        source.show(GREEN)
        for i in range(6, 9):
            show.frame(i / 60, fb)
        assert_color(pixels(fb), GREEN)
        source.show(BLUE)  # a new frame from the camera overwrites the layer
        show.frame(9 / 60, fb)
        assert_color(pixels(fb), BLUE)
        inbox.images.put(solid(RED, id="img-2"))
        for i in range(10, 40):  # hold 0: an image would replace it at once, but the live layer is pinned
            show.frame(i / 60, fb)
        assert_color(pixels(fb), BLUE)
        snap = show.board.read()
        assert snap.live_input == "camera" and snap.inputs[0].state == "on"
        assert not any(i.startswith("live:") for i in snap.held)  # the backstage only hears of its own images
        show.apply(Command(Action.INPUT, name=""), 40 / 60)
        for i in range(41, 45):
            show.frame(i / 60, fb)
        assert_color(pixels(fb), RED)  # back to the images; the live slot is free again
        assert show.slots.free_count >= 2
    finally:
        show.release()
        fb.release()
    assert source.closed


def test_an_unknown_live_input_is_reported_and_changes_nothing(ctx: moderngl.Context) -> None:
    show, _ = live_show(ctx, FakeSource())
    try:
        show.apply(Command(Action.INPUT, name="ndi"), 0.0)
        assert show.inputs.active == ""
        assert "no live input 'ndi'" in show.errors[-1]
    finally:
        show.release()


def test_source_frames_are_scaled_down_off_the_render_thread() -> None:
    from engine.inputs.source import ThreadedSource

    sent = threading.Event()

    class Big(ThreadedSource):
        def _open(self) -> str:
            return "big"

        def _read(self) -> np.ndarray | None:
            if sent.is_set():
                time.sleep(0.01)
                return None
            sent.set()
            return np.full((1080, 1920, 4), 200, np.uint8)

    Big.max_size = 640
    source = Big("big")
    try:
        wait_for(lambda: source.latest()[1] is not None, what="no frame")
        frame = source.latest()[1]
        assert frame is not None and frame.shape == (360, 640, 4) and not frame.flags.writeable
    finally:
        source.close()


# --- control surfaces and config ---------------------------------------------------------------


def test_record_and_input_from_osc_keys_and_flags() -> None:
    assert command_for("/engine/record", [1]) == Command(Action.RECORD, 1.0, source="osc")
    assert command_for("/engine/record", []) == Command(Action.RECORD, None, source="osc")
    assert command_for("/engine/input", ["camera"]) == Command(Action.INPUT, name="camera", source="osc")
    assert command_for("/engine/input", ["none"]).name == ""
    key = command_for_key("R")
    assert key is not None and key.action is Action.RECORD
    args = build_parser().parse_args(["--ndi", "Main", "--record", "--virtualcam", "--spout", "S", "--syphon", "Y"])
    out = overrides_from_args(args)
    assert out["output.ndi"] == "Main" and out["record.enabled"] is True and "record.file" not in out
    assert out["output.virtualcam"] is True and out["output.spout"] == "S" and out["output.syphon"] == "Y"
    out = overrides_from_args(build_parser().parse_args(["--record", "night.mp4"]))
    assert out["record.file"] == "night.mp4"


@pytest.mark.parametrize(("key", "value"), [("output.size", "wide"), ("record.size", "10x10"),
                                            ("input.camera_size", "1920x")])
def test_a_bad_size_names_its_key(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        with_overrides(Config(), {key: value})
    section, name = key.split(".")
    assert f"[{section}] {name}" in str(err.value)
    assert parse_wxh("x", "1920x1080") == (1920, 1080) and parse_wxh("x", "") == (0, 0)


def test_a_full_disk_stops_the_recording_and_not_the_show(ctx: moderngl.Context, tmp_path: Path) -> None:
    """The real recorder on a disk that fills after 60 KB, inside a running show: the recording goes to
    "error" with the reason on the HUD and the page, frames keep coming, the show reports no frame failure."""
    from typing import BinaryIO, cast

    from engine.output.record import Recorder, RecordSettings
    from tests.test_record import FullDisk

    rec = Recorder(RecordSettings(tmp_path, preset="ultrafast", bitrate=4000), fps=60.0,
                   opener=lambda p: cast(BinaryIO, FullDisk(p, room=60_000)))
    cfg = make_config({"show.transition": 0.0})
    show = ShowLoop(ctx, cfg, SIZE, Inbox(), "http://x", outputs=OutputHub(ctx, cfg, SIZE, 60.0, sinks=[],
                    recorder=rec), sources={})
    fb = ctx.framebuffer(color_attachments=[ctx.texture(SIZE, 4)])
    noise = np.random.default_rng(2).integers(0, 256, (256, 256, 4), np.uint8)
    noise[..., 3] = 255
    try:
        show.apply(Command(Action.RECORD, 1.0), 0.0)
        wait_for(lambda: rec.recording, what="the recording never started")
        from engine.contract import ShowImage

        i = 0
        deadline = time.monotonic() + 30
        while rec.state().state == "on" and time.monotonic() < deadline:
            if i % 4 == 0:  # a new noisy picture now and then: it costs the full bitrate
                show.inbox.images.put(ShowImage(f"noise-{i}", np.roll(noise, i, axis=1)))
            show.frame(i / 60, fb)
            i += 1
            time.sleep(0.005)
        before = show.frame_index
        for j in range(10):
            show.frame((i + j) / 60, fb)
        state = next(o for o in show.board.read().outputs if o.name == "record")
        assert state.state == "error" and state.detail.startswith("disk full"), state
        assert show.frame_index == before + 10
        assert not any("frame failed" in e for e in show.errors)
        assert any(line.startswith("record error: disk full") for line in hud_lines(show.board.read(), "x"))
    finally:
        show.release()
        fb.release()
