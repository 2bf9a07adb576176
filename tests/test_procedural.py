"""The offline procedural generator: pictures from the words of a prompt, deterministic and clean."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from PIL import Image

from engine.gen.base import FailureKind, GenerationError, GenerationRequest
from engine.gen.look import seed_for
from engine.gen.procedural import ProceduralGenerator, procedural_image
from tests.test_look import STYLE_PROMPTS

W, H = 128, 96  # small: the whole file stays fast


def luminance(img: np.ndarray) -> np.ndarray:
    rgb = img[..., :3].astype(np.float64)
    lum: np.ndarray = 0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]
    return lum


def mean_rgb(img: np.ndarray) -> np.ndarray:
    means: np.ndarray = img[..., :3].reshape(-1, 3).mean(axis=0)
    return means


def request(prompt: str, **kw: Any) -> GenerationRequest:
    return GenerationRequest(prompt_id="p1", prompt=prompt, **{"width": 160, "height": 128, **kw})


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that records which jobs it ran and on which threads."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.submitted = 0
        self.threads: set[int] = set()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1

        def run() -> Any:
            self.threads.add(threading.get_ident())
            return fn(*args, **kwargs)

        return super().submit(run)


def test_same_prompt_and_seed_same_image() -> None:
    """Deterministic: the same text and seed give bit-identical pixels."""
    a = procedural_image("a red fox in the snow", 7, W, H)
    b = procedural_image("a red fox in the snow", 7, W, H)
    assert np.array_equal(a, b)


def test_seed_zero_is_derived_from_the_text() -> None:
    """Seed 0 means "from the text": a fixed sha256-based value, blind to case and spacing."""
    assert seed_for("a red fox in the snow", 0) == 969196553  # same on every run and machine
    assert seed_for("A  Red Fox in the snow ", 0) == 969196553
    assert seed_for("a red fox in the snow", 42) == 42
    derived = seed_for("a red fox in the snow", 0)
    assert np.array_equal(procedural_image("a red fox in the snow", 0, W, H),
                          procedural_image("a red fox in the snow", derived, W, H))


@pytest.mark.parametrize(("a", "b"), [("a red fox in the snow", "a blue whale in the sky"),
                                      ("a cat playing piano", "a dog playing piano"),
                                      ("lotus flower", "ice crystal")])
def test_different_prompts_differ_clearly(a: str, b: str) -> None:
    """Different words give clearly different pictures, unknown words included."""
    diff = np.abs(procedural_image(a, 0, W, H).astype(int) - procedural_image(b, 0, W, H).astype(int))
    assert diff[..., :3].mean() > 25


def test_colour_words_steer_the_palette() -> None:
    """"deep blue ocean" is bluer than "red fire sunset", which is redder."""
    blue = mean_rgb(procedural_image("deep blue ocean", 0, W, H))
    red = mean_rgb(procedural_image("red fire sunset", 0, W, H))
    assert blue[2] - blue[0] > 40
    assert red[0] - red[2] > 40


@pytest.mark.parametrize(("width", "height"), [(128, 128), (160, 96), (96, 160), (300, 128), (17, 33)])
def test_shape_dtype_and_layout(width: int, height: int) -> None:
    """RGBA uint8 at exactly the asked size, top row first, C-contiguous, opaque."""
    img = procedural_image("waves under a golden moon", 3, width, height)
    assert img.shape == (height, width, 4) and img.dtype == np.uint8
    assert img.flags.c_contiguous
    assert (img[..., 3] == 255).all()


@pytest.mark.parametrize("prompt", [*STYLE_PROMPTS.values(), "🎶🎶", "1234", "x" * 500, "ąęłóż żółw"])
def test_every_style_has_structure_and_no_garbage(prompt: str) -> None:
    """No flat images and no NaN or overflow anywhere on the way, even for odd prompts."""
    with np.errstate(invalid="raise", over="raise", divide="raise"):
        img = procedural_image(prompt, 0, W, H)
    assert img[..., :3].std() > 12
    assert len(np.unique(img[..., :3].reshape(-1, 3), axis=0)) > 200  # gradients, not a few flat colours


@pytest.mark.parametrize("prompt", [*STYLE_PROMPTS.values(), "bright white snow", "dark night"])
def test_not_mostly_clipped(prompt: str) -> None:
    """Balanced exposure: neither crushed to black nor blown to white."""
    lum = luminance(procedural_image(prompt, 0, W, H))
    assert np.percentile(lum, 50) > 12
    assert np.percentile(lum, 25) < 235
    assert (lum <= 2).mean() < 0.2 and (lum >= 253).mean() < 0.2


def test_samples_are_different_with_consecutive_seeds() -> None:
    """samples=3: three different pictures, seeds derived + 0, 1, 2."""

    async def main() -> list[Any]:
        gen = ProceduralGenerator()
        try:
            return await gen.generate(request("a blue whale in the sky", samples=3))
        finally:
            await gen.aclose()

    images = asyncio.run(main())
    base = seed_for("a blue whale in the sky", 0)
    assert [im.seed for im in images] == [base, base + 1, base + 2]
    pixels = [im.pixels for im in images]
    assert all(p is not None for p in pixels)
    for i in range(3):
        for j in range(i + 1, 3):
            a, b = pixels[i], pixels[j]
            assert a is not None and b is not None
            assert np.abs(a.astype(int) - b.astype(int)).mean() > 5
    assert np.array_equal(pixels[1], procedural_image("a blue whale in the sky", base + 1, 160, 128))


def test_generate_runs_in_the_executor_off_the_loop() -> None:
    """Each sample is made by the given executor on its threads, not on the event loop's."""
    pool = CountingExecutor()

    async def main() -> tuple[int, list[Any]]:
        gen = ProceduralGenerator(pool)
        images = await gen.generate(request("neon city", seed=5, samples=2))
        await gen.aclose()
        return threading.get_ident(), images

    try:
        loop_thread, images = asyncio.run(main())
        assert pool.submitted == 2 and len(images) == 2
        assert loop_thread not in pool.threads
        assert pool.submit(int, "3").result() == 3  # aclose left a borrowed executor running
    finally:
        pool.shutdown()


def test_generated_image_metadata() -> None:
    """Pixels, seed, PNG mime and the generator and style names come back, at 1024x1024."""

    async def main() -> list[Any]:
        gen = ProceduralGenerator()
        try:
            return await gen.generate(GenerationRequest(prompt_id="p", prompt="lotus flower", seed=9))
        finally:
            await gen.aclose()

    (image,) = asyncio.run(main())
    assert image.pixels is not None and image.pixels.shape == (1024, 1024, 4)
    assert image.seed == 9 and image.mime == "image/png" and image.data is None
    assert image.metadata == {"generator": "procedural", "style": "mandala"}
    assert ProceduralGenerator.name == "procedural"


def test_sizes_are_clamped_to_what_it_supports() -> None:
    """A size outside 128..2048 is mapped to the nearest supported one."""

    async def main() -> list[Any]:
        gen = ProceduralGenerator()
        try:
            return await gen.generate(request("golden light", width=64, height=100))
        finally:
            await gen.aclose()

    (image,) = asyncio.run(main())
    assert image.pixels is not None and image.pixels.shape == (128, 128, 4)


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_empty_prompt_is_a_bad_request(prompt: str) -> None:
    """Nothing to draw from: GenerationError with kind BAD_REQUEST."""
    with pytest.raises(GenerationError) as err:
        asyncio.run(ProceduralGenerator().generate(request(prompt)))
    assert err.value.kind is FailureKind.BAD_REQUEST and not err.value.retryable


@pytest.mark.parametrize("kw", [{"samples": 0}, {"seed": -3}, {"init_image": b"not an image"}])
def test_bad_requests_are_refused(kw: dict[str, Any]) -> None:
    """No samples, a negative seed or an unreadable init image: BAD_REQUEST."""

    async def main() -> None:
        gen = ProceduralGenerator()
        try:
            await gen.generate(request("golden light", **kw))
        finally:
            await gen.aclose()

    with pytest.raises(GenerationError) as err:
        asyncio.run(main())
    assert err.value.kind is FailureKind.BAD_REQUEST


def test_init_image_tints_the_picture() -> None:
    """No image-to-image, but an init image lends its broad colour (less strength, more tint)."""
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (255, 0, 0)).save(buf, format="PNG")

    async def main() -> tuple[Any, Any]:
        gen = ProceduralGenerator()
        try:
            (plain,) = await gen.generate(request("deep blue ocean", seed=4))
            (tinted,) = await gen.generate(request("deep blue ocean", seed=4, init_image=buf.getvalue(),
                                                   strength=0.0))
            return plain, tinted
        finally:
            await gen.aclose()

    plain, tinted = asyncio.run(main())
    assert plain.pixels is not None and tinted.pixels is not None
    assert mean_rgb(tinted.pixels)[0] > mean_rgb(plain.pixels)[0] + 30
