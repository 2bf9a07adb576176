"""Choosing the local backend (engine/gen/backends.py): auto, local, and what happens when the model cannot be used."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.gen import backends
from engine.gen.backends import make_generators
from engine.gen.base import Generator
from tests.fakes import make_config
from tests.local_models import TinyModels


@pytest.fixture
def chosen() -> Iterator[list[tuple[Generator, Generator]]]:
    """Generators made by a test, closed after it (a local one holds a worker thread)."""
    made: list[tuple[Generator, Generator]] = []
    yield made
    for pair in made:
        for g in set(pair):
            asyncio.run(g.aclose())


def make(chosen: list[tuple[Generator, Generator]], **overrides: Any) -> tuple[str, str]:
    pair = make_generators(make_config(overrides))
    chosen.append(pair)
    return pair[0].name, pair[1].name


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "engine.gen.backends"]


def test_local_with_a_good_folder_runs_it_with_procedural_behind(tiny_models: TinyModels, chosen: Any) -> None:
    """backend = "local" and a folder that checks out: local first, the offline generator behind."""
    assert make(chosen, **{"generation.backend": "local", "local.model": str(tiny_models.sd)}) == ("local",
                                                                                                   "procedural")


def test_local_with_a_missing_preset_starts_offline_with_one_line(tmp_path: Path, chosen: Any,
                                                                  caplog: pytest.LogCaptureFixture,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A preset not pulled yet: one log line with the pull command, and the show starts offline."""
    monkeypatch.setenv("STABILITY_API_KEY", "")
    with caplog.at_level(logging.INFO, logger="engine.gen.backends"):
        got = make(chosen, **{"generation.backend": "local", "local.model": "sd-turbo",
                              "local.models_dir": str(tmp_path)})
    assert got == ("procedural", "procedural")
    assert lines(caplog) == [f"local model not used: {tmp_path / 'sd-turbo'}: no such model folder; "
                             "fetch it with: python -m engine models pull sd-turbo"]


def test_without_torch_the_line_names_the_install(tiny_models: TinyModels, chosen: Any,
                                                  caplog: pytest.LogCaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """torch (or diffusers) not installed: one line naming the extra to install; nothing is imported."""
    monkeypatch.setattr(backends, "missing_packages", lambda: ["torch", "diffusers"])
    with caplog.at_level(logging.INFO, logger="engine.gen.backends"):
        got = make(chosen, **{"generation.backend": "local", "local.model": str(tiny_models.sd)})
    assert got == ("procedural", "procedural")
    assert lines(caplog) == ['local model tiny-sd: torch and diffusers not installed; install with '
                             'pip install -e ".[local]" (the show goes on without it)']


def test_auto_without_a_gpu_does_not_pick_local(tiny_models: TinyModels, chosen: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """auto with a good model but no CUDA or MPS device: not local (Stability with a key, else offline)."""
    monkeypatch.setattr(backends, "gpu_present", lambda: False)
    monkeypatch.setenv("STABILITY_API_KEY", "")
    assert make(chosen, **{"local.model": str(tiny_models.sd)}) == ("procedural", "procedural")
    monkeypatch.setenv("STABILITY_API_KEY", "sk-test")
    assert make(chosen, **{"local.model": str(tiny_models.sd)})[0] == "stability"


def test_auto_on_this_cpu_machine_finds_no_gpu() -> None:
    """The real check, asked of torch: this CPU build sees neither CUDA nor MPS."""
    import torch

    assert backends.gpu_present() is (torch.cuda.is_available() or torch.backends.mps.is_available())


def test_auto_with_a_gpu_picks_local(tiny_models: TinyModels, chosen: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """auto with a model that checks out and a GPU: local, even with a Stability key set."""
    monkeypatch.setattr(backends, "gpu_present", lambda: True)
    monkeypatch.setenv("STABILITY_API_KEY", "sk-test")
    assert make(chosen, **{"local.model": str(tiny_models.sd), "local.device": "cpu"})[0] == "local"


def test_auto_without_a_model_never_looks_for_torch(chosen: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No [local] model: auto goes straight to Stability or offline."""
    monkeypatch.setattr(backends, "missing_packages", lambda: pytest.fail("looked for torch"))
    monkeypatch.setenv("STABILITY_API_KEY", "")
    assert make(chosen) == ("procedural", "procedural")
