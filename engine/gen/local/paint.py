"""The jobs that run on the model worker: one request through the pipeline, its output checked, as RGBA.

A pipeline's output is checked before anyone sees it:

* images the safety checker flagged are dropped (diffusers has already blacked them out); when
  every image of a request is flagged, that is ``MODERATED``: the sender is told politely, and
  nothing is shown;
* an image with NaN in it (half precision overflowing in the VAE, a broken weight) or one that is
  all black with no flag is ``BAD_RESPONSE``: the pipeline paints that prompt offline instead.

Runs on the worker's thread only (it calls the pipelines); imports torch.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from PIL import Image, ImageOps

from engine.gen.base import FailureKind, GeneratedImage, GenerationError, GenerationRequest
from engine.gen.decode import decode
from engine.gen.local.knobs import Knobs
from engine.gen.local.loader import Models

log = logging.getLogger(__name__)

BLACK = 2.0 / 255.0  # brightest value of an image that counts as all black
WARMUP_PROMPT = "a warm-up picture"


def init_image(data: bytes, width: int, height: int) -> Image.Image:
    """The image-to-image source at the asked size: cropped to its shape (never stretched), then resized.
    Opened by the engine's one decoder (its formats, its bomb guard); unreadable, it is our request's fault."""
    try:
        rgb = decode(data).convert("RGB")
    except GenerationError as err:
        raise GenerationError(FailureKind.BAD_REQUEST, f"init image unreadable: {err.vj_message}") from err
    return ImageOps.fit(rgb, (width, height), Image.Resampling.BICUBIC)


def _generators(seeds: tuple[int, ...]) -> list[torch.Generator]:
    # On the CPU whatever the device: the same seed gives the same noise on CUDA, MPS and the CPU.
    return [torch.Generator("cpu").manual_seed(seed) for seed in seeds]


def run(models: Models, prompt: str, negative: str, knobs: Knobs, init: bytes | None) -> tuple[np.ndarray, list[bool]]:
    """The pipeline's images (n, h, w, 3) floats in 0..1, and which ones the safety checker flagged."""
    args = {
        "prompt": prompt,
        "negative_prompt": negative or None,
        "num_inference_steps": knobs.steps,
        "guidance_scale": knobs.cfg,
        "num_images_per_prompt": len(knobs.seeds),
        "generator": _generators(knobs.seeds),
        "output_type": "np",
    }
    if init is not None:
        out = models.img2img(image=init_image(init, knobs.width, knobs.height), strength=knobs.strength, **args)
    else:
        out = models.text2img(width=knobs.width, height=knobs.height, **args)
    images = np.asarray(out.images, dtype=np.float32)
    flags = getattr(out, "nsfw_content_detected", None)
    return images, [bool(f) for f in flags] if flags is not None else [False] * len(images)


def rgba(image: np.ndarray) -> np.ndarray:
    """(h, w, 3) floats in 0..1 → (h, w, 4) uint8, opaque."""
    h, w = image.shape[:2]
    out = np.empty((h, w, 4), dtype=np.uint8)
    out[..., :3] = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out[..., 3] = 255
    return out


def checked(images: np.ndarray, flags: list[bool], knobs: Knobs, models: Models) -> list[GeneratedImage]:
    """The images fit to show, with their seeds; MODERATED or BAD_RESPONSE when none is."""
    kept: list[GeneratedImage] = []
    flagged = nan = black = 0
    meta = {"generator": "local", "backend": "local", "model": models.name, "steps": str(knobs.steps),
            "cfg": f"{knobs.cfg:g}", "size": knobs.size, "device": models.device_line}
    for image, flag, seed in zip(images, flags, knobs.seeds, strict=False):
        if flag:
            flagged += 1
        elif not np.isfinite(image).all():
            nan += 1
        elif float(image.max()) <= BLACK:
            black += 1
        else:
            kept.append(GeneratedImage(pixels=rgba(image), seed=seed, metadata=dict(meta)))
    if flagged and kept:
        log.info("local safety checker flagged %d of %d images; the others are shown", flagged, len(images))
    if kept:
        return kept
    if flagged:
        many = "all its images" if flagged > 1 else "the image"
        raise GenerationError(FailureKind.MODERATED, f"the model's safety checker flagged {many}")
    what = "NaN (not-a-number) pixels" if nan else "an all-black image"
    hint = ' (half precision overflowing? try [local] dtype = "float32", or a tiny_vae)' if nan else ""
    raise GenerationError(FailureKind.BAD_RESPONSE, f"local model made {what} at {knobs.size}{hint}")


def paint(models: Models, request: GenerationRequest, knobs: Knobs) -> tuple[list[GeneratedImage], float]:
    """One request, start to finish on the worker: the images and the seconds the pipeline took."""
    started = time.perf_counter()
    images, flags = run(models, request.prompt, request.negative_prompt, knobs, request.init_image)
    took = time.perf_counter() - started
    return checked(images, flags, knobs, models), took


def warm_up(models: Models) -> None:
    """One one-step image at the model's own size: kernels chosen and memory reserved before the show needs it."""
    knobs = Knobs(models.native_size, models.native_size, 1, models.cfg, (1,), 1.0)
    run(models, WARMUP_PROMPT, "", knobs, None)
