"""Pass-size expressions."""

from __future__ import annotations

import pytest

from engine.shaders.expr import ExprError, evaluate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$WIDTH/2.0", 640.0),
        ("floor($WIDTH/3)", 426.0),
        ("max($HEIGHT*0.25, 8.0)", 180.0),
        ("$WIDTH * $scale", 320.0),
        ("-2 + 3 ** 2", 7.0),
        ("$WIDTH > 1000 if 1 else 0", 1.0),
    ],
)
def test_expressions(text: str, expected: float) -> None:
    """ISF size expressions with $variables and math functions."""
    assert evaluate(text, {"WIDTH": 1280, "HEIGHT": 720, "scale": 0.25}) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("__import__('os')", "not allowed"),
        ("$WIDTH.real", "not allowed"),
        ("$NOPE * 2", "unknown name 'NOPE'"),
        ("1/0", "division by zero"),
        ("$WIDTH +", "cannot read"),
    ],
)
def test_unsafe_or_bad_expressions_are_refused(text: str, match: str) -> None:
    """Anything but arithmetic on numbers is an ExprError."""
    with pytest.raises(ExprError, match=match):
        evaluate(text, {"WIDTH": 100})
