"""A scene: a whole look, kept as a plain TOML file the VJ can edit, copy and share.

A scene holds the effect chain, every parameter of the shaders in it and of the transition, the
transition and its duration, how images fit the screen, the overlay (QR mode, HUD), the dream layer's
mix where the dream runs, and the generation style preset. A file the show writes has every key; in a
file written by hand any key may be left out, and that part of the look then stays as it is::

    effects = ["kaleidoscope", "pixelate"]
    transition = "crossfade"
    transition_seconds = 1.5
    fit = "cover"
    dream_mix = 0.25
    style_preset = "neon-punk"

    [overlay]
    qr = "idle"
    hud = false

    [params.kaleidoscope]
    segments = 8.0
    center = [0.5, 0.5]

Reading is two steps, so each runs where it belongs: ``parse_scene`` checks the TOML and the shape of
every value without knowing a shader (the watcher thread does it), ``check_scene`` checks names, types
and ranges against the shader library as it is now (on the render thread, where the library lives).
Both raise ``ConfigError`` naming the file and the key; a value out of range is an error, not clamped,
so a typo never becomes a different look without a word.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from engine.errors import ConfigError
from engine.shaders.params import ParamError, coerce_value
from engine.shaders.source import VECTOR_SIZE, Input, InputType, Value

SUFFIX = ".toml"
FITS = ("letterbox", "cover")
QR_MODES = ("always", "idle", "off")
MAX_NAME = 40
MAX_EFFECTS = 3
MAX_SECONDS = 60.0  # as [show] transition
MAX_STYLE = 80
TOP_KEYS = ("effects", "transition", "transition_seconds", "fit", "dream_mix", "style_preset", "overlay", "params")
OVERLAY_KEYS = ("qr", "hud")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Scene:
    """A look. ``None`` (and a shader missing from ``params``) means: leave that part as it is."""

    effects: tuple[str, ...] | None = None
    transition: str | None = None
    transition_seconds: float | None = None
    fit: str | None = None
    qr: str | None = None
    hud: bool | None = None
    dream_mix: float | None = None
    style_preset: str | None = None  # "" = no preset
    params: Mapping[str, Mapping[str, Value]] = field(default_factory=dict)  # shader → input → value


@dataclass(frozen=True)
class SceneCatalog:
    """What a scene is checked against: the library's usable shaders and each one's parameters."""

    effects: frozenset[str] = frozenset()
    transitions: frozenset[str] = frozenset({"crossfade"})
    inputs: Mapping[str, Mapping[str, Input]] = field(default_factory=dict)  # shader → parameter inputs


def problem(file: str, key: str, message: str) -> ConfigError:
    """One error naming the file and the key (``params.glow.amount``), as config errors do."""
    return ConfigError(f"{file}: {key}" if key else file, message)


def check_name(name: str) -> str:
    """A scene name fit for a file name and an OSC address, or ValueError saying what is allowed."""
    name = name.strip()
    ok = 0 < len(name) <= MAX_NAME and all(c.isalnum() or c in " _-" for c in name) and name[0] not in " -"
    if not ok:
        raise ValueError(f"scene name {name[:MAX_NAME]!r}: 1 to {MAX_NAME} letters, digits, spaces, _ or -")
    return name


# --- reading: the shape -------------------------------------------------------------------------
def parse_scene(text: str, file: str) -> Scene:
    """TOML text → a Scene, with every value of the right shape; ConfigError naming the file and key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise problem(file, "", f"not valid TOML: {err}") from None
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise problem(file, unknown[0], f"unknown key (scene keys: {', '.join(TOP_KEYS)})")
    effects = data.get("effects")
    if effects is not None:
        if not isinstance(effects, list) or not all(isinstance(e, str) for e in effects):
            raise problem(file, "effects", "expected a list of effect names")
        if len(effects) > MAX_EFFECTS:
            raise problem(file, "effects", f"at most {MAX_EFFECTS} effects, got {len(effects)}")
        if len(set(effects)) != len(effects):
            raise problem(file, "effects", "an effect is listed twice")
    overlay = data.get("overlay", {})
    if not isinstance(overlay, dict):
        raise problem(file, "overlay", "expected a table ([overlay] with qr and hud)")
    extra = sorted(set(overlay) - set(OVERLAY_KEYS))
    if extra:
        raise problem(file, f"overlay.{extra[0]}", "unknown key (overlay keys: qr, hud)")
    seconds = _number(data, "transition_seconds", file, 0.0, MAX_SECONDS)
    mix = _number(data, "dream_mix", file, 0.0, 1.0)
    style = _text(data, "style_preset", file)
    if style is not None and len(style) > MAX_STYLE:
        raise problem(file, "style_preset", f"at most {MAX_STYLE} characters")
    hud = overlay.get("hud")
    if hud is not None and not isinstance(hud, bool):
        raise problem(file, "overlay.hud", f"expected true or false, got {hud!r}")
    return Scene(
        effects=tuple(effects) if effects is not None else None,
        transition=_text(data, "transition", file),
        transition_seconds=seconds,
        fit=_choice(data, "fit", file, FITS),
        qr=_choice(overlay, "qr", file, QR_MODES, "overlay."),
        hud=hud,
        dream_mix=mix,
        style_preset=style,
        params=_params(data.get("params", {}), file),
    )


def _text(data: Mapping[str, Any], key: str, file: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise problem(file, key, f"expected text, got {value!r}")
    return value


def _choice(data: Mapping[str, Any], key: str, file: str, allowed: tuple[str, ...], prefix: str = "") -> str | None:
    value = data.get(key)
    if value is not None and value not in allowed:
        raise problem(file, prefix + key, f"expected one of {', '.join(allowed)}, got {value!r}")
    return value


def _number(data: Mapping[str, Any], key: str, file: str, low: float, high: float) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise problem(file, key, f"expected a number, got {value!r}")
    if not low <= value <= high:
        raise problem(file, key, f"{value:g} is out of range {low:g} to {high:g}")
    return float(value)


def _params(raw: object, file: str) -> dict[str, dict[str, Value]]:
    if not isinstance(raw, dict):
        raise problem(file, "params", "expected tables: [params.<shader>] with <parameter> = value")
    out: dict[str, dict[str, Value]] = {}
    for shader, values in raw.items():
        if not isinstance(values, dict):
            raise problem(file, f"params.{shader}", "expected a table of <parameter> = value")
        out[shader] = {key: _shaped(value, file, f"params.{shader}.{key}") for key, value in values.items()}
    return out


def _shaped(value: object, file: str, key: str) -> Value:
    """A parameter value as TOML gave it: true/false, a number, or a list of 2 to 4 numbers."""
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, list) and 2 <= len(value) <= 4 and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return tuple(float(v) for v in value)
    raise problem(file, key, f"expected true/false, a number or a list of 2 to 4 numbers, got {value!r}")


# --- checking: the names and ranges -------------------------------------------------------------
def check_scene(scene: Scene, catalog: SceneCatalog, file: str) -> Scene:
    """The scene with every name known and every value in its input's type and range, values made
    exact for their input (a colour of 3 gains its alpha); ConfigError naming the file and key."""
    for i, name in enumerate(scene.effects or ()):
        if name not in catalog.effects:
            raise problem(file, f"effects[{i}]", f"no effect named {name!r} in the shader library")
    if scene.transition is not None and scene.transition not in catalog.transitions:
        raise problem(file, "transition", f"no transition named {scene.transition!r}")
    params: dict[str, dict[str, Value]] = {}
    for shader, values in scene.params.items():
        inputs = catalog.inputs.get(shader)
        if inputs is None:
            raise problem(file, f"params.{shader}", f"no shader named {shader!r} in the shader library")
        params[shader] = {}
        for key, value in values.items():
            inp = inputs.get(key)
            where = f"params.{shader}.{key}"
            if inp is None:
                raise problem(file, where, f"no parameter {key!r} (parameters: {', '.join(inputs) or 'none'})")
            params[shader][key] = check_value(inp, value, file, where)
    return replace(scene, params=params)


def check_value(inp: Input, value: Value, file: str, key: str) -> Value:
    """``value`` if ``inp`` takes it as it is (type and range, no clamping), made exact for it."""
    t = inp.type
    if t is InputType.EVENT:
        raise problem(file, key, "an event: it fires, it has no value to keep in a scene")
    if t is InputType.FLOAT:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise problem(file, key, f"expected a number, got {_shown(value)}")
        _in_range(float(value), inp.min, inp.max, file, key)
    elif t is InputType.BOOL:
        if not isinstance(value, bool):
            raise problem(file, key, f"expected true or false, got {_shown(value)}")
    elif t in (InputType.LONG, InputType.INT):
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise problem(file, key, f"expected a whole number, got {_shown(value)}")
        if inp.values:
            if int(value) not in inp.values:
                raise problem(file, key, f"{int(value)} is not one of {', '.join(str(v) for v in inp.values)}")
        else:
            _in_range(float(value), inp.min, inp.max, file, key)
    elif t in VECTOR_SIZE:
        n = VECTOR_SIZE[t]
        sizes = (3, 4) if t is InputType.COLOR else (n,)
        if not isinstance(value, tuple) or len(value) not in sizes:
            raise problem(file, key, f"expected a list of {' or '.join(map(str, sizes))} numbers, got {_shown(value)}")
        for i, x in enumerate(value):
            lo = 0.0 if t is InputType.COLOR else inp.min[i] if isinstance(inp.min, tuple) else None
            hi = 1.0 if t is InputType.COLOR else inp.max[i] if isinstance(inp.max, tuple) else None
            _in_range(x, lo, hi, file, f"{key}[{i}]")
    else:
        raise problem(file, key, f"a {t.value} input is not a parameter")
    try:
        return coerce_value(inp, list(value) if isinstance(value, tuple) else value)
    except ParamError as err:
        raise problem(file, key, str(err)) from None


def _in_range(v: float, lo: Value | None, hi: Value | None, file: str, key: str) -> None:
    low = float(lo) if isinstance(lo, int | float) else -math.inf
    high = float(hi) if isinstance(hi, int | float) else math.inf
    if not low <= v <= high:
        raise problem(file, key, f"{v:g} is out of range {low:g} to {high:g}")


def _shown(value: Value) -> str:
    return json.dumps(list(value)) if isinstance(value, tuple) else json.dumps(value)


# --- writing --------------------------------------------------------------------------------------
def dump_scene(scene: Scene, name: str) -> str:
    """The scene as a TOML file a person can read and edit; ``parse_scene`` reads it back the same."""
    lines = [f"# Stagecraft scene {_string(name)}: a whole look. Edit it freely: the show reloads it when saved.",
             "# Recall: the VJ page, a MIDI note (learn), OSC /engine/scene/<name or number>, Shift+1..9."]
    if scene.effects is not None:
        lines.append(f"effects = [{', '.join(_string(e) for e in scene.effects)}]")
    if scene.transition is not None:
        lines.append(f"transition = {_string(scene.transition)}")
    if scene.transition_seconds is not None:
        lines.append(f"transition_seconds = {_number_text(scene.transition_seconds)}")
    if scene.fit is not None:
        lines.append(f"fit = {_string(scene.fit)}  # {' | '.join(FITS)}")
    if scene.dream_mix is not None:
        lines.append(f"dream_mix = {_number_text(scene.dream_mix)}  # the dream layer over the program, 0 = off")
    if scene.style_preset is not None:
        lines.append(f"style_preset = {_string(scene.style_preset)}  # generation style; \"\" = none")
    if scene.qr is not None or scene.hud is not None:
        lines += ["", "[overlay]"]
        if scene.qr is not None:
            lines.append(f"qr = {_string(scene.qr)}  # {' | '.join(QR_MODES)}")
        if scene.hud is not None:
            lines.append(f"hud = {_value_text(scene.hud)}")
    for shader, values in scene.params.items():
        lines += ["", f"[params.{_key(shader)}]"]
        lines += [f"{_key(k)} = {_value_text(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # JSON's escapes are all TOML basic-string escapes


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _number_text(v: float) -> str:
    text = repr(float(f"{v:.9g}"))  # 0.30000000000000004 → 0.3: slider noise out of the file
    return text if any(c in text for c in ".en") else text + ".0"


def _value_text(v: Value) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, tuple):
        return "[" + ", ".join(_number_text(x) for x in v) + "]"
    return _number_text(v)
