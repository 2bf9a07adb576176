"""ISF files → a description of the shader, without GL.

An ISF file (Interactive Shader Format, version 2; version 1 keys are accepted)
is a JSON header in the leading comment, then GLSL. Parsing checks the header
the way a show needs: every mistake is a ``ShaderError`` with the file and the
line it sits on, so a VJ can fix it from the HUD.

The body keeps its line numbers: the header is replaced by blank lines, so a
driver's complaint about line N is about line N of the file.

Only text goes in: reading the file and its companion ``.vs`` is ``loader``'s job.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from engine.errors import ShaderError
from engine.shaders.source import (
    VECTOR_SIZE,
    Dialect,
    Imported,
    Input,
    InputType,
    Kind,
    Pass,
    ShaderSource,
    Value,
    shader_name,
)
from engine.shaders.translate import BUILTINS

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --- the header -----------------------------------------------------------------


def split_header(path: Path, text: str) -> tuple[dict[str, Any], str, int]:
    """(header JSON, body with the header blanked, line where the JSON starts)."""
    start = text.find("/*")
    if start < 0 or text[:start].strip():
        raise ShaderError(str(path), 1, "no ISF header: the file must start with a /* { JSON } */ comment")
    end = text.find("*/", start + 2)
    if end < 0:
        raise ShaderError(str(path), text.count("\n", 0, start) + 1, "the header comment is never closed (*/)")
    raw = text[start + 2 : end]
    first_line = text.count("\n", 0, start) + 1
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ShaderError(str(path), first_line + err.lineno - 1, f"header is not valid JSON: {err.msg}") from err
    if not isinstance(header, dict):
        raise ShaderError(str(path), first_line, "the header must be a JSON object")
    blank = "\n" * text[: end + 2].count("\n")
    return header, blank + text[end + 2 :], first_line


def _line_of(text: str, needle: str, default: int) -> int:
    i = text.find(needle)
    return text.count("\n", 0, i) + 1 if i >= 0 else default


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _vector(v: Any, n: int) -> tuple[float, ...] | None:
    if isinstance(v, list | tuple) and len(v) >= n and all(_number(x) for x in v[:n]):
        return tuple(float(x) for x in v[:n])
    return None


def _coerce(t: InputType, v: Any) -> Value | None:
    """A header value in the input's type, or None when it does not fit."""
    if v is None:
        return None
    if t in (InputType.FLOAT,):
        return float(v) if _number(v) else None
    if t in (InputType.BOOL, InputType.EVENT):
        if isinstance(v, bool):
            return v
        return bool(v) if _number(v) else None
    if t in (InputType.LONG, InputType.INT):
        return int(v) if _number(v) else None
    if t in VECTOR_SIZE:
        return _vector(v, VECTOR_SIZE[t])
    return None


def parse_input(path: Path, text: str, raw: Any, line: int) -> Input:
    if not isinstance(raw, dict):
        raise ShaderError(str(path), line, "each INPUTS entry must be an object")
    name = raw.get("NAME")
    if not isinstance(name, str) or not IDENT.match(name):
        raise ShaderError(str(path), line, f"INPUTS: NAME {name!r} is not a valid GLSL identifier")
    line = _line_of(text, f'"{name}"', line)
    try:
        kind = InputType(str(raw.get("TYPE")))
    except ValueError:
        allowed = "float, bool, long, color, point2D, event, image, audio, audioFFT"
        raise ShaderError(str(path), line, f"input {name}: TYPE {raw.get('TYPE')!r} is not one of {allowed}") \
            from None
    if kind in (InputType.INT, InputType.VEC2, InputType.VEC3, InputType.VEC4, InputType.IVEC2):
        raise ShaderError(str(path), line, f"input {name}: TYPE {kind.value!r} is not an ISF input type")
    values: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()
    if kind is InputType.LONG:
        vals = raw.get("VALUES")
        if isinstance(vals, list) and all(_number(v) for v in vals):
            values = tuple(int(v) for v in vals)
        labs = raw.get("LABELS")
        if isinstance(labs, list):
            labels = tuple(str(x) for x in labs)
        if values and labels and len(values) != len(labels):
            raise ShaderError(str(path), line, f"input {name}: VALUES and LABELS differ in length")
    default = _coerce(kind, raw.get("DEFAULT"))
    lo = _coerce(kind, raw.get("MIN"))
    hi = _coerce(kind, raw.get("MAX"))
    if kind is InputType.AUDIO or kind is InputType.AUDIO_FFT:
        # For audio, MAX is the number of samples the shader wants.
        hi = int(raw["MAX"]) if _number(raw.get("MAX")) else None
        lo = default = None
    if default is None:
        default = _default_for(kind, lo, values)
    label = raw.get("LABEL")
    return Input(name, kind, default, lo, hi, str(label) if label is not None else name, values, labels)


def _default_for(kind: InputType, lo: Value | None, values: tuple[int, ...]) -> Value | None:
    if kind is InputType.FLOAT:
        return lo if isinstance(lo, float) else 0.0
    if kind in (InputType.BOOL, InputType.EVENT):
        return False
    if kind in (InputType.LONG, InputType.INT):
        return values[0] if values else (lo if isinstance(lo, int) else 0)
    if kind is InputType.COLOR:
        return (0.0, 0.0, 0.0, 1.0)
    if kind in VECTOR_SIZE:
        return (0.0,) * VECTOR_SIZE[kind]
    return None


def _parse_passes(path: Path, text: str, header: dict[str, Any], line: int) -> tuple[Pass, ...]:
    raw = header.get("PASSES", [])
    if not isinstance(raw, list):
        raise ShaderError(str(path), _line_of(text, '"PASSES"', line), "PASSES must be a list")
    persistent: set[str] = set()
    # ISF 1 listed persistent buffers apart from the passes.
    legacy = header.get("PERSISTENT_BUFFERS", [])
    if isinstance(legacy, dict):
        persistent.update(legacy)
    elif isinstance(legacy, list):
        persistent.update(x for x in legacy if isinstance(x, str))
    passes = []
    for i, p in enumerate(raw):
        if not isinstance(p, dict):
            raise ShaderError(str(path), _line_of(text, '"PASSES"', line), f"PASSES[{i}] must be an object")
        target = p.get("TARGET")
        if target is not None and (not isinstance(target, str) or not IDENT.match(target)):
            raise ShaderError(str(path), _line_of(text, '"TARGET"', line),
                              f"PASSES[{i}]: TARGET {target!r} is not a valid GLSL identifier")
        width, height = p.get("WIDTH"), p.get("HEIGHT")
        passes.append(Pass(
            target=target,
            persistent=bool(p.get("PERSISTENT", False)) or (target in persistent),
            float=bool(p.get("FLOAT", False)),
            width=str(width) if width is not None else None,
            height=str(height) if height is not None else None,
        ))
    return tuple(passes) or (Pass(),)


def _parse_imported(path: Path, text: str, header: dict[str, Any], line: int) -> tuple[Imported, ...]:
    raw = header.get("IMPORTED", {})
    items: list[tuple[str, Any]] = []
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list):  # ISF 1: [{"NAME": ..., "PATH": ...}]
        items = [(str(x.get("NAME")), x) for x in raw if isinstance(x, dict)]
    out = []
    for name, spec in items:
        where = _line_of(text, f'"{name}"', line)
        if not IDENT.match(name) or not isinstance(spec, dict) or not isinstance(spec.get("PATH"), str):
            raise ShaderError(str(path), where, f"IMPORTED {name!r}: needs a valid NAME and a PATH")
        rel = Path(spec["PATH"])
        target = (path.parent / rel).resolve()
        if rel.is_absolute() or not target.is_relative_to(path.parent.resolve()):
            raise ShaderError(str(path), where, f"IMPORTED {name}: {rel} must be a file beside the shader")
        out.append(Imported(name, target))
    return tuple(out)


def classify(inputs: tuple[Input, ...]) -> Kind:
    names = {i.name: i for i in inputs}
    start, end, progress = names.get("startImage"), names.get("endImage"), names.get("progress")
    if start and end and progress and start.is_sampler and end.is_sampler and progress.type is InputType.FLOAT:
        return Kind.TRANSITION
    if "inputImage" in names and names["inputImage"].is_sampler:
        return Kind.EFFECT
    return Kind.GENERATOR


def parse_isf(path: Path, text: str, vertex: str | None = None, vertex_path: Path | None = None) -> ShaderSource:
    """Parse an ISF file's text; raises ShaderError(file, line, message)."""
    header, body, line = split_header(path, text)
    raw_inputs = header.get("INPUTS", [])
    if not isinstance(raw_inputs, list):
        raise ShaderError(str(path), _line_of(text, '"INPUTS"', line), "INPUTS must be a list")
    inputs = tuple(parse_input(path, text, raw, _line_of(text, '"INPUTS"', line)) for raw in raw_inputs)
    seen: set[str] = set()
    for i in inputs:
        if i.name in BUILTINS:
            raise ShaderError(str(path), _line_of(text, f'"{i.name}"', line),
                              f"input {i.name} has the name of an ISF built-in ({', '.join(BUILTINS)}), "
                              "which no host accepts: rename the input")
        if i.name in seen:
            raise ShaderError(str(path), _line_of(text, f'"{i.name}"', line), f"input {i.name} is declared twice")
        seen.add(i.name)
    passes = _parse_passes(path, text, header, line)
    imported = _parse_imported(path, text, header, line)
    for p in passes:
        if p.target and p.target in seen:
            raise ShaderError(str(path), _line_of(text, f'"{p.target}"', line),
                              f"pass target {p.target} has the same name as an input")
    cats = header.get("CATEGORIES", [])
    depends = tuple(i.path for i in imported) + ((vertex_path,) if vertex_path else ())
    return ShaderSource(
        name=shader_name(path),
        path=path,
        kind=classify(inputs),
        dialect=Dialect.ISF,
        fragment=body,
        inputs=inputs,
        passes=passes,
        imported=imported,
        vertex=vertex,
        vertex_path=vertex_path,
        description=str(header.get("DESCRIPTION", "")),
        credit=str(header.get("CREDIT", "")),
        categories=tuple(str(c) for c in cats) if isinstance(cats, list) else (),
        depends=depends,
    )
