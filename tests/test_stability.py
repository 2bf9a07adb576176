"""The Stability client: every endpoint and error of the contract over a real loopback socket (the mock),
plus MockTransport tests where a hand-made answer is clearer. Time is injected: nothing sleeps for real."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import socket
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import httpx
import pytest
from PIL import Image

import engine
from engine.config import GenerationConfig, StabilityConfig
from engine.gen.base import FailureKind, GeneratedImage, GenerationError, GenerationRequest
from engine.gen.mock_stability import MockStabilityServer, Scripted
from engine.gen.stability import BreakerState, Redactor, StabilityGenerator, StabilityStatus
from tests.fakes import encoded_image

KEY = "sk-live-T3stS3cretKey0123456789"
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class FakeTime:
    """A clock that only moves when the code under test sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay
        await asyncio.sleep(0)


@dataclass
class Rig:
    server: MockStabilityServer
    gen: StabilityGenerator
    time: FakeTime

    @property
    def last(self) -> Any:
        return self.server.received[-1]

    def count(self, endpoint: str = "core") -> int:
        return self.server.requests[f"/v2beta/stable-image/generate/{endpoint}"]


def config(url: str = "http://127.0.0.1:9", **kw: Any) -> StabilityConfig:
    """Test knobs: few retries, a 3-failure breaker; built directly, so sub-second timeouts are allowed."""
    base: dict[str, Any] = {"api_key": KEY, "api_host": url, "max_retries": 2, "backoff": 1.0, "backoff_max": 30.0,
                            "breaker_failures": 3, "breaker_cooldown": 30.0, "timeout": 5.0}
    return StabilityConfig(**{**base, **kw})


@asynccontextmanager
async def live(mock: dict[str, Any] | None = None, *, rnd: Callable[[], float] = lambda: 0.5,
               generation: GenerationConfig | None = None, share_clock: bool = False,
               **cfg: Any) -> AsyncIterator[Rig]:
    """A mock server on an ephemeral port and a generator pointed at it, with fake time."""
    t = FakeTime()
    extra: dict[str, Any] = {"clock": t.clock} if share_clock else {}
    async with MockStabilityServer(KEY, scale=1 / 16, **(mock or {}), **extra) as server:
        gen = StabilityGenerator(config(server.url, **cfg), generation, env={}, clock=t.clock, sleep=t.sleep,
                                 random=rnd)
        try:
            yield Rig(server, gen, t)
        finally:
            await gen.aclose()


def req(prompt: str = "a neon fox on stage", **kw: Any) -> GenerationRequest:
    return GenerationRequest("p1", prompt, **kw)


def png(width: int, height: int, color: tuple[int, int, int] = (200, 30, 90)) -> bytes:
    return encoded_image(color, (width, height))


def size_of(image: GeneratedImage) -> tuple[int, int]:
    assert image.data is not None
    with Image.open(io.BytesIO(image.data)) as im:
        return im.size


async def failure(gen: StabilityGenerator, request: GenerationRequest | None = None) -> GenerationError:
    with pytest.raises(GenerationError) as info:
        await gen.generate(request or req())
    return info.value


def assert_no_key(*texts: object) -> None:
    """The API key appears in none of ``texts``."""
    for text in texts:
        assert KEY not in str(text), f"the API key leaked into: {text!r}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def image_response(data: bytes | None = None, **headers: str) -> httpx.Response:
    return httpx.Response(200, content=data if data is not None else png(8, 8),
                          headers={"content-type": "image/png", **headers})


def mock_generator(handler: Callable[[httpx.Request], Awaitable[httpx.Response] | httpx.Response],
                   t: FakeTime | None = None, **cfg: Any) -> StabilityGenerator:
    t = t or FakeTime()

    async def async_handler(request: httpx.Request) -> httpx.Response:
        out = handler(request)
        return await out if isinstance(out, Awaitable) else out

    return StabilityGenerator(config("https://api.example", **cfg), env={},
                              transport=httpx.MockTransport(async_handler), clock=t.clock, sleep=t.sleep,
                              random=lambda: 0.5)


# --- v2beta endpoints -------------------------------------------------------------------------------------------

def test_core_text_to_image_returns_the_png() -> None:
    """core: one multipart request, the PNG bytes and the seed come back."""
    async def main() -> None:
        async with live() as rig:
            images = await rig.gen.generate(req(seed=42, aspect_ratio="16:9"))
            assert len(images) == 1 and images[0].mime == "image/png" and images[0].seed == 42
            assert size_of(images[0]) == (104, 60)  # 1664x960 (1.5 MP at 16:9), scaled by 1/16
            assert rig.last.form == {"prompt": "a neon fox on stage", "aspect_ratio": "16:9", "seed": "42",
                                     "output_format": "png"}
            assert images[0].metadata["endpoint"] == "core" and images[0].metadata["request_id"]
            assert rig.count() == 1
    run(main())


def test_client_headers_name_the_engine() -> None:
    """Bearer key, image/* and the stability-client-id/version headers are sent."""
    async def main() -> None:
        async with live() as rig:
            await rig.gen.generate(req())
            headers = rig.last.headers
            assert headers["stability-client-id"] == "stagecraft"
            assert headers["stability-client-version"] == engine.__version__
            assert headers["accept"] == "image/*"
            assert headers["content-type"].startswith("multipart/form-data")
    run(main())


def test_text_to_image_sends_the_empty_none_part() -> None:
    """With no file, an empty file part named ``none`` keeps the body multipart, like the official samples."""
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        assert request.headers["authorization"] == f"Bearer {KEY}"
        return image_response()

    async def main() -> None:
        gen = mock_generator(handler)
        await gen.generate(req())
        await gen.aclose()
    run(main())
    assert b'name="none"; filename="none"' in bodies[0]


def test_ultra_text_to_image_is_about_one_megapixel() -> None:
    """ultra: 1344x768 at 16:9 (scaled) and 8 credits charged."""
    async def main() -> None:
        async with live(endpoint="ultra") as rig:
            images = await rig.gen.generate(req(aspect_ratio="16:9"))
            assert size_of(images[0]) == (84, 48)
            assert rig.server.credits == 1000 - 8
    run(main())


@pytest.mark.parametrize(("model", "cost"), [("sd3.5-large", 6.5), ("sd3.5-large-turbo", 4.0),
                                             ("sd3.5-medium", 3.5), ("sd3.5-flash", 2.5)])
def test_sd3_sends_each_model(model: str, cost: float) -> None:
    """sd3: the model and text-to-image mode are sent; the model's price is charged."""
    async def main() -> None:
        async with live(endpoint="sd3", model=model) as rig:
            images = await rig.gen.generate(req())
            assert images[0].metadata["model"] == model
            assert rig.last.form["model"] == model and rig.last.form["mode"] == "text-to-image"
            assert "cfg_scale" not in rig.last.form
            assert rig.server.credits == 1000 - cost
    run(main())


def test_sd3_cfg_scale_sent_when_positive() -> None:
    """sd3: cfg_scale goes along when > 0 (kept within the documented 1..10)."""
    async def main() -> None:
        async with live(endpoint="sd3") as rig:
            await rig.gen.generate(req(cfg_scale=4.5))
            assert rig.last.form["cfg_scale"] == "4.5"
            await rig.gen.generate(req(cfg_scale=20.0))
            assert rig.last.form["cfg_scale"] == "10"
    run(main())


@pytest.mark.parametrize(("fmt", "mime"), [("jpeg", "image/jpeg"), ("webp", "image/webp")])
def test_output_format_sets_the_mime(fmt: str, mime: str) -> None:
    """output_format is asked for and the returned bytes are of that type."""
    async def main() -> None:
        async with live(output_format=fmt) as rig:
            images = await rig.gen.generate(req())
            assert images[0].mime == mime and rig.last.form["output_format"] == fmt
    run(main())


def test_style_preset_and_negative_prompt_come_from_config_when_unset() -> None:
    """The [generation] config fills a request's empty style preset and negative prompt; unknown presets drop."""
    async def main() -> None:
        gcfg = GenerationConfig(style_preset="neon-punk", negative_prompt="blurry")
        async with live(generation=gcfg) as rig:
            await rig.gen.generate(req())
            assert rig.last.form["style_preset"] == "neon-punk"
            assert rig.last.form["negative_prompt"] == "blurry"
            await rig.gen.generate(req(style_preset="vaporwave"))
            assert "style_preset" not in rig.last.form
    run(main())


def test_sd3_image_to_image() -> None:
    """sd3 image-to-image: mode, image file and strength; no aspect_ratio; output follows the input's shape."""
    async def main() -> None:
        async with live(endpoint="sd3") as rig:
            images = await rig.gen.generate(req(init_image=png(640, 320), strength=0.6))
            form = rig.last.form
            assert form["mode"] == "image-to-image" and form["strength"] == "0.6"
            assert "aspect_ratio" not in form and "image" in rig.last.files
            w, h = size_of(images[0])
            assert abs(w / h - 2.0) < 0.1
    run(main())


def test_ultra_image_to_image() -> None:
    """ultra image-to-image: image and strength, no mode field."""
    async def main() -> None:
        async with live(endpoint="ultra") as rig:
            await rig.gen.generate(req(init_image=png(256, 256)))
            assert rig.last.form["strength"] == "0.35" and "mode" not in rig.last.form
            assert rig.last.files["image"] == png(256, 256)
    run(main())


def test_core_has_no_image_to_image() -> None:
    """core ignores an init image and makes the picture from text (it has no image input)."""
    async def main() -> None:
        async with live() as rig:
            await rig.gen.generate(req(init_image=png(128, 128)))
            assert "image" not in rig.last.files and rig.last.form["aspect_ratio"] == "1:1"
    run(main())


def test_v2_samples_make_that_many_requests() -> None:
    """samples=3 on v2beta: three requests, distinct seeds from a fixed one, each charged."""
    async def main() -> None:
        async with live() as rig:
            images = await rig.gen.generate(req(samples=3, seed=42))
            assert sorted(i.seed for i in images) == [42, 43, 44]
            assert rig.count() == 3 and rig.server.credits == 1000 - 9
    run(main())


def test_json_answer_is_understood() -> None:
    """A v2 answer in JSON (``image``, ``finish_reason``, ``seed``) is decoded like raw bytes."""
    data = png(8, 8)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"image": base64.b64encode(data).decode(), "finish_reason": "SUCCESS",
                                         "seed": 77}, headers={"content-type": "application/json; type=image/png"})

    async def main() -> None:
        gen = mock_generator(handler)
        images = await gen.generate(req())
        await gen.aclose()
        assert images[0].data == data and images[0].seed == 77
    run(main())


def test_json_content_filtered_is_moderated() -> None:
    """A JSON answer with CONTENT_FILTERED is never returned: MODERATED."""
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"image": base64.b64encode(png(8, 8)).decode(),
                                         "finish_reason": "CONTENT_FILTERED", "seed": 1})

    async def main() -> None:
        gen = mock_generator(handler)
        err = await failure(gen)
        await gen.aclose()
        assert err.kind is FailureKind.MODERATED and "not allowed" in err.user_message
    run(main())


@pytest.mark.parametrize("answer", [
    httpx.Response(200, content=b"<html>gateway</html>", headers={"content-type": "text/html"}),
    httpx.Response(200, content=b"{not json", headers={"content-type": "application/json"}),
    httpx.Response(200, json={"image": "%%%", "finish_reason": "SUCCESS"}),
    httpx.Response(200, json=["no", "image"]),
], ids=["html", "bad-json", "bad-base64", "wrong-shape"])
def test_unusable_answer_is_bad_response(answer: httpx.Response) -> None:
    """Answers we cannot use become BAD_RESPONSE, not a crash, and are not retried."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return answer

    async def main() -> None:
        gen = mock_generator(handler)
        err = await failure(gen)
        await gen.aclose()
        assert err.kind is FailureKind.BAD_RESPONSE
    run(main())
    assert len(calls) == 1


def test_corrupt_image_over_the_wire_is_bad_response() -> None:
    """image/png bytes that are no image: BAD_RESPONSE, one request."""
    async def main() -> None:
        async with live() as rig:
            rig.server.script(Scripted(action="corrupt"))
            err = await failure(rig.gen)
            assert err.kind is FailureKind.BAD_RESPONSE and rig.count() == 1
    run(main())


# --- v1 -------------------------------------------------------------------------------------------------------------

def test_v1_text_to_image_json_body() -> None:
    """v1 text-to-image: text_prompts with weights, size, cfg_scale, samples, steps, seed, preset, sampler."""
    async def main() -> None:
        async with live(api="v1", sampler="K_EULER") as rig:
            images = await rig.gen.generate(req(negative_prompt="blurry", cfg_scale=7.0, steps=25, samples=2,
                                                seed=5, style_preset="anime"))
            assert [i.seed for i in images] == [5, 6] and size_of(images[0]) == (64, 64)
            assert rig.last.json == {
                "text_prompts": [{"text": "a neon fox on stage", "weight": 1}, {"text": "blurry", "weight": -1}],
                "height": 1024, "width": 1024, "cfg_scale": 7.0, "samples": 2, "steps": 25, "seed": 5,
                "style_preset": "anime", "sampler": "K_EULER"}
            assert rig.last.headers["accept"] == "application/json"
    run(main())


def test_v1_omits_cfg_scale_when_zero() -> None:
    """cfg_scale 0 means the model's default: the field is left out; steps come from the config."""
    async def main() -> None:
        async with live(api="v1", generation=GenerationConfig(steps=40)) as rig:
            await rig.gen.generate(req())
            assert "cfg_scale" not in rig.last.json and "sampler" not in rig.last.json
            assert rig.last.json["steps"] == 40
    run(main())


def test_v1_snaps_to_an_sdxl_size() -> None:
    """1920x1080 is sent as 1344x768 (nearest SDXL aspect) instead of earning a 400."""
    async def main() -> None:
        async with live(api="v1") as rig:
            await rig.gen.generate(req(width=1920, height=1080))
            assert (rig.last.json["width"], rig.last.json["height"]) == (1344, 768)
    run(main())


def test_v1_sd16_size_is_clamped_to_its_range() -> None:
    """SD 1.6: sides rounded to multiples of 64 within 320..1536."""
    async def main() -> None:
        async with live(api="v1", engine="stable-diffusion-v1-6") as rig:
            await rig.gen.generate(req(width=100, height=3000))
            assert (rig.last.json["width"], rig.last.json["height"]) == (320, 1536)
    run(main())


def test_v1_image_to_image_multipart() -> None:
    """v1 image-to-image: multipart fields, and the init image cropped to the nearest SDXL size."""
    async def main() -> None:
        async with live(api="v1") as rig:
            images = await rig.gen.generate(req(init_image=png(1000, 700), strength=0.5, negative_prompt="dull"))
            form = rig.last.form
            assert form["text_prompts[0][text]"] == "a neon fox on stage" and form["text_prompts[0][weight]"] == "1"
            assert form["text_prompts[1][weight]"] == "-1" and form["image_strength"] == "0.5"
            assert form["init_image_mode"] == "IMAGE_STRENGTH"
            with Image.open(io.BytesIO(rig.last.files["init_image"])) as im:
                assert im.size == (1216, 832)
            assert size_of(images[0]) == (76, 52)
    run(main())


def test_v1_content_filtered_all_is_moderated() -> None:
    """v1 artifacts all CONTENT_FILTERED: no image returned, MODERATED."""
    async def main() -> None:
        async with live({"blocked_words": ["gore"], "moderation": "filter"}, api="v1") as rig:
            err = await failure(rig.gen, req("gore everywhere", samples=2))
            assert err.kind is FailureKind.MODERATED
    run(main())


def test_v1_one_filtered_of_two_returns_one() -> None:
    """v1 samples=2 with one CONTENT_FILTERED artifact: only the clean one comes back."""
    async def main() -> None:
        async with live(api="v1") as rig:
            rig.server.script(Scripted(action="filter", filtered=(1,)))
            images = await rig.gen.generate(req(samples=2, seed=10))
            assert [i.seed for i in images] == [10]
    run(main())


def test_v1_invalid_prompts_is_moderated() -> None:
    """v1 400 ``invalid_prompts`` (filtered words) is MODERATED, not a bad request; no retry."""
    async def main() -> None:
        async with live({"blocked_words": ["gore"]}, api="v1") as rig:
            err = await failure(rig.gen, req("gore"))
            assert err.kind is FailureKind.MODERATED and err.status == 400 and not rig.time.sleeps
            assert rig.gen.state is BreakerState.CLOSED
    run(main())


def test_v1_unknown_engine_is_bad_request() -> None:
    """An engine id the API does not know (404) is our config's fault: BAD_REQUEST, no retry."""
    async def main() -> None:
        async with live(api="v1", engine="stable-diffusion-9") as rig:
            err = await failure(rig.gen)
            assert err.kind is FailureKind.BAD_REQUEST and err.status == 404 and "not found" in err.vj_message
            assert not rig.time.sleeps
    run(main())


def test_v1_error_artifacts_are_server_errors() -> None:
    """v1 artifacts that all say ERROR are a server failure (retried), not images."""
    answers = [httpx.Response(200, json={"artifacts": [{"base64": "", "seed": 1, "finishReason": "ERROR"}]}),
               httpx.Response(200, json={"artifacts": [{"base64": base64.b64encode(png(8, 8)).decode(), "seed": 2,
                                                        "finishReason": "SUCCESS"}]})]

    async def main() -> None:
        gen = mock_generator(lambda r: answers.pop(0), api="v1")
        images = await gen.generate(req())
        await gen.aclose()
        assert [i.seed for i in images] == [2]
    run(main())


# --- balance ---------------------------------------------------------------------------------------------------

def test_balance_reads_the_credits() -> None:
    """balance() returns the account's credits and shows them in the status."""
    async def main() -> None:
        async with live({"credits": 12.5}) as rig:
            assert await rig.gen.balance() == 12.5
            assert rig.gen.status().credits == 12.5
            await rig.gen.generate(req())
            assert await rig.gen.balance() == 9.5
    run(main())


class StopPolling(Exception):
    """Ends the balance poller in tests."""


def test_poll_balance_updates_the_status_every_interval() -> None:
    """The poller asks for the balance, then waits ``interval`` (fake time), again and again."""
    async def main() -> None:
        async with live({"credits": 40.0}) as rig:
            waits: list[float] = []

            async def sleep(delay: float) -> None:
                waits.append(delay)
                rig.server.credits -= 10
                if len(waits) == 2:
                    raise StopPolling
            rig.gen._sleep = sleep
            with pytest.raises(StopPolling):
                await rig.gen.poll_balance(15.0)
            assert waits == [15.0, 15.0]
            assert rig.gen.status().credits == 30.0 and rig.server.requests["/v1/user/balance"] == 2
    run(main())


def test_poll_balance_shows_a_wrong_key_in_plain_words() -> None:
    """A 401 from the balance poll reaches the VJ status as words, the key nowhere."""
    async def main() -> None:
        async with live() as rig:
            rig.server.key = "sk-another-key-entirely"

            async def sleep(delay: float) -> None:
                raise StopPolling
            rig.gen._sleep = sleep
            with pytest.raises(StopPolling):
                await rig.gen.poll_balance()
            status = rig.gen.status()
            assert status.state == "degraded" and status.last_error == "Stability says the API key is wrong (401)"
    run(main())


def test_an_outage_seen_by_the_balance_poll_clears_with_the_next_image() -> None:
    """A 500 from the balance poll is an outage: the next image proves Stability is back and the status reads ok
    at once, not at the next poll a minute later. A wrong key is not cleared that way."""
    answers = iter([500, 200, 402])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/user/balance":
            return httpx.Response(next(answers), json={"name": "server_error", "message": "down"})
        return image_response()

    async def main() -> None:
        gen = mock_generator(handler)
        with pytest.raises(GenerationError):
            await gen.balance()
        assert gen.status().state == "degraded"
        await gen.generate(req())
        assert gen.status().state == "ok" and gen.status().last_error is None
        with pytest.raises(GenerationError):
            await gen.balance()  # the mock answers 200 without credits: unreadable
        with pytest.raises(GenerationError):
            await gen.balance()  # 402: out of credits is no outage
        await gen.generate(req())
        assert gen.status().state == "degraded" and "out of credits" in (gen.status().last_error or "")
        await gen.aclose()
    run(main())


def test_poll_balance_off_when_interval_zero() -> None:
    """An interval of 0 turns the poller off: it returns at once without a request."""
    async def main() -> None:
        async with live() as rig:
            await rig.gen.poll_balance(0)
            assert not rig.server.requests
    run(main())


def test_balance_out_of_credits_is_shown() -> None:
    """A 402 from the balance endpoint reads 'out of credits' on the VJ page."""
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(402, json={"id": "x", "name": "payment_required", "message": "no credits"})

    async def main() -> None:
        gen = mock_generator(handler)
        with pytest.raises(GenerationError, match="out of credits"):
            await gen.balance()
        assert gen.status().last_error == "Stability account is out of credits (402)"
        await gen.aclose()
    run(main())


# --- the error table ----------------------------------------------------------------------------------------------

def test_400_is_not_retried_and_its_errors_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    """400 (the mock's own validation of a bad sampler): BAD_REQUEST at once, the errors in the log."""
    async def main() -> None:
        async with live(api="v1", sampler="K_BOGUS") as rig:
            err = await failure(rig.gen)
            assert err.kind is FailureKind.BAD_REQUEST and err.status == 400 and not rig.time.sleeps
            assert rig.gen.state is BreakerState.CLOSED
    caplog.set_level(logging.ERROR, "engine.gen.stability")
    run(main())
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "sampler: must be one of" in errors[0].getMessage()


def test_401_wrong_key() -> None:
    """401: UNAUTHORIZED in plain words, no retry."""
    async def main() -> None:
        async with live() as rig:
            rig.server.key = "sk-the-right-one-is-different"
            err = await failure(rig.gen)
            assert err.kind is FailureKind.UNAUTHORIZED and not rig.time.sleeps
            assert err.vj_message == "Stability says the API key is wrong (401)"
    run(main())


def test_402_out_of_credits() -> None:
    """402 when the balance cannot pay for the endpoint: PAYMENT, no retry, nothing charged."""
    async def main() -> None:
        async with live({"credits": 2.0}) as rig:
            err = await failure(rig.gen)
            assert err.kind is FailureKind.PAYMENT and not rig.time.sleeps
            assert err.vj_message == "Stability account is out of credits (402)"
            assert rig.server.credits == 2.0
    run(main())


def test_403_moderation_tells_the_sender() -> None:
    """403 content moderation: MODERATED with the 'not allowed' message, no retry, breaker untouched."""
    async def main() -> None:
        async with live({"blocked_words": ["forbidden"]}) as rig:
            err = await failure(rig.gen, req("something forbidden"))
            assert err.kind is FailureKind.MODERATED and err.status == 403 and not rig.time.sleeps
            assert "not allowed" in err.user_message
            assert rig.gen.status().state == "ok"
    run(main())


def test_413_request_too_large() -> None:
    """A request over 10 MiB: TOO_LARGE, no blind retry."""
    async def main() -> None:
        async with live(endpoint="sd3") as rig:
            err = await failure(rig.gen, req(init_image=b"\x89PNG\r\n\x1a\n" + bytes(10 * 1024 * 1024)))
            assert err.kind is FailureKind.TOO_LARGE and err.status == 413
            assert rig.count("sd3") == 1 and not rig.time.sleeps
    run(main())


def test_422_unprocessable() -> None:
    """422 (e.g. the language): UNPROCESSABLE with a message for the sender, no retry."""
    async def main() -> None:
        async with live() as rig:
            rig.server.script(Scripted(status=422))
            err = await failure(rig.gen)
            assert err.kind is FailureKind.UNPROCESSABLE and "English" in err.user_message and rig.count() == 1
    run(main())


def test_429_with_retry_after_waits_exactly_that() -> None:
    """429 with Retry-After: 7 → one wait of exactly 7 s, then the retry succeeds."""
    async def main() -> None:
        async with live() as rig:
            rig.server.script(Scripted(status=429, retry_after=7))
            await rig.gen.generate(req())
            assert rig.time.sleeps == [7.0] and rig.count() == 2
    run(main())


def test_429_without_retry_after_waits_the_lockout_when_allowed() -> None:
    """429 without Retry-After waits at least the API's 60 s lockout (not the 0.5 s backoff), when max_wait allows."""
    async def main() -> None:
        async with live(max_wait=120.0) as rig:
            rig.server.script(Scripted(status=429))
            await rig.gen.generate(req())
            assert rig.time.sleeps == [60.0] and rig.count() == 2
    run(main())


def test_429_lockout_longer_than_max_wait_falls_back_at_once_and_sends_nothing_until_it_ends() -> None:
    """By default a prompt does not sit out the 60 s lockout: it fails at once (the pipeline paints it offline),
    the next prompts fail fast without a request, the VJ sees when sends resume, and after 60 s they go again."""
    async def main() -> None:
        async with live() as rig:
            rig.server.script(Scripted(status=429))
            err = await failure(rig.gen)
            assert err.kind is FailureKind.RATE_LIMITED and err.retry_after == 60.0
            assert not rig.time.sleeps and rig.count() == 1
            status = rig.gen.status()
            assert status.state == "degraded" and status.resume_in == 60.0
            rig.time.now += 30.0
            err = await failure(rig.gen)
            assert err.kind is FailureKind.UNAVAILABLE and "next try in 30 s" in err.vj_message
            assert rig.count() == 1 and rig.gen.status().resume_in == 30.0
            rig.time.now += 30.0
            await rig.gen.generate(req())
            assert rig.count() == 2
            status = rig.gen.status()
            assert status.state == "ok" and status.resume_in == 0 and status.last_error is None
    run(main())


def test_429_retries_exhausted_reports_when_to_come_back() -> None:
    """429 every time: RATE_LIMITED after max_retries, with retry_after for the pipeline."""
    async def main() -> None:
        async with live(max_wait=120.0) as rig:
            rig.server.script(*[Scripted(status=429)] * 3)
            err = await failure(rig.gen)
            assert err.kind is FailureKind.RATE_LIMITED and err.retry_after == 60.0
            assert rig.time.sleeps == [60.0, 60.0] and rig.count() == 3
    run(main())


def test_429_with_a_huge_retry_after_is_not_waited_out() -> None:
    """Retry-After longer than a show can wait: give up at once so the caller falls back."""
    async def main() -> None:
        async with live() as rig:
            rig.server.script(Scripted(status=429, retry_after=3600))
            err = await failure(rig.gen)
            assert err.kind is FailureKind.RATE_LIMITED and err.retry_after == 3600 and not rig.time.sleeps
    run(main())


def test_429_holds_every_request_not_just_the_limited_one() -> None:
    """While one request waits out a 429, a new one waits too instead of hammering the API."""
    t = FakeTime()
    release = asyncio.Event()
    sent: list[float] = []

    async def sleep(delay: float) -> None:
        t.sleeps.append(delay)
        await release.wait()
        t.now += delay

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(t.now)
        if len(sent) == 1:
            return httpx.Response(429, headers={"retry-after": "20"}, json={"name": "rate_limit_exceeded"})
        return image_response()

    async def main() -> None:
        gen = mock_generator(handler, t, max_wait=30.0)
        gen._sleep = sleep
        first = asyncio.create_task(gen.generate(req()))
        while not t.sleeps:
            await asyncio.sleep(0)
        second = asyncio.create_task(gen.generate(req()))
        for _ in range(10):
            await asyncio.sleep(0)
        assert len(sent) == 1 and t.sleeps == [20.0, 20.0]
        release.set()
        await asyncio.gather(first, second)
        await gen.aclose()
        assert len(sent) == 3 and min(sent[1:]) >= 1020.0
    run(main())


def test_mock_lockout_is_waited_out_end_to_end() -> None:
    """The mock's real-API lockout (429 for 60 s after too many requests) is survived by the 60 s wait when
    max_wait allows it, and by falling back, then sending again once the lockout is over, when it does not."""
    async def main() -> None:
        async with live({"rate_limit": 2, "lockout": 60.0}, share_clock=True, max_wait=60.0) as rig:
            for _ in range(3):
                await rig.gen.generate(req())
            assert rig.time.sleeps == [60.0] and rig.count() == 4
        async with live({"rate_limit": 2, "lockout": 60.0}, share_clock=True) as rig:
            for _ in range(2):
                await rig.gen.generate(req())
            assert (await failure(rig.gen)).kind is FailureKind.RATE_LIMITED
            assert (await failure(rig.gen)).kind is FailureKind.UNAVAILABLE and rig.count() == 3
            rig.time.now += 60.0
            await rig.gen.generate(req())
            assert rig.count() == 4 and not rig.time.sleeps
    run(main())


def test_500_then_success_retries_with_jittered_backoff() -> None:
    """Two 500s then success: exactly two retries, waits 0.5 and 1.0 (random 0.5 × 1 s doubling)."""
    async def main() -> None:
        async with live() as rig:
            rig.server.script(Scripted(status=500), Scripted(status=500))
            images = await rig.gen.generate(req())
            assert len(images) == 1 and rig.count() == 3
            assert rig.time.sleeps == [0.5, 1.0]
            assert rig.gen.status().state == "ok"
    run(main())


def test_500_every_time_is_server_after_max_retries() -> None:
    """500s all along: SERVER after 1 + max_retries requests."""
    async def main() -> None:
        async with live(max_retries=3) as rig:
            rig.server.script(*[Scripted(status=500)] * 4)
            err = await failure(rig.gen)
            assert err.kind is FailureKind.SERVER and err.status == 500 and rig.count() == 4
            assert len(rig.time.sleeps) == 3
    run(main())


def test_503_retry_after_is_honoured() -> None:
    """A 5xx carrying Retry-After waits that long instead of the backoff."""
    async def main() -> None:
        async with live() as rig:
            rig.server.script(Scripted(status=503, retry_after=2))
            await rig.gen.generate(req())
            assert rig.time.sleeps == [2.0]
    run(main())


def test_injected_random_drives_the_jitter() -> None:
    """The delays follow the injected random numbers exactly."""
    numbers = iter([0.0, 0.99])

    async def main() -> None:
        async with live(rnd=lambda: next(numbers), backoff=2.0) as rig:
            rig.server.script(Scripted(status=502), Scripted(status=502))
            await rig.gen.generate(req())
            assert rig.time.sleeps == [0.0, 0.99 * 4.0]
    run(main())


def test_timeout_is_retried_then_network() -> None:
    """A server that holds the connection: each try times out (0.1 s, real), retried, then NETWORK."""
    async def main() -> None:
        async with live(timeout=0.1, max_retries=1) as rig:
            rig.server.script(Scripted(action="hang"), Scripted(action="hang"))
            err = await failure(rig.gen)
            assert err.kind is FailureKind.NETWORK and "in time" in err.vj_message
            assert rig.count() == 2 and rig.time.sleeps == [0.5]
    run(main())


def test_dropped_connection_is_retried() -> None:
    """A connection closed without an answer is a NETWORK error; the retry succeeds."""
    async def main() -> None:
        async with live() as rig:
            rig.server.script(Scripted(action="close"))
            images = await rig.gen.generate(req())
            assert len(images) == 1 and rig.count() == 2 and rig.time.sleeps == [0.5]
    run(main())


def test_connection_refused_is_retried_then_network() -> None:
    """Nobody listening: retried with backoff, then NETWORK naming the host."""
    async def main() -> None:
        t = FakeTime()
        url = f"http://127.0.0.1:{free_port()}"
        gen = StabilityGenerator(config(url), env={}, clock=t.clock, sleep=t.sleep, random=lambda: 0.5)
        err = await failure(gen)
        await gen.aclose()
        assert err.kind is FailureKind.NETWORK and url in err.vj_message
        assert t.sleeps == [0.5, 1.0]
    run(main())


def test_bad_host_is_a_config_error() -> None:
    """A host without http(s):// is reported as a bad address, not retried as a network blip."""
    async def main() -> None:
        t = FakeTime()
        gen = StabilityGenerator(config("api.stability.ai"), env={}, clock=t.clock, sleep=t.sleep)
        err = await failure(gen)
        await gen.aclose()
        assert err.kind is FailureKind.BAD_REQUEST and not t.sleeps
    run(main())


# --- CONTENT_FILTERED on v2 -----------------------------------------------------------------------------------------

def test_v2_content_filtered_is_never_returned() -> None:
    """v2 finish-reason CONTENT_FILTERED: the blurred image is dropped; all filtered → MODERATED."""
    async def main() -> None:
        async with live({"blocked_words": ["gore"], "moderation": "filter"}) as rig:
            err = await failure(rig.gen, req("gore"))
            assert err.kind is FailureKind.MODERATED and rig.count() == 1
    run(main())


def test_v2_two_samples_one_filtered_returns_one() -> None:
    """samples=2 with one filtered answer: the other image comes back alone."""
    async def main() -> None:
        async with live() as rig:
            rig.server.script(Scripted(action="filter"))
            images = await rig.gen.generate(req(samples=2))
            assert len(images) == 1 and images[0].metadata["finish_reason"] == "SUCCESS"
    run(main())


def test_v2_sample_failure_with_another_sample_ok_returns_the_good_one() -> None:
    """One sample fails for good, the other succeeds: the good image is returned."""
    async def main() -> None:
        async with live(max_retries=0) as rig:
            rig.server.script(Scripted(status=500))
            images = await rig.gen.generate(req(samples=2))
            assert len(images) == 1
    run(main())


# --- rate limit and concurrency -------------------------------------------------------------------------------------

def test_rate_limiter_keeps_requests_under_the_limit() -> None:
    """rate_limit=3: seven generations never send more than three in any 10 s (fake clock, no sleeping)."""
    t = FakeTime()
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(t.now)
        return image_response()

    async def main() -> None:
        gen = mock_generator(handler, t, rate_limit=3)
        await asyncio.gather(*(gen.generate(req()) for _ in range(7)))
        await gen.aclose()
    run(main())
    assert len(sent) == 7 and t.sleeps
    for start in sent:
        assert sum(1 for s in sent if start <= s < start + 10.0) <= 3


def test_concurrency_cap() -> None:
    """max_concurrency=2: of five generations, never more than two requests are in flight."""
    in_flight = 0
    peak = 0
    gate = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await gate.wait()
        in_flight -= 1
        return image_response()

    async def main() -> None:
        gen = mock_generator(handler, max_concurrency=2)
        tasks = [asyncio.create_task(gen.generate(req())) for _ in range(5)]
        for _ in range(1000):
            if in_flight == 2:
                break
            await asyncio.sleep(0)
        for _ in range(50):  # time for a third request to sneak in, if the cap let it
            await asyncio.sleep(0)
        assert in_flight == 2
        gate.set()
        results = await asyncio.gather(*tasks)
        await gen.aclose()
        assert len(results) == 5
    run(main())
    assert peak == 2


# --- circuit breaker ---------------------------------------------------------------------------------------------

def test_breaker_opens_after_n_failures_and_fails_fast() -> None:
    """Three failed generations open it: the fourth raises UNAVAILABLE without a request."""
    async def main() -> None:
        async with live(max_retries=0) as rig:
            rig.server.script(*[Scripted(status=500)] * 3)
            for _ in range(3):
                assert (await failure(rig.gen)).kind is FailureKind.SERVER
            assert rig.gen.state is BreakerState.OPEN
            err = await failure(rig.gen)
            assert err.kind is FailureKind.UNAVAILABLE and err.retry_after == 30.0
            assert rig.count() == 3
            status = rig.gen.status()
            assert status.state == "offline" and status.consecutive_failures == 3
            assert status.last_error is not None and "server error (500)" in status.last_error
    run(main())


def test_breaker_half_open_probe_closes_on_success() -> None:
    """After the cooldown one probe goes through; its success closes the breaker."""
    async def main() -> None:
        async with live(max_retries=0) as rig:
            rig.server.script(*[Scripted(status=500)] * 3)
            for _ in range(3):
                await failure(rig.gen)
            rig.time.now += 29.0
            assert (await failure(rig.gen)).kind is FailureKind.UNAVAILABLE
            rig.time.now += 1.0
            assert rig.gen.state is BreakerState.HALF_OPEN
            assert len(await rig.gen.generate(req())) == 1
            assert rig.gen.state is BreakerState.CLOSED
            assert rig.gen.status() == StabilityStatus("ok", BreakerState.CLOSED, None, None, 0)
    run(main())


def test_breaker_reopens_when_the_probe_fails() -> None:
    """A failed probe (a single request, not retried) re-opens the breaker for another cooldown."""
    async def main() -> None:
        async with live(max_retries=2) as rig:
            rig.server.script(*[Scripted(status=500)] * 10)
            for _ in range(3):
                await failure(rig.gen)
            before = rig.count()
            rig.time.now += 31.0
            assert (await failure(rig.gen)).kind is FailureKind.SERVER
            assert rig.count() == before + 1
            assert rig.gen.state is BreakerState.OPEN
            assert (await failure(rig.gen)).kind is FailureKind.UNAVAILABLE
    run(main())


def test_only_one_probe_at_a_time() -> None:
    """While the probe is out, other generations still fail fast."""
    t = FakeTime()
    gate = asyncio.Event()
    answers: list[int] = [500, 500, 500]

    async def handler(request: httpx.Request) -> httpx.Response:
        if answers:
            return httpx.Response(answers.pop(0), json={"name": "server_error", "errors": ["boom"]})
        await gate.wait()
        return image_response()

    async def main() -> None:
        gen = mock_generator(handler, t, max_retries=0)
        for _ in range(3):
            await failure(gen)
        t.now += 30.0
        probe = asyncio.create_task(gen.generate(req()))
        await asyncio.sleep(0)
        assert (await failure(gen)).kind is FailureKind.UNAVAILABLE
        gate.set()
        assert len(await probe) == 1 and gen.state is BreakerState.CLOSED
        await gen.aclose()
    run(main())


def test_cancelled_probe_lets_the_next_one_through() -> None:
    """A probe cancelled before its answer does not wedge the breaker half-open."""
    t = FakeTime()
    gate = asyncio.Event()
    answers: list[int] = [500, 500, 500]

    async def handler(request: httpx.Request) -> httpx.Response:
        if answers:
            return httpx.Response(answers.pop(0))
        await gate.wait()
        return image_response()

    async def main() -> None:
        gen = mock_generator(handler, t, max_retries=0)
        for _ in range(3):
            await failure(gen)
        t.now += 30.0
        probe = asyncio.create_task(gen.generate(req()))
        await asyncio.sleep(0)
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        gate.set()
        assert len(await gen.generate(req())) == 1
        await gen.aclose()
    run(main())


def test_401_opens_the_breaker_at_once() -> None:
    """A wrong key opens the breaker on the first failure: no point asking again."""
    async def main() -> None:
        async with live() as rig:
            rig.server.key = "sk-some-other-valid-key"
            assert (await failure(rig.gen)).kind is FailureKind.UNAUTHORIZED
            assert rig.gen.state is BreakerState.OPEN
            assert (await failure(rig.gen)).kind is FailureKind.UNAVAILABLE
            status = rig.gen.status()
            assert status.state == "offline" and status.last_error == "Stability says the API key is wrong (401)"
    run(main())


def test_402_opens_the_breaker_at_once() -> None:
    """Out of credits opens the breaker on the first failure."""
    async def main() -> None:
        async with live({"credits": 0.0}) as rig:
            assert (await failure(rig.gen)).kind is FailureKind.PAYMENT
            assert rig.gen.state is BreakerState.OPEN
    run(main())


def test_moderation_does_not_count_as_a_backend_failure() -> None:
    """Refused prompts prove Stability is up: they never open the breaker."""
    async def main() -> None:
        async with live({"blocked_words": ["nope"]}, max_retries=0) as rig:
            for _ in range(5):
                assert (await failure(rig.gen, req("nope"))).kind is FailureKind.MODERATED
            assert rig.gen.state is BreakerState.CLOSED and rig.gen.status().state == "ok"
    run(main())


def test_status_is_degraded_after_a_failure_and_ok_after_success() -> None:
    """One failure shows 'degraded' with the reason in plain words; a success clears it."""
    async def main() -> None:
        async with live(max_retries=0) as rig:
            rig.server.script(Scripted(status=500))
            await failure(rig.gen)
            status = rig.gen.status()
            assert status.state == "degraded" and status.consecutive_failures == 1
            assert status.last_error is not None and status.last_error.startswith("Stability had a server error")
            await rig.gen.generate(req())
            assert rig.gen.status().state == "ok" and rig.gen.status().last_error is None
    run(main())


def test_missing_key_fails_without_a_request() -> None:
    """No key anywhere: UNAUTHORIZED naming where to set it, nothing sent."""
    async def main() -> None:
        async with live(api_key="") as rig:
            err = await failure(rig.gen)
            assert err.kind is FailureKind.UNAUTHORIZED and "STABILITY_API_KEY" in err.vj_message
            assert not rig.server.requests
    run(main())


def test_environment_wins_over_config() -> None:
    """STABILITY_API_KEY and STABILITY_API_HOST override the config's key and host."""
    async def main() -> None:
        async with MockStabilityServer(KEY, scale=1 / 16) as server:
            cfg = config("http://127.0.0.1:9", api_key="sk-wrong-config-key")
            gen = StabilityGenerator(cfg, env={"STABILITY_API_KEY": KEY + "\n", "STABILITY_API_HOST": server.url})
            assert len(await gen.generate(req())) == 1
            assert gen.host == server.url
            await gen.aclose()
    run(main())


def test_caller_owned_client_is_not_closed() -> None:
    """A client passed in stays open after aclose(): its owner closes it."""
    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: image_response())) as client:
            gen = StabilityGenerator(config(), env={}, client=client)
            await gen.generate(req())
            await gen.aclose()
            assert not client.is_closed
    run(main())


# --- the key never leaks ----------------------------------------------------------------------------------------

def test_key_not_in_errors_when_the_server_echoes_it(caplog: pytest.LogCaptureFixture) -> None:
    """A 400 body echoing the Authorization header: not in the error, its traceback, the logs or status."""
    caplog.set_level(logging.DEBUG)

    async def main() -> GenerationError:
        async with live() as rig:
            rig.server.script(Scripted(status=400, echo_key=True))
            err = await failure(rig.gen)
            assert "[redacted]" in err.vj_message
            assert_no_key(repr(rig.gen.status()))
            return err
    err = run(main())
    assert_no_key(str(err), repr(err), err.args, err.vj_message, err.user_message,
                  "".join(traceback.format_exception(err)))
    assert_no_key(caplog.text, *(r.getMessage() for r in caplog.records), *(r.args for r in caplog.records))


def test_key_not_in_retry_logs_or_status(caplog: pytest.LogCaptureFixture) -> None:
    """500s and 401s echoing the key: every retry warning and the VJ status stay clean."""
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        async with live(max_retries=2) as rig:
            rig.server.script(*[Scripted(status=500, echo_key=True, message=f"boom {KEY}")] * 3)
            err = await failure(rig.gen)
            rig.server.script(Scripted(status=401, echo_key=True))
            err2 = await failure(rig.gen)
            assert_no_key(err, err2, rig.gen.status(), rig.gen.status().last_error)
    run(main())
    assert len([r for r in caplog.records if "retry" in r.getMessage()]) == 2
    assert_no_key(caplog.text, *(r.getMessage() for r in caplog.records))


def test_key_not_in_any_repr() -> None:
    """repr of the generator, its status and its redactor never show the key."""
    async def main() -> None:
        async with live() as rig:
            assert_no_key(repr(rig.gen), repr(rig.gen.status()), repr(rig.gen._redact), repr(rig.gen.__dict__))
    run(main())


def test_key_not_in_network_errors(caplog: pytest.LogCaptureFixture) -> None:
    """Connection failures (httpx's own messages) carry no key."""
    caplog.set_level(logging.DEBUG)

    async def main() -> GenerationError:
        gen = StabilityGenerator(config(f"http://127.0.0.1:{free_port()}", max_retries=1), env={},
                                 sleep=FakeTime().sleep)
        err = await failure(gen)
        await gen.aclose()
        return err
    err = run(main())
    assert_no_key(err, "".join(traceback.format_exception(err)), caplog.text)


def test_key_with_unsendable_characters_is_not_echoed() -> None:
    """A key httpx cannot put in a header is refused in words; the key is not quoted back."""
    bad = "sk-bad\x00key-secret-part"

    async def main() -> GenerationError:
        gen = StabilityGenerator(config(api_key=bad), env={}, transport=httpx.MockTransport(lambda r: image_response()))
        err = await failure(gen)
        await gen.aclose()
        return err
    err = run(main())
    assert err.kind is FailureKind.UNAUTHORIZED
    assert "secret-part" not in str(err) and "secret-part" not in "".join(traceback.format_exception(err))


def test_redactor_removes_every_form_of_the_key() -> None:
    """The key as is, escaped as in a bytes repr, after Bearer, and sk- tokens in general."""
    key = "KEY-Ab12Cd34Ef56"
    r = Redactor(key)
    assert "Ab12Cd34" not in r(f"bad key {key} sent")
    assert "Ab12Cd34" not in r("Illegal header value b'Bearer KEY-Ab12Cd34Ef56\\n'")
    assert r("Authorization: Bearer whatever-token") == "Authorization: Bearer [redacted]"
    assert r("x sk-abcdef123456 y") == "x sk-[redacted] y"
    assert key not in repr(r)
    tricky = Redactor("sk-a\tb-secret")
    assert "b-secret" not in tricky("value 'sk-a\\tb-secret'")


def test_config_defaults_are_used_for_the_client() -> None:
    """The config's timeout reaches the httpx client the generator makes."""
    async def main() -> None:
        gen = StabilityGenerator(replace(config(), timeout=12.0), env={})
        assert gen._client.timeout.read == 12.0
        await gen.aclose()
    run(main())
