"""Projection mapping: the venue profile and its geometry (no GL), and the mapping pass on real GL."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import moderngl
import numpy as np
import pytest

from engine.errors import ConfigError
from engine.render.mapping import Mapper
from engine.render.venue import (
    UNIT_CORNERS,
    Blend,
    Mesh,
    OutputMapping,
    Venue,
    apply_homography,
    blend_weight,
    check_venue,
    homography,
    load_venue,
    map_points,
    mesh_points,
    mesh_surface,
    parse_venue,
    save_venue,
    tessellate,
)

SIZE = (640, 360)
PIN = ((0.12, 0.10), (0.85, 0.18), (0.93, 0.90), (0.05, 0.80))
Points = tuple[tuple[float, float], ...]


# --- helpers --------------------------------------------------------------------------------


def texture_of(ctx: moderngl.Context, picture: np.ndarray) -> moderngl.Texture:
    """A texture holding ``picture`` ((h, w, 4) uint8 or float32, top row first) the GL way up."""
    h, w = picture.shape[:2]
    dtype = "f4" if picture.dtype == np.float32 else "f1"
    return ctx.texture((w, h), 4, np.ascontiguousarray(picture[::-1]).tobytes(), dtype=dtype)


def read_back(fb: moderngl.Framebuffer, float_: bool = False) -> np.ndarray:
    """The target's (h, w, 4) pixels, top row first."""
    w, h = fb.size
    dtype = "f4" if float_ else "f1"
    data = np.frombuffer(fb.read(components=4, dtype=dtype), dtype=np.float32 if float_ else np.uint8)
    return data.reshape(h, w, 4)[::-1].copy()


def canvas_coordinates(size: tuple[int, int]) -> np.ndarray:
    """A float picture whose pixels hold their own canvas coordinate (x, y down) in R, G and 1 in B."""
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w]
    out = np.ones((h, w, 4), dtype=np.float32)
    out[..., 0] = (xs + 0.5) / w
    out[..., 1] = (ys + 0.5) / h
    return out


def in_polygons(points: np.ndarray, polygons: tuple[Points, ...]) -> np.ndarray:
    """Even-odd point-in-polygon per polygon, OR-ed over them: the rule the masks follow."""
    inside = np.zeros(len(points), dtype=bool)
    for poly in polygons:
        p = np.asarray(poly)
        odd = np.zeros(len(points), dtype=bool)
        for (ax, ay), (bx, by) in zip(p, np.roll(p, -1, axis=0), strict=True):
            crosses = (ay > points[:, 1]) != (by > points[:, 1])
            with np.errstate(divide="ignore", invalid="ignore"):
                x = ax + (points[:, 1] - ay) * (bx - ax) / (by - ay)
            odd ^= crosses & (points[:, 0] < x)
        inside |= odd
    return inside


def distance_to_edges(points: np.ndarray, polygons: tuple[Points, ...]) -> np.ndarray:
    """Each point's distance to the nearest polygon edge."""
    best = np.full(len(points), np.inf)
    for poly in polygons:
        p = np.asarray(poly)
        for a, b in zip(p, np.roll(p, -1, axis=0), strict=True):
            ab = b - a
            k = np.clip(((points - a) @ ab) / (ab @ ab), 0.0, 1.0)
            best = np.minimum(best, np.linalg.norm(points - (a + k[:, None] * ab), axis=1))
    return best


def assert_within_px(found: np.ndarray, expected: np.ndarray, tol: float, what: str) -> None:
    """``found`` lies within ``tol`` pixels of ``expected``."""
    err = float(np.linalg.norm(np.asarray(found) - np.asarray(expected)))
    assert err <= tol, f"{what}: found at {found}, expected {expected} ({err:.2f} px off, tolerance {tol})"


@pytest.fixture
def gl(ctx: moderngl.Context) -> Iterator[Callable[..., object]]:
    """Makes GL objects (textures, targets, mappers) for a test and releases them after it."""
    made: list[object] = []

    def keep(obj: object) -> object:
        made.append(obj)
        return obj

    yield keep
    for obj in reversed(made):
        if isinstance(obj, moderngl.Framebuffer):
            for att in obj.color_attachments:
                att.release()
        obj.release()  # type: ignore[attr-defined]


def draw(
    ctx: moderngl.Context,
    gl: Callable[..., object],
    output: OutputMapping,
    picture: np.ndarray,
    size: tuple[int, int] = SIZE,
    test_pattern: bool = False,
) -> np.ndarray:
    """``picture`` through a Mapper for ``output`` at ``size``: the read-back, top row first."""
    float_ = picture.dtype == np.float32
    source = gl(texture_of(ctx, picture))
    fb = gl(ctx.framebuffer(color_attachments=[ctx.texture(size, 4, dtype="f4" if float_ else "f1")]))
    mapper = gl(Mapper(ctx, output))
    assert isinstance(mapper, Mapper) and isinstance(fb, moderngl.Framebuffer)
    mapper.render(source, fb, size, test_pattern=test_pattern)  # type: ignore[arg-type]
    return read_back(fb, float_)


def noise(size: tuple[int, int], seed: int = 1) -> np.ndarray:
    w, h = size
    px = np.random.default_rng(seed).integers(0, 256, size=(h, w, 4), dtype=np.uint8)
    px[..., 3] = 255
    return px


def white(size: tuple[int, int] = (64, 64)) -> np.ndarray:
    return np.full((size[1], size[0], 4), 255, dtype=np.uint8)


# --- geometry, without GL ---------------------------------------------------------------------


def test_homography_carries_the_unit_square_onto_the_pin() -> None:
    """H maps the square's corners exactly onto the four pinned points, in order."""
    h = homography(PIN)
    assert apply_homography(h, np.array(UNIT_CORNERS)) == pytest.approx(np.array(PIN), abs=1e-12)


def test_identity_mesh_changes_nothing() -> None:
    """The identity grid's surface is the identity, and so is its tessellation."""
    mesh = Mesh.identity(5, 4)
    pts = np.random.default_rng(3).random((200, 2))
    assert mesh_points(mesh, pts) == pytest.approx(pts, abs=1e-12)
    vertices, _ = tessellate(mesh)
    assert np.abs(vertices[:, :2] - vertices[:, 2:]).max() < 1e-6


def test_mesh_passes_through_every_control_point() -> None:
    """Catmull-Rom interpolates: the surface at (i / (cols - 1), j / (rows - 1)) is control point (i, j)."""
    rng = np.random.default_rng(4)
    base = Mesh.identity(4, 3)
    mesh = replace(base, points=tuple((x + rng.uniform(-0.05, 0.05), y + rng.uniform(-0.05, 0.05))
                                      for x, y in base.points))
    s, t = np.linspace(0, 1, 4), np.linspace(0, 1, 3)
    assert mesh_surface(mesh, s, t).reshape(-1, 2) == pytest.approx(np.array(mesh.points), abs=1e-12)


def test_mesh_is_smooth_across_patch_boundaries() -> None:
    """Position and slope agree on both sides of a patch boundary (C1: no seam, no kink)."""
    mesh = Mesh.identity(5, 5)
    pts = list(mesh.points)
    pts[2 * 5 + 2] = (0.58, 0.44)  # the centre point moved
    mesh = replace(mesh, points=tuple(pts))

    def at_x(x: float) -> np.ndarray:
        point: np.ndarray = mesh_points(mesh, np.array([[x, 0.4]]))[0]
        return point

    for edge in (0.25, 0.5, 0.75):
        e = 1e-7
        left, at, right = (at_x(x) for x in (edge - e, edge, edge + e))
        assert left == pytest.approx(at, abs=1e-6) and right == pytest.approx(at, abs=1e-6)
        slope_l = (at_x(edge - e) - at_x(edge - 2e-3)) / (2e-3 - e)
        slope_r = (at_x(edge + 2e-3) - at_x(edge + e)) / (2e-3 - e)
        assert slope_l == pytest.approx(slope_r, abs=1e-2)


def test_facing_blend_ramps_sum_to_one() -> None:
    """Two outputs' ramps over their overlap add up to 1 in linear light, at every canvas point."""
    a = OutputMapping("a", region=(0.0, 0.0, 0.55, 1.0), blend=Blend(right=0.1))
    b = OutputMapping("b", region=(0.45, 0.0, 0.55, 1.0), blend=Blend(left=0.1))
    x = np.linspace(0.45, 0.55, 101)
    wa = blend_weight(a, np.stack([x / 0.55, np.full_like(x, 0.5)], axis=1))
    wb = blend_weight(b, np.stack([(x - 0.45) / 0.55, np.full_like(x, 0.5)], axis=1))
    assert wa + wb == pytest.approx(np.ones_like(x), abs=1e-12)
    assert wa[0] == pytest.approx(1.0) and wa[-1] == pytest.approx(0.0)


# --- the profile ------------------------------------------------------------------------------

GOOD = """
[[output]]
name = "left"
region = [0.0, 0.0, 0.55, 1.0]
corners = [[0,0],[1,0],[1,1],[0,1]]
mesh = { cols = 2, rows = 2, points = [[0,0],[1,0],[0,1],[1,1]] }
blend = { left = 0.0, right = 0.1, top = 0.0, bottom = 0.0, gamma = 2.2 }
masks = [ [[0.1,0.1],[0.2,0.1],[0.15,0.3]] ]

[[output]]
name = "right"
region = [0.45, 0.0, 0.55, 1.0]
blend = { left = 0.1 }
"""


def test_the_schema_example_loads() -> None:
    """The documented layout (inline tables, integers for floats) loads, defaults filled in."""
    venue = parse_venue(GOOD)
    left, right = venue.outputs
    assert left.mesh == Mesh(2, 2, ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)))
    assert left.blend == Blend(right=0.1, gamma=2.2)
    assert left.masks == (((0.1, 0.1), (0.2, 0.1), (0.15, 0.3)),)
    assert right.corners == UNIT_CORNERS and right.mesh is None and right.blend == Blend(left=0.1)


def output_toml(**keys: str) -> str:
    """One [[output]] with ``name = "a"`` and the given raw TOML values."""
    lines = ["[[output]]", 'name = "a"', *(f"{k} = {v}" for k, v in keys.items())]
    return "\n".join(lines) + "\n"


MESH_12 = "[" + ", ".join(["[0.5, 0.5]"] * 11) + "]"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD + output_toml(mesh=f"{{ cols = 4, rows = 3, points = {MESH_12} }}"),
         "venue.toml: output[2].mesh.points: expected 12 points for 4x3, got 11"),
        (output_toml(region="[0.5, 0.0, 0.6, 1.0]"), "venue.toml: output[0].region: "),
        (output_toml(region="[0.0, 0.0, 1.0]"), "venue.toml: output[0].region: expected [x, y, w, h]"),
        (output_toml(corners="[[0,0],[1,0],[0,1],[1,1]]"),
         "venue.toml: output[0].corners: the corners must make a convex quad"),
        (output_toml(corners="[[0,0],[1,0],[1,1]]"), "venue.toml: output[0].corners: expected 4 corners"),
        (output_toml(corners='[[0,0],[1,0],[1,"x"],[0,1]]'), "venue.toml: output[0].corners[2]: expected a number"),
        (output_toml(mesh="{ cols = 17, rows = 2, points = [] }"), "venue.toml: output[0].mesh.cols: got 17"),
        (output_toml(mesh="{ cols = 2, rows = 2, points = [[0,0],[1,0],[0,1],[1,1.5]] }"),
         "venue.toml: output[0].mesh.points[3]: got 1.5, expected 0 to 1"),
        (output_toml(mesh="{ cols = 2, points = [] }"), "venue.toml: output[0].mesh.rows: missing"),
        (output_toml(blend="{ gamma = 0.5 }"), "venue.toml: output[0].blend.gamma: got 0.5"),
        (output_toml(blend="{ left = 0.6, right = 0.6 }"), "venue.toml: output[0].blend.left: left + right = 1.2"),
        (output_toml(blend="{ lft = 0.1 }"), "venue.toml: output[0].blend.lft: unknown key"),
        (output_toml(masks="[[[0,0],[1,0]]]"), "venue.toml: output[0].masks[0]: expected 3 to 256 points, got 2"),
        (output_toml(corner="[[0,0],[1,0],[1,1],[0,1]]"), "venue.toml: output[0].corner: unknown key"),
        (output_toml() + output_toml(), "venue.toml: output[1].name: 'a' is already the name of output[0]"),
        ('[[output]]\nregion = [0, 0, 1, 1]\n', "venue.toml: output[0].name: expected a name"),
        ("title = 'x'\n", "venue.toml: venue.title: unknown key"),
        ("", "venue.toml: output: a venue needs at least one [[output]]"),
        ("[[output]\n", "venue.toml: not valid TOML"),
    ],
)
def test_a_bad_profile_names_the_key(text: str, message: str) -> None:
    """Each mistake is a ConfigError whose text starts with the file and the key at fault."""
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        parse_venue(text, "venue.toml")


def test_a_missing_profile_names_the_file(tmp_path: Path) -> None:
    """An unreadable file is a ConfigError naming it (the caller then runs unwarped)."""
    path = tmp_path / "venue.toml"
    with pytest.raises(ConfigError, match=re.escape(f"{path}: cannot read")):
        load_venue(path)


def edited_venue() -> Venue:
    """A venue with every feature set, and values that are awkward to write (long floats, quotes)."""
    mesh = Mesh.identity(4, 3)
    moved = replace(mesh, points=(*mesh.points[:5], (1 / 3 + 0.0123456789, 0.5 - 1e-7), *mesh.points[6:]))
    left = OutputMapping(
        name='left "stage" é', region=(0.0, 0.0, 0.55, 1.0), corners=PIN, mesh=moved,
        blend=Blend(right=0.1, gamma=2.4),
        masks=(((0.1, 0.1), (0.2, 0.1), (0.15, 0.3)), ((0.5, 0.5), (0.7, 0.5), (0.7, 0.7), (0.6, 0.6), (0.5, 0.7))),
    )
    right = OutputMapping(name="right", region=(0.45, 0.0, 0.55, 1.0), blend=Blend(left=0.1, top=0.05))
    return Venue((left, right))


def test_save_then_load_gives_the_same_venue(tmp_path: Path) -> None:
    """Edits survive a restart: what save_venue writes, load_venue reads back equal."""
    venue = edited_venue()
    path = tmp_path / "venue.toml"
    save_venue(venue, path)
    assert load_venue(path) == venue
    save_venue(load_venue(path), path)  # and again: stable
    assert load_venue(path) == venue


def test_saving_a_bad_venue_writes_nothing(tmp_path: Path) -> None:
    """A venue that would not load back is refused before the old file is touched."""
    path = tmp_path / "venue.toml"
    save_venue(edited_venue(), path)
    before = path.read_text(encoding="utf-8")
    bad = Venue((replace(edited_venue().outputs[0], corners=((0, 0), (1, 0), (0, 1), (1, 1))),))
    with pytest.raises(ConfigError, match=re.escape("output[0].corners")):
        save_venue(bad, path)
    assert path.read_text(encoding="utf-8") == before
    assert [p.name for p in tmp_path.iterdir()] == ["venue.toml"]
    with pytest.raises(ConfigError, match=re.escape("venue: output[0].corners")):
        check_venue(bad)


# --- the pass, on GL --------------------------------------------------------------------------


def test_corner_pin_puts_the_pictures_corners_on_the_pinned_pixels(
    ctx: moderngl.Context, gl: Callable[..., object]
) -> None:
    """Markers at a picture's four corners land, through the pin, within 1 px of the pinned points."""
    side, m = 256, 8
    picture = np.zeros((side, side, 4), dtype=np.uint8)
    picture[..., 3] = 255
    for y, x in ((0, 0), (0, side - m), (side - m, side - m), (side - m, 0)):
        picture[y: y + m, x: x + m, :3] = 255
    out = draw(ctx, gl, OutputMapping("pin", corners=PIN), picture)
    light = out[..., 0].astype(np.float64)
    w, h = SIZE
    ys, xs = np.mgrid[0:h, 0:w] + 0.5  # pixel centres, in pixels from the top-left
    centres = np.array([[m / 2, m / 2], [side - m / 2, m / 2], [side - m / 2, side - m / 2], [m / 2, side - m / 2]])
    expected = map_points(OutputMapping("pin", corners=PIN), centres / side) * SIZE
    names = ("top-left", "top-right", "bottom-right", "bottom-left")
    for corner, (ex, ey), pinned in zip(names, expected, PIN, strict=True):
        near = light * (np.hypot(xs - ex, ys - ey) < 40)
        assert near.sum() > 0, f"no marker near the {corner} pin"
        centroid = np.array([(near * xs).sum(), (near * ys).sum()]) / near.sum()
        assert_within_px(centroid, np.array([ex, ey]), 1.0, f"{corner} marker")
        lit = np.argwhere(near > 127)  # (row, col)
        nearest = lit[np.argmin(np.hypot(lit[:, 1] + 0.5 - pinned[0] * w, lit[:, 0] + 0.5 - pinned[1] * h))]
        assert_within_px(nearest[::-1] + 0.5, np.array(pinned) * SIZE, 1.0, f"{corner} corner")


@pytest.mark.parametrize("mesh", [None, Mesh.identity(2, 2), Mesh.identity(5, 4), Mesh.identity(16, 16)])
def test_an_identity_warp_changes_no_pixel(ctx: moderngl.Context, gl: Callable[..., object], mesh: Mesh | None) -> None:
    """No pin and an identity mesh: the output is the picture, within 1 level on every pixel."""
    picture = noise(SIZE)
    out = draw(ctx, gl, OutputMapping("id", mesh=mesh), picture)
    diff = np.abs(out[..., :3].astype(int) - picture[..., :3].astype(int))
    assert diff.max() <= 1, f"up to {diff.max()} levels off"


def test_a_moved_control_point_moves_the_picture_smoothly(ctx: moderngl.Context, gl: Callable[..., object]) -> None:
    """The content at a moved control point follows it, and the warped picture has no seam anywhere."""
    mesh = Mesh.identity(5, 4)
    pts = list(mesh.points)
    pts[1 * 5 + 2] = (0.56, 0.38)  # control point (2, 1), from (0.5, 1/3)
    out = draw(ctx, gl, OutputMapping("mesh", mesh=replace(mesh, points=tuple(pts)), corners=PIN),
               canvas_coordinates(SIZE))
    content = out[..., :2].astype(np.float64)
    # Covered by the picture, away from its border (where sampling clamps at the outermost texels' centres).
    margin = 2.0 / np.array(SIZE)
    covered = (out[..., 2] > 0.5) & np.all((content > margin) & (content < 1 - margin), axis=-1)
    # The pixel under the moved control point (through the pin) shows the content that control point holds.
    px, py = map_points(OutputMapping("p", corners=PIN), np.array([[0.56, 0.38]]))[0] * SIZE
    assert content[int(py), int(px)] == pytest.approx((0.5, 1 / 3), abs=2.0 / SIZE[0])
    # Every pixel shows the content that the exact (untessellated) surface puts there, within 1/4 px.
    output = OutputMapping("mesh", mesh=replace(mesh, points=tuple(pts)), corners=PIN)
    ys, xs = np.mgrid[0 : SIZE[1], 0 : SIZE[0]] + 0.5
    drawn_at = map_points(output, content[covered]) * SIZE
    off = np.hypot(drawn_at[:, 0] - xs[covered], drawn_at[:, 1] - ys[covered])
    assert off.max() < 0.25, f"a pixel is {off.max():.2f} px from where the surface puts its content"
    # No seam: the content shown changes gradually from pixel to pixel, across patch boundaries too. A gap or
    # step between patches would make one neighbour jump by many pixels' worth of content.
    for axis in (0, 1):
        both = covered[1:] & covered[:-1] if axis == 0 else covered[:, 1:] & covered[:, :-1]
        steps = np.linalg.norm(np.diff(content, axis=axis), axis=-1)[both]
        assert steps.max() < 3.0 * np.median(steps), f"a jump of {steps.max():.5f} against {np.median(steps):.5f}"


@pytest.mark.parametrize("gamma", [2.2, 1.8])
def test_two_blended_outputs_sum_to_a_flat_field(
    ctx: moderngl.Context, gl: Callable[..., object], gamma: float
) -> None:
    """White through A (0..0.55, right 0.1) and B (0.45..1, left 0.1): their light sums to 1 within 2 %."""
    a = OutputMapping("a", region=(0.0, 0.0, 0.55, 1.0), blend=Blend(right=0.1, gamma=gamma))
    b = OutputMapping("b", region=(0.45, 0.0, 0.55, 1.0), blend=Blend(left=0.1, gamma=gamma))
    size = (550, 20)  # a canvas 1000 px wide: both outputs' pixels fall on its pixel grid
    light_a = (draw(ctx, gl, a, white(), size)[..., 0] / 255.0) ** gamma
    light_b = (draw(ctx, gl, b, white(), size)[..., 0] / 255.0) ** gamma
    canvas = np.zeros((20, 1000))
    canvas[:, :550] += light_a
    canvas[:, 450:] += light_b
    overlap = canvas[:, 450:550]
    assert np.abs(overlap - 1.0).max() <= 0.02, f"overlap off a flat field by up to {np.abs(overlap - 1.0).max():.4f}"
    assert np.all(canvas[:, :450] == 1.0) and np.all(canvas[:, 550:] == 1.0)
    assert light_a[:, 450].min() > 0.99 and light_a[:, -1].max() < 0.01  # A really ramps down over the overlap


def test_masks_black_out_exactly_their_polygons(ctx: moderngl.Context, gl: Callable[..., object]) -> None:
    """Inside a triangle and a concave polygon: black; outside: untouched (pixels on an edge may go either way)."""
    triangle = ((0.05, 0.1), (0.3, 0.15), (0.12, 0.6))
    concave = ((0.45, 0.2), (0.9, 0.2), (0.9, 0.9), (0.7, 0.9), (0.7, 0.45), (0.62, 0.45), (0.62, 0.9), (0.45, 0.9))
    star = tuple((0.3 + 0.12 * np.cos(a) * r, 0.78 + 0.2 * np.sin(a) * r)
                 for a, r in zip(np.linspace(0, 2 * np.pi, 10, endpoint=False), [1, 0.4] * 5, strict=True))
    masks = (triangle, concave, star)
    out = draw(ctx, gl, OutputMapping("masked", masks=masks), white())
    w, h = SIZE
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    centres = np.stack([xs.ravel() / w, ys.ravel() / h], axis=1)
    inside = in_polygons(centres, masks).reshape(h, w)
    clear = (distance_to_edges(centres * SIZE, tuple(tuple((x * w, y * h) for x, y in m) for m in masks)) > 0.5)
    clear = clear.reshape(h, w)
    lum = out[..., 0]
    assert inside[clear].sum() > 0.1 * w * h  # the test masks a good part of the picture
    assert np.all(lum[inside & clear] == 0), "light inside a mask"
    assert np.all(lum[~inside & clear] == 255), "darkness outside the masks"
    assert (~clear).sum() < 0.02 * w * h


def test_the_test_pattern_marks_the_pinned_corners(ctx: moderngl.Context, gl: Callable[..., object]) -> None:
    """Instead of the picture: red, green, blue and yellow triangles in the pinned corners, grid lines between."""
    out = draw(ctx, gl, OutputMapping("left", corners=PIN), np.zeros((8, 8, 4), dtype=np.uint8), test_pattern=True)
    inward = np.array([(0.02, 0.02), (0.98, 0.02), (0.98, 0.98), (0.02, 0.98)])
    spots = map_points(OutputMapping("p", corners=PIN), inward) * SIZE
    colours = {"red": (255, 25, 25), "green": (25, 255, 25), "blue": (51, 102, 255), "yellow": (255, 255, 25)}
    for (x, y), (name, rgb) in zip(spots, colours.items(), strict=True):
        assert np.abs(out[int(y), int(x), :3].astype(int) - rgb).max() <= 2, f"no {name} marker at ({x:.0f}, {y:.0f})"
    assert (out[..., 0] > 100).mean() > 0.03  # lines, not a black screen


def test_the_test_pattern_shows_the_outputs_name(ctx: moderngl.Context, gl: Callable[..., object]) -> None:
    """Two outputs' patterns differ only in the label, under the crosshair."""
    black = np.zeros((8, 8, 4), dtype=np.uint8)
    a = draw(ctx, gl, OutputMapping("left"), black, test_pattern=True)
    b = draw(ctx, gl, OutputMapping("right"), black, test_pattern=True)
    rows, cols = np.nonzero(np.any(a != b, axis=-1))
    assert len(rows) > 50
    assert rows.min() >= 0.6 * SIZE[1] and rows.max() <= 0.75 * SIZE[1]
    assert cols.min() >= 0.3 * SIZE[0] and cols.max() <= 0.7 * SIZE[0]


def test_updates_draw_what_a_new_mapper_would(ctx: moderngl.Context, gl: Callable[..., object]) -> None:
    """A run of live edits (pin, mesh point, blend, masks added, moved and removed, name) each draw the same
    as a mapper made with them."""
    picture = noise(SIZE, seed=2)
    mesh = Mesh.identity(4, 3)
    first = OutputMapping("a", mesh=mesh)
    edited = OutputMapping("b", corners=PIN, mesh=replace(mesh, points=((0.05, 0.0), *mesh.points[1:])),
                           blend=Blend(left=0.2), masks=(((0.1, 0.1), (0.4, 0.1), (0.2, 0.5)),))
    moved = replace(edited, masks=(((0.3, 0.1), (0.6, 0.1), (0.4, 0.5)),), blend=Blend(left=0.2, gamma=1.8))
    source = gl(texture_of(ctx, picture))
    fb = gl(ctx.framebuffer(color_attachments=[ctx.texture(SIZE, 4)]))
    mapper = gl(Mapper(ctx, first))
    assert isinstance(mapper, Mapper) and isinstance(fb, moderngl.Framebuffer)
    mapper.render(source, fb, SIZE)  # type: ignore[arg-type]
    for output in (edited, moved, replace(moved, masks=()), first):
        mapper.update(output)
        for pattern in (False, True):
            mapper.render(source, fb, SIZE, test_pattern=pattern)  # type: ignore[arg-type]
            assert np.array_equal(read_back(fb), draw(ctx, gl, output, picture, test_pattern=pattern)), output


def test_a_resized_output_draws_what_a_new_mapper_would(ctx: moderngl.Context, gl: Callable[..., object]) -> None:
    """After drawing at one size, the next size gets its own blend and masks, not a stretched copy."""
    picture = noise(SIZE, seed=3)
    output = OutputMapping("a", corners=PIN, blend=Blend(right=0.3), masks=(((0.1, 0.1), (0.4, 0.1), (0.2, 0.5)),))
    small = (320, 200)
    source = gl(texture_of(ctx, picture))
    fb = gl(ctx.framebuffer(color_attachments=[ctx.texture(SIZE, 4)]))
    mapper = gl(Mapper(ctx, output))
    assert isinstance(mapper, Mapper) and isinstance(fb, moderngl.Framebuffer)
    mapper.render(source, fb, SIZE)  # type: ignore[arg-type]
    mapper.render(source, fb, small)  # type: ignore[arg-type]
    w, h = small
    drawn = np.frombuffer(fb.read(viewport=(0, 0, w, h), components=4), dtype=np.uint8).reshape(h, w, 4)[::-1]
    assert np.array_equal(drawn, draw(ctx, gl, output, picture, size=small))


def test_render_leaves_the_bound_framebuffer_and_viewport(ctx: moderngl.Context, gl: Callable[..., object]) -> None:
    """The caller's framebuffer and viewport are bound again after the pass."""
    other = gl(ctx.framebuffer(color_attachments=[ctx.texture((100, 50), 4)]))
    fb = gl(ctx.framebuffer(color_attachments=[ctx.texture(SIZE, 4)]))
    source = gl(texture_of(ctx, white()))
    mapper = gl(Mapper(ctx, OutputMapping("a")))
    assert isinstance(mapper, Mapper) and isinstance(other, moderngl.Framebuffer)
    other.use()
    ctx.viewport = (5, 6, 40, 30)
    mapper.render(source, fb, SIZE)  # type: ignore[arg-type]
    assert ctx.fbo == other and ctx.viewport == (5, 6, 40, 30)
