"""Test signals made in the test: click tracks, drum patterns, tempo changes, noise.

Every generator returns float32 mono in -1..1 and, for rhythmic ones, the true beat times, so
a test can score a tracker against ground truth without any audio file. Signals are
deterministic (seeded) so that a failure reproduces.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def beat_grid(tempi: Sequence[tuple[float, float]], start: float = 0.25) -> np.ndarray:
    """Beat times for consecutive (bpm, seconds) segments; each segment's beats continue the last."""
    beats: list[float] = []
    t = start
    seg_start = 0.0
    for bpm, seconds in tempi:
        seg_end = seg_start + seconds
        while t < seg_end:
            beats.append(t)
            t += 60.0 / bpm
        seg_start = seg_end
    return np.array(beats)


def _place(out: np.ndarray, sound: np.ndarray, at: float, sr: int, gain: float = 1.0) -> None:
    i = int(np.rint(at * sr))
    if i >= len(out) or i < 0:
        return
    n = min(len(sound), len(out) - i)
    out[i : i + n] += gain * sound[:n]


def click(sr: int) -> np.ndarray:
    """A 20 ms decaying 2 kHz click, like a metronome."""
    t = np.arange(int(0.02 * sr)) / sr
    return (np.sin(2 * np.pi * 2000 * t) * np.exp(-t / 0.004)).astype(np.float32)


def kick(sr: int) -> np.ndarray:
    """A 250 ms sine sweeping down from 150 to 50 Hz."""
    t = np.arange(int(0.25 * sr)) / sr
    freq = 50 + 100 * np.exp(-t / 0.03)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    return (np.sin(phase) * np.exp(-t / 0.08)).astype(np.float32)


def snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    """Noise plus a 190 Hz body, 150 ms."""
    t = np.arange(int(0.15 * sr)) / sr
    body = 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.03)
    return ((rng.standard_normal(len(t)) * 0.6 * np.exp(-t / 0.04)) + body).astype(np.float32)


def hihat(sr: int, rng: np.random.Generator) -> np.ndarray:
    """40 ms of high-passed noise (first difference of white noise)."""
    n = int(0.04 * sr)
    noise = np.diff(rng.standard_normal(n + 1))
    return (noise * 0.25 * np.exp(-np.arange(n) / (0.008 * sr))).astype(np.float32)


def clicks(beats: np.ndarray, seconds: float, sr: int, level: float = 0.5) -> np.ndarray:
    """A click on every beat."""
    out = np.zeros(int(seconds * sr), dtype=np.float32)
    c = click(sr)
    for b in beats:
        _place(out, c, b, sr, level)
    return out


def drums(
    beats: np.ndarray,
    seconds: float,
    sr: int,
    level: float = 0.5,
    seed: int = 0,
    kicks: tuple[int, ...] = (0, 2),
    snares: tuple[int, ...] = (1, 3),
) -> np.ndarray:
    """Rock beat: kick on 1 and 3, snare on 2 and 4 (places in a bar of 4, from 0), hi-hat on every
    eighth, a little humanized: velocities vary by up to 20% and hits land within +-3 ms of the
    grid, as a drummer's do. The first beat is a downbeat.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * sr), dtype=np.float32)
    k, hh = kick(sr), hihat(sr, rng)
    for i, b in enumerate(beats):
        jitter = rng.uniform(-0.003, 0.003)
        vel = rng.uniform(0.8, 1.0)
        if i % 4 in kicks:
            _place(out, k, b + jitter, sr, vel)
        if i % 4 in snares:
            _place(out, snare(sr, rng), b + jitter, sr, 0.8 * vel)
        _place(out, hh, b + jitter, sr, 0.5 * vel)
        nxt = beats[i + 1] if i + 1 < len(beats) else b + (b - beats[i - 1] if i else 0.5)
        _place(out, hh, (b + nxt) / 2 + rng.uniform(-0.003, 0.003), sr, 0.35 * rng.uniform(0.8, 1.0))
    return normalize(out, level)


def normalize(x: np.ndarray, peak: float) -> np.ndarray:
    top = float(np.max(np.abs(x))) if len(x) else 0.0
    return (x * (peak / top)).astype(np.float32) if top > 0 else x.astype(np.float32)


def white_noise(seconds: float, sr: int, level: float = 0.1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * sr)) * level).astype(np.float32)


def pink_noise(seconds: float, sr: int, level: float = 0.1, seed: int = 0) -> np.ndarray:
    """1/f noise: the spectrum of a crowd or a room, louder in the bass than white noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.arange(len(spec)) + 1.0)
    x = np.fft.irfft(spec, n)
    return (x / x.std() * level).astype(np.float32)


def silence(seconds: float, sr: int) -> np.ndarray:
    return np.zeros(int(seconds * sr), dtype=np.float32)


def clipped(x: np.ndarray, drive: float = 8.0) -> np.ndarray:
    """Overdriven into hard clipping, as a too-hot line input."""
    return np.clip(x * drive, -1.0, 1.0).astype(np.float32)


def stereo(x: np.ndarray, spread: float = 0.3) -> np.ndarray:
    """(frames, 2): the left a bit louder than the right, as a real mix."""
    return np.stack([x, x * (1.0 - spread)], axis=1).astype(np.float32)


def to_int16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1.0, 32767 / 32768) * 32768).astype(np.int16)
