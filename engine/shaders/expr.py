"""ISF pass-size expressions (``"$WIDTH/2.0"``, ``"floor($WIDTH*$scale)"``), evaluated safely.

Only arithmetic, comparisons, ``a ? b : c``-free conditionals and a few math
functions on numbers: the text comes from a file anyone may drop in ``shaders/``.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

_BINOPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_CMPOPS: dict[type, Callable[[float, float], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_FUNCS: dict[str, Callable[..., float]] = {
    "floor": math.floor, "ceil": math.ceil, "round": round, "abs": abs, "sqrt": math.sqrt,
    "min": min, "max": max, "pow": math.pow, "log": math.log, "exp": math.exp,
    "clamp": lambda x, lo, hi: max(lo, min(hi, x)),
}
_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class ExprError(ValueError):
    pass


def evaluate(text: str, variables: Mapping[str, float]) -> float:
    """Evaluate ``text`` with ``$NAME`` taken from ``variables``; ExprError says what is wrong."""
    source = _VAR.sub(lambda m: f"_v_{m.group(1)}", text.strip())
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as err:
        raise ExprError(f"cannot read {text!r}") from err
    env = {f"_v_{k}": float(v) for k, v in variables.items()}
    try:
        return float(_eval(tree.body, env))
    except (ZeroDivisionError, OverflowError, TypeError, ValueError) as err:
        raise ExprError(f"{text!r}: {err}") from err


def _eval(node: ast.AST, env: dict[str, float]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        raise ExprError(f"unknown name {node.id.removeprefix('_v_')!r}")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval(node.left, env), _eval(node.right, env))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _eval(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMPOPS:
        return float(_CMPOPS[type(node.ops[0])](_eval(node.left, env), _eval(node.comparators[0], env)))
    if isinstance(node, ast.IfExp):
        return _eval(node.body, env) if _eval(node.test, env) else _eval(node.orelse, env)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
            and not node.keywords):
        return _FUNCS[node.func.id](*(_eval(a, env) for a in node.args))
    raise ExprError(f"not allowed in a size expression: {ast.dump(node)[:40]}")
