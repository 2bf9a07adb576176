"""Grading: a painter's linear-light planes finished into the 8-bit RGBA picture for the screen.

Exposure aimed at the look's key, a soft bloom, a vignette and a filmic tone curve, so
nothing clips hard on a projector; then gamma, and a blue-noise dither before the 8-bit
quantisation, which keeps gradients free of banding. Works block by block at full size.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from engine.gen.canvas import GAMMA, Grid, Scene, blocks, smoothstep


def _resize(planes: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(p), "F").resize(
        (w, h), Image.Resampling.BILINEAR)) for p in planes])


def _bloom(img: np.ndarray, g: Grid, strength: float) -> np.ndarray:
    """A soft halo around the brightest parts (threshold, blur by shrinking), at output size."""
    sw, sh = max(4, g.width // 16), max(4, g.height // 16)
    bright = np.maximum(_resize(img, sw, sh) - 0.6, 0.0)
    blurred = _resize(_resize(bright, max(2, sw // 3), max(2, sh // 3)), sw, sh) * 0.6 + bright * 0.4
    blurred *= strength
    return Grid(g.width, g.height, sw, sh).up(blurred)


@lru_cache(maxsize=4)
def _dither(h: int, w: int) -> np.ndarray:
    """Interleaved gradient noise (blue-noise-like) in 0..1, three columns wider than the image
    so each channel can take a shifted window of it."""
    x = np.arange(w + 6, dtype=np.float64)[None, :]
    y = np.arange(h, dtype=np.float64)[:, None]
    a = 0.06711056 * x + 0.00583715 * y
    b = 52.9829189 * (a - np.floor(a))
    out = (b - np.floor(b)).astype(np.float32)
    out.setflags(write=False)
    return out


def _gain(img: np.ndarray, g: Grid, key: float) -> float:
    """Exposure that puts the highlights near the shoulder and keeps mid-tones from washing out."""
    step = max(1, min(g.width, g.height) // 160)
    sub = img[:, ::step, ::step]
    lum = 0.2126 * sub[0] + 0.7152 * sub[1] + 0.0722 * sub[2]
    hi, mid = np.percentile(lum, [99.0, 50.0])
    return float(np.clip(min(1.3 / max(float(hi), 1e-4), key / max(float(mid), 1e-4)), 0.3, 8.0))


def finish(img: np.ndarray, sc: Scene) -> np.ndarray:
    """Exposure, bloom, vignette, filmic tone curve, gamma and dither, block by block:
    (3, H, W) linear float → (H, W, 4) uint8."""
    g, look = sc.grid, sc.look
    np.nan_to_num(img, copy=False, nan=0.0, posinf=64.0, neginf=0.0)
    np.clip(img, 0.0, 64.0, out=img)
    img *= np.float32(_gain(img, g, look.key) * look.exposure)
    halo = _bloom(img, g, 0.3 + 0.25 * look.energy)
    x, y = g.hi()
    dither = _dither(g.height, g.width)
    out = np.empty((g.height, g.width, 4), dtype=np.uint8)
    out[..., 3] = 255
    for rows in blocks(g.height):
        p = img[:, rows]
        p += halo[:, rows]
        p *= 1.0 - 0.45 * smoothstep(0.3, 2.0, (x * x) / g.aspect + y[rows] ** 2 * g.aspect)  # vignette
        den = p * 2.43  # Narkowicz's ACES fit: a soft toe and shoulder, no hard clip
        den += 0.59
        den *= p
        den += 0.14
        num = p * 2.51
        num += 0.03
        num *= p
        num /= den
        np.clip(num, 0.0, 1.0, out=num)
        np.power(num, np.float32(1 / GAMMA), out=num)
        num *= 255.0
        for c in range(3):
            num[c] += dither[rows, 2 * c: 2 * c + g.width]
        np.minimum(num, 255.0, out=num)
        out[rows, :, :3] = num.transpose(1, 2, 0)
    return out
