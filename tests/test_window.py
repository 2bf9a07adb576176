"""A real pyglet window under Xvfb: it renders, takes keys, and closes cleanly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.engine_process import EngineProcess, run_engine
from tests.fakes import assert_not_uniform
from tests.xwindow import XServer, close_window, find_window, press, press_until, start_xvfb

ARGS = ["--set", 'server.public_url="http://10.9.8.7:3000"', "--fps", "30"]


@pytest.fixture(scope="module")
def xserver() -> Iterator[XServer]:
    server = start_xvfb()
    yield server
    server.stop()


def clean_exit(p: EngineProcess, timeout: float = 20.0) -> None:
    assert p.wait(timeout) == 0, p.output
    assert "Traceback" not in p.output and "show stopped" in p.output, p.output


def test_window_renders_frames_and_exits_cleanly(xserver: XServer, tmp_path: Path) -> None:
    """--frames N in a window: frames drawn, a non-black snapshot, exit code 0."""
    rc, out = run_engine(["--frames", "40", "--snapshot", "w.png", "--size", "640x360", *ARGS],
                         tmp_path, xserver.env())
    assert rc == 0, out
    assert "window: 640x360" in out and "Traceback" not in out
    img = np.asarray(Image.open(tmp_path / "w.png").convert("RGB"))
    assert img.shape == (360, 640, 3)
    assert_not_uniform(img)


def test_q_quits(xserver: XServer, tmp_path: Path) -> None:
    """Q ends the show with exit code 0."""
    p = EngineProcess(["--size", "320x180", *ARGS], tmp_path, xserver.env())
    try:
        p.wait_for("window: 320x180")
        press(xserver, find_window(xserver, "Stagecraft"), "q")
        clean_exit(p)
    finally:
        p.kill()


def test_escape_leaves_fullscreen_first_then_quits(xserver: XServer, tmp_path: Path) -> None:
    """F goes fullscreen; Esc leaves fullscreen and the show goes on; Esc again quits."""
    p = EngineProcess(["--size", "320x180", *ARGS], tmp_path, xserver.env())
    try:
        p.wait_for("window: 320x180")
        win = find_window(xserver, "Stagecraft")
        press(xserver, win, "f")
        p.wait_for("fullscreen on")
        press_until(xserver, "Stagecraft", "Escape", lambda: "fullscreen off" in p.output)
        assert p.proc.poll() is None
        press_until(xserver, "Stagecraft", "Escape", lambda: p.proc.poll() is not None)
        clean_exit(p)
    finally:
        p.kill()


def test_fullscreen_flag_fills_the_screen(xserver: XServer, tmp_path: Path) -> None:
    """--fullscreen renders at the screen's size."""
    rc, out = run_engine(["--fullscreen", "--frames", "5", *ARGS], tmp_path, xserver.env())
    assert rc == 0, out
    assert "window: 1280x720 fullscreen" in out


def test_closing_the_window_shuts_down_cleanly(xserver: XServer, tmp_path: Path) -> None:
    """The window manager's close button stops every thread and exits 0."""
    p = EngineProcess(["--size", "320x180", *ARGS], tmp_path, xserver.env())
    try:
        p.wait_for("window: 320x180")
        close_window(xserver, find_window(xserver, "Stagecraft"))
        clean_exit(p)
    finally:
        p.kill()


def test_missing_screen_falls_back_to_the_first(xserver: XServer, tmp_path: Path) -> None:
    """--screen beyond the monitors present warns and uses screen 0."""
    rc, out = run_engine(["--screen", "3", "--frames", "3", "--size", "320x180", *ARGS], tmp_path,
                         xserver.env())
    assert rc == 0, out
    assert "only 1 screen(s): using screen 0" in out


def test_b_key_blacks_out_the_screen(xserver: XServer, tmp_path: Path) -> None:
    """B from the keyboard fades the picture to black (checked on the final frame)."""
    p = EngineProcess(["--size", "320x180", "--snapshot", "b.png", "--set", "show.blackout_fade=0.2", *ARGS],
                      tmp_path, xserver.env())
    try:
        p.wait_for("window: 320x180")
        win = find_window(xserver, "Stagecraft")
        press(xserver, win, "b")
        p.wait_for("blackout on")
        time.sleep(0.6)  # let the 0.2 s fade finish
        press(xserver, win, "q")
        clean_exit(p)
    finally:
        p.kill()
    img = np.asarray(Image.open(tmp_path / "b.png").convert("RGB"))
    assert int(img.max()) == 0
