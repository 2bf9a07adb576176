"""Painters: one function per composition style, each turning a ``Scene`` into linear-light planes.

Here are the abstract ones (flow, nebula, mandala, crystal, glow) and the words' motion
as a coordinate frame they share; the landscapes come from ``engine.gen.landscapes``.
``RENDER`` maps every style to its painter. A painter returns (3, H, W) float32 at the
output size, ungraded: ``engine.gen.grading`` finishes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.gen.canvas import Grid, Scene, blocks, mix, noise_texture, ramp, ramp_colour, sample, smoothstep
from engine.gen.landscapes import mountains, skyline, stars, waves
from engine.gen.look import Look

# --- motion ---------------------------------------------------------------------------------------


def _rotate(x: np.ndarray, y: np.ndarray, angle: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(angle), np.sin(angle)
    return x * c + y * s, y * c - x * s


def _flow_frame(sc: Scene, x: np.ndarray, y: np.ndarray, scale: float,
                radial: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Texel coordinates (``scale`` per unit) in which the words' motion is a straight drift along
    u, stretched; a swirl twists them round a centre; a burst (if ``radial``) makes them polar,
    the angle spanning 512 texels, two periods of a noise tile, so the seam never shows."""
    look = sc.look
    x, y = np.broadcast_arrays(x, y)
    cx, cy = sc.u(-0.3, 0.3), sc.u(-0.25, 0.25)
    x, y = x - cx, y - cy
    if look.burst and radial:
        r = np.sqrt(x * x + y * y) + 0.05
        return np.log(r) * (0.9 * look.stretch * scale), np.arctan2(y, x) * (512 / (2 * math.pi))
    if look.swirl:
        r2 = x * x + y * y
        x, y = _rotate(x, y, look.swirl * 2.2 * np.exp(-r2 / 0.9))
    u, v = _rotate(x, y, look.angle)
    return u * (scale / look.stretch), v * scale


# --- styles ---------------------------------------------------------------------------------------


def _grad(f: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Central differences ``step`` cells apart (per cell): wide enough to smooth over the texel
    grid of a bilinear lookup, whose own derivative jumps from texel to texel."""
    s = max(1, min(step, (min(f.shape) - 1) // 2))
    p = np.pad(f, s, mode="edge")
    gx = (p[s:-s, 2 * s:] - p[s:-s, : -2 * s]) * (0.5 / s)
    gy = (p[2 * s:, s:-s] - p[: -2 * s, s:-s]) * (0.5 / s)
    return gx, gy


def _flow_lines(img: np.ndarray, g: Grid, f: np.ndarray, spacing: float, colour: np.ndarray,
                width: float, fade: np.ndarray, step: int) -> None:
    """Fine lines of even width along evenly spaced level sets of the work-grid field ``f``, like
    threads in silk, drawn at full resolution: the field and its gradient are upsampled and the
    line shape is applied after, so the lines stay crisp. ``fade`` (work grid) weights them."""
    gx, gy = _grad(f, step)
    grad = np.sqrt(gx * gx + gy * gy) * (g.w / g.width)  # field change per output pixel
    grad = np.maximum(grad, max(float(np.percentile(grad, 10)), 1e-6))
    fade = fade * smoothstep(3.0 * width, 9.0 * width, spacing / grad)  # lines too close: fade, no moiré
    grad *= width / spacing
    big_f, big_g, big_fade = g.up(f), g.up(grad), g.up(fade)
    for rows in blocks(g.height):
        k = big_f[rows] * (1.0 / spacing)
        k -= np.floor(k + 0.5)  # -0.5..0.5: where between two levels
        k /= big_g[rows]
        line = np.exp(-(k * k))
        line *= big_fade[rows]
        img[:, rows] += colour * line


def _flow(sc: Scene) -> np.ndarray:
    """Domain-warped noise: marbled ink with fine flow lines, drawn out along the words' motion."""
    g, look = sc.grid, sc.look
    x, y = g.lo()
    tex = noise_texture(sc.rng, beta=3.2 - 0.6 * look.energy, k_low=2.0, k_high=40.0)
    ts = sc.u(14, 19) * (0.85 + 0.4 * look.energy) / look.stretch**0.3  # texels per unit
    u, v = _flow_frame(sc, x, y, ts)
    warp = ts * (0.3 + 0.3 * look.energy)
    o = sc.rng.uniform(0, 256, 10)
    q1, q2 = sample(tex, u + o[0], v + o[1]), sample(tex, u + o[2], v + o[3])
    r1 = sample(tex, u + warp * q1 + o[4], v + warp * q2 + o[5])
    r2 = sample(tex, u + warp * q1 + o[6], v + warp * q2 + o[7])
    f = sample(tex, u + warp * r1 + o[8], v + warp * r2 + o[9])
    t = 0.5 + 0.5 * np.tanh(f * 0.8 + sc.u(-0.3, 0.3))
    img = ramp(look.main, 0.1 + 0.72 * t)
    acc = smoothstep(0.5, 1.7, np.sqrt(q1 * q1 + q2 * q2)) * smoothstep(-0.2, 1.0, r1)
    img = mix(img, ramp(look.accent, 0.3 + 0.5 * t), acc * 0.6)
    step = round(g.w / g.width * g.px / ts * 0.4)  # about a texel, in work cells
    gx, gy = _grad(f, step)
    la = look.angle + sc.u(0.5, 1.2)
    shade = np.clip(1.0 + (gx * math.cos(la) + gy * math.sin(la)) * (g.w / 6.0), 0.6, 1.5)
    img = g.up(img * shade)
    fade = smoothstep(-0.6, 1.4, sample(tex, u * 0.5 + o[1], v * 0.5 + o[0])) * (0.25 + 0.35 * t)
    _flow_lines(img, g, f, sc.u(0.18, 0.3), ramp_colour(look.accent, 0.92), g.px / 420.0, fade, step)
    return img


def _nebula(sc: Scene) -> np.ndarray:
    """Deep space: glowing gas in two colours with dark dust lanes along a band or a spiral, stars."""
    g, look = sc.grid, sc.look
    x, y = g.lo()
    gas = noise_texture(sc.rng, beta=3.0, k_low=2.0, k_high=48.0)
    dust = noise_texture(sc.rng, beta=2.6, k_low=3.0, k_high=64.0)
    ts = sc.u(16, 24)
    u, v = _flow_frame(sc, x, y, ts)  # factors below are multiples of 1/2: a burst's seam stays hidden
    o = sc.rng.uniform(0, 256, 8)
    wu = sample(gas, u * 0.5 + o[0], v * 0.5 + o[1]) * (ts * 0.3)
    wv = sample(gas, u * 0.5 + o[2], v * 0.5 + o[3]) * (ts * 0.3)
    band = np.exp(-(((v + 0.3 * wv) / ts - sc.u(-0.2, 0.2)) ** 2) / (2 * sc.u(0.3, 0.55) ** 2))
    n1 = sample(gas, u + wu + o[4], v + wv + o[5])
    n2 = sample(gas, u * 2.0 - wv + o[6], v * 2.0 + wu + o[7])
    d = sample(dust, u * 1.5 + wu, v * 1.5 + wv)
    e1 = n1 * 1.1 + band * 2.2
    e2 = n2 * 1.2 + band * 1.4
    dens1 = np.exp(e1 - 2.6)
    dens2 = np.exp(e2 - 3.0) * smoothstep(-0.3, 0.8, n1)
    lanes = np.exp(-2.2 * smoothstep(0.2, 1.4, d) * (0.3 + band))
    bg = ramp(look.main, 0.02 + 0.05 * (1 + y / 2.0) + 0.08 * band)
    gas1 = ramp(look.main, np.minimum(0.4 + 0.08 * e1, 0.78)) * dens1
    gas2 = ramp(look.accent, np.minimum(0.45 + 0.08 * e2, 0.8)) * dens2
    img = g.up(bg + (gas1 + gas2) * lanes)
    stars(sc, int(g.width * g.height / 1e6 * sc.u(1500, 2600)), img)
    return img


@dataclass(frozen=True)
class _Petals:
    """One ring of petals: radius bounds (units), count, shape and colours at base and tip."""

    inner: float
    outer: float
    n: int
    sharp: float
    turn: float
    base: np.ndarray
    tip: np.ndarray
    dots: float  # radius of a ring of dots just outside, 0 for none


def _mandala(sc: Scene) -> np.ndarray:
    """A radial flower: rings of petals in n-fold symmetry, shaded from base to tip and outlined
    twice, rings of dots between them, over a soft glow with faint rays. Drawn at full
    resolution, block by block, so every edge is crisp."""
    g, look = sc.grid, sc.look
    folds = [6, 8, 10, 12, 16][int(sc.u(0, 5))]
    layers = int(sc.u(4, 7))
    outer0, shift = sc.u(0.85, 0.97), sc.u(-0.12, 0.12)
    rings = []
    for k in range(layers):
        outer = outer0 * (1 - k / (layers + 0.5)) ** 1.05
        n = folds * (2 if k % 3 == 2 else 1)
        sharp, inner = sc.u(0.5, 2.2), outer * sc.u(0.5, 0.72)
        tone = 0.2 + 0.38 * k / max(1, layers - 1) + (shift if k % 2 else 0.0)
        base, tip = ramp_colour(look.main, tone), ramp_colour(look.main, tone + 0.28)
        if k % 3 == 1:
            base = mix(base, ramp_colour(look.accent, tone), 0.6)
            tip = mix(tip, ramp_colour(look.accent, tone + 0.3), 0.6)
        dots = outer * 1.04 if k % 2 == 1 and k < layers - 1 else 0.0
        rings.append(_Petals(inner, outer, n, sharp, (math.pi / n) * (k % 2), base, tip, dots))
    img = np.empty((3, g.height, g.width), dtype=np.float32)
    x, y = g.hi()
    for rows in blocks(g.height):
        _mandala_block(img[:, rows], g, x, y[rows], look, folds, rings, outer0)
    return img


def _mandala_block(img: np.ndarray, g: Grid, x: np.ndarray, y: np.ndarray, look: Look, folds: int,
                   rings: list[_Petals], outer0: float) -> None:
    r = np.sqrt(x * x + y * y) + 1e-6
    th = np.arctan2(np.broadcast_to(y, r.shape), np.broadcast_to(x, r.shape))
    if look.swirl:
        th += look.swirl * 0.5 * r
    glow = np.exp(-r * 1.8)
    glow += np.abs(np.cos(th * folds)) ** 24 * glow * 0.3  # faint rays
    dark, light = ramp_colour(look.main, 0.07), ramp_colour(look.main, 0.42)
    img[:] = dark + (light - dark) * glow
    line_colour = ramp_colour(look.accent, 0.93) * 0.7
    r_min = float(r.min())
    for p in rings:
        if r_min > p.outer + 0.05:
            continue
        a = (th + p.turn) * (p.n / 2)
        ac = np.abs(np.cos(a))
        bump = ac**p.sharp
        rad = p.inner + (p.outer - p.inner) * bump
        slope = (p.outer - p.inner) * p.sharp * (bump / np.maximum(ac, 1e-3)) * np.abs(np.sin(a)) * (p.n / 2)
        dist = (r - rad) / np.sqrt(1 + (slope / r) ** 2) * g.px  # ~ signed pixels to the petal's edge
        cov = np.clip(0.5 - dist, 0.0, 1.0)
        fill = p.base + (p.tip - p.base) * (r * (1.0 / p.outer))
        img += (fill - img) * cov
        d1, d2 = dist * (1 / 1.2), dist + 7 * g.px / 512
        img += line_colour * (np.exp(-(d1 * d1)) + 0.45 * np.exp(-(d2 * d2)) * cov)
        if p.dots and r_min < p.dots + 0.05:
            _dots(img, g, r, th, p.dots, p.n * 2, 2.5 / 512 + 0.006, line_colour)
    core = np.exp(-((r / (outer0 / (len(rings) + 1))) ** 2))
    img += ramp_colour(look.accent, 0.96) * core


def _dots(img: np.ndarray, g: Grid, r: np.ndarray, th: np.ndarray, radius: float, n: int, size: float,
          colour: np.ndarray) -> None:
    """A ring of ``n`` small discs at ``radius`` (units), antialiased."""
    a = th * (n / (2 * math.pi))
    dx = (a - np.floor(a) - 0.5) * (2 * math.pi * radius / n)
    dy = r - radius
    cov = np.clip((size - np.sqrt(dx * dx + dy * dy)) * g.px + 0.5, 0.0, 1.0)
    img += colour * cov


def _crystal(sc: Scene) -> np.ndarray:
    """Cut-glass facets (a jittered Voronoi diagram): each facet a flat shade lit from one side,
    with glowing edges, or dark leads for stained glass."""
    g, look = sc.grid, sc.look
    x, y = g.lo()
    cells = sc.u(3.5, 6.0) * (0.8 + 0.5 * look.energy) * (1.5 if look.glass else 1.0)
    u, v = _flow_frame(sc, x, y, cells, radial=False)
    u, v = u + 64, v + 64
    n = 256
    jx = sc.rng.uniform(0.1, 0.9, n * n).astype(np.float32)
    jy = sc.rng.uniform(0.1, 0.9, n * n).astype(np.float32)
    cu, cv = np.floor(u), np.floor(v)
    icu, icv = cu.astype(np.int32), cv.astype(np.int32)
    best = np.full(u.shape, 9.0, dtype=np.float32)
    second = best.copy()
    bx, by = np.zeros_like(best), np.zeros_like(best)
    ox, oy = np.zeros_like(best), np.zeros_like(best)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            cell = ((icv + dj) & (n - 1)) * n + ((icu + di) & (n - 1))
            px = np.take(jx, cell)
            px += cu + di
            py = np.take(jy, cell)
            py += cv + dj
            d = (px - u) ** 2 + (py - v) ** 2
            closer = d < best
            between = (d < second) & ~closer
            for dst, src in ((second, d), (ox, px), (oy, py)):
                np.copyto(dst, src, where=between)
            for dst, src in ((second, best), (ox, bx), (oy, by), (best, d), (bx, px), (by, py)):
                np.copyto(dst, src, where=closer)
    mx, my = bx - ox, by - oy
    ln = np.sqrt(mx * mx + my * my) + 1e-6
    edge = np.abs(((ox + bx) * 0.5 - u) * mx + ((oy + by) * 0.5 - v) * my) / (ln * cells)  # units
    h = np.sin(bx * 12.9898 + by * 78.233) * 43758.5453
    rnd = h - np.floor(h)
    la = look.angle + 2.0
    facet = np.clip(((u - bx) * math.cos(la) + (v - by) * math.sin(la)) * 0.6 + 0.5, 0.0, 1.0)
    lx, ly = sc.u(-0.4, 0.4), sc.u(-0.4, 0.4)
    light = np.exp(-((x - lx) ** 2 + (y - ly) ** 2) * 0.7)
    if look.glass:  # backlit jewel colours from both ramps, dark leads
        pick = rnd * 7.0 - np.floor(rnd * 7.0)
        jewel = np.where(rnd < 0.55, ramp(look.main, 0.45 + 0.45 * pick), ramp(look.accent, 0.4 + 0.5 * pick))
        big = g.up(jewel * (0.35 + 0.65 * light) * (0.8 + 0.4 * facet))
        e = g.up(edge)
        for rows in blocks(g.height):
            big[:, rows] *= np.clip(e[rows] * g.px - g.px * 0.012 + 0.5, 0.0, 1.0)  # dark leads
        return big
    t = 0.08 + 0.3 * rnd * light + 0.35 * light + 0.2 * facet * light
    img = mix(ramp(look.main, t), ramp(look.accent, 0.45 + 0.45 * light * facet), (rnd > 0.88) * 0.8)
    big, e, lit = g.up(img), g.up(edge), g.up(0.25 + light)
    colour = ramp_colour(look.accent, 0.95)
    for rows in blocks(g.height):
        px = np.maximum(e[rows], 0.0) * g.px  # output pixels to the nearest edge
        glow = np.exp(-px * 0.9) * 0.8 + np.exp(-px * 0.12) * 0.15
        big[:, rows] += colour * (glow * lit[rows])
    return big


def _glow(sc: Scene) -> np.ndarray:
    """A source of light: a bright core, rays turning with the words' swirl, rings rippling out
    (or a tunnel of them), sometimes drifting bokeh as from stage lights out of focus."""
    g, look = sc.grid, sc.look
    x, y = g.lo()
    cx, cy = math.cos(look.angle) * sc.u(0.0, 0.25), math.sin(look.angle) * sc.u(0.0, 0.2)
    dx, dy = x - cx, y - cy
    r = np.sqrt(dx * dx + dy * dy) + 1e-4
    th = np.arctan2(dy, dx) + look.swirl * 0.8 * r
    tex = noise_texture(sc.rng, beta=2.2, k_low=2.0, k_high=80.0)
    spokes = 256 * int(sc.u(1, 3)) / (2 * math.pi)  # whole periods round the circle: no seam
    ray = sample(tex, th * spokes, np.log(r) * sc.u(3, 9) + sc.u(0, 256))
    rays = smoothstep(-0.2, 2.2, ray) ** sc.u(1.2, 3.0) * np.exp(-r * 1.1)
    img = ramp(look.main, 0.04 + 0.6 * np.exp(-r * sc.u(1.2, 2.2)))
    img += ramp_colour(look.accent, 0.75) * (rays * sc.u(0.3, 0.8))
    img += ramp_colour(look.accent, 0.97) * (np.exp(-((r / sc.u(0.06, 0.14)) ** 2)) * 2.5)
    if sc.u() < 0.5:
        _bokeh(sc, img, x, y)
    img = g.up(img)
    if sc.u() < 0.3:  # a tunnel: many thin rings, closer and closer
        r0, q = sc.u(0.08, 0.15), sc.u(1.25, 1.45)
        rings = [(r0 * q**i, sc.u(0.8, 2.0) / g.px, 0.5) for i in range(int(math.log(2.5 / r0, q)))]
    else:
        rings = [(sc.u(0.25, 1.3), sc.u(1.2, 5.0) / g.px, sc.u(0.15, 0.5)) for _ in range(int(sc.u(0, 6)))]
    ring_colour = ramp_colour(look.main, 0.9)
    xh, yh = g.hi()
    for rows in blocks(g.height):
        rh = np.sqrt((xh - cx) ** 2 + (yh[rows] - cy) ** 2)
        light = np.zeros_like(rh)
        for rad, width, strength in rings:
            k = (rh - rad) * (1.0 / width)
            light += np.exp(-(k * k)) * (strength * math.exp(-rad))
        img[:, rows] += ring_colour * light
    return img


def _bokeh(sc: Scene, img: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
    """Soft discs of out-of-focus light with brighter rims, added on the work grid."""
    g, look = sc.grid, sc.look
    cell = (g.width / g.w) / g.px  # units per work cell
    for _ in range(int(sc.u(12, 30))):
        bx, by = sc.u(-1, 1) * g.aspect, sc.u(-1, 1)
        rad = sc.u(0.04, 0.2)
        colour = ramp_colour(look.accent if sc.u() < 0.5 else look.main, sc.u(0.55, 0.95)) * sc.u(0.05, 0.22)
        i0, i1 = np.searchsorted(x[0], [bx - rad - cell * 2, bx + rad + cell * 2])
        j0, j1 = np.searchsorted(y[:, 0], [by - rad - cell * 2, by + rad + cell * 2])
        if i0 >= i1 or j0 >= j1:
            continue
        d = np.sqrt((x[:, i0:i1] - bx) ** 2 + (y[j0:j1] - by) ** 2)
        disc = np.clip((rad - d) / (cell * 2.5) + 0.5, 0.0, 1.0) * (0.7 + 0.3 * (d / rad) ** 4)
        img[:, j0:j1, i0:i1] += colour * disc


RENDER: dict[str, Callable[[Scene], np.ndarray]] = {
    "flow": _flow, "nebula": _nebula, "mountains": mountains, "waves": waves,
    "skyline": skyline, "mandala": _mandala, "crystal": _crystal, "glow": _glow,
}
