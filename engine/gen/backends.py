"""Which generators run: ``[generation] backend`` and the API key decide; the offline one always backs up."""

from __future__ import annotations

import logging
import os
from concurrent.futures import Executor

from engine.config import Config
from engine.gen.base import Generator
from engine.gen.procedural import ProceduralGenerator

log = logging.getLogger(__name__)


def stability_key(cfg: Config) -> str:
    """The API key: the environment wins over the config file."""
    return os.environ.get("STABILITY_API_KEY") or cfg.stability.api_key


def make_generators(cfg: Config, pool: Executor | None = None) -> tuple[Generator, Generator]:
    """(primary, fallback): Stability with the procedural generator behind it, or procedural alone."""
    procedural = ProceduralGenerator(pool)
    backend = cfg.generation.backend
    if backend == "procedural" or (backend == "auto" and not stability_key(cfg)):
        return procedural, procedural
    if not stability_key(cfg):
        log.warning("generation.backend is stability but no API key is set (STABILITY_API_KEY): "
                    "the offline generator makes every image")
        return procedural, procedural
    from engine.gen.stability import StabilityGenerator

    return StabilityGenerator(cfg.stability, cfg.generation), procedural
