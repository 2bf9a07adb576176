"""The venue profile (``venue.toml``): how each projector's picture is warped, blended and masked.

Data, parsing, writing and the geometry, without GL: ``engine/render/mapping.py`` draws what this
module describes, and the tests check the arithmetic here with plain numbers.

Coordinates. Every 0..1 coordinate has its origin at the top left and y pointing down, as a
projectionist reads a screen:

- the *canvas* is the whole picture the show renders; ``region`` (x, y, w, h) is the part of it that an
  output shows;
- *content* coordinates (s, t) run 0..1 across that region: the output's own picture;
- *output* coordinates run 0..1 across the output's window (the projector's raster).

How the warps compose. The picture goes content → mesh → corner pin → output::

    output point = H(M(s, t))

``M`` is the mesh warp: a Catmull-Rom surface through the control grid, whose identity places control
point (i, j) at (i / (cols - 1), j / (rows - 1)). Its values live in the *corner-pinned square*: the unit
square that ``H``, the corner pin's homography, carries onto the four ``corners``. So the corner pin does
the coarse fit (the projector's keystone) and the mesh the fine one (a curved or uneven surface), and a
mesh stays valid when the corners are moved. Without a mesh, ``M`` is the identity.

Edge blend widths are fractions of the *canvas* width (left, right) and height (top, bottom), the units in
which regions overlap: outputs at [0, 0.55] and [0.45, 1] overlap by 0.1 and both take a blend of 0.1,
whatever their widths. The ramp follows the picture (it is computed from content coordinates, so it is
warped with it); masks are in output coordinates (they black out parts of the physical surface).

Errors name the key: ``venue.toml: output[1].mesh.points: expected 12 points for 4x3, got 11``, raised as
:class:`~engine.errors.ConfigError` (its ``key`` is the file and the dotted key).
"""

from __future__ import annotations

import math
import os
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]

UNIT_CORNERS: Quad = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
FULL_REGION: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
MESH_MIN, MESH_MAX = 2, 16  # control points per axis
MAX_MASKS = 32
MAX_SCREEN = 64  # as [window] screen
MAX_MASK_VERTICES = 256
CORNER_RANGE = (-1.0, 2.0)  # a corner may lie off the raster (the picture overscans it)
GAMMA_RANGE = (1.0, 4.0)
# Quads per mesh patch side when tessellating, and quads per side at least. The drawn surface is made of
# chords of the Catmull-Rom one, off it by at most h^2/8 * max|f''| for chords of length h: with 8 per patch,
# the benchmark's 16x16 mesh (every inner point moved by up to a third of a cell) puts every 1080p pixel
# within 0.35 px of the exact surface (0.86 px with 5 per patch). That is 120 x 120 quads for a 16x16 mesh,
# 29k triangles: nothing for a GPU (llvmpipe pays ~1 us each).
QUADS_PER_PATCH = 8
MIN_QUADS = 64
EPS = 1e-9


@dataclass(frozen=True)
class Blend:
    """Edge blend widths (fractions of the canvas width or height) and the projector's gamma."""

    left: float = 0.0
    right: float = 0.0
    top: float = 0.0
    bottom: float = 0.0
    gamma: float = 2.2


@dataclass(frozen=True)
class Mesh:
    """A cols x rows grid of control points in the corner-pinned square, row-major, top row first."""

    cols: int
    rows: int
    points: tuple[Point, ...]

    @staticmethod
    def identity(cols: int, rows: int) -> Mesh:
        """The grid that changes nothing: control point (i, j) at (i / (cols - 1), j / (rows - 1))."""
        return Mesh(cols, rows, tuple((i / (cols - 1), j / (rows - 1)) for j in range(rows) for i in range(cols)))

    def grid(self) -> np.ndarray:
        """The points as a (rows, cols, 2) float64 array."""
        return np.asarray(self.points, dtype=np.float64).reshape(self.rows, self.cols, 2)


@dataclass(frozen=True)
class OutputMapping:
    """One projector (one window): what part of the canvas it shows and how it is fitted to the surface."""

    name: str
    region: tuple[float, float, float, float] = FULL_REGION
    corners: Quad = UNIT_CORNERS
    mesh: Mesh | None = None
    blend: Blend = field(default_factory=Blend)
    masks: tuple[tuple[Point, ...], ...] = ()
    screen: int | None = None  # the display its window goes fullscreen on (None: the one after the previous)


@dataclass(frozen=True)
class Venue:
    """Every output of the show; the first is the main window."""

    outputs: tuple[OutputMapping, ...]


# --- geometry ---------------------------------------------------------------------------------------------


def homography(corners: Sequence[Point]) -> np.ndarray:
    """The 3x3 matrix H taking the unit square onto ``corners`` (top-left, top-right, bottom-right, bottom-left).

    (u, v, 1) → (X, Y, W), the point being (X / W, Y / W). The closed form of Heckbert's square-to-quad
    mapping ("Fundamentals of Texture Mapping", 1989), with H[2, 2] = 1.
    """
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = corners
    sx, sy = x0 - x1 + x2 - x3, y0 - y1 + y2 - y3
    if abs(sx) < EPS and abs(sy) < EPS:
        g = h = 0.0  # a parallelogram: affine
    else:
        dx1, dx2, dy1, dy2 = x1 - x2, x3 - x2, y1 - y2, y3 - y2
        den = dx1 * dy2 - dx2 * dy1
        if abs(den) < EPS:
            raise ValueError("degenerate quad: three corners on a line")
        g = (sx * dy2 - dx2 * sy) / den
        h = (dx1 * sy - sx * dy1) / den
    return np.array([
        [x1 - x0 + g * x1, x3 - x0 + h * x3, x0],
        [y1 - y0 + g * y1, y3 - y0 + h * y3, y0],
        [g, h, 1.0],
    ])


def apply_homography(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (..., 2) through H, divided by W."""
    p = np.asarray(points, dtype=np.float64)
    xyw: np.ndarray = p @ h[:, :2].T + h[:, 2]
    out: np.ndarray = xyw[..., :2] / xyw[..., 2:3]
    return out


def quad_problem(corners: Sequence[Point]) -> str | None:
    """Why ``corners`` cannot be a corner pin (not a convex quad), or None.

    Convex and non-degenerate is exactly what keeps W > 0 over the whole square, so the warp never folds
    or flies off through infinity. Either winding is fine: listing the corners mirrored flips the picture
    (rear projection).
    """
    p = np.asarray(corners, dtype=np.float64)
    edges = np.roll(p, -1, axis=0) - p
    turns = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    nxt = np.roll(p, -1, axis=0)
    area = abs(float(np.sum(p[:, 0] * nxt[:, 1] - nxt[:, 0] * p[:, 1]))) / 2  # the shoelace formula
    if np.any(np.abs(turns) < 1e-9):
        return "the corners are degenerate (two coincide, or three are on a line)"
    if not (np.all(turns > 0) or np.all(turns < 0)):
        return "the corners must make a convex quad, listed top-left, top-right, bottom-right, bottom-left"
    if area < 1e-6:
        return "the corners enclose no area"
    return None


def catmull_rom_weights(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For positions ``x`` in 0..1 along an axis of ``n`` control points: (first index, 4 weights each).

    Indices point into the control points padded with one phantom at each end (so index 0 is the phantom
    before point 0). Uniform Catmull-Rom: it passes through every control point and is C1, so neighbouring
    patches meet with no seam and no kink.
    """
    pos = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0) * (n - 1)
    i = np.minimum(np.floor(pos).astype(np.int64), n - 2)
    f = pos - i
    f2, f3 = f * f, f * f * f
    w = np.stack([
        (-f3 + 2 * f2 - f) / 2,
        (3 * f3 - 5 * f2 + 2) / 2,
        (-3 * f3 + 4 * f2 + f) / 2,
        (f3 - f2) / 2,
    ], axis=-1)
    return i, w


def _padded(grid: np.ndarray) -> np.ndarray:
    """The control grid with a phantom row and column on every side, extrapolated linearly.

    Linear phantoms make Catmull-Rom reproduce any affine grid exactly, the identity included, and a
    2x2 mesh is plain bilinear interpolation.
    """
    g = np.concatenate([2 * grid[:1] - grid[1:2], grid, 2 * grid[-1:] - grid[-2:-1]], axis=0)
    return np.concatenate([2 * g[:, :1] - g[:, 1:2], g, 2 * g[:, -1:] - g[:, -2:-1]], axis=1)


def _weight_matrix(x: np.ndarray, n: int) -> np.ndarray:
    """(len(x), n + 2): row k holds the Catmull-Rom weights of x[k] over the padded control points."""
    i, w = catmull_rom_weights(x, n)
    m = np.zeros((len(x), n + 2))
    rows = np.arange(len(x))
    for k in range(4):
        m[rows, i + k] = w[:, k]
    return m


def mesh_surface(mesh: Mesh, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """M(s, t) on the grid of ``t`` (rows) by ``s`` (columns): a (len(t), len(s), 2) array.

    A tensor-product surface: each coordinate is Wt @ P @ Ws.T over the padded control points.
    """
    p = _padded(mesh.grid())
    ws = _weight_matrix(np.asarray(s, dtype=np.float64), mesh.cols)
    wt = _weight_matrix(np.asarray(t, dtype=np.float64), mesh.rows)
    return np.stack([wt @ p[..., c] @ ws.T for c in range(2)], axis=-1)


def mesh_points(mesh: Mesh, content: np.ndarray) -> np.ndarray:
    """M at scattered content points (N, 2) → pinned points (N, 2)."""
    c = np.asarray(content, dtype=np.float64).reshape(-1, 2)
    p = _padded(mesh.grid())
    i, wi = catmull_rom_weights(c[:, 0], mesh.cols)
    j, wj = catmull_rom_weights(c[:, 1], mesh.rows)
    out = np.zeros_like(c)
    for a in range(4):
        for b in range(4):
            out += (wj[:, a] * wi[:, b])[:, None] * p[j + a, i + b]
    return out


def map_points(output: OutputMapping, content: np.ndarray) -> np.ndarray:
    """Content points (N, 2) → output coordinates (N, 2): H(M(s, t)), the exact surface (not tessellated)."""
    c = np.asarray(content, dtype=np.float64).reshape(-1, 2)
    pinned = c if output.mesh is None else mesh_points(output.mesh, c)
    return apply_homography(homography(output.corners), pinned)


def tessellate(mesh: Mesh | None) -> tuple[np.ndarray, np.ndarray]:
    """The triangles the mapping pass draws: (vertices (N, 4) float32 [pinned u, v, content s, t], indices).

    Without a mesh, one quad: the homography is applied per vertex with its W, and GL's perspective-correct
    interpolation makes the corner pin exact at every pixel. With a mesh, a fine grid whose vertices lie on
    the Catmull-Rom surface, QUADS_PER_PATCH quads per patch (at least MIN_QUADS per side), vertices falling
    on every control point; the corner pin still applies exactly to each flat triangle.
    """
    if mesh is None:
        steps_s = steps_t = 1
    else:
        steps_s = (mesh.cols - 1) * max(QUADS_PER_PATCH, math.ceil(MIN_QUADS / (mesh.cols - 1)))
        steps_t = (mesh.rows - 1) * max(QUADS_PER_PATCH, math.ceil(MIN_QUADS / (mesh.rows - 1)))
    s = np.linspace(0.0, 1.0, steps_s + 1)
    t = np.linspace(0.0, 1.0, steps_t + 1)
    ss, tt = np.meshgrid(s, t)
    pinned = np.stack([ss, tt], axis=-1) if mesh is None else mesh_surface(mesh, s, t)
    vertices = np.concatenate([pinned, np.stack([ss, tt], axis=-1)], axis=-1).reshape(-1, 4)
    row = steps_s + 1
    corner = (np.arange(steps_t)[:, None] * row + np.arange(steps_s)[None, :]).reshape(-1)
    quads = np.stack([corner, corner + 1, corner + row, corner + 1, corner + row + 1, corner + row], axis=-1)
    return vertices.astype(np.float32), quads.reshape(-1).astype(np.int32)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """3x^2 - 2x^3 on 0..1: ramp(x) + ramp(1 - x) == 1, so two facing ramps sum to a flat field."""
    c: np.ndarray = np.clip(x, 0.0, 1.0)
    out: np.ndarray = c * c * (3.0 - 2.0 * c)
    return out


def blend_weight(output: OutputMapping, content: np.ndarray) -> np.ndarray:
    """The light (linear) share of ``output`` at content points (N, 2): the GLSL's ramps, in numpy.

    The pixel value the pass writes is picture * weight ** (1 / gamma), so the projector's light is
    picture ** gamma * weight.
    """
    c = np.asarray(content, dtype=np.float64).reshape(-1, 2)
    _, _, w, h = output.region
    b = output.blend

    def ramp(x: np.ndarray, width: float) -> np.ndarray:
        return smoothstep(x / width) if width > 0 else np.ones_like(x)

    s, t = c[:, 0], c[:, 1]
    weight: np.ndarray = ramp(s, b.left / w) * ramp(1 - s, b.right / w) * ramp(t, b.top / h) * ramp(1 - t, b.bottom / h)
    return weight


# --- reading ----------------------------------------------------------------------------------------------


class _Reader:
    """Checks a parsed document, naming ``source: dotted.key`` in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key}", message)

    def table(self, key: str, value: Any, allowed: Sequence[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {value!r}")
        unknown = [k for k in value if k not in allowed]
        if unknown:
            raise self.fail(f"{key}.{unknown[0]}", f"unknown key (allowed: {', '.join(allowed)})")
        return value

    def number(self, key: str, value: Any, lo: float = -math.inf, hi: float = math.inf) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(key, f"expected a number, got {value!r}")
        if not lo <= value <= hi:
            raise self.fail(key, f"got {value!r}, expected {lo:g} to {hi:g}")
        return float(value)

    def integer(self, key: str, value: Any, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(key, f"got {value!r}, expected an integer from {lo} to {hi}")
        return value

    def point(self, key: str, value: Any, lo: float, hi: float) -> Point:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise self.fail(key, f"expected a point [x, y], got {value!r}")
        return (self.number(key, value[0], lo, hi), self.number(key, value[1], lo, hi))

    def points(self, key: str, value: Any, lo: float, hi: float) -> tuple[Point, ...]:
        if not isinstance(value, list | tuple):
            raise self.fail(key, f"expected a list of points [[x, y], ...], got {value!r}")
        return tuple(self.point(f"{key}[{i}]", p, lo, hi) for i, p in enumerate(value))

    # --- the sections -------------------------------------------------------------------------------------
    def venue(self, data: dict[str, Any]) -> Venue:
        self.table("venue", data, ("output",))
        raw = data.get("output")
        if not isinstance(raw, list) or not raw:
            raise self.fail("output", "a venue needs at least one [[output]] table")
        outputs = tuple(self.output(f"output[{i}]", o) for i, o in enumerate(raw))
        seen: dict[str, int] = {}
        for i, o in enumerate(outputs):
            if o.name in seen:
                raise self.fail(f"output[{i}].name", f"{o.name!r} is already the name of output[{seen[o.name]}]")
            seen[o.name] = i
        return Venue(outputs)

    def output(self, key: str, raw: Any) -> OutputMapping:
        d = self.table(key, raw, ("name", "region", "corners", "mesh", "blend", "masks", "screen"))
        name = d.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise self.fail(f"{key}.name", f"expected a name of 1 to 64 characters, got {name!r}")
        region = self.region(f"{key}.region", d.get("region", list(FULL_REGION)))
        corners = self.corners(f"{key}.corners", d.get("corners", [list(p) for p in UNIT_CORNERS]))
        mesh = None if "mesh" not in d else self.mesh(f"{key}.mesh", d["mesh"])
        blend = self.blend(f"{key}.blend", d.get("blend", {}), region)
        masks = self.masks(f"{key}.masks", d.get("masks", []))
        screen = None if "screen" not in d else self.integer(f"{key}.screen", d["screen"], 0, MAX_SCREEN)
        return OutputMapping(name, region, corners, mesh, blend, masks, screen)

    def region(self, key: str, raw: Any) -> tuple[float, float, float, float]:
        if not isinstance(raw, list | tuple) or len(raw) != 4:
            raise self.fail(key, f"expected [x, y, w, h] (0..1 of the canvas), got {raw!r}")
        x, y, w, h = (self.number(key, v, 0.0, 1.0) for v in raw)
        if w <= 0 or h <= 0 or x + w > 1 + 1e-6 or y + h > 1 + 1e-6:
            raise self.fail(key, f"{[x, y, w, h]} is not a region of the canvas: w, h > 0, x + w <= 1, y + h <= 1")
        return (x, y, w, h)

    def corners(self, key: str, raw: Any) -> Quad:
        pts = self.points(key, raw, *CORNER_RANGE)
        if len(pts) != 4:
            raise self.fail(key, f"expected 4 corners (top-left, top-right, bottom-right, bottom-left), got {len(pts)}")
        problem = quad_problem(pts)
        if problem is not None:
            raise self.fail(key, problem)
        return (pts[0], pts[1], pts[2], pts[3])

    def mesh(self, key: str, raw: Any) -> Mesh:
        d = self.table(key, raw, ("cols", "rows", "points"))
        for k in ("cols", "rows", "points"):
            if k not in d:
                raise self.fail(f"{key}.{k}", "missing (a mesh needs cols, rows and points)")
        cols = self.integer(f"{key}.cols", d["cols"], MESH_MIN, MESH_MAX)
        rows = self.integer(f"{key}.rows", d["rows"], MESH_MIN, MESH_MAX)
        pts = self.points(f"{key}.points", d["points"], 0.0, 1.0)
        if len(pts) != cols * rows:
            raise self.fail(f"{key}.points", f"expected {cols * rows} points for {cols}x{rows}, got {len(pts)}")
        return Mesh(cols, rows, pts)

    def blend(self, key: str, raw: Any, region: tuple[float, float, float, float]) -> Blend:
        d = self.table(key, raw, ("left", "right", "top", "bottom", "gamma"))
        _, _, w, h = region
        sides = {k: self.number(f"{key}.{k}", d.get(k, 0.0), 0.0, 1.0) for k in ("left", "right", "top", "bottom")}
        gamma = self.number(f"{key}.gamma", d.get("gamma", 2.2), *GAMMA_RANGE)
        for a, b, span, what in (("left", "right", w, "width"), ("top", "bottom", h, "height")):
            if sides[a] + sides[b] > span + 1e-6:
                raise self.fail(f"{key}.{a}", f"{a} + {b} = {sides[a] + sides[b]:g} is more than the region's "
                                f"{what} ({span:g}); blend widths are fractions of the canvas")
        return Blend(gamma=gamma, **sides)

    def masks(self, key: str, raw: Any) -> tuple[tuple[Point, ...], ...]:
        if not isinstance(raw, list | tuple) or len(raw) > MAX_MASKS:
            raise self.fail(key, f"expected a list of at most {MAX_MASKS} polygons, got {raw!r}")
        out = []
        for i, poly in enumerate(raw):
            pts = self.points(f"{key}[{i}]", poly, -1.0, 2.0)
            if not 3 <= len(pts) <= MAX_MASK_VERTICES:
                raise self.fail(f"{key}[{i}]", f"expected 3 to {MAX_MASK_VERTICES} points, got {len(pts)}")
            out.append(pts)
        return tuple(out)


def parse_venue(text: str, source: str = "venue.toml") -> Venue:
    """A venue from TOML text; a ConfigError names ``source`` and the key at fault."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(source, f"not valid TOML: {err}") from err
    return _Reader(source).venue(data)


def load_venue(path: str | Path) -> Venue:
    """Read a venue profile. Any problem is a ConfigError naming the file and key: the caller runs unwarped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(str(path), f"cannot read: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(str(path), f"not UTF-8 text: {err}") from err
    return parse_venue(text, str(path))


def check_venue(venue: Venue, source: str = "venue") -> Venue:
    """A venue built in code (the control page's edits), checked as if read from a file; returned as read."""
    return parse_venue(dumps_venue(venue), source)


# --- writing ----------------------------------------------------------------------------------------------


def _string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _number(x: float) -> str:
    """repr of a float is valid TOML and reads back to the same float."""
    if not math.isfinite(x):
        raise ValueError(f"cannot write {x!r} to a venue profile")
    return repr(float(x))


def _point(p: Point) -> str:
    return f"[{_number(p[0])}, {_number(p[1])}]"


def dumps_venue(venue: Venue) -> str:
    """The profile as TOML, laid out for hand editing: one mesh row and one mask per line."""
    lines = ["# Stagecraft venue profile: one [[output]] per projector; the first is the main window.",
             "# Coordinates are 0..1, origin top-left; blend widths are fractions of the canvas."]
    for o in venue.outputs:
        lines += ["", "[[output]]", f"name = {_string(o.name)}",
                  f"region = [{', '.join(_number(v) for v in o.region)}]",
                  f"corners = [{', '.join(_point(p) for p in o.corners)}]"]
        if o.screen is not None:
            lines.append(f"screen = {o.screen}")
        if o.masks:
            lines.append("masks = [")
            lines += [f"    [{', '.join(_point(p) for p in poly)}]," for poly in o.masks]
            lines.append("]")
        b = o.blend
        lines += ["", "[output.blend]", f"left = {_number(b.left)}", f"right = {_number(b.right)}",
                  f"top = {_number(b.top)}", f"bottom = {_number(b.bottom)}", f"gamma = {_number(b.gamma)}"]
        if o.mesh is not None:
            m = o.mesh
            lines += ["", "[output.mesh]", f"cols = {m.cols}", f"rows = {m.rows}", "points = ["]
            for r in range(m.rows):
                row = m.points[r * m.cols: (r + 1) * m.cols]
                lines.append(f"    {', '.join(_point(p) for p in row)},")
            lines.append("]")
    return "\n".join(lines) + "\n"


def save_venue(venue: Venue, path: str | Path) -> None:
    """Write the profile so that it loads back equal; atomically (a crash mid-write leaves the old file).

    The venue is checked first: a profile that would not load is a ConfigError, and nothing is written.
    """
    path = Path(path)
    text = dumps_venue(venue)
    parse_venue(text, str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
