"""Compiled ISF programs on llvmpipe: values reach the shader, passes behave as specified."""

from __future__ import annotations

from collections.abc import Iterator

import moderngl
import numpy as np
import pytest

from engine.errors import ShaderError
from engine.shaders.loader import load_shader
from engine.shaders.program import AudioUniforms, FrameInputs, IsfProgram
from tests.fakes import ROOT, TEST_SHADERS
from tests.shader_rig import ShaderRig, solid_texture


@pytest.fixture
def rig(ctx: moderngl.Context) -> Iterator[ShaderRig]:
    r = ShaderRig(ctx)
    yield r
    r.release()


def band(px: np.ndarray, index: int, count: int = 8) -> np.ndarray:
    """The mean colour of horizontal band ``index`` (0 = bottom) of ``count``."""
    h = px.shape[0]
    top = h - (index + 1) * h // count
    return px[top + 1 : top + h // count - 1].reshape(-1, 4).mean(axis=0)


def column(px: np.ndarray, index: int, count: int = 10) -> np.ndarray:
    w = px.shape[1]
    return px[:, index * w // count + 1 : (index + 1) * w // count - 1].reshape(-1, 4).mean(axis=0)


def test_every_input_type_reaches_the_shader(rig: ShaderRig, ctx: moderngl.Context) -> None:
    """float, bool, long, color, point2D, event, image, audio and audioFFT all bind."""
    p = rig.program(TEST_SHADERS / "all_inputs.fs")
    green = solid_texture(ctx, (0, 255, 0))
    try:
        px = rig.draw(p, {"level": 0.75, "flag": False, "mode": 1, "tint": (0.2, 0.4, 0.6, 1.0),
                          "spot": (0.1, 0.9), "kick": True}, images={"extra": green})
    finally:
        green.release()
    assert band(px, 0)[0] == pytest.approx(0.75, abs=0.01)
    assert band(px, 1)[0] == pytest.approx(0.0, abs=0.01)
    assert band(px, 2)[0] == pytest.approx(0.25, abs=0.01)
    assert band(px, 3)[:3] == pytest.approx((0.2, 0.4, 0.6), abs=0.01)
    assert band(px, 4)[:2] == pytest.approx((0.1, 0.9), abs=0.01)
    assert band(px, 5)[0] == pytest.approx(1.0, abs=0.01)  # the event fired this frame
    assert band(px, 6)[:2] == pytest.approx((0.5, 0.0), abs=0.01)  # silent audio: wave at 0.5, no FFT
    assert band(px, 7)[:3] == pytest.approx((0.0, 1.0, 0.0), abs=0.01)


def test_audio_textures_carry_the_analysis(rig: ShaderRig) -> None:
    """Audio inputs read the waveform and spectrum the audio thread wrote."""
    rig.shared.write_audio(np.full(512, 1.0, np.float32), np.full(256, 0.8, np.float32))
    px = rig.draw(rig.program(TEST_SHADERS / "all_inputs.fs"))
    assert band(px, 6)[:2] == pytest.approx((1.0, 0.8), abs=0.01)


def test_builtins_engine_uniforms_and_aliases(rig: ShaderRig) -> None:
    """TIME, TIMEDELTA, RENDERSIZE, FRAMEINDEX, DATE, beat uniforms, Shadertoy aliases, IMG_* macros."""
    p = rig.program(TEST_SHADERS / "builtins.fs")
    frame = FrameInputs(time=2.5, delta=0.05, frame=0, audio=AudioUniforms(beat_pulse=0.6, bpm=120.0),
                        date=(2026.0, 6.0, 1.0, 100.0))
    rig.draw(p, frame=frame)
    px = rig.draw(p, frame=frame)  # second frame: FRAMEINDEX 1
    assert column(px, 0)[0] == pytest.approx(0.25, abs=0.01)
    assert column(px, 1)[0] == pytest.approx(0.5, abs=0.01)
    assert column(px, 2)[:2] == pytest.approx((0.064, 0.032), abs=0.002)
    assert column(px, 3)[0] == pytest.approx(0.1, abs=0.01)
    assert column(px, 4)[0] == pytest.approx(0.5, abs=0.01)
    assert column(px, 5)[:2] == pytest.approx((0.6, 0.6), abs=0.01)
    assert column(px, 6)[:3] == pytest.approx((0.25, 0.064, 0.1), abs=0.01)
    assert column(px, 7)[:3] == pytest.approx((0.5, 0.5, 0.5), abs=0.02)  # IMG_PIXEL == IMG_THIS_PIXEL
    assert column(px, 8)[:3] == pytest.approx((1.0, 0.0, 0.0), abs=0.02)  # the norm variants agree
    assert column(px, 9)[:2] == pytest.approx((0.016, 0.016), abs=0.002)  # IMG_SIZE of a 16x16 input


def test_persistent_feedback_grows_frame_by_frame(rig: ShaderRig) -> None:
    """The two-pass persistent float buffer adds `step` every frame, as its file says."""
    p = rig.program(TEST_SHADERS / "feedback.fs")
    seen = [float(rig.draw(p, {"step": 0.1})[16, 32, 0]) for _ in range(4)]
    assert seen == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=1e-4)


def test_pass_sizes_follow_their_expressions(rig: ShaderRig) -> None:
    """WIDTH/HEIGHT expressions size the target (64x32 output, divider 4 → 16x16)."""
    px = rig.draw(rig.program(TEST_SHADERS / "half_size.fs"), {"divider": 4.0})
    assert px[16, 32, :2] * 255 == pytest.approx((16, 16), abs=0.1)
    assert px[16, 32, 2] == pytest.approx(0.5, abs=0.01)  # the pass itself saw RENDERSIZE 16x16


def test_old_glsl_with_a_companion_vertex_shader(rig: ShaderRig) -> None:
    """gl_FragColor/texture2D/varying compile, and the .vs passes its varying through."""
    px = rig.draw(rig.program(TEST_SHADERS / "old_glsl.fs"), {"shift": 0.75})
    assert px[..., 0].mean() == pytest.approx(0.75, abs=0.01)


def test_imported_image_is_upright(rig: ShaderRig) -> None:
    """IMPORTED pictures load beside the file; their top-left is red, top-right green."""
    px = rig.draw(rig.program(TEST_SHADERS / "imported.fs"))
    assert px[2, 2, :3] == pytest.approx((1, 0, 0), abs=0.02)
    assert px[2, -3, :3] == pytest.approx((0, 1, 0), abs=0.02)
    assert px[-3, 2, :3] == pytest.approx((0, 0, 1), abs=0.02)


@pytest.mark.parametrize("name", ["wipe.fs", "fade.glsl"])
def test_transitions_start_and_end_on_their_images(rig: ShaderRig, name: str) -> None:
    """An ISF transition and a gl-transition: all start image at 0, all end image at 1."""
    p = rig.program(TEST_SHADERS / name)
    assert rig.draw(p, progress=0.0)[..., :3].reshape(-1, 3).mean(axis=0) == pytest.approx((1, 0, 0), abs=0.01)
    assert rig.draw(p, progress=1.0)[..., :3].reshape(-1, 3).mean(axis=0) == pytest.approx((0, 0, 1), abs=0.01)


def test_wipe_halfway_splits_the_screen(rig: ShaderRig) -> None:
    """At 0.5 the ISF wipe shows the end image on the left half only."""
    px = rig.draw(rig.program(TEST_SHADERS / "wipe.fs"), progress=0.5)
    assert px[16, 10, :3] == pytest.approx((0, 0, 1), abs=0.01)
    assert px[16, 54, :3] == pytest.approx((1, 0, 0), abs=0.01)


def test_gl_transition_parameter_is_live(rig: ShaderRig) -> None:
    """A gl-transition uniform is a parameter like an ISF input."""
    p = rig.program(TEST_SHADERS / "fade.glsl")
    assert rig.draw(p, {"reverse": True}, progress=1.0)[16, 32, :3] == pytest.approx((1, 0, 0), abs=0.01)


def test_compile_error_names_the_line(rig: ShaderRig, ctx: moderngl.Context) -> None:
    """A driver error points at the user's file and line."""
    with pytest.raises(ShaderError, match="undefinedThing") as info:
        IsfProgram(ctx, load_shader(ROOT / "tests/data/broken/bad_glsl.fs"), rig.shared)
    assert info.value.line == 7 and info.value.file.endswith("bad_glsl.fs")


def test_engine_uniform_declared_with_another_type_is_skipped(rig: ShaderRig, tmp_path: object) -> None:
    """A file declaring `uniform int bpm` still renders; the mismatched uniform is left alone."""
    from pathlib import Path

    path = Path(str(tmp_path)) / "odd.fs"
    path.write_text('/*{"INPUTS": [{"NAME": "inputImage", "TYPE": "image"}]}*/\nuniform vec3 bpm;\n'
                    "void main() { gl_FragColor = vec4(bpm, 1.0); }\n")
    px = rig.draw(rig.program(path), frame=FrameInputs(1.0, 0.0, 0, AudioUniforms(bpm=128.0)))
    assert np.isfinite(px).all()
