"""The audio input survives missing, vanishing and returning devices (a simulated device layer)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import pytest

from engine.audio.input import CHILD, AudioThread, AudioUnavailable, DeviceInfo, find_device, list_devices
from tests.fakes import wait_for
from tests.jack import JackServer


class FakeCard:
    """A sound card that can be unplugged and plugged back in; like PortAudio, the list of devices is the one
    seen at the last look (``rescan``), whatever happened since."""

    def __init__(self, present: bool = True) -> None:
        self.present = present
        self.seen = present
        self.opened = 0
        self.rescans = 0

    def inputs(self) -> list[DeviceInfo]:
        return [DeviceInfo(3, "Mixer USB", 2, 48000.0)] if self.seen else []

    def rescan(self) -> None:
        self.rescans += 1
        self.seen = self.present

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


def test_a_returning_device_is_found_by_a_rescan() -> None:
    """The device list is the one of the last look: the first try uses it as is, every later try looks again,
    so a card that was missing at the start, or went away, is found when it is back."""
    card, sink = FakeCard(present=False), Sink()
    audio = AudioThread(sink, device="Mixer", layer=card, retry_s=0.05, stall_s=0.1, blocksize=64)
    audio.start()
    try:
        wait_for(lambda: card.rescans >= 2, what="no rescan between tries")
        assert not audio.status.ok and "no input device 'Mixer'" in audio.status.detail
        card.present = True
        wait_for(lambda: audio.status.ok, what="the card plugged in after the start was not found")
        card.present = False
        wait_for(lambda: not audio.status.ok)
        card.present = True
        wait_for(lambda: audio.status.ok, what="the card that came back was not found")
        assert card.opened == 2
    finally:
        audio.stop()

    present = FakeCard()
    audio = AudioThread(Sink(), device="Mixer", layer=present, retry_s=0.05, stall_s=0.1, blocksize=64)
    audio.start()
    try:
        wait_for(lambda: audio.status.ok)
    finally:
        audio.stop()
    assert present.rescans == 0  # the first try looks at what the layer saw when it started


def test_a_failing_rescan_is_no_audio_not_the_end() -> None:
    """A rescan that raises anything: "no audio" with the reason, silence flows, and the next try goes on."""
    class Flaky(FakeCard):
        broken = True

        def rescan(self) -> None:
            if self.broken:
                raise RuntimeError("PortAudio fell over")
            super().rescan()

    card, sink = Flaky(present=False), Sink()
    audio = AudioThread(sink, device="Mixer", layer=card, retry_s=0.05, blocksize=64)
    audio.start()
    try:
        wait_for(lambda: "PortAudio fell over" in audio.status.detail)
        assert audio.status.detail == ("no audio: cannot look at the sound devices again: "
                                       "RuntimeError: PortAudio fell over")
        mark = len(sink.blocks)
        wait_for(lambda: len(sink.blocks) > mark + 5)
        card.present, card.broken = True, False
        wait_for(lambda: audio.status.ok and sink.loud_since(mark))
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


# --- a real device: PortAudio's JACK input, from a dummy JACK server that dies and comes back -----------
def test_jack_server_killed_and_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PortAudio through sounddevice (in its child processes) on a private dummy JACK server: blocks arrive
    from its "system" input; SIGKILL of jackd: "no audio" within seconds, the show process unharmed; jackd
    started again under the same name: the input is found again (a fresh look) and blocks arrive again."""
    jack = JackServer(f"stagecraft-audio-{os.getpid()}", tmp_path / "jackd.log")
    for name, value in jack.env.items():
        if name.startswith("JACK_"):
            monkeypatch.setenv(name, value)
    from_device: list[int] = []  # blocks that came while the status said the device was there
    kinds: set[tuple[tuple[int, ...], str, int]] = set()

    def consume(block: np.ndarray, rate: int) -> None:
        kinds.add((block.shape, str(block.dtype), rate))
        if audio.status.ok:
            from_device.append(1)

    audio = AudioThread(consume, device="system", samplerate=48000, channels=2, blocksize=512,
                        retry_s=0.5, stall_s=0.5)

    def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"{what} within {timeout:g} s; audio: {audio.status.detail}\n{jack.log()[-1500:]}")
            time.sleep(0.01)

    jack.start()
    try:
        audio.start()
        until(lambda: audio.status.ok and len(from_device) > 20, 10.0, "no blocks from JACK's system input")
        assert audio.status.detail == "system"
        jack.kill()
        until(lambda: not audio.status.ok, 5.0, "the dead JACK server went unnoticed")
        assert audio.status.detail.startswith("no audio")
        jack.start()
        until(lambda: audio.status.ok, 10.0, "the JACK input did not come back")
        mark = len(from_device)
        until(lambda: len(from_device) > mark + 20, 5.0, "no blocks from the JACK server started again")
    finally:
        audio.stop()
        jack.stop()
    assert kinds == {((512, 2), "float32", 48000)}
    assert not [p for p in psutil.Process().children(recursive=True) if _runs(p, str(CHILD))], \
        "PortAudio's processes outlived the audio thread"


def _runs(process: psutil.Process, script: str) -> bool:
    try:
        return script in process.cmdline()
    except psutil.Error:  # gone meanwhile
        return False
