"""Mesh and mask editing: the show's picture follows a moved mesh point and goes black under a mask; on the control
page, against the real backstage and a real show, Mesh and Masks edit the venue file, and Undo puts it back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import moderngl
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from engine.backstage import Backstage
from engine.commands import Action, Command
from engine.contract import Inbox, MappingOutput, ShowImage, ShowSnapshot, StateBoard
from engine.net.vj_state import show_state
from engine.output.hub import OutputHub
from engine.render.mapping_edits import flat_mesh
from engine.render.show_loop import ShowLoop
from engine.render.venue import Mesh, OutputMapping, apply_homography, homography, load_venue
from engine.store import Journal
from tests.fakes import BLUE, RED, assert_color, make_config, pixels
from tests.test_mapping_editor import mapping_commands, opened
from tests.test_output_hub import FakeRecorder, FakeSink
from tests.test_show_mapping import SIZE
from tests.test_vj_server import started

FULL = '''
[[output]]
name = "main"
'''
QUAD = (4.0, 0.4, 0.4, 0.6, 0.4, 0.6, 0.6, 0.4, 0.6)  # a mask over the middle of the screen
# The screen is 160 x 96. The picture's red/blue edge runs down x = 80; moving the centre point of a 3x3 mesh
# from x 0.5 to 0.7 carries the edge to x = 112 across the middle rows, so this strip turns from blue to red.
STRIP = (slice(44, 52), slice(88, 104))
UNDER_THE_MASK = (slice(41, 55), slice(66, 94))  # inside 0.4..0.6 of the screen, a few pixels in


def halves(id: str = "halves") -> ShowImage:
    """The screen's size and shape: left half red, right half blue."""
    w, h = SIZE
    px = np.zeros((h, w, 4), dtype=np.uint8)
    px[..., 3] = 255
    px[:, : w // 2, :3] = RED
    px[:, w // 2 :, :3] = BLUE
    return ShowImage(id, px)


def show_on(ctx: moderngl.Context, venue: Path, inbox: Inbox, board: StateBoard) -> ShowLoop:
    cfg = make_config({"show.transition": 0.0, "show.fit": "cover", "show.venue": str(venue)})
    hub = OutputHub(ctx, cfg, SIZE, 60.0, sinks=[FakeSink()], recorder=FakeRecorder())
    return ShowLoop(ctx, cfg, SIZE, inbox, "http://x", board=board, outputs=hub, sources={})


class Stage:
    """A show on a venue file with a full-screen output "main", drawing into a framebuffer the test reads."""

    def __init__(self, ctx: moderngl.Context, venue: Path, inbox: Inbox, board: StateBoard) -> None:
        venue.write_text(FULL)
        self.venue = venue
        self.show = show_on(ctx, venue, inbox, board)
        self.fb = ctx.framebuffer(color_attachments=[ctx.texture(SIZE, 4)])
        self.t0 = time.monotonic()

    def frame(self) -> np.ndarray:
        self.show.frame(time.monotonic() - self.t0, self.fb)
        return pixels(self.fb)

    def main(self) -> OutputMapping:
        """The first output as the show has it now."""
        assert self.show.screen_map.venue is not None
        return self.show.screen_map.venue.outputs[0]

    def saved(self) -> OutputMapping:
        """The first output as the venue file has it, once the writer is done."""
        assert self.show.screen_map.wait_saved(5.0), "the venue writer did not finish"
        return load_venue(self.venue).outputs[0]

    def run_until(self, page: Page, done: Callable[[], bool], what: str, timeout: float = 8.0) -> None:
        """Draw frames (the show takes the page's commands and publishes its state) while the page works."""
        end = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < end, f"timed out: {what}"
            self.frame()
            page.wait_for_timeout(30)

    def release(self) -> None:
        self.show.release()
        self.fb.release()


@pytest.fixture
def stage(ctx: moderngl.Context, tmp_path: Path) -> Iterator[Stage]:
    s = Stage(ctx, tmp_path / "venue.toml", Inbox(), StateBoard())
    s.show.inbox.images.put(halves())
    for _ in range(6):
        s.frame()
    yield s
    s.release()


def mapping(key: str, value: tuple[float, ...]) -> Command:
    return Command(Action.MAPPING, value, source="vj", name="main", key=key)


def test_moving_a_mesh_point_moves_the_picture(stage: Stage) -> None:
    """A 3x3 identity mesh changes nothing; its centre moved right drags the picture's middle with it."""
    stage.show.apply(mapping("mesh", (3.0, 3.0)), 0.2)
    flat = stage.frame()
    assert_color(flat[STRIP], BLUE)
    assert_color(flat[:, 4:72], RED)
    stage.show.apply(mapping("point", (4.0, 0.7, 0.5)), 0.3)
    moved = stage.frame()
    assert_color(moved[STRIP], RED)
    assert_color(moved[:4, 84:], BLUE)  # the top edge's points stayed: so did the edge up there
    out = stage.show.board.read().mapping_outputs[0]
    assert out.name == "main" and out.mesh[:2] == (3.0, 3.0) and out.mesh[2 + 8: 2 + 10] == (0.7, 0.5)
    assert show_state(stage.show.board.read())["mapping_outputs"][0]["mesh"][10:12] == [0.7, 0.5]
    assert not stage.show.errors


def test_a_mask_blacks_out_its_area(stage: Stage) -> None:
    """A quad in the middle of the screen: black inside, the picture around it."""
    stage.show.apply(mapping("masks", QUAD), 0.2)
    px = stage.frame()
    assert px[UNDER_THE_MASK].max() <= 2
    assert_color(px[41:55, 20:60], RED)
    assert_color(px[41:55, 100:140], BLUE)
    assert stage.show.board.read().mapping_outputs[0].masks == QUAD
    assert stage.saved().masks == (((0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6)),)


# --- the page, on the real backstage and a show drawing its commands -----------------------------------------

@pytest.fixture
def served(journal: Journal) -> Iterator[Backstage]:
    b = started(journal)
    yield b
    b.stop()


def test_the_page_edits_the_mesh_and_a_mask_and_undoes_them(browser: Browser, served: Backstage,
                                                           ctx: moderngl.Context, tmp_path: Path) -> None:
    """Mesh, 3x3, the centre point dragged right: the file's point and the screen follow. Masks, Add mask: a
    quad in the file, black on the screen. Undo twice: no mask, then the flat mesh again, in the file."""
    s = Stage(ctx, tmp_path / "venue.toml", served.inbox, served.board)
    served.inbox.images.put(halves())
    with opened(browser, served.port) as (page, problems):
        s.run_until(page, page.locator("#map").is_enabled, "Map enabled by the show's venue")
        page.locator("#map").click()
        expect(page.locator("#map-output")).to_be_hidden()  # one output: nothing to choose
        page.locator("#map-mode-mesh").click()
        expect(page.locator('.map-handle[data-corner="0"]')).to_be_hidden()
        page.locator("#map-mesh").select_option("3x3")
        s.run_until(page, lambda: s.main().mesh is not None, "the 3x3 mesh reached the show")
        assert s.saved().mesh == Mesh.identity(3, 3)
        before = s.frame()
        assert_color(before[STRIP], BLUE)

        centre = page.locator('.map-point[data-point="4"]')
        box = page.locator("#map-overlay").bounding_box()
        hb = centre.bounding_box()
        assert box is not None and hb is not None
        cx, cy = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
        assert abs(cx - (box["x"] + 0.5 * box["width"])) < 2 and abs(cy - (box["y"] + 0.5 * box["height"])) < 2
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx + 0.2 * box["width"], cy, steps=8)
        page.mouse.up()
        s.run_until(page, lambda: s.main().mesh is not None and abs(s.main().mesh.points[4][0] - 0.7) < 0.02,
                    "the moved point reached the show")
        page.wait_for_timeout(200)  # the drag's last command (the whole mesh) may still be on its way
        s.frame()
        mesh = s.saved().mesh
        assert mesh is not None and mesh.points[4] == pytest.approx((0.7, 0.5), abs=0.02)
        assert_color(s.frame()[STRIP], RED)  # the screen changed where the point went

        page.locator("#map-mode-masks").click()
        page.locator("#map-mask-add").click()
        s.run_until(page, lambda: len(s.main().masks) == 1, "the new mask reached the show")
        masks = s.saved().masks
        assert len(masks) == 1 and len(masks[0]) == 4
        xs, ys = [p[0] for p in masks[0]], [p[1] for p in masks[0]]
        assert min(xs) <= 0.4 and max(xs) >= 0.6 and min(ys) <= 0.4 and max(ys) >= 0.6
        assert s.frame()[UNDER_THE_MASK].max() <= 2

        page.locator("#map-undo").click()
        s.run_until(page, lambda: s.main().masks == (), "Undo took the mask away")
        assert s.saved().masks == ()
        page.locator("#map-undo").click()
        s.run_until(page, lambda: s.main().mesh == Mesh.identity(3, 3), "Undo put the centre point back")
        assert s.saved().mesh == Mesh.identity(3, 3)
        expect(page.locator("#map-mode-mesh")).to_have_attribute("aria-pressed", "true")
        assert_color(s.frame()[STRIP], BLUE)
        assert not s.show.errors and problems == []
        s.release()


SIDE = ((0.1, 0.1), (0.9, 0.2), (0.8, 0.9), (0.2, 0.8))  # a keystoned quad: its homography is no mere scale
SIDE_MESH = Mesh(3, 3, tuple((0.6, 0.4) if k == 4 else p for k, p in enumerate(Mesh.identity(3, 3).points)))


def test_the_page_edits_the_output_picked_with_its_mesh_drawn_through_its_corners(
        browser: Browser, served: Backstage) -> None:
    """Two outputs: the selector shows; "side" picked, its mesh points sit at H(p) on the preview, and a drag
    sends key "point" for "side" and ends with its whole mesh, the point put where the pointer went (H inverted)."""
    with opened(browser, served.port) as (page, problems):
        unit = (0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0)
        side = tuple(v for p in SIDE for v in p)
        served.board.publish(ShowSnapshot(size=(320, 180), mapping_name="main", mapping_corners=unit, mapping_outputs=(
            MappingOutput("main", unit), MappingOutput("side", side, flat_mesh(SIDE_MESH)))))
        expect(page.locator("#map")).to_be_enabled(timeout=5000)
        page.locator("#map").click()
        expect(page.locator("#map-output")).to_be_visible()
        page.locator("#map-output").select_option("side")
        page.locator("#map-mode-mesh").click()
        expect(page.locator("#map-mesh")).to_have_value("3x3")
        h = homography(SIDE)
        shown = apply_homography(h, np.array([0.6, 0.4]))
        box = page.locator("#map-overlay").bounding_box()
        hb = page.locator('.map-point[data-point="4"]').bounding_box()
        assert box is not None and hb is not None
        cx, cy = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
        assert abs(cx - (box["x"] + shown[0] * box["width"])) < 2
        assert abs(cy - (box["y"] + shown[1] * box["height"])) < 2

        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx + 0.05 * box["width"], cy + 0.05 * box["height"], steps=6)
        page.mouse.up()
        sent = mapping_commands(served, page)
        assert sent and all(c.name == "side" for c in sent)
        assert {c.key for c in sent[:-1]} <= {"point"} and sent[-1].key == "mesh"
        expected = apply_homography(np.linalg.inv(h), shown + 0.05)
        final = sent[-1].value
        assert isinstance(final, tuple) and final[:2] == (3.0, 3.0)
        assert final[2 + 8: 2 + 10] == pytest.approx(tuple(expected), abs=0.01)
        assert final[2:10] == pytest.approx(flat_mesh(SIDE_MESH)[2:10])  # the other points stayed
        assert problems == []


def test_the_page_drags_a_vertex_adds_one_nudges_one_and_deletes_the_mask(browser: Browser,
                                                                          served: Backstage) -> None:
    """Masks mode: a vertex dragged, a vertex added by a double-click near an edge, one nudged with an arrow
    key, the mask deleted; each sends the whole list of masks, and Undo sends back the one before."""
    with opened(browser, served.port) as (page, problems):
        unit = (0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0)
        served.board.publish(ShowSnapshot(size=(320, 180), mapping_name="main", mapping_corners=unit,
                                          mapping_outputs=(MappingOutput("main", unit, (), QUAD),)))
        expect(page.locator("#map")).to_be_enabled(timeout=5000)
        page.locator("#map").click()
        page.locator("#map-mode-masks").click()
        expect(page.locator("#map-mask-delete")).to_be_disabled()
        box = page.locator("#map-overlay").bounding_box()
        vb = page.locator('.map-vertex[data-mask="0"][data-vertex="0"]').bounding_box()
        assert box is not None and vb is not None
        x, y = vb["x"] + vb["width"] / 2, vb["y"] + vb["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x - 0.1 * box["width"], y - 0.1 * box["height"], steps=5)
        page.mouse.up()
        sent = mapping_commands(served, page)
        assert sent and all(c.key == "masks" for c in sent)
        assert sent[-1].value == pytest.approx((4.0, 0.3, 0.3, *QUAD[3:]), abs=0.01)

        # Inside the mask, beside its right edge (0.6, 0.4)-(0.6, 0.6): the new vertex goes after vertex 1.
        page.mouse.dblclick(box["x"] + 0.59 * box["width"], box["y"] + 0.5 * box["height"])
        grown = mapping_commands(served, page)[-1].value
        assert isinstance(grown, tuple) and grown[0] == 5.0
        assert grown[5:7] == pytest.approx((0.59, 0.5), abs=0.01)
        expect(page.locator("#map-mask-delete")).to_be_enabled()

        page.locator('.map-vertex[data-mask="0"][data-vertex="2"]').focus()
        page.keyboard.press("Shift+ArrowRight")
        nudged = mapping_commands(served, page)[-1].value
        assert isinstance(nudged, tuple) and nudged[5:7] == pytest.approx((0.6, 0.5), abs=0.011)

        page.locator("#map-mask-delete").click()
        assert [c.value for c in mapping_commands(served, page)] == [()]
        page.locator("#map-undo").click()
        assert [c.value for c in mapping_commands(served, page)] == [pytest.approx(nudged)]
        assert problems == []
