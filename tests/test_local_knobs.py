"""A request turned into the local model's knobs (engine/gen/local/knobs.py): pure arithmetic."""

from __future__ import annotations

import pytest

from engine.config import LocalConfig
from engine.gen.base import GenerationRequest
from engine.gen.local.knobs import cfg_for, fit_size, img2img_steps, knobs_for, seeds_for


@pytest.mark.parametrize(("asked", "longest", "fitted"), [
    ((1024, 1024), 512, (512, 512)),
    ((1920, 1080), 512, (512, 320)),  # 16:9 at 512: 288 rounds to the 64 grid
    ((1080, 1920), 1024, (576, 1024)),
    ((128, 1024), 256, (64, 256)),  # never below 64
    ((300, 200), 500, (512, 320)),  # the longest side itself on the grid
])
def test_the_size_keeps_the_shape_on_the_64_grid(asked: tuple[int, int], longest: int,
                                                 fitted: tuple[int, int]) -> None:
    """The show's shape at the model's size, both sides multiples of 64."""
    assert fit_size(*asked, longest) == fitted


@pytest.mark.parametrize(("steps", "strength", "expected"), [
    (1, 0.35, (3, 0.35)),  # int(3 * 0.35) = 1
    (1, 0.5, (2, 0.5)),  # sd-turbo's card: 2 steps at strength 0.5
    (25, 0.35, (25, 0.35)),  # already 8 steps
    (1, 0.0, (100, 0.01)),  # no strength at all still makes one step
])
def test_image_to_image_always_runs_a_step(steps: int, strength: float, expected: tuple[int, float]) -> None:
    """Steps grow until int(steps * strength) >= 1: diffusers runs only that many."""
    got = img2img_steps(steps, strength)
    assert got == expected and int(got[0] * got[1]) >= 1


def test_guidance_from_the_config_then_the_request_then_the_model() -> None:
    """[local] cfg_scale >= 0 wins; else the request's when above 0; else the model's own."""
    assert cfg_for(0.0, 7.0, 7.5) == 0.0
    assert cfg_for(-1.0, 4.0, 0.0) == 4.0
    assert cfg_for(-1.0, None, 7.5) == 7.5 and cfg_for(-1.0, 0.0, 0.0) == 0.0


def test_seeds_are_consecutive_and_zero_picks_one() -> None:
    """Sample i has seed + i; seed 0 draws a start, never 0 itself."""
    assert seeds_for(41, 3) == (41, 42, 43)
    drawn = seeds_for(0, 2)
    assert drawn[0] > 0 and drawn[1] == drawn[0] + 1


def test_config_steps_and_size_win_over_the_models() -> None:
    """[local] steps and size replace the model's own; an init image makes it image-to-image."""
    request = GenerationRequest("p", "a boat", width=1920, height=1080, seed=5, samples=2, init_image=b"png",
                                strength=0.5)
    knobs = knobs_for(request, LocalConfig(steps=1, size=256), own_steps=25, own_cfg=7.5, native=512)
    assert (knobs.width, knobs.height, knobs.steps, knobs.cfg, knobs.seeds) == (256, 128, 2, 7.5, (5, 6))
    own = knobs_for(GenerationRequest("p", "a boat"), LocalConfig(), own_steps=25, own_cfg=7.5, native=512)
    assert (own.size, own.steps) == ("512x512", 25)
