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
    # name=a venue output ("" = the first), key and value: "corners" (x0, y0, .. x3, y3), "mesh" (() none,
    # (cols, rows) identity, (cols, rows, x0, y0, ..) all points), "point" (index, x, y: one mesh point) or "masks"
    # ((n1, x, y, .., n2, ..), () none): engine/render/mapping_edits.py
    MAPPING = "mapping"
    CAPTION = "caption"  # 0 hides the caption on screen, 1 shows it, none toggles; name=image id: that one's, always
    SCENE = "scene"  # recall a scene (engine/scenes/): name=..., or value N: the Nth in the sorted list (1-based)
    SCENE_SAVE = "scene_save"  # name: save the look now as that scene; key: the style preset to keep ("none": none)
    SCENE_DELETE = "scene_delete"  # name: delete that scene's file


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


# Shift+1..9 recalls scene 1..9. X11 names the shifted symbol, which depends on the keyboard layout: these are
# a US layout's; other systems (and layouts whose digits need Shift) name the digit itself, with Shift held.
SHIFTED_DIGITS = {"EXCLAMATION": 1, "AT": 2, "HASH": 3, "POUND": 3, "DOLLAR": 4, "PERCENT": 5, "ASCIICIRCUM": 6,
                  "AMPERSAND": 7, "ASTERISK": 8, "PARENLEFT": 9}


def command_for_key(key_name: str, shift: bool = False) -> Command | None:
    """A key name as pyglet spells it (``"SPACE"``, ``"F"``, ``"_1"``) → its command, if bound.

    ``shift``: Shift was held (Shift+1..9 recall scenes 1..9).
    """
    key = key_name.upper()
    digit = int(key[1]) if len(key) == 2 and key[0] == "_" and key[1] in "123456789" else 0
    if shift and (digit or key in SHIFTED_DIGITS):
        return Command(Action.SCENE, float(digit or SHIFTED_DIGITS[key]), source="keyboard")
    if digit:
        return Command(Action.EFFECT, float(digit), source="keyboard")
    if key in ("BRACKETLEFT", "BRACKETRIGHT"):
        return Command(Action.TRANSITION, -1.0 if key == "BRACKETLEFT" else 1.0, source="keyboard")
    action = KEY_BINDINGS.get(key)
    return Command(action, source="keyboard") if action is not None else None


def toggled(current: bool, value: float | tuple[float, ...] | None) -> bool:
    """The new state of a toggle: explicit 1/0 sets it, no value flips it."""
    if isinstance(value, tuple):
        value = value[0] if value else None
    return not current if value is None else value >= 0.5
