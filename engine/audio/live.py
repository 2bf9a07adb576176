"""The audio thread's glue: source → analyzer → the latest features, and the VJ's hand on the tempo.

The show thread reads ``latest()`` once per frame (one reference, swapped whole)
and sends tap / bpm lock / nudge / resync through a queue; the analyzer runs only
on the audio thread. Beats are counted here, so a frame that spans several audio
blocks never misses one.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.audio.input import AudioStatus, AudioThread, DeviceLayer
from engine.config import AudioConfig

if TYPE_CHECKING:  # the analyzer is loaded by the audio thread, on its first block
    from engine.audio.analysis import Analyzer, Features

log = logging.getLogger(__name__)

TAP_RESET_S = 2.0  # a pause this long starts a new tap sequence
MIN_TAPS = 3


class TapTempo:
    """Taps → bpm: the median interval of the current run of taps (a long pause starts over)."""

    def __init__(self) -> None:
        self.taps: list[float] = []

    def tap(self, t: float) -> float | None:
        """Record a tap at time ``t``; the bpm once there are enough taps, else None."""
        if self.taps and t - self.taps[-1] > TAP_RESET_S:
            self.taps.clear()
        self.taps.append(t)
        self.taps = self.taps[-8:]
        if len(self.taps) < MIN_TAPS:
            return None
        intervals = sorted(b - a for a, b in zip(self.taps, self.taps[1:], strict=False))
        mid = intervals[len(intervals) // 2]
        return 60.0 / mid if mid > 0 else None


@dataclass(frozen=True)
class Heard:
    """What the show reads each frame: the analysis, the running beat count, and the input's state."""

    features: Features | None
    beats: int
    status: AudioStatus
    locked_bpm: float | None


class LiveAudio:
    def __init__(self, cfg: AudioConfig, layer: DeviceLayer | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.clock = clock
        self._commands: queue.SimpleQueue[tuple[str, float]] = queue.SimpleQueue()
        self._analyzer: Analyzer | None = None
        self._rate = 0
        self._beats = 0
        self._locked: float | None = None
        self._taps = TapTempo()
        self._audio_time = 0.0  # seconds of audio analysed
        self._wall = clock()  # wall clock when ``_audio_time`` was reached
        self.thread = AudioThread(self._consume, device=cfg.device, file=cfg.file, samplerate=cfg.samplerate,
                                  channels=cfg.channels, blocksize=cfg.blocksize, layer=layer)
        self._heard = Heard(None, 0, self.thread.status, None)
        # Called with every block on the audio thread (the recording); each must return at once.
        self.listeners: list[Callable[[np.ndarray, int], None]] = []

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.thread.stop()

    def latest(self) -> Heard:
        return self._heard

    # --- the VJ's hand on the tempo (any thread) ----------------------------------------
    def tap(self) -> None:
        self._commands.put(("tap", self.clock()))

    def lock_bpm(self, bpm: float | None) -> None:
        self._commands.put(("bpm", float(bpm or 0.0)))

    def nudge(self, seconds: float) -> None:
        self._commands.put(("nudge", seconds))

    def resync(self, at: float | None = None) -> None:
        """The beat is now (or was at wall time ``at``)."""
        self._commands.put(("resync", self.clock() if at is None else at))

    # --- the audio thread -------------------------------------------------------------------
    def _consume(self, block: np.ndarray, rate: int) -> None:
        if self._analyzer is None or rate != self._rate:
            from engine.audio.analysis import Analyzer

            channels = block.shape[1] if block.ndim == 2 else 1
            self._analyzer = Analyzer(rate, channels, latency=self.cfg.latency)
            self._rate = rate
            if self._locked:
                self._analyzer.lock_tempo(self._locked, None)
        self._apply_commands(self._analyzer)
        for listener in self.listeners:
            listener(block, rate)
        features = self._analyzer.process(block)
        self._audio_time = features.time
        self._wall = self.clock()
        if features.beat:
            self._beats += 1
        self._heard = Heard(features, self._beats, self.thread.status, self._locked)

    def _audio_time_of(self, wall: float) -> float:
        """Stream time (what the room heard) at a wall-clock moment: the analysed audio runs
        ``latency`` behind the room."""
        return self._audio_time + self.cfg.latency - (self._wall - wall)

    def _apply_commands(self, analyzer: Analyzer) -> None:
        while True:
            try:
                kind, value = self._commands.get_nowait()
            except queue.Empty:
                return
            if kind == "tap":
                bpm = self._taps.tap(value)
                if bpm is not None:
                    self._locked = bpm
                    analyzer.lock_tempo(bpm, self._audio_time_of(value))
                    log.info("tap tempo: %.1f bpm", bpm)
            elif kind == "bpm":
                self._locked = value if value > 0 else None
                analyzer.lock_tempo(self._locked, None)
                log.info("tempo %s", f"locked at {value:.1f} bpm" if value > 0 else "unlocked: following the music")
            elif kind == "nudge":
                analyzer.nudge(value)
            elif kind == "resync":
                analyzer.resync(self._audio_time_of(value))
