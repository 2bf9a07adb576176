"""Words to look: the seed and the composition a prompt's words choose."""

from __future__ import annotations

import pytest

from engine.gen.look import STYLES, seed_for, style_for

STYLE_PROMPTS = {  # one prompt per style; tests/test_procedural.py draws each of them
    "flow": "silk river in the wind",
    "nebula": "stars in deep space",
    "mountains": "mountain sunset",
    "waves": "ocean waves at night",
    "skyline": "neon city",
    "mandala": "lotus flower",
    "crystal": "ice crystal",
    "glow": "golden light",
}


def test_negative_seed_is_refused() -> None:
    """A negative seed is a caller's bug, not something to guess around."""
    with pytest.raises(ValueError, match="seed"):
        seed_for("a red fox", -1)


@pytest.mark.parametrize(("style", "prompt"), sorted(STYLE_PROMPTS.items()))
def test_subject_words_choose_the_composition(style: str, prompt: str) -> None:
    """Words for subjects and shapes pick the style; every style is reachable."""
    assert style_for(prompt) == style
    assert set(STYLE_PROMPTS) == set(STYLES)


def test_a_scene_holds_the_sky_words() -> None:
    """Stars over mountains draw the mountains (with a night sky), not a nebula."""
    assert style_for("starry night over the mountains") == "mountains"
    assert style_for("stars over the city") == "skyline"
