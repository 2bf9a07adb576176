"""The show recorder: program frames (and the audio input) to an H.264/AAC MP4, from a thread of its own.

The file is a fragmented MP4: an empty moov up front, then a moof+mdat pair per fragment, cut at every
keyframe (at least one a second) and every half second. A crash or a power cut therefore costs the
last second or so, never the show's file; the file is also made durable (fsync) about once a second.

``offer`` and ``push_audio`` only put onto a ``queue.SimpleQueue``: a C queue whose ``put`` is
reentrant, because ``stop()`` may run in a SIGTERM handler that interrupted ``offer`` on the same
thread, where a lock would deadlock. Colour conversion, encoding and writing all happen on the
recorder's thread. One thread encodes both streams: PyAV's muxer is not thread-safe, AAC costs about
1 % of one core next to H.264's tens, and one queue keeps audio and video in the order they came.

Each ``start()`` makes a new session (file, queue, thread), so a session that is slow to stop never
holds up the next one.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import av
import av.error
import numpy as np
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.packet import Packet
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc
from av.video.stream import VideoStream

from engine.errors import EngineError
from engine.output.sink import OutputFrame, OutputState

log = logging.getLogger(__name__)

PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
QUEUE_FRAMES = 4  # frames waiting for the encoder; one more is dropped (the render thread never waits)
AUDIO_BACKLOG_S = 5.0  # audio waiting for the encoder (or for the first frame) before blocks are dropped
STOP_TIMEOUT_S = 5.0  # stop() waits this long for the encoder to flush, then gives up on it
SYNC_EVERY_S = 1.0  # fsync the file this often: a power cut loses about this much
# Fragments at keyframes and every half second; packets flushed to the file as soon as they are muxed;
# the interleaver waits at most 1 s for a silent stream (its default, 10 s, would hold video back).
MP4_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "500000",
               "flush_packets": "1", "max_interleave_delta": "1000000"}
LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


@dataclass(frozen=True)
class RecordSettings:
    """How the show is recorded ([record] in config.toml)."""

    folder: Path  # new files go here (created if missing)
    preset: str = "veryfast"  # x264 preset: slower ones give smaller files for more CPU
    bitrate: int = 8000  # kbit/s of video; 0 = constant quality (crf 20)
    size: tuple[int, int] = (0, 0)  # (0, 0) = the program's size (frames arrive already scaled to it)
    fps: float = 0.0  # 0 = the program's frame rate
    audio_bitrate: int = 192  # kbit/s AAC


class RecordError(EngineError):
    """A recording could not start: names the file (or folder) and the reason, for the VJ."""


class _Audio(NamedTuple):
    block: np.ndarray  # (frames, channels) float32, a copy the audio thread no longer touches
    offset: int  # samples pushed before this block in this recording


class _Counted:
    """The opened file as PyAV writes it: knows its size, writes whole buffers, syncs once a second."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.pos = 0
        self.size = 0
        self._synced = time.monotonic()
        self._syncing = threading.Event()  # a background fsync is running

    def write(self, data: bytes) -> int:
        view, done = memoryview(data), 0
        while done < len(view):  # an unbuffered file may take part of a buffer: FFmpeg would lose the rest
            n = self.raw.write(view[done:])
            if not n:
                raise OSError(errno.EIO, "the file took no bytes")
            done += n
        self.pos += done
        self.size = max(self.size, self.pos)
        if time.monotonic() - self._synced >= SYNC_EVERY_S and not self._syncing.is_set():
            # On a thread of its own: an fsync took up to 117 ms on a busy disk here, longer than the
            # encoder's queue of frames lasts at 60 fps. Writing goes on meanwhile (fsync releases the GIL).
            self._synced = time.monotonic()
            self._syncing.set()
            threading.Thread(target=self._sync_in_background, name="record-sync", daemon=True).start()
        return done

    def _sync_in_background(self) -> None:
        try:
            with contextlib.suppress(OSError, ValueError):  # not a file on disk, or closed meanwhile
                os.fsync(self.raw.fileno())
        finally:
            self._syncing.clear()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.pos = self.raw.seek(offset, whence)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def seekable(self) -> bool:
        return self.raw.seekable()

    def sync(self) -> None:
        self._synced = time.monotonic()
        self.raw.flush()
        with contextlib.suppress(OSError, ValueError):  # not a file on disk (a test's stand-in)
            os.fsync(self.raw.fileno())


def _create(path: Path) -> BinaryIO:
    """Open a new file, never an existing one; unbuffered, as PyAV already buffers (32 KB)."""
    return open(path, "xb", buffering=0)


class _Session:
    """One recording: its file, its queue and the thread that encodes it.

    Each counter has one writer: ``offered``/``full`` the render thread, ``pushed``/``audio_dropped``
    the audio thread, the rest this session's thread; the others only read them.
    """

    def __init__(self, path: Path, file: _Counted, container: OutputContainer, settings: RecordSettings,
                 fps: float, audio: tuple[int, int] | None) -> None:
        self.path, self.file, self.container = path, file, container
        self.settings, self.fps, self.audio = settings, fps, audio
        self.queue: queue.SimpleQueue[OutputFrame | _Audio | None] = queue.SimpleQueue()
        self.active = True  # false once stop() is called: offers are ignored from then on
        self.error: str | None = None
        self.offered = self.full = 0
        self.pushed = self.audio_dropped = 0
        self.audio_origin: float | None = None  # when the first pushed sample was captured
        self.taken = self.late = self.frames = self.audio_taken = 0
        self.last_pts = -1
        self.t0 = 0.0
        self.video: VideoStream | None = None
        self.sound: AudioStream | None = None
        self.audio_base: int | None = None  # pts of pushed sample 0, in samples from the first frame
        self.next_sample = 0
        self.pending: list[_Audio] = []  # audio that came before the first frame (no streams yet)
        self.thread = threading.Thread(target=self.run, name="output-record", daemon=True)

    @property
    def seconds(self) -> float:
        return (self.last_pts + 1) / self.fps if self.frames else 0.0

    def run(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                if isinstance(item, OutputFrame):
                    self._video(item)
                else:
                    self._audio(item)
            self._finish()
        except Exception as err:  # a write error (disk full, USB stick pulled) ends this file, not the show
            self._fail(err)

    def _open_streams(self, frame: OutputFrame) -> None:
        """Streams are made at the first frame: with size (0, 0) it is the first frame that tells the size."""
        self.t0 = frame.time
        w, h = self.settings.size if self.settings.size != (0, 0) else frame.size
        video = self.container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
        video.width, video.height, video.pix_fmt = max(2, w - w % 2), max(2, h - h % 2), "yuv420p"
        cc = video.codec_context
        cc.gop_size = max(1, round(self.fps))
        # Tagged BT.709 as converted: untagged, players guess BT.601 for small sizes and shift the colours.
        cc.colorspace, cc.color_range = int(Colorspace.ITU709), int(ColorRange.MPEG)
        cc.color_primaries, cc.color_trc = int(ColorPrimaries.BT709), int(ColorTrc.BT709)
        options: dict[str, object] = {"preset": self.settings.preset}
        if self.settings.bitrate > 0:
            video.bit_rate = self.settings.bitrate * 1000
        else:
            options["crf"] = "20"
        video.options = options
        if self.audio is not None:
            sound = self.container.add_stream("aac", rate=self.audio[0], layout=LAYOUTS[self.audio[1]])
            sound.bit_rate = self.settings.audio_bitrate * 1000
            self.sound = sound
        self.video = video
        for item in self.pending:
            self._write_audio(item)
        self.pending.clear()

    def _video(self, frame: OutputFrame) -> None:
        self.taken += 1
        if self.video is None:
            self._open_streams(frame)
        assert self.video is not None
        position = (frame.time - self.t0) * self.fps  # in frames of the file's constant rate
        # A frame a little late and the next on time round into one slot: the second takes the next slot
        # (at most 0.75 of a frame early), so jitter loses nothing. Only a frame less than a quarter of a
        # frame after the last one (the show drawing faster than the file's rate) is dropped.
        pts = max(self.last_pts + 1, round(position))
        if position < self.last_pts + 0.25:
            self.late += 1
            return
        px = frame.pixels
        h, w = px.shape[0] - px.shape[0] % 2, px.shape[1] - px.shape[1] % 2  # yuv420p wants even sizes
        image = av.VideoFrame.from_ndarray(px[:h, :w], format="rgba")
        yuv = image.reformat(self.video.width, self.video.height, "yuv420p",
                             dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG)
        yuv.pts = pts
        self._mux(self.video.encode(yuv))
        self.last_pts = pts
        self.frames += 1

    def _audio(self, item: _Audio) -> None:
        self.audio_taken += len(item.block)
        if self.video is not None:
            self._write_audio(item)
            return
        self.pending.append(item)
        assert self.audio is not None
        while sum(len(a.block) for a in self.pending) > AUDIO_BACKLOG_S * self.audio[0]:
            self.pending.pop(0)  # no frame for seconds: keep the newest audio only

    def _write_audio(self, item: _Audio) -> None:
        """Audio is placed by its sample count from the first block, shifted so that it lines up with the
        first frame: samples from before that frame are cut, a late start or a gap is filled with silence."""
        assert self.audio is not None and self.audio_origin is not None
        rate, channels = self.audio
        if self.audio_base is None:
            self.audio_base = round((self.audio_origin - self.t0) * rate)
        pts, block = self.audio_base + item.offset, item.block
        if pts < self.next_sample:
            block, pts = block[self.next_sample - pts:], self.next_sample
        if not len(block):
            return
        if block.shape[1] != channels:  # the input's channels changed: repeat mono, else keep the first ones
            block = np.repeat(block, channels, axis=1) if block.shape[1] == 1 else block[:, :channels]
            block = np.pad(block, ((0, 0), (0, channels - block.shape[1])))
        if pts > self.next_sample:
            self._encode_audio(np.zeros((pts - self.next_sample, channels), np.float32))
        self._encode_audio(block)

    def _encode_audio(self, block: np.ndarray) -> None:
        assert self.audio is not None and self.sound is not None
        rate, channels = self.audio
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block).reshape(1, -1), format="flt",
                                           layout=LAYOUTS[channels])
        frame.sample_rate, frame.pts, frame.time_base = rate, self.next_sample, Fraction(1, rate)
        self._mux(self.sound.encode(frame))  # the encoder converts to fltp and 1024-sample frames itself
        self.next_sample += len(block)

    def _mux(self, packets: list[Packet[Any]]) -> None:
        if packets:
            self.container.mux(packets)

    def _finish(self) -> None:
        """Flush the encoders, write the trailer, close; a recording that never got a frame leaves no file."""
        for stream in (self.video, self.sound):
            if stream is not None:
                self._mux(stream.encode(None))
        self.container.close()
        self.file.sync()
        self.file.raw.close()
        if self.video is None and self.file.size == 0:
            self.path.unlink(missing_ok=True)
        log.info("recording stopped: %s, %.1f s, %d frames", self.path, self.seconds, self.frames)

    def _fail(self, err: Exception) -> None:
        if (isinstance(err, OSError) and err.errno == errno.ENOSPC) or "No space left" in str(err):
            why = "disk full"
        elif isinstance(err, OSError):
            why = f"write failed ({err.strerror or err})"
        else:
            why = f"{type(err).__name__}: {err}"
        self.error = f"{why}: recording stopped after {self.seconds:.1f} s (file: {self.path})"
        log.error("%s", self.error)
        for close in (self.container.close, self.file.raw.close):
            try:  # best effort: the fragments already written stay readable either way
                close()
            except Exception as again:
                log.debug("recording: closing after the error failed too: %s", again)


class Recorder:
    """Records the program (and the audio input) to MP4; a Sink (engine/output/sink.py) named "record"."""

    name = "record"

    def __init__(self, settings: RecordSettings, fps: float, audio: tuple[int, int] | None = None,
                 opener: Callable[[Path], BinaryIO] | None = None, clock: Callable[[], float] = time.monotonic,
                 ) -> None:
        if not (settings.fps or fps) > 0:
            raise ValueError(f"frame rate must be positive, not {settings.fps or fps}")
        if audio is not None and audio[1] not in LAYOUTS:
            raise ValueError(f"audio channels must be 1 to 8, not {audio[1]}")
        self.settings = settings
        self.fps = settings.fps or fps
        self.audio = audio
        self._opener = opener or _create
        self._clock = clock  # the audio's arrival times: the same clock as the frames' ``time``
        self._session: _Session | None = None
        self._rate_warned = False

    @property
    def recording(self) -> bool:
        s = self._session
        return s is not None and s.active and s.error is None

    def start(self, path: Path | None = None) -> Path:
        """Start a new file (time-stamped in the folder unless ``path`` is given); RecordError if it cannot."""
        if self.recording:
            assert self._session is not None
            return self._session.path
        folder = self.settings.folder if path is None else path.parent
        if self.settings.preset not in PRESETS:
            raise RecordError(f"cannot record into {folder}: unknown preset {self.settings.preset!r} "
                              f"(one of {', '.join(PRESETS)})")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RecordError(f"cannot record into {folder}: {err.strerror or err}") from err
        path = path or self._free_name(folder)
        try:
            raw = self._opener(path)
        except OSError as err:
            raise RecordError(f"cannot create {path}: {err.strerror or err}") from err
        file = _Counted(raw)
        try:
            container = av.open(file, mode="w", format="mp4", options=dict(MP4_OPTIONS))
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raw.close()
            path.unlink(missing_ok=True)
            raise RecordError(f"cannot start {path}: {err}") from err
        session = _Session(path, file, container, self.settings, self.fps, self.audio)
        session.thread.start()
        self._session = session
        log.info("recording to %s", path)
        return path

    def stop(self) -> None:
        """Flush and close the file; returns when it is done, or after STOP_TIMEOUT_S at most."""
        try:
            s = self._session
            if s is None or not s.active:
                return
            s.active = False
            s.queue.put(None)  # reentrant: safe in a signal handler that interrupted offer()
            s.thread.join(STOP_TIMEOUT_S)
            if s.thread.is_alive() and s.error is None:
                s.error = f"stopping took over {STOP_TIMEOUT_S:g} s: the end of {s.path} may be missing"
                log.error("%s", s.error)
        except Exception:
            log.exception("recording: stop failed")

    def offer(self, frame: OutputFrame) -> None:
        """Queue a frame for the encoder, or drop it (counted) when the encoder is behind. Never waits."""
        try:
            s = self._session
            if s is None or not s.active or s.error is not None:
                return
            if s.offered - s.taken >= QUEUE_FRAMES:
                s.full += 1
                return
            s.offered += 1
            s.queue.put(frame)
        except Exception:
            log.exception("recording: offer failed")

    def push_audio(self, block: np.ndarray, sample_rate: int) -> None:
        """Queue a (frames, channels) block from the audio thread (copied: its buffer is reused). Never waits."""
        try:
            s = self._session
            if s is None or self.audio is None or not s.active or s.error is not None:
                return
            if sample_rate != self.audio[0]:  # the encoder is fixed at start: a new rate needs a new file
                if not self._rate_warned:
                    log.warning("recording: audio at %d Hz, the file is %d Hz: not recorded", sample_rate,
                                self.audio[0])
                    self._rate_warned = True
                return
            data = np.array(block, dtype=np.float32).reshape(len(block), -1)
            if s.audio_origin is None:
                s.audio_origin = self._clock() - len(data) / sample_rate
            if s.pushed - s.audio_taken > AUDIO_BACKLOG_S * sample_rate:
                if not s.audio_dropped:
                    log.warning("recording: the encoder is %g s behind: dropping audio", AUDIO_BACKLOG_S)
                s.audio_dropped += len(data)  # its place is kept: the gap is filled with silence
            else:
                s.queue.put(_Audio(data, s.pushed))
            s.pushed += len(data)
        except Exception:
            log.exception("recording: push_audio failed")

    def state(self) -> OutputState:
        """The recording as the HUD shows it: on, off (with the last file) or error (with the reason)."""
        try:
            s = self._session
            if s is None:
                return OutputState(self.name, "off", "not recording")
            if s.error is not None:
                state, detail = "error", s.error
            elif s.active:
                state, detail = "on", f"recording {s.path.name} " + (
                    f"{s.video.width}x{s.video.height}@{self.fps:g}" if s.video else "(waiting for the first frame)")
            elif s.video is None:
                state, detail = "off", f"stopped before the first frame: {s.path.name} not kept"
            else:
                state, detail = "off", f"stopped: {s.path.name}, {s.seconds:.1f} s"
            kept = s.active or s.video is not None
            return OutputState(self.name, state, detail, frames=s.frames, dropped=s.full + s.late,
                               seconds=s.seconds, bytes=s.file.size, file=str(s.path) if kept else "")
        except Exception as err:
            return OutputState(self.name, "error", f"state unavailable: {err}")

    def close(self) -> None:
        self.stop()

    @staticmethod
    def _free_name(folder: Path) -> Path:
        stem = time.strftime("stagecraft-%Y%m%d-%H%M%S")
        path, n = folder / f"{stem}.mp4", 1
        while path.exists():
            n += 1
            path = folder / f"{stem}-{n}.mp4"
        return path
