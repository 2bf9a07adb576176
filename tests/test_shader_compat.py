"""Shaders from the wild (issue 18): each failure class on a small shader written to reproduce it.

ISF version 1 names, a shader input named like an engine uniform, NaN that comes from
defaults or the first frame, and the implicit conversions Mesa's strict GLSL refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import moderngl
import numpy as np
import pytest

from engine.errors import ShaderError
from engine.shaders import program as program_module
from engine.shaders.check import Checker, shader_files
from engine.shaders.loader import load_shader
from engine.shaders.program import AudioUniforms, FrameInputs
from engine.shaders.translate import translate
from tests.fakes import SHADERS, TEST_SHADERS
from tests.shader_rig import ShaderRig

EFFECT = '{"INPUTS": [{"NAME": "inputImage", "TYPE": "image"}%s]}'


@pytest.fixture
def rig(ctx: moderngl.Context) -> Iterator[ShaderRig]:
    r = ShaderRig(ctx)
    yield r
    r.release()


@pytest.fixture(scope="module")
def checker(gl_ctx: moderngl.Context) -> Iterator[Checker]:
    c = Checker(gl_ctx, (48, 32))
    yield c
    c.release()


def write(folder: Path, name: str, body: str, inputs: str = "", vertex: str | None = None) -> Path:
    """An effect file ``name`` with extra INPUTS (JSON after inputImage) and an optional .vs."""
    path = folder / name
    path.write_text(f"/*{EFFECT % inputs}*/\n{body}")
    if vertex is not None:
        path.with_suffix(".vs").write_text(vertex)
    return path


def assert_everywhere(px: np.ndarray, rgb: tuple[float, float, float], tolerance: float = 0.01) -> None:
    """Every pixel of the frame has this colour."""
    assert np.abs(px[..., :3] - np.asarray(rgb)).max() <= tolerance, px[..., :3].reshape(-1, 3).mean(axis=0)


# --- ISF version 1 names ------------------------------------------------------------------------


def test_isf_v1_image_rect_size_and_flip(rig: ShaderRig, tmp_path: Path) -> None:
    """_inputImage_imgRect, _imgSize and _flip read as a whole upright 16x16 image."""
    path = write(tmp_path, "v1_rect.fs", """
void main() {
    gl_FragColor = vec4(_inputImage_imgRect.zw - _inputImage_imgRect.xy, _inputImage_imgSize.x / 32.0,
                        _inputImage_flip ? 0.0 : 1.0);
}
""")
    px = rig.draw(rig.program(path))
    assert_everywhere(px, (1.0, 1.0, 0.5))
    assert px[..., 3].min() == pytest.approx(1.0)


def test_isf_v1_sampling_with_rect_arguments(rig: ShaderRig, tmp_path: Path) -> None:
    """VVSAMPLER_2DBYNORM/2DBYPIXEL (and the RECT pair) and IMG_NORM_PIXEL_2D sample like IMG_NORM_PIXEL."""
    path = write(tmp_path, "v1_sampler.fs", """
void main() {
    vec2 c = vv_FragNormCoord;
    vec4 a = VVSAMPLER_2DBYNORM(inputImage, _inputImage_imgRect, _inputImage_imgSize, _inputImage_flip, c);
    vec4 b = VVSAMPLER_2DRECTBYPIXEL(inputImage, _inputImage_imgRect, _inputImage_imgSize, _inputImage_flip,
                                     c * _inputImage_imgSize);
    vec4 d = IMG_NORM_PIXEL_2D(inputImage, vec2(1.0), c);
    gl_FragColor = vec4(a.r, b.r, d.r, 1.0);
}
""")
    assert_everywhere(rig.draw(rig.program(path)), (1.0, 1.0, 1.0))  # the rig's input is red


def test_isf_v1_flip_samples_upside_down(rig: ShaderRig, tmp_path: Path, ctx: moderngl.Context) -> None:
    """A true flip argument mirrors the lookup vertically, as the version 1 hosts' helper does."""
    pixels = np.zeros((16, 16, 4), np.uint8)
    pixels[8:, :, 1] = 255  # top half green (rows are bottom first)
    pixels[..., 3] = 255
    image = ctx.texture((16, 16), 4, pixels)
    path = write(tmp_path, "v1_flip.fs", """
void main() {
    gl_FragColor = VVSAMPLER_2DBYNORM(inputImage, _inputImage_imgRect, _inputImage_imgSize, true, vv_FragNormCoord);
}
""")
    try:
        px = rig.draw(rig.program(path), images={"inputImage": image})
    finally:
        image.release()
    assert px[2, 32, 1] == pytest.approx(0.0, abs=0.01)  # top of the frame shows the image's bottom
    assert px[-3, 32, 1] == pytest.approx(1.0, abs=0.01)


def test_isf_v1_vertex_varyings_and_redeclared_coordinate(rig: ShaderRig, tmp_path: Path) -> None:
    """vv_VertNorm/vv_VertPos reach the fragment; a file redeclaring vv_FragNormCoord still compiles."""
    path = write(tmp_path, "v1_vert.fs", """
varying vec2 vv_FragNormCoord;
void main() {
    gl_FragColor = vec4(vv_VertNorm.z, abs(vv_VertPos.xy * 0.5 + 0.5 - vv_FragNormCoord) * 100.0, 1.0);
}
""", vertex="""
varying vec2 vv_FragNormCoord;
void main() { vv_vertShaderInit(); }
""")
    assert_everywhere(rig.draw(rig.program(path)), (1.0, 0.0, 0.0), tolerance=0.05)


def test_a_file_with_its_own_v1_helper_keeps_it(rig: ShaderRig, tmp_path: Path) -> None:
    """A file that defines VVSAMPLER_2DBYNORM itself gets no second definition from the engine."""
    path = write(tmp_path, "own_helper.fs", """
vec4 VVSAMPLER_2DBYNORM(sampler2D s, vec4 r, vec2 size, bool flip, vec2 c) { return vec4(0.0, 0.5, 0.0, 1.0); }
void main() {
    gl_FragColor = VVSAMPLER_2DBYNORM(inputImage, _inputImage_imgRect, _inputImage_imgSize, false, vv_FragNormCoord);
}
""")
    assert_everywhere(rig.draw(rig.program(path)), (0.0, 0.5, 0.0))


# --- engine uniforms and a shader's own names -----------------------------------------------------


def test_input_named_like_an_engine_uniform_wins(rig: ShaderRig, tmp_path: Path) -> None:
    """An ISF input called audioLevel is the shader's: its value, not the live audio; one warning says so."""
    path = write(tmp_path, "own_level.fs", "void main() { gl_FragColor = vec4(audioLevel, 0.0, 0.0, 1.0); }\n",
                 ', {"NAME": "audioLevel", "TYPE": "float", "DEFAULT": 0.25}')
    p = rig.program(path)
    loud = FrameInputs(1.0, 0.0, 0, AudioUniforms(level=0.9))
    assert_everywhere(rig.draw(p, frame=loud), (0.25, 0.0, 0.0))
    assert_everywhere(rig.draw(p, {"audioLevel": 0.5}, frame=loud), (0.5, 0.0, 0.0))
    assert len(p.warnings) == 1 and "input audioLevel has the name of an engine uniform" in p.warnings[0]


def test_check_shaders_warns_about_the_engine_uniform_it_drops(checker: Checker, tmp_path: Path) -> None:
    """check-shaders passes such a file and repeats the warning."""
    path = write(tmp_path, "own_bpm.fs", "void main() { gl_FragColor = vec4(bpm / 200.0); }\n",
                 ', {"NAME": "bpm", "TYPE": "float", "DEFAULT": 120.0, "MIN": 60.0, "MAX": 200.0}')
    result = checker.check(path)
    assert result.error is None
    assert any("engine's live bpm is not fed to this shader" in w for w in result.warnings)


def test_engine_uniform_name_as_a_plain_global(rig: ShaderRig, tmp_path: Path) -> None:
    """A file defining its own `vec3 iResolution = ...` (Shadertoy ports do) keeps it; nothing clashes."""
    path = write(tmp_path, "own_global.fs", """
vec3 iResolution = vec3(RENDERSIZE, 1.0);
void main() { gl_FragColor = vec4(iResolution / 128.0, 1.0); }
""")
    p = rig.program(path)
    assert_everywhere(rig.draw(p), (0.5, 0.25, 1 / 128))
    assert p.warnings == ()


def test_gl_transition_engine_names(rig: ShaderRig, tmp_path: Path) -> None:
    """In a gl-transition, `uniform float bpm; // = 0.5` is its parameter; `uniform float beatPulse;` is live."""
    path = tmp_path / "beat.glsl"
    path.write_text("uniform float bpm; // = 0.5\nuniform float beatPulse;\n"
                    "vec4 transition(vec2 uv) { return vec4(bpm, beatPulse, 0.0, 1.0); }\n")
    p = rig.program(path)
    assert [i.name for i in p.src.inputs] == ["bpm"]
    px = rig.draw(p, frame=FrameInputs(1.0, 0.0, 0, AudioUniforms(bpm=128.0, beat_pulse=0.75)))
    assert_everywhere(px, (0.5, 0.75, 0.0))


# --- NaN ------------------------------------------------------------------------------------------


def test_nan_on_the_first_frame_only_is_a_warning(checker: Checker, tmp_path: Path) -> None:
    """sin(TIME)/TIME is 0/0 on the show's first frame (TIME 0) and finite after: it loads, with a warning."""
    path = write(tmp_path, "first_frame.fs", "void main() { gl_FragColor = vec4(vec3(sin(TIME) / TIME), 1.0); }\n")
    result = checker.check(path)
    assert result.error is None
    assert len(result.warnings) == 1
    assert "up to TIME=0 with its default values, finite from TIME=0.0166667 on: it loads" in result.warnings[0]


def test_nan_from_a_zero_default_is_a_warning_naming_the_input(checker: Checker, tmp_path: Path) -> None:
    """A division by an input whose DEFAULT is 0: NaN at the defaults, finite once it moves; it loads."""
    path = write(tmp_path, "zero_default.fs",
                 "void main() { gl_FragColor = vec4(vec3(width / width), 1.0); }\n",
                 ', {"NAME": "width", "TYPE": "float", "DEFAULT": 0.0, "MIN": 0.0, "MAX": 2.0}')
    result = checker.check(path)
    assert result.error is None
    assert "stays NaN or infinite in 100% of the pixels with its default values, but not with width = 2" \
        in result.warnings[0]


def test_output_that_stays_nan_is_refused(checker: Checker, tmp_path: Path) -> None:
    """log of a negative number whatever the input: refused, saying it stays NaN over frames and inputs."""
    path = write(tmp_path, "always_nan.fs",
                 "void main() { gl_FragColor = vec4(vec3(log(-1.0 - abs(gain) - TIME)), 1.0); }\n",
                 ', {"NAME": "gain", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0}')
    result = checker.check(path)
    assert result.error is not None
    assert "its output stays NaN or infinite in 100% of the pixels over 5 frames to TIME=2 with its default " \
           "values and with 2 other input settings" in result.error.message


# --- conversions Mesa refuses ---------------------------------------------------------------------


def test_int_returned_from_a_float_function(rig: ShaderRig, tmp_path: Path) -> None:
    """`float f() { return 1; }` and an int variable returned as float compile and keep their values."""
    path = write(tmp_path, "int_return.fs", """
float one() { return 1; }
float half_of(int i) { return i / 2; }
void main() { gl_FragColor = vec4(one(), half_of(3) / 2.0, 0.0, 1.0); }
""")
    p = rig.program(path)
    assert_everywhere(rig.draw(p), (1.0, 0.5, 0.0))  # int 3 / 2 == 1, as an implicit conversion gives
    assert any("lines 3, 4" in w and "conversion was made explicit" in w for w in p.warnings)


def test_int_where_a_uint_is_needed(rig: ShaderRig, tmp_path: Path) -> None:
    """`uint u = 3;`, `u == 3`, `u & 1` and `uint f() { return 1; }` compile and behave as uints."""
    path = write(tmp_path, "uint_init.fs", """
uint bit() { return 1; }
void main() {
    uint u = 3;
    float hit = u == 3 ? 1.0 : 0.0;
    gl_FragColor = vec4(hit, float(u & bit()), float(u) / 4.0, 1.0);
}
""")
    assert_everywhere(rig.draw(rig.program(path)), (1.0, 1.0, 0.75))


def test_an_error_the_conversions_cannot_fix_is_the_files_own(rig: ShaderRig, tmp_path: Path) -> None:
    """A file with a conversion and a real mistake: the error shown is the real one, on its line."""
    path = write(tmp_path, "two_errors.fs", "float one() { return 1; }\nvoid main() { gl_FragColor = nope; }\n")
    with pytest.raises(ShaderError, match="nope") as info:
        rig.program(path)
    assert info.value.line == 3


@pytest.mark.parametrize("path", shader_files([SHADERS, TEST_SHADERS]), ids=lambda p: p.name)
def test_conversions_change_no_pixel_of_a_valid_shader(checker: Checker, path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shipped and test shader, forced through the conversions, draws exactly the same frames."""
    src = load_shader(path)
    before = checker.render(src, frames=2)
    monkeypatch.setattr(program_module, "translate", lambda s, relax=False: translate(s, relax=True))
    after = checker.render(src, frames=2)
    assert np.array_equal(before, after, equal_nan=True)


def test_isf_v1_image_uniforms_the_file_declares_itself_are_set(rig: ShaderRig, tmp_path: Path) -> None:
    """A file that declares `uniform vec2 _inputImage_imgSize;` (and the rest) gets them set each frame."""
    path = write(tmp_path, "v1_declared.fs", """
uniform vec4 _inputImage_imgRect;
uniform vec2 _inputImage_imgSize;
uniform bool _inputImage_flip;
void main() {
    gl_FragColor = vec4(_inputImage_imgRect.z, _inputImage_imgSize.y / 32.0, _inputImage_flip ? 0.0 : 1.0, 1.0);
}
""")
    assert_everywhere(rig.draw(rig.program(path)), (1.0, 0.5, 1.0))
