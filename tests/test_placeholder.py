"""The built-in placeholder image source."""

from __future__ import annotations

import numpy as np

from engine.gen.placeholder import placeholder_image
from tests.fakes import assert_not_uniform


def test_same_seed_same_image() -> None:
    """Deterministic: a seed always gives the same picture."""
    assert np.array_equal(placeholder_image(3, 64, 48), placeholder_image(3, 64, 48))


def test_different_seeds_differ() -> None:
    """Different seeds give visibly different pictures."""
    a = placeholder_image(1, 64, 64).astype(int)
    b = placeholder_image(2, 64, 64).astype(int)
    assert np.abs(a - b).mean() > 10


def test_shape_and_content() -> None:
    """RGBA at the asked size, opaque, with structure."""
    img = placeholder_image(5, 80, 40)
    assert img.shape == (40, 80, 4) and img.dtype == np.uint8
    assert (img[..., 3] == 255).all()
    assert_not_uniform(img[..., :3])
