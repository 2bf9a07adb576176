"""GLSL text read without a compiler: comments, file scope, declarations, function bodies.

Just enough of GLSL's shape for the translator's decisions (which names a file declares
itself, where each function's body is), not a parser. Everything works on offsets into the
text as given: comments and preprocessor lines are blanked with spaces, never removed, so a
caller that finds something here can rewrite the original text in place, on the same lines.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_DIRECTIVE = re.compile(r"^[ \t]*#[^\n]*", re.MULTILINE)

_TYPES = (
    r"(?:float|int|uint|bool|[iub]?vec[234]|mat[234](?:x[234])?|"
    r"[iu]?sampler(?:1D|2D|3D|Cube|2DRect|1DArray|2DArray|Buffer|2DMS)(?:Shadow)?)"
)
# Qualifiers a declaration may open with, in any order.
_QUALIFIERS = (
    r"(?:(?:const|uniform|in|out|inout|varying|attribute|flat|smooth|noperspective|centroid|"
    r"invariant|lowp|mediump|highp)\s+)*"
)
_DECLARATION = re.compile(rf"\b{_QUALIFIERS}{_TYPES}\s+([A-Za-z_]\w*)\s*(?=[;=\[,])")
_FUNCTION = re.compile(rf"\b(?:(?:lowp|mediump|highp)\s+)?({_TYPES}|void)\s+([A-Za-z_]\w*)\s*\(")


def code_only(text: str) -> str:
    """The text with comments and preprocessor lines blanked by spaces: same length, same lines."""
    def blank(m: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", m.group(0))

    return _DIRECTIVE.sub(blank, _COMMENT.sub(blank, text))


class Scopes:
    """Nesting depth of braces (or of other brackets) at any offset of a text passed through ``code_only``."""

    def __init__(self, code: str, brackets: str = "{}") -> None:
        self._at: list[int] = []
        self._depth: list[int] = []
        depth = 0
        for m in re.finditer(f"[{re.escape(brackets)}]", code):
            depth += 1 if m.group(0) == brackets[0] else -1
            self._at.append(m.start())
            self._depth.append(depth)

    def depth(self, offset: int) -> int:
        i = bisect.bisect_left(self._at, offset)
        return self._depth[i - 1] if i else 0


def file_scope_names(text: str, uniforms_only: bool = False) -> set[str]:
    """Every name the text declares outside functions: uniforms, ins and outs, constants, globals.

    ``float a = 1.0, b;`` declares both names; a function's locals and parameters are not here.
    ``uniforms_only``: only the uniforms (which, unlike the rest, the two stages share).
    """
    code = code_only(text)
    scopes, parens = Scopes(code), Scopes(code, "()")
    names: set[str] = set()
    for m in _DECLARATION.finditer(code):
        if scopes.depth(m.start()) != 0 or parens.depth(m.start()) != 0:
            continue  # a local, or a function's parameter
        if uniforms_only and re.search(r"\buniform\b", m.group(0)) is None:
            continue
        names.add(m.group(1))
        names.update(_more_declarators(code, m.end()))
    return names


def _more_declarators(code: str, start: int) -> list[str]:
    """The names after top-level commas of one declaration, up to its semicolon."""
    out: list[str] = []
    depth = 0
    i = start
    while i < len(code) and code[i] != ";":
        c = code[i]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "," and depth == 0:
            m = re.match(r"\s*([A-Za-z_]\w*)", code[i + 1 :])
            if m:
                out.append(m.group(1))
        elif c in "{}":
            break
        i += 1
    return out


@dataclass(frozen=True)
class Function:
    """A function definition: its return type, name and the offsets of its body's braces."""

    returns: str
    name: str
    open: int  # offset of "{"
    close: int  # offset of the matching "}"


def functions(code: str) -> Iterator[Function]:
    """Function definitions (not prototypes) at file scope, in a text passed through ``code_only``."""
    scopes = Scopes(code)
    for m in _FUNCTION.finditer(code):
        if scopes.depth(m.start()) != 0:
            continue
        close_paren = _matching(code, m.end() - 1, "(", ")")
        if close_paren < 0:
            continue
        brace = re.match(r"\s*\{", code[close_paren + 1 :])
        if brace is None:
            continue  # a prototype, or not a function at all
        open_at = close_paren + brace.end()
        close = _matching(code, open_at, "{", "}")
        if close >= 0:
            yield Function(m.group(1), m.group(2), open_at, close)


def _matching(code: str, at: int, opening: str, closing: str) -> int:
    """The offset of the bracket closing the one at ``at``, or -1."""
    depth = 0
    for i in range(at, len(code)):
        if code[i] == opening:
            depth += 1
        elif code[i] == closing:
            depth -= 1
            if depth == 0:
                return i
    return -1


def defines_function(text: str, name: str) -> bool:
    """Whether the text defines a function of this name (so a prelude must not define it again)."""
    return any(f.name == name for f in functions(code_only(text)))


def uses(text: str, name: str) -> bool:
    """Whether the name appears in the code (outside comments and preprocessor lines)."""
    return re.search(rf"\b{re.escape(name)}\b", code_only(text)) is not None


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1
