"""A small built-in image source so the show has something to show before the
real generators exist: soft colour fields and rings, derived from a seed.

Deterministic (same seed → same image) and pure numpy; run it off the event loop.
The procedural generator of the generation pipeline supersedes it.
"""

from __future__ import annotations

import colorsys

import numpy as np


def _palette(rng: np.random.Generator) -> np.ndarray:
    base = rng.random()
    hues = [base, (base + rng.uniform(0.08, 0.2)) % 1.0, (base + 0.5 + rng.uniform(-0.1, 0.1)) % 1.0]
    return np.array([colorsys.hsv_to_rgb(h, rng.uniform(0.55, 0.9), rng.uniform(0.75, 1.0)) for h in hues],
                    dtype=np.float32)


def placeholder_image(seed: int, width: int = 1024, height: int = 1024) -> np.ndarray:
    """An (height, width, 4) uint8 RGBA picture for ``seed``."""
    rng = np.random.default_rng(seed)
    pal = _palette(rng)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x /= max(width, height)
    y /= max(width, height)
    img = np.empty((height, width, 3), dtype=np.float32)
    top, bottom = pal[0] * 0.18, pal[2] * 0.12
    t = (y / y.max() if y.max() > 0 else y)[..., None]
    img[:] = top * (1 - t) + bottom * t
    for _ in range(7):
        cx, cy = rng.uniform(0.1, 0.9, 2) * (width / max(width, height), height / max(width, height))
        r = rng.uniform(0.08, 0.3)
        color = pal[rng.integers(0, 3)] * rng.uniform(0.5, 1.0)
        d2 = (x - cx) ** 2 + (y - cy) ** 2
        img += np.exp(-d2 / (2 * r * r))[..., None] * color
    cx, cy = rng.uniform(0.3, 0.7, 2)
    dist = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    rings = 0.5 + 0.5 * np.sin(dist * rng.uniform(30, 70) + rng.uniform(0, 6.28))
    img += (rings ** 6)[..., None] * pal[1] * 0.25
    img = 1.0 - np.exp(-img * 1.3)  # soft tone map: no hard clipping
    out = np.empty((height, width, 4), dtype=np.uint8)
    out[..., :3] = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out[..., 3] = 255
    return out
