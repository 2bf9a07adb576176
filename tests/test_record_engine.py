"""Recording the real engine, headless: the file's frames, size, rate and picture; SIGTERM finalises it."""

from __future__ import annotations

import signal
from pathlib import Path

import av
import numpy as np
from PIL import Image

from tests.engine_process import EngineProcess, run_engine
from tests.fakes import HEADLESS_ENV


def decode(path: Path) -> tuple[list[np.ndarray], float, tuple[int, int]]:
    """Every frame as RGB, the stream's average rate and its size; a cut file decodes up to the cut."""
    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.base_rate or 0)  # the stream's nominal rate (average_rate also counts any gap)
        size = (stream.codec_context.width, stream.codec_context.height)
        try:
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
        except av.error.InvalidDataError:
            pass
    return frames, rate, size


def test_a_10_s_headless_recording_has_the_frames_size_rate_and_picture_of_the_show(tmp_path: Path) -> None:
    """300 frames at 30 fps: the recording's last frame is the snapshot taken of the show's last frame."""
    out = tmp_path / "show.mp4"
    snap = tmp_path / "last.png"
    rc, log = run_engine(["--headless", "--size", "320x180", "--fps", "30", "--frames", "300", "--record", str(out),
                          "--snapshot", str(snap), "--set", "record.preset=\"ultrafast\""], tmp_path, HEADLESS_ENV,
                         timeout=90)
    assert rc == 0, log
    assert "recording to" in log and "Traceback" not in log
    frames, rate, size = decode(out)
    assert size == (320, 180)
    assert abs(rate - 30.0) < 0.01
    # Wall time decides the count (a frame's time stamp, not its number): a paced run is within a frame or two.
    assert abs(len(frames) - 300) <= 2, len(frames)
    shot = np.asarray(Image.open(snap).convert("RGB")).astype(int)
    diff = np.abs(frames[-1].astype(int) - shot).mean()
    assert diff < 4.0, diff  # H.264 at the default bitrate: a few levels of error, not another picture


def test_sigterm_mid_recording_leaves_a_whole_file(tmp_path: Path) -> None:
    out = tmp_path / "night.mp4"
    p = EngineProcess(["--headless", "--size", "320x180", "--fps", "30", "--record", str(out),
                       "--set", "record.preset=\"ultrafast\""], tmp_path, HEADLESS_ENV)
    try:
        p.wait_for(r"recording to")
        p.wait_for(r"headless: 320x180")
        import time

        time.sleep(2.0)
        p.proc.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0, p.output
        assert "Traceback" not in p.output
    finally:
        p.kill()
    with av.open(str(out)) as container:  # decodes to its end: the encoder was flushed and the file closed
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 45, frames  # about 2 s at 30 fps, whatever start-up took


def test_the_audio_input_is_recorded_with_the_picture(tmp_path: Path) -> None:
    """--audio-file plays a clip as the input; the recording carries it as an AAC stream as long as the video."""
    import soundfile

    clip = tmp_path / "tone.wav"
    t = np.arange(44100 * 4) / 44100
    soundfile.write(clip, np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], axis=1) * 0.3, 44100)
    out = tmp_path / "with-sound.mp4"
    rc, log = run_engine(["--headless", "--size", "320x180", "--fps", "30", "--frames", "90", "--record", str(out),
                          "--audio-file", str(clip), "--set", "record.preset=\"ultrafast\""], tmp_path, HEADLESS_ENV,
                         timeout=90)
    assert rc == 0, log
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac" and audio.rate == 44100 and audio.channels == 2
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert 2.0 < samples / 44100 < 3.5, samples / 44100  # about the 3 s of video, whatever start-up took
