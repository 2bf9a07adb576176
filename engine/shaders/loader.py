"""A shader file on disk → its ``ShaderSource``, whichever dialect it is in.

This is the one place that reads shader files and decides, from the text, which
parser gets them: ``isf`` and ``gltransition`` only turn text into a
description, so they stay testable without files and neither needs the other.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.errors import ShaderError
from engine.shaders.gltransition import parse_gl_transition
from engine.shaders.isf import parse_isf
from engine.shaders.source import ShaderSource

SHADER_SUFFIXES = (".fs", ".frag", ".glsl")


def is_gl_transition(text: str) -> bool:
    """gl-transitions files have no ISF header and define ``vec4 transition(vec2 ...)``."""
    stripped = text.lstrip()
    has_isf_header = stripped.startswith("/*") and stripped[2:].lstrip().startswith("{")
    return not has_isf_header and re.search(r"\bvec4\s+transition\s*\(\s*vec2\b", text) is not None


def load_shader(path: Path) -> ShaderSource:
    """Read and parse one shader file (ISF or gl-transition) with its companion .vs."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ShaderError(str(path), None, f"not UTF-8 text ({err.reason})") from err
    except OSError as err:
        raise ShaderError(str(path), None, f"cannot read: {err.strerror}") from err
    if is_gl_transition(text):
        return parse_gl_transition(path, text)
    vs_path = path.with_suffix(".vs")
    vertex = None
    if vs_path.is_file():
        try:
            vertex = vs_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ShaderError(str(vs_path), None, f"cannot read the vertex shader: {err}") from err
    return parse_isf(path, text, vertex, vs_path if vertex is not None else None)
