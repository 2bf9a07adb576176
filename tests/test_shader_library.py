"""The shaders shipped in shaders/: all pass check-shaders and draw a real picture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import moderngl
import numpy as np
import pytest

from engine.shaders.check import Checker, shader_files
from engine.shaders.loader import load_shader
from engine.shaders.source import Kind
from tests.engine_process import run_engine
from tests.fakes import ROOT, SHADERS

FILES = shader_files([SHADERS])


@pytest.fixture(scope="module")
def checker(gl_ctx: moderngl.Context) -> Iterator[Checker]:
    c = Checker(gl_ctx)
    yield c
    c.release()


def test_library_is_big_enough() -> None:
    """At least 12 effects and 8 transitions ship with the engine."""
    kinds = [load_shader(p).kind for p in FILES]
    assert sum(k in (Kind.EFFECT, Kind.GENERATOR) for k in kinds) >= 12
    assert sum(k is Kind.TRANSITION for k in kinds) >= 8


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_shader_draws_a_real_picture(checker: Checker, path: Path) -> None:
    """Compiles, no NaN, not one flat colour, over several frames."""
    px = checker.render(load_shader(path), frames=3)
    assert np.isfinite(px).all(), "NaN or infinity in the frame"
    rgb = px[..., :3]
    assert float(rgb.std(axis=(0, 1)).max()) > 0.02, "the frame is a single flat colour"


@pytest.mark.parametrize("path", [p for p in FILES if load_shader(p).kind is Kind.TRANSITION],
                         ids=lambda p: p.name)
def test_transition_ends_are_its_images(checker: Checker, path: Path) -> None:
    """At progress 0 a transition shows the start image, at 1 the end image.

    The outermost pixels are left out: gl-transitions sample layers clamped half a texel inside
    the image (so a texture slot's neighbours never bleed in), which shifts only the border ring.
    """
    src = load_shader(path)
    inner = (slice(2, -2), slice(2, -2))
    start = checker.render(src, progress=0.0)[inner]
    end = checker.render(src, progress=1.0)[inner]
    a, b = (checker.render(load_shader(ROOT / "tests/data/isf/wipe.fs"), progress=p)[inner] for p in (0.0, 1.0))
    assert np.abs(start - a).max() < 3 / 255
    assert np.abs(end - b).max() < 3 / 255


def test_check_shaders_command_passes_on_the_library(tmp_path: Path) -> None:
    """`python -m engine check-shaders shaders/` says ok for every file and exits 0."""
    rc, out = run_engine(["check-shaders", str(SHADERS)], tmp_path)
    assert rc == 0, out
    assert out.splitlines()[-1] == f"{len(FILES)} ok, 0 failed"


def test_check_shaders_command_reports_failures_with_lines(tmp_path: Path) -> None:
    """A broken file gives FAIL PATH:LINE: message and exit code 1."""
    broken = ROOT / "tests" / "data" / "broken"
    rc, out = run_engine(["check-shaders", str(broken / "bad_glsl.fs"), str(ROOT / "tests/data/isf/wipe.fs")], tmp_path)
    assert rc == 1
    assert f"FAIL {broken / 'bad_glsl.fs'}:7: `undefinedThing' undeclared" in out
    assert out.splitlines()[-1] == "1 ok, 1 failed"


def test_check_shaders_without_paths_is_a_usage_error(tmp_path: Path) -> None:
    """No paths: exit code 2."""
    rc, _ = run_engine(["check-shaders"], tmp_path)
    assert rc == 2
