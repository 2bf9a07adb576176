"""The mapping command's values, decoded without GL: corners, a mesh, one mesh point, masks; and flattened back."""

from __future__ import annotations

import re

import pytest

from engine.errors import ConfigError
from engine.render.mapping_edits import (
    MOST_VALUES,
    edited,
    flat_corners,
    flat_masks,
    flat_mesh,
    shape_problem,
)
from engine.render.venue import Mesh, OutputMapping

MAIN = OutputMapping("main")
MESHED = OutputMapping("main", mesh=Mesh.identity(3, 3))
QUAD = (4.0, 0.4, 0.4, 0.6, 0.4, 0.6, 0.6, 0.4, 0.6)
TRIANGLE = (3.0, 0.0, 0.0, 0.2, 0.0, 0.0, 0.2)


def test_the_longest_value_is_a_whole_16x16_mesh() -> None:
    """2 numbers of size and 16 * 16 points of 2."""
    assert MOST_VALUES == 514
    assert shape_problem("mesh", (16.0, 16.0, *[0.5] * 512)) is None


def test_corners_take_eight_numbers() -> None:
    """Top-left first, clockwise; the rest of the output is kept."""
    out = edited(MESHED, "corners", (0.1, 0.0, 0.9, 0.0, 1.0, 1.0, 0.0, 1.0))
    assert out.corners == ((0.1, 0.0), (0.9, 0.0), (1.0, 1.0), (0.0, 1.0)) and out.mesh == MESHED.mesh


def test_a_size_alone_makes_an_identity_mesh() -> None:
    """[cols, rows]: the grid that changes nothing, of that size."""
    assert edited(MAIN, "mesh", (4.0, 3.0)).mesh == Mesh.identity(4, 3)


def test_a_size_and_points_set_the_whole_mesh() -> None:
    """[cols, rows, x0, y0, ..]: row-major, top row first."""
    points = (0.0, 0.0, 1.0, 0.0, 0.1, 0.9, 1.0, 1.0)
    mesh = edited(MAIN, "mesh", (2.0, 2.0, *points)).mesh
    assert mesh == Mesh(2, 2, ((0.0, 0.0), (1.0, 0.0), (0.1, 0.9), (1.0, 1.0)))


def test_an_empty_mesh_value_removes_the_mesh() -> None:
    """[] (or no value at all): back to the corner pin alone."""
    assert edited(MESHED, "mesh", ()).mesh is None


def test_a_point_moves_one_control_point() -> None:
    """[index, x, y]: the centre of a 3x3 mesh is index 4; the other points stay."""
    mesh = edited(MESHED, "point", (4.0, 0.6, 0.45)).mesh
    assert mesh is not None and mesh.points[4] == (0.6, 0.45)
    identity = Mesh.identity(3, 3).points
    assert mesh.points[:4] == identity[:4] and mesh.points[5:] == identity[5:]


def test_masks_are_counted_flat_lists() -> None:
    """[n1, x, y, .., n2, ..]: a quad and a triangle; [] removes them."""
    out = edited(MAIN, "masks", (*QUAD, *TRIANGLE))
    assert out.masks == (((0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6)), ((0.0, 0.0), (0.2, 0.0), (0.0, 0.2)))
    assert edited(out, "masks", ()).masks == ()


def test_flattening_gives_back_what_the_command_takes() -> None:
    """The snapshot's numbers, sent back, make the same output."""
    out = edited(edited(MAIN, "mesh", (3.0, 2.0)), "masks", (*QUAD, *TRIANGLE))
    assert flat_mesh(out.mesh)[:2] == (3.0, 2.0) and len(flat_mesh(out.mesh)) == 2 + 12
    assert flat_masks(out.masks) == (*QUAD, *TRIANGLE)
    assert flat_corners(out) == (0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0)
    assert edited(MAIN, "mesh", flat_mesh(out.mesh)).mesh == out.mesh
    assert flat_mesh(None) == () and flat_masks(()) == ()


@pytest.mark.parametrize(("key", "values", "words"), [
    ("corners", (0.0,) * 7, "expected 8 numbers"),
    ("mesh", (3.0,), "expected [] (no mesh)"),
    ("mesh", (17.0, 17.0), "whole numbers from 2 to 16"),
    ("mesh", (1.0, 3.0), "whole numbers from 2 to 16"),
    ("mesh", (2.5, 3.0), "whole numbers from 2 to 16"),
    ("mesh", (2.0, 2.0, 0.0, 0.0, 1.0), "expected [cols, rows] or 4 points for 2x2"),
    ("point", (4.0, 0.5), "expected [index, x, y]"),
    ("point", (-1.0, 0.5, 0.5), "index: a whole number"),
    ("masks", (2.0, 0.0, 0.0, 1.0, 1.0), "mask 1: a vertex count of 3 to 256"),
    ("masks", (*QUAD, 3.0, 0.0, 0.0), "mask 2: expected 3 points, the list ends after 1"),
    ("masks", QUAD * 33, "at most 32 masks"),
    ("masks", (3.0, 0.0, 0.0, 1.0, float("nan"), 0.0, 1.0), "finite"),
    ("blend", (0.1,), "unknown key 'blend'"),
])
def test_a_value_of_the_wrong_shape_says_why(key: str, values: tuple[float, ...], words: str) -> None:
    """Each shape problem is named, and ``edited`` raises it as a ConfigError naming the output and key."""
    problem = shape_problem(key, values)
    assert problem is not None and words in problem
    with pytest.raises(ConfigError, match=re.escape(f"main.{key}: {problem}")):
        edited(MAIN, key, values)


def test_a_point_needs_a_mesh_with_that_point() -> None:
    """No mesh to move a point of, or an index past the mesh: errors, not a crash."""
    with pytest.raises(ConfigError, match="has no mesh"):
        edited(MAIN, "point", (0.0, 0.5, 0.5))
    with pytest.raises(ConfigError, match=re.escape("index 9 is past the 3x3 mesh's 9 points")):
        edited(MESHED, "point", (9.0, 0.5, 0.5))


def test_too_many_numbers_is_a_problem_for_every_key() -> None:
    """An overall bound, whatever the key."""
    problem = shape_problem("masks", (3.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0) * 80)
    assert problem is not None and "at most 514 numbers" in problem
