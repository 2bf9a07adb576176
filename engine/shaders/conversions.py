"""Conversions that lax GLSL compilers make silently and Mesa's strict GLSL 3.30 refuses, made explicit.

What Mesa refuses was found by compiling small cases with ``#version 330`` on Mesa 22.3
(llvmpipe), the driver of the test machines. Refused, and rewritten here:

- a ``return`` of another type than the function's: ``float f() { return 1; }``, and the same
  with an int variable or an int ternary (3.30 converts int to float in assignments, arguments
  and operators, but not in a return; GLSL 4.00 added that), and likewise in a function
  returning uint;
- an int where a uint is needed: ``uint u = 1;``, ``u = i;``, ``u == 0``, ``u & 255``, ``u + 1``
  (the int → uint conversion came only in GLSL 4.00).

Accepted by Mesa in 3.30, so left alone: int literals in float built-ins and constructors
(``pow(x, 2)``, ``clamp(x, 0, 1)``, ``mix(a, b, 0)``, ``smoothstep(0, 1, x)``, ``vec2(1, 2)``),
``float x = 1;``, ``x += 1``, mixed arithmetic (``x * 2``) and mixed comparisons (``x > 1``,
``i < f``). Refused everywhere and left alone: ``vec3 v = 1;``, ``int i = 1.0;``, ``f % 2.0``.
Moving to ``#version 400`` would accept all of the first list, but needs GL 4 and changes which
overload a call picks, so the text is fixed instead.

Only the fragment shader of a file that failed to compile as written goes through here
(``program.compile_program``), so a file that compiles is never changed. Each rewrite also
keeps the meaning of code that compiles already, and converts nothing but an int: a value is
wrapped in ``isf_float(...)`` or ``isf_uint(...)`` (``HELPERS``), overloaded for the target type
(returned as it is) and for int (converted as GLSL 4.00 converts it), so a vec3 returned from a
float function, which no driver accepts, stays an error rather than becoming its ``.x``. A
``const`` initialiser, where no function may be called, only gets the ``u`` of a plain int
literal. Rewrites only insert text on a line, so the driver's line numbers stay the file's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.shaders.glsl import code_only, functions, line_of

# A return of these: `isf_float(...)`/`isf_uint(...)` around the value converts an int like GLSL 4.00 does.
_CONVERTIBLE_RETURNS = ("float", "uint")
_INT_LITERAL = r"(?<![\w.])(?:0[xX][0-9a-fA-F]+|\d+)(?![\w.])"
# After a literal: something that binds no tighter than the operator before it.
_ENDS_OPERAND = r"(?=\s*(?:[;),\]}?:]|[=!<>]=|&&|\|\||\^\^|[<>](?![<>=])|$))"
# Before a literal: the start of an operand.
_STARTS_OPERAND = r"(?:^|(?<=[(,=;?:{!])|(?<=\breturn))"
_UINT_OPERATOR = r"(?:==|!=|<=|>=|<(?![<=])|>(?![>=])|(?:[-+*/%]|&(?!&)|\|(?!\|)|\^(?!\^))=?)"


# Defined before a relaxed fragment body: the only conversions the rewrites may call.
HELPERS = "".join(
    f"{t} isf_{t}({t} x) {{ return x; }}\n{t} isf_{t}({src} x) {{ return {t}(x); }}\n"
    for t, src in (("float", "int"), ("uint", "int"), ("uvec2", "ivec2"), ("uvec3", "ivec3"), ("uvec4", "ivec4"))
)


@dataclass(frozen=True)
class Relaxed:
    text: str
    lines: frozenset[int]  # the lines that were changed (1 = the text's first line)


def relax(text: str) -> Relaxed:
    """The text with the conversions above made explicit, and the lines that changed."""
    code = code_only(text)
    edits = dict.fromkeys(_return_conversions(code) + _uint_conversions(code))  # one edit per place and text
    out = text
    for pos, insert in sorted(edits, key=lambda e: e[0], reverse=True):
        out = out[:pos] + insert + out[pos:]
    return Relaxed(out, frozenset(line_of(text, pos) for pos, _ in edits))


def _return_conversions(code: str) -> list[tuple[int, str]]:
    """``return x;`` → ``return isf_float(x);`` in every function that returns float (or uint)."""
    edits: list[tuple[int, str]] = []
    for f in functions(code):
        if f.returns not in _CONVERTIBLE_RETURNS:
            continue
        for m in re.finditer(r"\breturn\b\s*", code[: f.close]):
            if m.start() > f.open:
                edits += _wrapped(code, m.end(), f.returns)
    return edits


def _uint_conversions(code: str) -> list[tuple[int, str]]:
    """An int made a uint where one is needed: declarations, assignments, operands beside a uint."""
    edits: list[tuple[int, str]] = []
    declaration = r"\b(const\s+)?(?:(?:lowp|mediump|highp)\s+)?(uvec[234]|uint)\s+(?=[A-Za-z_]\w*\s*(?:=(?!=)|,|;))"
    for m in re.finditer(declaration, code):
        edits += _declarator_conversions(code, m.end(), m.group(2), constant=m.group(1) is not None)
    names = set(re.findall(r"\buint\s+([A-Za-z_]\w*)\b(?!\s*[(\[])", code))
    if not names:
        return edits
    alt = "|".join(re.escape(n) for n in sorted(names))
    for m in re.finditer(rf"(?m)(?:^|(?<=[;{{}}]))\s*(?:{alt})\s*=(?!=)\s*", code):
        edits += _wrapped(code, m.end(), "uint")
    for m in re.finditer(rf"(?<![\w.])(?:{alt})\s*{_UINT_OPERATOR}\s*({_INT_LITERAL}){_ENDS_OPERAND}", code):
        edits.append((m.end(1), "u"))
    before_uint = rf"(?m){_STARTS_OPERAND}\s*({_INT_LITERAL})\s*{_UINT_OPERATOR}\s*(?:{alt})\b(?!\s*[.\[(])"
    for m in re.finditer(before_uint, code):
        edits.append((m.end(1), "u"))
    return edits


def _declarator_conversions(code: str, at: int, kind: str, constant: bool) -> list[tuple[int, str]]:
    """``uint a = x, b = y;`` from just after the type: each initialiser wrapped in ``isf_uint(...)``."""
    edits: list[tuple[int, str]] = []
    declarator = re.compile(r"\s*[A-Za-z_]\w*\s*(=(?!=)\s*)?")
    while (m := declarator.match(code, at)) is not None:
        end = m.end()
        if m.group(1):
            value_end = _operand_end(code, end)
            if not constant:
                edits += _wrapped(code, end, kind)
            elif kind == "uint" and re.fullmatch(rf"\s*{_INT_LITERAL}\s*", code[end:value_end]):
                edits.append((end + len(code[end:value_end].rstrip()), "u"))
            end = value_end
        if end >= len(code) or code[end] != ",":
            break
        at = end + 1
    return edits


def _wrapped(code: str, start: int, kind: str) -> list[tuple[int, str]]:
    """Edits putting ``isf_kind(...)`` around the expression that starts at ``start`` (none if it is empty)."""
    end = _operand_end(code, start)
    value = code[start:end]
    if not value.strip() or end >= len(code):
        return []
    return [(start, f"isf_{kind}("), (start + len(value.rstrip()), ")")]


def _operand_end(code: str, start: int) -> int:
    """Where the expression starting at ``start`` ends: its ``,`` or ``;``, or a bracket it did not open."""
    depth = 0
    for i in range(start, len(code)):
        c = code[i]
        if c in "([":
            depth += 1
        elif c in ")]":
            if depth == 0:
                return i
            depth -= 1
        elif c in ",;{}" and depth == 0:
            return i
    return len(code)
