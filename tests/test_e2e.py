"""The whole engine as a process: a phone's prompt becomes an image on screen, and a crash loses nothing.

The show runs headless against the loopback Stability mock (``--stability-mock``), a phone talks to it
over a real WebSocket, the final frame is checked, the journal is read back, and the process is killed
with SIGKILL in the middle of a generation and restarted: the interrupted prompt completes.
"""

from __future__ import annotations

import asyncio
import io
import json
import signal
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from websockets.asyncio.client import connect

from engine.contract import State
from engine.store import Journal
from tests.engine_process import EngineProcess, free_port
from tests.fakes import HEADLESS_ENV, SHADERS

CLIENT = "e2e-phone-000001"


def engine(tmp: Path, port: int, snapshot: str | None = None, extra: tuple[str, ...] = ()) -> EngineProcess:
    args = ["--headless", "--size", "320x180", "--fps", "30", "--port", str(port), "--output", str(tmp / "out"),
            "--stability-mock", "--mock-latency", "2.5", "--set", "show.hold=0.5", "--set", "show.transition=0.3",
            "--set", "show.fit=cover", "--set", "shaders.effects=[]", "--set", f'shaders.dir="{SHADERS}"',
            "--set", "overlay.qr=\"off\"", "--set", "audience.cooldown=0.0"]
    if snapshot:
        args += ["--snapshot", snapshot]
    p = EngineProcess([*args, *extra], tmp, HEADLESS_ENV)
    p.wait_for(r"audience server on")
    return p


async def statuses_until(port: int, send: list[str], until: Any, timeout: float = 40.0) -> list[dict[str, Any]]:
    """Connect as the phone, send prompts, collect status messages until ``until(messages)`` holds."""
    seen: list[dict[str, Any]] = []
    async with connect(f"ws://127.0.0.1:{port}/ws?client={CLIENT}") as ws:
        welcome = json.loads(await ws.recv())
        seen += welcome["prompts"]
        for i, text in enumerate(send):
            await ws.send(json.dumps({"type": "prompt", "text": text, "ref": f"r{i}"}))
        async with asyncio.timeout(timeout):
            while not until(seen):
                msg = json.loads(await ws.recv())
                if msg["type"] == "status":
                    seen.append(msg)
    return seen


def states_of(seen: list[dict[str, Any]], prompt_id: str) -> list[str]:
    return [m["state"] for m in seen if m.get("id") == prompt_id]


def test_prompt_to_screen_and_crash_recovery(tmp_path: Path) -> None:
    """queued → generating → showing on a real engine; SIGKILL mid-generation; restart completes it."""
    port = free_port()
    first = engine(tmp_path, port, snapshot=str(tmp_path / "shot.png"))
    try:
        seen = asyncio.run(statuses_until(port, ["a red fox in the snow"],
                                          lambda s: any(m["state"] == "showing" for m in s)))
        pid = seen[0]["id"]
        assert states_of(seen, pid)[:3] == ["queued", "generating", "showing"]
        showing = next(m for m in seen if m["state"] == "showing")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{showing['image_url']}", timeout=5) as r:
            picture = np.asarray(Image.open(io.BytesIO(r.read())).convert("RGB"))
        asyncio.run(asyncio.sleep(1.0))  # let the transition finish
        first.proc.send_signal(signal.SIGTERM)
        assert first.wait(20) == 0, first.output
    finally:
        first.kill()
    # The frame on screen is the phone's picture (cover fit, no effect): compare the centre colours.
    shot = np.asarray(Image.open(tmp_path / "shot.png").convert("RGB")).astype(float)
    centre = picture[picture.shape[0] // 2 - 20 : picture.shape[0] // 2 + 20,
                     picture.shape[1] // 2 - 20 : picture.shape[1] // 2 + 20].astype(float).mean(axis=(0, 1))
    assert np.abs(shot[80:100, 150:170].mean(axis=(0, 1)) - centre).max() < 25

    second = engine(tmp_path, port)
    try:
        seen = asyncio.run(statuses_until(port, ["a blue whale in the sky"],
                                          lambda s: any(m["state"] == "generating" for m in s[1:])))
        interrupted = next(m["id"] for m in seen if m["state"] == "generating")
        second.proc.send_signal(signal.SIGKILL)  # a crash, mid-generation (the mock takes 2.5 s)
        second.wait(10)
    finally:
        second.kill()
    with Journal.open(tmp_path / "out") as journal:
        assert journal.prompt(interrupted).state is State.GENERATING  # type: ignore[union-attr]

    third = engine(tmp_path, port)
    try:
        seen = asyncio.run(statuses_until(
            port, [], lambda s: "showing" in states_of(s, interrupted) or "done" in states_of(s, interrupted)))
        assert any(m.get("image_url") for m in seen if m.get("id") == interrupted)
        third.proc.send_signal(signal.SIGTERM)
        assert third.wait(20) == 0, third.output
    finally:
        third.kill()
    with Journal.open(tmp_path / "out") as journal:
        assert {p.text for p in journal.prompts()} == {"a red fox in the snow", "a blue whale in the sky"}
        assert journal.images(pid) and journal.images(interrupted)
        assert all(journal.image_path(i.id) is not None and journal.image_path(i.id).is_file()  # type: ignore[union-attr]
                   for i in journal.images(pid))


def test_the_backstage_as_a_thread_still_runs_the_show(tmp_path: Path) -> None:
    """server.backstage = "thread": the same show with the server in the show's process."""
    port = free_port()
    p = engine(tmp_path, port, extra=("--set", 'server.backstage="thread"', "--mock-latency", "0.2"))
    try:
        seen = asyncio.run(statuses_until(port, ["a lantern on the water"],
                                          lambda s: any(m["state"] == "showing" for m in s)))
        assert "generating" in states_of(seen, seen[0]["id"])
        assert "engine.backstage.process" not in p.output  # no second process: the journal line comes from the app
        p.proc.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0, p.output
    finally:
        p.kill()
