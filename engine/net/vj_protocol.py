"""The control page's messages, without sockets (the contract is docs/vj-protocol.md).

``parse`` turns one WebSocket frame from the page into a typed request or raises
``VjProtocolError`` with a code the page shows; the ``*_message`` functions build
what the engine sends back. Everything the page sends is checked here, so the
backstage only ever sees well-formed requests.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.commands import Action, Command
from engine.control.midi_map import Control, Target, check_mappable
from engine.net.protocol import ProtocolError
from engine.render.mapping_edits import MOST_VALUES as MAPPING_MOST
from engine.render.mapping_edits import shape_problem as mapping_shape_problem
from engine.scenes.scene import check_name

MAX_REF = 64
MAX_REASON = 200
MAX_VJ_PROMPT = 500
MAX_ID = 80
# PAIR belongs to the show machine's keyboard: a logged-in page has no use for a pairing code.
PAGE_ACTIONS = frozenset(Action) - {Action.QUIT, Action.ESCAPE, Action.FULLSCREEN, Action.PAIR}
# The generation settings the page may change → the config key behind each (validated like config.toml).
SETTINGS: dict[str, str] = {
    **{name: f"generation.{name}" for name in ("width", "height", "aspect_ratio", "cfg_scale", "steps", "samples",
                                               "style_preset", "negative_prompt", "img2img", "strength")},
    "model": "stability.model",
}


class VjProtocolError(ProtocolError):
    """A control page message the engine cannot take; ``code`` is from docs/vj-protocol.md."""


@dataclass(frozen=True)
class CommandReq:
    command: Command
    ref: str | None = None


@dataclass(frozen=True)
class PromptOp:
    """approve, reject, ban, ban_address, remove or move, on one prompt."""

    op: str
    id: str
    reason: str | None = None
    to: int = 0
    ref: str | None = None


@dataclass(frozen=True)
class ReshowReq:
    image: str
    ref: str | None = None


@dataclass(frozen=True)
class VjPromptReq:
    text: str
    ref: str | None = None


@dataclass(frozen=True)
class SettingsReq:
    values: Mapping[str, object] = field(default_factory=dict)
    ref: str | None = None


@dataclass(frozen=True)
class MidiLearnReq:
    target: Target | None
    ref: str | None = None


@dataclass(frozen=True)
class MidiForgetReq:
    control: Control
    ref: str | None = None


@dataclass(frozen=True)
class PreviewReq:
    on: bool
    ref: str | None = None


@dataclass(frozen=True)
class PingReq:
    ref: str | None = None


@dataclass(frozen=True)
class LogoutReq:
    """End this page's login, or with ``everywhere`` every control page's."""

    everywhere: bool = False
    ref: str | None = None


VjRequest = (CommandReq | PromptOp | ReshowReq | VjPromptReq | SettingsReq | MidiLearnReq | MidiForgetReq
             | PreviewReq | PingReq | LogoutReq)


def _ref(data: Mapping[str, Any]) -> str | None:
    ref = data.get("ref")
    if ref is None:
        return None
    if not isinstance(ref, str | int) or isinstance(ref, bool) or len(str(ref)) > MAX_REF:
        raise VjProtocolError("bad_message", f"ref: a string of at most {MAX_REF} characters")
    return str(ref)


def _str(data: Mapping[str, Any], key: str, ref: str | None, limit: int = MAX_ID, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        raise VjProtocolError("bad_message", f"{key}: expected text of 1 to {limit} characters", ref)
    return value


def _number(value: object, what: str, ref: str | None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise VjProtocolError("bad_message", f"{what}: expected a finite number", ref)
    return float(value)


def _value(data: Mapping[str, Any], ref: str | None, most: int = 4,
           least: int = 1) -> float | tuple[float, ...] | None:
    """``most``: the longest list allowed (4 for a colour; a mapping's whole 16x16 mesh is 514), ``least`` the
    shortest (a mapping's ``[]`` removes a mesh or the masks)."""
    value = data.get("value")
    if value is None:
        return None
    if isinstance(value, list):
        if not least <= len(value) <= most:
            raise VjProtocolError("bad_message", f"value: a list of {least} to {most} numbers", ref)
        return tuple(_number(v, "value", ref) for v in value)
    if isinstance(value, bool):
        return float(value)
    return _number(value, "value", ref)


def _command(data: Mapping[str, Any], ref: str | None) -> Command:
    raw = data.get("action")
    try:
        action = Action(str(raw))
    except ValueError:
        raise VjProtocolError("bad_message", f"action: unknown action {str(raw)[:40]!r}", ref) from None
    if action not in PAGE_ACTIONS:
        raise VjProtocolError("not_allowed", f"{action.value} is not available from the control page", ref)
    slot = data.get("slot", 0)
    if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot <= 2:
        raise VjProtocolError("bad_message", "slot: 0, 1 or 2", ref)
    name = _str(data, "name", ref, required=False)
    key = _str(data, "key", ref, required=False)
    mapping = action is Action.MAPPING
    value = _value(data, ref, MAPPING_MOST, 0) if mapping else _value(data, ref)
    if action is Action.PARAM and (not name or not key or value is None):
        raise VjProtocolError("bad_message", "param needs name (shader), key (input) and value", ref)
    if mapping:
        values = value if isinstance(value, tuple) else () if value is None else (value,)
        problem = mapping_shape_problem(key, values)
        if problem is not None:
            raise VjProtocolError("bad_message", f"mapping {key[:40]}: {problem}" if key else f"mapping: {problem}",
                                  ref)
    if action in (Action.SCENE_SAVE, Action.SCENE_DELETE):
        try:
            name = check_name(name)
        except ValueError as err:
            raise VjProtocolError("bad_message", f"name: {err}", ref) from None
    if action is Action.SCENE and not name and value is None:
        raise VjProtocolError("bad_message", "scene needs name (the scene) or value (its number)", ref)
    return Command(action, value, source="vj", name=name, key=key, slot=slot)


def _target(raw: object, ref: str | None) -> Target | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise VjProtocolError("bad_message", "target: an object or null", ref)
    action = raw.get("action")
    if action == Action.PARAM.value:
        return Target(action, _str(raw, "shader", ref), _str(raw, "param", ref))
    if action == Action.SCENE.value:
        return Target(action, name=_str(raw, "name", ref))
    target = Target(str(action)[:40])
    try:
        check_mappable(target)
    except ValueError as err:
        raise VjProtocolError("bad_message", f"target.action: {err}", ref) from None
    return target


def _control(raw: object, ref: str | None) -> Control:
    if not isinstance(raw, dict) or raw.get("kind") not in ("cc", "note"):
        raise VjProtocolError("bad_message", "control: {kind: cc|note, channel, number}", ref)
    channel, number = raw.get("channel"), raw.get("number")
    if not isinstance(channel, int) or not isinstance(number, int) or not 0 <= channel <= 15 \
            or not 0 <= number <= 127:
        raise VjProtocolError("bad_message", "control: channel 0..15 and number 0..127", ref)
    return Control(str(raw["kind"]), channel, number)


def parse(frame: str | bytes) -> VjRequest:
    """One frame from the page → a request; ``VjProtocolError`` says what is wrong with it."""
    if isinstance(frame, bytes):
        raise VjProtocolError("bad_message", "send JSON text frames")
    try:
        data = json.loads(frame)
    except ValueError:
        raise VjProtocolError("bad_json", "not valid JSON") from None
    if not isinstance(data, dict):
        raise VjProtocolError("bad_message", "expected a JSON object with a type")
    ref = _ref(data)
    kind = data.get("type")
    if kind == "command":
        return CommandReq(_command(data, ref), ref)
    if kind in ("approve", "ban", "ban_address", "remove"):
        return PromptOp(kind, _str(data, "id", ref), ref=ref)
    if kind == "reject":
        reason = _str(data, "reason", ref, MAX_REASON, required=False).strip() or None
        return PromptOp(kind, _str(data, "id", ref), reason=reason, ref=ref)
    if kind == "move":
        to = data.get("to")
        if isinstance(to, bool) or not isinstance(to, int) or to < 0:
            raise VjProtocolError("bad_message", "to: a place in the line, 0 or more", ref)
        return PromptOp(kind, _str(data, "id", ref), to=to, ref=ref)
    if kind == "reshow":
        return ReshowReq(_str(data, "image", ref), ref)
    if kind == "prompt":
        return VjPromptReq(_str(data, "text", ref, MAX_VJ_PROMPT).strip(), ref)
    if kind == "settings":
        values = data.get("values")
        if not isinstance(values, dict) or not values:
            raise VjProtocolError("bad_message", "values: an object of settings to change", ref)
        unknown = sorted(set(values) - set(SETTINGS))
        if unknown:
            raise VjProtocolError("bad_message", f"unknown setting {unknown[0][:40]!r} (known: {', '.join(SETTINGS)})",
                                  ref)
        return SettingsReq(dict(values), ref)
    if kind == "midi_learn":
        return MidiLearnReq(_target(data.get("target"), ref), ref)
    if kind == "midi_forget":
        return MidiForgetReq(_control(data.get("control"), ref), ref)
    if kind == "preview":
        return PreviewReq(bool(data.get("on", True)), ref)
    if kind == "ping":
        return PingReq(ref)
    if kind == "logout":
        everywhere = data.get("everywhere", False)
        if not isinstance(everywhere, bool):
            raise VjProtocolError("bad_message", "everywhere: true or false", ref)
        return LogoutReq(everywhere, ref)
    raise VjProtocolError("unknown_type", f"unknown message type {str(kind)[:40]!r}", ref)


# --- engine → page ------------------------------------------------------------------------
def message(kind: str, **fields: object) -> str:
    """One JSON message; a NaN or infinity (which browsers cannot parse) becomes null."""
    data = {"type": kind, **fields}
    try:
        return json.dumps(data, separators=(",", ":"), default=_jsonable, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(data), separators=(",", ":"), default=_jsonable, allow_nan=False)


def _jsonable(value: object) -> object:
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return str(value)


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def ack(ref: str | None, **fields: object) -> str:
    return message("ack", ref=ref, **fields)


def error(code: str, text: str, ref: str | None = None) -> str:
    return message("error", code=code, message=text, ref=ref)

