"""Live parameter values of one shader, kept across reloads of its file.

Values are checked against the shader's INPUTS when set, and re-fitted when the
file changes: a value the VJ set survives as long as its input does with the
same type, clamped into the new range; a removed input takes its value with it
and a changed type (or a value the new input cannot take) falls back to the new
default. A value the VJ never set follows the file's DEFAULT, so editing the
default in the file shows on the next save.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from engine.errors import EngineError
from engine.shaders.source import VECTOR_SIZE, Input, InputType, Value


class ParamError(EngineError):
    """A parameter value that the shader's input does not accept."""


def _clamp(v: float, lo: Value | None, hi: Value | None) -> float:
    if isinstance(lo, int | float):
        v = max(float(lo), v)
    if isinstance(hi, int | float):
        v = min(float(hi), v)
    return v


def coerce_value(inp: Input, value: object) -> Value:
    """``value`` made fit for ``inp``, or ParamError naming the input and what it takes."""
    t = inp.type
    if t is InputType.FLOAT:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise ParamError(f"{inp.name}: expected a number, got {value!r}")
        return _clamp(float(value), inp.min, inp.max)
    if t in (InputType.BOOL, InputType.EVENT):
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return value >= 0.5
        raise ParamError(f"{inp.name}: expected true or false, got {value!r}")
    if t in (InputType.LONG, InputType.INT):
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise ParamError(f"{inp.name}: expected an integer, got {value!r}")
        v = round(value)
        if inp.values:
            if v not in inp.values:
                allowed = ", ".join(str(x) for x in inp.values)
                raise ParamError(f"{inp.name}: {v} is not one of {allowed}")
            return v
        return round(_clamp(v, inp.min, inp.max))
    if t in VECTOR_SIZE:
        n = VECTOR_SIZE[t]
        if not isinstance(value, list | tuple) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and x == x for x in value
        ):
            raise ParamError(f"{inp.name}: expected {n} numbers, got {value!r}")
        items = [float(x) for x in value]
        if t is InputType.COLOR and len(items) == 3:
            items.append(1.0)
        if len(items) != n:
            raise ParamError(f"{inp.name}: expected {n} numbers, got {len(items)}")
        if t is InputType.COLOR:
            return tuple(min(1.0, max(0.0, x)) for x in items)
        if t is InputType.IVEC2:
            return tuple(float(round(x)) for x in items)
        lo, hi = inp.min, inp.max
        if isinstance(lo, tuple) and isinstance(hi, tuple):
            return tuple(min(h, max(low, x)) for x, low, h in zip(items, lo, hi, strict=False))
        return tuple(items)
    raise ParamError(f"{inp.name}: images are not parameters")


class ParamStore:
    def __init__(self) -> None:
        self._values: dict[str, Value] = {}
        self._inputs: dict[str, Input] = {}
        self._fired: set[str] = set()
        self._set: set[str] = set()  # names the VJ has set: only these outlive a change of DEFAULT

    def fitted(self, inputs: Iterable[Input]) -> dict[str, Value]:
        """The values this store would hold for ``inputs``, without changing it (a reload checks them first)."""
        out: dict[str, Value] = {}
        for inp in inputs:
            if inp.is_param:
                kept = self._kept(inp)
                out[inp.name] = _default(inp) if kept is None else kept
        return out

    def _kept(self, inp: Input) -> Value | None:
        """The VJ's value refitted to ``inp`` (its new range), or None: never set, new type, or not allowed now."""
        old_input = self._inputs.get(inp.name)
        if inp.name not in self._set or old_input is None or old_input.type is not inp.type:
            return None
        try:
            return coerce_value(inp, self._values.get(inp.name))
        except ParamError:  # e.g. a LONG whose value is no longer one of its VALUES
            return None

    def adapt(self, inputs: Iterable[Input]) -> None:
        """Fit stored values to a (re)loaded shader's inputs; values of removed inputs are dropped."""
        new_inputs = {i.name: i for i in inputs if i.is_param}
        values = self.fitted(new_inputs.values())
        self._set = {n for n, i in new_inputs.items() if self._kept(i) is not None}
        self._values, self._inputs = values, new_inputs
        self._fired &= {n for n, i in new_inputs.items() if i.type is InputType.EVENT}

    def set(self, name: str, value: object) -> Value:
        """Set one parameter; an event fires for the next frame only."""
        inp = self._inputs.get(name)
        if inp is None:
            known = ", ".join(self._inputs) or "none"
            raise ParamError(f"no parameter {name!r} (parameters: {known})")
        v = coerce_value(inp, value)
        if inp.type is InputType.EVENT:
            if v:
                self._fired.add(name)
            return v
        self._values[name] = v
        self._set.add(name)
        return v

    def get(self, name: str) -> Value | None:
        return self._values.get(name)

    def values(self) -> Mapping[str, Value]:
        return dict(self._values)

    def frame_values(self) -> dict[str, Value]:
        """Values for this frame: events that fired are true once, then reset."""
        out = dict(self._values)
        for name in self._inputs:
            if self._inputs[name].type is InputType.EVENT:
                out[name] = name in self._fired
        self._fired.clear()
        return out


def _default(inp: Input) -> Value:
    """The input's default, made valid (a published file's default may sit outside its own range)."""
    if inp.type is InputType.EVENT:
        return False
    if inp.default is not None:
        try:
            return coerce_value(inp, inp.default)
        except ParamError:
            pass
    if inp.values:
        return inp.values[0]
    if inp.type in VECTOR_SIZE:
        return (0.0,) * VECTOR_SIZE[inp.type]
    if inp.type is InputType.BOOL:
        return False
    return 0 if inp.type in (InputType.LONG, InputType.INT) else 0.0
