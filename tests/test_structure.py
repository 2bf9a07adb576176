"""The engine's shape: no import circles, no module past 600 lines (read from the source, with ast)."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"
MAX_LINES = 600


def modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the engine package."""
    found = {}
    for file in ENGINE.rglob("*.py"):
        parts = list(file.relative_to(ENGINE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = file
    return found


def imports_of(name: str, file: Path, known: set[str]) -> set[str]:
    """Engine modules this module imports anywhere: at the top, in functions, under TYPE_CHECKING.

    ``from pkg import x`` counts as importing ``pkg.x`` when that is a module, else ``pkg`` itself.
    """
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    out.add(sub)
                elif base in known:
                    out.add(base)
    out.discard(name)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_walker_finds_a_circle() -> None:
    """The cycle finder itself: a → b → c → a is one circle, d alone is none."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_walker_sees_imports_inside_functions(tmp_path: Path) -> None:
    """An import in a function body or under TYPE_CHECKING counts like one at the top."""
    src = tmp_path / "m.py"
    src.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import engine.x\n"
                   "def f():\n    from engine import y\n")
    assert imports_of("engine.m", src, {"engine.x", "engine.y", "engine.m"}) == {"engine.x", "engine.y"}


def test_no_import_circles_in_the_engine() -> None:
    """Every import in engine/ points one way: no module reaches itself through others."""
    mods = modules()
    known = set(mods)
    graph = {name: imports_of(name, file, known) for name, file in mods.items()}
    assert cycles(graph) == []


def test_no_engine_module_is_over_600_lines() -> None:
    """A module holds one job; past 600 lines it holds more than one."""
    too_long = {name: n for name, file in modules().items()
                if (n := len(file.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert too_long == {}
