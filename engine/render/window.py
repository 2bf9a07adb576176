"""Window driver: the show in a pyglet window, one plain loop.

    while running: events → frame(t) → flip → pace

pyglet is imported here only, and only when a window is wanted: importing
``pyglet.window`` needs a display, and headless runs and tests have none.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import moderngl

from engine.commands import Action, command_for_key, toggled
from engine.errors import RenderError
from engine.pacing import FramePacer
from engine.render.headless import save_png
from engine.render.screens import ExtraScreens, canvas_size
from engine.render.show_loop import ShowLoop
from engine.show_options import ShowOptions

log = logging.getLogger(__name__)


def _open_window(opts: ShowOptions) -> tuple[Any, Any, Any, int]:
    """Create the window on the chosen screen; translate pyglet's failures into RenderError."""
    import pyglet

    pyglet.options["debug_gl"] = False  # a glGetError after every call costs frames
    try:
        import pyglet.window

        display = pyglet.display.get_display()
        screens = display.get_screens()
    except Exception as err:  # NoSuchDisplayException and friends
        raise RenderError(f"cannot open a window: {err}") from err
    wc = opts.cfg.window
    index = wc.screen
    if index >= len(screens):
        log.warning("window.screen = %d, but only %d screen(s): using screen 0", index, len(screens))
        index = 0
    screen = screens[index]
    try:
        # Fullscreen takes the display's own size: a width and height given with it would make pyglet switch
        # the display's mode (a projector dropped to 1280x720) or, where modes cannot switch, draw at the wrong
        # size. Leaving fullscreen goes back to the configured size (_set_fullscreen).
        win = pyglet.window.Window(
            width=None if wc.fullscreen else opts.size[0],
            height=None if wc.fullscreen else opts.size[1],
            caption="Stagecraft",
            resizable=True,
            fullscreen=wc.fullscreen,
            screen=screen,
            vsync=wc.vsync,
        )
    except Exception as err:
        raise RenderError(f"cannot open a window: {err}") from err
    return pyglet, win, screen, index


def run_window(opts: ShowOptions, stop: threading.Event) -> None:
    """Run the show in a window until it is closed, quit, stopped or out of frames."""
    pyglet, win, screen, screen_index = _open_window(opts)
    closed = threading.Event()

    def on_key_press(symbol: int, modifiers: int) -> bool:
        shift = bool(modifiers & pyglet.window.key.MOD_SHIFT)  # Shift+1..9: scenes
        cmd = command_for_key(pyglet.window.key.symbol_string(symbol), shift)
        if cmd is not None and cmd.action is Action.PAIR:
            opts.pair()  # backstage's, straight away: the code goes to the console, never near the picture
        elif cmd is not None:
            opts.inbox.commands.put(cmd)
        return True  # handled: stops pyglet's default Esc-closes-the-window

    def on_close() -> bool:
        closed.set()
        return True

    def on_draw() -> bool:
        return True

    win.push_handlers(on_key_press=on_key_press, on_close=on_close, on_draw=on_draw)
    win.set_mouse_visible(not win.fullscreen)
    ctx = moderngl.create_context(require=330)
    show = ShowLoop(ctx, opts.cfg, win.get_framebuffer_size(), opts.inbox, opts.join_url, opts.board,
                    opts.request_image, opts.live)
    show.fullscreen = win.fullscreen
    extra = ExtraScreens(show.report)  # the venue's other projectors, a window each
    venue = show.screen_map.venue
    if venue is not None and len(venue.outputs) > 1:
        extra.open(pyglet, venue, win, screen_index, _canvas(show, win), win.fullscreen, on_key_press)
    # With vsync the display paces the loop; the cap sits 2% above the asked rate so
    # it never makes a frame miss a vblank on a display running a hair fast.
    pacer = FramePacer(opts.fps * 1.02 if opts.cfg.window.vsync else opts.fps)
    log.info("window: %dx%d%s on %s", *win.get_framebuffer_size(), " fullscreen" if win.fullscreen else "",
             ctx.info["GL_RENDERER"])
    try:
        while not (stop.is_set() or closed.is_set()):
            win.dispatch_events()
            extra.dispatch_events()
            if closed.is_set():
                break
            show.compositor.resize(_canvas(show, win))
            show.frame(time.perf_counter(), ctx.screen)
            extra.draw(show.screen_map.venue, show.screen_map.canvas, show.screen_map.test_pattern)
            if _handle_driver_actions(show, win, screen, extra, opts.size):
                break
            win.flip()
            if opts.frames is not None and show.frame_index >= opts.frames:
                break
            pacer.wait()
        if opts.snapshot is not None:
            save_png(show.capture(time.perf_counter()), opts.snapshot)
    finally:
        extra.release()
        show.release()
        win.close()


def _canvas(show: ShowLoop, win: Any) -> tuple[int, int]:
    """The program's size: the window's, or with a venue the whole canvas the window shows a region of."""
    w, h = win.get_framebuffer_size()
    size = (int(w), int(h))
    venue = show.screen_map.venue
    if venue is None:
        show.screen_map.screen_size = None
        return size
    show.screen_map.screen_size = size
    return canvas_size(size, venue.outputs[0].region)


def _handle_driver_actions(show: ShowLoop, win: Any, screen: Any, extra: ExtraScreens,
                           windowed: tuple[int, int]) -> bool:
    """Fullscreen and quit belong to the window; True when the show should end."""
    quit_now = False
    for cmd in show.driver_actions:
        if cmd.action is Action.QUIT:
            quit_now = True
        elif cmd.action is Action.ESCAPE:
            if win.fullscreen:
                _set_fullscreen(show, win, screen, False, extra, windowed)
            else:
                quit_now = True
        elif cmd.action is Action.FULLSCREEN:
            want = toggled(win.fullscreen, cmd.value)
            _set_fullscreen(show, win, screen, want, extra, windowed)
    show.driver_actions.clear()
    return quit_now


def _set_fullscreen(show: ShowLoop, win: Any, screen: Any, on: bool, extra: ExtraScreens,
                    windowed: tuple[int, int]) -> None:
    if on == win.fullscreen:
        return
    if on:
        win.set_fullscreen(True, screen=screen)
    else:
        win.set_fullscreen(False, width=windowed[0], height=windowed[1])
    extra.set_fullscreen(on, _canvas(show, win))
    win.set_mouse_visible(not on)
    show.fullscreen = on
    log.info("fullscreen %s", "on" if on else "off")
