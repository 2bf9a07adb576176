"""Shared fixtures. GL tests need Mesa's EGL: without it they fail, never skip."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import moderngl
import pytest
from playwright.sync_api import Browser, sync_playwright

from engine.config import Config
from engine.errors import RenderError
from engine.render.gl import standalone_context
from engine.render.upload import TextureSlots
from engine.store import Journal
from tests.fakes import make_config
from tests.local_models import TinyModels, build_all

# No test reaches the Hugging Face Hub: set before anything imports huggingface_hub, which reads it once.
os.environ["HF_HUB_OFFLINE"] = "1"


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
def slots(ctx: moderngl.Context) -> Iterator[TextureSlots]:
    """The compositor's image textures: 4 slots of 256 px, released after the test."""
    s = TextureSlots(ctx, 256, 4)
    yield s
    s.release_all()


@pytest.fixture
def cfg() -> Config:
    return make_config()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """A fresh show journal in a temporary folder, closed after the test."""
    j = Journal.open(tmp_path)
    yield j
    j.close()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    """Tiny random-weight diffusers pipelines (SD 1.x and SDXL shapes), saved once per session.

    torch computes on one thread in the tests: on these shared 2-core machines its default two threads
    spin-wait on each other while other work runs, and a 128 px image takes 0.4-1.8 s instead of 0.04 s.
    """
    import torch

    torch.set_num_threads(1)
    return build_all(tmp_path_factory.mktemp("models"))


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("Chromium is required for the phone-page tests (Debian package chromium); run `make test`",
                    pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()
