"""The one command layer: keyboard, pages, OSC and MIDI all speak in these.

A control surface turns its input into a ``Command`` and puts it in the show's
inbox; the show applies it on the render thread. So every surface behaves the
same, and the behaviour is tested once, here and in ``show.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    NEXT = "next"  # skip the hold: bring the next image now
    BLACKOUT = "blackout"  # fade to black; value 1/0 sets it, none toggles
    HUD = "hud"  # show/hide the HUD; value 1/0 sets it, none toggles
    FULLSCREEN = "fullscreen"  # value 1/0 sets it, none toggles
    ESCAPE = "escape"  # leave fullscreen, or quit when windowed
    QUIT = "quit"


@dataclass(frozen=True)
class Command:
    action: Action
    value: float | None = None
    source: str = "internal"


KEY_BINDINGS: dict[str, Action] = {
    "F": Action.FULLSCREEN,
    "H": Action.HUD,
    "SPACE": Action.NEXT,
    "B": Action.BLACKOUT,
    "Q": Action.QUIT,
    "ESCAPE": Action.ESCAPE,
}


def command_for_key(key_name: str) -> Command | None:
    """A key name as pyglet spells it (``"SPACE"``, ``"F"``) → its command, if bound."""
    action = KEY_BINDINGS.get(key_name.upper())
    return Command(action, source="keyboard") if action is not None else None


def toggled(current: bool, value: float | None) -> bool:
    """The new state of a toggle: explicit 1/0 sets it, no value flips it."""
    return not current if value is None else value >= 0.5
