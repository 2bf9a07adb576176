"""Mesa's strict GLSL 3.30: the conversions other drivers make silently, made explicit on the same lines."""

from __future__ import annotations

import moderngl
import pytest

from engine.shaders.conversions import HELPERS, relax

VERTEX = "#version 330\nvoid main() { gl_Position = vec4(0.0); }\n"

# Each refused by Mesa as written (checked below), each a class issue 18 saw in published files.
REFUSED = {
    "int literal returned as float": "float f() { return 1; }",
    "int expression returned as float": "float f(int i) { return i * 2; }",
    "int ternary returned as float": "float f(bool c) { return c ? 1 : 0; }",
    "int literal initialising a uint": "uint u = 1;",
    "several uint declarators": "void q() { uint a = 1, b = 0xFF; }",
    "int assigned to a uint": "void q() { uint u; u = 3; }",
    "uint compared with an int": "bool b(uint u) { return u == 0; }",
    "int compared with a uint": "bool b(uint u) { return 1 < u; }",
    "uint and int in arithmetic": "uint f(uint u) { return u + 1; }",
    "uint masked by an int": "uint f(uint u) { return u & 255; }",
    "int returned as uint": "uint f() { return 1; }",
    "uint loop counter": "float f() { float s = 0.0; for (uint i = 0; i < 4; i++) s += 1.0; return s; }",
    "const uint from an int literal": "const uint N = 4;",
    "uvec2 from an ivec2": "void q() { uvec2 v = ivec2(1); }",
}


def compiles(ctx: moderngl.Context, body: str) -> bool:
    fragment = f"#version 330\nout vec4 o;\n{HELPERS}{body}\nvoid main() {{ o = vec4(0.0); }}\n"
    try:
        ctx.program(vertex_shader=VERTEX, fragment_shader=fragment).release()
    except moderngl.Error:
        return False
    return True


@pytest.mark.parametrize("body", REFUSED.values(), ids=REFUSED.keys())
def test_refused_as_written_accepted_after(ctx: moderngl.Context, body: str) -> None:
    """Mesa refuses the snippet; the relaxed snippet compiles."""
    assert not compiles(ctx, body)
    assert compiles(ctx, relax(body).text), relax(body).text


def test_rewrites_stay_on_their_lines() -> None:
    """Only text is inserted, so the driver's line numbers are still the file's; the changed lines are listed."""
    text = "// return 1;\nfloat f() {\n  return\n    1;\n}\nuint u = 2;\n"
    out = relax(text)
    assert out.text.count("\n") == text.count("\n")
    assert out.text.splitlines()[0] == "// return 1;"  # comments are left alone
    assert out.lines == {4, 6}
    assert "isf_float(1)" in out.text.replace("\n", "").replace(" ", "")


def test_what_mesa_accepts_is_left_alone() -> None:
    """Int literals in float built-ins, constructors, mixed arithmetic and comparisons are not touched."""
    text = ("void q(float x, int i) { float a = pow(x, 2) + clamp(x, 0, 1) * mix(x, 1.0, 0);\n"
            "  vec2 v = vec2(1, 2); bool b = x > 1 && i < x; float c = 1; c += 2; }\n")
    assert relax(text).text == text and not relax(text).lines


def test_conversions_keep_the_value_of_valid_code() -> None:
    """A float already returned as float gets isf_float(), its identity; a uint literal stays a uint literal."""
    assert relax("float f(float x) { return x * 2.0; }").text == "float f(float x) { return isf_float(x * 2.0); }"
    assert relax("bool b(uint u) { return u == 2u; }").text == "bool b(uint u) { return u == 2u; }"


@pytest.mark.parametrize("body", ["float f() { return vec3(1.0); }", "float f() { return true; }",
                                  "uint u = 1.5;"])
def test_only_an_int_is_converted(ctx: moderngl.Context, body: str) -> None:
    """A vec3 or bool returned as float, a float as uint: wrong on every driver, and still refused after."""
    assert not compiles(ctx, body)
    assert not compiles(ctx, relax(body).text)
