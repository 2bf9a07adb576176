"""A ``GenerationRequest`` turned into what the local model is asked: size, steps, guidance, seeds, strength.

Pure arithmetic, no torch, so every rule is tested with plain calls:

* size: the request's shape (the show's aspect) at the model's own longest side (or ``[local] size``),
  both sides multiples of 64: a UNet halves the latent (1/8 of the image) several times, and sizes
  off that grid either fail or waste a border; the model also draws best near the size it was made for.
* steps: ``[local] steps``, else the model's own (1 for turbo models). For image-to-image diffusers
  runs only the last ``int(steps * strength)`` of them, so steps grow until that is at least one
  (sd-turbo's card: "make sure that num_inference_steps * strength is larger or equal to 1").
* guidance: ``[local] cfg_scale`` when set (>= 0), else the request's (the VJ's) when above 0,
  else the model's own (0 for turbo models: they were distilled without guidance).
* seeds: the request's seed, or a random one when it is 0; sample ``i`` uses ``seed + i``, each with
  its own generator, so any sample is made again alone from its reported seed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from engine.config import LocalConfig
from engine.gen.base import GenerationRequest

GRID = 64
MIN_SIDE = 64
MIN_STRENGTH = 0.01  # below this an image-to-image step changes nothing worth the time
MAX_SEED = 2**32 - 1 - 16  # room for seed + sample index within 32 bits


@dataclass(frozen=True)
class Knobs:
    """One request as the pipeline will run it."""

    width: int
    height: int
    steps: int
    cfg: float
    seeds: tuple[int, ...]  # one per sample
    strength: float  # image-to-image only

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


def fit_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """``width`` x ``height``'s shape with its longest side ``longest``, both sides on the 64 grid."""
    longest = max(MIN_SIDE, round(longest / GRID) * GRID)
    width, height = max(1, width), max(1, height)
    scale = longest / max(width, height)

    def snap(side: int) -> int:
        return max(MIN_SIDE, int(side * scale / GRID + 0.5) * GRID)

    return snap(width), snap(height)


def steps_for(configured: int, own: int) -> int:
    return configured if configured > 0 else max(1, own)


def cfg_for(configured: float, requested: float | None, own: float) -> float:
    if configured >= 0:
        return configured
    if requested is not None and requested > 0:
        return requested
    return own


def img2img_steps(steps: int, strength: float) -> tuple[int, float]:
    """(steps, strength) such that ``int(steps * strength) >= 1``: at least one step really runs."""
    strength = min(1.0, max(MIN_STRENGTH, strength))
    while int(steps * strength) < 1:
        steps += 1
    return steps, strength


def seeds_for(seed: int, samples: int) -> tuple[int, ...]:
    """``seed``, ``seed + 1``, ...; a random start when ``seed`` is 0."""
    start = seed if seed > 0 else 1 + secrets.randbelow(MAX_SEED)
    return tuple(start + i for i in range(max(1, samples)))


def knobs_for(request: GenerationRequest, cfg: LocalConfig, own_steps: int, own_cfg: float, native: int) -> Knobs:
    """What the model is asked for ``request``, given ``[local]`` and the model's own values."""
    width, height = fit_size(request.width, request.height, cfg.size or native)
    steps = steps_for(cfg.steps, own_steps)
    strength = request.strength
    if request.init_image:
        steps, strength = img2img_steps(steps, strength)
    return Knobs(width, height, steps, cfg_for(cfg.cfg_scale, request.cfg_scale, own_cfg),
                 seeds_for(request.seed, request.samples), strength)
