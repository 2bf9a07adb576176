"""The shader library: loading, last-good on failure, parameters across reloads, removal."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import moderngl
import pytest

from engine.shaders.library import ShaderLibrary
from engine.shaders.program import SharedTextures
from tests.fakes import ROOT, TEST_SHADERS

BROKEN = ROOT / "tests" / "data" / "broken"


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


def test_deleted_file_disappears(lib: ShaderLibrary, folder: Path) -> None:
    """Removing a file removes its shader."""
    (folder / "wipe.fs").unlink()
    lib.apply_changes([folder / "wipe.fs"])
    assert lib.transitions() == ["fade"]


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
