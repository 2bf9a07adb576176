"""ScreenMap's edits of the venue: any output, by name; corners, mesh, a mesh point, masks; checked, counted, saved."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import moderngl
import pytest

from engine.commands import Action, Command
from engine.contract import MappingOutput
from engine.render.screen_map import ScreenMap
from engine.render.venue import Mesh, load_venue

TWO_OUTPUTS = '''
[[output]]
name = "main"
region = [0.0, 0.0, 0.55, 1.0]

[[output]]
name = "side"
region = [0.45, 0.0, 0.55, 1.0]
corners = [[0.1, 0.0], [1.0, 0.0], [1.0, 1.0], [0.1, 1.0]]
'''
QUAD = (4.0, 0.4, 0.4, 0.6, 0.4, 0.6, 0.6, 0.4, 0.6)
CROSSED = (0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0)


class Mapped:
    """A ScreenMap on a two-output venue file, with the errors it reported."""

    def __init__(self, ctx: moderngl.Context, path: Path) -> None:
        self.path = path
        self.errors: list[str] = []
        self.map = ScreenMap(ctx, self.errors.append)
        assert self.map.load(str(path)), self.errors

    def send(self, key: str, value: tuple[float, ...] | None, name: str = "main") -> None:
        self.map.command(Command(Action.MAPPING, value, source="vj", name=name, key=key))

    def saved(self) -> tuple[Mesh | None, tuple[tuple[tuple[float, float], ...], ...]]:
        """The first output's mesh and masks as the file on disk has them, once the writer is done."""
        assert self.map.wait_saved(5.0), "the venue writer did not finish"
        out = load_venue(self.path).outputs[0]
        return out.mesh, out.masks


@pytest.fixture
def mapped(ctx: moderngl.Context, tmp_path: Path) -> Iterator[Mapped]:
    path = tmp_path / "venue.toml"
    path.write_text(TWO_OUTPUTS)
    m = Mapped(ctx, path)
    yield m
    m.map.release()


def test_a_size_makes_an_identity_mesh_on_screen_and_on_disk(mapped: Mapped) -> None:
    """mesh [3, 3]: the venue, the screen's mapper and the file all get the 3x3 identity; one edit counted."""
    mapped.send("mesh", (3.0, 3.0))
    assert mapped.map.venue is not None and mapped.map.venue.outputs[0].mesh == Mesh.identity(3, 3)
    assert mapped.map.mapper is not None and mapped.map.mapper.output.mesh == Mesh.identity(3, 3)
    assert mapped.map.edits == 1 and not mapped.errors
    assert mapped.saved()[0] == Mesh.identity(3, 3)


def test_a_point_moves_one_mesh_point_and_is_saved(mapped: Mapped) -> None:
    """point [4, x, y] moves the centre of a 3x3 mesh; each applied edit counts."""
    mapped.send("mesh", (3.0, 3.0))
    mapped.send("point", (4.0, 0.6, 0.45))
    mesh = mapped.saved()[0]
    assert mesh is not None and mesh.points[4] == (0.6, 0.45) and mesh.points[0] == (0.0, 0.0)
    assert mapped.map.edits == 2 and not mapped.errors


def test_an_empty_mesh_removes_it(mapped: Mapped) -> None:
    """mesh [] (or no value): the corner pin alone again, in the file too."""
    mapped.send("mesh", (4.0, 2.0))
    mapped.send("mesh", None)
    assert mapped.map.venue is not None and mapped.map.venue.outputs[0].mesh is None
    assert mapped.saved()[0] is None and mapped.map.edits == 2


def test_masks_are_set_and_cleared(mapped: Mapped) -> None:
    """masks [4, ..quad]: one mask in the file; masks []: none."""
    mapped.send("masks", QUAD)
    assert mapped.saved()[1] == (((0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6)),)
    mapped.send("masks", ())
    assert mapped.saved()[1] == () and mapped.map.edits == 2 and not mapped.errors


def test_another_output_is_edited_by_name_without_touching_the_screen(mapped: Mapped) -> None:
    """name "side": its entry in the venue and the file changes; the screen's mapper keeps the first output."""
    mapper = mapped.map.mapper
    assert mapper is not None
    before = mapper.output
    mapped.send("masks", QUAD, name="side")
    mapped.send("corners", (0.0, 0.0, 0.9, 0.0, 0.9, 1.0, 0.0, 1.0), name="side")
    assert mapper.output == before and mapped.map.edits == 2 and not mapped.errors
    assert mapped.map.wait_saved(5.0)
    side = load_venue(mapped.path).outputs[1]
    assert side.masks == (((0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6)),)
    assert side.corners == ((0.0, 0.0), (0.9, 0.0), (0.9, 1.0), (0.0, 1.0))
    assert load_venue(mapped.path).outputs[0] == before


def test_an_empty_name_edits_the_first_output(mapped: Mapped) -> None:
    """The page before multi-output editing sent the first output's name; "" means it too."""
    mapped.send("mesh", (2.0, 2.0), name="")
    assert mapped.map.venue is not None and mapped.map.venue.outputs[0].mesh == Mesh.identity(2, 2)


def test_an_unknown_output_is_one_error_naming_the_known_ones(mapped: Mapped) -> None:
    """No output "left": reported with the venue's outputs, nothing changes."""
    venue = mapped.map.venue
    mapped.send("mesh", (3.0, 3.0), name="left")
    assert mapped.errors == ["mapping: no output 'left' in the venue (its outputs: 'main', 'side')"]
    assert mapped.map.venue is venue and mapped.map.edits == 0


@pytest.mark.parametrize(("key", "value", "words"), [
    ("corners", (0.0,) * 7, "expected 8 numbers"),
    ("corners", CROSSED, "convex"),
    ("mesh", (17.0, 17.0), "whole numbers from 2 to 16"),
    ("mesh", (2.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.5), "mesh.points[3]"),
    ("point", (4.0, 0.5, 0.5), "has no mesh"),
    ("masks", (2.0, 0.0, 0.0, 1.0, 1.0), "a vertex count of 3"),
    ("masks", (3.0, 0.0, 0.0, 1.0, math.nan, 0.0, 1.0), "finite"),
    ("corners", (0.0, 0.0, math.nan, 0.0, 1.0, 1.0, 0.0, 1.0), "finite"),
])
def test_a_bad_edit_is_one_error_and_changes_nothing(mapped: Mapped, key: str, value: tuple[float, ...],
                                                     words: str) -> None:
    """Reported once, naming what is wrong; the venue, the mapper, the count and the file stay as they were."""
    text = mapped.path.read_text()
    venue = mapped.map.venue
    assert mapped.map.mapper is not None
    screen = mapped.map.mapper.output
    mapped.send(key, value)
    assert len(mapped.errors) == 1 and mapped.errors[0].startswith("mapping edit not applied")
    assert words in mapped.errors[0]
    assert mapped.map.venue is venue and mapped.map.mapper.output == screen and mapped.map.edits == 0
    assert mapped.map.wait_saved(5.0) and mapped.path.read_text() == text


def test_the_snapshot_carries_every_output_flat(mapped: Mapped) -> None:
    """mapping_outputs: each output's name, corners, mesh and masks as the command takes them; the first is
    also mapping_name and mapping_corners."""
    mapped.send("mesh", (2.0, 2.0))
    mapped.send("masks", QUAD, name="side")
    fields = mapped.map.snapshot_fields()
    assert fields["mapping_name"] == "main" and fields["mapping_corners"] == (0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0)
    assert fields["mapping_outputs"] == (
        MappingOutput("main", fields["mapping_corners"], (2.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0)),
        MappingOutput("side", (0.1, 0.0, 1.0, 0.0, 1.0, 1.0, 0.1, 1.0), (), QUAD),
    )
    assert not fields["mapping_grid"]


def test_without_a_venue_an_edit_says_what_is_missing(ctx: moderngl.Context) -> None:
    """No profile: one error, and the snapshot has no outputs."""
    errors: list[str] = []
    screen = ScreenMap(ctx, errors.append)
    screen.command(Command(Action.MAPPING, (3.0, 3.0), source="vj", key="mesh"))
    assert errors == ["mapping edits need a venue profile ([show] venue, --venue FILE)"]
    assert screen.snapshot_fields()["mapping_outputs"] == () and screen.edits == 0
    screen.release()
