"""One window per projector: the venue's outputs after the first, each in a window on its own display.

The placement arithmetic is tested plainly; the windows under Xvfb, whose one screen
``tests/two_displays.py`` splits into two displays side by side, as RandR reports two projectors. What the
projectors show is read from the X server's root window, the way the pixels leave the machine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import moderngl
import numpy as np
import pytest
from PIL import ImageGrab

from engine.errors import ConfigError
from engine.render.screens import MAX_CANVAS, canvas_size, plan_screens
from engine.render.venue import UNIT_CORNERS, Blend, OutputMapping, Quad, Venue, dumps_venue, parse_venue
from tests.engine_process import EngineProcess, free_port
from tests.test_mapping import draw, gl  # noqa: F401  (gl: the GL objects fixture)
from tests.test_vj_server import TOKEN, page
from tests.xwindow import XServer, close_window, find_window, press, start_xvfb, xdotool

DISPLAY = (320, 180)
TWO = f"{DISPLAY[0]}x{DISPLAY[1]},{DISPLAY[0]}x{DISPLAY[1]}"
KEYSTONE = ((0.05, 0.0), (0.95, 0.08), (1.0, 1.0), (0.0, 0.92))
VENUE = """
[[output]]
name = "left"
region = [0.0, 0.0, 0.55, 1.0]
blend = { right = 0.1, gamma = 2.2 }

[[output]]
name = "right"
region = [0.45, 0.0, 0.55, 1.0]
blend = { left = 0.1, gamma = 2.2 }
"""
FLAT = ('/*{"DESCRIPTION": "a flat grey field", "CATEGORIES": ["test"], '
        '"INPUTS": [{"NAME": "inputImage", "TYPE": "image"}]}*/\n'
        "void main() { gl_FragColor = vec4(0.5, 0.5, 0.5, 1.0); }\n")
QUIET = ["--set", 'overlay.qr="off"', "--set", 'overlay.headline=""', "--fps", "20"]


def venue(*outputs: OutputMapping) -> Venue:
    return Venue(outputs)


# --- placement, without a display ----------------------------------------------------------------------------
def test_the_canvas_is_the_window_over_its_region() -> None:
    assert canvas_size((1920, 1080), (0.0, 0.0, 0.55, 1.0)) == (3491, 1080)
    assert canvas_size((1280, 720), (0.0, 0.0, 1.0, 1.0)) == (1280, 720)
    assert canvas_size((1920, 1080), (0.0, 0.0, 0.5, 0.5)) == (3840, 2160)
    w, h = canvas_size((8000, 1000), (0.0, 0.0, 0.25, 1.0))  # 32000 wide: capped, its shape kept
    assert w == MAX_CANVAS and h == round(1000 * MAX_CANVAS / 32000)


def test_each_output_takes_the_display_after_the_last() -> None:
    v = venue(OutputMapping("a", (0, 0, 0.4, 1)), OutputMapping("b", (0.3, 0, 0.4, 1)),
              OutputMapping("c", (0.6, 0, 0.4, 1)))
    displays = [(0, 0, 1920, 1080), (1920, 0, 1920, 1080), (3840, 0, 1920, 1080)]
    places, warnings = plan_screens(v, (4800, 1080), displays, 0, (10, 20), (1920, 1080))
    assert [(p.index, p.name, p.screen) for p in places] == [(1, "b", 1), (2, "c", 2)]
    assert places[0].size == (1920, 1080) and places[0].location == (1930, 20)
    assert places[1].location == (3850, 20) and warnings == []


def test_an_output_names_its_display_and_one_that_is_missing_stays_windowed() -> None:
    v = venue(OutputMapping("a"), OutputMapping("b", screen=0), OutputMapping("c", screen=5),
              OutputMapping("d", screen=2))
    places, warnings = plan_screens(v, (640, 360), [(0, 0, 640, 360)] * 3, 1, (0, 0), (640, 360))
    assert [p.screen for p in places] == [0, None, 2]
    assert warnings == ["venue output 'c': display 5 does not exist (3 display(s)): its window stays windowed"]
    places, warnings = plan_screens(venue(OutputMapping("a"), OutputMapping("b", screen=0)), (640, 360),
                                    [(0, 0, 640, 360)] * 2, 0, (0, 0), (640, 360))
    assert places[0].screen is None and "is the main window's or another output's" in warnings[0]


def test_the_screen_key_is_read_written_and_checked() -> None:
    text = '[[output]]\nname = "a"\n\n[[output]]\nname = "b"\nscreen = 2\n'
    v = parse_venue(text)
    assert v.outputs[1].screen == 2 and v.outputs[0].screen is None
    assert parse_venue(dumps_venue(v)) == v
    with pytest.raises(ConfigError, match=r"output\[1\]\.screen: got -1, expected an integer from 0 to 64"):
        parse_venue('[[output]]\nname = "a"\n\n[[output]]\nname = "b"\nscreen = -1\n')


# --- real windows --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def xserver() -> Iterator[XServer]:
    server = start_xvfb(f"{2 * DISPLAY[0]}x{DISPLAY[1]}x24")
    yield server
    server.stop()


@pytest.fixture
def show_dir(tmp_path: Path) -> Path:
    (tmp_path / "venue.toml").write_text(VENUE)
    (tmp_path / "fx").mkdir()
    (tmp_path / "fx" / "flat.fs").write_text(FLAT)
    return tmp_path


def two_projectors(xserver: XServer, cwd: Path, *args: str) -> EngineProcess:
    env = {**xserver.env(), "STAGECRAFT_DISPLAYS": TWO}
    return EngineProcess(["--venue", "venue.toml", *QUIET, *args], cwd, env, module="tests.two_displays")


def grab(xserver: XServer) -> np.ndarray:
    """What the two displays show, side by side, as float RGB."""
    return np.asarray(ImageGrab.grab(xdisplay=xserver.display))[..., :3].astype(np.float64)


def settled(xserver: XServer, done: Callable[[np.ndarray], bool], timeout: float = 20.0) -> np.ndarray:
    deadline = time.monotonic() + timeout
    while True:
        img = grab(xserver)
        if done(img) or time.monotonic() > deadline:
            return img
        time.sleep(0.2)


def linear(v: np.ndarray) -> np.ndarray:
    return (v / 255.0) ** 2.2


def windows(xserver: XServer) -> dict[str, tuple[int, int, int, int]]:
    out = {}
    for wid in xdotool(xserver, "search", "--onlyvisible", "--name", "Stagecraft").split():
        name = xdotool(xserver, "getwindowname", wid)
        geometry = xdotool(xserver, "getwindowgeometry", "--shell", wid)
        g = dict(line.split("=") for line in geometry.splitlines())
        out[name] = (int(g["X"]), int(g["Y"]), int(g["WIDTH"]), int(g["HEIGHT"]))
    return out


async def edit_corners(port: int, output: str, corners: Quad) -> None:
    """The control page's mapping command for one output, over the real VJ socket."""
    async with page(SimpleNamespace(port=port), port) as vj:  # type: ignore[arg-type]
        ack = await vj.ask(type="command", action="mapping", name=output, key="corners",
                           value=[v for c in corners for v in c])
        assert ack["type"] == "ack", ack


def test_two_projectors_blend_into_one_flat_picture(xserver: XServer, show_dir: Path) -> None:
    """Fullscreen with a two-output venue: a window on each display, each showing its part of the canvas;
    where the two projectors overlap, their light (gamma 2.2 applied) sums to the flat field within 2%."""
    p = two_projectors(xserver, show_dir, "--fullscreen", "--effect", "flat", "--set", 'shaders.dir="fx"')
    try:
        p.wait_for("screens: right on display 1")
        p.wait_for(f"window: {DISPLAY[0]}x{DISPLAY[1]} fullscreen")
        w = DISPLAY[0]
        img = settled(xserver, lambda i: abs(i[90, 10, 0] - 128) <= 2 and abs(i[90, 2 * w - 10, 0] - 128) <= 2)
        assert windows(xserver) == {"Stagecraft": (0, 0, w, DISPLAY[1]),
                                    "Stagecraft · right": (w, 0, w, DISPLAY[1])}
        grey = linear(np.array(128.0))
        overlap = round(0.1 / 0.55 * w)  # the blend's width on each projector, in its pixels
        left, right = linear(img[:, :w, 0]), linear(img[:, w:, 0])
        assert np.abs(img[:, : w - overlap - 1] - 128).max() <= 2, "the left projector's own part is not flat"
        assert np.abs(img[:, w + overlap + 1:] - 128).max() <= 2, "the right projector's own part is not flat"
        summed = left[:, w - overlap:] + right[:, :overlap]
        assert np.abs(summed / grey - 1.0).max() <= 0.02, "the overlap does not sum to the flat field"
        assert left[:, w - 1].mean() < 0.1 * grey and right[:, 0].mean() < 0.1 * grey  # both ramps reach black
        p.proc.terminate()
        assert p.wait(20) == 0, p.output
    finally:
        p.kill()
    assert "Traceback" not in p.output


def test_the_grid_shows_on_every_projector_warped_by_its_own_mapping(xserver: XServer, show_dir: Path,
                                                                    ctx: moderngl.Context,
                                                                    gl: Callable[..., object]) -> None:  # noqa: F811
    """G on the main window: each display shows its own output's alignment grid (its name, its corner pin),
    as a Mapper draws it. F then leaves fullscreen on both; closing the projector's window does not stop the
    show."""
    right = OutputMapping("right", (0.45, 0.0, 0.55, 1.0), KEYSTONE, blend=Blend(left=0.1))
    text = VENUE.replace('region = [0.45, 0.0, 0.55, 1.0]',
                         'region = [0.45, 0.0, 0.55, 1.0]\ncorners = ' + str([list(c) for c in KEYSTONE]))
    (show_dir / "venue.toml").write_text(text)
    want = draw(ctx, gl, right, np.zeros((8, 8, 4), dtype=np.uint8), DISPLAY, test_pattern=True)[..., :3]
    port = free_port()
    p = two_projectors(xserver, show_dir, "--fullscreen", "--size", "200x120", "--port", str(port),
                       "--vj-token", TOKEN)
    try:
        p.wait_for("screens: right on display 1")
        main = find_window(xserver, "^Stagecraft$")
        press(xserver, main, "g")
        p.wait_for("alignment grid on")
        w = DISPLAY[0]
        img = settled(xserver, lambda i: np.abs(i[:, w:] - want).mean() < 2.0)
        assert np.abs(img[:, w:] - want).mean() < 2.0, "the right display does not show its output's grid"
        assert np.abs(img[:, :w] - want).mean() > 5.0, "the main display shows the right output's grid"

        # A live edit from the control page moves the projector's corners: its window follows at once.
        unpinned = draw(ctx, gl, replace(right, corners=UNIT_CORNERS), np.zeros((8, 8, 4), dtype=np.uint8),
                        DISPLAY, test_pattern=True)[..., :3]
        asyncio.run(edit_corners(port, "right", UNIT_CORNERS))
        img = settled(xserver, lambda i: np.abs(i[:, w:] - unpinned).mean() < 2.0)
        assert np.abs(img[:, w:] - unpinned).mean() < 2.0, "the right display did not follow the page's edit"
        saved = parse_venue((show_dir / "venue.toml").read_text()).outputs[1]
        assert saved.corners == UNIT_CORNERS

        press(xserver, main, "f")
        p.wait_for("fullscreen off")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and windows(xserver).get("Stagecraft", (0, 0, 0, 0))[2:] != (200, 120):
            time.sleep(0.1)
        placed = windows(xserver)
        assert placed["Stagecraft"][2:] == (200, 120)
        assert placed["Stagecraft · right"][2:] == (200, 120)  # its region of the canvas the window shows

        close_window(xserver, find_window(xserver, "right"))
        p.wait_for("closes with the show's main window")
        time.sleep(0.5)
        assert p.proc.poll() is None, "closing a projector's window stopped the show"
        press(xserver, find_window(xserver, "^Stagecraft$"), "q")
        assert p.wait(20) == 0, p.output
    finally:
        p.kill()
    assert "Traceback" not in p.output


def test_the_readme_two_projector_example_loads() -> None:
    """The README's venue example is a valid profile with two outputs on displays 0 and 1."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**Several projectors from one machine.**"):]
    block = section[section.index("```toml") + len("```toml"): section.index("```", section.index("```toml") + 7)]
    v = parse_venue(block)
    assert [o.name for o in v.outputs] == ["left", "right"] and v.outputs[1].screen == 1
    places, warnings = plan_screens(v, canvas_size((1920, 1080), v.outputs[0].region), [(0, 0, 1920, 1080)] * 2,
                                    0, (0, 0), (1920, 1080))
    assert [p.screen for p in places] == [1] and warnings == []
