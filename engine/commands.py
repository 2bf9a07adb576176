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
    FREEZE = "freeze"  # hold the picture still (images, transitions, shader time); value 1/0 sets, none toggles
    HUD = "hud"  # show/hide the HUD; value 1/0 sets it, none toggles
    FULLSCREEN = "fullscreen"  # value 1/0 sets it, none toggles
    ESCAPE = "escape"  # leave fullscreen, or quit when windowed
    QUIT = "quit"
    EFFECT = "effect"  # value N: toggle the library's Nth effect (1-based) in the chain; or name=...
    SET_EFFECT = "set_effect"  # slot=N, name=effect ("" empties the slot)
    CLEAR_EFFECTS = "clear_effects"
    TRANSITION = "transition"  # value +1/-1 cycles; or name=... picks one
    PARAM = "param"  # name=shader, key=parameter, value=number or tuple
    TAP = "tap"  # tap tempo: a tap now
    BPM = "bpm"  # value: lock the tempo at this bpm; 0 or none unlocks (back to detection)
    NUDGE = "nudge"  # value: move the beat phase by this many seconds
    RESYNC = "resync"  # the beat is now
    PAIR = "pair"  # a one-time code to log in to the control page, on the show machine's console only
    HOLD = "hold"  # value: seconds an image stays (the line's pace, from the backstage); none: [show] hold
    DREAM_MIX = "dream_mix"  # value 0..1: the dream layer's opacity over the program (0 = off); none: [dream] mix
    RECORD = "record"  # value 1/0 starts/stops recording the program, none toggles
    INPUT = "input"  # name: show this live input ("camera" or "ndi") as the picture; "" goes back to the images
    GRID = "grid"  # the projection-mapping alignment grid instead of the program; value 1/0 sets, none toggles


@dataclass(frozen=True)
class Command:
    action: Action
    value: float | tuple[float, ...] | None = None
    source: str = "internal"
    name: str = ""
    key: str = ""
    slot: int = 0


KEY_BINDINGS: dict[str, Action] = {
    "F": Action.FULLSCREEN,
    "H": Action.HUD,
    "SPACE": Action.NEXT,
    "B": Action.BLACKOUT,
    "Q": Action.QUIT,
    "ESCAPE": Action.ESCAPE,
    "_0": Action.CLEAR_EFFECTS,
    "T": Action.TAP,
    "P": Action.PAIR,
    "R": Action.RECORD,
    "G": Action.GRID,
}


def command_for_key(key_name: str) -> Command | None:
    """A key name as pyglet spells it (``"SPACE"``, ``"F"``, ``"_1"``) → its command, if bound."""
    key = key_name.upper()
    if len(key) == 2 and key[0] == "_" and key[1] in "123456789":
        return Command(Action.EFFECT, float(key[1]), source="keyboard")
    if key in ("BRACKETLEFT", "BRACKETRIGHT"):
        return Command(Action.TRANSITION, -1.0 if key == "BRACKETLEFT" else 1.0, source="keyboard")
    action = KEY_BINDINGS.get(key)
    return Command(action, source="keyboard") if action is not None else None


def toggled(current: bool, value: float | tuple[float, ...] | None) -> bool:
    """The new state of a toggle: explicit 1/0 sets it, no value flips it."""
    if isinstance(value, tuple):
        value = value[0] if value else None
    return not current if value is None else value >= 0.5
