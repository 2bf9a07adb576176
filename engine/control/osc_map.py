"""OSC addresses → commands, without sockets (the address space is in docs/osc.md).

Every control surface ends in ``engine.commands.Command``; this module is the OSC
dialect of it, so TouchOSC, Lemur or another VJ tool drive the show exactly as the
keyboard does. A message that does not fit is an ``OscError`` saying why.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.commands import Action, Command
from engine.errors import EngineError

PREFIX = "/engine/"


class OscError(EngineError):
    """An OSC message the engine does not understand."""


def _number(address: str, args: Sequence[object], default: float | None = None) -> float | None:
    if not args:
        return default
    v = args[0]
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float):
        return float(v)
    raise OscError(f"{address}: expected a number, got {v!r}")


def _text(address: str, args: Sequence[object]) -> str:
    if not args or not isinstance(args[0], str):
        raise OscError(f"{address}: expected a name")
    return args[0]


def _scene(address: str, part: str | None, args: Sequence[object]) -> Command:
    """/engine/scene/<n or name> (digits are the number), or /engine/scene with the name (text: any name, spaces
    and digits too) or the number as its argument."""
    if part is None:
        if args and isinstance(args[0], str) and args[0]:
            return Command(Action.SCENE, name=args[0], source="osc")
        if not args or isinstance(args[0], str):
            raise OscError(f"{address}: expected a scene's name or number")
        return Command(Action.SCENE, _number(address, args), source="osc")
    if part.isascii() and part.isdigit():
        return Command(Action.SCENE, float(part), source="osc")
    if not part:
        raise OscError(f"{address}: expected a scene's name or number")
    return Command(Action.SCENE, name=part, source="osc")


def command_for(address: str, args: Sequence[object]) -> Command:
    """One OSC message → the command it stands for."""
    if not address.startswith(PREFIX):
        raise OscError(f"{address}: addresses start with {PREFIX}")
    parts = address[len(PREFIX):].split("/")
    head, rest = parts[0], parts[1:]
    src = "osc"
    if head == "next" and not rest:
        return Command(Action.NEXT, source=src)
    if head in ("blackout", "freeze", "hud", "fullscreen", "record", "grid", "caption") and not rest:
        return Command(Action(head), _number(address, args), source=src)
    if head == "tap" and not rest:
        return Command(Action.TAP, source=src)
    if head == "resync" and not rest:
        return Command(Action.RESYNC, source=src)
    if head == "bpm" and not rest:
        return Command(Action.BPM, _number(address, args, 0.0), source=src)
    if head == "nudge" and not rest:
        return Command(Action.NUDGE, _number(address, args, 0.0), source=src)
    if head == "effect" and len(rest) == 1:
        if rest[0] == "clear":
            return Command(Action.CLEAR_EFFECTS, source=src)
        if rest[0] == "toggle":
            return Command(Action.EFFECT, _number(address, args), source=src)
        if rest[0].isdigit() and 1 <= int(rest[0]) <= 3:
            name = _text(address, args) if args else ""
            return Command(Action.SET_EFFECT, name="" if name == "none" else name, slot=int(rest[0]) - 1, source=src)
        raise OscError(f"{address}: effect slots are 1, 2 and 3")
    if head == "transition" and not rest:
        if args and isinstance(args[0], str):
            return Command(Action.TRANSITION, name=args[0], source=src)
        return Command(Action.TRANSITION, _number(address, args, 1.0), source=src)
    if head == "input" and not rest:
        name = _text(address, args) if args else ""
        return Command(Action.INPUT, name="" if name == "none" else name, source=src)
    if head == "dream" and rest == ["mix"]:
        if not args:
            raise OscError(f"{address}: expected the mix, 0 to 1")
        return Command(Action.DREAM_MIX, _number(address, args), source=src)
    if head == "scene" and len(rest) <= 1:
        return _scene(address, rest[0] if rest else None, args)
    if head == "param" and len(rest) == 2:
        if not args:
            raise OscError(f"{address}: expected a value")
        values = [_number(address, [a]) or 0.0 for a in args]
        value: float | tuple[float, ...] = values[0] if len(values) == 1 else tuple(values)
        return Command(Action.PARAM, value, name=rest[0], key=rest[1], source=src)
    raise OscError(f"{address}: unknown address (see docs/osc.md)")
