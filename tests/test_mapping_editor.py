"""The mapping editor: Action.MAPPING moves the mapped output's corners live and saves the venue; the control
page drags them on the preview, with undo and the alignment grid."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import moderngl
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from engine.backstage import Backstage
from engine.commands import Action, Command
from engine.contract import ShowSnapshot
from engine.net import vj_protocol as vp
from engine.net.vj_state import show_state
from engine.render.show_loop import ShowLoop
from engine.render.venue import load_venue
from engine.store import Journal
from tests.fakes import RED, assert_color, drain, pixels, solid
from tests.test_output_hub import FakeSink
from tests.test_show_mapping import LEFT_HALF, SIZE, mapped_show
from tests.test_vj_server import TOKEN, started

RIGHT_HALF = (0.5, 0.0, 1.0, 0.0, 1.0, 1.0, 0.5, 1.0)
CROSSED = (0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0)  # bottom corners swapped: the quad crosses itself
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
SHOT = Path(__file__).resolve().parent.parent / "docs" / "mapping-editor.png"


@pytest.fixture
def venue_show(ctx: moderngl.Context, tmp_path: Path) -> Iterator[tuple[ShowLoop, Path, moderngl.Framebuffer]]:
    venue = tmp_path / "venue.toml"
    venue.write_text(LEFT_HALF)
    show = mapped_show(ctx, venue, FakeSink())
    fb = ctx.framebuffer(color_attachments=[ctx.texture(SIZE, 4)])
    yield show, venue, fb
    show.release()
    fb.release()


def corners_of(path: Path) -> tuple[float, ...]:
    return tuple(v for p in load_venue(path).outputs[0].corners for v in p)


def test_a_mapping_command_moves_the_corners_publishes_them_and_saves_the_venue(
        venue_show: tuple[ShowLoop, Path, moderngl.Framebuffer]) -> None:
    """The picture follows the new corners at once, the snapshot and the page carry them, the file keeps them."""
    show, venue, fb = venue_show
    show.inbox.images.put(solid(RED, id="red"))
    for i in range(6):
        show.frame(i / 60, fb)
    assert show.board.read().mapping_corners == (0.0, 0.0, 0.5, 0.0, 0.5, 1.0, 0.0, 1.0)
    show.apply(Command(Action.MAPPING, RIGHT_HALF, source="vj", name="main", key="corners"), 0.2)
    show.frame(7 / 60, fb)
    px = pixels(fb)
    assert_color(px[:, 84:156], RED)  # the picture is now pinned onto the right half
    assert px[:, :76, :3].max() <= 2
    snap = show.board.read()
    assert snap.mapping_corners == RIGHT_HALF and snap.mapping_name == "main" and not snap.mapping_grid
    assert show_state(snap)["mapping_corners"] == list(RIGHT_HALF)
    assert show.screen_map.wait_saved(5.0), "the venue writer did not finish"
    assert corners_of(venue) == RIGHT_HALF
    assert not show.errors


def test_a_self_crossing_quad_is_one_error_and_changes_nothing(
        venue_show: tuple[ShowLoop, Path, moderngl.Framebuffer]) -> None:
    """A bad quad from the page: reported once; the picture, the snapshot and the file stay as they were."""
    show, venue, fb = venue_show
    before_text = venue.read_text()
    show.inbox.images.put(solid(RED, id="red"))
    for i in range(6):
        show.frame(i / 60, fb)
    show.apply(Command(Action.MAPPING, CROSSED, source="vj", name="main", key="corners"), 0.2)
    show.frame(7 / 60, fb)
    assert len(show.errors) == 1 and "mapping edit not applied" in show.errors[0] and "convex" in show.errors[0]
    assert_color(pixels(fb)[:, 4:76], RED)  # still the left half
    assert show.board.read().mapping_corners == (0.0, 0.0, 0.5, 0.0, 0.5, 1.0, 0.0, 1.0)
    assert show.screen_map.wait_saved(5.0)
    assert venue.read_text() == before_text


def test_the_page_may_send_eight_numbers_for_the_corners_and_only_for_them() -> None:
    """The protocol takes a mapping's 8 numbers; other actions keep the limit of 4, a mapping needs all 8."""
    req = vp.parse(json.dumps({"type": "command", "action": "mapping", "name": "main", "key": "corners",
                               "value": list(RIGHT_HALF)}))
    assert req == vp.CommandReq(Command(Action.MAPPING, RIGHT_HALF, source="vj", name="main", key="corners"))
    with pytest.raises(vp.VjProtocolError, match="1 to 4 numbers"):
        vp.parse(json.dumps({"type": "command", "action": "param", "name": "s", "key": "k", "value": [0.0] * 8}))
    with pytest.raises(vp.VjProtocolError, match=re.escape("mapping corners: expected 8 numbers")):
        vp.parse(json.dumps({"type": "command", "action": "mapping", "key": "corners", "value": [0.0] * 6}))


# --- the page ---------------------------------------------------------------------------------------------

@pytest.fixture
def served(journal: Journal) -> Iterator[Backstage]:
    b = started(journal)
    yield b
    b.stop()


START = (0.1, 0.1, 0.9, 0.15, 0.85, 0.9, 0.15, 0.85)


def picture() -> np.ndarray:
    """A stand-in preview: a colour gradient under a white grid, 320x180."""
    h, w = 180, 320
    y, x = np.mgrid[0:h, 0:w]
    px = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 140)], axis=-1).astype(np.uint8)
    px[(x % 32 == 0) | (y % 30 == 0)] = 255
    return px


def mapping_commands(served: Backstage, page: Page, wait_ms: int = 5000) -> list[Command]:
    """The mapping commands the page sent, once a quiet moment shows it sent them all."""
    got: list[Command] = []
    quiet = 0
    for _ in range(wait_ms // 100):
        new = [c for c in drain(served.inbox.commands) if c.action is Action.MAPPING]
        got += new
        quiet = quiet + 1 if got and not new else 0
        if quiet >= 3:
            break
        page.wait_for_timeout(100)
    return got


@contextmanager
def opened(browser: Browser, port: int) -> Iterator[tuple[Page, list[str]]]:
    """The control page, logged in with the token and connected; the page's script errors collected."""
    context = browser.new_context(**DESKTOP)
    problems: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"http://127.0.0.1:{port}/vj?token={TOKEN}")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=10000)
        yield page, problems
    finally:
        context.close()


def test_the_page_drags_a_corner_undoes_it_and_toggles_the_grid(browser: Browser, served: Backstage) -> None:
    """Map shows the handles; a drag of the top-left one sends mapping commands ending at the moved corner;
    the engine's echo does not move a handle in mid-drag; Undo sends the corners back; Grid sends grid."""
    with opened(browser, served.port) as (page, problems):
        expect(page.locator("#map")).to_be_disabled()
        served.board.publish(ShowSnapshot(size=(320, 180), mapping_name="main", mapping_corners=START))
        served.board.preview_viewers = max(1, served.board.preview_viewers)
        served.board.publish_preview(picture())
        expect(page.locator("#map")).to_be_enabled(timeout=5000)
        page.locator("#map").click()
        expect(page.locator("#map")).to_have_attribute("aria-pressed", "true")
        handle = page.locator('.map-handle[data-corner="0"]')
        expect(handle).to_be_visible()
        box = page.locator("#map-overlay").bounding_box()
        hb = handle.bounding_box()
        assert box is not None and hb is not None
        cx, cy = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
        assert abs(cx - (box["x"] + START[0] * box["width"])) < 2
        assert abs(cy - (box["y"] + START[1] * box["height"])) < 2
        drain(served.inbox.commands)

        dx, dy = 0.2 * box["width"], 0.1 * box["height"]
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx + dx / 2, cy + dy / 2, steps=5)
        # The engine echoes other corners mid-drag: the handle stays under the pointer.
        served.board.publish(ShowSnapshot(size=(320, 180), mapping_name="main", mapping_corners=RIGHT_HALF))
        page.wait_for_timeout(600)
        page.mouse.move(cx + dx, cy + dy, steps=10)
        moved = handle.bounding_box()
        assert moved is not None and abs(moved["x"] + moved["width"] / 2 - (cx + dx)) < 2
        page.mouse.up()
        sent = mapping_commands(served, page)
        assert sent, "the drag sent no mapping command"
        assert all(c.name == "main" and c.key == "corners" for c in sent)
        last = sent[-1].value
        assert isinstance(last, tuple) and len(last) == 8
        assert abs(last[0] - (START[0] + 0.2)) < 0.02 and abs(last[1] - (START[1] + 0.1)) < 0.02
        assert last[2:] == pytest.approx(START[2:])
        assert len(sent) <= 12  # throttled: about ten a second, not one per pointer move

        # The engine takes the edit and echoes it; a picture of the editor for the docs.
        served.board.publish(ShowSnapshot(size=(320, 180), mapping_name="main", mapping_corners=last))
        served.board.publish_preview(picture())
        expect(page.locator("#preview-wrap")).to_have_class(re.compile(r"has-frame.*mapping|mapping.*has-frame"),
                                                             timeout=5000)
        page.wait_for_timeout(300)
        page.locator(".area-program").screenshot(path=str(SHOT))

        drain(served.inbox.commands)
        expect(page.locator("#map-undo")).to_be_enabled()
        page.locator("#map-undo").click()
        undone = mapping_commands(served, page)
        assert [c.value for c in undone] == [pytest.approx(START)]
        expect(page.locator("#map-undo")).to_be_disabled()

        page.locator("#grid").click()
        got: list[Command] = []
        for _ in range(50):
            got = [c for c in drain(served.inbox.commands) if c.action is Action.GRID]
            if got:
                break
            page.wait_for_timeout(100)
        assert got == [Command(Action.GRID, None, source="vj")]
        served.board.publish(ShowSnapshot(size=(320, 180), mapping_name="main", mapping_corners=START,
                                          mapping_grid=True))
        expect(page.locator("#grid")).to_have_attribute("aria-pressed", "true", timeout=5000)
        assert problems == []


def test_without_a_venue_profile_map_is_off(browser: Browser, served: Backstage) -> None:
    """No corners in the snapshot (no venue profile): Map is disabled and no handle shows."""
    with opened(browser, served.port) as (page, _problems):
        served.board.publish(ShowSnapshot(size=(320, 180), frame=1))
        time.sleep(0.3)
        expect(page.locator("#map")).to_be_disabled()
        expect(page.locator("#map-overlay")).to_be_hidden()
