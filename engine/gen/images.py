"""The one vocabulary of image files: what bytes are, how pixels become bytes, and what an image is called.

Every part that names, serves or encodes an image asks here, so the journal's file names, the URLs the phones
and the VJ page fetch, and the server's idea of what it may serve cannot drift apart:

* file name: ``<stem>-<n>.<ext>``, where the stem is the prompt id reduced to ``[A-Za-z0-9_-]`` (``safe_stem``)
  and ``<stem>-<n>`` is the image id; never any prompt text.
* URL: ``/images/<image id>.<ext>`` (``image_url``), read back by ``parse_image_path``; only the extensions a
  browser shows (png, jpg, jpeg, webp) are served.
* encoding: ``encode`` is the only place pixels become PNG or JPEG, for the journal, for image-to-image requests
  and for the VJ preview alike.

No GL, no I/O: bytes and arrays in, bytes and strings out.
"""

from __future__ import annotations

import hashlib
import io
import re
from typing import Literal

import numpy as np
from PIL import Image

from engine.errors import ImageError

ImageFormat = Literal["png", "jpeg"]

PNG_COMPRESS_LEVEL = 1  # speed over size: a show's images are written once and read rarely
JPEG_QUALITY = 85

# mime type (as an API or a browser says it) → the extension a file of that type gets
MIME_EXT: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/pjpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
}
# extension → the Content-Type it is served with
EXT_MIME: dict[str, str] = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}
DEFAULT_MIME = "image/png"

URL_PREFIX = "/images/"
SERVED_EXTS = ("png", "jpg", "jpeg", "webp")
_ID = r"[A-Za-z0-9_-]{1,80}"  # room for the longest safe_stem (75) plus "-<n>" up to n = 9999
_NAME = re.compile(rf"({_ID})\.({'|'.join(SERVED_EXTS)})")  # fullmatch: no trailing newline slips through
IMAGE_PATH = re.compile(rf"^{URL_PREFIX}{_NAME.pattern}$")  # what the show server serves
IMAGE_FILE = re.compile(r"^[A-Za-z0-9_-]+-[0-9]+\.[a-z0-9]{1,8}$")  # an image file in a show folder
EXT = re.compile(r"^[a-z0-9]{1,8}$")  # what a file extension may be at all

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


# ---- what bytes are --------------------------------------------------------------------------------------


def sniff(data: bytes) -> str | None:
    """The file extension from the first bytes (png, jpg, webp, gif): the content decides when it can."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def ext_for_mime(mime: str | None) -> str | None:
    """The extension for a mime type, parameters and case ignored (``image/JPEG; q=1`` → jpg); None if unknown."""
    return MIME_EXT.get((mime or "").split(";")[0].strip().lower())


def content_type(ext: str | None) -> str:
    """The Content-Type to serve a file with this extension; PNG when unknown (what the show writes itself)."""
    return EXT_MIME.get((ext or "").lower().lstrip("."), DEFAULT_MIME)


def size_of(data: bytes) -> tuple[int | None, int | None]:
    """Width and height from the header; the size is a nicety, never a reason to lose an image."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            return int(width), int(height)
    except Exception:
        return None, None


# ---- pixels → bytes --------------------------------------------------------------------------------------


def encode(
    pixels: np.ndarray,
    fmt: ImageFormat,
    *,
    quality: int = JPEG_QUALITY,
    compress_level: int = PNG_COMPRESS_LEVEL,
) -> bytes:
    """Gray, RGB or RGBA uint8 pixels as PNG or JPEG bytes (JPEG drops alpha); ImageError for anything else."""
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ImageError(f"pixels: expected uint8 (h, w), (h, w, 3) or (h, w, 4), got {arr.dtype} {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"pixels: empty image {arr.shape}")
    im = Image.fromarray(np.ascontiguousarray(arr))
    buf = io.BytesIO()
    if fmt == "png":
        im.save(buf, format="PNG", compress_level=compress_level)
    elif fmt == "jpeg":
        (im.convert("RGB") if im.mode == "RGBA" else im).save(buf, format="JPEG", quality=quality)
    else:
        raise ImageError(f"format: {fmt!r} is not png or jpeg")
    return buf.getvalue()


# ---- names and URLs --------------------------------------------------------------------------------------


def safe_stem(prompt_id: str) -> str:
    """A file-name-safe stem for a prompt id; ids that needed changing get a hash so two never collide."""
    stem = _UNSAFE.sub("_", prompt_id)[:64]
    if stem != prompt_id or not stem:
        digest = hashlib.sha256(prompt_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        stem = f"{stem}_{digest}" if stem else digest
    return stem


def make_image_id(stem: str, n: int) -> str:
    """The id of a prompt's n-th image (1, 2, ...): also the stem of its file and of its URL."""
    return f"{stem}-{n}"


def file_name(image_id: str, ext: str) -> str:
    """The image's file name in the show folder."""
    return f"{image_id}.{ext}"


def file_pattern(image_id: str) -> str:
    """A glob for the image's file whatever its extension: a number whose file exists is taken."""
    return f"{image_id}.*"


def ext_of(name: str | None, default: str = "png") -> str:
    """The extension of a file name (``p1-2.jpg`` → jpg), or ``default`` when there is no file."""
    if not name or "." not in name:
        return default
    return name.rsplit(".", 1)[-1]


def image_url(image_id: str, ext: str, prefix: str = URL_PREFIX) -> str:
    """The URL a phone or the VJ page fetches the image from: ``/images/<id>.<ext>``."""
    return f"{prefix}{image_id}.{ext}"


def parse_image_path(path: str, prefix: str = URL_PREFIX) -> tuple[str, str] | None:
    """``(image id, ext)`` for a URL path the server serves images at, or None for any other path."""
    if not path.startswith(prefix):
        return None
    m = _NAME.fullmatch(path[len(prefix):])
    return (m.group(1), m.group(2)) if m else None
