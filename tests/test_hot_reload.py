"""Hot reload end to end: the watcher thread sees a save, the show loop reloads between frames."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import moderngl
import pytest

from engine.commands import Action, Command
from engine.contract import Inbox, ShaderProblem
from engine.render.overlay import hud_lines
from engine.render.show_loop import ShowLoop
from engine.shaders.watch import ShaderWatcher
from tests.fakes import RED, TEST_SHADERS, make_config, pixels, solid, target

SIZE = (160, 90)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copy(TEST_SHADERS / "vignette.fs", tmp_path / "vignette.fs")
    shutil.copy(TEST_SHADERS / "wipe.fs", tmp_path / "wipe.fs")
    return tmp_path


@pytest.fixture
def running(ctx: moderngl.Context, folder: Path) -> Iterator[tuple[ShowLoop, moderngl.Framebuffer]]:
    inbox = Inbox()
    cfg = make_config({"shaders.dir": str(folder), "shaders.effects": ["vignette"], "show.fit": "cover",
                       "show.transition": 0.0})
    show = ShowLoop(ctx, cfg, SIZE, inbox, "http://127.0.0.1:3000")
    watcher = ShaderWatcher(folder, inbox.shader_changes)
    watcher.start()
    assert watcher.ready.wait(10), "the file watcher did not start"
    fb = target(ctx, SIZE)
    inbox.images.put(solid(RED, (32, 32), "red"))
    show.frame(0.0, fb)
    show.frame(0.1, fb)
    yield show, fb
    watcher.stop()
    show.release()
    fb.release()


def frames_until(show: ShowLoop, fb: moderngl.Framebuffer, done: Callable[[], bool], timeout: float = 10.0) -> None:
    """Keep rendering (as the show does) until ``done()``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    t = 1.0
    while time.monotonic() < deadline:
        show.frame(t, fb)
        if done():
            return
        t += 0.02
        time.sleep(0.01)
    raise AssertionError("the change never reached the show")


def corner(fb: moderngl.Framebuffer) -> float:
    return float(pixels(fb)[2, 2, 0])


def test_break_then_fix_the_active_shader(running: tuple[ShowLoop, moderngl.Framebuffer], folder: Path) -> None:
    """Broken save: the old shader keeps rendering and the error is reported; fixed save: the new one
    is active, with the parameter value the VJ had set."""
    show, fb = running
    show.inbox.commands.put(Command(Action.PARAM, 0.9, name="vignette", key="amount"))
    show.frame(0.5, fb)
    dark = corner(fb)
    assert dark < 100  # the vignette at 0.9 darkens the red corners

    path = folder / "vignette.fs"
    good = path.read_text()
    path.write_text(good.replace("gl_FragColor =", "gl_FragColor = oops +"))
    frames_until(show, fb, lambda: bool(show.board.read().shader_errors))
    error = str(show.board.read().shader_errors[0])
    assert error.startswith(f"{path}:13:") and "oops" in error
    show.frame(2.0, fb)
    assert corner(fb) == pytest.approx(dark, abs=2)  # still the last good program
    assert "vignette" in show.board.read().effects

    # The fix also changes what the shader does (green), so we can see the new one is live.
    path.write_text(good.replace("gl_FragColor = vec4(c.rgb * (1.0 - amount * d), 1.0);",
                                 "gl_FragColor = vec4(0.0, 1.0 - amount * d, 0.0, 1.0);"))
    frames_until(show, fb, lambda: not show.board.read().shader_errors and pixels(fb)[45, 80, 1] > 200)
    assert show.library.get("vignette").params.get("amount") == 0.9  # type: ignore[union-attr]
    assert float(pixels(fb)[2, 2, 1]) == pytest.approx(dark, abs=2)  # same vignette strength, now in green


def test_new_file_joins_the_library(running: tuple[ShowLoop, moderngl.Framebuffer], folder: Path) -> None:
    """A file saved into the folder becomes an effect the VJ can pick."""
    show, fb = running
    shutil.copy(TEST_SHADERS / "feedback.fs", folder / "feedback.fs")
    frames_until(show, fb, lambda: "feedback" in show.library.effects())
    assert not show.board.read().shader_errors


def test_delete_then_restore_the_active_effect(running: tuple[ShowLoop, moderngl.Framebuffer], folder: Path) -> None:
    """Deleted: the effect keeps drawing and the VJ is told its file is missing; restored: the error
    clears and the parameter value the VJ had set is kept."""
    show, fb = running
    show.inbox.commands.put(Command(Action.PARAM, 0.9, name="vignette", key="amount"))
    show.frame(0.5, fb)
    dark = corner(fb)
    assert dark < 100  # without the effect the corner is plain red (255)

    path = folder / "vignette.fs"
    good = path.read_text()
    path.unlink()
    frames_until(show, fb, lambda: bool(show.board.read().shader_errors))
    missing = ShaderProblem(str(path), None, "file is missing; the last good version is running")
    snap = show.board.read()
    assert snap.shader_errors == (missing,) and "vignette" in snap.effects
    assert f"! {missing}" in hud_lines(snap, "http://127.0.0.1:3000")
    assert {s.name: s.error for s in show.board.catalog()}["vignette"] == str(missing)
    show.frame(5.0, fb)
    assert corner(fb) == pytest.approx(dark, abs=2)  # still drawn, by the last good program

    path.write_text(good)
    frames_until(show, fb, lambda: not show.board.read().shader_errors)
    assert show.library.get("vignette").params.get("amount") == 0.9  # type: ignore[union-attr]
    assert {s.name: s.error for s in show.board.catalog()}["vignette"] is None
    show.frame(6.0, fb)
    assert corner(fb) == pytest.approx(dark, abs=2)
