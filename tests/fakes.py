"""Helpers shared by the tests: images, configs, clocks, waiting, phones, pixel reading, domain assertions."""

from __future__ import annotations

import io
import json
import os
import queue
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import moderngl
import numpy as np
import pytest
from PIL import Image
from websockets.asyncio.client import connect

from engine.config import Config, with_overrides
from engine.contract import ShowImage
from engine.gen.base import GeneratedImage
from engine.ledger import Ledger, StoredImage
from engine.net.audience import Audience, Outbox
from engine.render.show_loop import read_rgb

ROOT = Path(__file__).resolve().parent.parent
SHADERS = ROOT / "shaders"
EMPTY_SHADERS = ROOT / "tests" / "data" / "no-shaders"  # does not exist: an empty library
TEST_SHADERS = ROOT / "tests" / "data" / "isf"

# Tests that start the engine as a process run it as if on a machine with no display.
HEADLESS_ENV = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREEN = (0, 255, 0)


def make_config(overrides: dict[str, Any] | None = None) -> Config:
    """A Config with test-friendly defaults: no effect, no overlays, small slots."""
    base: dict[str, Any] = {
        "shaders.effects": [],
        "shaders.dir": str(EMPTY_SHADERS),
        "overlay.qr": "off",
        "render.max_image_size": 512,
        "render.image_slots": 4,
    }
    base.update(overrides or {})
    return with_overrides(Config(), base)


def solid(color: tuple[int, int, int], size: tuple[int, int] = (64, 64), id: str = "img") -> ShowImage:
    """A uniformly coloured image of ``size`` (w, h)."""
    w, h = size
    px = np.empty((h, w, 4), dtype=np.uint8)
    px[..., :3] = color
    px[..., 3] = 255
    return ShowImage(id, px)


def quadrants(size: tuple[int, int] = (64, 64), id: str = "quads") -> ShowImage:
    """Top-left red, top-right green, bottom-left blue, bottom-right white: shows orientation."""
    w, h = size
    px = np.zeros((h, w, 4), dtype=np.uint8)
    px[..., 3] = 255
    px[: h // 2, : w // 2, :3] = RED
    px[: h // 2, w // 2 :, :3] = GREEN
    px[h // 2 :, : w // 2, :3] = BLUE
    px[h // 2 :, w // 2 :, :3] = 255
    return ShowImage(id, px)


def target(ctx: moderngl.Context, size: tuple[int, int]) -> moderngl.Framebuffer:
    return ctx.framebuffer(color_attachments=[ctx.texture(size, 4)])


def pixels(fb: moderngl.Framebuffer) -> np.ndarray:
    """(h, w, 3) uint8, top row first."""
    w, h = fb.size
    return read_rgb(fb, (w, h))


def assert_color(px: np.ndarray, expected: tuple[float, float, float], tol: float = 3.0) -> None:
    """Every pixel of ``px`` is within ``tol`` of ``expected`` in each channel."""
    diff = np.abs(px.reshape(-1, 3).astype(np.float64) - np.array(expected, dtype=np.float64))
    worst = float(diff.max())
    assert worst <= tol, f"pixels differ from {expected} by up to {worst:.1f} (tolerance {tol})"


def assert_not_uniform(px: np.ndarray, min_std: float = 4.0) -> None:
    """The picture has visible structure: not one flat colour, and no NaN garbage."""
    std = float(px.reshape(-1, 3).astype(np.float64).std(axis=0).max())
    assert std >= min_std, f"picture is nearly uniform (channel std {std:.2f} < {min_std})"


def drain(q: queue.SimpleQueue[Any]) -> list[Any]:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out


class MemoryKeeper:
    """The ledger's image keeper without a disk: numbered per prompt, bytes kept in a dict."""

    def __init__(self) -> None:
        self.images: dict[str, bytes] = {}

    async def add_image(self, prompt_id: str, image: GeneratedImage, metadata: Mapping[str, object]) -> StoredImage:
        n = 1 + sum(1 for i in self.images if i.startswith(f"{prompt_id}-"))
        stored = StoredImage(f"{prompt_id}-{n}", "png")
        self.images[stored.id] = image.data or b""
        return stored

    async def image_bytes(self, image_id: str) -> bytes | None:
        return self.images.get(image_id)


def direct_ledger(audience: Audience, deliver: Callable[[Outbox], None]) -> Ledger:
    """A ledger whose statuses go out at once (no journal to wait for): a server or a page alone."""
    return Ledger(audience, MemoryKeeper(), lambda step: deliver(list(step.outbox)))


class FakeClock:
    """A clock the test moves by hand (``now``); with ``tick`` it also advances that much per reading."""

    def __init__(self, start: float = 0.0, tick: float = 0.0) -> None:
        self.now = start
        self.tick = tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "timed out", step: float = 0.01) -> None:
    """Poll ``condition`` until it holds; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(what if what == "timed out" else f"{what}: not within {timeout:g} s")
        time.sleep(step)


def encoded_image(color: tuple[int, int, int] = (255, 0, 0), size: int | tuple[int, int] = 64,
                  fmt: str = "PNG") -> bytes:
    """A solid-colour image file (PNG unless ``fmt`` says otherwise), as a backend would answer it."""
    w, h = (size, size) if isinstance(size, int) else size
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, fmt)
    return buf.getvalue()


async def phone_prompt(port: int, text: str, client: str = "phone-abcdef01") -> dict[str, Any]:
    """A phone joins the show on ``port``, sends one prompt and returns the first status it hears."""
    async with connect(f"ws://127.0.0.1:{port}/ws?client={client}") as ws:
        await ws.recv()  # welcome
        await ws.send(json.dumps({"type": "prompt", "text": text}))
        return json.loads(await ws.recv())  # type: ignore[no-any-return]
