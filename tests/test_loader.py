"""Shader files on disk: which parser reads them, their companion .vs, unreadable files."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ShaderError
from engine.shaders.loader import load_shader
from engine.shaders.source import Dialect, Kind
from tests.fakes import TEST_SHADERS


def test_companion_vertex_shader_is_loaded() -> None:
    """A .vs with the same stem comes along and is a dependency."""
    src = load_shader(TEST_SHADERS / "old_glsl.fs")
    assert src.vertex is not None and "isf_vertShaderInit" in src.vertex
    assert src.vertex_path == TEST_SHADERS / "old_glsl.vs"


def test_gl_transitions_are_detected() -> None:
    """A .glsl with transition(vec2) and no ISF header is a gl-transition."""
    src = load_shader(TEST_SHADERS / "fade.glsl")
    assert src.dialect is Dialect.GL_TRANSITION and src.kind is Kind.TRANSITION


def test_unreadable_file_is_a_shader_error(tmp_path: Path) -> None:
    """Binary junk is reported, not raised as a crash."""
    p = tmp_path / "junk.fs"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ShaderError, match="not UTF-8"):
        load_shader(p)


def test_isf_header_wins_over_a_transition_function(tmp_path: Path) -> None:
    """A file with an ISF header is ISF even if it defines transition(vec2)."""
    p = tmp_path / "both.fs"
    p.write_text('/*{"INPUTS": []}*/\nvec4 transition(vec2 uv) { return vec4(0.0); }\nvoid main() {}\n')
    assert load_shader(p).dialect is Dialect.ISF
