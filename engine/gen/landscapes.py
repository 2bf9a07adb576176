"""Landscape painters: mountains, waves and a city skyline under a sky with its sun or moon.

The three scenes share one build: a sky on the work grid, the sun's disc, then ridges,
wave rows or towers drawn front over back as silhouettes, antialiased by their distance
in pixels and fading into mist with depth. The stars of a night sky live here too.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from engine.gen.canvas import Grid, Scene, mix, noise_1d, noise_texture, ramp, ramp_colour, sample, smoothstep


def stars(sc: Scene, count: int, out: np.ndarray, rows: int | None = None) -> None:
    """Adds ``count`` stars to the (3, H, W) planes above row ``rows``: most faint, a few bright,
    each a small Gaussian placed to the subpixel."""
    g, rng = sc.grid, sc.rng
    hh = g.height if rows is None else min(rows, g.height)
    if count <= 0 or hh <= 6:
        return
    xs, ys = rng.uniform(2, g.width - 3, count), rng.uniform(2, hh - 3, count)
    bright = np.minimum(0.03 * rng.pareto(1.5, count) + 0.008, 3.0).astype(np.float32)
    sigma = np.clip(0.5 + 0.25 * np.sqrt(bright) * g.px / 512, 0.5, 1.3).astype(np.float32)
    ix, iy = np.floor(xs).astype(np.intp), np.floor(ys).astype(np.intp)
    fx, fy = (xs - ix).astype(np.float32), (ys - iy).astype(np.float32)
    d = np.arange(-2, 3, dtype=np.float32)
    wx = np.exp(-((d[None, :] - fx[:, None] + 0.5) ** 2) / (2 * sigma[:, None] ** 2))
    wy = np.exp(-((d[None, :] - fy[:, None] + 0.5) ** 2) / (2 * sigma[:, None] ** 2))
    stamp = wy[:, :, None] * wx[:, None, :]
    stamp *= (bright / stamp.sum(axis=(1, 2)) * 2.5)[:, None, None]
    di = d.astype(np.intp)
    idx = ((iy[:, None, None] + di[None, :, None]) * g.width + ix[:, None, None] + di[None, None, :]).ravel()
    temp = rng.uniform(0, 1, count)
    tint = np.stack([0.7 + 0.3 * temp, 0.82 + 0.1 * temp, 1.0 - 0.35 * temp]).astype(np.float32)
    flat = stamp.reshape(count, -1)
    for c in range(3):
        np.add.at(out[c].reshape(-1), idx, (flat * tint[c][:, None]).ravel())


def _sky(sc: Scene, horizon: float) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A sky down to ``horizon`` (units) on the work grid, with its sun or moon glow and thin
    clouds; returns the planes and the sun (x, y, radius)."""
    g, look = sc.grid, sc.look
    x, y = g.lo()
    t = np.broadcast_to(np.clip((y + 1.0) / (horizon + 1.0), 0.0, 1.0) ** 1.5, (g.h, g.w))
    lo, hi = (0.05, 0.42) if look.night else (0.28, 0.8)
    img = ramp(look.main, lo + (hi - lo) * t)
    sun_r = sc.u(0.06, 0.1) if look.night else sc.u(0.09, 0.16)
    sx = sc.u(-0.55, 0.55) * g.aspect
    sy = horizon - sc.u(0.3, 0.6)
    d = np.sqrt((x - sx) ** 2 + (y - sy) ** 2)
    glow = np.exp(-d / (sun_r * 2.0)) * 0.7 + np.exp(-d / (sun_r * 7)) * 0.4
    halo = ramp_colour(look.main, 0.75) * 0.5 if look.night else ramp_colour(look.accent, 0.85)
    img += halo * glow
    img += ramp_colour(look.accent, 0.7) * np.exp(-np.abs(y - horizon) / 0.15) * (0.08 if look.night else 0.25)
    if sc.u() < 0.8:  # thin streaks of cloud, lit from the sun's side
        tex = noise_texture(sc.rng, beta=2.8, k_low=2.0, k_high=64.0)
        cu = sample(tex, x * 10 + sc.u(0, 256), y * 70 + sc.u(0, 256))
        cover = smoothstep(0.5, 1.9, cu) * smoothstep(-0.95, -0.5, y) * smoothstep(horizon, horizon - 0.3, y)
        lit = (ramp_colour(look.main, 0.35) if look.night else ramp_colour(look.accent, 0.9)) * (0.4 + glow)
        img = mix(img, lit, cover * 0.5)
    return img, (sx, sy, sun_r)


def _disc(img: np.ndarray, g: Grid, sun: tuple[float, float, float], colour: np.ndarray) -> None:
    """Draws the sun or moon disc, antialiased, touching only the pixels around it."""
    sx, sy, r = sun
    cx, cy, rp = g.width / 2 + sx * g.px, g.height / 2 + sy * g.px, r * g.px
    x0, x1 = max(0, int(cx - rp - 2)), min(g.width, int(cx + rp + 3))
    y0, y1 = max(0, int(cy - rp - 2)), min(g.height, int(cy + rp + 3))
    if x0 >= x1 or y0 >= y1:
        return
    xx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - cx
    yy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - cy
    cov = np.clip(rp - np.sqrt(xx * xx + yy * yy) + 0.5, 0.0, 1.0)
    region = img[:, y0:y1, x0:x1]
    region += (colour - region) * cov


def _silhouette(img: np.ndarray, prof: np.ndarray, colour: Callable[[np.ndarray], np.ndarray],
                rim: np.ndarray | None = None, rim_px: float = 3.0, walls: bool = False) -> None:
    """Fills the (3, H, W) planes below the row profile ``prof`` (a row per column, y down) with
    ``colour(rows)`` → (3, n, 1). The edge is antialiased by its distance in pixels; only the
    rows the edge crosses are computed per pixel. ``rim`` lights a band just under the edge;
    ``walls``: the profile steps on whole pixels (buildings), so only its roofs need smoothing."""
    h = img.shape[1]
    top = max(0, int(np.floor(prof.min())) - 1)
    if top >= h:
        return
    slope = np.zeros_like(prof) if walls else np.gradient(prof)
    inv = (1.0 / np.sqrt(1.0 + slope * slope)).astype(np.float32)
    bottom = min(h, int(np.ceil(prof.max())) + 2)
    rows = np.arange(top, h, dtype=np.float32) + 0.5
    col = colour(rows)
    dist = (rows[: bottom - top, None] - prof[None, :]) * inv[None, :]
    cov = np.clip(dist + 0.5, 0.0, 1.0)
    fill = col[:, : bottom - top]
    if rim is not None:
        fill = fill + rim * np.exp(-np.maximum(dist, 0.0) * (1.0 / rim_px))
    edge = img[:, top:bottom]
    edge += (fill - edge) * cov
    if bottom < h:
        rest = col[:, bottom - top:]
        if rim is not None:
            depth = (rows[bottom - top:, None] - prof[None, :]) * inv[None, :]
            rest = rest + rim * np.exp(-depth * (1.0 / rim_px))
        img[:, bottom:] = rest


def _layer_colour(near: np.ndarray, fog: np.ndarray, depth: float, ridge: float, fade_px: float,
                  haze: float) -> Callable[[np.ndarray], np.ndarray]:
    """Colour by row for one ridge: aerial perspective by ``depth`` (0 far .. 1 near) and mist
    gathering towards its foot."""
    base = mix(fog, near, depth**0.7)

    def at(rows: np.ndarray) -> np.ndarray:
        mist = np.clip((rows - ridge) / fade_px, 0.0, 1.0) ** 1.3 * haze
        return mix(base, fog, mist[None, :, None])

    return at


def mountains(sc: Scene) -> np.ndarray:
    """Layered ridges fading into mist under a sky with a low sun or a moon (pines for forests)."""
    g, look = sc.grid, sc.look
    horizon = sc.u(0.0, 0.25)
    sky, sun = _sky(sc, horizon)
    img = g.up(sky)
    hz = g.height / 2 + horizon * g.px
    span = (g.height - hz) / g.px / (1.0 - horizon)  # 1 for square and landscape, more for portrait
    if look.night:
        stars(sc, int(g.width * g.height / 1e6 * 900), img, int(hz))
    _disc(img, g, sun, ramp_colour(look.main if look.night else look.accent, 0.97) * 1.5)
    fog = ramp_colour(look.main, 0.45 if look.night else 0.72)
    near = ramp_colour(look.main, 0.0) * 0.5
    layers = int(sc.u(4, 6))
    for k in range(layers):
        depth = k / (layers - 1)
        base = hz - g.px * (0.12 - 0.5 * depth**1.4 * span)
        amp = g.px * (0.16 - 0.06 * depth) * sc.u(0.7, 1.3)
        prof = base - amp * noise_1d(sc.rng, g.width, 2.3 + 0.5 * depth, 1.0, 14.0 + 10 * (1 - depth))
        prof -= amp * 0.12 * noise_1d(sc.rng, g.width, 1.6, 20.0, 200.0)  # fine rock detail
        if look.trees and k >= layers - 2:
            prof = _trees(sc, prof, g.px * (0.06 + 0.08 * depth))
        colour = _layer_colour(near, fog, 0.12 + 0.88 * depth, float(prof.min()), g.px * 0.5, 0.65 - 0.4 * depth)
        _silhouette(img, prof, colour)
    return img


def _trees(sc: Scene, prof: np.ndarray, size: float) -> np.ndarray:
    """The ridge with pines standing on it: a row profile, y down."""
    w = prof.shape[0]
    n = max(4, int(w / size * 1.6))
    xs = np.sort(sc.rng.uniform(0, w, n)).astype(np.float32)
    hs = (size * sc.rng.uniform(0.6, 1.4, n)).astype(np.float32)
    half = hs * 0.25
    cols = np.arange(w, dtype=np.float32)[None, :] + 0.5
    t = np.abs(cols - xs[:, None]) / half[:, None]  # 0 at the trunk, 1 at the tree's edge
    tiers = 1.0 - 0.2 * ((t * 3.0) % 1.0)
    height = np.where(t < 1.0, hs[:, None] * (1.0 - t) * tiers, -1e6)
    ground = prof[np.clip(xs.astype(np.intp), 0, w - 1)]
    out: np.ndarray = np.minimum(prof, (ground[:, None] - height).min(axis=0))
    return out


def waves(sc: Scene) -> np.ndarray:
    """Rows of rolling waves under a sky, lit along their crests, with the sun's glitter."""
    g, look = sc.grid, sc.look
    horizon = sc.u(-0.2, 0.1)
    sky, sun = _sky(sc, horizon)
    img = g.up(sky)
    hz = g.height / 2 + horizon * g.px
    if look.night:
        stars(sc, int(g.width * g.height / 1e6 * 900), img, int(hz))
    _disc(img, g, sun, ramp_colour(look.main if look.night else look.accent, 0.97) * 1.5)
    fog = ramp_colour(look.main, 0.35 if look.night else 0.55) * 0.85
    deep = ramp_colour(look.main, 0.1) * 0.8
    crest = ramp_colour(look.main, 0.92) * (0.35 if look.night else 0.6)
    cols = (np.arange(g.width, dtype=np.float32) + 0.5 - g.width / 2) / g.px
    span = g.height - hz
    layers = int(sc.u(6, 9))
    drift = math.cos(look.angle)
    for k in range(layers):
        depth = k / (layers - 1)
        base = hz + span * (0.015 + 0.985 * depth**1.7)
        lam = (0.1 + 0.85 * depth**1.3) * sc.u(0.8, 1.25)  # wavelength in units
        amp = g.px * lam * sc.u(0.05, 0.08)
        prof = np.full(g.width, base, dtype=np.float32)
        for j in range(3):
            freq = 2 * math.pi / (lam * sc.u(0.8, 1.2) / 1.8**j)
            wave = 0.5 + 0.5 * np.cos(cols * freq + sc.u(0, 6.3) + drift * j)
            prof -= amp * 0.55**j * wave ** sc.u(1.2, 1.8)
        colour = _layer_colour(deep, fog, 0.15 + 0.85 * depth, float(prof.min()), span * 0.25, 0.35)
        _silhouette(img, prof, colour, crest * (0.5 + 0.5 * depth), rim_px=1.0 + 7.0 * depth * g.px / 512)
    _glitter(sc, img, sun, hz)
    return img


def _glitter(sc: Scene, img: np.ndarray, sun: tuple[float, float, float], hz: float) -> None:
    """The sun's broken reflection in a column on the water below the horizon."""
    g, look = sc.grid, sc.look
    top = int(max(0, hz))
    if top >= g.height:
        return
    x, _ = g.hi()
    col = np.exp(-((x - sun[0]) ** 2) / (2 * (sun[2] * 1.3) ** 2))
    rows = np.arange(top, g.height, dtype=np.float32)[:, None] + 0.5 - hz
    tex = noise_texture(sc.rng, beta=2.0, k_low=2.0, k_high=96.0)
    scale = 256.0 / g.px
    ripple = sample(tex, x * (g.px * scale * 0.08), rows * scale * 0.5 * (1.0 + 30.0 / (rows + 8.0)))
    sparkle = smoothstep(0.7, 2.2, ripple) * col * np.exp(-rows / (g.px * 1.2))
    img[:, top:] += ramp_colour(look.main if look.night else look.accent, 0.95) * sparkle * (0.8 if look.night else 1.5)


def skyline(sc: Scene) -> np.ndarray:
    """A city at dusk or night: three rows of towers in aerial perspective, lit windows, city glow."""
    g, look = sc.grid, sc.look
    horizon = sc.u(0.25, 0.45)
    sky, sun = _sky(sc, horizon)
    _, y = g.lo()
    sky += ramp_colour(look.accent, 0.75) * np.exp(-np.abs(y - horizon + 0.2) / 0.3) * 0.3
    img = g.up(sky)
    hz = g.height / 2 + horizon * g.px
    if look.night:
        stars(sc, int(g.width * g.height / 1e6 * 500), img, int(hz - 0.6 * g.px))
    _disc(img, g, sun, ramp_colour(look.main if look.night else look.accent, 0.97) * 1.3)
    fog = ramp_colour(look.main, 0.3 if look.night else 0.5)
    near = ramp_colour(look.main, 0.0) * 0.3
    for k in range(3):
        depth = k / 2
        height = g.px * (0.7 - 0.25 * depth) * sc.u(0.8, 1.15)
        ground = hz + depth * 0.35 * g.px * (g.height - hz) / (g.px * (1.0 - horizon))
        prof, building = _towers(sc, g.width, ground, height, g.px * (0.06 + 0.06 * depth))
        colour = _layer_colour(near, fog, 0.2 + 0.8 * depth, float(prof.min()), g.px * 0.9, 0.55 - 0.35 * depth)
        _silhouette(img, prof, colour, walls=True)
        if k > 0:
            _windows(sc, img, prof, building, g.px * (0.018 + 0.008 * depth), 0.22 - 0.1 * depth)
    return img


def _towers(sc: Scene, w: int, ground: float, height: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """A row of buildings: the roof row per column (walls on whole pixels, so never jagged) and
    which building each column belongs to."""
    edges = [0]
    while edges[-1] < w:
        edges.append(edges[-1] + max(3, int(width * sc.u(0.5, 1.6))))
    n = len(edges) - 1
    tops = ground - height * sc.rng.uniform(0.2, 1.0, n) ** 1.7
    building = np.repeat(np.arange(n), np.diff(edges))[:w]
    prof = tops[building].astype(np.float32)
    for i in np.flatnonzero(sc.rng.uniform(0, 1, n) < 0.12):  # a few spires
        mid = (edges[i] + edges[i + 1]) // 2
        thin = max(1, int(width * 0.06))
        prof[mid - thin // 2: mid - thin // 2 + thin] -= height * sc.u(0.08, 0.25)
    return prof, building


def _windows(sc: Scene, img: np.ndarray, prof: np.ndarray, building: np.ndarray, pitch: float, lit: float) -> None:
    """Lit windows in a grid on each building, softly antialiased, most warm, some cool."""
    g, look = sc.grid, sc.look
    top = int(max(0, prof.min()))
    if top >= g.height or pitch < 2.5:
        return
    cols = np.arange(g.width, dtype=np.float32) + 0.5
    rows = np.arange(top, g.height, dtype=np.float32)[:, None] + 0.5
    cx, cy = cols / pitch, rows / (pitch * 1.4)
    ax = pitch * 0.5  # pixels per half cell: edges ~1 px soft
    wx = np.clip((0.3 - np.abs(cx - np.floor(cx) - 0.5)) * (2 * ax) + 0.5, 0.0, 1.0)
    wy = np.clip((0.28 - np.abs(cy - np.floor(cy) - 0.5)) * (2 * ax * 1.4) + 0.5, 0.0, 1.0)
    cell = (np.floor(cx).astype(np.int64)[None, :] * 73856093) ^ (np.floor(cy).astype(np.int64) * 19349663)
    cell = ((cell ^ (building.astype(np.int64)[None, :] * 83492791) ^ int(sc.u(0, 1e6))) * 2654435761) >> 7
    cell %= 1000
    on = (cell < lit * 1000) * wx * wy * (rows > prof[None, :] + pitch * 1.2)
    lamp = np.array([1.0, 0.62, 0.25], dtype=np.float32).reshape(3, 1, 1)  # warm incandescent
    warm = mix(ramp_colour(look.accent, 0.9), lamp, 0.6)
    colour = np.where(cell % 5 > 0, warm, ramp_colour(look.main, 0.85))
    img[:, top:] += colour * on * 0.8
