"""Where the sound comes from: a sound card (sounddevice), a file (rehearsal), or silence.

The audio thread owns one source at a time and hands fixed-size blocks to a
consumer (the analyzer). A device that is missing, vanishes mid-show, or a
machine without PortAudio never stops the show: the source says "no audio" once,
silence keeps the beat clock (tap tempo) running, and the device is tried again
every few seconds until it comes back.

The device layer is a seam (``DeviceLayer``) so tests simulate a card that
disappears and returns without any sound hardware.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

RETRY_S = 2.0  # how often a missing device is tried again
STALL_S = 1.5  # no blocks for this long from an open stream: the device is gone


class AudioUnavailable(Exception):
    """No sound input right now (no PortAudio, no such device, device gone)."""


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    channels: int
    samplerate: float


class Stream(Protocol):
    def close(self) -> None: ...


class DeviceLayer(Protocol):
    """What the audio thread needs from a sound library; sounddevice in the show, a fake in tests."""

    def inputs(self) -> list[DeviceInfo]: ...

    def open(self, device: int | None, samplerate: int, channels: int, blocksize: int,
             callback: Callable[[np.ndarray], None]) -> Stream: ...


class SoundDeviceLayer:
    """PortAudio through sounddevice, imported only when used (it raises without PortAudio)."""

    def _sd(self) -> Any:
        try:
            import sounddevice
        except OSError as err:  # "PortAudio library not found"
            raise AudioUnavailable(f"no PortAudio ({err}); on Debian install libportaudio2") from err
        return sounddevice

    def inputs(self) -> list[DeviceInfo]:
        sd = self._sd()
        try:
            devices = sd.query_devices()
        except Exception as err:
            raise AudioUnavailable(f"cannot list sound devices: {err}") from err
        return [DeviceInfo(i, str(d["name"]), int(d["max_input_channels"]), float(d["default_samplerate"]))
                for i, d in enumerate(devices) if int(d["max_input_channels"]) > 0]

    def open(self, device: int | None, samplerate: int, channels: int, blocksize: int,
             callback: Callable[[np.ndarray], None]) -> Stream:
        sd = self._sd()

        def on_block(indata: np.ndarray, frames: int, t: object, status: object) -> None:
            callback(indata.copy())

        try:
            stream = sd.InputStream(samplerate=samplerate, blocksize=blocksize, device=device, channels=channels,
                                    dtype="float32", callback=on_block)
            stream.start()
        except Exception as err:  # PortAudioError and friends
            raise AudioUnavailable(f"cannot open the input: {err}") from err
        return stream  # type: ignore[no-any-return]


def find_device(layer: DeviceLayer, wanted: str) -> tuple[int | None, DeviceInfo | None]:
    """``"default"``, an index, or part of a device name → (index for the layer, its info)."""
    devices = layer.inputs()
    if wanted in ("", "default"):
        if not devices:
            raise AudioUnavailable("no input devices")
        return None, devices[0]
    if wanted.isdigit():
        match = next((d for d in devices if d.index == int(wanted)), None)
    else:
        match = next((d for d in devices if wanted.lower() in d.name.lower()), None)
    if match is None:
        names = ", ".join(f"{d.index}: {d.name}" for d in devices) or "none"
        raise AudioUnavailable(f"no input device {wanted!r} (inputs: {names})")
    return match.index, match


@dataclass(frozen=True)
class AudioStatus:
    """What the HUD and the VJ page say about the sound input."""

    source: str  # "device", "file", "none"
    ok: bool
    detail: str


class AudioThread:
    """Feeds ``consumer(block, samplerate)`` with blocks from the chosen source, forever, never raising."""

    def __init__(self, consumer: Callable[[np.ndarray, int], None], *, device: str = "none", file: str = "",
                 samplerate: int = 48000, channels: int = 2, blocksize: int = 512,
                 layer: DeviceLayer | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, retry_s: float = RETRY_S,
                 stall_s: float = STALL_S) -> None:
        self.consumer = consumer
        self.device = device
        self.file = file
        self.samplerate = samplerate
        self.channels = channels
        self.blocksize = blocksize
        self.layer = layer or SoundDeviceLayer()
        self.clock = clock
        self.sleep = sleep
        self.retry_s = retry_s
        self.stall_s = stall_s
        self.status = AudioStatus("none", False, "no audio")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._blocks: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
        self._warned: set[str] = set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audio", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("audio: %s", message)

    def _run(self) -> None:
        try:
            if self.file:
                self._play_file(Path(self.file))
            elif self.device == "none":
                self.status = AudioStatus("none", False, "no audio (audio.device = \"none\")")
                self._silence(until=self._stop.is_set)
            else:
                self._live()
        except Exception:  # the audio side must never take the show down
            log.exception("audio thread failed; the show goes on without audio")
            self.status = AudioStatus("none", False, "no audio (audio thread failed)")

    # --- sources ------------------------------------------------------------------------
    def _paced(self, blocks: Iterator[np.ndarray], rate: int, until: Callable[[], bool]) -> None:
        """Hand blocks to the consumer at the sound card's pace; after a long stall, carry on from now."""
        period = self.blocksize / rate
        next_at = self.clock()
        for block in blocks:
            if until():
                return
            self.consumer(block, rate)
            next_at += period
            delay = next_at - self.clock()
            if delay > 0:
                self.sleep(delay)
            elif delay < -1.0:
                next_at = self.clock()

    def _silence(self, until: Callable[[], bool], seconds: float | None = None) -> None:
        """Silent blocks in real time: the beat clock (tap tempo, manual bpm) keeps running."""
        zeros = np.zeros((self.blocksize, self.channels), np.float32)
        end = None if seconds is None else self.clock() + seconds
        self._paced(itertools.repeat(zeros), self.samplerate,
                    lambda: until() or (end is not None and self.clock() >= end))

    def _live(self) -> None:
        while not self._stop.is_set():
            try:
                index, info = find_device(self.layer, self.device)
                stream = self.layer.open(index, self.samplerate, self.channels, self.blocksize, self._blocks.put)
            except AudioUnavailable as err:
                self.status = AudioStatus("device", False, f"no audio: {err}")
                self._warn_once(f"{err}; the show runs on, trying again every {self.retry_s:g} s")
                self._silence(until=self._stop.is_set, seconds=self.retry_s)
                continue
            name = info.name if info else str(index)
            log.info("audio: listening to %s", name)
            self._warned.clear()
            self.status = AudioStatus("device", True, name)
            try:
                self._pump_stream()
            finally:
                stream.close()
            if not self._stop.is_set():
                self.status = AudioStatus("device", False, f"no audio: {name} went away")
                self._warn_once(f"{name} stopped sending sound; waiting for it to come back")

    def _pump_stream(self) -> None:
        """Hand the callback's blocks to the consumer; return when the device goes quiet for good."""
        while not self._stop.is_set():
            try:
                block = self._blocks.get(timeout=self.stall_s)
            except queue.Empty:
                return
            self.consumer(block, self.samplerate)

    def _play_file(self, path: Path) -> None:
        """A WAV/FLAC/OGG file as the input, in real time, looping (rehearsal without a mixer)."""
        try:
            import soundfile
        except OSError as err:
            raise AudioUnavailable(f"cannot read audio files ({err})") from err
        try:
            data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except (RuntimeError, OSError) as err:  # soundfile.LibsndfileError is a RuntimeError
            self.status = AudioStatus("file", False, f"no audio: cannot read {path.name}")
            self._warn_once(f"cannot read {path}: {err}")
            self._silence(until=self._stop.is_set)
            return
        self.samplerate = int(rate)
        self.status = AudioStatus("file", True, path.name)
        log.info("audio: playing %s as the input (%d Hz, %d ch, looping)", path.name, rate, data.shape[1])
        self._paced(_looped(data, self.blocksize), int(rate), self._stop.is_set)


def _looped(data: np.ndarray, blocksize: int) -> Iterator[np.ndarray]:
    """A recording as endless blocks, starting over at the end."""
    pos = 0
    while True:
        yield data[pos : pos + blocksize]
        pos += blocksize
        if pos >= len(data):
            pos = 0


def list_devices(layer: DeviceLayer | None = None) -> str:
    """``python -m engine devices``: one line per input device, or why there are none."""
    layer = layer or SoundDeviceLayer()
    try:
        devices = layer.inputs()
    except AudioUnavailable as err:
        return f"no audio input: {err}"
    if not devices:
        return "no input devices found"
    return "\n".join(f"{d.index}: {d.name} ({d.channels} ch, {d.samplerate:g} Hz)" for d in devices)
