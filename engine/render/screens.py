"""One window per projector: the venue's other outputs, each showing its part of the canvas.

A venue profile with several ``[[output]]`` tables describes projectors fed from this one machine. The
first output is the show's own window (engine/render/screen_map.py warps it); every other one gets a
window here, fullscreen on its own display when the show is fullscreen. The program is drawn once, into
the canvas texture, at the canvas's size (wider than one window when the outputs split it); each extra
window draws its region of that texture through its own ``Mapper`` (corner pin, mesh, edge blend, masks).

GL: pyglet makes every window's context share objects with the first, so the canvas texture is one GL
name every context can sample. moderngl wraps it in each extra context with ``external_texture`` (a view
that never deletes the texture). Programs, vertex arrays and framebuffers are per context, so each
window has its own ``Mapper``. Only the main window waits for vsync: a second vsync'd swap in the same
loop would halve the frame rate. The placement arithmetic is kept apart from pyglet so it can be tested
without a display.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import moderngl

from engine.errors import EngineError, RenderError
from engine.render.mapping import Mapper
from engine.render.venue import OutputMapping, Venue

log = logging.getLogger(__name__)

MAX_CANVAS = 16384  # pixels on the canvas's longer side (GL_MAX_TEXTURE_SIZE on most GPUs)

Rect = tuple[int, int, int, int]  # x, y, width, height of a display, in desktop pixels


@dataclass(frozen=True)
class Placement:
    """Where one extra output's window goes: ``screen`` is a display index (None: no display of its own)."""

    index: int  # the output's index in the venue
    name: str
    screen: int | None
    size: tuple[int, int]  # the window's size when windowed
    location: tuple[int, int]  # its top-left corner when windowed


def canvas_size(window: tuple[int, int], region: tuple[float, float, float, float]) -> tuple[int, int]:
    """The canvas in pixels: the main window shows ``region`` of it, pixel for pixel.

    Two 1920x1080 projectors splitting the canvas at 0.55 each make a 3491x1080 canvas. Capped at
    ``MAX_CANVAS`` on the longer side, the shape kept.
    """
    w = window[0] / max(region[2], 1e-6)
    h = window[1] / max(region[3], 1e-6)
    scale = min(1.0, MAX_CANVAS / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def plan_screens(venue: Venue, canvas: tuple[int, int], displays: Sequence[Rect], main_screen: int,
                 main_location: tuple[int, int], main_size: tuple[int, int]) -> tuple[tuple[Placement, ...],
                                                                                     list[str]]:
    """Where each output after the first goes, and the warnings to log.

    An output's ``screen`` names its display; without one, output i takes the display i after the main
    window's. An output whose display does not exist (or is already taken) has none: it stays windowed
    even in fullscreen, and a warning says so. Windowed, each window is the size of its region of the
    canvas (as the main window is of its own), laid out to the right of the main window.
    """
    placements: list[Placement] = []
    warnings: list[str] = []
    taken = {main_screen}
    x = main_location[0] + main_size[0]
    for i, out in enumerate(venue.outputs[1:], start=1):
        wanted = out.screen if out.screen is not None else main_screen + i
        screen: int | None = wanted
        if wanted >= len(displays) or wanted in taken:
            why = "is the main window's or another output's" if wanted in taken else "does not exist"
            warnings.append(f"venue output {out.name!r}: display {wanted} {why} ({len(displays)} display(s)): "
                            "its window stays windowed")
            screen = None
        else:
            taken.add(wanted)
        size = (max(64, round(canvas[0] * out.region[2])), max(64, round(canvas[1] * out.region[3])))
        placements.append(Placement(i, out.name, screen, size, (x, main_location[1])))
        x += size[0]
    return tuple(placements), warnings


class _Screen:
    """One extra window: its pyglet window, its moderngl context, its mapper and its view of the canvas."""

    def __init__(self, win: Any, ctx: moderngl.Context, mapper: Mapper, place: Placement, display: Any) -> None:
        self.win = win
        self.ctx = ctx
        self.mapper = mapper
        self.place = place
        self.display = display  # the pyglet screen it goes fullscreen on (None: stays windowed)
        self.view: moderngl.Texture | None = None  # the canvas texture, wrapped in this context
        self.view_of = 0  # the GL name wrapped

    def source(self, canvas: moderngl.Texture) -> moderngl.Texture:
        if self.view is None or self.view_of != canvas.glo or self.view.size != canvas.size:
            self.view = self.ctx.external_texture(canvas.glo, canvas.size, canvas.components, 0, "f1")
            self.view_of = canvas.glo
        return self.view


class ExtraScreens:
    """The windows of the venue's outputs after the first, drawn after the main window each frame."""

    def __init__(self, report: Callable[[str], None]) -> None:
        self.report = report
        self.screens: list[_Screen] = []
        self._venue: Venue | None = None
        self._main: Any = None
        self._rects: list[Rect] = []  # the displays, as found when the windows opened
        self._main_screen = 0

    def open(self, pyglet: Any, venue: Venue, main: Any, main_screen: int, canvas: tuple[int, int],
             fullscreen: bool, on_key: Callable[[int, int], bool]) -> None:
        """Open a window per extra output; one that cannot open is reported and the show goes on without it."""
        displays = pyglet.display.get_display().get_screens()
        rects = [(d.x, d.y, d.width, d.height) for d in displays]
        x, y = main.get_location()
        placements, warnings = plan_screens(venue, canvas, rects, main_screen, (x, y), main.get_size())
        for line in warnings:
            log.warning("%s", line)
        self._main, self._venue, self._rects, self._main_screen = main, venue, rects, main_screen
        for place in placements:
            display = displays[place.screen] if place.screen is not None else None
            try:
                self.screens.append(self._open_one(pyglet, venue.outputs[place.index], place, display, fullscreen,
                                                   on_key))
            except EngineError as err:
                self.report(f"venue output {place.name!r}: no window: {err}")
            finally:
                main.switch_to()
        if self.screens:
            log.info("screens: %s", ", ".join(f"{s.place.name} on display {s.place.screen}"
                                               if s.place.screen is not None else f"{s.place.name} windowed"
                                               for s in self.screens))

    @staticmethod
    def _open_one(pyglet: Any, output: OutputMapping, place: Placement, display: Any, fullscreen: bool,
                  on_key: Callable[[int, int], bool]) -> _Screen:
        try:
            win = pyglet.window.Window(width=place.size[0], height=place.size[1], caption=f"Stagecraft · {output.name}",
                                       resizable=True, fullscreen=fullscreen and display is not None,
                                       screen=display, vsync=False)
        except Exception as err:
            raise RenderError(f"cannot open a window: {err}") from err
        try:
            if not win.fullscreen:
                win.set_location(*place.location)
            win.set_mouse_visible(not win.fullscreen)

            def on_close() -> bool:
                log.warning("the window of %r closes with the show's main window (Q or Esc there)", output.name)
                return True  # a projector window closed by accident must not end the show

            win.push_handlers(on_key_press=on_key, on_close=on_close, on_draw=lambda: True)
            ctx = moderngl.create_context(require=330)
            return _Screen(win, ctx, Mapper(ctx, output), place, display)
        except Exception as err:
            win.close()
            if isinstance(err, EngineError):
                raise
            raise RenderError(f"cannot set up its GL context: {err}") from err

    def dispatch_events(self) -> None:
        for s in self.screens:
            s.win.dispatch_events()

    def draw(self, venue: Venue | None, canvas: moderngl.Texture | None, test_pattern: bool) -> None:
        """Each extra window draws its region of ``canvas`` (the program this frame) and shows it.

        ``venue`` is the screen map's, edited live from the control page: a changed output is handed to its
        mapper. A window whose drawing fails is reported and closed; the others go on.
        """
        if not self.screens or canvas is None:
            return
        if venue is not None and venue is not self._venue and self._venue is not None \
                and len(venue.outputs) == len(self._venue.outputs):
            for s in self.screens:
                s.mapper.update(venue.outputs[s.place.index])
            self._venue = venue
        failed: list[_Screen] = []
        for s in self.screens:
            try:
                s.win.switch_to()
                size = s.win.get_framebuffer_size()
                s.mapper.render(s.source(canvas), s.ctx.screen, size, test_pattern)
                s.win.flip()
            except Exception as err:  # a lost window or a driver error: that projector goes, the show stays
                self.report(f"venue output {s.place.name!r}: its window stopped: {err}")
                failed.append(s)
        self._main.switch_to()
        for s in failed:
            self._close(s)

    def set_fullscreen(self, on: bool, canvas: tuple[int, int]) -> None:
        """Follow the main window: fullscreen on each window's own display (one without stays windowed).

        Leaving fullscreen, each window takes its region of ``canvas`` (the main window's windowed size over
        its region), laid out to the right of the main window again.
        """
        if self._venue is None or self._main is None:
            return
        main = self._main
        places, _ = plan_screens(self._venue, canvas, self._rects, self._main_screen, main.get_location(),
                                 main.get_size())
        by_index = {p.index: p for p in places}
        for s in self.screens:
            place = by_index.get(s.place.index, s.place)
            if on and s.display is not None and not s.win.fullscreen:
                s.win.set_fullscreen(True, screen=s.display)
                s.win.set_mouse_visible(False)
            elif not on:
                if s.win.fullscreen:
                    s.win.set_fullscreen(False, width=place.size[0], height=place.size[1])
                    s.win.set_mouse_visible(True)
                else:
                    s.win.set_size(*place.size)
                s.win.set_location(*place.location)
        main.switch_to()

    def _close(self, s: _Screen) -> None:
        self.screens.remove(s)
        try:
            s.win.switch_to()
            s.mapper.release()
        except Exception as err:  # already gone with its window
            log.debug("releasing %s: %s", s.place.name, err)
        s.win.close()
        if self._main is not None:
            self._main.switch_to()

    def release(self) -> None:
        for s in list(self.screens):
            self._close(s)

