"""Stability's wire format: what to send for a request, and what each answer means in our types.

Pure functions of the contract in ``shared/stability-api.md``, no I/O: ``build_v2_request`` and
``build_v1_request`` turn a ``GenerationRequest`` into a ``RequestSpec`` (without the key), and the
``parse_*`` functions and ``error_from_status`` turn a status, headers and body into ``Artifact``s, credits
or the ``GenerationError`` the pipeline acts on. Every text they build passes through the caller's
``redact``, because error bodies may echo the API key.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import io
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image, ImageOps, UnidentifiedImageError

from engine.config import GenerationConfig, StabilityConfig
from engine.gen.base import ASPECT_RATIOS, FailureKind, GenerationError, GenerationRequest
from engine.gen.images import content_type, sniff

log = logging.getLogger(__name__)

LOCKOUT = 60.0  # the API's lockout after a 429; we wait at least this long when it gives no Retry-After
MAX_SEED_V2 = 4294967294
MAX_SEED_V1 = 4294967295
MAX_PROMPT_V2 = 10000
MAX_PROMPT_V1 = 2000
STYLE_PRESETS = frozenset({
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance", "fantasy-art",
    "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk", "origami", "photographic",
    "pixel-art", "tile-texture",
})
SDXL_SIZES = ((1024, 1024), (1152, 896), (1216, 832), (1344, 768), (1536, 640),
              (640, 1536), (768, 1344), (832, 1216), (896, 1152))
CONTENT_FILTERED = "CONTENT_FILTERED"

# --- sizes and shapes --------------------------------------------------------------------------------------------

def is_sdxl(engine_id: str) -> bool:
    return engine_id.startswith("stable-diffusion-xl")


def snap_sdxl(width: int, height: int) -> tuple[int, int]:
    """The allowed SDXL size whose aspect ratio is nearest (in log space) to ``width``:``height``."""
    want = math.log(max(width, 1) / max(height, 1))
    return min(SDXL_SIZES, key=lambda s: abs(math.log(s[0] / s[1]) - want))


def snap_v1_size(engine_id: str, width: int, height: int) -> tuple[int, int]:
    """A size the v1 engine accepts: SDXL's nine sizes, else multiples of 64 within the engine's range."""
    if is_sdxl(engine_id):
        return snap_sdxl(width, height)
    lo, hi = (320, 1536) if engine_id == "stable-diffusion-v1-6" else (128, 2048)

    def side(v: int) -> int:
        return int(min(hi, max(lo, round(v / 64) * 64)))
    return side(width), side(height)


def nearest_aspect_ratio(width: int, height: int) -> str:
    want = math.log(max(width, 1) / max(height, 1))

    def err(r: str) -> float:
        a, b = r.split(":")
        return abs(math.log(int(a) / int(b)) - want)
    return min(ASPECT_RATIOS, key=err)


def sniff_mime(data: bytes) -> str | None:
    """The image type from its magic bytes; None when it is no PNG, JPEG or WebP (what the API takes)."""
    ext = sniff(data)
    return content_type(ext) if ext in ("png", "jpg", "webp") else None


def fit_sdxl_init_image(data: bytes) -> bytes:
    """Crop-and-scale an init image to the nearest SDXL size (the v1 SDXL engine rejects any other)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            target = snap_sdxl(im.width, im.height)
            if (im.width, im.height) == target:
                return data
            fitted = ImageOps.fit(im.convert("RGB"), target, Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise GenerationError(FailureKind.BAD_REQUEST, f"The init image cannot be read ({err})") from None
    buf = io.BytesIO()
    fitted.save(buf, "PNG")
    return buf.getvalue()


# --- what to send ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FilePart:
    name: str
    filename: str
    content: bytes = field(repr=False)
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class RequestSpec:
    """One HTTP request, without the key: built by pure functions, sent by the generator."""

    method: str
    path: str
    accept: str = "application/json"
    data: tuple[tuple[str, str], ...] = ()
    files: tuple[FilePart, ...] = ()
    json: Mapping[str, Any] | None = None
    api: Literal["v2beta", "v1"] = "v1"


@dataclass(frozen=True)
class Knobs:
    """A request's settings after the generation config has filled what the request left unset."""

    prompt: str
    negative_prompt: str
    style_preset: str
    seed: int
    samples: int
    cfg_scale: float
    steps: int


def resolve(request: GenerationRequest, gen: GenerationConfig) -> Knobs:
    """Request values win; empty / None / 0 ones fall back to the [generation] config."""
    preset = request.style_preset or gen.style_preset
    if preset and preset not in STYLE_PRESETS:
        log.warning("ignoring unknown Stability style preset %r", preset)
        preset = ""
    return Knobs(
        prompt=request.prompt.strip(),
        negative_prompt=(request.negative_prompt or gen.negative_prompt).strip(),
        style_preset=preset,
        seed=request.seed or gen.seed,
        samples=min(10, max(1, request.samples)),
        cfg_scale=request.cfg_scale if request.cfg_scale is not None else gen.cfg_scale,
        steps=min(50, max(10, request.steps if request.steps is not None else gen.steps)),
    )


def sample_seed(seed: int, index: int, top: int) -> int:
    """Sample ``index``'s seed: distinct per sample when fixed (else the same picture N times); 0 stays random."""
    if seed == 0:
        return 0
    return (seed - 1 + index) % top + 1


def build_v2_request(cfg: StabilityConfig, request: GenerationRequest, knobs: Knobs, index: int = 0) -> RequestSpec:
    """``POST /v2beta/stable-image/generate/{endpoint}``: always multipart, one image per request."""
    endpoint = cfg.endpoint
    data: list[tuple[str, str]] = [("prompt", knobs.prompt[:MAX_PROMPT_V2])]
    if knobs.negative_prompt:
        data.append(("negative_prompt", knobs.negative_prompt[:MAX_PROMPT_V2]))
    files: list[FilePart] = []
    img2img = request.init_image is not None and endpoint in ("sd3", "ultra")
    if request.init_image is not None and not img2img:
        log.info("the core endpoint has no image-to-image: making %s from text alone", request.prompt_id)
    if endpoint == "sd3":
        data.append(("model", cfg.model))
        data.append(("mode", "image-to-image" if img2img else "text-to-image"))
        if knobs.cfg_scale > 0:
            data.append(("cfg_scale", _num(min(10.0, max(1.0, knobs.cfg_scale)))))
    if img2img:
        assert request.init_image is not None
        mime = sniff_mime(request.init_image) or "image/png"
        files.append(FilePart("image", "init." + mime.split("/")[1], request.init_image, mime))
        data.append(("strength", _num(min(1.0, max(0.0, request.strength)))))
    else:
        ratio = request.aspect_ratio
        if ratio not in ASPECT_RATIOS:
            ratio = nearest_aspect_ratio(request.width, request.height)
        data.append(("aspect_ratio", ratio))
    data.append(("seed", str(sample_seed(knobs.seed, index, MAX_SEED_V2))))
    data.append(("output_format", cfg.output_format))
    if knobs.style_preset:
        data.append(("style_preset", knobs.style_preset))
    if not files:
        files.append(FilePart("none", "none", b""))  # forces multipart, as the official samples do
    return RequestSpec("POST", f"/v2beta/stable-image/generate/{endpoint}", accept="image/*",
                       data=tuple(data), files=tuple(files), api="v2beta")


def build_v1_request(cfg: StabilityConfig, request: GenerationRequest, knobs: Knobs,
                     init_image: bytes | None = None) -> RequestSpec:
    """v1 text-to-image (JSON) or image-to-image (multipart, ``init_image`` already sized for the engine)."""
    prompts: list[tuple[str, int]] = [(knobs.prompt[:MAX_PROMPT_V1], 1)]
    if knobs.negative_prompt:
        prompts.append((knobs.negative_prompt[:MAX_PROMPT_V1], -1))
    common: dict[str, Any] = {}
    if knobs.cfg_scale > 0:
        common["cfg_scale"] = min(35.0, knobs.cfg_scale)
    common["samples"] = knobs.samples
    common["steps"] = knobs.steps
    common["seed"] = min(MAX_SEED_V1, knobs.seed)
    if knobs.style_preset:
        common["style_preset"] = knobs.style_preset
    if cfg.sampler:
        common["sampler"] = cfg.sampler
    base = f"/v1/generation/{cfg.engine}"
    if init_image is None:
        width, height = snap_v1_size(cfg.engine, request.width, request.height)
        if (width, height) != (request.width, request.height):
            log.debug("v1 size %dx%d snapped to %dx%d for %s", request.width, request.height, width, height,
                      cfg.engine)
        body = {"text_prompts": [{"text": t, "weight": w} for t, w in prompts], "height": height, "width": width,
                **common}
        return RequestSpec("POST", f"{base}/text-to-image", json=body)
    data: list[tuple[str, str]] = []
    for i, (text, weight) in enumerate(prompts):
        data += [(f"text_prompts[{i}][text]", text), (f"text_prompts[{i}][weight]", str(weight))]
    data += [("init_image_mode", "IMAGE_STRENGTH"),
             ("image_strength", _num(min(1.0, max(0.0, request.strength))))]
    data += [(k, _num(v) if isinstance(v, float) else str(v)) for k, v in common.items()]
    mime = sniff_mime(init_image) or "image/png"
    part = FilePart("init_image", "init." + mime.split("/")[1], init_image, mime)
    return RequestSpec("POST", f"{base}/image-to-image", data=tuple(data), files=(part,))


def _num(v: float) -> str:
    return f"{v:g}"


# --- what an answer means ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Artifact:
    """One picture in an answer, before CONTENT_FILTERED ones are dropped."""

    data: bytes = field(repr=False)
    mime: str
    seed: int
    finish_reason: str
    request_id: str = ""

    @property
    def filtered(self) -> bool:
        return self.finish_reason == CONTENT_FILTERED


Redact = Callable[[str], str]


def _bad_response(what: str, redact: Redact) -> GenerationError:
    return GenerationError(FailureKind.BAD_RESPONSE, redact(f"Stability sent an answer we cannot use: {what}"))


def _int(value: object, default: int) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def _decoded_image(raw: bytes, finish: str, redact: Redact) -> str:
    """The image's mime type; a non-image is only acceptable when it was filtered (never shown anyway)."""
    mime = sniff_mime(raw)
    if mime is None and finish != CONTENT_FILTERED:
        raise _bad_response(f"not a PNG, JPEG or WebP image ({len(raw)} bytes)", redact)
    return mime or "application/octet-stream"


def _b64(value: object, redact: Redact) -> bytes:
    if not isinstance(value, str):
        raise _bad_response("no base64 image in the JSON", redact)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _bad_response("the base64 image does not decode", redact) from None


def _check_finish(finish: str, redact: Redact) -> None:
    if finish == "ERROR":
        raise GenerationError(FailureKind.SERVER, redact("Stability reported an error making the image"))


def parse_image_answer(headers: Mapping[str, str], body: bytes, seed: int, redact: Redact) -> Artifact:
    """A 200 carrying one image: raw bytes (``Accept: image/*``) or ``{"image", "finish_reason", "seed"}``."""
    ctype = headers.get("content-type", "").lower()
    request_id = headers.get("x-request-id", "")
    if ctype.startswith("application/json"):
        doc = _json(body, redact)
        if not isinstance(doc, dict):
            raise _bad_response("JSON without an image", redact)
        finish = str(doc.get("finish_reason") or doc.get("finishReason") or "SUCCESS").upper()
        _check_finish(finish, redact)
        raw = _b64(doc.get("image"), redact)
        mime = _decoded_image(raw, finish, redact)
        return Artifact(raw, mime, _int(doc.get("seed"), seed), finish, request_id)
    if ctype.startswith("image/") or (not ctype and sniff_mime(body)):
        finish = headers.get("finish-reason", "SUCCESS").strip().upper() or "SUCCESS"
        _check_finish(finish, redact)
        mime = _decoded_image(body, finish, redact)
        return Artifact(body, mime, _int(headers.get("seed"), seed), finish, request_id)
    raise _bad_response(f"unexpected content type {ctype or 'none'!r}", redact)


def parse_v1_answer(headers: Mapping[str, str], body: bytes, seed: int, redact: Redact) -> list[Artifact]:
    """A v1 200: ``{"artifacts": [{"base64", "seed", "finishReason"}]}``, or PNG bytes when asked for one."""
    if not headers.get("content-type", "").lower().startswith("application/json"):
        return [parse_image_answer(headers, body, seed, redact)]
    doc = _json(body, redact)
    items = doc.get("artifacts") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise _bad_response("no artifacts in the JSON", redact)
    out: list[Artifact] = []
    errors = 0
    for item in items:
        if not isinstance(item, dict):
            raise _bad_response("an artifact is not an object", redact)
        finish = str(item.get("finishReason") or item.get("finish_reason") or "SUCCESS").upper()
        if finish == "ERROR":
            errors += 1
            continue
        raw = _b64(item.get("base64"), redact)
        out.append(Artifact(raw, _decoded_image(raw, finish, redact), _int(item.get("seed"), seed), finish))
    if not out:
        raise GenerationError(FailureKind.SERVER, f"Stability reported an error making all {errors} images")
    return out


def _json(body: bytes, redact: Redact) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _bad_response("the JSON does not parse", redact) from None


def parse_retry_after(value: str | None, now_wall: float | None = None) -> float | None:
    """``Retry-After`` as seconds (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now_wall is None else now_wall)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def error_details(body: bytes) -> tuple[str, str]:
    """(name, text) of an error body: v2 ``{"name", "errors": [...]}``, v1 ``{"name", "message"}``, or raw text."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "", body[:300].decode("utf-8", "replace").strip()
    if not isinstance(doc, dict):
        return "", str(doc)[:300]
    name = str(doc.get("name", ""))
    errors = doc.get("errors")
    if isinstance(errors, list) and errors:
        text = "; ".join(str(e) for e in errors)
    else:
        text = str(doc.get("message", ""))
    return name, text[:500]


def error_from_status(status: int, headers: Mapping[str, str], body: bytes, redact: Redact) -> GenerationError:
    """A non-200 answer → the GenerationError the pipeline acts on (contract's error table)."""
    name, text = error_details(body)
    detail = redact(f": {text}" if text else "")
    kind: FailureKind
    retry_after: float | None = None
    if status == 400 and name == "invalid_prompts":
        kind, msg = FailureKind.MODERATED, f"Stability refused the prompt's words (400 invalid_prompts){detail}"
    elif status == 400:
        kind, msg = FailureKind.BAD_REQUEST, f"Stability rejected our request as invalid (400 {name}){detail}"
    elif status == 401:
        kind, msg = FailureKind.UNAUTHORIZED, "Stability says the API key is wrong (401)"
    elif status == 402:
        kind, msg = FailureKind.PAYMENT, "Stability account is out of credits (402)"
    elif status == 403:
        kind, msg = FailureKind.MODERATED, f"Stability's moderation refused the prompt (403 {name or 'forbidden'})"
    elif status == 404:
        kind, msg = FailureKind.BAD_REQUEST, f"Stability does not know this endpoint or engine (404){detail}"
    elif status == 413:
        kind, msg = FailureKind.TOO_LARGE, "The request to Stability was over 10 MiB (413): shrink the init image"
    elif status == 422:
        kind, msg = FailureKind.UNPROCESSABLE, f"Stability could not use the prompt (422 {name}){detail}"
    elif status == 429:
        retry_after = parse_retry_after(headers.get("retry-after"))
        retry_after = LOCKOUT if retry_after is None else retry_after
        kind, msg = FailureKind.RATE_LIMITED, f"Stability is rate limiting us (429) for {retry_after:g} s"
    elif status >= 500:
        retry_after = parse_retry_after(headers.get("retry-after"))
        kind, msg = FailureKind.SERVER, f"Stability had a server error ({status}){detail}"
    elif 400 <= status < 500:
        kind, msg = FailureKind.BAD_REQUEST, f"Stability refused the request ({status} {name}){detail}"
    else:
        kind, msg = FailureKind.BAD_RESPONSE, f"Stability answered with an unexpected status {status}"
    return GenerationError(kind, redact(msg), retry_after=retry_after, status=status)


def parse_balance(body: bytes, redact: Redact) -> float:
    doc = _json(body, redact)
    credits = doc.get("credits") if isinstance(doc, dict) else None
    if isinstance(credits, bool) or not isinstance(credits, int | float):
        raise _bad_response("no credits in the balance", redact)
    return float(credits)
