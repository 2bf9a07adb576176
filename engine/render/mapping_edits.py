"""The control page's mapping edits as plain numbers, without GL: a command's key and values → the edited output.

A command (Action.MAPPING) names an output, a key and a flat list of numbers, because that is what the
protocol carries (docs/vj-protocol.md):

- ``corners``: ``[x0, y0, .. x3, y3]``, top-left first, clockwise (output coordinates);
- ``mesh``: ``[]`` removes the mesh, ``[cols, rows]`` makes an identity mesh of that size, and
  ``[cols, rows, x0, y0, ..]`` sets every control point (row-major, top row first, in the corner-pinned square);
- ``point``: ``[index, x, y]`` moves one control point of the mesh (cheap enough to send while dragging);
- ``masks``: ``[n1, x, y, .. (n1 points), n2, x, y, ..]``, every mask at once; ``[]`` removes them all.

The snapshot flattens the venue the same way (``flat_mesh``, ``flat_masks``), so the page sends back what it
was told. ``shape_problem`` checks the shape alone (counts, sizes, whole numbers), which the protocol does before
a message reaches the show; ``edited`` builds the new output, and the show then checks the whole venue with
``check_venue`` as if read from its file (ranges, a convex quad).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from engine.errors import ConfigError
from engine.render.venue import MAX_MASK_VERTICES, MAX_MASKS, MESH_MAX, MESH_MIN, Mesh, OutputMapping, Point

KEYS = ("corners", "mesh", "point", "masks")
MOST_VALUES = 2 + 2 * MESH_MAX * MESH_MAX  # a full 16x16 mesh, the longest value the page sends (514)


def _whole(x: float, lo: int, hi: int) -> int | None:
    """x as an int when it is a whole number in lo..hi, else None."""
    if not math.isfinite(x) or x != int(x) or not lo <= x <= hi:
        return None
    return int(x)


def _mask_counts(values: Sequence[float]) -> tuple[list[int], str | None]:
    """The vertex count of each mask in a flat list, or why the list is not one."""
    counts: list[int] = []
    i = 0
    while i < len(values):
        n = _whole(values[i], 3, MAX_MASK_VERTICES)
        if n is None:
            return counts, f"mask {len(counts) + 1}: a vertex count of 3 to {MAX_MASK_VERTICES}, got {values[i]!r}"
        if i + 1 + 2 * n > len(values):
            left = (len(values) - i - 1) / 2
            return counts, f"mask {len(counts) + 1}: expected {n} points, the list ends after {left:g}"
        counts.append(n)
        i += 1 + 2 * n
    if len(counts) > MAX_MASKS:
        return counts, f"at most {MAX_MASKS} masks, got {len(counts)}"
    return counts, None


def shape_problem(key: str, values: Sequence[float]) -> str | None:
    """Why ``values`` cannot be a ``key`` edit by its shape alone, or None. Ranges are ``check_venue``'s job."""
    if key not in KEYS:
        return f"unknown key {key[:40]!r} (known: {', '.join(KEYS)})"
    if len(values) > MOST_VALUES:
        return f"at most {MOST_VALUES} numbers, got {len(values)}"
    if not all(math.isfinite(v) for v in values):
        return "expected finite numbers"
    n = len(values)
    if key == "corners":
        return None if n == 8 else f"expected 8 numbers [x0, y0, .. x3, y3], got {n}"
    if key == "point":
        if n != 3:
            return f"expected [index, x, y], got {n} numbers"
        return None if _whole(values[0], 0, MESH_MAX * MESH_MAX - 1) is not None else \
            f"index: a whole number from 0 to {MESH_MAX * MESH_MAX - 1}, got {values[0]!r}"
    if key == "mesh":
        if n == 0:
            return None
        if n == 1:
            return "expected [] (no mesh), [cols, rows] or [cols, rows, x0, y0, ..]"
        cols, rows = (_whole(v, MESH_MIN, MESH_MAX) for v in values[:2])
        if cols is None or rows is None:
            return f"cols and rows: whole numbers from {MESH_MIN} to {MESH_MAX}, got {values[0]!r} x {values[1]!r}"
        if n not in (2, 2 + 2 * cols * rows):
            return f"expected [cols, rows] or {cols * rows} points for {cols}x{rows}, got {n - 2} numbers after them"
        return None
    return _mask_counts(values)[1]


def _points(values: Sequence[float]) -> tuple[Point, ...]:
    return tuple((float(values[i]), float(values[i + 1])) for i in range(0, len(values) - 1, 2))


def edited(output: OutputMapping, key: str, values: Sequence[float]) -> OutputMapping:
    """``output`` after the edit; a ConfigError naming the output and key when ``values`` cannot be that edit.

    Only the shape is checked here (and that a moved point exists): the caller checks the result as a venue.
    """
    problem = shape_problem(key, values)
    if problem is None and key == "point":
        problem = _point_problem(output.mesh, values)
    if problem is not None:
        raise ConfigError(f"{output.name}.{key}", problem)
    if key == "corners":
        quad = _points(values)
        return replace(output, corners=(quad[0], quad[1], quad[2], quad[3]))
    if key == "mesh":
        return replace(output, mesh=_mesh(values))
    if key == "point":
        assert output.mesh is not None  # _point_problem said so
        index = int(values[0])
        points = list(output.mesh.points)
        points[index] = (float(values[1]), float(values[2]))
        return replace(output, mesh=replace(output.mesh, points=tuple(points)))
    return replace(output, masks=_masks(values))


def _point_problem(mesh: Mesh | None, values: Sequence[float]) -> str | None:
    if mesh is None:
        return 'the output has no mesh (send key "mesh" first)'
    if int(values[0]) >= len(mesh.points):
        return f"index {int(values[0])} is past the {mesh.cols}x{mesh.rows} mesh's {len(mesh.points)} points"
    return None


def _mesh(values: Sequence[float]) -> Mesh | None:
    if not values:
        return None
    cols, rows = int(values[0]), int(values[1])
    if len(values) == 2:
        return Mesh.identity(cols, rows)
    return Mesh(cols, rows, _points(values[2:]))


def _masks(values: Sequence[float]) -> tuple[tuple[Point, ...], ...]:
    out = []
    i = 0
    for n in _mask_counts(values)[0]:
        out.append(_points(values[i + 1: i + 1 + 2 * n]))
        i += 1 + 2 * n
    return tuple(out)


# --- the other way: the venue as the snapshot's flat numbers --------------------------------------------------


def flat_corners(output: OutputMapping) -> tuple[float, ...]:
    return tuple(float(v) for p in output.corners for v in p)


def flat_mesh(mesh: Mesh | None) -> tuple[float, ...]:
    """``()`` without a mesh, else ``(cols, rows, x0, y0, ..)``: what key "mesh" takes."""
    if mesh is None:
        return ()
    return (float(mesh.cols), float(mesh.rows), *(float(v) for p in mesh.points for v in p))


def flat_masks(masks: Sequence[Sequence[Point]]) -> tuple[float, ...]:
    """``(n1, x, y, .., n2, x, y, ..)``: what key "masks" takes."""
    out: list[float] = []
    for poly in masks:
        out.append(float(len(poly)))
        out += (float(v) for p in poly for v in p)
    return tuple(out)
