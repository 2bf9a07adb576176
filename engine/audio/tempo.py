"""Tempo salience: which beat periods the last few seconds of onset strength repeat at.

The autocorrelation of the onset strength peaks at the beat period and at its multiples. A
comb over the first four multiples (a period that explains the peaks at 2x, 3x and 4x its lag
beats one that only explains the first) times a log-Gaussian prior around 120 bpm (one octave
wide, as in Ellis 2007 and librosa) scores every candidate period. The beat tracker multiplies
this score into its tempo states: the autocorrelation sees seconds at once, the tracker's own
evidence only a beat at a time, and it settles half-/double-tempo doubts more reliably.
"""

from __future__ import annotations

import numpy as np

PRIOR_BPM = 120.0
PRIOR_OCTAVES = 1.0
HARMONICS = 4
# Harmonic k looks for its peak within +-_HALF_WIDTH[k-1] lags of k*period: the tolerance grows
# with k because an integer period's error grows with every multiple.
_HALF_WIDTH = (0, 1, 1, 2)
_COMB_SUM = sum(1.0 / k for k in range(1, HARMONICS + 1))


def tempo_prior(bpm: np.ndarray, center: float = PRIOR_BPM, octaves: float = PRIOR_OCTAVES) -> np.ndarray:
    """Log-Gaussian weight of each tempo: 1 at ``center``, e^-1/2 one octave away."""
    return np.exp(-0.5 * (np.log2(bpm / center) / octaves) ** 2)


class TempoSalience:
    """Keeps a window of onset strength; ``salience()`` scores each period in ``periods`` (hops)."""

    def __init__(
        self,
        periods: np.ndarray,
        frame_rate: float,
        window_seconds: float = 6.0,
        average_seconds: float = 4.0,
        update_every: int = 8,
        half_penalty: float = 0.0,
    ) -> None:
        self.periods = periods.astype(np.int64)
        self.frame_rate = frame_rate
        self.prior = tempo_prior(60.0 * frame_rate / self.periods)
        self.size = max(round(window_seconds * frame_rate), HARMONICS * int(self.periods.max()) + 3)
        self._ring = np.zeros(self.size)
        self._pos = 0
        self.count = 0  # onset values seen so far
        self._fresh = 0  # how many of the newest values tempo may read (all, unless forget())
        self.periodicity = 0.0
        self.half_penalty = half_penalty
        self._average = np.zeros(self.size)
        self._average_weight = 1.0 - float(np.exp(-update_every / (average_seconds * frame_rate)))
        # Per harmonic k, the lags its peak may sit at for each period: k*period +- _HALF_WIDTH[k-1].
        self._comb_lags = [
            np.minimum(k * self.periods[None, :] + np.arange(-h, h + 1)[:, None], self.size - 1)
            for k, h in zip(range(1, HARMONICS + 1), _HALF_WIDTH, strict=True)
        ]

    def push(self, value: float) -> None:
        self._ring[self._pos] = value
        self._pos = (self._pos + 1) % self.size
        self.count += 1
        self._fresh = min(self._fresh + 1, self.size)

    def clear_average(self) -> None:
        """Forget how periodic the past was (the music stopped)."""
        self._average[:] = 0.0
        self.periodicity = 0.0

    def forget(self, keep_seconds: float) -> None:
        """Score tempo from the last ``keep_seconds`` only, until the window has refilled.

        The tracker calls this when it lost the beat: the old tempo's seconds of history would
        otherwise hold it back. Periodicity (confidence) keeps reading the whole window.
        """
        self._fresh = min(self._fresh, round(keep_seconds * self.frame_rate))

    def salience(self) -> np.ndarray | None:
        """Score per period, max 1 (None until there is enough fresh signal, or when it is flat)."""
        if self.count < self.size // 3:
            return None
        x = np.roll(self._ring, -self._pos)
        # Only the part of the window that has been filled: the zeros before the first value
        # would read as one long step, whose autocorrelation is high at every lag.
        acf = _autocorrelation(x[self.size - min(self.count, self.size) :], self.size)
        if acf is None:
            return None
        # How periodic the onsets are at all: how far the best comb score of the autocorrelation,
        # averaged over the last seconds, stands above the typical candidate's, in units of the
        # signal's variance (about 1 for a click track, under 0.06 for noise: the averaging
        # flattens its random peaks and the median takes out what every candidate scores).
        self._average += self._average_weight * (acf - self._average)
        avg_score = self._comb(self._average)
        self.periodicity = float(avg_score.max() - _median(avg_score)) / _COMB_SUM
        if self._fresh < min(self.count, self.size):
            if self._fresh < self.size // 3:
                return None
            acf = _autocorrelation(x[self.size - self._fresh :], self.size)
            if acf is None:
                return None
        # Onsets halfway between a candidate's beats say the beat may be twice as fast: with
        # evenly strong hits the comb scores T and 2T alike and the prior alone would pick.
        half = np.maximum(acf[self.periods // 2], acf[(self.periods + 1) // 2])
        score = np.maximum(self._comb(acf) - self.half_penalty * half, 0.0) * self.prior
        top = float(score.max())
        if top <= 0.0:
            return None
        normalized: np.ndarray = np.maximum(score / top, 1e-6)
        return normalized

    def _comb(self, acf: np.ndarray) -> np.ndarray:
        score = np.zeros(len(self.periods))
        for k, lags in enumerate(self._comb_lags, start=1):
            score += acf[lags].max(axis=0) / k
        return score


def _autocorrelation(x: np.ndarray, size: int | None = None) -> np.ndarray | None:
    """Autocorrelation of ``x`` less its mean at lags 0..size-1, normalized to 1 at lag 0 and
    clipped at 0 (None for a flat signal)."""
    n = size or len(x)
    x = x - x.mean()
    length = _fast_length(2 * n)  # any length >= 2n - 1 gives the same lags; 2n may hold a large prime
    spec = np.fft.rfft(x, length)
    acf = np.fft.irfft(spec.real**2 + spec.imag**2, length)[:n]
    if acf[0] <= 1e-12:
        return None
    normalized: np.ndarray = np.maximum(acf / acf[0], 0.0)
    return normalized


def _fast_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: FFT sizes that pocketfft does quickly (2 x 281 took 6x longer)."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _median(x: np.ndarray) -> float:
    """np.median without its checks, which cost more than the sort on a few dozen values."""
    ordered = np.sort(x)
    n = len(ordered)
    return float(ordered[n // 2]) if n % 2 else 0.5 * float(ordered[n // 2 - 1] + ordered[n // 2])
