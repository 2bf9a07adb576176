"""Blocks of any length in, analysis hops out: the buffering that makes block size irrelevant.

Every feature is computed per hop from a window of the most recent ``window`` samples, so
feeding a file in blocks of 64, 512 or 44,100 frames runs exactly the same hops on exactly
the same samples; only the moments at which the caller looks at the result differ.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

HOP_SECONDS = 0.0116  # the ~11.6 ms hop that beat trackers are tuned for (512 at 44.1 kHz)


@dataclass(frozen=True)
class Framing:
    """Hop and window sizes for a sample rate: a power-of-two hop near 11.6 ms, a window of 4 hops."""

    sample_rate: int
    hop: int
    window: int

    @classmethod
    def for_rate(cls, sample_rate: int) -> Framing:
        if sample_rate < 4000:
            raise ValueError(f"sample rate {sample_rate} Hz is too low for audio analysis (need >= 4000)")
        hop = 2 ** round(math.log2(sample_rate * HOP_SECONDS))
        return cls(sample_rate, hop, 4 * hop)

    @property
    def frame_rate(self) -> float:
        """Hops per second."""
        return self.sample_rate / self.hop


def to_mono(block: np.ndarray, channels: int) -> np.ndarray:
    """A block of shape (frames,) or (frames, channels), float or int16, as mono float32 in -1..1.

    Channels are averaged, not summed, so a mono source copied to both sides reads the same as
    the mono source itself.
    """
    arr = np.asarray(block)
    if arr.ndim == 2:
        if arr.shape[1] != channels:
            raise ValueError(f"block has {arr.shape[1]} channels, the analyzer was made for {channels}")
    elif arr.ndim != 1 or (channels != 1 and arr.size):
        raise ValueError(f"block must be (frames,) for mono or (frames, {channels}); got shape {arr.shape}")
    if arr.dtype == np.int16:
        data = arr.astype(np.float32) * np.float32(1.0 / 32768.0)
    elif arr.dtype.kind == "f":
        data = arr.astype(np.float32, copy=False)
    else:
        raise ValueError(f"block dtype must be float32 or int16, got {arr.dtype}")
    if data.ndim == 2:
        if channels == 2:  # the common case, several times faster than mean(axis=1)
            data = (data[:, 0] + data[:, 1]) * np.float32(0.5)
        else:
            data = data.mean(axis=1, dtype=np.float32) if channels > 1 else data[:, 0]
    # NaN or inf from a broken driver would poison every running average downstream.
    if not np.isfinite(data).all():
        data = np.nan_to_num(data, nan=0.0, posinf=1.0, neginf=-1.0)
    return data


class HopFramer:
    """Keeps the last ``window`` mono samples and yields a window each time a hop completes."""

    def __init__(self, framing: Framing) -> None:
        self.framing = framing
        self._buf = np.zeros(framing.window + framing.hop, dtype=np.float32)
        self._fill = framing.window  # the buffer starts as a window of silence
        self.samples = 0  # mono samples consumed so far

    def push(self, mono: np.ndarray) -> Iterator[np.ndarray]:
        """Consume samples; yield the analysis window (a view, valid until the next yield) per hop."""
        hop, window = self.framing.hop, self.framing.window
        pos = 0
        n = len(mono)
        while pos < n:
            take = min(n - pos, window + hop - self._fill)
            self._buf[self._fill : self._fill + take] = mono[pos : pos + take]
            self._fill += take
            pos += take
            self.samples += take
            if self._fill == window + hop:
                # A full hop arrived: drop the oldest hop and hand out the window.
                self._buf[:window] = self._buf[hop:]
                self._fill = window
                yield self._buf[:window]
