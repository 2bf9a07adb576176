"""The shader library: loading, last-good on failure or a missing file, parameters across reloads, removal."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import moderngl
import pytest

from engine.shaders.library import ShaderEntry, ShaderLibrary
from engine.shaders.program import SharedTextures
from tests.fakes import ROOT, TEST_SHADERS

BROKEN = ROOT / "tests" / "data" / "broken"
GAIN = {"NAME": "gain", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 2.0}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("vignette.fs", "wipe.fs", "fade.glsl", "feedback.fs"):
        shutil.copy(TEST_SHADERS / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def lib(ctx: moderngl.Context, folder: Path) -> Iterator[ShaderLibrary]:
    shared = SharedTextures(ctx)
    library = ShaderLibrary(ctx, folder, shared)
    library.scan()
    yield library
    library.release()
    shared.release()


def break_glsl(path: Path) -> None:
    path.write_text(path.read_text().replace("gl_FragColor =", "gl_FragColor = oops +"))


def load_effect(lib: ShaderLibrary, folder: Path, *inputs: dict[str, object]) -> ShaderEntry:
    """(Re)write level.fs, a pass-through effect with these INPUTS, and load it."""
    header = json.dumps({"INPUTS": [{"NAME": "inputImage", "TYPE": "image"}, *inputs]})
    path = folder / "level.fs"
    path.write_text(f"/*{header}*/\nvoid main() {{ gl_FragColor = IMG_THIS_NORM_PIXEL(inputImage); }}\n")
    lib.apply_changes([path])
    entry = lib.get("level")
    assert entry is not None and entry.error is None
    return entry


def test_scan_sorts_effects_and_transitions(lib: ShaderLibrary) -> None:
    """Effects and transitions (ISF and gl-transitions) are listed by name."""
    assert lib.effects() == ["feedback", "vignette"]
    assert lib.transitions() == ["fade", "wipe"]
    assert lib.errors() == []


def test_broken_reload_keeps_the_last_good_program(lib: ShaderLibrary, folder: Path) -> None:
    """A failed compile keeps the old program running and records file, line and message."""
    good = lib.get("vignette")
    assert good is not None and good.program is not None
    old_program = good.program
    break_glsl(folder / "vignette.fs")
    entry = lib.load(folder / "vignette.fs")
    assert entry.program is old_program
    assert entry.error is not None and entry.error.line == 13 and "oops" in entry.error.message
    assert "vignette" in lib.effects()


def test_fixing_the_file_clears_the_error(lib: ShaderLibrary, folder: Path) -> None:
    """The next good save replaces the program and the error goes away."""
    text = (folder / "vignette.fs").read_text()
    break_glsl(folder / "vignette.fs")
    lib.load(folder / "vignette.fs")
    (folder / "vignette.fs").write_text(text)
    entry = lib.load(folder / "vignette.fs")
    assert entry.error is None and lib.errors() == [] and entry.version == 2


def test_parameter_values_survive_reload(lib: ShaderLibrary, folder: Path) -> None:
    """A value the VJ set is still set after the file is saved again."""
    entry = lib.get("vignette")
    assert entry is not None
    entry.params.set("amount", 0.8)
    lib.load(folder / "vignette.fs")
    assert entry.params.get("amount") == 0.8


def test_a_broken_new_file_is_listed_with_its_error_but_not_usable(lib: ShaderLibrary, folder: Path) -> None:
    """A new file that never compiled shows its error and stays out of the pickers."""
    shutil.copy(BROKEN / "bad_glsl.fs", folder / "bad_glsl.fs")
    lib.apply_changes([folder / "bad_glsl.fs"])
    assert "bad_glsl" not in lib.effects()
    assert [e.line for e in lib.errors()] == [7]


def test_deleted_file_keeps_its_last_good_program(lib: ShaderLibrary, folder: Path) -> None:
    """A shader that loaded and whose file is deleted keeps running, flagged missing."""
    old_program = lib.get("wipe").program  # type: ignore[union-attr]
    (folder / "wipe.fs").unlink()
    lib.apply_changes([folder / "wipe.fs"])
    entry = lib.get("wipe")
    assert entry is not None and entry.program is old_program
    assert lib.transitions() == ["fade", "wipe"]
    assert [(e.file, e.line, e.message) for e in lib.errors()] == [
        (str(folder / "wipe.fs"), None, "file is missing; the last good version is running")]


def test_missing_file_is_the_shader_error_control_surfaces_see(lib: ShaderLibrary, folder: Path) -> None:
    """The catalog's error for a missing file says so and that the last good version runs."""
    (folder / "wipe.fs").unlink()
    lib.apply_changes([folder / "wipe.fs"])
    info = {s.name: s for s in lib.catalog()}
    assert info["wipe"].error == f"{folder / 'wipe.fs'}: file is missing; the last good version is running"


def test_restored_file_clears_the_error_and_keeps_the_values(lib: ShaderLibrary, folder: Path) -> None:
    """The file comes back: it is loaded again, the error clears and the VJ's value is still set."""
    path = folder / "vignette.fs"
    text = path.read_text()
    lib.get("vignette").params.set("amount", 0.8)  # type: ignore[union-attr]
    path.unlink()
    lib.apply_changes([path])
    path.write_text(text)
    lib.apply_changes([path])
    entry = lib.get("vignette")
    assert entry is not None and entry.error is None and entry.version == 2
    assert lib.errors() == [] and entry.params.get("amount") == 0.8


def test_deleted_never_loaded_file_leaves_the_library(lib: ShaderLibrary, folder: Path) -> None:
    """A shader that never compiled has nothing to keep running: deleting its file removes it and its error."""
    shutil.copy(BROKEN / "bad_glsl.fs", folder / "bad_glsl.fs")
    lib.apply_changes([folder / "bad_glsl.fs"])
    (folder / "bad_glsl.fs").unlink()
    lib.apply_changes([folder / "bad_glsl.fs"])
    assert lib.get("bad_glsl") is None and lib.errors() == []


def test_renamed_file_takes_over_its_missing_shader(lib: ShaderLibrary, folder: Path) -> None:
    """vignette.fs renamed to vignette.frag: the same shader, values kept, no error."""
    lib.get("vignette").params.set("amount", 0.8)  # type: ignore[union-attr]
    (folder / "vignette.fs").rename(folder / "vignette.frag")
    lib.apply_changes([folder / "vignette.fs", folder / "vignette.frag"])
    entry = lib.get("vignette")
    assert entry is not None and entry.path == folder / "vignette.frag"
    assert entry.error is None and entry.params.get("amount") == 0.8


def test_reload_clamps_a_value_to_a_narrowed_range(lib: ShaderLibrary, folder: Path) -> None:
    """A value the VJ set is kept, clamped to the input's new MAX."""
    entry = load_effect(lib, folder, GAIN)
    entry.params.set("gain", 1.7)
    load_effect(lib, folder, {**GAIN, "MAX": 1.0})
    assert entry.params.get("gain") == 1.0


def test_reload_drops_the_value_of_a_removed_input(lib: ShaderLibrary, folder: Path) -> None:
    """An input removed from the file takes its value with it: added back, it starts at its default."""
    entry = load_effect(lib, folder, GAIN)
    entry.params.set("gain", 1.7)
    load_effect(lib, folder)
    assert entry.params.values() == {}
    load_effect(lib, folder, GAIN)
    assert entry.params.get("gain") == 0.5


def test_reload_drops_a_value_whose_input_changed_type(lib: ShaderLibrary, folder: Path) -> None:
    """A float input that becomes a long starts at the new default, not at the old value rounded."""
    entry = load_effect(lib, folder, GAIN)
    entry.params.set("gain", 1.7)
    load_effect(lib, folder, {"NAME": "gain", "TYPE": "long", "DEFAULT": 0, "MIN": 0, "MAX": 4})
    assert entry.params.get("gain") == 0


def test_a_value_never_set_follows_a_new_default(lib: ShaderLibrary, folder: Path) -> None:
    """Editing DEFAULT in the file shows on save while the VJ has not touched that parameter."""
    entry = load_effect(lib, folder, GAIN)
    load_effect(lib, folder, {**GAIN, "DEFAULT": 0.8})
    assert entry.params.get("gain") == 0.8


def test_pass_sizes_see_the_parameter_values(lib: ShaderLibrary, folder: Path) -> None:
    """A pass WIDTH that uses a parameter ($divider) loads: sizes are checked with the fitted values."""
    shutil.copy(TEST_SHADERS / "half_size.fs", folder / "half_size.fs")
    lib.apply_changes([folder / "half_size.fs"])
    assert lib.errors() == [] and "half_size" in lib.effects()


def test_companion_and_imported_changes_reload_their_shader(ctx: moderngl.Context, tmp_path: Path) -> None:
    """Editing a .vs or an imported image reloads the shader that uses it."""
    for name in ("old_glsl.fs", "old_glsl.vs", "imported.fs", "checker.png"):
        shutil.copy(TEST_SHADERS / name, tmp_path / name)
    shared = SharedTextures(ctx)
    lib = ShaderLibrary(ctx, tmp_path, shared)
    try:
        lib.scan()
        lib.apply_changes([tmp_path / "old_glsl.vs", tmp_path / "checker.png"])
        assert lib.get("old_glsl").version == 2  # type: ignore[union-attr]
        assert lib.get("imported").version == 2  # type: ignore[union-attr]
    finally:
        lib.release()
        shared.release()


def test_catalog_lists_parameters_for_control_surfaces(lib: ShaderLibrary) -> None:
    """Each shader's live parameters come with type, label, default, range and value."""
    info = {s.name: s for s in lib.catalog()}
    amount = info["vignette"].params[0]
    assert (amount.name, amount.type, amount.label, amount.default, amount.min, amount.max, amount.value) == (
        "amount", "float", "Amount", 0.5, 0.0, 1.0, 0.5)
    assert info["wipe"].kind == "transition"
    assert [p.name for p in info["fade"].params] == ["strength", "direction", "grid", "reverse"]


def test_missing_folder_is_an_empty_library(ctx: moderngl.Context, tmp_path: Path) -> None:
    """No shaders/ folder: only the built-ins, and a warning."""
    shared = SharedTextures(ctx)
    lib = ShaderLibrary(ctx, tmp_path / "nope", shared)
    lib.scan()
    assert lib.effects() == [] and lib.transitions() == []
    shared.release()
