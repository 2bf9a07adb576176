"""GLSL text read without a compiler: the names a file declares, its functions."""

from __future__ import annotations

from engine.shaders.glsl import code_only, defines_function, file_scope_names, functions

TEXT = """uniform float bpm; // float notMe;
vec3 iResolution = vec3(RENDERSIZE, 1.0), spare;
const float K = 2.0;
in vec2 isf_FragNormCoord;
/* float notMeEither; */
#define Q float notADeclaration;
float shade(float x, vec2 y) { float local = 1.0; return x; }
float proto(float z);
void main() { gl_FragColor = vec4(shade(K, vec2(0.0))); }
"""


def test_file_scope_names_are_what_the_file_declares_outside_functions() -> None:
    """Uniforms, globals (each declarator), constants and ins; not locals, parameters, comments or macros."""
    assert file_scope_names(TEXT) == {"bpm", "iResolution", "spare", "K", "isf_FragNormCoord"}
    assert file_scope_names(TEXT, uniforms_only=True) == {"bpm"}


def test_functions_are_definitions_with_their_bodies() -> None:
    """Definitions with their braces; a prototype is not one."""
    code = code_only(TEXT)
    found = {f.name: f for f in functions(code)}
    assert set(found) == {"shade", "main"} and found["shade"].returns == "float"
    assert code[found["shade"].open] == "{" and code[found["shade"].close] == "}"
    assert defines_function(TEXT, "shade") and not defines_function(TEXT, "proto")


def test_code_only_keeps_offsets_and_lines() -> None:
    """Comments and preprocessor lines become spaces: same length, same newlines."""
    code = code_only(TEXT)
    assert len(code) == len(TEXT) and code.count("\n") == TEXT.count("\n")
    assert "notMe" not in code and "#define" not in code
