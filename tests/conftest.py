"""Shared fixtures. GL tests need Mesa's EGL: without it they fail, never skip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import moderngl
import pytest

from engine.config import Config
from engine.errors import RenderError
from engine.render.gl import standalone_context
from engine.store import Journal
from tests.fakes import make_config


@pytest.fixture(scope="session")
def gl_ctx() -> Iterator[moderngl.Context]:
    """One headless GL context for the session (creating one costs ~100 ms)."""
    try:
        ctx = standalone_context()
    except RenderError as err:
        pytest.fail(f"headless OpenGL is required for this test and is missing: {err}", pytrace=False)
    yield ctx
    ctx.release()


@pytest.fixture
def ctx(gl_ctx: moderngl.Context) -> moderngl.Context:
    """The session context, with GL errors from an earlier test cleared."""
    _ = gl_ctx.error
    return gl_ctx


@pytest.fixture
def cfg() -> Config:
    return make_config()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """A fresh show journal in a temporary folder, closed after the test."""
    j = Journal.open(tmp_path)
    yield j
    j.close()
