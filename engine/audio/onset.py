"""Onset strength: how much new sound each hop brings, the signal every beat decision reads.

Log-compressed spectral flux over 40 mel bands from 30 Hz to 11 kHz, the classic input of
beat trackers (Böck; Ellis; librosa's ``onset_strength``):

- magnitudes are normalized by a slow running level (automatic gain), so a quiet room mic and
  a hot line feed give the same curve, then compressed with ``log(1 + γ·x)``;
- flux is the positive change of each band against the maximum of its neighbours in the last
  hop (SuperFlux's trick: vibrato and slides move energy between bands without counting);
- bands below ~500 Hz weigh 5x: kick drum and bass mark the beat, hi-hats and strummed
  offbeats do not. On the 20 dev clips this moved the tracker off the offbeat on pop and reggae
  (mean F 0.75 -> 0.82) at a cost on classical, where the low bands carry little rhythm.

Only the current and the previous hop are used, so the curve is causal with no look-ahead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.audio.frames import Framing

N_BANDS = 40
F_MIN = 30.0
F_MAX = 11025.0
LOW_BANDS = 8  # bands 0..7 reach ~570 Hz
LOW_WEIGHT = 5.0  # weight of a low band against 1 for the others
BASS_BANDS = 2  # bands 0..1 reach ~170 Hz: kick drum and bass, the downbeat's cue
GAMMA = 10.0  # log compression of the gain-normalized band magnitudes
PEAK_SCALE = 0.25  # the running peak level that counts as full scale for GAMMA
SILENCE = 10 ** (-100 / 20)  # mean band magnitude under which the input counts as silence (~-60 dBFS peaks)


def mel_filterbank(framing: Framing, n_bands: int = N_BANDS, f_min: float = F_MIN, f_max: float = F_MAX) -> np.ndarray:
    """Triangular mel bands as a (bands, bins) matrix whose rows sum to 1 (band = mean magnitude)."""
    f_max = min(f_max, framing.sample_rate / 2)
    n_bins = framing.window // 2 + 1

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(f_min)), hz_to_mel(np.array(f_max)), n_bands + 2))
    freqs = np.arange(n_bins) * framing.sample_rate / framing.window
    bank = np.zeros((n_bands, n_bins))
    for i in range(n_bands):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        rising = (freqs - lo) / max(mid - lo, 1e-9)
        falling = (hi - freqs) / max(hi - mid, 1e-9)
        bank[i] = np.maximum(0.0, np.minimum(rising, falling))
        if not bank[i].any():  # a band narrower than a bin takes its nearest bin
            bank[i, np.argmin(np.abs(freqs - mid))] = 1.0
    bank /= bank.sum(axis=1, keepdims=True)
    return bank.astype(np.float32)


@dataclass(frozen=True)
class Onset:
    """One hop's onset strength: ``strength`` over all bands (log flux); ``low``: the rise in level
    under ~170 Hz, linear so that a kick outweighs a snare's thump (log flux would rate any
    onset out of silence alike)."""

    strength: float
    low: float


class OnsetDetector:
    """Magnitude spectrum per hop in, onset strength out."""

    def __init__(self, framing: Framing, gain_seconds: float = 3.0) -> None:
        self.bank = mel_filterbank(framing)
        weights = np.ones(N_BANDS, dtype=np.float32)
        weights[:LOW_BANDS] = LOW_WEIGHT
        self._weights = weights / weights.sum()
        self._prev: np.ndarray | None = None
        self._prev_bass = 0.0
        self._gain_decay = float(np.exp(-1.0 / (gain_seconds * framing.frame_rate)))
        self._level = SILENCE

    def process(self, magnitude: np.ndarray) -> Onset:
        bands = self.bank @ magnitude
        # The running level follows rises at once and falls over a few seconds, like a limiter's
        # peak detector, so the first loud hit after a quiet intro is measured against the intro.
        level = max(float(bands.sum()) / len(bands), SILENCE)
        self._level = max(level, self._level * self._gain_decay)
        if self._level <= SILENCE:
            self._prev = None
            return Onset(0.0, 0.0)
        # 0.25: the running level is a peak; typical music sits a few dB under it.
        compressed = np.log1p(bands * (GAMMA / (PEAK_SCALE * self._level)))
        bass = float(bands[:BASS_BANDS].sum()) / self._level
        prev, prev_bass = self._prev, self._prev_bass
        self._prev, self._prev_bass = compressed, bass
        if prev is None:
            return Onset(0.0, 0.0)
        spread = prev.copy()  # each band's level or its neighbours', whichever was higher
        np.maximum(spread[1:], prev[:-1], out=spread[1:])
        np.maximum(spread[:-1], prev[1:], out=spread[:-1])
        np.maximum(spread[0], prev[-1], out=spread[0:1])
        np.maximum(spread[-1], prev[0], out=spread[-1:])
        flux = np.maximum(compressed - spread, 0.0)
        return Onset(float(flux @ self._weights), max(bass - prev_bass, 0.0))
