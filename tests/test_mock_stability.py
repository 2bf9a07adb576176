"""The loopback Stability mock: its own validation answers, with the real error shapes, and its fault controls."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from engine.gen.mock_stability import MockStabilityServer, Scripted, serve_in_thread
from tests.fakes import encoded_image

KEY = "sk-mock-test-key-0123456789"
ROOT = Path(__file__).resolve().parent.parent
Scenario = Callable[[MockStabilityServer, httpx.AsyncClient], Awaitable[None]]


@asynccontextmanager
async def mock(**kw: Any) -> AsyncIterator[tuple[MockStabilityServer, httpx.AsyncClient]]:
    server = MockStabilityServer(KEY, scale=1 / 16, **kw)
    async with server, httpx.AsyncClient(headers={"authorization": f"Bearer {KEY}"}, timeout=5.0) as client:
        client.base_url = httpx.URL(server.url)
        yield server, client


def run(scenario: Scenario, **kw: Any) -> None:
    async def main() -> None:
        async with mock(**kw) as (server, client):
            await scenario(server, client)
    asyncio.run(main())


def png(width: int, height: int, fmt: str = "PNG") -> bytes:
    return encoded_image((10, 120, 200), (width, height), fmt)


async def v2(client: httpx.AsyncClient, endpoint: str = "core", fields: dict[str, str] | None = None,
             files: dict[str, tuple[str, bytes]] | None = None, **kw: Any) -> httpx.Response:
    data = {"prompt": "a lighthouse at dusk", **(fields or {})}
    return await client.post(f"/v2beta/stable-image/generate/{endpoint}", data=data,
                             files=files or {"none": ("none", b"")}, **kw)


async def v1(client: httpx.AsyncClient, body: dict[str, Any] | None = None,
             engine: str = "stable-diffusion-xl-1024-v1-0", **kw: Any) -> httpx.Response:
    doc = {"text_prompts": [{"text": "a lighthouse", "weight": 1}], **(body or {})}
    return await client.post(f"/v1/generation/{engine}/text-to-image", json=doc, **kw)


def assert_v2_error(resp: httpx.Response, status: int, name: str, *fragments: str) -> None:
    """A v2 error: the status, ``{"id": 32 hex, "name", "errors": [...]}`` and the expected messages."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"id", "name", "errors"} and re.fullmatch(r"[0-9a-f]{32}", body["id"])
    assert body["name"] == name, body
    for fragment in fragments:
        assert any(fragment in e for e in body["errors"]), (fragment, body["errors"])


def assert_v1_error(resp: httpx.Response, status: int, name: str, fragment: str = "") -> None:
    """A v1 error: the status and ``{"id", "name", "message"}``."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"id", "name", "message"} and body["name"] == name, body
    assert fragment in body["message"], body["message"]


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


# --- auth ------------------------------------------------------------------------------------------------------------

def test_v2_without_key_is_401() -> None:
    """No Authorization header: 401 ``unauthorized`` in the v2 shape."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        assert_v2_error(await v2(client, headers={"authorization": ""}), 401, "unauthorized", "missing")
    run(scenario)


def test_wrong_key_is_401() -> None:
    """A key other than the configured one: 401."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        resp = await v2(client, headers={"authorization": "Bearer sk-nope"})
        assert_v2_error(resp, 401, "unauthorized", "invalid API key")
        assert "sk-nope" not in resp.text
    run(scenario)


def test_v1_without_key_is_401_in_v1_shape() -> None:
    """v1 paths answer ``{"id", "name", "message"}``; the balance needs the key too."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        assert_v1_error(await v1(client, headers={"authorization": ""}), 401, "unauthorized")
        assert_v1_error(await client.get("/v1/user/balance", headers={"authorization": "x"}), 401, "unauthorized")
    run(scenario)


def test_long_client_headers_are_refused() -> None:
    """stability-client-id over 256 characters: 400."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        resp = await v2(client, headers={"stability-client-id": "x" * 257})
        assert_v2_error(resp, 400, "bad_request", "stability-client-id")
    run(scenario)


# --- v2beta validation -----------------------------------------------------------------------------------------------

def test_v2_needs_multipart() -> None:
    """A JSON body on a v2beta endpoint: 400 naming the content type."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        resp = await client.post("/v2beta/stable-image/generate/core", json={"prompt": "x"})
        assert_v2_error(resp, 400, "bad_request", "multipart/form-data")
    run(scenario)


def test_prompt_is_required() -> None:
    """No prompt (or an empty one): ``prompt: is required``."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        assert_v2_error(await v2(client, fields={"prompt": ""}), 400, "bad_request", "prompt: is required")
    run(scenario)


@pytest.mark.parametrize(("endpoint", "fields", "fragment"), [
    ("core", {"prompt": "p" * 10001}, "prompt: must be at most 10000"),
    ("core", {"negative_prompt": "n" * 10001}, "negative_prompt: must be at most 10000"),
    ("core", {"aspect_ratio": "4:3"}, "aspect_ratio: must be one of"),
    ("core", {"seed": "4294967295"}, "seed: must be between 0 and 4294967294"),
    ("core", {"seed": "-1"}, "seed: must be between"),
    ("core", {"seed": "1.5"}, "seed: must be an integer"),
    ("core", {"output_format": "gif"}, "output_format: must be one of"),
    ("core", {"style_preset": "vaporwave"}, "style_preset: must be one of"),
    ("core", {"cfg_scale": "5"}, "cfg_scale: unknown parameter"),
    ("ultra", {"model": "sd3.5-large"}, "model: unknown parameter"),
    ("sd3", {"model": "sd4"}, "model: must be one of"),
    ("sd3", {"mode": "video"}, "mode: must be one of"),
    ("sd3", {"cfg_scale": "11"}, "cfg_scale: must be between 1 and 10"),
    ("sd3", {"cfg_scale": "lots"}, "cfg_scale: must be a number"),
    ("sd3", {"mode": "image-to-image", "strength": "0.5"}, "image: is required when mode is image-to-image"),
    ("ultra", {"strength": "0.5"}, "strength: is only allowed with an image"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None)
def test_v2_field_checks(endpoint: str, fields: dict[str, str], fragment: str) -> None:
    """Each field's type and range is checked like the real API: 400 ``bad_request`` naming the field."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        assert_v2_error(await v2(client, endpoint, fields), 400, "bad_request", fragment)
        assert server.credits == 1000.0
    run(scenario)


@pytest.mark.parametrize(("endpoint", "fields", "image", "fragment"), [
    ("sd3", {"mode": "image-to-image"}, png(128, 128), "strength: is required when an image is given"),
    ("sd3", {"mode": "image-to-image", "strength": "1.5"}, png(128, 128), "strength: must be between 0 and 1"),
    ("sd3", {"mode": "image-to-image", "strength": "0.5"}, png(32, 128), "at least 64 pixels"),
    ("sd3", {"mode": "image-to-image", "strength": "0.5"}, b"not an image", "image: could not be decoded"),
    ("sd3", {"mode": "image-to-image", "strength": "0.5"}, png(64, 64, "GIF"), "must be a jpeg, png or webp"),
    ("sd3", {"strength": "0.5"}, png(128, 128), "image: is only allowed when mode is image-to-image"),
    ("ultra", {"strength": "0.5", "aspect_ratio": "1:1"}, png(128, 128), "aspect_ratio: is only allowed for text"),
    ("core", {"strength": "0.5"}, png(128, 128), "image: unknown parameter"),
], ids=["no-strength", "strength-range", "small", "not-image", "gif", "t2i-mode", "aspect", "core"])
def test_v2_image_checks(endpoint: str, fields: dict[str, str], image: bytes, fragment: str) -> None:
    """Image-to-image rules: strength with image, sides ≥ 64, JPEG/PNG/WebP only, no aspect_ratio."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        resp = await v2(client, endpoint, fields, files={"image": ("init.png", image)})
        assert_v2_error(resp, 400, "bad_request", fragment)
    run(scenario)


def test_v2_reports_every_error_at_once() -> None:
    """Several bad fields: all named in one ``errors`` list."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        resp = await v2(client, fields={"prompt": "", "seed": "x", "output_format": "bmp"})
        assert_v2_error(resp, 400, "bad_request", "prompt:", "seed:", "output_format:")
        assert len(resp.json()["errors"]) == 3
    run(scenario)


def test_request_over_10_mib_is_413() -> None:
    """A body over 10 MiB: 413 (body drained, so the connection stays usable)."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        big = {"image": ("init.png", bytes(10 * 1024 * 1024))}
        resp = await v2(client, "sd3", {"mode": "image-to-image", "strength": "0.5"}, files=big)
        assert_v2_error(resp, 413, "payload_too_large")
        assert (await v2(client)).status_code == 200
    run(scenario)


def test_chunked_upload_is_read() -> None:
    """A chunked request body (no Content-Length) is parsed like any other."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        async def body() -> AsyncIterator[bytes]:
            yield b'{"text_prompts": [{"text": "chunked", '
            yield b'"weight": 1}]}'
        resp = await client.post("/v1/generation/stable-diffusion-xl-1024-v1-0/text-to-image", content=body(),
                                 headers={"content-type": "application/json"})
        assert resp.status_code == 200 and server.received[-1].json["text_prompts"][0]["text"] == "chunked"
    run(scenario)


# --- v2beta answers --------------------------------------------------------------------------------------------

def test_v2_image_answer_shape() -> None:
    """Raw image bytes with content-type, finish-reason, seed and x-request-id headers."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        resp = await v2(client, "ultra", {"seed": "99", "aspect_ratio": "9:16", "output_format": "webp"})
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "image/webp" and resp.headers["finish-reason"] == "SUCCESS"
        assert resp.headers["seed"] == "99" and re.fullmatch(r"[0-9a-f]{32}", resp.headers["x-request-id"])
        assert image_size(resp.content) == (48, 84)
    run(scenario)


def test_v2_json_answer_shape() -> None:
    """``Accept: application/json``: ``{"image", "finish_reason", "seed"}`` with ``type=image/...``."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        resp = await v2(client, "sd3", {"output_format": "jpeg"}, headers={"accept": "application/json"})
        assert resp.headers["content-type"] == "application/json; type=image/jpeg"
        body = resp.json()
        assert set(body) == {"image", "finish_reason", "seed"} and body["finish_reason"] == "SUCCESS"
        assert base64.b64decode(body["image"])[:3] == b"\xff\xd8\xff" and body["seed"] > 0
    run(scenario)


def test_picture_depends_on_the_prompt_and_seed() -> None:
    """Same prompt and seed → same picture; another prompt → another picture."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        a = (await v2(client, fields={"prompt": "red", "seed": "5"})).content
        b = (await v2(client, fields={"prompt": "red", "seed": "5"})).content
        c = (await v2(client, fields={"prompt": "blue", "seed": "5"})).content
        assert a == b and a != c
    run(scenario)


# --- v1 ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "name", "fragment"), [
    ({"width": 1000, "height": 1000}, "invalid_height_or_width", "multiples of 64"),
    ({"width": 64, "height": 64}, "invalid_height_or_width", "at least 128"),
    ({"width": 512, "height": 512}, "invalid_sdxl_v1_dimensions", "allowed dimensions"),
    ({"samples": 11}, "invalid_samples", "samples"),
    ({"samples": 0}, "invalid_samples", "samples"),
    ({"steps": 5}, "bad_request", "steps: must be between 10 and 50"),
    ({"cfg_scale": 36}, "bad_request", "cfg_scale: must be between 0 and 35"),
    ({"seed": 4294967296}, "bad_request", "seed: must be between"),
    ({"seed": "7"}, "bad_request", "seed: must be an integer"),
    ({"sampler": "K_MAGIC"}, "bad_request", "sampler: must be one of"),
    ({"style_preset": "vaporwave"}, "bad_request", "style_preset: must be one of"),
    ({"text_prompts": [{"text": "t" * 2001, "weight": 1}]}, "bad_request", "at most 2000"),
    ({"text_prompts": []}, "bad_request", "at least one prompt"),
    ({"text_prompts": [{"text": "only negative", "weight": -1}]}, "bad_request", "positive weight"),
    ({"aspect_ratio": "1:1"}, "bad_request", "aspect_ratio: unknown parameter"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_v1_checks(body: dict[str, Any], name: str, fragment: str) -> None:
    """v1 text-to-image field checks, each with the real error name, in the v1 shape."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        assert_v1_error(await v1(client, body), 400, name, fragment)
    run(scenario)


def test_v1_sd16_range() -> None:
    """SD 1.6 takes 320..1536 per side (not SDXL's list)."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        engine = "stable-diffusion-v1-6"
        assert (await v1(client, {"width": 512, "height": 768}, engine)).status_code == 200
        assert_v1_error(await v1(client, {"width": 256, "height": 512}, engine), 400, "invalid_height_or_width",
                        "between 320 and 1536")
    run(scenario)


def test_v1_unknown_engine_is_404() -> None:
    """An unknown engine id: 404 ``not_found`` with the real message."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        assert_v1_error(await v1(client, engine="sdxl-9"), 404, "not_found",
                        "The specified engine (ID sdxl-9) was not found.")
    run(scenario)


def test_v1_text_to_image_needs_json() -> None:
    """v1 text-to-image with a multipart body: 400."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        resp = await client.post("/v1/generation/stable-diffusion-xl-1024-v1-0/text-to-image",
                                 data={"text_prompts[0][text]": "x"}, files={"none": ("none", b"")})
        assert_v1_error(resp, 400, "bad_request", "application/json")
    run(scenario)


def test_v1_artifacts_answer() -> None:
    """v1 answers ``{"artifacts": [{"base64", "seed", "finishReason"}]}`` (camelCase), one per sample."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        resp = await v1(client, {"samples": 2, "seed": 10, "width": 1344, "height": 768})
        arts = resp.json()["artifacts"]
        assert [set(a) for a in arts] == [{"base64", "seed", "finishReason"}] * 2
        assert [a["seed"] for a in arts] == [10, 11] and {a["finishReason"] for a in arts} == {"SUCCESS"}
        assert image_size(base64.b64decode(arts[0]["base64"])) == (84, 48)
    run(scenario)


def test_v1_png_answer_only_for_one_sample() -> None:
    """``Accept: image/png`` gives PNG bytes with Finish-Reason and Seed, and only when samples is 1."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        resp = await v1(client, {"seed": 3}, headers={"accept": "image/png"})
        assert resp.headers["content-type"] == "image/png" and resp.headers["finish-reason"] == "SUCCESS"
        assert resp.headers["seed"] == "3" and resp.content.startswith(b"\x89PNG")
        assert_v1_error(await v1(client, {"samples": 2}, headers={"accept": "image/png"}), 400, "bad_request",
                        "samples is 1")
    run(scenario)


def test_v1_image_to_image() -> None:
    """v1 image-to-image: multipart with init_image (an SDXL size), image_strength and text_prompts[i]."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        url = "/v1/generation/stable-diffusion-xl-1024-v1-0/image-to-image"
        fields = {"text_prompts[0][text]": "a fox", "text_prompts[0][weight]": "1", "image_strength": "0.4",
                  "init_image_mode": "IMAGE_STRENGTH", "samples": "1", "steps": "30"}
        ok = await client.post(url, data=fields, files={"init_image": ("i.png", png(1216, 832))})
        assert ok.status_code == 200 and len(ok.json()["artifacts"]) == 1
        odd = await client.post(url, data=fields, files={"init_image": ("i.png", png(1000, 700))})
        assert_v1_error(odd, 400, "invalid_sdxl_v1_dimensions", "1000x700")
        strong = await client.post(url, data={**fields, "image_strength": "2"},
                                   files={"init_image": ("i.png", png(1024, 1024))})
        assert_v1_error(strong, 400, "bad_request", "image_strength")
        missing = await client.post(url, data=fields, files={"none": ("none", b"")})
        assert_v1_error(missing, 400, "bad_request", "init_image: is required")
    run(scenario)


def test_balance_and_engines() -> None:
    """``GET /v1/user/balance`` → credits; ``GET /v1/engines/list`` → the engines with id/name/description/type."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        assert (await client.get("/v1/user/balance")).json() == {"credits": 1000.0}
        engines = (await client.get("/v1/engines/list")).json()
        assert {e["id"] for e in engines} == {"stable-diffusion-xl-1024-v1-0", "stable-diffusion-v1-6"}
        assert all(set(e) == {"id", "name", "description", "type"} for e in engines)
    run(scenario)


def test_unknown_path_and_wrong_method() -> None:
    """Unknown paths are 404, a GET on a generation endpoint 405."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        assert_v2_error(await client.get("/v2beta/nothing"), 404, "not_found")
        assert_v2_error(await client.get("/v2beta/stable-image/generate/core"), 405, "method_not_allowed")
        assert_v2_error(await v2(client, "turbo"), 404, "not_found")
    run(scenario)


# --- credits and moderation --------------------------------------------------------------------------------------

def test_credits_charged_at_the_contract_prices() -> None:
    """core 3, ultra 8, sd3 by model, v1 one per image; a rejected request is free."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        await v2(client, "core")
        await v2(client, "ultra")
        await v2(client, "sd3", {"model": "sd3.5-flash"})
        await v1(client, {"samples": 2})
        await v2(client, "core", {"seed": "bad"})
        assert server.credits == 100 - 3 - 8 - 2.5 - 2
    run(scenario, credits=100.0)


def test_402_when_credits_run_out() -> None:
    """Not enough credits for the request: 402 ``payment_required``, balance unchanged."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        assert (await v2(client, "core")).status_code == 200
        assert_v2_error(await v2(client, "ultra"), 402, "payment_required", "credits")
        assert server.credits == 2.0
        assert_v1_error(await v1(client, {"samples": 3}), 402, "payment_required")
    run(scenario, credits=5.0)


def test_moderation_reject() -> None:
    """Blocked words: v2 403 ``content_moderation``, v1 400 ``invalid_prompts``; not charged."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        assert_v2_error(await v2(client, fields={"prompt": "some GORE here"}), 403, "content_moderation")
        assert_v1_error(await v1(client, {"text_prompts": [{"text": "gore", "weight": 1}]}), 400,
                        "invalid_prompts")
        negative_ok = await v1(client, {"text_prompts": [{"text": "a cat", "weight": 1},
                                                         {"text": "gore", "weight": -1}]})
        assert negative_ok.status_code == 200
        assert server.credits == 999.0
    run(scenario, blocked_words=["gore"])


def test_moderation_filter() -> None:
    """Filter mode: 200 with finish-reason CONTENT_FILTERED (v2) and finishReason (v1)."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        resp = await v2(client, fields={"prompt": "gore"})
        assert resp.status_code == 200 and resp.headers["finish-reason"] == "CONTENT_FILTERED"
        arts = (await v1(client, {"text_prompts": [{"text": "gore", "weight": 1}], "samples": 2})).json()
        assert [a["finishReason"] for a in arts["artifacts"]] == ["CONTENT_FILTERED"] * 2
    run(scenario, blocked_words=["gore"], moderation="filter")


# --- faults -----------------------------------------------------------------------------------------------------

def test_lockout_after_too_many_requests() -> None:
    """More than rate_limit requests in 10 s: 429 ``rate_limit_exceeded`` for the whole lockout."""
    now = [0.0]

    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        for _ in range(3):
            assert (await v2(client)).status_code == 200
        assert_v2_error(await v2(client), 429, "rate_limit_exceeded", "rate limit")
        now[0] = 59.0
        assert (await v2(client)).status_code == 429
        now[0] = 60.5
        assert (await v2(client)).status_code == 200
    run(scenario, rate_limit=3, lockout=60.0, clock=lambda: now[0])


def test_scripted_answers_in_order_with_retry_after() -> None:
    """Scripted answers are used once each, in order, with Retry-After when asked, then normal service."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        server.script(Scripted(status=429, retry_after=5), Scripted(status=429), Scripted(status=500))
        first = await v2(client)
        assert_v2_error(first, 429, "rate_limit_exceeded")
        assert first.headers["retry-after"] == "5"
        assert "retry-after" not in (await v2(client)).headers
        assert_v2_error(await v2(client), 500, "server_error")
        assert (await v2(client)).status_code == 200 and server.scripted_left == 0
    run(scenario)


def test_scripted_answer_matches_its_path() -> None:
    """A script entry with ``match`` waits for a request on that path; v1 paths get the v1 shape."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        server.script(Scripted(status=503, match="/v1/user/balance"))
        assert (await v2(client)).status_code == 200
        assert_v1_error(await client.get("/v1/user/balance"), 503, "service_unavailable")
    run(scenario)


def test_scripted_hang_and_close() -> None:
    """``hang`` holds the connection past the client's timeout; ``close`` drops it unanswered."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        server.script(Scripted(action="hang"), Scripted(action="close"))
        with pytest.raises(httpx.ReadTimeout):
            await v2(client, timeout=0.1)
        with pytest.raises(httpx.RemoteProtocolError):
            await v2(client)
        assert (await v2(client)).status_code == 200
    run(scenario)


def test_stop_ends_a_held_connection() -> None:
    """stop() ends connections held by ``hang``: the waiting client sees the connection go."""
    async def main() -> None:
        server = MockStabilityServer(KEY)
        await server.start()
        server.script(Scripted(action="hang"))
        async with httpx.AsyncClient(base_url=server.url, headers={"authorization": f"Bearer {KEY}"}) as client:
            pending = asyncio.create_task(v2(client))
            while not server.requests:
                await asyncio.sleep(0.005)
            await server.stop()
            with pytest.raises(httpx.TransportError):
                await pending
        await server.stop()
    asyncio.run(main())


def test_latency() -> None:
    """``latency`` delays each answer by that many seconds."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        start = time.monotonic()
        assert (await client.get("/v1/user/balance")).status_code == 200
        assert time.monotonic() - start >= 0.05
    run(scenario, latency=0.05)


def test_echo_key_puts_the_authorization_in_the_error() -> None:
    """``echo_key`` makes the mock careless, for the client's redaction tests."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        server.script(Scripted(status=400, echo_key=True))
        assert KEY in (await v2(client)).text
    run(scenario)


def test_corrupt_and_filter_scripts() -> None:
    """``corrupt`` sends garbage labelled as an image; ``filter`` a CONTENT_FILTERED success."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        server.script(Scripted(action="corrupt"), Scripted(action="filter"))
        bad = await v2(client)
        assert bad.status_code == 200 and bad.headers["content-type"] == "image/png"
        assert not bad.content.startswith(b"\x89PNG")
        assert (await v2(client)).headers["finish-reason"] == "CONTENT_FILTERED"
    run(scenario)


def test_http_control_endpoint() -> None:
    """``POST /_mock/faults`` scripts answers and sets credits; ``/_mock/stats`` counts; ``/_mock/reset`` clears."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        resp = await client.post("/_mock/faults", json={"script": [{"status": 503, "retry_after": 3}],
                                                         "credits": 5, "blocked_words": ["x-rated"]})
        assert resp.json() == {"ok": True, "scripted_left": 1}
        failed = await v2(client)
        assert failed.status_code == 503 and failed.headers["retry-after"] == "3"
        await v2(client)
        stats = (await client.get("/_mock/stats")).json()
        assert stats == {"requests": {"/v2beta/stable-image/generate/core": 2}, "credits": 2.0, "scripted_left": 0}
        assert (await client.post("/_mock/faults", json={"bogus": 1})).status_code == 400
        assert (await client.post("/_mock/faults", json={"script": [{"stauts": 1}]})).status_code == 400
        assert (await client.post("/_mock/faults", json={"credits": "lots"})).status_code == 400
        await client.post("/_mock/reset")
        assert (await client.get("/_mock/stats")).json()["requests"] == {}
    run(scenario)


def test_requests_are_counted_per_path() -> None:
    """``requests`` counts each path, faults and errors included."""
    async def scenario(server: MockStabilityServer, client: httpx.AsyncClient) -> None:
        await v2(client)
        await v2(client, "ultra", {"seed": "nope"})
        await client.get("/v1/user/balance")
        assert dict(server.requests) == {"/v2beta/stable-image/generate/core": 1,
                                         "/v2beta/stable-image/generate/ultra": 1, "/v1/user/balance": 1}
    run(scenario)


# --- other ways to run it ----------------------------------------------------------------------------------------

def test_serve_in_thread_for_sync_code() -> None:
    """``serve_in_thread`` runs the mock on its own loop for synchronous callers."""
    with serve_in_thread(MockStabilityServer(KEY, scale=1 / 16)) as server, httpx.Client(base_url=server.url) as c:
        resp = c.get("/v1/user/balance", headers={"authorization": f"Bearer {KEY}"})
        assert resp.json() == {"credits": 1000.0}


def test_cli_serves_until_ctrl_c() -> None:
    """``python -m engine.gen.mock_stability --port 0`` prints its URL, serves, and exits cleanly on Ctrl-C."""
    env = {**os.environ, "STABILITY_API_KEY": "sk-cli-key-123456"}
    with subprocess.Popen([sys.executable, "-m", "engine.gen.mock_stability", "--port", "0", "--scale", "0.0625"],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            url = re.search(r"http://127\.0\.0\.1:\d+", line)
            assert url, line
            assert "sk-cli-key" not in line
            with httpx.Client(base_url=url[0]) as c:
                faults = c.post("/_mock/faults", json={"credits": 7})
                assert faults.status_code == 200
                balance = c.get("/v1/user/balance", headers={"authorization": "Bearer sk-cli-key-123456"})
                assert json.loads(balance.content) == {"credits": 7.0}
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
