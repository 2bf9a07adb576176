"""Live parameter values: checked when set, kept across reloads."""

from __future__ import annotations

import pytest

from engine.shaders.params import ParamError, ParamStore
from engine.shaders.source import Input, InputType

LEVEL = Input("level", InputType.FLOAT, 0.5, 0.0, 1.0)
MODE = Input("mode", InputType.LONG, 1, values=(0, 1, 2))
TINT = Input("tint", InputType.COLOR, (1.0, 0.0, 0.0, 1.0))
SPOT = Input("spot", InputType.POINT2D, (0.5, 0.5), (0.0, 0.0), (1.0, 1.0))
KICK = Input("kick", InputType.EVENT)
FLAG = Input("flag", InputType.BOOL, False)


def store(*inputs: Input) -> ParamStore:
    s = ParamStore()
    s.adapt(inputs)
    return s


def test_defaults_after_adapt() -> None:
    """A new shader starts at its defaults."""
    assert store(LEVEL, MODE, TINT).values() == {"level": 0.5, "mode": 1, "tint": (1.0, 0.0, 0.0, 1.0)}


@pytest.mark.parametrize(
    ("inp", "value", "expected"),
    [
        (LEVEL, 2.0, 1.0), (LEVEL, -1, 0.0), (MODE, 2.2, 2), (TINT, [0.2, 0.4, 0.6], (0.2, 0.4, 0.6, 1.0)),
        (TINT, (2.0, 0.0, 0.0, 1.0), (1.0, 0.0, 0.0, 1.0)), (SPOT, (1.5, -0.5), (1.0, 0.0)), (FLAG, 1.0, True),
    ],
)
def test_values_are_fitted_to_the_input(inp: Input, value: object, expected: object) -> None:
    """Numbers are clamped to MIN/MAX, colours to 0..1, a 3-component colour gets alpha 1."""
    s = store(inp)
    assert s.set(inp.name, value) == expected


@pytest.mark.parametrize(
    ("inp", "value", "match"),
    [
        (LEVEL, "loud", "level: expected a number"), (LEVEL, float("nan"), "expected a number"),
        (MODE, 5, "5 is not one of 0, 1, 2"), (TINT, [1, 2], "expected 4 numbers"), (FLAG, "yes", "true or false"),
    ],
)
def test_bad_values_are_refused_with_the_name(inp: Input, value: object, match: str) -> None:
    """A value the input cannot take is a ParamError saying which and why."""
    with pytest.raises(ParamError, match=match):
        store(inp).set(inp.name, value)


def test_unknown_parameter_lists_the_real_ones() -> None:
    """Setting a name the shader lacks says which names exist."""
    with pytest.raises(ParamError, match=r"no parameter 'lvl' \(parameters: level\)"):
        store(LEVEL).set("lvl", 1.0)


def test_events_fire_for_one_frame() -> None:
    """An event is true in the next frame's values only."""
    s = store(KICK)
    s.set("kick", True)
    assert s.frame_values()["kick"] is True
    assert s.frame_values()["kick"] is False


def test_values_survive_a_reload_and_are_clamped_to_the_new_range() -> None:
    """Re-adapting to a changed file keeps values, refitted to the new MIN/MAX."""
    s = store(LEVEL, MODE)
    s.set("level", 0.9)
    s.set("mode", 2)
    s.adapt([Input("level", InputType.FLOAT, 0.1, 0.0, 0.5), MODE])
    assert s.values() == {"level": 0.5, "mode": 2}


def test_changed_type_falls_back_to_the_new_default() -> None:
    """A value that cannot fit the new type is replaced by the new default."""
    s = store(TINT)
    s.adapt([Input("tint", InputType.LONG, 2, values=(1, 2))])
    assert s.get("tint") == 2
