"""A loopback stand-in for the Stability AI REST API, for tests and rehearsals without the internet.

It follows ``shared/stability-api.md``: it checks requests the way the real API does and answers with the
real shapes (``mock_contract``), with real PNG/JPEG/WebP pictures whose colours depend on the prompt and
seed. This module is the server that ties the pieces together: routing, the account (key, credits,
moderation), the record of what it received, and the faults of ``mock_faults``.

Faults are injected from Python (attributes and ``script()`` of ``MockStabilityServer``) or, when it
runs on its own, over HTTP::

    python -m engine.gen.mock_stability --port 8089           # http://127.0.0.1:8089 until Ctrl-C
    curl -X POST localhost:8089/_mock/faults -d '{"script": [{"status": 500}], "latency": 0.5}'
    curl localhost:8089/_mock/stats

``MockStabilityServer.handle()`` is sans-I/O (a parsed request and the time in, a ``Reply`` out); the
asyncio stream server around it only reads requests (``mock_http``), waits out latency, holds or drops
connections, and writes replies. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import re
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.config import Config, with_overrides
from engine.gen.mock_contract import (
    MAX_BODY,
    SD3_MODELS,
    V1_CREDITS_PER_IMAGE,
    V1_ENGINES,
    V2_CREDITS,
    V2_FIELDS,
    ApiError,
    Form,
    check_auth,
    check_method,
    engines_answer,
    error_reply,
    output_size,
    parse_multipart,
    render_image,
    scaled,
    stock_error,
    v1_answer,
    v2_answer,
    validate_v1,
    validate_v2,
)
from engine.gen.mock_faults import RateLockout, Scripted, ScriptedAnswers, scripted_error, scripted_from_json
from engine.gen.mock_http import BadHttp, HttpRequest, Reply, encode_reply, json_reply, read_request

log = logging.getLogger(__name__)

# Names other code imports from here; they live in the modules above.
__all__ = [
    "HttpRequest", "MockStabilityServer", "Received", "Reply", "Scripted", "main", "output_size", "parse_multipart",
    "serve_in_thread",
]

Moderation = Literal["reject", "filter"]


@dataclass(frozen=True)
class Received:
    """What the mock saw of one API request (the Authorization header left out)."""

    method: str
    path: str
    headers: Mapping[str, str]
    form: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    json: Any = None


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
        self._script = ScriptedAnswers()
        self._rate = RateLockout()
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
        self._script.add(answers)

    @property
    def scripted_left(self) -> int:
        return len(self._script)

    def reset(self) -> None:
        """Forget scripted answers, counters, the lockout and latency."""
        self._script.clear()
        self.requests.clear()
        self.received.clear()
        self._rate.clear()
        self.latency = 0.0

    def configure(self, doc: Mapping[str, Any]) -> None:
        """Apply ``POST /_mock/faults`` settings: latency, script, rate_limit, lockout, blocked_words,
        moderation, credits, key, scale (raises ValueError on an unknown or mistyped one)."""
        known = {"latency", "script", "rate_limit", "lockout", "blocked_words", "moderation", "credits", "key",
                 "scale"}
        unknown = set(doc) - known
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
        scripted = [scripted_from_json(item) for item in doc.get("script", [])]
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
        self._script.add(scripted)

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
        scripted = self._script.take(path)
        delay = self.latency
        if scripted is not None and scripted.action in ("hang", "close"):
            return Reply(action=scripted.action, hold=scripted.hold, delay=delay)
        try:
            if scripted is not None and scripted.action == "answer":
                raise scripted_error(scripted, req.headers.get("authorization", ""))
            self._check_rate()
            if req.too_large:
                raise ApiError(413, *stock_error(413))
            reply = self._route(req, scripted)
        except ApiError as err:
            reply = error_reply(err, path)
        return Reply(reply.status, reply.body, reply.headers, delay=delay)

    def _check_rate(self) -> None:
        """The real API's lockout: more than ``rate_limit`` requests in 10 s → 429 for ``lockout`` s."""
        if self.rate_limit is None:
            return
        if self._rate.refuses(self._clock(), self.rate_limit, self.lockout):
            raise ApiError(429, *stock_error(429))

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
            check_method(req, "POST")
            check_auth(req, self.key)
            if m[1] not in V2_FIELDS:
                raise ApiError(404, "not_found", [f"unknown endpoint {m[1]!r}"])
            return self._v2_generate(m[1], req, scripted)
        if m := re.fullmatch(r"/v1/generation/([^/]+)/(text-to-image|image-to-image)", path):
            check_method(req, "POST")
            check_auth(req, self.key)
            if m[1] not in V1_ENGINES:
                raise ApiError(404, "not_found", [f"The specified engine (ID {m[1]}) was not found."])
            return self._v1_generate(m[1], m[2], req, scripted)
        if path == "/v1/user/balance":
            check_method(req, "GET")
            check_auth(req, self.key)
            return json_reply(200, {"credits": self.credits})
        if path == "/v1/engines/list":
            check_method(req, "GET")
            check_auth(req, self.key)
            return engines_answer()
        raise ApiError(404, "not_found", [f"{path} was not found"])

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
        job = validate_v2(endpoint, req)
        self._record(req, job.form)
        blurred = self._blocked([job.prompt])
        if blurred and self.moderation == "reject":
            raise ApiError(403, *stock_error(403))
        cost = SD3_MODELS[job.model] if endpoint == "sd3" else V2_CREDITS[endpoint]
        self._charge(cost)
        seed = self._seed(job.seed, 4294967294)
        blurred = blurred or (scripted is not None and scripted.action == "filter")
        if scripted is not None and scripted.action == "corrupt":
            image = b"garbage, not an image"
        else:
            image = render_image(job.prompt, seed, output_size(endpoint, job.aspect, self.scale), job.fmt, blurred)
        self.credits -= cost
        return v2_answer(image, job.fmt, seed, filtered=blurred,
                         as_json="application/json" in req.headers.get("accept", ""))

    # -- v1 ------------------------------------------------------------------------------------------------------

    def _v1_generate(self, engine: str, kind: str, req: HttpRequest, scripted: Scripted | None) -> Reply:
        job = validate_v1(engine, kind, req)
        self._record(req, job.form, doc=job.doc)
        positive = [t for t, w in job.prompts if w >= 0]
        blocked = self._blocked(positive)
        if blocked and self.moderation == "reject":
            raise ApiError(400, "invalid_prompts", ["One or more prompts contains filtered words."])
        cost = V1_CREDITS_PER_IMAGE * job.samples
        self._charge(cost)
        seed = self._seed(job.seed, 4294967295)
        filtered: set[int] = set()
        if blocked or (scripted is not None and scripted.action == "filter"):
            chosen = scripted.filtered if scripted is not None and scripted.filtered is not None else None
            filtered = set(range(job.samples)) if chosen is None or blocked else set(chosen)
        out_size = scaled(job.size, self.scale)
        artifacts = []
        for i in range(job.samples):
            s = (seed + i) % 4294967296
            if scripted is not None and scripted.action == "corrupt":
                png = b"not a png"
            else:
                png = render_image(" ".join(positive), s, out_size, "png", blurred=i in filtered)
            artifacts.append((png, s, "CONTENT_FILTERED" if i in filtered else "SUCCESS"))
        self.credits -= cost
        return v1_answer(artifacts, job.want_png)

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
                req = await read_request(reader, MAX_BODY)
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
                writer.write(encode_reply(reply))
                await writer.drain()
                if req.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, BadHttp, ValueError):
            pass
        except asyncio.CancelledError:
            pass  # stop() ends held connections this way; asyncio 3.11 would log a cancelled handler as an error
        finally:
            writer.close()
            # stop() may cancel a handler that is already closing: that is the end we wanted.
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                await writer.wait_closed()
            self._tasks.discard(task)



# --- running it outside asyncio code --------------------------------------------------------------------------------

@contextlib.contextmanager
def rehearsal(cfg: Config, latency: float) -> Iterator[Config]:
    """Run the loopback mock for this process and point the Stability client at it (``--stability-mock``)."""
    with serve_in_thread(MockStabilityServer("sk-mock-rehearsal", latency=latency, scale=0.5)) as mock:
        log.info("rehearsal: Stability API mocked at %s (%.1f s per image)", mock.url, latency)
        # The environment would win over the config: point both at the mock for this process.
        os.environ["STABILITY_API_KEY"] = "sk-mock-rehearsal"
        os.environ["STABILITY_API_HOST"] = mock.url
        yield with_overrides(cfg, {"generation.backend": "stability", "stability.api_host": mock.url})


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
