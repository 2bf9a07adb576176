"""The audio input survives missing, vanishing and returning devices (a simulated device layer)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from engine.audio.input import AudioThread, AudioUnavailable, DeviceInfo, find_device, list_devices
from tests.fakes import wait_for


class FakeCard:
    """A sound card that can be unplugged and plugged back in."""

    def __init__(self) -> None:
        self.present = True
        self.opened = 0

    def inputs(self) -> list[DeviceInfo]:
        return [DeviceInfo(3, "Mixer USB", 2, 48000.0)] if self.present else []

    def open(self, device: int | None, samplerate: int, channels: int, blocksize: int,
             callback: Callable[[np.ndarray], None]) -> FakeStream:
        if not self.present:
            raise AudioUnavailable("gone")
        self.opened += 1
        return FakeStream(self, callback, blocksize, channels)


class FakeStream:
    def __init__(self, card: FakeCard, callback: Callable[[np.ndarray], None], blocksize: int, channels: int) -> None:
        self.card = card
        self.closed = threading.Event()
        block = np.full((blocksize, channels), 0.25, np.float32)

        def run() -> None:
            while not self.closed.is_set() and card.present:
                callback(block)
                time.sleep(0.005)
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.closed.set()


class Sink:
    def __init__(self) -> None:
        self.blocks: list[float] = []

    def __call__(self, block: np.ndarray, rate: int) -> None:
        self.blocks.append(float(np.abs(block).max()))

    def loud_since(self, n: int) -> bool:
        return any(v > 0.2 for v in self.blocks[n:])


def test_device_vanishes_and_returns() -> None:
    """Unplugged mid-run: no audio (silence keeps flowing); plugged back: sound again."""
    card, sink = FakeCard(), Sink()
    audio = AudioThread(sink, device="Mixer", layer=card, retry_s=0.1, stall_s=0.1, blocksize=64)
    audio.start()
    try:
        wait_for(lambda: audio.status.ok and sink.loud_since(0))
        card.present = False
        wait_for(lambda: not audio.status.ok)
        assert "went away" in audio.status.detail or "no audio" in audio.status.detail
        mark = len(sink.blocks)
        wait_for(lambda: len(sink.blocks) > mark + 5)  # silence keeps the beat clock going
        assert not sink.loud_since(mark + 3)
        card.present = True
        wait_for(lambda: audio.status.ok)
        mark = len(sink.blocks)
        wait_for(lambda: sink.loud_since(mark))
        assert card.opened == 2
    finally:
        audio.stop()


def test_missing_device_warns_once_and_keeps_trying(caplog: pytest.LogCaptureFixture) -> None:
    """A device that isn't there: one warning, no crash, silence flows, retried."""
    card, sink = FakeCard(), Sink()
    card.present = False
    audio = AudioThread(sink, device="Mixer", layer=card, retry_s=0.05, blocksize=64)
    audio.start()
    try:
        wait_for(lambda: len(sink.blocks) > 20)
    finally:
        audio.stop()
    assert caplog.text.count("the show runs on") == 1
    assert not audio.status.ok


def test_no_portaudio_is_not_fatal() -> None:
    """A layer that cannot even list devices gives a clear status, not an exception."""
    class NoPortAudio(FakeCard):
        def inputs(self) -> list[DeviceInfo]:
            raise AudioUnavailable("no PortAudio")

    sink = Sink()
    audio = AudioThread(sink, device="default", layer=NoPortAudio(), retry_s=0.05, blocksize=64)
    audio.start()
    try:
        wait_for(lambda: len(sink.blocks) > 5)
        assert "no PortAudio" in audio.status.detail
    finally:
        audio.stop()
    assert list_devices(NoPortAudio()).startswith("no audio input: no PortAudio")


def test_devices_by_name_index_or_default() -> None:
    """Devices are found by part of their name, by index, or as the default; unknown names list the rest."""
    card = FakeCard()
    assert find_device(card, "mixer")[0] == 3 and find_device(card, "3")[0] == 3
    assert find_device(card, "default")[0] is None
    with pytest.raises(AudioUnavailable, match=r"no input device 'Behringer' \(inputs: 3: Mixer USB\)"):
        find_device(card, "Behringer")
    assert list_devices(card) == "3: Mixer USB (2 ch, 48000 Hz)"


def test_file_plays_as_input(tmp_path: Path) -> None:
    """--audio-file: the file's samples reach the consumer at its own rate."""
    import soundfile

    path = tmp_path / "tone.wav"
    t = np.arange(4800) / 48000
    soundfile.write(str(path), (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 48000)
    rates: list[int] = []
    sink = Sink()

    def consume(block: np.ndarray, rate: int) -> None:
        rates.append(rate)
        sink(block, rate)
    audio = AudioThread(consume, file=str(path), blocksize=480)
    audio.start()
    try:
        wait_for(lambda: len(sink.blocks) > 3)
    finally:
        audio.stop()
    assert rates[0] == 48000 and max(sink.blocks) > 0.4 and audio.status.source == "file"


def test_unreadable_file_is_no_audio_not_a_crash(tmp_path: Path) -> None:
    """A broken audio file: a clear status, silence flows."""
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"not audio")
    sink = Sink()
    audio = AudioThread(sink, file=str(bad), blocksize=64)
    audio.start()
    try:
        wait_for(lambda: len(sink.blocks) > 3)
    finally:
        audio.stop()
    assert not audio.status.ok and "cannot read bad.flac" in audio.status.detail
