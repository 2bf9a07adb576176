"""Loudness for the eye: level, bass/mid/treble and a display spectrum, auto-gained to the room.

A projector wants numbers that use the whole 0..1 range whether the feed is a hot desk output
or a quiet room mic. Each value is read in dB against its own running peak, which jumps up at
once and sinks slowly (``release_db_per_s``), so after a few seconds of any loudness the loud
moments read near 1 and ``range_db`` below them reads 0. A floor keeps silence at 0 instead of
auto-gaining hiss up to full scale. The readings then rise fast and fall slower, as meters do.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np

from engine.audio.frames import Framing

BASS = (20.0, 250.0)
MID = (250.0, 4000.0)
TREBLE = (4000.0, 16000.0)
SPECTRUM_BINS = 256
SPECTRUM_RANGE = (30.0, 16000.0)


class AutoGain:
    """dB readings to 0..1 against a running peak, one per band. Plain floats: for the handful of
    bands a hop reads, numpy's per-call overhead cost more than the arithmetic."""

    def __init__(
        self,
        frame_rate: float,
        size: int = 1,
        range_db: float = 30.0,
        floor_db: float = -60.0,
        release_db_per_s: float = 1.5,
        attack_s: float = 0.01,
        decay_s: float = 0.15,
    ) -> None:
        self.range_db = range_db
        self.floor_db = floor_db
        self._release = release_db_per_s / frame_rate
        self._peak = [floor_db] * size
        self._attack = 1.0 - math.exp(-1.0 / (attack_s * frame_rate))
        self._decay = 1.0 - math.exp(-1.0 / (decay_s * frame_rate))
        self.value = [0.0] * size

    def update(self, db: list[float]) -> list[float]:
        floor, release, span = self.floor_db, self._release, self.range_db
        for i, x in enumerate(db):
            peak = max(x, self._peak[i] - release, floor)
            self._peak[i] = peak
            target = min(max(1.0 + (x - peak) / span, 0.0), 1.0)
            value = self.value[i]
            value += (self._attack if target > value else self._decay) * (target - value)
            self.value[i] = value
        return self.value


def _db(power: np.ndarray | float) -> np.ndarray:
    return 10.0 * np.log10(np.asarray(power) + 1e-12)


class Levels:
    """Per hop: RMS level and three band energies from the hop's samples and spectrum."""

    def __init__(self, framing: Framing) -> None:
        self.framing = framing
        freqs = np.arange(framing.window // 2 + 1) * framing.sample_rate / framing.window
        nyquist = framing.sample_rate / 2
        masks = [(freqs >= lo) & (freqs < min(hi, nyquist)) for lo, hi in (BASS, MID, TREBLE)]
        self._bands = np.array(masks, dtype=np.float64)  # one matrix product per hop sums all three
        self._gain = AutoGain(framing.frame_rate, size=4)
        self.level = self.bass = self.mid = self.treble = 0.0

    def process(self, hop_samples: np.ndarray, power: np.ndarray) -> None:
        """``power``: |X|^2 of the window's spectrum, scaled so a full-scale sine's bins sum to ~1."""
        hop = hop_samples.astype(np.float64)
        rms_power = float(hop @ hop) / max(len(hop), 1)
        # A full-scale sine has mean square 0.5: +3 dB puts it at 0 dB like the band readings.
        readings = [2.0 * rms_power, *(self._bands @ power).tolist()]
        db = [10.0 * math.log10(x + 1e-12) for x in readings]
        self.level, self.bass, self.mid, self.treble = self._gain.update(db)


class DisplaySpectrum:
    """256 log-spaced bins (30 Hz to 16 kHz or Nyquist) in dB, auto-gained over 60 dB, for audioFFT."""

    def __init__(self, framing: Framing, bins: int = SPECTRUM_BINS) -> None:
        lo, hi = SPECTRUM_RANGE
        hi = min(hi, 0.95 * framing.sample_rate / 2)
        edges_hz = lo * (hi / lo) ** (np.arange(bins + 1) / bins)
        n = framing.window // 2 + 1
        # Fractional bin positions of the edges; a band's value is the mean of the (piecewise
        # constant) magnitude over its span: FFT bin k covers [k, k+1), and each band is a sum of
        # the few bins it overlaps, weighted by the overlap (under a thousand terms in all).
        edges = np.clip(edges_hz * framing.window / framing.sample_rate + 0.5, 0.0, n)
        rows: list[int] = []
        cols: list[int] = []
        weights: list[float] = []
        for band, (a, b) in enumerate(pairwise(edges.tolist())):
            width = max(b - a, 1e-9)
            for k in range(int(a), min(math.ceil(b), n)):
                overlap = min(b, k + 1) - max(a, k)
                if overlap > 0:
                    rows.append(band)
                    cols.append(k)
                    weights.append(overlap / width)
        self._rows = np.array(rows, dtype=np.intp)
        self._cols = np.array(cols, dtype=np.intp)
        self._weights = np.array(weights)
        self._bins = bins
        self.values = np.zeros(bins, dtype=np.float32)
        self._peak_db = -50.0
        self._range_db = 60.0
        self._release = 1.5 / framing.frame_rate
        self._decay = 1.0 - math.exp(-1.0 / (0.08 * framing.frame_rate))

    def process(self, magnitude: np.ndarray) -> None:
        mean = np.bincount(self._rows, self._weights * magnitude[self._cols], minlength=self._bins)
        db = _db(np.square(mean))
        # One running peak for the whole spectrum: the shape across bins is the picture.
        self._peak_db = max(float(db.max()), self._peak_db - self._release, -50.0)
        target = np.minimum(np.maximum(1.0 + (db - self._peak_db) / self._range_db, 0.0), 1.0)
        step = target - self.values
        step[step <= 0.0] *= self._decay  # rises at once, falls over ~80 ms
        self.values = (self.values + step).astype(np.float32)
