"""ISF header parsing: every feature, and every mistake with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ShaderError
from engine.shaders.isf import parse_isf
from engine.shaders.loader import load_shader
from engine.shaders.source import InputType, Kind
from tests.fakes import TEST_SHADERS

P = Path("x.fs")


def isf(header: str, body: str = "void main() { gl_FragColor = vec4(1.0); }\n") -> str:
    return f"/*{header}*/\n{body}"


def test_inputs_of_every_type_are_read() -> None:
    """float, bool, long with VALUES/LABELS, color, point2D, event, image, audio, audioFFT."""
    src = load_shader(TEST_SHADERS / "all_inputs.fs")
    types = {i.name: i.type for i in src.inputs}
    assert types == {
        "inputImage": InputType.IMAGE, "level": InputType.FLOAT, "flag": InputType.BOOL, "mode": InputType.LONG,
        "tint": InputType.COLOR, "spot": InputType.POINT2D, "kick": InputType.EVENT, "extra": InputType.IMAGE,
        "wave": InputType.AUDIO, "fft": InputType.AUDIO_FFT,
    }
    mode = src.input("mode")
    assert mode is not None and mode.values == (0, 1, 2) and mode.labels == ("zero", "one", "two")
    assert src.input("tint").default == (0.0, 0.5, 1.0, 1.0)  # type: ignore[union-attr]
    assert src.input("spot").min == (0.0, 0.0)  # type: ignore[union-attr]
    assert src.input("wave").max == 256  # type: ignore[union-attr]
    assert src.input("level").label == "Level"  # type: ignore[union-attr]
    assert [p.name for p in src.params] == ["level", "flag", "mode", "tint", "spot", "kick"]


def test_kinds_are_recognised() -> None:
    """inputImage → effect; startImage/endImage/progress → transition; neither → generator."""
    assert load_shader(TEST_SHADERS / "vignette.fs").kind is Kind.EFFECT
    assert load_shader(TEST_SHADERS / "wipe.fs").kind is Kind.TRANSITION
    assert parse_isf(P, isf('{"INPUTS": []}')).kind is Kind.GENERATOR


def test_passes_targets_persistence_float_and_sizes() -> None:
    """PASSES keep TARGET, PERSISTENT, FLOAT and the WIDTH/HEIGHT expressions."""
    feedback = load_shader(TEST_SHADERS / "feedback.fs")
    assert [(p.target, p.persistent, p.float) for p in feedback.passes] == [("accum", True, True), (None, False, False)]
    half = load_shader(TEST_SHADERS / "half_size.fs")
    assert (half.passes[0].width, half.passes[0].height) == ("floor($WIDTH/$divider)", "max($HEIGHT/2.0, 1.0)")


def test_isf1_persistent_buffers_are_understood() -> None:
    """ISF 1 listed persistent buffers apart from the passes."""
    src = parse_isf(P, isf('{"PERSISTENT_BUFFERS": ["trail"], "PASSES": [{"TARGET": "trail"}, {}]}'))
    assert src.passes[0].persistent


def test_imported_images_resolve_beside_the_file() -> None:
    """IMPORTED paths are relative to the shader file."""
    src = load_shader(TEST_SHADERS / "imported.fs")
    assert [(i.name, i.path.name) for i in src.imported] == [("checker", "checker.png")]
    assert src.imported[0].path in src.depends


def test_imported_path_cannot_leave_the_folder(tmp_path: Path) -> None:
    """An IMPORTED path that climbs out of the shader's folder is refused."""
    with pytest.raises(ShaderError, match=r"must be a file beside the shader"):
        parse_isf(tmp_path / "x.fs", isf('{"IMPORTED": {"pw": {"PATH": "../../etc/passwd"}}}'))


def test_body_keeps_file_line_numbers() -> None:
    """The header is blanked, not removed: body line N is file line N."""
    text = (TEST_SHADERS / "vignette.fs").read_text()
    src = load_shader(TEST_SHADERS / "vignette.fs")
    assert src.fragment.count("\n") == text.count("\n")
    assert src.fragment.splitlines()[10] == text.splitlines()[10]


@pytest.mark.parametrize(
    ("text", "line", "match"),
    [
        ("void main() {}", 1, "no ISF header"),
        ("/*{\n\"INPUTS\": [}\n*/\n", 2, "header is not valid JSON"),
        ("/*{\n  \"INPUTS\": [\n    {\"NAME\": \"a\", \"TYPE\": \"slider\"}\n  ]\n}*/", 3,
         "TYPE 'slider' is not one of"),
        ("/*{\"INPUTS\": [{\"NAME\": \"2bad\", \"TYPE\": \"float\"}]}*/", 1, "not a valid GLSL identifier"),
        ("/*{\"INPUTS\": {}}*/", 1, "INPUTS must be a list"),
        ("/*{\n\"INPUTS\": [\n{\"NAME\": \"a\", \"TYPE\": \"float\"},\n{\"NAME\": \"a\", \"TYPE\": \"bool\"}]}*/", 3,
         "input a is declared twice"),
        ("/*{\"PASSES\": [{\"TARGET\": \"a b\"}]}*/", 1, "TARGET 'a b' is not a valid GLSL identifier"),
        ("/*{\"INPUTS\": [{\"NAME\": \"m\", \"TYPE\": \"long\", \"VALUES\": [1, 2], \"LABELS\": [\"a\"]}]}*/", 1,
         "VALUES and LABELS differ in length"),
        ("/*{\"INPUTS\": []}", 1, "never closed"),
        ("/*[1, 2]*/", 1, "must be a JSON object"),
    ],
)
def test_header_mistakes_name_file_and_line(text: str, line: int, match: str) -> None:
    """Each mistake is a ShaderError with the line it is on."""
    with pytest.raises(ShaderError, match=match) as info:
        parse_isf(P, text)
    assert info.value.file == "x.fs" and info.value.line == line


def test_defaults_are_filled_in() -> None:
    """Inputs without DEFAULT get the ISF defaults."""
    src = parse_isf(P, isf('{"INPUTS": [{"NAME": "f", "TYPE": "float", "MIN": 0.2}, {"NAME": "b", "TYPE": "bool"},'
                           '{"NAME": "c", "TYPE": "color"}]}'))
    assert [i.default for i in src.inputs] == [0.2, False, (0.0, 0.0, 0.0, 1.0)]


def test_input_named_like_a_builtin_names_its_line() -> None:
    """An input called TIME would clash with the built-in: refused on the input's own line."""
    text = isf('{"INPUTS": [\n{"NAME": "TIME", "TYPE": "float"}\n]}')
    with pytest.raises(ShaderError, match="input TIME has the name of an ISF built-in") as info:
        parse_isf(P, text)
    assert info.value.line == 2
