"""The backstage thread: start-up, the server and pipeline wired together, the VJ's moderation operations."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect

from engine.backstage import Backstage, BackstageError, chores
from engine.contract import Inbox, ShowSnapshot, State, StateBoard
from engine.render.overlay import HudLayout
from engine.store import Journal
from tests.engine_process import free_port
from tests.fakes import make_config, phone_prompt, wait_for


def backstage(journal: Journal | None, overrides: dict[str, Any] | None = None,
              board: StateBoard | None = None) -> Backstage:
    cfg = make_config({"server.host": "127.0.0.1", "server.port": free_port(), "generation.backend": "procedural",
                       "generation.width": 128, "generation.height": 128, **(overrides or {})})
    return Backstage(cfg, Inbox(), board or StateBoard(), "http://127.0.0.1", journal=journal)


def test_request_image_delivers_a_demo_picture_promptly(journal: Journal) -> None:
    """Space with nothing ready: an offline demo image arrives in the show's inbox."""
    b = backstage(journal, {"demo.interval": 0.0})
    b.start()
    try:
        b.request_image()
        image = b.inbox.images.get(timeout=10)
        assert image.pixels.shape[2] == 4 and image.id.startswith("demo-")
    finally:
        b.stop()


def test_a_prompt_is_journaled_and_reaches_the_show(journal: Journal) -> None:
    """A phone's prompt is in the journal when acknowledged, and its image lands in the show's queue."""
    b = backstage(journal)
    b.start()
    try:
        reply = asyncio.run(phone_prompt(b.port or 0, "a paper boat"))
        assert reply["state"] == "queued"
        assert journal.prompt(reply["id"]) is not None
        image = b.inbox.images.get(timeout=10)
        assert image.caption == "a paper boat"
    finally:
        b.stop()


def test_a_phone_hears_how_long_its_prompt_will_wait(journal: Journal) -> None:
    """Over the real socket, a queued prompt's status carries its expected wait at the show's pace."""
    b = backstage(journal, {"show.hold": 8.0, "show.transition": 2.0})
    b.start()
    try:
        reply = asyncio.run(phone_prompt(b.port or 0, "a lighthouse in the fog"))
        assert reply["state"] == "queued" and reply["wait"] == reply["position"] * 10
    finally:
        b.stop()


def test_approve_mode_waits_for_the_vj(journal: Journal) -> None:
    """In approve mode nothing is generated until approve(); reject() tells the phone and the journal."""
    b = backstage(journal, {"audience.moderation": "approve"})
    b.start()
    try:
        first = asyncio.run(phone_prompt(b.port or 0, "a castle", "phone-aaaaaaa1"))
        second = asyncio.run(phone_prompt(b.port or 0, "a dragon", "phone-bbbbbbb2"))
        assert first["position"] is None
        with pytest.raises(queue.Empty):
            b.inbox.images.get(timeout=0.5)
        b.approve(first["id"])
        assert b.inbox.images.get(timeout=10).caption == "a castle"
        b.reject(second["id"], "Not tonight")
        wait_for(lambda: journal.prompt(second["id"]).state is State.REJECTED)  # type: ignore[union-attr]
        assert journal.prompt(first["id"]).approved is True  # type: ignore[union-attr]
    finally:
        b.stop()


def test_hud_is_painted_while_the_show_wants_it(journal: Journal) -> None:
    """With the HUD on in the snapshot, backstage paints HUD pictures into the inbox."""
    board = StateBoard()
    board.publish(ShowSnapshot(hud=True, fps=60.0))
    b = backstage(journal, board=board)
    b.start()
    try:
        pixels = b.inbox.hud.get(timeout=5)
        assert pixels.ndim == 3 and pixels.shape[2] == 4 and pixels[..., 3].max() > 0
        assert b.generator_line() == "images: procedural (offline)"
    finally:
        b.stop()


HUD_TOKEN = "hud-test-token-0123456789"


def test_the_hud_names_the_vj_page_without_its_token(journal: Journal) -> None:
    """The HUD is on the projector: it gives the control page's address, never the token."""
    b = backstage(journal, {"vj.token": HUD_TOKEN})
    b.start()
    try:
        lines = b._hud_lines()
        assert f"VJ page: {b.vj_url}" in lines
        assert not any(HUD_TOKEN in line or "token" in line for line in lines)
    finally:
        b.stop()


def test_a_painted_hud_holds_neither_the_token_nor_a_pairing_code(journal: Journal, monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """The text every HUD picture is painted from leaves the token out, and P's code goes to the console only."""
    painted: list[str] = []
    paint = chores.hud_image

    def spy(lines: list[str], layout: HudLayout) -> np.ndarray:
        painted.append("\n".join(lines))
        return paint(lines, layout)

    monkeypatch.setattr(chores, "hud_image", spy)
    board = StateBoard()
    board.publish(ShowSnapshot(hud=True))
    b = backstage(journal, {"vj.token": HUD_TOKEN}, board=board)
    b.start()
    try:
        b.inbox.hud.get(timeout=5)
        with caplog.at_level(logging.WARNING, logger="engine.backstage.runner"):
            b.pair()
            wait_for(lambda: any("pairing code" in r.getMessage() for r in caplog.records))
        code = next(r.getMessage() for r in caplog.records if "pairing code" in r.getMessage()).split()[3]
        shown = len(painted)
        wait_for(lambda: len(painted) >= shown + 2)  # painted again after the code was made
    finally:
        b.stop()
    assert any("VJ page: http://" in text for text in painted)
    assert not any(HUD_TOKEN in text or code in text for text in painted)


def test_pair_before_start_is_harmless() -> None:
    """P before the loop exists is ignored, not a crash."""
    backstage(None).pair()


def test_port_in_use_fails_start_with_a_clear_error(journal: Journal) -> None:
    """start() raises BackstageError naming the address when the port is taken."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        b = backstage(journal, {"server.port": busy.getsockname()[1]})
        with pytest.raises(BackstageError, match=r"cannot listen on 127\.0\.0\.1"):
            b.start()
        b.stop()


def test_stop_ends_the_thread(journal: Journal) -> None:
    """stop() returns with the backstage thread gone."""
    b = backstage(journal)
    b.start()
    b.stop()
    assert not any(t.name == "backstage" and t.is_alive() for t in threading.enumerate())
    assert b.failure is None


def test_request_before_start_is_harmless() -> None:
    """A key press before the loop exists is ignored, not a crash."""
    backstage(None).request_image()


def test_osc_reaches_the_show_inbox(journal: Journal) -> None:
    """With [osc] enabled, a controller's message arrives in the show's command queue."""
    from pythonosc.udp_client import SimpleUDPClient

    from engine.commands import Action

    b = backstage(journal, {"osc.enabled": True, "osc.port": free_port()})
    b.start()
    try:
        assert b.osc is not None
        client = SimpleUDPClient("127.0.0.1", b.osc.port)
        try:
            client.send_message("/engine/next", [])
        finally:
            client.close()
        assert b.inbox.commands.get(timeout=5).action is Action.NEXT
    finally:
        b.stop()


def test_full_garbage_collections_wait_for_a_quiet_moment() -> None:
    """Full collections stall every push for most of a second with a big crowd: only when quiet, yet never skipped."""
    from engine.backstage.chores import FULL_GC_MAX_S, FULL_GC_PERIOD_S, full_gc_due

    assert not full_gc_due(now=100.0, last_full=0.0, last_prompt=0.0)  # the period is not over
    assert full_gc_due(now=FULL_GC_PERIOD_S + 10, last_full=0.0, last_prompt=FULL_GC_PERIOD_S)  # quiet for 10 s
    assert not full_gc_due(now=FULL_GC_PERIOD_S + 10, last_full=0.0, last_prompt=FULL_GC_PERIOD_S + 9)  # busy
    assert full_gc_due(now=FULL_GC_MAX_S, last_full=0.0, last_prompt=FULL_GC_MAX_S)  # busy, but it is overdue


def test_the_loop_never_waits_on_the_disk(tmp_path: Path) -> None:
    """With every image fsync slowed to 500 ms, 20 phones still get pongs within 50 ms (p99) while images
    are being stored: the journal's file writes run beside the loop, never on it."""
    slow: list[float] = []

    def slow_fsync(fd: int) -> None:
        slow.append(time.monotonic())
        time.sleep(0.5)

    j = Journal.open(tmp_path, fsync=slow_fsync)
    board = StateBoard()
    board.publish(ShowSnapshot(size=(160, 90)))
    b = backstage(j, {"generation.in_flight": 2,
                      "audience.cooldown": 0.0, "audience.burst": 20,
                      "server.max_connections_per_ip": 50,
                      "server.max_handshakes_per_ip": 50, "server.messages_per_s": 100.0,
                      "server.messages_per_s_per_ip": 2000.0}, board=board)
    b.start()
    rtts: list[float] = []
    try:
        assert b.port is not None
        port = b.port
        stored_before = len(slow)

        async def phone(n: int) -> None:
            async with connect(f"ws://127.0.0.1:{port}/ws?client=phone-disk{n:04d}") as ws:
                await ws.recv()  # welcome
                await ws.send(json.dumps({"type": "prompt", "text": f"a lighthouse number {n} in fog"}))
                deadline = time.monotonic() + 4.0
                while time.monotonic() < deadline:
                    sent = time.perf_counter()
                    await ws.send(json.dumps({"type": "ping"}))
                    while json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] != "pong":
                        pass  # statuses of its prompt arrive in between
                    rtts.append(time.perf_counter() - sent)
                    await asyncio.sleep(0.05)

        async def crowd() -> None:
            await asyncio.gather(*(phone(n) for n in range(20)))

        asyncio.run(crowd())
        assert len(slow) - stored_before >= 4  # images were being written (two fsyncs each) all along
    finally:
        b.stop()
        j.close()
    rtts.sort()
    p99 = rtts[int(len(rtts) * 0.99)]
    assert len(rtts) > 500 and p99 < 0.050, f"pong p99 {p99 * 1000:.0f} ms over {len(rtts)} pings"


def test_memory_freed_by_worker_threads_goes_back_to_the_system() -> None:
    """Freed heap that worker threads' arenas keep (holes between survivors) goes back to the system on a trim.

    Run in a fresh interpreter: in the test process other tests' heap would absorb the burst."""
    import subprocess
    import sys

    script = """
import sys
from concurrent.futures import ThreadPoolExecutor
import psutil
from engine.backstage.chores import release_free_memory
survivors = []
def burst(n):
    blocks, pins = [], []
    for _ in range(400):  # 40 MB per call in 100 KB blocks, below glibc's mmap threshold
        blocks.append(bytearray(100 * 1024))
        pins.append(bytearray(64))  # a small survivor after each block: freed blocks become holes
    survivors.append(pins)
    return len(blocks) + n
with ThreadPoolExecutor(2) as pool:
    list(pool.map(burst, range(8)))
before = psutil.Process().memory_info().rss
ok = release_free_memory()
after = psutil.Process().memory_info().rss
print(int(ok), before >> 20, after >> 20)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    ok, before, after = (int(x) for x in out.stdout.split())
    assert ok and before - after > 30, f"{before} MB before the trim, {after} MB after"


def test_one_heap_keeps_every_worker_thread_in_one_arena() -> None:
    """After one_heap(), threads that allocate at once share glibc's main arena instead of one each (glibc's own
    malloc_info lists the heaps); without it, the same burst makes more. Fresh interpreters, as above."""
    import subprocess
    import sys

    script = """
import ctypes, os, sys, tempfile, threading
from engine.backstage.chores import one_heap
ok = one_heap() if sys.argv[1] == "one" else True
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
start = threading.Barrier(4)
def burst():
    start.wait()  # all at once: contention is what makes glibc open new arenas
    blocks = [bytearray(100 * 1024) for _ in range(300)]
    del blocks
threads = [threading.Thread(target=burst) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
path = os.path.join(tempfile.mkdtemp(), "info.xml")
fp = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, fp)
libc.fclose(fp)
print(int(ok), open(path).read().count("<heap nr="))
"""
    root = Path(__file__).resolve().parent.parent

    def heaps(mode: str) -> tuple[int, int]:
        out = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=60,
                             check=True, cwd=root)
        ok, count = (int(x) for x in out.stdout.split())
        return ok, count

    ok, one = heaps("one")
    assert ok and one == 1, f"{one} heaps with one_heap()"
    assert heaps("many")[1] > 1, "the burst made no second arena: the test shows nothing here"
