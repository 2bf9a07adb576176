"""MIDI controls → commands, with a learn mode and a mappings file, without ports.

A mapping ties one control (a CC number or a note, on a channel) to one target:
a shader parameter (scaled from 0..127 into the parameter's range), a level (the
dream layer's mix, 0..1), a trigger action (blackout, next, tap, ...) or a scene
(recalled when its pad is pressed, like a trigger). Learn
mode: the VJ picks a target, moves a knob, and the next control that moves is
bound to it. Mappings are saved as JSON and loaded at start; a damaged file is a
clear warning and an empty map, never a crash.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.commands import Action, Command

log = logging.getLogger(__name__)

TRIGGERS = frozenset({Action.NEXT, Action.BLACKOUT, Action.FREEZE, Action.HUD, Action.TAP, Action.RESYNC,
                      Action.CLEAR_EFFECTS})
LEVELS = frozenset({Action.DREAM_MIX})  # a knob's position, scaled into low..high (0..1 unless learned otherwise)


@dataclass(frozen=True)
class Control:
    """A physical control: ``kind`` is "cc" or "note"."""

    kind: str
    channel: int
    number: int


@dataclass(frozen=True)
class Target:
    """A shader parameter (``shader``/``param`` with its range), a level, a trigger ``action``, or a scene
    (action "scene", ``name``)."""

    action: str
    shader: str = ""
    param: str = ""
    low: float = 0.0
    high: float = 1.0
    name: str = ""


def target_dict(target: Target) -> dict[str, Any]:
    """As the mappings file and the control page have it: ``name`` only where it means something (a scene)."""
    out = asdict(target)
    if not target.name:
        del out["name"]
    return out


def check_mappable(target: Target) -> None:
    """A ValueError unless ``target`` can be bound to a control (and loaded back from the file)."""
    if target.action == Action.PARAM.value:
        if not target.shader or not target.param:
            raise ValueError(f"MIDI parameter target needs a shader and a parameter, got {target!r}")
        return
    if target.action == Action.SCENE.value:
        if not target.name:
            raise ValueError(f"MIDI scene target needs the scene's name, got {target!r}")
        return
    if target.action not in {a.value for a in TRIGGERS | LEVELS}:
        allowed = ", ".join(sorted(["param", "scene", *(a.value for a in TRIGGERS | LEVELS)]))
        raise ValueError(f"MIDI cannot be mapped to {target.action!r}: mappable actions are {allowed}")


def control_of(message: Any) -> tuple[Control, float] | None:
    """A mido message → (control, value 0..1); None for messages no mapping can use."""
    kind = getattr(message, "type", "")
    if kind == "control_change":
        return Control("cc", message.channel, message.control), message.value / 127.0
    if kind in ("note_on", "note_off"):
        velocity = message.velocity if kind == "note_on" else 0
        return Control("note", message.channel, message.note), velocity / 127.0
    return None


class MidiMap:
    def __init__(self) -> None:
        self.mappings: dict[Control, Target] = {}
        self.learning: Target | None = None

    def learn(self, target: Target) -> None:
        """The next control that moves is bound to ``target``."""
        self.learning = target

    def handle(self, message: Any) -> Command | None:
        """One incoming message → the command it stands for (or a new binding while learning)."""
        found = control_of(message)
        if found is None:
            return None
        control, value = found
        if self.learning is not None:
            self.mappings = {c: t for c, t in self.mappings.items() if t != self.learning}
            self.mappings[control] = self.learning
            log.info("MIDI: %s %d on channel %d → %s", control.kind, control.number, control.channel + 1,
                     self.learning.param or self.learning.name or self.learning.action)
            self.learning = None
            return None
        target = self.mappings.get(control)
        if target is None:
            return None
        if target.action == Action.PARAM.value:
            scaled = target.low + value * (target.high - target.low)
            return Command(Action.PARAM, scaled, name=target.shader, key=target.param, source="midi")
        action = Action(target.action)
        if action in LEVELS:
            return Command(action, target.low + value * (target.high - target.low), source="midi")
        if value <= 0.0:  # note off / knob at zero: a trigger fires on press only
            return None
        return Command(action, source="midi", name=target.name if action is Action.SCENE else "")

    # --- the mappings file ---------------------------------------------------------------
    def save(self, path: Path) -> None:
        data = [{"control": asdict(c), "target": target_dict(t)} for c, t in self.mappings.items()]
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> MidiMap:
        """The saved mappings; a missing file is an empty map, a damaged one a warning and an empty map."""
        m = cls()
        if not path.is_file():
            return m
        try:
            for item in json.loads(path.read_text(encoding="utf-8")):
                control, target = Control(**item["control"]), Target(**item["target"])
                check_mappable(target)
                m.mappings[control] = target
        except (OSError, ValueError, TypeError, KeyError) as err:
            log.warning("MIDI: ignoring %s (%s); starting with no mappings", path, err)
            m.mappings.clear()
        return m
