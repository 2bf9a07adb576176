"""The analysis's hot paths against the plain numpy they replaced for speed: same numbers."""

from __future__ import annotations

import numpy as np
import pytest

from engine.audio.beat import _steady_interval
from engine.audio.frames import Framing, to_mono
from engine.audio.levels import AutoGain, DisplaySpectrum
from engine.audio.tempo import _autocorrelation, _fast_length, _median


def _smooth(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


@pytest.mark.parametrize("n", [1, 2, 7, 97, 1124, 1125, 4097, 10007])
def test_fast_length_is_the_smallest_5_smooth_length_at_least_n(n: int) -> None:
    got = _fast_length(n)
    assert got >= n and _smooth(got)
    assert not any(_smooth(m) for m in range(n, got))


def test_autocorrelation_matches_the_direct_sum() -> None:
    x = np.random.default_rng(3).random(562)
    acf = _autocorrelation(x)
    assert acf is not None
    d = x - x.mean()
    direct = np.correlate(d, d, mode="full")[len(d) - 1 :]
    np.testing.assert_allclose(acf, np.maximum(direct / direct[0], 0.0), atol=1e-12)


@pytest.mark.parametrize("n", [1, 4, 67, 68])
def test_median_matches_numpy(n: int) -> None:
    x = np.random.default_rng(n).random(n)
    assert _median(x) == pytest.approx(float(np.median(x)))


def test_steady_interval_is_the_median_interval_only_when_beats_agree() -> None:
    assert _steady_interval([0.0, 0.5, 1.0]) is None  # fewer than 4 beats
    assert _steady_interval([0.0, 0.5, 1.02, 1.5, 2.0]) == pytest.approx(float(np.median([0.5, 0.52, 0.48, 0.5])))
    assert _steady_interval([0.0, 0.5, 1.0, 1.25, 1.75]) is None  # a half-period interval: not steady


def _reference_spectrum(framing: Framing, frames: list[np.ndarray]) -> np.ndarray:
    """The display spectrum as first written: a cumulative sum read at fractional band edges."""
    d = DisplaySpectrum(framing)
    lo, hi = 30.0, min(16000.0, 0.95 * framing.sample_rate / 2)
    bins = len(d.values)
    n = framing.window // 2 + 1
    edges = np.clip(lo * (hi / lo) ** (np.arange(bins + 1) / bins) * framing.window / framing.sample_rate + 0.5, 0, n)
    width = np.maximum(np.diff(edges), 1e-9)
    values = np.zeros(bins, dtype=np.float32)
    peak = -50.0
    decay = 1.0 - np.exp(-1.0 / (0.08 * framing.frame_rate))
    for m in frames:
        cum = np.concatenate(([0.0], np.cumsum(m, dtype=np.float64)))
        db = 10.0 * np.log10(np.square(np.diff(np.interp(edges, np.arange(n + 1.0), cum)) / width) + 1e-12)
        peak = max(float(db.max()), peak - 1.5 / framing.frame_rate, -50.0)
        target = np.clip(1.0 + (db - peak) / 60.0, 0.0, 1.0)
        values = (values + np.where(target > values, target - values, decay * (target - values))).astype(np.float32)
    return values


@pytest.mark.parametrize("sr", [22050, 44100, 48000, 96000])
def test_display_spectrum_matches_the_interpolated_reference(sr: int) -> None:
    framing = Framing.for_rate(sr)
    rng = np.random.default_rng(sr)
    frames = [np.abs(rng.standard_normal(framing.window // 2 + 1)).astype(np.float32) * (i % 5) for i in range(40)]
    d = DisplaySpectrum(framing)
    for m in frames:
        d.process(m)
    np.testing.assert_allclose(d.values, _reference_spectrum(framing, frames), atol=1e-5)


def test_auto_gain_rises_fast_falls_slow_and_keeps_bands_apart() -> None:
    gain = AutoGain(100.0, size=2)
    for _ in range(200):
        values = gain.update([0.0, -120.0])  # a loud band and a silent one
    assert values[0] == pytest.approx(1.0, abs=1e-3) and values[1] == 0.0
    values = gain.update([-15.0, -120.0])  # half the 30 dB range down: falls over ~0.15 s, not at once
    assert 0.9 < values[0] < 1.0


def test_stereo_to_mono_averages_the_channels() -> None:
    block = np.array([[1.0, 0.0], [0.5, -0.5], [np.nan, 0.2]], dtype=np.float32)
    np.testing.assert_allclose(to_mono(block, 2), [0.5, 0.0, 0.0])
