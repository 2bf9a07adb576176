"""The show recorder (engine/output/record.py): real H.264/AAC files, read back with PyAV."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO, cast

import av
import av.error
import numpy as np
import pytest

from engine.output.record import Recorder, RecordError, RecordSettings
from engine.output.sink import OutputFrame
from tests.fakes import FakeClock, wait_for

ROOT = Path(__file__).resolve().parent.parent
FPS = 30
SIZE = (320, 180)


def picture(i: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A smooth RGBA picture that is different for each ``i``: gradients that slide with the frame number."""
    w, h = size
    x = np.linspace(0.0, 1.0, w)[None, :]
    y = np.linspace(0.0, 1.0, h)[:, None]
    px = np.empty((h, w, 4), np.uint8)
    px[..., 0] = 40 + 170 * (0.5 + 0.5 * np.sin(2 * np.pi * (x + i / 97)))
    px[..., 1] = 40 + 170 * y
    px[..., 2] = 40 + (i * 7) % 170
    px[..., 3] = 255
    return px


def wait_room(rec: Recorder, sent: int) -> None:
    """Wait until at most two of the ``sent`` frames are still queued (or the recording has ended)."""

    def room() -> bool:
        state = rec.state()
        return state.state != "on" or state.frames + state.dropped >= sent - 2

    wait_for(room, what="the encoder keeps up", step=0.002)


def offer_paced(rec: Recorder, count: int, t0: float, size: tuple[int, int] = SIZE) -> None:
    """Offer ``count`` frames 1/FPS apart in show time, as fast as the encoder takes them (none dropped)."""
    for i in range(count):
        wait_room(rec, i)
        rec.offer(OutputFrame(picture(i, size), t0 + i / FPS, i))


def decoded_frames(path: Path) -> list[np.ndarray]:
    """Every video frame PyAV can read, as RGBA; a cut file ends where its last whole fragment does."""
    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        try:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgba"))
        except av.error.InvalidDataError:
            pass
    return frames


def stream_seconds(path: Path, kind: str) -> float:
    """The duration of the file's first ``kind`` ("video" or "audio") stream, as its container says."""
    with av.open(str(path)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        assert stream.duration is not None
        return float(stream.duration * stream.time_base)


def assert_close_picture(got: np.ndarray, want: np.ndarray, tol: float = 4.0) -> None:
    """H.264 is lossy: the mean absolute difference of the colour channels stays under ``tol`` levels."""
    diff = np.abs(got[..., :3].astype(np.int16) - want[..., :3].astype(np.int16)).mean()
    assert diff < tol, f"decoded picture differs by {diff:.2f} levels on average"


def test_ten_seconds_decode_to_300_frames_at_30_fps(tmp_path: Path) -> None:
    """300 frames offered 1/30 s apart make a 10 s file at 30 fps whose frame 150 looks as offered."""
    rec = Recorder(RecordSettings(tmp_path, bitrate=2000), fps=FPS)
    path = rec.start()
    offer_paced(rec, 300, time.monotonic())
    rec.stop()
    frames = decoded_frames(path)
    assert abs(len(frames) - 300) <= 2
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == SIZE
        assert video.average_rate == FPS
    assert stream_seconds(path, "video") == pytest.approx(10.0, abs=0.1)
    assert_close_picture(frames[150], picture(150))
    state = rec.state()
    assert (state.state, state.frames, state.dropped, state.file) == ("off", 300, 0, str(path))
    assert state.bytes == path.stat().st_size


def test_an_odd_frame_size_is_cropped_to_even(tmp_path: Path) -> None:
    """yuv420p needs even sizes: a 321x181 program is recorded at 320x180, the picture unmoved."""
    rec = Recorder(RecordSettings(tmp_path), fps=FPS)
    path = rec.start()
    offer_paced(rec, 10, time.monotonic(), size=(321, 181))
    rec.stop()
    frames = decoded_frames(path)
    assert frames[5].shape == (180, 320, 4)
    assert_close_picture(frames[5], picture(5, (321, 181))[:180, :320])


def test_audio_is_recorded_beside_the_video(tmp_path: Path) -> None:
    """A 440 Hz sine pushed with 3 s of frames gives an AAC stream of about 3 s, not silent."""
    rate = 48000
    clock = FakeClock(start=1000.0)
    rec = Recorder(RecordSettings(tmp_path, bitrate=1000), fps=FPS, audio=(rate, 2), clock=clock)
    path = rec.start()
    block = rate // FPS
    for i in range(3 * FPS):
        wait_room(rec, i)
        rec.offer(OutputFrame(picture(i), 1000.0 + i / FPS, i))
        clock.now = 1000.0 + (i + 1) / FPS  # the block captured during this frame arrives at its end
        t = np.arange(i * block, (i + 1) * block) / rate
        sine = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        rec.push_audio(np.stack([sine, sine], axis=1), rate)
    rec.stop()
    assert stream_seconds(path, "audio") == pytest.approx(3.0, abs=0.1)
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context.channels == 2
        samples = np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)])
    assert 0.3 < float(np.sqrt(np.mean(samples**2))) < 0.4  # a 0.5 sine's RMS is 0.354


CHILD = """
import signal, sys, time
from pathlib import Path
from engine.output.record import Recorder, RecordSettings
from engine.output.sink import OutputFrame
import numpy as np

path = Path(sys.argv[1])
rec = Recorder(RecordSettings(path.parent, preset="ultrafast", bitrate=500), fps=30)
running = True

def on_term(signum, frame):
    global running
    rec.stop()  # as the engine does
    running = False

signal.signal(signal.SIGTERM, on_term)
rec.start(path)
print("started", flush=True)
t0, i = time.monotonic(), 0
while running:
    time.sleep(max(0.0, t0 + i / 30 - time.monotonic()))
    if running:
        px = np.full((180, 320, 4), 255, np.uint8)
        px[:, :, 0] = (np.arange(320) + 3 * i) % 256
        rec.offer(OutputFrame(px, t0 + i / 30, i))
        i += 1
        print("offered", i, rec.state().dropped, flush=True)
s = rec.state()
print("done", s.frames, s.seconds, s.dropped, flush=True)
"""


def record_in_child(path: Path, sig: signal.Signals, after: float) -> list[str]:
    """Run a recording in real time in another process; send it ``sig`` ``after`` s; its output lines."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=ROOT, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        assert proc.stdout is not None
        try:
            lines = [proc.stdout.readline().strip()]
            assert lines[0] == "started", lines[0] + proc.stdout.read()
            deadline = time.monotonic() + after
            while time.monotonic() < deadline:
                lines.append(proc.stdout.readline().strip())
            proc.send_signal(sig)
            lines += proc.stdout.read().split("\n")
            proc.wait(10)
        finally:
            proc.kill()
    return [line for line in lines if line]


def offered(lines: list[str]) -> tuple[int, int]:
    """The frames the child offered, and how many of them it had dropped by then (a starved encoder)."""
    last = [line.split() for line in lines if line.startswith("offered")][-1]
    return int(last[1]), int(last[2])


def test_a_killed_recording_keeps_all_but_its_last_second(tmp_path: Path) -> None:
    """SIGKILL mid-show: the file decodes up to its last fragment, which holds all but the last second."""
    path = tmp_path / "killed.mp4"
    lines = record_in_child(path, signal.SIGKILL, after=2.5)
    sent, dropped = offered(lines)
    assert sent >= 2 * FPS, lines[-3:]
    assert len(decoded_frames(path)) >= sent - dropped - FPS


def test_sigterm_stops_the_recording_cleanly(tmp_path: Path) -> None:
    """SIGTERM with a handler calling stop(): the file is whole, its frames and duration as recorded."""
    path = tmp_path / "terminated.mp4"
    lines = record_in_child(path, signal.SIGTERM, after=1.5)
    done = next(line.split() for line in lines if line.startswith("done"))
    frames, seconds, dropped = int(done[1]), float(done[2]), int(done[3])
    assert frames > FPS
    assert frames + dropped >= offered(lines)[0] - 1  # every frame offered before stop() is in the file
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == frames  # raises if the file is cut
    assert stream_seconds(path, "video") == pytest.approx(seconds, abs=1.5 / FPS)


class FullDisk:
    """A file on a disk that fills up after ``room`` bytes: the rest of that write, and every later one, fail."""

    def __init__(self, path: Path, room: int) -> None:
        self.file = open(path, "xb", buffering=0)  # noqa: SIM115 (closed by the recorder, as a file it opens)
        self.room = room

    def write(self, data: Any) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = self.file.write(memoryview(data)[: self.room])
        self.room -= n
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


def test_a_full_disk_stops_the_recording_with_a_plain_message(tmp_path: Path) -> None:
    """ENOSPC mid-recording: state "error" naming the disk, offers still return, what was written decodes."""
    rec = Recorder(RecordSettings(tmp_path, bitrate=1000), fps=FPS,
                   opener=lambda p: cast(BinaryIO, FullDisk(p, room=200_000)))
    path = rec.start()
    noise = np.random.default_rng(1).integers(0, 256, (SIZE[1], SIZE[0], 4), np.uint8)
    t0, i = time.monotonic(), 0
    while rec.state().state == "on" and i < 30 * FPS:  # noise costs the full bitrate: about 2 s fill it
        wait_room(rec, i)
        rec.offer(OutputFrame(np.roll(noise, i, axis=1), t0 + i / FPS, i))
        i += 1
    state = rec.state()
    assert state.state == "error"
    assert state.detail.startswith("disk full: recording stopped after ")
    assert str(path) in state.detail
    for j in range(100):
        rec.offer(OutputFrame(picture(j), t0 + (i + j) / FPS, i + j))
    assert rec.state().frames == state.frames
    rec.stop()
    rec.close()
    assert rec.state().state == "error"
    assert len(decoded_frames(path)) >= FPS // 2


def test_after_an_error_a_new_start_tries_again(tmp_path: Path) -> None:
    """A recording stopped by a full disk leaves the recorder ready: the next start() makes a new file."""
    rooms = [1000, 10_000_000]
    rec = Recorder(RecordSettings(tmp_path), fps=FPS, opener=lambda p: cast(BinaryIO, FullDisk(p, rooms.pop(0))))
    first = rec.start()
    offer_paced(rec, FPS, time.monotonic())
    wait_for(lambda: rec.state().state == "error", what="the full disk stops the recording")
    second = rec.start()
    assert second != first and rec.recording
    offer_paced(rec, 5, time.monotonic())
    rec.stop()
    assert (rec.state().state, rec.state().file) == ("off", str(second))
    assert len(decoded_frames(second)) == 5


def test_a_folder_that_cannot_be_made_refuses_to_start(tmp_path: Path) -> None:
    """A folder under a regular file: RecordError naming the folder and why; the recorder stays off."""
    (tmp_path / "file").write_text("not a folder")
    folder = tmp_path / "file" / "recordings"
    rec = Recorder(RecordSettings(folder), fps=FPS)
    with pytest.raises(RecordError, match=r"cannot record into .*recordings: Not a directory"):
        rec.start()
    assert rec.state().state == "off"
    assert not rec.recording


def test_each_start_makes_a_new_file(tmp_path: Path) -> None:
    """Two recordings one after the other: two files, the state naming the second."""
    rec = Recorder(RecordSettings(tmp_path), fps=FPS)
    first = rec.start()
    offer_paced(rec, 5, time.monotonic())
    rec.stop()
    second = rec.start()
    offer_paced(rec, 5, time.monotonic())
    rec.stop()
    assert first != second
    assert first.name.startswith("stagecraft-") and second.name.startswith("stagecraft-")
    assert len(decoded_frames(first)) == len(decoded_frames(second)) == 5
    assert rec.state().file == str(second)


def test_start_while_recording_keeps_the_file(tmp_path: Path) -> None:
    """A second start() during a recording answers the file being written and makes no other."""
    rec = Recorder(RecordSettings(tmp_path), fps=FPS)
    path = rec.start()
    assert rec.start() == path
    assert rec.recording
    rec.close()
    assert not rec.recording
    assert list(tmp_path.iterdir()) == []  # no frame came: no empty file is left behind


def test_offers_never_wait_for_a_slow_encoder(tmp_path: Path) -> None:
    """1080p offered at 240 a second while the encoder works: every offer returns, the excess is dropped."""
    rec = Recorder(RecordSettings(tmp_path), fps=FPS)
    rec.start()
    px = picture(0, (1920, 1080))
    t0, spent, count = time.monotonic(), 0.0, 300
    for i in range(count):
        began = time.perf_counter()
        rec.offer(OutputFrame(px, t0 + i / FPS, i))
        spent += time.perf_counter() - began
        time.sleep(1 / 240)
    rec.stop()
    state = rec.state()
    print(f"\n{count} offers of 1920x1080 while encoding: {spent * 1e6 / count:.1f} µs each on average; "
          f"{state.frames} encoded, {state.dropped} dropped")
    assert state.dropped > 0
    assert state.frames + state.dropped == count
