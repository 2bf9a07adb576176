"""The exception tree drawn in engine/errors.py is the one in the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import engine.errors

ENGINE = Path(engine.errors.__file__).resolve().parent


def defined_errors() -> dict[str, str]:
    """Every exception class in engine/: its name → the name of the base it derives from."""
    found: dict[str, str] = {}
    for file in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.bases:
                base = node.bases[0]
                name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
                if name.endswith(("Error", "Exception")) or name in found:
                    found[node.name] = name
    return found


def drawn_tree() -> dict[str, str]:
    """The tree in errors.py's docstring: each class → its parent, read from the indentation."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in (engine.errors.__doc__ or "").splitlines():
        m = re.match(r"^(\s*(?:[│ ]\s*)*)(?:[├└]── )?([A-Z]\w+)\s{2,}", line)
        if not m:
            continue
        depth = m.start(2)  # the column of the name: a child's is further right than its parent's
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[m.group(2)] = stack[-1][1]
        stack.append((depth, m.group(2)))
    return parents


def test_every_engine_error_is_drawn_under_its_parent() -> None:
    """A class deriving from EngineError (directly or not) appears in the drawing, under its real base."""
    code = defined_errors()

    def in_tree(name: str) -> bool:
        while name in code:
            if code[name] == "EngineError":
                return True
            name = code[name]
        return False

    wanted = {name: base for name, base in code.items() if in_tree(name)}
    assert wanted == drawn_tree()


def test_the_signals_outside_the_tree_are_named() -> None:
    """Exceptions that do not derive from EngineError are listed as the module's own signals."""
    doc = engine.errors.__doc__ or ""
    outside = {name for name, base in defined_errors().items() if name not in drawn_tree() and name != "EngineError"}
    assert outside and all(name in doc for name in outside), sorted(n for n in outside if n not in doc)
