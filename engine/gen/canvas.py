"""The painters' canvas: the output and work grids, the scene being painted, and their tools.

Smooth fields are computed on a work grid of at most ``WORK_SIDE`` px and upsampled
bicubically; detail is drawn at full resolution in blocks of ``ROWS`` rows. The tools are
seamless band-limited noise (2-D tiles and 1-D profiles), colour ramps in linear light,
and the small shaping functions every painter uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from engine.gen.look import Look

WORK_SIDE = 512  # long side of the grid on which smooth fields are computed
GAMMA = 2.2


@dataclass(frozen=True)
class Grid:
    """The output size and the coarser work grid. Units: the short side spans -1..1, y points down."""

    width: int
    height: int
    w: int
    h: int

    @staticmethod
    def of(width: int, height: int) -> Grid:
        f = max(1, round(max(width, height) / WORK_SIDE))
        return Grid(width, height, -(-width // f), -(-height // f))

    @property
    def px(self) -> float:
        """Output pixels per unit."""
        return min(self.width, self.height) / 2.0

    @property
    def aspect(self) -> float:
        return self.width / self.height

    def lo(self) -> tuple[np.ndarray, np.ndarray]:
        """Work-grid pixel centres in units: x as (1, w), y as (h, 1)."""
        x = ((np.arange(self.w, dtype=np.float32) + 0.5) * (self.width / self.w) - self.width / 2) / self.px
        y = ((np.arange(self.h, dtype=np.float32) + 0.5) * (self.height / self.h) - self.height / 2) / self.px
        return x[None, :], y[:, None]

    def hi(self) -> tuple[np.ndarray, np.ndarray]:
        """Output pixel centres in units: x as (1, width), y as (height, 1)."""
        x = (np.arange(self.width, dtype=np.float32) + 0.5 - self.width / 2) / self.px
        y = (np.arange(self.height, dtype=np.float32) + 0.5 - self.height / 2) / self.px
        return x[None, :], y[:, None]

    def up(self, field: np.ndarray) -> np.ndarray:
        """A (h, w) field, or (c, h, w) planes, bicubically resized to the output size."""
        if field.ndim == 3:
            return np.stack([self.up(p) for p in field])
        if field.shape == (self.height, self.width):
            return field
        im = Image.fromarray(np.ascontiguousarray(field, dtype=np.float32), "F")
        return np.asarray(im.resize((self.width, self.height), Image.Resampling.BICUBIC))


def noise_texture(rng: np.random.Generator, n: int = 256, beta: float = 3.0,
                  k_low: float = 3.0, k_high: float = 48.0) -> np.ndarray:
    """A seamless (n, n) fractal noise tile, zero mean, unit deviation, band-limited so that
    bilinear lookups stay smooth: power falls as 1/k^beta between ``k_low`` and ``k_high`` cycles."""
    ky = np.fft.fftfreq(n) * n
    kx = np.fft.rfftfreq(n) * n
    k = np.hypot(ky[:, None], kx[None, :])
    k[0, 0] = 1.0
    amp = k ** (-beta / 2) * (1 - np.exp(-((k / k_low) ** 4))) * np.exp(-((k / k_high) ** 2))
    amp[0, 0] = 0.0
    spec = (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape)) * amp
    tex = np.fft.irfft2(spec, s=(n, n)).astype(np.float32)
    tex /= tex.std()
    pad = 4  # upsampled twice, wrapping: bilinear lookups then crease on a finer texel grid
    big = Image.fromarray(np.pad(tex, pad, mode="wrap"), "F").resize(
        (2 * (n + 2 * pad),) * 2, Image.Resampling.BICUBIC)
    return np.asarray(big)[2 * pad: 2 * (n + pad), 2 * pad: 2 * (n + pad)].copy()


def sample(tex: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear, wrapping lookup of a noise tile at coordinates in its original texels."""
    n = tex.shape[0]
    m = n - 1
    x, y = np.broadcast_arrays(x * 2.0, y * 2.0)
    x0, y0 = np.floor(x), np.floor(y)
    tx, ty = x - x0, y - y0
    ix = x0.astype(np.int32)
    ix &= m
    r0 = y0.astype(np.int32)
    r0 &= m
    r1 = r0 + 1
    r1 &= m
    r0 *= n
    r1 *= n
    ix1 = ix + 1
    ix1 &= m
    flat = tex.ravel()
    a: np.ndarray = np.take(flat, r0 + ix)
    b = np.take(flat, r0 + ix1)
    c, d = np.take(flat, r1 + ix), np.take(flat, r1 + ix1)
    b -= a
    b *= tx
    a += b
    d -= c
    d *= tx
    c += d
    c -= a
    c *= ty
    a += c
    return a


def noise_1d(rng: np.random.Generator, n: int, beta: float, k_low: float, k_high: float) -> np.ndarray:
    """A 1-D fractal profile of ``n`` samples, zero mean, unit deviation; ``k_*`` in cycles per n."""
    m = 2 * n
    k = np.fft.rfftfreq(m) * n
    k[0] = 1.0
    amp = k ** (-beta / 2) * (1 - np.exp(-((k / k_low) ** 4))) * np.exp(-((k / k_high) ** 2))
    amp[0] = 0.0
    spec = (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape)) * amp
    sig = np.fft.irfft(spec, m)[:n]
    out: np.ndarray = ((sig - sig.mean()) / (sig.std() + 1e-9)).astype(np.float32)
    return out


def ramp(stops: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Colours along a ramp of sRGB stops at ``t`` in 0..1, as linear-light planes (3, *t.shape)."""
    t = np.asarray(t, dtype=np.float32)
    k = stops.shape[0] - 1
    s = np.clip(t, 0.0, 1.0) * k
    i = np.minimum(s.astype(np.int32), k - 1)
    f = s - i
    lo, hi = stops.T[:, i], stops.T[:, i + 1]  # views when t is a scalar: never write to them
    out: np.ndarray = np.power(lo + (hi - lo) * f, np.float32(GAMMA))
    return out


def ramp_colour(stops: np.ndarray, t: float) -> np.ndarray:
    """One linear colour on the ramp, shaped (3, 1, 1) to broadcast over planes."""
    return ramp(stops, t).reshape(3, 1, 1)


ROWS = 48  # rows per block when working at full resolution: temporaries stay small and in cache


def blocks(height: int) -> list[slice]:
    return [slice(y0, min(height, y0 + ROWS)) for y0 in range(0, height, ROWS)]


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) * (1.0 / (e1 - e0)), 0.0, 1.0)
    out: np.ndarray = t * t * (3 - 2 * t)
    return out


def mix(a: np.ndarray, b: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    out: np.ndarray = a + (b - a) * t
    return out


@dataclass(frozen=True, eq=False)
class Scene:
    """One picture being made: its size, what the words asked for, and the seeded randomness."""

    grid: Grid
    look: Look
    rng: np.random.Generator

    def u(self, lo: float = 0.0, hi: float = 1.0) -> float:
        return float(self.rng.uniform(lo, hi))
