"""gl-transitions files → the same description as ISF, so the community's
transitions drop into ``shaders/`` unchanged.

Such a file defines ``vec4 transition(vec2 uv)``, samples only through
``getFromColor``/``getToColor``, reads ``progress`` and ``ratio``, and declares
its parameters as uniforms with their defaults in a comment:
``uniform float amplitude; // = 1.0`` or ``uniform ivec2 size; // = ivec2(4)``.
The default ends where a note begins (``// = 0.4 ; // if 0.0, ...``), as the
collection's own files write it.

A uniform named like an engine uniform (``uniform float beatPulse;``) with no
default is not a parameter: the engine sets it, as it does in ISF files. With a
default it is the file's own parameter, and the engine leaves it alone.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.errors import ShaderError
from engine.shaders.source import VECTOR_SIZE, Dialect, Input, InputType, Kind, ShaderSource, Value, shader_name
from engine.shaders.translate import ENGINE_UNIFORMS

_UNIFORM = re.compile(
    r"^[ \t]*uniform\s+(?:(?:lowp|mediump|highp)\s+)?(\w+)\s+(\w+)\s*(?:/\*\s*=\s*([^*]*?)\s*\*/)?\s*;"
    r"[ \t]*(?://\s*=\s*(.*?)\s*|//.*|/\*.*)?$",
    re.MULTILINE,
)
# A default in its comment ends where a note starts: `// = 0.4 ; // if 0.0, ...`, `// = 0.4 /* ... */`.
_DEFAULT_END = re.compile(r";|//|/\*")
# The leading literal of a default followed by words: `0.4, the strength`, `vec2(0.5) the centre`.
_LEADING_LITERAL = re.compile(r"\s*(\w+\s*\([^()]*\)|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|true|false)")
_TYPES = {
    "float": InputType.FLOAT, "int": InputType.INT, "bool": InputType.BOOL, "vec2": InputType.VEC2,
    "vec3": InputType.VEC3, "vec4": InputType.VEC4, "ivec2": InputType.IVEC2, "sampler2D": InputType.IMAGE,
}
# Provided by the engine: a file that declares them gets the engine's values.
PROVIDED = frozenset({"progress", "ratio"})


def parse_literal(kind: InputType, text: str) -> Value:
    """A GLSL literal (``0.5``, ``true``, ``vec2(0.0, 1.0)``, ``ivec2(4)``) as a Python value."""
    text = text.strip().rstrip(";").strip()
    if kind is InputType.BOOL:
        if text not in ("true", "false", "1", "0"):
            raise ValueError(f"expected true or false, got {text!r}")
        return text in ("true", "1")
    if kind in VECTOR_SIZE:
        m = re.fullmatch(r"\w+\s*\((.*)\)", text, re.DOTALL)
        parts = [p for p in (m.group(1) if m else text).split(",") if p.strip()]
        nums = [float(p) for p in parts]
        n = VECTOR_SIZE[kind]
        if len(nums) == 1:
            nums = nums * n
        if len(nums) != n:
            raise ValueError(f"expected {n} components, got {len(nums)}")
        return tuple(nums)
    if kind is InputType.INT:
        return int(float(text))
    return float(text)


def _default_text(comment: str) -> str:
    """The default in a uniform's comment, without a note after it."""
    return _DEFAULT_END.split(comment, maxsplit=1)[0].strip()


def _parse_default(kind: InputType, text: str) -> Value:
    """A default literal; words after a complete literal are a note (`0.4, if 0.0 there is no ...`)."""
    try:
        return parse_literal(kind, text)
    except ValueError:
        m = _LEADING_LITERAL.match(text)
        if m is None or m.end() == len(text) or text[m.end()] not in " \t,":
            raise
        return parse_literal(kind, m.group(1))


def _default(kind: InputType) -> Value | None:
    if kind is InputType.BOOL:
        return False
    if kind is InputType.INT:
        return 0
    if kind in VECTOR_SIZE:
        return (0.0,) * VECTOR_SIZE[kind]
    if kind is InputType.FLOAT:
        return 0.0
    return None


def parse_gl_transition(path: Path, text: str) -> ShaderSource:
    """Read a gl-transitions file; raises ShaderError(file, line, message)."""
    inputs: list[Input] = []
    body = text
    for m in _UNIFORM.finditer(text):
        glsl_type, name = m.group(1), m.group(2)
        line = text.count("\n", 0, m.start()) + 1
        if name in PROVIDED:
            # Blank the declaration: the engine declares and sets these.
            body = body[: m.start()] + " " * (m.end() - m.start()) + body[m.end():]
            continue
        default_text = _default_text(m.group(3) or m.group(4) or "")
        if name in ENGINE_UNIFORMS and not default_text:
            continue  # `uniform float beatPulse;`: the engine's live value, as in ISF files
        kind = _TYPES.get(glsl_type)
        if kind is None:
            raise ShaderError(str(path), line, f"uniform {name}: type {glsl_type} is not supported")
        default: Value | None = _default(kind)
        if default_text and kind is not InputType.IMAGE:
            try:
                default = _parse_default(kind, default_text)
            except ValueError as err:
                raise ShaderError(str(path), line, f"uniform {name}: bad default {default_text!r} ({err})") \
                    from None
        inputs.append(Input(name, kind, default, label=name))
    # Declarations are in the body; the description only lists them.
    return ShaderSource(
        name=shader_name(path),
        path=path,
        kind=Kind.TRANSITION,
        dialect=Dialect.GL_TRANSITION,
        fragment=body,
        inputs=tuple(inputs),
        credit=_comment_field(text, "Author"),
        description=_comment_field(text, "Description") or shader_name(path),
        categories=("Transition",),
    )


def _comment_field(text: str, key: str) -> str:
    m = re.search(rf"^\s*//\s*{key}\s*:\s*(.+)$", text, re.MULTILINE | re.IGNORECASE)
    return m.group(1).strip() if m else ""
