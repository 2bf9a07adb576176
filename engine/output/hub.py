"""The render thread's side of the outputs: paced, asynchronous read-back, then a hand-off that never waits.

Per frame, right after the program is drawn, ``frame()`` does for each feed that is due (a feed is
one size and rate: the outputs share one, the recording may have its own):
1. map the pixel buffer a grab two ticks ago filled (the GPU finished it long ago: nothing waits);
2. hand that frame to each sink's one-slot mailbox (``Sink.offer``: a replace under a lock);
3. queue this frame's scale pass and read-back into the next buffer, and return.
Sinks send from their own threads, so a slow or vanished receiver drops its own frames, never the
show's. Recording starts and stops on a control thread of its own: opening a file or flushing
the encoder never touches the render thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import moderngl
import numpy as np

from engine.config import Config, parse_wxh
from engine.output.sink import OutputFrame, OutputState, Sink
from engine.render.preview import PreviewGrabber

log = logging.getLogger(__name__)

READBACK_BUFFERS = 3  # a poll maps the grab made two ticks before: "at most two frames late"
DUE_SLACK_S = 0.002  # a tick due a hair after this frame is taken now, not a whole frame late


@dataclass
class Feed:
    """One read-back size and rate, and the sinks fed from it."""

    size: tuple[int, int]  # (0, 0): the program's size
    fps: float  # 0: every frame
    sinks: list[Sink] = field(default_factory=list)
    reader: PreviewGrabber | None = None
    due: float = float("-inf")
    failed: bool = False

    def is_due(self, now: float) -> bool:
        return self.fps <= 0 or now >= self.due - DUE_SLACK_S

    def advance(self, now: float) -> None:
        if self.fps <= 0:
            return
        step = 1.0 / self.fps
        # On time: keep the grid (no drift); far behind (a stall, the first tick): start again from now.
        self.due = self.due + step if now - self.due < step else now + step


def make_sinks(cfg: Config, size: tuple[int, int], fps: float) -> list[Sink]:
    """The outputs the config turns on, each already starting on its own thread."""
    out = cfg.output
    sinks: list[Sink] = []
    if out.ndi:
        from engine.output.ndi import NdiSink

        sinks.append(NdiSink(out.ndi, alpha=out.ndi_alpha, fps=max(1, round(fps))))
    if out.virtualcam:
        from engine.output.virtualcam import VirtualCamSink

        sinks.append(VirtualCamSink(size, fps, out.virtualcam_device))
    if out.syphon:
        from engine.output.syphon import SyphonSink

        sinks.append(SyphonSink(out.syphon))
    if out.spout:
        from engine.output.spout import SpoutSink

        sinks.append(SpoutSink(out.spout))
    return sinks


class RecorderLike(Sink, Protocol):
    """What the hub needs of a recorder (engine/output/record.py's Recorder, or MissingRecorder)."""

    @property
    def recording(self) -> bool: ...

    def start(self, path: Path | None = None) -> Path: ...

    def stop(self) -> None: ...

    def push_audio(self, block: np.ndarray, sample_rate: int) -> None: ...


def _make_recorder(
    cfg: Config, size: tuple[int, int], fps: float, audio: tuple[int, int] | None
) -> RecorderLike:
    try:
        from engine.output.record import Recorder, RecordSettings
    except ImportError as err:  # PyAV missing or broken: the show runs, recording says why it cannot
        return MissingRecorder(f"no recording: PyAV does not load ({err}); pip install av")
    rec = cfg.record
    settings = RecordSettings(Path(cfg.store.output_dir) / "recordings", rec.preset, rec.bitrate, size, fps)
    # The drivers stamp frames with time.perf_counter(): the audio's arrival times must be on the same clock.
    return Recorder(settings, fps, audio if rec.audio else None, clock=time.perf_counter)


class OutputHub:
    """Owns the feeds, the sinks and the recorder; ``frame()`` on the render thread, the rest from anywhere."""

    def __init__(
        self,
        ctx: moderngl.Context,
        cfg: Config,
        program_size: tuple[int, int],
        show_fps: float,
        audio: tuple[int, int] | None = None,
        sinks: Sequence[Sink] | None = None,
        recorder: RecorderLike | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.clock = clock
        out_size = parse_wxh("[output] size", cfg.output.size)
        out_size = out_size if out_size != (0, 0) else program_size
        out_fps = cfg.output.fps
        self.sinks = list(sinks) if sinks is not None else make_sinks(cfg, out_size, out_fps or show_fps)
        self.feeds: list[Feed] = []
        if self.sinks:
            self.feeds.append(Feed(out_size, out_fps, list(self.sinks)))
        rec = cfg.record
        rec_size = parse_wxh("[record] size", rec.size)
        rec_size = rec_size if rec_size != (0, 0) else program_size
        rec_fps = rec.fps or show_fps or 60.0
        self.recorder: RecorderLike = recorder or _make_recorder(cfg, rec_size, rec_fps, audio)
        # The recording shares the outputs' read-back when it asks for the same size and rate.
        shared = next((f for f in self.feeds if f.size == rec_size and f.fps == rec.fps), None)
        if shared is not None:
            shared.sinks.append(self.recorder)
        else:
            self.feeds.append(Feed(rec_size, rec.fps or rec_fps, [self.recorder]))
        self.errors: list[str] = []  # read-back failures, for the HUD (the show reports them)
        self._control: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._record_note = ""  # the last start failure, shown until the next start
        self._control_thread = threading.Thread(target=self._control_loop, name="output-control", daemon=True)
        self._control_thread.start()
        if rec.enabled:  # before the first frame (start-up may wait on a disk; a show never does)
            self._apply("start", rec.file)

    # --- the render thread ---------------------------------------------------------------
    def frame(self, target: moderngl.Framebuffer, size: tuple[int, int], now: float, index: int) -> None:
        """After the program is drawn into ``target``: feed every due output; never waits, never raises."""
        for feed in self.feeds:
            if feed.failed or not feed.is_due(now):
                continue
            if feed.sinks == [self.recorder] and not self.recorder.recording:
                feed.reader = self._drop_reader(feed.reader)  # nothing to feed: no GPU work at all
                continue
            feed.advance(now)
            try:
                self._tick(feed, target, size, now, index)
            except Exception as err:
                feed.failed = True
                message = f"outputs: read-back turned off for this show: {type(err).__name__}: {err}"
                log.error("%s", message)
                self.errors.append(message)

    def _tick(self, feed: Feed, target: moderngl.Framebuffer, size: tuple[int, int], now: float, index: int) -> None:
        if feed.reader is None:
            w, h = feed.size
            feed.reader = PreviewGrabber(self.ctx, w, size=(w, h), components=4, buffers=READBACK_BUFFERS)
        pixels = feed.reader.poll()
        if pixels is not None:
            stamp = feed.reader.stamp
            assert isinstance(stamp, tuple)
            frame = OutputFrame(pixels, float(stamp[0]), int(stamp[1]))
            for sink in feed.sinks:
                sink.offer(frame)
        feed.reader.grab(target, size, (now, index))

    @staticmethod
    def _drop_reader(reader: PreviewGrabber | None) -> None:
        if reader is not None:
            reader.release()

    # --- recording (any thread) ---------------------------------------------------------------
    def record(self, on: bool | None = None, file: str = "") -> None:
        """Start (a new file each time), stop, or toggle (None) the recording, on the control thread."""
        self._control.put(("toggle" if on is None else "start" if on else "stop", file))

    def push_audio(self, block: np.ndarray, rate: int) -> None:
        """The audio thread's blocks, for the recording (dropped while it is off)."""
        self.recorder.push_audio(block, rate)

    def _control_loop(self) -> None:
        while True:
            op, file = self._control.get()
            if op == "quit":
                return
            if op == "toggle":
                op = "stop" if self.recorder.recording else "start"
            self._apply(op, file)

    def _apply(self, op: str, file: str) -> None:
        try:
            if op == "start":
                path = self.recorder.start(Path(file) if file else None)
                self._record_note = ""
                log.info("recording to %s", path)
            else:
                self.recorder.stop()
                log.info("recording stopped")
        except Exception as err:  # RecordError: the folder or the disk; the show goes on either way
            self._record_note = str(err)
            log.error("recording: %s", err)

    # --- state --------------------------------------------------------------------------------
    def states(self) -> tuple[OutputState, ...]:
        rec = self.recorder.state()
        if rec.state == "off" and self._record_note:
            rec = OutputState(rec.name, "error", self._record_note, file=rec.file)
        return (*(s.state() for s in self.sinks), rec)

    def close(self, timeout: float = 10.0) -> None:
        """At the end of the show: finalise the recording (this waits for the encoder), close the sinks."""
        self._control.put(("quit", ""))
        self._control_thread.join(timeout)
        for feed in self.feeds:  # the last frames drawn, still in flight, go out too
            if feed.reader is not None and not feed.failed:
                try:
                    for pixels, stamp in feed.reader.drain():
                        assert isinstance(stamp, tuple)
                        for sink in feed.sinks:
                            sink.offer(OutputFrame(pixels, float(stamp[0]), int(stamp[1])))
                except Exception as err:
                    log.warning("outputs: the last frames were lost: %s", err)
        self.recorder.close()
        for sink in self.sinks:
            sink.close()
        for feed in self.feeds:
            feed.reader = self._drop_reader(feed.reader)


class MissingRecorder:
    """Stands in for the recorder when PyAV does not import: recording is one status line, not a failed start."""

    name = "record"
    recording = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def start(self, path: Path | None = None) -> Path:
        raise RuntimeError(self.reason)

    def stop(self) -> None:
        pass

    def offer(self, frame: OutputFrame) -> None:
        pass

    def push_audio(self, block: np.ndarray, sample_rate: int) -> None:
        pass

    def state(self) -> OutputState:
        return OutputState("record", "unavailable", self.reason)

    def close(self) -> None:
        pass


def recorded_audio(cfg: Config) -> tuple[int, int] | None:
    """(sample rate, channels) the audio input will deliver, for the recording; None when there is none."""
    if cfg.audio.file:
        try:
            import soundfile

            info = soundfile.info(cfg.audio.file)
            return int(info.samplerate), int(info.channels)
        except Exception:  # unreadable: the audio thread says so on the HUD; the recording has no sound
            return None
    if cfg.audio.device != "none":
        return cfg.audio.samplerate, cfg.audio.channels
    return None
