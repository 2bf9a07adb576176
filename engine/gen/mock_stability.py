"""A loopback stand-in for the Stability AI REST API, for tests and rehearsals without the internet.

It follows ``shared/stability-api.md``: it checks requests the way the real API does (the key, multipart
or JSON per endpoint, every field's type and range, SDXL sizes, the 10 MiB cap) and answers with the real
shapes (image bytes with ``finish-reason``/``seed`` headers, or JSON; v1 ``artifacts``; the error bodies).
The pictures are real PNG/JPEG/WebP files whose colours depend on the prompt and seed.

Faults are injected from Python (attributes and ``script()`` of ``MockStabilityServer``) or, when it
runs on its own, over HTTP::

    python -m engine.gen.mock_stability --port 8089           # http://127.0.0.1:8089 until Ctrl-C
    curl -X POST localhost:8089/_mock/faults -d '{"script": [{"status": 500}], "latency": 0.5}'
    curl localhost:8089/_mock/stats

``MockStabilityServer.handle()`` is sans-I/O (a parsed request and the time in, a ``Reply`` out); the
asyncio stream server around it only reads requests, waits out latency, holds or drops connections,
and writes replies. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import email.message
import email.parser
import email.utils
import hashlib
import http
import io
import json
import math
import os
import random
import re
import sys
import threading
import time
import uuid
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np
from PIL import Image

from engine.gen.base import ASPECT_RATIOS

MAX_BODY = 10 * 1024 * 1024
WINDOW = 10.0
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

Action = Literal["answer", "hang", "close", "filter", "corrupt"]
Moderation = Literal["reject", "filter"]


# --- requests and replies --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HttpRequest:
    """One parsed HTTP request (header names lower case). ``too_large``: the body was over the cap and dropped."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes = field(default=b"", repr=False)
    too_large: bool = False

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass(frozen=True)
class Reply:
    """What to do with a request: answer it, hold the connection (``hang``), or drop it unanswered (``close``)."""

    status: int = 200
    body: bytes = field(default=b"", repr=False)
    headers: tuple[tuple[str, str], ...] = ()
    action: Literal["answer", "hang", "close"] = "answer"
    hold: float | None = None  # for hang: give up after this many seconds; None = until the client leaves
    delay: float = 0.0  # latency before the answer


@dataclass(frozen=True)
class Scripted:
    """One scripted answer, taken by the next request whose path contains ``match``.

    ``action``: ``answer`` (the error ``status``), ``hang`` (hold the connection), ``close`` (drop it
    unanswered), ``filter`` (a normal 200 whose images are CONTENT_FILTERED; v1: only the artifacts in
    ``filtered`` when given), ``corrupt`` (a 200 whose image bytes are garbage). ``echo_key`` copies the
    request's Authorization header into the error text, like a careless server would.
    """

    status: int = 500
    retry_after: float | None = None
    name: str = ""
    message: str = ""
    action: Action = "answer"
    hold: float | None = None
    echo_key: bool = False
    match: str = ""
    filtered: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Received:
    """What the mock saw of one API request (the Authorization header left out)."""

    method: str
    path: str
    headers: Mapping[str, str]
    form: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    json: Any = None


class ApiError(Exception):
    """An error answer; shaped as v2 ``{"id", "name", "errors"}`` or v1 ``{"id", "name", "message"}`` by path."""

    def __init__(self, status: int, name: str, errors: Sequence[str], headers: Sequence[tuple[str, str]] = ()):
        super().__init__(f"{status} {name}: {'; '.join(errors)}")
        self.status = status
        self.name = name
        self.errors = list(errors)
        self.headers = tuple(headers)


def json_reply(status: int, doc: Any, headers: Sequence[tuple[str, str]] = (),
               ctype: str = "application/json") -> Reply:
    return Reply(status, json.dumps(doc).encode(), (("Content-Type", ctype), *headers))


def error_reply(err: ApiError, path: str) -> Reply:
    doc: dict[str, Any] = {"id": uuid.uuid4().hex, "name": err.name}
    if path.startswith("/v1/"):
        doc["message"] = "; ".join(err.errors)
    else:
        doc["errors"] = err.errors
    return json_reply(err.status, doc, err.headers)


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


# --- the mock --------------------------------------------------------------------------------------------------

class MockStabilityServer:
    """The mock API on 127.0.0.1. ``async with MockStabilityServer(key) as server:`` → ``server.url``.

    ``scale`` shrinks the pictures (1/16 makes 64x64 for 1:1 ultra) so tests stay fast. ``credits`` is the
    balance, charged at the contract's prices (402 when too low). ``rate_limit``: more than that many
    requests in 10 s locks the key out for ``lockout`` seconds (429). Prompts containing a ``blocked_words``
    word are refused (``moderation="reject"``: v2 403, v1 400 ``invalid_prompts``) or blurred (``"filter"``).
    ``requests`` counts requests per path; ``received`` keeps the last 100 API requests.
    """

    def __init__(
        self,
        key: str = "sk-mock",
        *,
        port: int = 0,
        scale: float = 1.0,
        credits: float = 1000.0,
        latency: float = 0.0,
        rate_limit: int | None = None,
        lockout: float = 60.0,
        blocked_words: Sequence[str] = (),
        moderation: Moderation = "reject",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.scale = scale
        self.credits = credits
        self.latency = latency
        self.rate_limit = rate_limit
        self.lockout = lockout
        self.blocked_words = list(blocked_words)
        self.moderation: Moderation = moderation
        self.requests: Counter[str] = Counter()
        self.received: deque[Received] = deque(maxlen=100)
        self._clock = clock
        self._script: list[Scripted] = []
        self._recent: deque[float] = deque()
        self._locked_until = -math.inf
        self._rng = random.Random(1234)
        self._port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<MockStabilityServer {self.url if self._server else 'stopped'}>"

    # -- control -------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the mock Stability server is not running")
        return int(self._server.sockets[0].getsockname()[1])

    def script(self, *answers: Scripted) -> None:
        """Queue scripted answers, each used once, in order."""
        self._script.extend(answers)

    @property
    def scripted_left(self) -> int:
        return len(self._script)

    def reset(self) -> None:
        """Forget scripted answers, counters, the lockout and latency."""
        self._script.clear()
        self.requests.clear()
        self.received.clear()
        self._recent.clear()
        self._locked_until = -math.inf
        self.latency = 0.0

    def configure(self, doc: Mapping[str, Any]) -> None:
        """Apply ``POST /_mock/faults`` settings: latency, script, rate_limit, lockout, blocked_words,
        moderation, credits, key, scale (raises ValueError on an unknown or mistyped one)."""
        known = {"latency", "script", "rate_limit", "lockout", "blocked_words", "moderation", "credits", "key",
                 "scale"}
        unknown = set(doc) - known
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
        scripted = [_scripted(item) for item in doc.get("script", [])]
        for name in ("latency", "lockout", "credits", "scale"):
            if name in doc:
                value = doc[name]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{name}: must be a number")
                setattr(self, name, float(value))
        if "rate_limit" in doc:
            value = doc["rate_limit"]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError("rate_limit: must be an integer or null")
            self.rate_limit = value
        if "blocked_words" in doc:
            words = doc["blocked_words"]
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise ValueError("blocked_words: must be a list of strings")
            self.blocked_words = words
        if "moderation" in doc:
            if doc["moderation"] not in ("reject", "filter"):
                raise ValueError("moderation: must be reject or filter")
            self.moderation = doc["moderation"]
        if "key" in doc:
            if not isinstance(doc["key"], str):
                raise ValueError("key: must be a string")
            self.key = doc["key"]
        self._script.extend(scripted)

    # -- lifecycle -----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._on_connection, "127.0.0.1", self._port)

    async def stop(self) -> None:
        """Stop listening and end every connection (held ones included)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> MockStabilityServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- sans-I/O core -------------------------------------------------------------------------------------------

    def handle(self, req: HttpRequest) -> Reply:
        """Answer one request (validation, faults, credits, pictures) at the time of the injected clock."""
        path = req.path
        if path.startswith("/_mock/"):
            return self._control(req)
        self.requests[path] += 1
        scripted = self._take_script(path)
        delay = self.latency
        if scripted is not None and scripted.action in ("hang", "close"):
            return Reply(action=scripted.action, hold=scripted.hold, delay=delay)
        try:
            if scripted is not None and scripted.action == "answer":
                raise self._scripted_error(scripted, req)
            self._check_rate(path)
            if req.too_large:
                raise ApiError(413, *_stock(413))
            reply = self._route(req, scripted)
        except ApiError as err:
            reply = error_reply(err, path)
        return Reply(reply.status, reply.body, reply.headers, delay=delay)

    def _take_script(self, path: str) -> Scripted | None:
        for i, item in enumerate(self._script):
            if item.match in path:
                return self._script.pop(i)
        return None

    def _scripted_error(self, s: Scripted, req: HttpRequest) -> ApiError:
        name, stock = _stock(s.status)
        message = s.message or stock[0]
        if s.echo_key:
            message += f" (received authorization: {req.headers.get('authorization', '')})"
        headers = (("Retry-After", f"{s.retry_after:g}"),) if s.retry_after is not None else ()
        return ApiError(s.status, s.name or name, [message], headers)

    def _check_rate(self, path: str) -> None:
        """The real API's lockout: more than ``rate_limit`` requests in 10 s → 429 for ``lockout`` s."""
        if self.rate_limit is None:
            return
        now = self._clock()
        if now < self._locked_until:
            raise ApiError(429, *_stock(429))
        self._recent.append(now)
        while self._recent and self._recent[0] <= now - WINDOW:
            self._recent.popleft()
        if len(self._recent) > self.rate_limit:
            self._locked_until = now + self.lockout
            raise ApiError(429, *_stock(429))

    def _control(self, req: HttpRequest) -> Reply:
        if req.path == "/_mock/stats" and req.method == "GET":
            return json_reply(200, {"requests": dict(self.requests), "credits": self.credits,
                                    "scripted_left": len(self._script)})
        if req.path == "/_mock/reset" and req.method == "POST":
            self.reset()
            return json_reply(200, {"ok": True})
        if req.path == "/_mock/faults" and req.method == "POST":
            try:
                doc = json.loads(req.body or b"{}")
                if not isinstance(doc, dict):
                    raise ValueError("expected a JSON object")
                self.configure(doc)
            except (ValueError, TypeError) as err:
                return json_reply(400, {"error": str(err)})
            return json_reply(200, {"ok": True, "scripted_left": len(self._script)})
        return json_reply(404, {"error": "mock control endpoints: POST /_mock/faults, POST /_mock/reset, "
                                         "GET /_mock/stats"})

    def _route(self, req: HttpRequest, scripted: Scripted | None) -> Reply:
        path = req.path
        if m := re.fullmatch(r"/v2beta/stable-image/generate/([^/]+)", path):
            self._check_method(req, "POST")
            self._check_auth(req)
            if m[1] not in V2_FIELDS:
                raise ApiError(404, "not_found", [f"unknown endpoint {m[1]!r}"])
            return self._v2_generate(m[1], req, scripted)
        if m := re.fullmatch(r"/v1/generation/([^/]+)/(text-to-image|image-to-image)", path):
            self._check_method(req, "POST")
            self._check_auth(req)
            if m[1] not in V1_ENGINES:
                raise ApiError(404, "not_found", [f"The specified engine (ID {m[1]}) was not found."])
            return self._v1_generate(m[1], m[2], req, scripted)
        if path == "/v1/user/balance":
            self._check_method(req, "GET")
            self._check_auth(req)
            return json_reply(200, {"credits": self.credits})
        if path == "/v1/engines/list":
            self._check_method(req, "GET")
            self._check_auth(req)
            return json_reply(200, [{"id": k, "name": n, "description": d, "type": "PICTURE"}
                                    for k, (n, d) in V1_ENGINES.items()])
        raise ApiError(404, "not_found", [f"{path} was not found"])

    @staticmethod
    def _check_method(req: HttpRequest, method: str) -> None:
        if req.method != method:
            raise ApiError(405, "method_not_allowed", [f"{req.method} is not allowed here; use {method}"])

    def _check_auth(self, req: HttpRequest) -> None:
        auth = req.headers.get("authorization")
        if not auth:
            raise ApiError(401, "unauthorized", ["authorization: missing (expected 'Bearer <API key>')"])
        if auth != f"Bearer {self.key}":
            raise ApiError(401, "unauthorized", ["authorization: invalid API key"])
        errors = [f"{h}: must be at most 256 characters" for h in ("stability-client-id", "stability-client-version")
                  if len(req.headers.get(h, "")) > 256]
        if errors:
            raise _bad(*errors)

    def _blocked(self, prompts: Sequence[str]) -> bool:
        text = " ".join(prompts).lower()
        return any(w.lower() in text for w in self.blocked_words if w)

    def _charge(self, cost: float) -> None:
        if self.credits < cost:
            raise ApiError(402, "payment_required",
                           [f"You lack sufficient credits: this request costs {cost:g}, you have {self.credits:g}."])

    def _seed(self, seed: int, top: int) -> int:
        return seed or self._rng.randint(1, top)

    # -- v2beta --------------------------------------------------------------------------------------------------

    def _v2_generate(self, endpoint: str, req: HttpRequest, scripted: Scripted | None) -> Reply:
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
        self._record(req, form)
        blurred = self._blocked([prompt])
        if blurred and self.moderation == "reject":
            raise ApiError(403, *_stock(403))
        cost = SD3_MODELS[model] if endpoint == "sd3" else V2_CREDITS[endpoint]
        self._charge(cost)
        seed = self._seed(seed, 4294967294)
        blurred = blurred or (scripted is not None and scripted.action == "filter")
        aspect_value = source[0] / source[1] if source else ratio_of(aspect)
        if scripted is not None and scripted.action == "corrupt":
            image = b"garbage, not an image"
        else:
            image = render_image(prompt, seed, output_size(endpoint, aspect_value, self.scale), fmt, blurred)
        self.credits -= cost
        finish = "CONTENT_FILTERED" if blurred else "SUCCESS"
        request_id = uuid.uuid4().hex
        if "application/json" in req.headers.get("accept", ""):
            return json_reply(200, {"image": base64.b64encode(image).decode(), "finish_reason": finish, "seed": seed},
                              (("x-request-id", request_id),), ctype=f"application/json; type=image/{fmt}")
        return Reply(200, image, (("Content-Type", f"image/{fmt}"), ("finish-reason", finish), ("seed", str(seed)),
                                  ("x-request-id", request_id)))

    # -- v1 ------------------------------------------------------------------------------------------------------

    def _v1_generate(self, engine: str, kind: str, req: HttpRequest, scripted: Scripted | None) -> Reply:
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
        prompts = self._v1_prompts(params.get("text_prompts"), text)
        errors: list[str] = []
        if kind == "text-to-image":
            default = 1024 if engine.startswith("stable-diffusion-xl") else 512
            width = _integer("width", params.get("width", default), 0, 1 << 30, errors, text)
            height = _integer("height", params.get("height", default), 0, 1 << 30, errors, text)
            if errors:
                raise ApiError(400, "invalid_height_or_width", errors)
            assert width is not None and height is not None
            size = self._v1_size(engine, width, height)
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
        self._record(req, Form(raw_fields, files), doc=params if kind == "text-to-image" else None)
        positive = [t for t, w in prompts if w >= 0]
        blocked = self._blocked(positive)
        if blocked and self.moderation == "reject":
            raise ApiError(400, "invalid_prompts", ["One or more prompts contains filtered words."])
        cost = V1_CREDITS_PER_IMAGE * samples
        self._charge(cost)
        seed = self._seed(seed, 4294967295)
        filtered: set[int] = set()
        if blocked or (scripted is not None and scripted.action == "filter"):
            chosen = scripted.filtered if scripted is not None and scripted.filtered is not None else None
            filtered = set(range(samples)) if chosen is None or blocked else set(chosen)
        out_size = scaled(size, self.scale)
        artifacts = []
        for i in range(samples):
            s = (seed + i) % 4294967296
            if scripted is not None and scripted.action == "corrupt":
                png = b"not a png"
            else:
                png = render_image(" ".join(positive), s, out_size, "png", blurred=i in filtered)
            artifacts.append((png, s, "CONTENT_FILTERED" if i in filtered else "SUCCESS"))
        self.credits -= cost
        if want_png:
            png, s, finish = artifacts[0]
            return Reply(200, png, (("Content-Type", "image/png"), ("Finish-Reason", finish), ("Seed", str(s))))
        return json_reply(200, {"artifacts": [{"base64": base64.b64encode(p).decode(), "seed": s,
                                               "finishReason": fr} for p, s, fr in artifacts]})

    @staticmethod
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

    @staticmethod
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

    def _record(self, req: HttpRequest, form: Form, doc: Any = None) -> None:
        headers = {k: v for k, v in req.headers.items() if k != "authorization"}
        self.received.append(Received(req.method, req.path, headers, dict(form.fields), dict(form.files), doc))

    # -- I/O -----------------------------------------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                req = await _read_request(reader)
                if req is None:
                    break
                reply = self.handle(req)
                if reply.delay > 0:
                    await asyncio.sleep(reply.delay)
                if reply.action == "close":
                    break
                if reply.action == "hang":
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(reader.read(), reply.hold)  # returns when the client leaves
                    break
                writer.write(_encode(reply))
                await writer.drain()
                if req.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, _BadHttp, ValueError):
            pass
        except asyncio.CancelledError:
            pass  # stop() ends held connections this way; asyncio 3.11 would log a cancelled handler as an error
        finally:
            writer.close()
            # stop() may cancel a handler that is already closing: that is the end we wanted.
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                await writer.wait_closed()
            self._tasks.discard(task)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Status"


def _stock(status: int) -> tuple[str, list[str]]:
    name, message = STOCK_ERRORS.get(status, ("error", _phrase(status)))
    return name, [message]


def _scripted(item: object) -> Scripted:
    if not isinstance(item, dict):
        raise ValueError("script: each entry must be an object")
    names = {f.name for f in fields(Scripted)}
    unknown = set(item) - names
    if unknown:
        raise ValueError(f"script: unknown keys {', '.join(sorted(unknown))} (known: {', '.join(sorted(names))})")
    if "filtered" in item and item["filtered"] is not None:
        item = {**item, "filtered": tuple(item["filtered"])}
    if item.get("action", "answer") not in ("answer", "hang", "close", "filter", "corrupt"):
        raise ValueError("script: action must be answer, hang, close, filter or corrupt")
    return Scripted(**item)


def _form_prompts(form: Mapping[str, str]) -> list[dict[str, Any]]:
    """``text_prompts[0][text]``/``[weight]`` form fields → the JSON shape."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in form.items():
        if m := re.fullmatch(r"text_prompts\[(\d+)\]\[(text|weight)\]", key):
            found.setdefault(int(m[1]), {})[m[2]] = value
        elif key.startswith("text_prompts["):
            raise _bad(f"{key}: unknown parameter")
    return [found[i] for i in sorted(found)]


class _BadHttp(Exception):
    """Not HTTP/1.1 we understand: the connection is dropped."""


async def _read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    line = await reader.readline()
    if line in (b"\r\n", b"\n"):
        line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadHttp(line[:80])
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n"):
            break
        name, sep, value = raw.decode("latin-1").partition(":")
        if not raw or not sep:
            raise _BadHttp(raw[:80])
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, too_large = await _read_chunked(reader)
    else:
        length = int(headers.get("content-length", "0") or "0")
        too_large = length > MAX_BODY
        if too_large:
            while length > 0:  # drain, so the client reads our 413 instead of a reset
                chunk = await reader.read(min(length, 1 << 16))
                if not chunk:
                    raise asyncio.IncompleteReadError(b"", length)
                length -= len(chunk)
            body = b""
        else:
            body = await reader.readexactly(length)
    return HttpRequest(parts[0].upper(), parts[1], headers, body, too_large)


async def _read_chunked(reader: asyncio.StreamReader) -> tuple[bytes, bool]:
    body = bytearray()
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            break
        chunk = await reader.readexactly(size + 2)
        if len(body) <= MAX_BODY:
            body += chunk[:-2]
    return (b"", True) if len(body) > MAX_BODY else (bytes(body), False)


def _encode(reply: Reply) -> bytes:
    lines = [f"HTTP/1.1 {reply.status} {_phrase(reply.status)}", f"Content-Length: {len(reply.body)}",
             f"Date: {email.utils.formatdate(usegmt=True)}", "Server: stagecraft-mock-stability"]
    lines += [f"{k}: {v}" for k, v in reply.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body


# --- running it outside asyncio code --------------------------------------------------------------------------------

@contextlib.contextmanager
def serve_in_thread(server: MockStabilityServer) -> Iterator[MockStabilityServer]:
    """Run ``server`` on its own event loop in a thread, for synchronous tests and tools."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(server.start())
        except BaseException as err:  # handed to the caller's thread below
            failed.append(err)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(server.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="mock-stability", daemon=True)
    thread.start()
    ready.wait()
    if failed:
        thread.join()
        raise failed[0]
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()


async def _serve_forever(server: MockStabilityServer) -> None:
    async with server:
        print(f"mock Stability API on {server.url} (Ctrl-C to stop); faults: POST {server.url}/_mock/faults",
              flush=True)
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.gen.mock_stability",
                                     description="A loopback mock of the Stability AI API (127.0.0.1 only).")
    parser.add_argument("--port", type=int, default=8089, help="port to listen on (0: any free one)")
    parser.add_argument("--key", default=os.environ.get("STABILITY_API_KEY") or "sk-mock",
                        help="the API key it accepts (default: $STABILITY_API_KEY, else sk-mock)")
    parser.add_argument("--scale", type=float, default=1.0, help="picture size factor (1 = the real sizes)")
    parser.add_argument("--credits", type=float, default=1000.0, help="starting balance")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--rate-limit", type=int, default=None, help="requests per 10 s before a lockout")
    parser.add_argument("--lockout", type=float, default=60.0, help="lockout length in seconds")
    parser.add_argument("--block", action="append", default=[], metavar="WORD", help="a word moderation refuses")
    parser.add_argument("--moderation", choices=("reject", "filter"), default="reject",
                        help="blocked words: refuse (403) or blur (CONTENT_FILTERED)")
    args = parser.parse_args(argv)
    server = MockStabilityServer(args.key, port=args.port, scale=args.scale, credits=args.credits,
                                 latency=args.latency, rate_limit=args.rate_limit, lockout=args.lockout,
                                 blocked_words=args.block, moderation=args.moderation)
    try:
        asyncio.run(_serve_forever(server))
    except KeyboardInterrupt:
        print("mock Stability API stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
