"""A phone's prompt through the whole backstage with ``generation.backend = "local"`` and a tiny model.

The real audience server, ledger, journal and pipeline: what reaches the show's queue, and what the
journal says made it (``generator`` in the image's metadata: "local", or "procedural" for a fallback).
The last test runs the engine itself, ``--generator local``, with its backstage in its own process.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from websockets.asyncio.client import connect

from engine.backstage import Backstage
from engine.contract import Inbox, State, StateBoard
from engine.gen.local.generator import LocalGenerator
from engine.gen.local.status import LocalState
from engine.store import Journal
from tests.engine_process import EngineProcess, free_port
from tests.fakes import HEADLESS_ENV, SHADERS, make_config, phone_prompt, wait_for
from tests.local_models import TinyModels

Start = Callable[..., Backstage]


@pytest.fixture
def start(journal: Journal) -> Iterator[Start]:
    """A started backstage on the local model (one step, 128 px), stopped after the test."""
    made: list[Backstage] = []

    def run(model: Path, wait: LocalState | None = LocalState.READY, **overrides: Any) -> Backstage:
        cfg = make_config({
            "server.host": "127.0.0.1", "server.port": free_port(), "generation.backend": "local",
            "generation.width": 128, "generation.height": 128, "local.model": str(model), "local.steps": 1,
            "local.size": 128, "local.warmup": False, **overrides})
        b = Backstage(cfg, Inbox(), StateBoard(), "http://127.0.0.1", journal=journal)
        made.append(b)
        b.start()
        if wait is not None:
            wait_for(lambda: local(b).status().state is wait, 60, f"local model {wait.value}")
        return b

    yield run
    for b in made:
        b.stop(timeout=30)


def local(b: Backstage) -> LocalGenerator:
    assert b.parts is not None
    gen = b.parts.generators[0]
    assert isinstance(gen, LocalGenerator)
    return gen


def send(b: Backstage, text: str, phone: str = "phone-abcdef01") -> str:
    reply = asyncio.run(phone_prompt(b.port or 0, text, phone))
    assert reply["state"] == "queued", reply
    return str(reply["id"])


def made_by(b: Backstage, journal: Journal, prompt_id: str) -> str:
    """The next image in the show's queue, and which generator the journal says made it."""
    b.inbox.images.get(timeout=30)
    [record] = journal.images(prompt_id)
    return str(record.metadata["generator"])


def test_a_phone_prompt_reaches_the_show_from_the_local_model(tiny_models: TinyModels, start: Start,
                                                              journal: Journal) -> None:
    """Prompt in, the local model's image in the show's queue and the journal; the VJ page sees the model."""
    b = start(tiny_models.sd)
    prompt_id = send(b, "una medusa de neón sobre la ciudad de noche")
    image = b.inbox.images.get(timeout=30)
    assert image.caption == "una medusa de neón sobre la ciudad de noche" and image.pixels.shape[2] == 4
    [record] = journal.images(prompt_id)
    assert record.metadata["generator"] == "local" and (record.width, record.height) == (128, 128)
    assert b.parts is not None
    state = b.parts.controls.backend_state()
    assert {k: state[k] for k in ("name", "status", "state", "model", "device")} == {
        "name": "local", "status": "ok", "state": "ready", "model": "tiny-sd", "device": "cpu float32"}
    assert state["memory_mb"] > 0 and state["images_per_s"] > 0 and state["credits"] is None
    assert b.generator_line().startswith("images: local ready   tiny-sd on cpu float32, ")


def test_while_the_model_loads_the_show_paints_offline(tiny_models: TinyModels, start: Start, journal: Journal,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The show starts at once: a prompt during the load gets an offline image, silently; then local ones."""
    gate = threading.Event()
    real = LocalGenerator._load

    def slow(self: LocalGenerator, progress: Any) -> Any:
        progress(0.4, "reading unet")
        assert gate.wait(30)
        return real(self, progress)

    monkeypatch.setattr(LocalGenerator, "_load", slow)
    b = start(tiny_models.sd, wait=None)
    wait_for(lambda: local(b).status().progress == 0.4)
    assert made_by(b, journal, send(b, "a lighthouse")) == "procedural"
    assert b.parts is not None and b.parts.controls.reports == []  # loading is no problem to report
    state = b.parts.controls.backend_state()
    assert (state["state"], state["status"], state["progress"]) == ("loading", "degraded", 0.4)
    assert state["progress_line"] == "loading 40%: reading unet"
    gate.set()
    wait_for(lambda: local(b).status().state is LocalState.READY, 60)
    assert made_by(b, journal, send(b, "a second lighthouse", "phone-abcdef02")) == "local"


def test_a_model_that_cannot_load_paints_offline_and_says_why(tiny_models: TinyModels, start: Start,
                                                              journal: Journal, tmp_path: Path) -> None:
    """Corrupt weights: the show goes on offline, and the VJ page and HUD say the model failed and why."""
    folder = Path(shutil.copytree(tiny_models.sd, tmp_path / "broken"))
    [weights] = (folder / "unet").glob("*.safetensors")
    weights.write_bytes(b"not a safetensors file")
    b = start(folder, wait=LocalState.FAILED)
    assert made_by(b, journal, send(b, "a castle")) == "procedural"
    assert b.parts is not None
    state = b.parts.controls.backend_state()
    why = local(b).status().line
    assert why and (state["state"], state["status"], state["progress_line"]) == ("failed", "offline", why)
    assert b.generator_line() == f"images: local failed (offline images)   ! {why}"


def oom(module: Any, real: Callable[..., Any]) -> Callable[..., Any]:
    def forward(*args: Any, **kwargs: Any) -> Any:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    return forward


def nan(module: Any, real: Callable[..., Any]) -> Callable[..., Any]:
    return lambda *a, **k: tuple(t * float("nan") for t in real(*a, **k))


@pytest.mark.parametrize(("fault", "report"), [
    (oom, "local: local model ran out of GPU memory at 128x128; memory freed"),
    (nan, "local: local model made NaN (not-a-number) pixels at 128x128"),
])
def test_a_failed_image_is_painted_offline_and_the_next_is_local(
        tiny_models: TinyModels, start: Start, journal: Journal, monkeypatch: pytest.MonkeyPatch,
        fault: Callable[..., Any], report: str) -> None:
    """One forward pass goes wrong: that prompt gets the offline image (the phone gets a picture), the VJ
    hears why, and the next prompt is the local model's again."""
    b = start(tiny_models.sd)
    models = local(b).worker.models
    assert models is not None
    unet = models.text2img.unet
    real, broken = unet.forward, fault(unet, unet.forward)
    calls = [0]

    def once(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return broken(*args, **kwargs) if calls[0] == 1 else real(*args, **kwargs)

    monkeypatch.setattr(unet, "forward", once)
    first = send(b, "a giant origami crane made of fire")
    assert made_by(b, journal, first) == "procedural"
    assert b.parts is not None and any(r.startswith(report) for r in b.parts.controls.reports)
    assert made_by(b, journal, send(b, "a paper boat", "phone-abcdef02")) == "local"


def test_a_flagged_image_is_never_shown(tiny_models: TinyModels, start: Start, journal: Journal) -> None:
    """The model's safety checker flags it: the prompt is rejected politely and nothing reaches the show."""
    b = start(tiny_models.sd_flagged)
    prompt_id = send(b, "a quiet garden")
    wait_for(lambda: (journal.prompt(prompt_id) or pytest.fail("no prompt")).state is State.REJECTED, 30)
    assert b.inbox.images.empty() and journal.images(prompt_id) == []
    record = journal.prompt(prompt_id)
    assert record is not None and record.reason == "Sorry, that prompt is not allowed here. Try something else!"


def test_the_engine_with_generator_local_puts_a_phone_prompt_on_screen(tiny_models: TinyModels,
                                                                       tmp_path: Path) -> None:
    """``python -m engine --generator local --model DIR``: the model loads in the backstage process, the
    phone's prompt goes queued → generating → showing, and the journal says the local model made it."""
    port = free_port()
    engine = EngineProcess([
        "--headless", "--size", "320x180", "--fps", "30", "--port", str(port), "--output", str(tmp_path / "out"),
        "--generator", "local", "--model", str(tiny_models.sd), "--set", "local.steps=1", "--set", "local.size=128",
        "--set", "local.warmup=false", "--set", "show.hold=0.5", "--set", "show.transition=0.3",
        "--set", "shaders.effects=[]", "--set", f'shaders.dir="{SHADERS}"', "--set", 'overlay.qr="off"'],
        tmp_path, HEADLESS_ENV)
    try:
        engine.wait_for(r"local model tiny-sd ready on cpu float32", 60)
        seen = asyncio.run(showing(port, "a giant origami crane made of fire"))
        engine.proc.send_signal(signal.SIGTERM)
        assert engine.wait(20) == 0, engine.output
    finally:
        engine.kill()
    prompt_id = seen[0]["id"]
    assert [m["state"] for m in seen if m["id"] == prompt_id][:3] == ["queued", "generating", "showing"]
    with Journal.open(tmp_path / "out") as journal:
        [record] = journal.images(prompt_id)
    assert record.metadata["generator"] == "local" and record.metadata["model"] == "tiny-sd"


async def showing(port: int, text: str) -> list[dict[str, Any]]:
    """A phone sends ``text`` and collects its statuses until the prompt is on screen."""
    seen: list[dict[str, Any]] = []
    async with connect(f"ws://127.0.0.1:{port}/ws?client=phone-10ca1000") as ws:
        await ws.recv()  # welcome
        await ws.send(json.dumps({"type": "prompt", "text": text}))
        async with asyncio.timeout(60):
            while not any(m["state"] == "showing" for m in seen):
                msg = json.loads(await ws.recv())
                if msg["type"] == "status":
                    seen.append(msg)
    return seen


def test_the_control_pages_settings_map_to_the_local_knobs(tiny_models: TinyModels, start: Start,
                                                           journal: Journal) -> None:
    """With the local model the page's steps are the model's (0..100, 0 = its own), not the v1 API's 10..50;
    a change reaches the next image's denoising steps, and the model stays as loaded."""
    b = start(tiny_models.sd)
    assert b.parts is not None
    controls = b.parts.controls
    state = controls.generation_state()
    assert state["settings"]["steps"] == 1 and state["limits"]["steps"] == [0, 100]
    controls.change_settings({"steps": 2, "cfg_scale": 0.0})
    assert controls.generation_state()["settings"]["steps"] == 2
    gen = local(b)
    assert gen._cfg.steps == 2 and gen._cfg.model == str(tiny_models.sd)
    prompt_id = send(b, "a paper lantern in the rain")
    b.inbox.images.get(timeout=30)
    [record] = journal.images(prompt_id)
    assert record.metadata["generator"] == "local" and record.metadata["steps"] == "2"
