"""The Stability AI client: the ``stability`` generator.

Follows the contract in ``shared/stability-api.md``. Each layer does one job (outermost first):

    StabilityGenerator.generate    circuit breaker: fail fast while Stability is down, one probe after the cooldown
    ._generate                     v2beta: one request per sample; drops CONTENT_FILTERED images
    ._send_with_retries            full-jitter backoff on 429 / 5xx / network errors; Retry-After honoured
    ._send_once                    concurrency cap (semaphore) around one exchange
    ._exchange                     client-side rate limit, one HTTP exchange, httpx errors translated
    build_*_request / parse_*      pure functions: what to send, and what an answer means

The rate limiter (``SlidingWindowLimiter``) and the breaker (``CircuitBreaker``) are sans-I/O: they take the
time as an argument, so the generator's injected ``clock`` and ``sleep`` make every timing testable.

The API key lives in one place (``_auth_headers``). Every text that can reach a log line, an exception or
the VJ page passes through a ``Redactor`` first, because error bodies and httpx messages may echo it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import email.utils
import io
import json
import logging
import math
import os
import random as _random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import httpx
from PIL import Image, ImageOps, UnidentifiedImageError

from engine import NAME, __version__
from engine.config import GenerationConfig, StabilityConfig
from engine.gen.base import (
    ASPECT_RATIOS,
    FailureKind,
    GeneratedImage,
    GenerationError,
    GenerationRequest,
)

log = logging.getLogger(__name__)

KEY_ENV = "STABILITY_API_KEY"
HOST_ENV = "STABILITY_API_HOST"
RATE_WINDOW = 10.0  # seconds: the API counts requests per 10 s
LOCKOUT = 60.0  # the API's lockout after a 429; we wait at least this long when it gives no Retry-After
MAX_HONOURED_WAIT = 300.0  # a longer Retry-After is not waited out: the caller falls back instead
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
# Outcomes that prove Stability is up (it answered, the prompt or our request was the problem).
_NEUTRAL = frozenset({FailureKind.MODERATED, FailureKind.BAD_REQUEST, FailureKind.TOO_LARGE,
                      FailureKind.UNPROCESSABLE})
# Outcomes about the sender's prompt, not about the backend: not shown to the VJ as an error.
_SENDER_ONLY = frozenset({FailureKind.MODERATED, FailureKind.UNPROCESSABLE})
# Outcomes no retry or wait will fix: the breaker opens at once.
_FATAL = frozenset({FailureKind.UNAUTHORIZED, FailureKind.PAYMENT})


# --- redaction -------------------------------------------------------------------------------------------------

_BEARER = re.compile(r"(?i)bearer\s+[^\s'\",;]+")
_SK_TOKEN = re.compile(r"sk-[A-Za-z0-9_\-]{6,}")


@dataclass(frozen=True)
class Redactor:
    """Removes the API key from any text: as is, as Python/bytes reprs escape it, and anything key-shaped."""

    secret: str = field(default="", repr=False)

    def __call__(self, text: str) -> str:
        if self.secret:
            for form in {self.secret, repr(self.secret)[1:-1], self.secret.encode("unicode_escape").decode()}:
                if form:
                    text = text.replace(form, "[redacted]")
        text = _BEARER.sub("Bearer [redacted]", text)
        return _SK_TOKEN.sub("sk-[redacted]", text)


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
    """The image type from its magic bytes; None when it is no PNG, JPEG or WebP."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


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
        kind, msg = FailureKind.RATE_LIMITED, f"Stability is rate limiting us (429): waiting {retry_after:g} s"
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


# --- timing: backoff, rate limit, circuit breaker ------------------------------------------------------------------

def backoff_delay(attempt: int, base: float, cap: float, rnd: float) -> float:
    """Full jitter: ``rnd`` (0..1) times ``base * 2**attempt``, the ceiling capped at ``cap``."""
    return rnd * min(cap, base * 2.0 ** attempt)


class SlidingWindowLimiter:
    """At most ``limit`` sends in any ``window`` seconds (sans-I/O: the caller passes the time and sleeps)."""

    def __init__(self, limit: int, window: float = RATE_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._sent: deque[float] = deque()
        self._paused_until = -math.inf

    def try_acquire(self, now: float) -> float:
        """Take a slot and return 0, or return how many seconds to wait before asking again."""
        if now < self._paused_until:
            return self._paused_until - now
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        if len(self._sent) >= self.limit:
            return self._sent[0] + self.window - now
        self._sent.append(now)
        return 0.0

    def pause_until(self, when: float) -> None:
        """Hold every send until ``when`` (after a 429 the whole client backs off, not one request)."""
        self._paused_until = max(self._paused_until, when)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Admission(StrEnum):
    PASS = "pass"  # closed: go
    PROBE = "probe"  # the one request allowed through after the cooldown
    REJECT = "reject"  # open (or a probe is already out): fail fast


class CircuitBreaker:
    """Opens after ``failures`` failed generations in a row; after ``cooldown`` lets one probe through.

    Sans-I/O: every method takes the time. A probe's success closes it, a failure re-opens it (restarting
    the cooldown). ``trip`` opens it at once, for outcomes no retry will fix (wrong key, no credits).
    """

    def __init__(self, failures: int, cooldown: float) -> None:
        self.threshold = failures
        self.cooldown = cooldown
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at = -math.inf

    def peek(self, now: float) -> BreakerState:
        """The state a request would meet now: OPEN reads HALF_OPEN once the cooldown is over."""
        if self.state is BreakerState.OPEN and now - self.opened_at >= self.cooldown:
            return BreakerState.HALF_OPEN
        return self.state

    def retry_in(self, now: float) -> float:
        return max(0.0, self.opened_at + self.cooldown - now) if self.state is not BreakerState.CLOSED else 0.0

    def admit(self, now: float) -> Admission:
        if self.state is BreakerState.CLOSED:
            return Admission.PASS
        if self.state is BreakerState.OPEN and now - self.opened_at >= self.cooldown:
            self.state = BreakerState.HALF_OPEN
            return Admission.PROBE
        return Admission.REJECT

    def success(self) -> None:
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0

    def failure(self, now: float) -> None:
        self.consecutive_failures += 1
        if self.state is BreakerState.HALF_OPEN or self.consecutive_failures >= self.threshold:
            self._open(now)

    def trip(self, now: float) -> None:
        self.consecutive_failures += 1
        self._open(now)

    def abandon_probe(self) -> None:
        """The probe was cancelled without an answer: the next request may probe again."""
        if self.state is BreakerState.HALF_OPEN:
            self.state = BreakerState.OPEN

    def _open(self, now: float) -> None:
        self.state = BreakerState.OPEN
        self.opened_at = now


@dataclass(frozen=True)
class StabilityStatus:
    """What the VJ page shows about Stability. ``last_error`` is plain words, the key redacted."""

    state: Literal["ok", "degraded", "offline"]
    breaker: BreakerState
    last_error: str | None
    credits: float | None
    consecutive_failures: int


# --- the generator -----------------------------------------------------------------------------------------------

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Random = Callable[[], float]


class StabilityGenerator:
    """The Stability backend of the Generator protocol.

    ``client``: an httpx.AsyncClient to use (the caller keeps ownership and closes it); else one is made,
    on ``transport`` when given (tests pass ``httpx.MockTransport``). ``env`` defaults to ``os.environ``
    (``STABILITY_API_KEY`` and ``STABILITY_API_HOST`` win over the config). ``clock``, ``sleep`` and
    ``random`` drive every wait, so tests run the retry, rate-limit and breaker timings without sleeping.
    """

    name = "stability"

    def __init__(
        self,
        config: StabilityConfig,
        generation: GenerationConfig | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        env: Mapping[str, str] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        random: Random = _random.random,
    ) -> None:
        env = os.environ if env is None else env
        # The key is kept only inside the Redactor (hidden from repr); the stored config drops it, since a
        # config dataclass prints every field.
        self._redact = Redactor((env.get(KEY_ENV) or config.api_key).strip())
        self._config = dataclasses.replace(config, api_key="")
        self._generation = generation if generation is not None else GenerationConfig()
        self.host = (env.get(HOST_ENV) or config.api_host).strip().rstrip("/")
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._owns_client = client is None
        if client is None:
            limits = httpx.Limits(max_connections=config.max_concurrency + 1,
                                  max_keepalive_connections=config.max_concurrency + 1)
            client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(config.timeout), limits=limits)
        self._client = client
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._limiter = SlidingWindowLimiter(config.rate_limit)
        self._breaker = CircuitBreaker(config.breaker_failures, config.breaker_cooldown)
        self._gen_error: str | None = None
        self._balance_error: str | None = None
        self._credits: float | None = None
        self._closed = False

    def __repr__(self) -> str:
        target = f"v1 {self._config.engine}" if self._config.api == "v1" else f"v2beta {self._config.endpoint}"
        return f"<StabilityGenerator {target} at {self._redact(self.host)} breaker={self.state.value}>"

    async def __aenter__(self) -> StabilityGenerator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- public ---------------------------------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        return self._breaker.peek(self._clock())

    def reconfigure(self, config: StabilityConfig) -> None:
        """New settings from the control page (model, engine) for the next requests; the key stays."""
        self._config = dataclasses.replace(config, api_key="")

    def status(self) -> StabilityStatus:
        breaker = self.state
        last = self._gen_error or self._balance_error
        state: Literal["ok", "degraded", "offline"]
        if breaker is not BreakerState.CLOSED:
            state = "offline"
        elif last or self._breaker.consecutive_failures:
            state = "degraded"
        else:
            state = "ok"
        return StabilityStatus(state, breaker, self._redact(last) if last else None, self._credits,
                               self._breaker.consecutive_failures)

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        """Make ``request``'s images, or raise GenerationError (UNAVAILABLE at once while the breaker is open)."""
        admission = self._breaker.admit(self._clock())
        if admission is Admission.REJECT:
            wait = self._breaker.retry_in(self._clock())
            raise GenerationError(
                FailureKind.UNAVAILABLE,
                f"Stability is paused after {self._breaker.consecutive_failures} failures in a row; "
                f"using the offline generator (next try in {wait:.0f} s)",
                retry_after=wait)
        probe = admission is Admission.PROBE
        if probe:
            log.info("probing Stability after the cooldown")
        try:
            images = await self._generate(request, retries=0 if probe else self._config.max_retries)
        except GenerationError as err:
            self._record(err)
            raise
        except BaseException:
            if probe:
                self._breaker.abandon_probe()
            raise
        self._breaker.success()
        self._gen_error = None
        return images

    async def balance(self) -> float:
        """The account's credits (``GET /v1/user/balance``); also kept for ``status()``."""
        try:
            self._require_key()
            response = await self._exchange(RequestSpec("GET", "/v1/user/balance"))
            if response.status_code != 200:
                raise error_from_status(response.status_code, response.headers, response.content, self._redact)
            credits = parse_balance(response.content, self._redact)
        except GenerationError as err:
            self._balance_error = self._redact(err.vj_message)
            raise
        self._credits = credits
        self._balance_error = None
        return credits

    async def poll_balance(self, interval: float | None = None) -> None:
        """Refresh the credits every ``interval`` s (default ``balance_interval``; 0 = off) until cancelled."""
        period = self._config.balance_interval if interval is None else interval
        if period <= 0:
            return
        while True:
            try:
                await self.balance()
            except GenerationError as err:
                log.warning("Stability credit balance: %s", self._redact(err.vj_message))
            await self._sleep(period)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            if self._owns_client:
                await self._client.aclose()

    # -- layers ---------------------------------------------------------------------------------------------------

    def _record(self, err: GenerationError) -> None:
        """Feed one generation's failure to the breaker and the VJ status."""
        now = self._clock()
        if err.kind in _FATAL:
            self._breaker.trip(now)
        elif err.kind in _NEUTRAL:
            self._breaker.success()  # Stability answered: it is up
        else:
            self._breaker.failure(now)
        if err.kind in _SENDER_ONLY:
            self._gen_error = None
        else:
            self._gen_error = self._redact(err.vj_message)
        if self._breaker.state is BreakerState.OPEN:
            log.warning("Stability paused for %.0f s after: %s", self._config.breaker_cooldown,
                        self._redact(err.vj_message))

    def _require_key(self) -> None:
        key = self._redact.secret
        if not key:
            raise GenerationError(FailureKind.UNAUTHORIZED,
                                  f"No Stability API key is set ({KEY_ENV} or [stability] api_key)")
        if not key.isascii() or not key.isprintable():
            raise GenerationError(FailureKind.UNAUTHORIZED,
                                  "The Stability API key has characters that cannot be sent: check it")

    async def _generate(self, request: GenerationRequest, retries: int) -> list[GeneratedImage]:
        self._require_key()
        knobs = resolve(request, self._generation)
        if not knobs.prompt:
            raise GenerationError(FailureKind.BAD_REQUEST, "The prompt is empty", status=None)
        if self._config.api == "v1":
            init = request.init_image
            if init is not None and is_sdxl(self._config.engine):
                init = await asyncio.to_thread(fit_sdxl_init_image, init)
            spec = build_v1_request(self._config, request, knobs, init)
            artifacts = await self._send_with_retries(spec, retries, knobs.seed)
        else:
            specs = [build_v2_request(self._config, request, knobs, i) for i in range(knobs.samples)]
            results = await asyncio.gather(*(self._send_with_retries(s, retries, knobs.seed) for s in specs),
                                           return_exceptions=True)
            artifacts = []
            failures: list[GenerationError] = []
            for result in results:
                if isinstance(result, GenerationError):
                    failures.append(result)
                elif isinstance(result, BaseException):
                    raise result
                else:
                    artifacts.extend(result)
            if failures and not any(not a.filtered for a in artifacts):
                # Nothing to show: report the failure that says most (a backend one before "not allowed").
                raise next((f for f in failures if f.kind is not FailureKind.MODERATED), failures[0])
            for failure in failures:
                log.warning("one of %d samples failed: %s", len(specs), self._redact(failure.vj_message))
        return self._keep_unfiltered(request, artifacts)

    def _keep_unfiltered(self, request: GenerationRequest, artifacts: list[Artifact]) -> list[GeneratedImage]:
        shown = [a for a in artifacts if not a.filtered]
        if len(shown) < len(artifacts):
            log.info("Stability blurred %d of %d images of %s (CONTENT_FILTERED): not shown",
                     len(artifacts) - len(shown), len(artifacts), request.prompt_id)
        if not shown:
            raise GenerationError(FailureKind.MODERATED,
                                  "Stability's moderation blurred the image (CONTENT_FILTERED)")
        meta = {"backend": self.name, "api": self._config.api}
        if self._config.api == "v1":
            meta["engine"] = self._config.engine
        else:
            meta["endpoint"] = self._config.endpoint
            if self._config.endpoint == "sd3":
                meta["model"] = self._config.model
        return [GeneratedImage(data=a.data, mime=a.mime, seed=a.seed,
                               metadata={**meta, "finish_reason": a.finish_reason,
                                         **({"request_id": a.request_id} if a.request_id else {})})
                for a in shown]

    async def _send_with_retries(self, spec: RequestSpec, retries: int, seed: int) -> list[Artifact]:
        attempt = 0
        while True:
            try:
                return await self._send_once(spec, seed)
            except GenerationError as err:
                if not err.retryable or attempt >= retries:
                    raise
                delay = self._retry_delay(err, attempt)
                if delay is None:
                    raise
                log.warning("%s; retry %d of %d in %.2f s", self._redact(err.vj_message), attempt + 1, retries,
                            delay)
                if err.kind is FailureKind.RATE_LIMITED:
                    self._limiter.pause_until(self._clock() + delay)
                await self._sleep(delay)
                attempt += 1

    def _retry_delay(self, err: GenerationError, attempt: int) -> float | None:
        """Seconds before retry ``attempt + 1``; None when the server asks for a wait too long for a show."""
        if err.retry_after is not None:
            return err.retry_after if err.retry_after <= MAX_HONOURED_WAIT else None
        return backoff_delay(attempt, self._config.backoff, self._config.backoff_max, self._random())

    async def _send_once(self, spec: RequestSpec, seed: int) -> list[Artifact]:
        async with self._semaphore:
            response = await self._exchange(spec)
        if response.status_code != 200:
            err = error_from_status(response.status_code, response.headers, response.content, self._redact)
            if err.kind is FailureKind.BAD_REQUEST:
                log.error("%s", err.vj_message)
            raise err
        if spec.api == "v2beta":
            return [parse_image_answer(response.headers, response.content, seed, self._redact)]
        return parse_v1_answer(response.headers, response.content, seed, self._redact)

    async def _acquire_slot(self) -> None:
        while (wait := self._limiter.try_acquire(self._clock())) > 0:
            await self._sleep(wait)

    def _auth_headers(self, accept: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._redact.secret}", "Accept": accept,
                "stability-client-id": NAME, "stability-client-version": __version__}

    async def _exchange(self, spec: RequestSpec) -> httpx.Response:
        """One request through the rate limiter; httpx's errors become GenerationErrors here, key redacted."""
        await self._acquire_slot()
        url = self.host + spec.path
        kwargs: dict[str, Any] = {"headers": self._auth_headers(spec.accept)}
        if spec.json is not None:
            kwargs["json"] = spec.json
        if spec.files:
            kwargs["data"] = dict(spec.data)
            kwargs["files"] = [(f.name, (f.filename, f.content, f.content_type)) for f in spec.files]
        try:
            return await self._client.request(spec.method, url, **kwargs)
        except httpx.TimeoutException as err:
            msg = f"Stability did not answer in time ({type(err).__name__})"
            raise GenerationError(FailureKind.NETWORK, self._redact(msg)) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
            msg = f"The Stability address {self.host!r} is not a usable URL ({err})"
            raise GenerationError(FailureKind.BAD_REQUEST, self._redact(msg)) from None
        except httpx.TransportError as err:
            msg = f"Cannot reach Stability at {self.host} ({type(err).__name__}: {err})"
            raise GenerationError(FailureKind.NETWORK, self._redact(msg)) from None
        except httpx.HTTPError as err:
            msg = f"The answer from Stability could not be read ({type(err).__name__}: {err})"
            raise GenerationError(FailureKind.BAD_RESPONSE, self._redact(msg)) from None
