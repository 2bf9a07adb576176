"""ISF/gl-transitions → GLSL 3.30 core text."""

from __future__ import annotations

from pathlib import Path

from engine.shaders.isf import parse_isf
from engine.shaders.loader import load_shader
from engine.shaders.translate import modernize, translate
from tests.fakes import TEST_SHADERS


def test_old_glsl_is_modernized_on_the_same_lines() -> None:
    """gl_FragColor, texture2D, varying become their 3.30 forms; line count unchanged."""
    body = "varying vec2 v;\nvoid main() {\n  gl_FragColor = texture2D(img, v);\n}\n"
    out = modernize(body, "fragment")
    assert out.splitlines() == ["in vec2 v;", "void main() {", "  isf_FragColor = texture(img, v);", "}"]


def test_vertex_stage_varyings_become_outputs() -> None:
    """In a .vs, varying → out and attribute → in."""
    assert modernize("varying vec2 a;\nattribute vec2 p;\n", "vertex").splitlines() == ["out vec2 a;", "in vec2 p;"]


def test_old_names_that_newer_glsl_took_are_renamed() -> None:
    """A variable called `texture` in old GLSL does not shadow texture()."""
    out = modernize("vec4 texture = texture2D(i, c);\ngl_FragColor = texture;\n", "fragment")
    assert "vec4 isf_texture_ = texture(i, c);" in out and "isf_FragColor = isf_texture_;" in out


def test_version_lines_are_dropped() -> None:
    """The file's own #version would clash with ours."""
    assert "#version" not in modernize("#version 120\nvoid main(){}\n", "fragment")


def test_inputs_and_builtins_are_declared_once() -> None:
    """Inputs get uniforms; a uniform the file declares itself is not declared again."""
    code = translate(load_shader(TEST_SHADERS / "builtins.fs")).fragment
    assert code.count("uniform float beatPulse;") == 1
    assert "uniform sampler2D inputImage;" in code and "uniform float TIME;" in code
    assert "uniform vec3 iResolution;" in code


def test_body_follows_line_1_directive() -> None:
    """The driver counts the user's lines from 1 after the prelude."""
    code = translate(load_shader(TEST_SHADERS / "vignette.fs")).fragment
    before, _, after = code.partition("#line 1\n")
    assert before and after.startswith("\n" * 9)  # the blanked header lines


def test_gl_transition_gets_layer_sampling_and_main() -> None:
    """getFromColor/getToColor come from the engine, main calls transition()."""
    code = translate(load_shader(TEST_SHADERS / "fade.glsl")).fragment
    assert "vec4 getFromColor(vec2 p)" in code and "transition(isf_FragNormCoord)" in code
    assert code.count("uniform float strength;") == 1  # the file's own declaration only


def test_default_vertex_shader_calls_init() -> None:
    """Without a .vs the vertex stage only runs isf_vertShaderInit()."""
    code = translate(parse_isf(Path("x.fs"), "/*{}*/\nvoid main(){gl_FragColor=vec4(1);}")).vertex
    assert "void main() { isf_vertShaderInit(); }" in code
