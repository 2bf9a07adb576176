"""Generated image → pixels the show can upload, off the event loop.

Encoded bytes from an API are untrusted: only PNG, JPEG and WebP are opened,
a decompression bomb or a truncated file is a clear ``BAD_RESPONSE`` failure,
and the picture is scaled down on the CPU to what the screen can show, so the
render thread uploads no more bytes than it needs.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

from engine.gen.base import FailureKind, GeneratedImage, GenerationError

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
MAX_PIXELS = 40_000_000  # far above any generator's output; a bomb is refused before decoding


def target_size(image: tuple[int, int], screen: tuple[int, int], max_side: int, fit: str) -> tuple[int, int]:
    """The size to upload: no bigger than the screen needs for ``fit``, within ``max_side``, never upscaled."""
    w, h = image
    sw, sh = screen if screen[0] > 0 and screen[1] > 0 else (max_side, max_side)
    pick = min if fit == "letterbox" else max
    scale = min(1.0, pick(sw / w, sh / h), max_side / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def decode(data: bytes) -> Image.Image:
    """Open encoded bytes as an RGBA picture, or GenerationError(BAD_RESPONSE) saying why not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            if im.format not in ALLOWED_FORMATS:
                raise GenerationError(FailureKind.BAD_RESPONSE, f"the image is {im.format}, not PNG, JPEG or WebP")
            if im.width * im.height > MAX_PIXELS:
                raise GenerationError(FailureKind.BAD_RESPONSE, f"the image is too big ({im.width}x{im.height})")
            im.load()
    except GenerationError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise GenerationError(FailureKind.BAD_RESPONSE, f"the image could not be decoded ({err})") from err
    return im.convert("RGBA")


def prepare(image: GeneratedImage, screen: tuple[int, int], max_side: int, fit: str) -> np.ndarray:
    """Pixels (RGBA, top row first) sized for the screen; raises GenerationError for a bad image."""
    if image.pixels is not None:
        px = image.pixels
        if px.ndim != 3 or px.shape[2] != 4 or px.dtype != np.uint8:
            raise GenerationError(FailureKind.BAD_RESPONSE, f"pixels of shape {px.shape} and type {px.dtype}")
        im = Image.fromarray(px, "RGBA")
    elif image.data is not None:
        im = decode(image.data)
    else:
        raise GenerationError(FailureKind.BAD_RESPONSE, "the generator returned no image")
    size = target_size(im.size, screen, max_side, fit)
    if size != im.size:
        im = im.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
