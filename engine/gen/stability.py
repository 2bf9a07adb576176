"""The Stability AI client: the ``stability`` generator, which ties the wire format to the resilience layer.

Follows the contract in ``shared/stability-api.md``. Each layer does one job (outermost first):

    StabilityGenerator.generate    circuit breaker: fail fast while Stability is down, one probe after the cooldown
    ._generate                     v2beta: one request per sample; drops CONTENT_FILTERED images
    ._send_with_retries            full-jitter backoff on 429 / 5xx / network errors; Retry-After honoured
    ._send_once                    concurrency cap (semaphore) around one exchange
    ._exchange                     client-side rate limit, one HTTP exchange, httpx errors translated

What to send and what an answer means are pure functions in ``stability_wire``; the rate limiter, the
breaker and the health status are sans-I/O in ``resilience``. This module only does the I/O around them.

The API key lives in one place (``_auth_headers``). Every text that can reach a log line, an exception or
the VJ page passes through a ``Redactor`` first, because error bodies and httpx messages may echo it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random as _random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from engine import NAME, __version__
from engine.config import Config, GenerationConfig, StabilityConfig
from engine.gen.base import FailureKind, GeneratedImage, GenerationError, GenerationRequest
from engine.gen.resilience import (
    Admission,
    BreakerState,
    CircuitBreaker,
    Health,
    SlidingWindowLimiter,
    StabilityStatus,
    backoff_delay,
    retry_delay,
)
from engine.gen.stability_wire import (
    STYLE_PRESETS,
    Artifact,
    RequestSpec,
    build_v1_request,
    build_v2_request,
    error_from_status,
    fit_sdxl_init_image,
    is_sdxl,
    nearest_aspect_ratio,
    parse_balance,
    parse_image_answer,
    parse_retry_after,
    parse_v1_answer,
    resolve,
    snap_sdxl,
    snap_v1_size,
)

# Names other code imports from here; they live in the modules above.
__all__ = [
    "HOST_ENV", "KEY_ENV", "STYLE_PRESETS", "BreakerState", "CircuitBreaker", "Redactor", "SlidingWindowLimiter",
    "StabilityGenerator", "StabilityStatus", "backoff_delay", "nearest_aspect_ratio", "parse_retry_after",
    "snap_sdxl", "snap_v1_size",
]

log = logging.getLogger(__name__)

KEY_ENV = "STABILITY_API_KEY"
HOST_ENV = "STABILITY_API_HOST"


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
        self._health = Health(config.breaker_failures, config.breaker_cooldown, self._redact)
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
        return self._health.breaker.peek(self._clock())

    def reconfigure(self, cfg: Config) -> None:
        """New settings from the control page (model, engine) for the next requests; the key stays."""
        self._config = dataclasses.replace(cfg.stability, api_key="")

    def status(self) -> StabilityStatus:
        now = self._clock()
        return self._health.status(now, self._limiter.paused_for(now))

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        """Make ``request``'s images, or raise GenerationError (UNAVAILABLE at once while the breaker is open)."""
        paused = self._limiter.paused_for(self._clock())
        if paused > self._config.max_wait:  # a 429 lockout longer than a prompt may wait: offline paints it
            raise GenerationError(
                FailureKind.UNAVAILABLE,
                f"Stability is rate limiting us; using the offline generator (next try in {paused:.0f} s)",
                retry_after=paused)
        breaker = self._health.breaker
        admission = breaker.admit(self._clock())
        if admission is Admission.REJECT:
            wait = breaker.retry_in(self._clock())
            raise GenerationError(
                FailureKind.UNAVAILABLE,
                f"Stability is paused after {breaker.consecutive_failures} failures in a row; "
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
                breaker.abandon_probe()
            raise
        self._health.generation_succeeded()
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
            self._health.balance_failed(err)
            raise
        self._health.balance_read(credits)
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
        self._health.generation_failed(err, self._clock())
        if self._health.breaker.state is BreakerState.OPEN:
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
                delay = retry_delay(err, attempt, self._config.backoff, self._config.backoff_max,
                                    self._config.max_wait, self._random)
                if delay is None:
                    if err.kind is FailureKind.RATE_LIMITED and err.retry_after is not None:
                        self._limiter.pause_until(self._clock() + err.retry_after)  # sends stop; prompts go on
                    raise
                log.warning("%s; retry %d of %d in %.2f s", self._redact(err.vj_message), attempt + 1, retries,
                            delay)
                if err.kind is FailureKind.RATE_LIMITED:
                    self._limiter.pause_until(self._clock() + delay)
                await self._sleep(delay)
                attempt += 1

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
