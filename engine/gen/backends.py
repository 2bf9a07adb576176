"""Which generators run: ``[generation] backend``, the local model and the API key decide; the offline one
always backs up.

    procedural   the offline generator alone
    local        the local diffusers model ([local] model), the offline generator behind it
    stability    Stability's API (needs a key), the offline generator behind it
    auto         local when a model is configured, its folder checks out and a CUDA or MPS GPU is there;
                 else Stability when a key is set; else the offline generator

A local model that cannot be used at start (torch not installed, the folder missing or broken) is
one log line saying what to do, and the show starts on the next backend. A model that passes the
folder check but fails to load later is the local generator's own "failed" state, on the VJ page.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from concurrent.futures import Executor

from engine.config import Config
from engine.gen.base import Generator
from engine.gen.procedural import ProceduralGenerator

log = logging.getLogger(__name__)

LOCAL_PACKAGES = ("torch", "diffusers", "transformers")
INSTALL_LOCAL = 'pip install -e ".[local]"'


def stability_key(cfg: Config) -> str:
    """The API key: the environment wins over the config file."""
    return os.environ.get("STABILITY_API_KEY") or cfg.stability.api_key


def make_generators(cfg: Config, pool: Executor | None = None) -> tuple[Generator, Generator]:
    """(primary, fallback): the chosen backend with the procedural generator behind it, or procedural alone."""
    procedural = ProceduralGenerator(pool)
    backend = cfg.generation.backend
    if backend == "procedural":
        return procedural, procedural
    if backend == "local" or (backend == "auto" and cfg.local.model.strip()):
        local = local_generator(cfg, need_gpu=backend == "auto")
        if local is not None:
            return local, procedural
        if backend == "local":
            return procedural, procedural
    if not stability_key(cfg):
        if backend == "stability":
            log.warning("generation.backend is stability but no API key is set (STABILITY_API_KEY): "
                        "the offline generator makes every image")
        return procedural, procedural
    from engine.gen.stability import StabilityGenerator

    return StabilityGenerator(cfg.stability, cfg.generation), procedural


def missing_packages() -> list[str]:
    """The local backend's packages that are not installed (found without importing them)."""
    return [name for name in LOCAL_PACKAGES if importlib.util.find_spec(name) is None]


def gpu_present() -> bool:
    """A CUDA or MPS device, asked of torch; False when torch cannot even be imported."""
    try:
        from engine.gen.local.device import gpu_available
    except Exception as err:  # a broken torch install (missing libraries) must not stop the show
        log.warning("local model: torch cannot be imported (%s: %s); reinstall it with %s",
                    type(err).__name__, err, INSTALL_LOCAL)
        return False
    return gpu_available()


def local_generator(cfg: Config, need_gpu: bool) -> Generator | None:
    """The local generator, loading in the background; None (and one log line) when it cannot be used."""
    from engine.gen.local.folder import LocalModelError, inspect_model
    from engine.gen.local.presets import plan_for

    plan = plan_for(cfg.local)
    if plan is None:
        log.warning('generation.backend is local but [local] model is empty (a preset such as "sd-turbo", '
                    "or a diffusers folder; python -m engine models list): the offline generator makes every image")
        return None
    missing = missing_packages()
    if missing:
        log.warning("local model %s: %s not installed; install with %s (the show goes on without it)",
                    plan.name, " and ".join(missing), INSTALL_LOCAL)
        return None
    try:
        inspect_model(plan.folder, plan.preset.name if plan.preset is not None else "")
    except LocalModelError as err:
        log.warning("local model not used: %s", err)
        return None
    if need_gpu and not gpu_present():
        log.info("local model %s: no CUDA or MPS GPU here, so auto does not pick it "
                 '(backend = "local" runs it on the CPU, slowly)', plan.name)
        return None
    from engine.gen.local.generator import LocalGenerator

    return LocalGenerator(cfg.local, plan)
