"""What the Stability API accepts and how it answers, as the mock enforces it.

A second, independent reading of ``shared/stability-api.md`` (on purpose not shared with the client's
``stability_wire``, so the tests cross-check the two): the limits and prices, the checks of each endpoint's
fields (multipart or JSON, types and ranges, SDXL sizes), the error bodies, and the 200 answers' shapes with
real PNG/JPEG/WebP pictures whose colours depend on the prompt and seed. Pure: a parsed request in,
a job, a ``Reply`` or an ``ApiError`` out.
"""

from __future__ import annotations

import base64
import contextlib
import email.message
import email.parser
import hashlib
import io
import json
import math
import re
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from engine.gen.base import ASPECT_RATIOS
from engine.gen.mock_http import HttpRequest, Reply, json_reply, phrase

MAX_BODY = 10 * 1024 * 1024
MEGAPIXEL = 1024 * 1024
OUTPUT_PIXELS = {"core": 1.5 * MEGAPIXEL, "ultra": MEGAPIXEL, "sd3": MEGAPIXEL}
V2_CREDITS = {"core": 3.0, "ultra": 8.0}
SD3_MODELS = {"sd3.5-large": 6.5, "sd3.5-large-turbo": 4.0, "sd3.5-medium": 3.5, "sd3.5-flash": 2.5}
V1_CREDITS_PER_IMAGE = 1.0  # the contract gives no v1 prices: one credit per image keeps the sums readable
OUTPUT_FORMATS = ("png", "jpeg", "webp")
STYLE_PRESETS = ("3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
                 "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk", "origami",
                 "photographic", "pixel-art", "tile-texture")
V1_ENGINES = {
    "stable-diffusion-xl-1024-v1-0": ("Stable Diffusion XL 1.0", "Stability-AI Stable Diffusion XL v1.0"),
    "stable-diffusion-v1-6": ("Stable Diffusion v1.6", "Stability-AI Stable Diffusion v1.6"),
}
SDXL_SIZES = frozenset({(1024, 1024), (1152, 896), (1216, 832), (1344, 768), (1536, 640),
                        (640, 1536), (768, 1344), (832, 1216), (896, 1152)})
SAMPLERS = ("DDIM", "DDPM", "K_DPMPP_2M", "K_DPMPP_2S_ANCESTRAL", "K_DPM_2", "K_DPM_2_ANCESTRAL", "K_EULER",
            "K_EULER_ANCESTRAL", "K_HEUN", "K_LMS")
V2_FIELDS = {
    "core": {"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format", "style_preset"},
    "ultra": {"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format", "style_preset", "image",
              "strength"},
    "sd3": {"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format", "style_preset", "image",
            "strength", "model", "mode", "cfg_scale"},
}
V1_COMMON = {"cfg_scale", "clip_guidance_preset", "sampler", "samples", "seed", "steps", "style_preset", "extras"}
V1_IMG2IMG = V1_COMMON | {"init_image", "init_image_mode", "image_strength", "step_schedule_start",
                          "step_schedule_end"}
STOCK_ERRORS = {
    400: ("bad_request", "bad request"),
    401: ("unauthorized", "missing or invalid API key"),
    402: ("payment_required", "You lack sufficient credits to make this request."),
    403: ("content_moderation", "Your request was flagged by our content moderation system."),
    404: ("not_found", "not found"),
    405: ("method_not_allowed", "method not allowed"),
    413: ("payload_too_large", "The request exceeded the 10 MiB limit."),
    422: ("invalid_language", "English is the only supported language for this service."),
    429: ("rate_limit_exceeded", "You have exceeded the rate limit of 150 requests within a 10 second period."),
    500: ("server_error", "An unexpected server error has occurred, please try again later."),
    502: ("bad_gateway", "bad gateway"),
    503: ("service_unavailable", "The service is temporarily unavailable."),
}


class ApiError(Exception):
    """An error answer; shaped as v2 ``{"id", "name", "errors"}`` or v1 ``{"id", "name", "message"}`` by path."""

    def __init__(self, status: int, name: str, errors: Sequence[str], headers: Sequence[tuple[str, str]] = ()):
        super().__init__(f"{status} {name}: {'; '.join(errors)}")
        self.status = status
        self.name = name
        self.errors = list(errors)
        self.headers = tuple(headers)


def error_reply(err: ApiError, path: str) -> Reply:
    doc: dict[str, Any] = {"id": uuid.uuid4().hex, "name": err.name}
    if path.startswith("/v1/"):
        doc["message"] = "; ".join(err.errors)
    else:
        doc["errors"] = err.errors
    return json_reply(err.status, doc, err.headers)



def stock_error(status: int) -> tuple[str, list[str]]:
    """The API's own name and message for ``status``: ``ApiError(status, *stock_error(status))``."""
    name, message = STOCK_ERRORS.get(status, ("error", phrase(status)))
    return name, [message]


# --- multipart and field checks ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Form:
    fields: Mapping[str, str]
    files: Mapping[str, bytes] = field(repr=False)


def _bad(*errors: str) -> ApiError:
    return ApiError(400, "bad_request", errors)


def parse_multipart(content_type: str, body: bytes) -> Form:
    """multipart/form-data → text fields and files (a part with a filename is a file; ``none`` is dropped)."""
    head = email.message.Message()
    head["content-type"] = content_type
    boundary = head.get_param("boundary")
    if head.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        raise _bad("content-type: must be multipart/form-data with a boundary")
    chunks = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise _bad("body: malformed multipart/form-data")
    texts: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for chunk in chunks[1:-1]:
        chunk = chunk.lstrip(b" \t")
        if not chunk.startswith(b"\r\n"):
            raise _bad("body: malformed multipart/form-data")
        raw_head, sep, data = chunk[2:].partition(b"\r\n\r\n")
        if not sep:
            raise _bad("body: malformed multipart/form-data part")
        part = email.parser.BytesHeaderParser().parsebytes(raw_head + b"\r\n\r\n")
        params = dict(part.get_params(header="content-disposition") or [])
        name = params.get("name")
        if not name:
            raise _bad("body: a multipart part has no name")
        if "filename" in params:
            files[name] = data
        else:
            try:
                texts[name] = data.decode("utf-8")
            except UnicodeDecodeError:
                raise _bad(f"{name}: is not valid UTF-8") from None
    files.pop("none", None)  # the official samples' empty file part
    return Form(texts, files)


def _integer(name: str, value: object, lo: int, hi: int, errors: list[str], text: bool = True) -> int | None:
    """An integer field; ``text``: it came as form text (JSON fields must be real numbers)."""
    if text and isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(f"{name}: must be an integer")
        return None
    if not lo <= value <= hi:
        errors.append(f"{name}: must be between {lo} and {hi}")
        return None
    return value


def _number(name: str, value: object, lo: float, hi: float, errors: list[str], text: bool = True) -> float | None:
    if text and isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errors.append(f"{name}: must be a number")
        return None
    if not lo <= value <= hi:
        errors.append(f"{name}: must be between {lo:g} and {hi:g}")
        return None
    return float(value)


def _choice(name: str, value: object, choices: Sequence[str], errors: list[str]) -> str | None:
    if value not in choices:
        errors.append(f"{name}: must be one of {', '.join(choices)}")
        return None
    assert isinstance(value, str)
    return value


def _image_size(name: str, data: bytes, errors: list[str]) -> tuple[int, int] | None:
    """An uploaded image's size; it must be JPEG, PNG or WebP with sides of at least 64 px."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt, size = im.format, im.size
    except (OSError, ValueError, Image.DecompressionBombError):
        errors.append(f"{name}: could not be decoded as an image")
        return None
    if fmt not in ("JPEG", "PNG", "WEBP"):
        errors.append(f"{name}: must be a jpeg, png or webp image")
        return None
    if min(size) < 64:
        errors.append(f"{name}: width and height must be at least 64 pixels, got {size[0]}x{size[1]}")
        return None
    return size


# --- pictures ------------------------------------------------------------------------------------------------------

def output_size(endpoint: str, aspect: float, scale: float = 1.0) -> tuple[int, int]:
    """The endpoint's output size at ``aspect`` (w/h): about 1 MP for ultra/sd3, 1.5 MP for core; ×``scale``."""
    pixels = OUTPUT_PIXELS[endpoint]
    w = max(64, round(math.sqrt(pixels * aspect) / 64) * 64)
    h = max(64, round(math.sqrt(pixels / aspect) / 64) * 64)
    return scaled((w, h), scale)


def scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(8, round(size[0] * scale)), max(8, round(size[1] * scale))


def ratio_of(aspect_ratio: str) -> float:
    a, b = aspect_ratio.split(":")
    return int(a) / int(b)


def render_image(prompt: str, seed: int, size: tuple[int, int], fmt: str, blurred: bool = False) -> bytes:
    """A real picture whose colours follow the prompt and seed; ``blurred`` (moderated) is a flat grey."""
    w, h = size
    if blurred:
        rgb = np.full((h, w, 3), 128, dtype=np.uint8)
    else:
        digest = hashlib.sha256(f"{prompt}\0{seed}".encode()).digest()
        corners = np.frombuffer(digest[:12], dtype=np.uint8).reshape(4, 3).astype(np.float32)
        x = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
        y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        img = (corners[0] * (1 - x) * (1 - y) + corners[1] * x * (1 - y)
               + corners[2] * (1 - x) * y + corners[3] * x * y)
        rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format={"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt])
    return buf.getvalue()


# --- what each endpoint accepts ------------------------------------------------------------------------------------

def check_method(req: HttpRequest, method: str) -> None:
    if req.method != method:
        raise ApiError(405, "method_not_allowed", [f"{req.method} is not allowed here; use {method}"])


def check_auth(req: HttpRequest, key: str) -> None:
    """The key as ``Authorization: Bearer <key>`` (401 otherwise), and the client headers' length limit."""
    auth = req.headers.get("authorization")
    if not auth:
        raise ApiError(401, "unauthorized", ["authorization: missing (expected 'Bearer <API key>')"])
    if auth != f"Bearer {key}":
        raise ApiError(401, "unauthorized", ["authorization: invalid API key"])
    errors = [f"{h}: must be at most 256 characters" for h in ("stability-client-id", "stability-client-version")
              if len(req.headers.get(h, "")) > 256]
    if errors:
        raise _bad(*errors)


@dataclass(frozen=True)
class V2Job:
    """A valid v2beta generate request: what to make. ``aspect`` is width/height (the init image's, if any)."""

    form: Form
    prompt: str
    aspect: float
    seed: int  # 0: the server picks one
    fmt: str
    model: str


def validate_v2(endpoint: str, req: HttpRequest) -> V2Job:
    """Check a ``/v2beta/stable-image/generate/{endpoint}`` request; every error at once in one 400."""
    form = parse_multipart(req.headers.get("content-type", ""), req.body)
    errors = [f"{n}: unknown parameter" for n in sorted({*form.fields, *form.files} - V2_FIELDS[endpoint])]
    errors += [f"{n}: must be a file" for n in form.fields if n == "image"]
    errors += [f"{n}: must be a text field, not a file" for n in form.files if n != "image"]
    f = form.fields
    prompt = f.get("prompt", "")
    if not prompt:
        errors.append("prompt: is required")
    elif len(prompt) > 10000:
        errors.append("prompt: must be at most 10000 characters")
    if len(f.get("negative_prompt", "")) > 10000:
        errors.append("negative_prompt: must be at most 10000 characters")
    aspect = _choice("aspect_ratio", f.get("aspect_ratio", "1:1"), ASPECT_RATIOS, errors) or "1:1"
    seed = _integer("seed", f.get("seed", "0"), 0, 4294967294, errors) or 0
    fmt = _choice("output_format", f.get("output_format", "png"), OUTPUT_FORMATS, errors) or "png"
    if "style_preset" in f:
        _choice("style_preset", f["style_preset"], STYLE_PRESETS, errors)
    model = "sd3.5-large"
    img2img = "image" in form.files
    if endpoint == "sd3":
        model = _choice("model", f.get("model", model), tuple(SD3_MODELS), errors) or model
        mode = _choice("mode", f.get("mode", "text-to-image"), ("text-to-image", "image-to-image"), errors)
        if "cfg_scale" in f:
            _number("cfg_scale", f["cfg_scale"], 1.0, 10.0, errors)
        if mode == "image-to-image" and not img2img:
            errors.append("image: is required when mode is image-to-image")
        if mode == "text-to-image" and img2img:
            errors.append("image: is only allowed when mode is image-to-image")
    source: tuple[int, int] | None = None
    if img2img:
        source = _image_size("image", form.files["image"], errors)
        if "strength" not in f:
            errors.append("strength: is required when an image is given")
        else:
            _number("strength", f["strength"], 0.0, 1.0, errors)
        if "aspect_ratio" in f:
            errors.append("aspect_ratio: is only allowed for text-to-image")
    elif "strength" in f:
        errors.append("strength: is only allowed with an image")
    if errors:
        raise _bad(*errors)
    return V2Job(form, prompt, source[0] / source[1] if source else ratio_of(aspect), seed, fmt, model)


@dataclass(frozen=True)
class V1Job:
    """A valid v1 generate request. ``form``/``doc``: the fields as received (multipart or JSON) for the record."""

    form: Form
    doc: Any
    prompts: tuple[tuple[str, float], ...]
    size: tuple[int, int]
    samples: int
    seed: int  # 0: the server picks one
    want_png: bool  # answer with PNG bytes, not JSON artifacts


def validate_v1(engine: str, kind: str, req: HttpRequest) -> V1Job:
    """Check a ``/v1/generation/{engine}/{kind}`` request (JSON text-to-image, multipart image-to-image)."""
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    text = kind == "image-to-image"  # multipart: numbers arrive as text
    files: Mapping[str, bytes] = {}
    raw_fields: Mapping[str, str] = {}
    if kind == "text-to-image":
        if ctype != "application/json":
            raise _bad("content-type: must be application/json")
        try:
            doc = json.loads(req.body)
        except (ValueError, UnicodeDecodeError):
            raise _bad("body: is not valid JSON") from None
        if not isinstance(doc, dict):
            raise _bad("body: must be a JSON object")
        allowed = V1_COMMON | {"text_prompts", "height", "width"}
        params: dict[str, Any] = doc
    else:
        form = parse_multipart(req.headers.get("content-type", ""), req.body)
        params = {k: v for k, v in form.fields.items() if not k.startswith("text_prompts[")}
        params["text_prompts"] = _form_prompts(form.fields)
        params.update(form.files)
        files, raw_fields = form.files, form.fields
        allowed = V1_IMG2IMG | {"text_prompts"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise _bad(f"{unknown[0]}: unknown parameter")
    prompts = _v1_prompts(params.get("text_prompts"), text)
    errors: list[str] = []
    if kind == "text-to-image":
        default = 1024 if engine.startswith("stable-diffusion-xl") else 512
        width = _integer("width", params.get("width", default), 0, 1 << 30, errors, text)
        height = _integer("height", params.get("height", default), 0, 1 << 30, errors, text)
        if errors:
            raise ApiError(400, "invalid_height_or_width", errors)
        assert width is not None and height is not None
        size = _v1_size(engine, width, height)
    else:
        if "init_image" not in files:
            raise _bad("init_image: is required")
        got = _image_size("init_image", files["init_image"], errors)
        if got is None:
            raise _bad(*errors)
        if engine.startswith("stable-diffusion-xl") and got not in SDXL_SIZES:
            raise ApiError(400, "invalid_sdxl_v1_dimensions",
                           [f"init_image: for SDXL the image must be one of the allowed sizes, got "
                            f"{got[0]}x{got[1]}"])
        size = got
        _choice("init_image_mode", params.get("init_image_mode", "IMAGE_STRENGTH"),
                ("IMAGE_STRENGTH", "STEP_SCHEDULE"), errors)
        _number("image_strength", params.get("image_strength", 0.35), 0.0, 1.0, errors, text)
    samples = _integer("samples", params.get("samples", 1), 1, 10, [], text)
    if samples is None:
        raise ApiError(400, "invalid_samples", ["samples: must be an integer between 1 and 10"])
    _number("cfg_scale", params.get("cfg_scale", 7), 0.0, 35.0, errors, text)
    _integer("steps", params.get("steps", 30), 10, 50, errors, text)
    seed = _integer("seed", params.get("seed", 0), 0, 4294967295, errors, text) or 0
    if "style_preset" in params:
        _choice("style_preset", params["style_preset"], STYLE_PRESETS, errors)
    if "sampler" in params:
        _choice("sampler", params["sampler"], SAMPLERS, errors)
    if errors:
        raise _bad(*errors)
    accept = req.headers.get("accept", "application/json")
    want_png = "image/png" in accept and "application/json" not in accept
    if want_png and samples != 1:
        raise _bad("accept: image/png is only allowed when samples is 1")
    return V1Job(Form(raw_fields, files), params if kind == "text-to-image" else None, tuple(prompts), size,
                 samples, seed, want_png)


def _form_prompts(form: Mapping[str, str]) -> list[dict[str, Any]]:
    """``text_prompts[0][text]``/``[weight]`` form fields → the JSON shape."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in form.items():
        if m := re.fullmatch(r"text_prompts\[(\d+)\]\[(text|weight)\]", key):
            found.setdefault(int(m[1]), {})[m[2]] = value
        elif key.startswith("text_prompts["):
            raise _bad(f"{key}: unknown parameter")
    return [found[i] for i in sorted(found)]


def _v1_prompts(value: object, text: bool) -> list[tuple[str, float]]:
    if not isinstance(value, list) or not value:
        raise _bad("text_prompts: at least one prompt is required")
    out: list[tuple[str, float]] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise _bad(f"text_prompts[{i}]: must be an object with text and weight")
        prompt = item.get("text")
        if not isinstance(prompt, str) or not prompt:
            raise _bad(f"text_prompts[{i}].text: is required")
        if len(prompt) > 2000:
            raise _bad(f"text_prompts[{i}].text: must be at most 2000 characters")
        errors: list[str] = []
        weight = _number(f"text_prompts[{i}].weight", item.get("weight", 1.0), -1e6, 1e6, errors, text)
        if weight is None:
            raise _bad(*errors)
        out.append((prompt, weight))
    if not any(w > 0 for _, w in out):
        raise _bad("text_prompts: at least one prompt needs a positive weight")
    return out


def _v1_size(engine: str, width: int, height: int) -> tuple[int, int]:
    if width % 64 or height % 64 or width < 128 or height < 128:
        raise ApiError(400, "invalid_height_or_width",
                       [f"height and width must be multiples of 64 and at least 128, got {width}x{height}"])
    if engine.startswith("stable-diffusion-xl"):
        if (width, height) not in SDXL_SIZES:
            allowed = ", ".join(f"{w}x{h}" for w, h in sorted(SDXL_SIZES))
            raise ApiError(400, "invalid_sdxl_v1_dimensions",
                           [f"For SDXL v1 the allowed dimensions are {allowed}; got {width}x{height}"])
    elif not (320 <= width <= 1536 and 320 <= height <= 1536):
        raise ApiError(400, "invalid_height_or_width",
                       [f"height and width must be between 320 and 1536, got {width}x{height}"])
    return width, height


# --- how it answers ------------------------------------------------------------------------------------------------

def v2_answer(image: bytes, fmt: str, seed: int, *, filtered: bool, as_json: bool) -> Reply:
    """A v2beta 200: image bytes with ``finish-reason``/``seed`` headers, or ``{"image", "finish_reason", "seed"}``."""
    finish = "CONTENT_FILTERED" if filtered else "SUCCESS"
    request_id = uuid.uuid4().hex
    if as_json:
        return json_reply(200, {"image": base64.b64encode(image).decode(), "finish_reason": finish, "seed": seed},
                          (("x-request-id", request_id),), ctype=f"application/json; type=image/{fmt}")
    return Reply(200, image, (("Content-Type", f"image/{fmt}"), ("finish-reason", finish), ("seed", str(seed)),
                              ("x-request-id", request_id)))


def v1_answer(artifacts: Sequence[tuple[bytes, int, str]], want_png: bool) -> Reply:
    """A v1 200: ``{"artifacts": [{"base64", "seed", "finishReason"}]}``, or the one PNG with its headers."""
    if want_png:
        png, s, finish = artifacts[0]
        return Reply(200, png, (("Content-Type", "image/png"), ("Finish-Reason", finish), ("Seed", str(s))))
    return json_reply(200, {"artifacts": [{"base64": base64.b64encode(p).decode(), "seed": s,
                                           "finishReason": fr} for p, s, fr in artifacts]})


def engines_answer() -> Reply:
    """``GET /v1/engines/list``: the v1 engines the mock knows."""
    return json_reply(200, [{"id": k, "name": n, "description": d, "type": "PICTURE"}
                            for k, (n, d) in V1_ENGINES.items()])
