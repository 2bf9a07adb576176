"""gl-transitions files: uniforms with defaults in comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ShaderError
from engine.shaders.gltransition import parse_gl_transition, parse_literal
from engine.shaders.source import InputType
from tests.fakes import TEST_SHADERS


def test_parameters_and_defaults() -> None:
    """float, vec2, ivec2 (broadcast) and bool defaults are read from their comments."""
    src = parse_gl_transition(TEST_SHADERS / "fade.glsl", (TEST_SHADERS / "fade.glsl").read_text())
    assert {i.name: (i.type, i.default) for i in src.inputs} == {
        "strength": (InputType.FLOAT, 0.5),
        "direction": (InputType.VEC2, (1.0, 0.0)),
        "grid": (InputType.IVEC2, (4.0, 4.0)),
        "reverse": (InputType.BOOL, False),
    }
    assert src.credit == "Stagecraft tests"


def test_engine_provided_uniforms_are_not_parameters() -> None:
    """A file that declares progress or ratio gets the engine's values, not a slider."""
    text = "uniform float progress;\nuniform float ratio;\nvec4 transition(vec2 uv) { return vec4(progress); }\n"
    src = parse_gl_transition(Path("p.glsl"), text)
    assert src.inputs == () and "uniform float progress" not in src.fragment
    assert src.fragment.count("\n") == text.count("\n")


def test_inline_default_comment() -> None:
    """The /* = value */ spelling works too."""
    text = "uniform float amount /* = 0.3 */;\nvec4 transition(vec2 uv){return vec4(0);}"
    src = parse_gl_transition(Path("p.glsl"), text)
    assert src.inputs[0].default == 0.3


@pytest.mark.parametrize(("kind", "text", "expected"), [
    (InputType.FLOAT, "1.", 1.0), (InputType.VEC4, "vec4(0.,0.,0.,.6)", (0.0, 0.0, 0.0, 0.6)),
    (InputType.INT, "3", 3), (InputType.BOOL, "true", True),
])
def test_literals(kind: InputType, text: str, expected: object) -> None:
    """GLSL literal spellings become Python values."""
    assert parse_literal(kind, text) == expected


def test_bad_default_names_the_line() -> None:
    """A default that is not a literal of the type is an error on its line."""
    with pytest.raises(ShaderError, match=r"uniform v: bad default") as info:
        text = "\nuniform vec2 v; // = vec2(1, 2, 3)\nvec4 transition(vec2 uv){return vec4(0);}"
        parse_gl_transition(Path("p.glsl"), text)
    assert info.value.line == 2


def test_inline_default_followed_by_a_comment() -> None:
    """`uniform ivec2 size/* = ivec2(20) */; // explanation` keeps its default."""
    text = "uniform ivec2 size/* = ivec2(20) */; // minimum squares\nvec4 transition(vec2 uv){return vec4(0);}"
    src = parse_gl_transition(Path("p.glsl"), text)
    assert src.inputs[0].default == (20.0, 20.0)


@pytest.mark.parametrize(("line", "expected"), [
    ("uniform float x; // = 0.4 ; // if 0.0, there is no black phase", 0.4),
    ("uniform float x;// =0.4;//no spaces", 0.4),
    ("uniform float x; // = 0.3; // a note", 0.3),
    ("uniform float x; // = 0.4 /* a note */", 0.4),
    ("uniform float x; // = 0.4, the strength", 0.4),
    ("uniform vec2 x; // = vec2(0.5, 0.5) // the centre", (0.5, 0.5)),
    ("uniform vec2 x; //= vec2(0.5,0.5);", (0.5, 0.5)),
    ("uniform vec2 x; // = vec2(0.25) ; // broadcast", (0.25, 0.25)),
])
def test_default_followed_by_a_note(line: str, expected: object) -> None:
    """A default ends where a note after it begins, as in the collection's fadecolor and fadegrayscale."""
    src = parse_gl_transition(Path("p.glsl"), f"{line}\nvec4 transition(vec2 uv){{return vec4(0);}}")
    assert src.inputs[0].default == expected


def test_engine_uniform_without_default_is_not_a_parameter() -> None:
    """`uniform float beatPulse;` asks for the engine's value; with a default it is the file's parameter."""
    text = "uniform float beatPulse;\nuniform float bpm; // = 0.5\nvec4 transition(vec2 uv){return vec4(0);}"
    src = parse_gl_transition(Path("p.glsl"), text)
    assert [(i.name, i.default) for i in src.inputs] == [("bpm", 0.5)]
    assert "uniform float beatPulse;" in src.fragment
