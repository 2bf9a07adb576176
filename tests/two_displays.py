"""``python -m tests.two_displays ARGS``: the engine, on an X server whose one screen pyglet sees as displays.

Xvfb has a single RandR output, so pyglet reports one display. A show machine with two projectors has two,
side by side on one desktop. This launcher splits the Xvfb root into the displays named by
``STAGECRAFT_DISPLAYS`` (``320x180,320x180``: widths laid out left to right), the way RandR reports
real monitors, and then runs the engine's own ``main``: everything else is the real window code.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def _split_root() -> None:
    import pyglet.display.xlib as xlib_display

    sizes = [tuple(int(v) for v in part.split("x")) for part in os.environ["STAGECRAFT_DISPLAYS"].split(",")]

    def get_screens(self: Any) -> list[Any]:
        screens, x = [], 0
        for i, (w, h) in enumerate(sizes):
            screen = xlib_display.XlibScreen(self, x, 0, w, h)
            screen.is_primary = i == 0
            screens.append(screen)
            x += w
        self._screens = screens
        return screens

    xlib_display.XlibDisplay.get_screens = get_screens  # type: ignore[method-assign]


if __name__ == "__main__":  # the backstage's spawned process imports this module too: only the parent patches
    _split_root()
    from engine.cli import main

    sys.exit(main(sys.argv[1:]))
