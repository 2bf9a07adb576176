"""Real-time audio analysis, sans-I/O: blocks of samples in, ``Features`` out.

``Analyzer.process(block)`` takes whatever the sound card delivered (any length, mono or
interleaved channels, float32 or int16) and returns the features as of the end of that block.
Inside, everything runs per ~11.6 ms hop (``frames.py``), so the block size changes only how
often the caller looks, never the result: the same file fed in blocks of 64 or of 4096 frames
fires the same beats at the same times.

Per hop: one FFT of the last 4 hops, shared by
- ``onset.py``: onset strength (log spectral flux) and the onset flag;
- ``beat.py``: the causal beat tracker (tempo, phase, predicted beats, bar counter);
- ``levels.py``: level, bass/mid/treble, the 256-bin display spectrum.

The audio thread owns the Analyzer; it hands each frozen ``Features`` to the render thread,
which calls ``to_uniforms()`` and ``SharedTextures.write_audio(features.waveform,
features.spectrum)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from engine.audio.beat import BeatEvent, BeatTracker, TempoLock, TrackerConfig
from engine.audio.frames import Framing, HopFramer, to_mono
from engine.audio.levels import SPECTRUM_BINS, DisplaySpectrum, Levels
from engine.audio.onset import OnsetDetector

if TYPE_CHECKING:
    from engine.shaders.program import AudioUniforms

WAVEFORM_SAMPLES = 512
ONSET_RATIO = 2.5  # an onset: strength crosses this many times its running mean...
ONSET_GAP = 0.05  # ...at least this many seconds after the last one
PULSE_DECAY = 0.1  # s: time constant of beat_pulse's decay


def _empty(size: int) -> np.ndarray:
    arr = np.zeros(size, dtype=np.float32)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True)
class Features:
    """The analysis as of the end of one block. Times are stream time (``beat.py``)."""

    time: float = 0.0  # seconds of audio consumed
    level: float = 0.0  # 0..1, auto-gained RMS
    bass: float = 0.0  # 0..1, 20-250 Hz
    mid: float = 0.0  # 0..1, 250 Hz - 4 kHz
    treble: float = 0.0  # 0..1, 4-16 kHz
    onset_strength: float = 0.0  # 0..1, the latest hop's onset strength against its running mean
    onset: bool = False  # an onset began in this block
    bpm: float = 0.0  # 0 when unsure
    confidence: float = 0.0  # 0..1; beats fire from TrackerConfig.confidence_on (0.2) up
    beat_phase: float = 0.0  # 0..1 through the beat, 0 on the beat (in the room: time + latency)
    beat: bool = False  # a beat fired in this block
    beat_pulse: float = 0.0  # 1 on a beat, decaying exponentially (PULSE_DECAY)
    bar_beat: int = 0  # 1..4 for the latest beat's place in the bar, 0 when unsure
    beat_times: tuple[float, ...] = ()  # the predicted times of the beats fired in this block
    next_beat: float = math.inf  # predicted time of the next beat (inf when unsure)
    # Read-only arrays, left out of == (an array comparison has no single truth value).
    spectrum: np.ndarray = field(default_factory=lambda: _empty(SPECTRUM_BINS), repr=False, compare=False)  # 0..1
    waveform: np.ndarray = field(default_factory=lambda: _empty(WAVEFORM_SAMPLES), repr=False, compare=False)

    def to_uniforms(self) -> AudioUniforms:
        """The values the show's shaders receive."""
        from engine.shaders.program import AudioUniforms

        return AudioUniforms(
            level=self.level,
            bass=self.bass,
            mid=self.mid,
            treble=self.treble,
            beat_phase=self.beat_phase,
            beat_pulse=self.beat_pulse,
            bpm=self.bpm,
        )


class Analyzer:
    """Audio features from live blocks; one per input stream, used from one thread."""

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        latency: float = 0.0,
        tracker: TrackerConfig | None = None,
    ) -> None:
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.framing = Framing.for_rate(sample_rate)
        self.channels = channels
        self.latency = latency
        self._framer = HopFramer(self.framing)
        self._window = np.hanning(self.framing.window + 1)[:-1].astype(np.float32)
        # Scales |rfft| so that a full-scale sine reads 1 at its peak bin.
        self._scale = np.float32(2.0 / self._window.sum())
        self._onsets = OnsetDetector(self.framing)
        self.tracker = BeatTracker(self.framing.frame_rate, latency, tracker)
        self._levels = Levels(self.framing)
        self._spectrum = DisplaySpectrum(self.framing)
        self._wave = np.zeros(WAVEFORM_SAMPLES, dtype=np.float32)
        self._onset_mean = 0.0
        self._onset_decay = math.exp(-1.0 / (2.0 * self.framing.frame_rate))
        self._onset_ratio = 0.0
        self._last_onset = -math.inf
        self._bar_beat = 0
        self._beats: list[float] = []  # fired beat times, the last few

    @property
    def time(self) -> float:
        """Seconds of audio consumed."""
        return self._framer.samples / self.framing.sample_rate

    def process(self, block: np.ndarray) -> Features:
        mono = to_mono(block, self.channels)
        onset = False
        fired: list[BeatEvent] = []
        for window in self._framer.push(mono):
            onset |= self._hop(window, fired)
        self._keep_waveform(mono)
        return self._features(onset, fired)

    # --- tempo control, delegated to the tracker ------------------------------------------------

    def lock_tempo(self, bpm: float | None, phase_time: float | None = None) -> None:
        """Manual tempo (tap tempo): see ``BeatTracker.lock_tempo``; ``None`` unlocks."""
        self.tracker.lock_tempo(bpm, phase_time)

    @property
    def locked(self) -> TempoLock | None:
        return self.tracker.locked

    def nudge(self, seconds: float) -> None:
        """Move the beat grid later (earlier when negative)."""
        self.tracker.nudge(seconds)

    def resync(self, beat_time: float | None = None) -> None:
        """A beat falls at ``beat_time`` (default: now in the room, ``time + latency``)."""
        self.tracker.resync(self.time + self.latency if beat_time is None else beat_time)

    # --- internals ------------------------------------------------------------------------

    def _hop(self, window: np.ndarray, fired: list[BeatEvent]) -> bool:
        spec = np.fft.rfft(window * self._window)
        magnitude = np.abs(spec) * self._scale
        strength = self._onsets.process(magnitude)
        events = self.tracker.step(strength.strength, strength.low)
        for event in events:
            fired.append(event)
            self._beats = [*self._beats[-3:], event.time]
            self._bar_beat = event.bar_beat
        self._levels.process(window[-self.framing.hop :], np.square(magnitude))
        self._spectrum.process(magnitude)
        return self._onset(strength.strength)

    def _onset(self, strength: float) -> bool:
        d = self._onset_decay
        self._onset_mean = d * self._onset_mean + (1 - d) * strength
        previous = self._onset_ratio
        self._onset_ratio = strength / self._onset_mean if self._onset_mean > 1e-9 else 0.0
        now = self.tracker.now
        if previous < ONSET_RATIO <= self._onset_ratio and now - self._last_onset >= ONSET_GAP:
            self._last_onset = now
            return True
        return False

    def _keep_waveform(self, mono: np.ndarray) -> None:
        n = len(mono)
        if n >= WAVEFORM_SAMPLES:
            self._wave = mono[-WAVEFORM_SAMPLES:].copy()
        elif n:
            self._wave = np.concatenate((self._wave[n:], mono))

    def _features(self, onset: bool, fired: list[BeatEvent]) -> Features:
        tracker = self.tracker
        now = self.time
        room = now + self.latency
        phase, pulse = 0.0, 0.0
        if tracker.confident and self._beats:
            period = tracker.period
            sounded = [t for t in self._beats if t <= room]
            last = self._beats[-1]
            if sounded:
                pulse = math.exp(-(room - sounded[-1]) / PULSE_DECAY)
            if room >= last:  # past the last beat the grid runs on, so shaders never freeze
                phase = ((room - last) / period) % 1.0
            else:  # the beat is committed but not in the room yet: ramp up to it
                phase = max(0.0, 1.0 - (last - room) / period)
        spectrum = self._spectrum.values.copy()
        spectrum.flags.writeable = False
        wave = np.clip(self._wave, -1.0, 1.0)
        wave.flags.writeable = False
        levels = self._levels
        return Features(
            time=now,
            level=levels.level,
            bass=levels.bass,
            mid=levels.mid,
            treble=levels.treble,
            onset_strength=min(self._onset_ratio / tracker.config.contrast_clip, 1.0),
            onset=onset,
            bpm=tracker.bpm,
            confidence=tracker.confidence,
            beat_phase=phase,
            beat=bool(fired),
            beat_pulse=pulse,
            bar_beat=self._bar_beat if tracker.confident else 0,
            beat_times=tuple(e.time for e in fired),
            next_beat=tracker.next_beat,
            spectrum=spectrum,
            waveform=wave,
        )
