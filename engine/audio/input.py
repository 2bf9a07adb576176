"""Where the sound comes from: a sound card (sounddevice), a file (rehearsal), or silence.

The audio thread owns one source at a time and hands fixed-size blocks to a
consumer (the analyzer). A device that is missing, vanishes mid-show, or a
machine without PortAudio never stops the show: the source says "no audio" once,
silence keeps the beat clock (tap tempo) running, and the device is tried again
every few seconds until it comes back.

PortAudio lists the devices once, when it starts, so a device that came back is
only seen by a fresh look (``DeviceLayer.rescan``), taken before every try but the
first. The sound card's layer runs PortAudio in a child process
(``portaudio_child.py``): a JACK server that dies under PortAudio leaves it unable
to close its stream or start again in that process (it waits 10 minutes, then
aborts the process), so each look and each stream is a process of its own, and
the show only ever kills those.

The device layer is a seam (``DeviceLayer``) so tests simulate a card that
disappears and returns without any sound hardware.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import queue
import subprocess
import sys
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
CHILD = Path(__file__).with_name("portaudio_child.py")
CHILD_TIMEOUT_S = 10.0  # PortAudio's process must list the devices, or open the input, within this
CHILD_GRACE_S = 2.0  # asked to stop (its stdin closed), PortAudio's process is killed if still there after this


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

    def inputs(self) -> list[DeviceInfo]:
        """The input devices as of the last look (the first call looks)."""
        ...

    def rescan(self) -> None:
        """Look at the devices again (one plugged in, or back, since the last look). Never with a stream open."""
        ...

    def open(self, device: int | None, samplerate: int, channels: int, blocksize: int,
             callback: Callable[[np.ndarray], None]) -> Stream: ...


class SoundDeviceLayer:
    """PortAudio through sounddevice, in a child process for each look at the devices and each stream."""

    def __init__(self, timeout: float = CHILD_TIMEOUT_S) -> None:
        self.timeout = timeout
        self._inputs: list[DeviceInfo] | None = None

    def inputs(self) -> list[DeviceInfo]:
        if self._inputs is None:
            self.rescan()
        return list(self._inputs or [])

    def rescan(self) -> None:
        self._inputs = None
        proc = _start_child("list")
        try:
            reply = _first_line(proc, self.timeout)
        finally:
            _end_child(proc)
        try:
            self._inputs = [DeviceInfo(int(i), str(name), int(ch), float(rate))
                            for i, name, ch, rate in reply["inputs"]]
        except (KeyError, TypeError, ValueError) as err:
            raise AudioUnavailable(f"PortAudio's process answered {str(reply)[:200]}") from err

    def open(self, device: int | None, samplerate: int, channels: int, blocksize: int,
             callback: Callable[[np.ndarray], None]) -> Stream:
        listed = {d.index: d.name for d in self._inputs or []}
        name = listed.get(device, "") if device is not None else "default"
        if device is not None and not name:
            raise AudioUnavailable(f"no input device {device} in the last look at the devices")
        proc = _start_child("open", json.dumps({"device": device, "name": name, "samplerate": samplerate,
                                                "channels": channels, "blocksize": blocksize}))
        try:
            _first_line(proc, self.timeout)
        except BaseException:
            _end_child(proc)
            raise
        return ChildStream(proc, callback, (blocksize, channels))


class ChildStream:
    """The blocks PortAudio's process writes, handed to ``callback`` from a thread of their own."""

    def __init__(self, proc: subprocess.Popen[bytes], callback: Callable[[np.ndarray], None],
                 shape: tuple[int, int]) -> None:
        self.proc = proc
        self._thread = threading.Thread(target=self._read, args=(callback, shape), name="audio-child", daemon=True)
        self._thread.start()

    def _read(self, callback: Callable[[np.ndarray], None], shape: tuple[int, int]) -> None:
        assert self.proc.stdout is not None
        size = shape[0] * shape[1] * 4  # float32
        while len(data := self.proc.stdout.read(size)) == size:
            callback(np.frombuffer(data, np.float32).reshape(shape).copy())

    def close(self) -> None:
        _end_child(self.proc)
        self._thread.join(timeout=5)


def _start_child(*args: str) -> subprocess.Popen[bytes]:
    """PortAudio's process (``-P``: its folder is not put on the import path); its stderr is the show's."""
    try:
        return subprocess.Popen([sys.executable, "-P", str(CHILD), *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
    except OSError as err:
        raise AudioUnavailable(f"cannot start PortAudio's process: {err}") from err


def _first_line(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """The child's answer (one JSON line) within ``timeout`` (else it is killed); its error as AudioUnavailable."""
    assert proc.stdout is not None
    late = threading.Event()

    def give_up() -> None:
        late.set()
        proc.kill()

    timer = threading.Timer(timeout, give_up)
    timer.start()
    try:
        line = proc.stdout.readline()
    finally:
        timer.cancel()
    try:
        reply = json.loads(line)
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        if line:
            raise AudioUnavailable(f"PortAudio's process answered {line[:200]!r}")
        raise AudioUnavailable(f"PortAudio's process gave no answer within {timeout:g} s" if late.is_set()
                               else "PortAudio's process ended without an answer")
    if "error" in reply:
        raise AudioUnavailable(str(reply["error"]))
    return reply


def _end_child(proc: subprocess.Popen[bytes]) -> None:
    """Ask it to stop (stdin closed: it closes its JACK client while the server is there, which then need not
    wait for a vanished one), kill it if it is still there after CHILD_GRACE_S (it may be stuck in PortAudio for
    good), reap it, close its pipes."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    try:
        proc.wait(timeout=CHILD_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    if proc.stdout is not None:
        with contextlib.suppress(OSError):
            proc.stdout.close()


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
        rescan = False  # the first try uses the devices as the layer first saw them
        while not self._stop.is_set():
            try:
                if rescan:
                    self._rescan()
                rescan = True
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

    def _rescan(self) -> None:
        """A fresh look at the devices; whatever goes wrong is "no audio", never the audio thread's end."""
        try:
            self.layer.rescan()
        except AudioUnavailable:
            raise
        except Exception as err:
            raise AudioUnavailable(f"cannot look at the sound devices again: {type(err).__name__}: {err}") from err

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
