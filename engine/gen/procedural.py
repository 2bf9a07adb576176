"""The offline procedural generator: pictures made from the words of a prompt, no network, no model.

Why it exists: the show must never go dark. Without a Stability API key it is the
default backend, and when the API fails mid-show the pipeline falls back to it, so
what it makes goes on the big screen in front of an audience. It aims for pictures
that look designed rather than random:

* the words steer it. Colour words pick the palette ("ocean", "sunset", "red"),
  subject words pick one of eight compositions ("stars" → nebula, "city" →
  skyline, "flower" → mandala), mood and motion words ("calm", "storm", "rising",
  "swirl") set the energy and the direction of flow, and every word, hashed, moves
  the parameters, so any prompt, even one of unknown words, gets its own picture;
* it is deterministic: the same text and seed give the same pixels, and seed 0
  means "derive the seed from the text", with hashlib, stable across runs and machines;
* it is fast (well under 300 ms for 1024x1024 on one core): smooth fields are
  computed on a grid of at most ``WORK_SIDE`` px and upsampled bicubically; edges,
  stars and the final grade run at full resolution, mostly on 1-D profiles or in
  the rows where an edge actually is;
* it is clean on a projector: edges are antialiased analytically, a soft bloom,
  vignette and filmic tone curve finish it, and a blue-noise dither before the
  8-bit quantisation keeps gradients free of banding.

The parts live beside this module, each importing only those listed before it: ``look``
(words → palette, style and parameters), ``canvas`` (grids, noise and colour ramps),
``landscapes`` and ``painters`` (one painter per style), ``grading`` (exposure, bloom,
tone curve, dither). This module joins them into ``procedural_image`` and serves that
as a backend, ``ProceduralGenerator``.

Everything is pure numpy (float32) plus Pillow's resize; ``procedural_image`` is a
pure function, so it may run on any worker thread.
"""

from __future__ import annotations

import asyncio
import io
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import partial

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.gen.base import FailureKind, GeneratedImage, GenerationError, GenerationRequest
from engine.gen.canvas import Grid, Scene
from engine.gen.grading import finish
from engine.gen.look import look_for, prompt_digest, seed_for, style_for
from engine.gen.painters import RENDER

MIN_SIZE, MAX_SIZE = 128, 2048  # what the generator accepts per side; requests are clamped to it
MAX_SAMPLES = 10


def procedural_image(prompt: str, seed: int, width: int, height: int) -> np.ndarray:
    """The picture for ``prompt`` and ``seed`` (0 = derived from the text): (height, width, 4)
    uint8 RGBA, top row first, opaque. The same arguments always give the same pixels."""
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise ValueError(f"size {width}x{height} is outside 16..4096")
    seed = seed_for(prompt, seed)
    look = look_for(prompt, seed)
    text = int.from_bytes(prompt_digest(prompt)[16:24], "big")
    sc = Scene(Grid.of(width, height), look, np.random.default_rng([seed, text]))
    img = np.array(RENDER[look.style](sc), dtype=np.float32, order="C")
    return finish(img, sc)


# --- the generator --------------------------------------------------------------------------------


def _colour_wash(pixels: np.ndarray, init_image: bytes, strength: float) -> np.ndarray:
    """Blends a little of an init image's broad colour into ``pixels`` (no image-to-image here:
    the init image only tints). Less ``strength`` = stay closer to it = more tint."""
    try:
        with Image.open(io.BytesIO(init_image)) as im:
            small = im.convert("RGB").resize((8, 8), Image.Resampling.BOX)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise GenerationError(FailureKind.BAD_REQUEST, f"init image unreadable: {err}") from err
    h, w = pixels.shape[:2]
    wash = np.asarray(small.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    k = 0.3 * (1.0 - float(np.clip(strength, 0.0, 1.0)))
    out = pixels.copy()
    out[..., :3] = np.clip(pixels[..., :3] * (1 - k) + wash * k + 0.5, 0, 255).astype(np.uint8)
    return out


class ProceduralGenerator:
    """The offline backend: ``procedural_image`` on a worker thread, one call per sample.

    Sizes are clamped to ``MIN_SIZE``..``MAX_SIZE``. There is no image-to-image: an
    ``init_image`` only tints the result with its broad colours (less ``strength``, more tint).
    ``negative_prompt``, ``style_preset``, ``cfg_scale`` and ``steps`` do not apply and are ignored.
    """

    name = "procedural"

    def __init__(self, executor: Executor | None = None) -> None:
        self._executor = executor
        self._owned: ThreadPoolExecutor | None = None

    def _pool(self) -> Executor:
        if self._executor is not None:
            return self._executor
        if self._owned is None:
            self._owned = ThreadPoolExecutor(max_workers=2, thread_name_prefix="procedural")
        return self._owned

    def _make(self, request: GenerationRequest, seed: int, width: int, height: int) -> GeneratedImage:
        pixels = procedural_image(request.prompt, seed, width, height)
        if request.init_image:
            pixels = _colour_wash(pixels, request.init_image, request.strength)
        return GeneratedImage(pixels=pixels, seed=seed, mime="image/png",
                              metadata={"generator": self.name, "style": style_for(request.prompt)})

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        """``request.samples`` pictures with consecutive seeds, made off the event loop."""
        if not request.prompt.strip():
            raise GenerationError(FailureKind.BAD_REQUEST, "empty prompt", "Please type something to see!")
        if not 1 <= request.samples <= MAX_SAMPLES:
            raise GenerationError(FailureKind.BAD_REQUEST, f"samples must be 1..{MAX_SAMPLES}, not {request.samples}")
        try:
            seed = seed_for(request.prompt, request.seed)
        except ValueError as err:
            raise GenerationError(FailureKind.BAD_REQUEST, str(err)) from err
        width = min(MAX_SIZE, max(MIN_SIZE, request.width))
        height = min(MAX_SIZE, max(MIN_SIZE, request.height))
        loop = asyncio.get_running_loop()
        pool = self._pool()
        jobs = [loop.run_in_executor(pool, partial(self._make, request, seed + i, width, height))
                for i in range(request.samples)]
        return list(await asyncio.gather(*jobs))

    async def aclose(self) -> None:
        """Stops the worker threads, if this generator made them."""
        if self._owned is not None:
            self._owned.shutdown(wait=False, cancel_futures=True)
            self._owned = None
