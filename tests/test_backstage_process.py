"""The backstage in its own process: the same behaviour as the thread, through the bridge."""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.audio.input import AudioStatus
from engine.audio.live import Heard
from engine.backstage import BackstageError
from engine.backstage.child import MirrorBoard, Sender, _ProxyQueue
from engine.backstage.messages import CaptureAsk, DreamOut, ImageOut, Stop, Tempo, Viewers
from engine.backstage.process import BackstageProcess
from engine.commands import Action
from engine.contract import Inbox, ShowSnapshot, State, StateBoard
from tests.engine_process import ROOT, free_port
from tests.fakes import make_config, phone_prompt
from tests.gl_probe import gl_modules
from tests.test_vj_server import TOKEN, page


class FakeLive:
    """The show's audio engine as the bridge uses it."""

    def __init__(self) -> None:
        self.locked: list[float | None] = []
        self.heard = Heard(None, 7, AudioStatus("none", False, "no audio"), 128.0)

    def latest(self) -> Heard:
        return self.heard

    def lock_bpm(self, bpm: float | None) -> None:
        self.locked.append(bpm)

    def resync(self, at: float | None = None) -> None:
        pass


def make(tmp_path: Path, overrides: dict[str, Any] | None = None, live: FakeLive | None = None,
         probe: Any = None) -> BackstageProcess:
    cfg = make_config({"server.host": "127.0.0.1", "server.port": free_port(), "generation.backend": "procedural",
                       "generation.width": 128, "generation.height": 128, "store.output_dir": str(tmp_path / "out"),
                       "vj.token": TOKEN, **(overrides or {})})
    board = StateBoard()
    board.publish(ShowSnapshot(size=(320, 180)))
    return BackstageProcess(cfg, Inbox(), board, "http://127.0.0.1", live=live, probe=probe)  # type: ignore[arg-type]


@pytest.fixture
def bp(tmp_path: Path) -> Iterator[BackstageProcess]:
    b = make(tmp_path, live=FakeLive())
    b.start()
    yield b
    b.stop()


def test_a_phone_prompt_becomes_an_image_in_the_show_process(bp: BackstageProcess, tmp_path: Path) -> None:
    assert bp.port is not None and bp._proc.pid != os.getpid()
    reply = asyncio.run(phone_prompt(bp.port, "a paper lantern", "phone-proc0001"))
    assert reply["state"] == "queued"
    image = bp.inbox.images.get(timeout=20)
    assert image.caption == "a paper lantern" and image.pixels.dtype == np.uint8
    assert any((tmp_path / "out").rglob("journal.sqlite3"))  # the child keeps the journal


def test_space_asks_the_child_for_an_image(bp: BackstageProcess) -> None:
    bp.request_image()
    assert bp.inbox.images.get(timeout=20).id.startswith("demo-")


def test_control_page_commands_state_and_tempo_cross_the_bridge(bp: BackstageProcess) -> None:
    bp.board.publish(ShowSnapshot(blackout=True, size=(320, 180)))

    async def go() -> None:
        async with page(bp) as p:  # type: ignore[arg-type]
            await p.until(lambda: p.parts["show"]["blackout"])  # the show's snapshot reached the child
            await p.until(lambda: p.parts["tempo"]["bpm"] == 128.0)  # and the audio engine's features
            assert p.parts["tempo"]["beats"] == 7 and p.parts["tempo"]["locked"]
            assert (await p.ask(type="command", action="next"))["type"] == "ack"

    asyncio.run(go())
    assert bp.inbox.commands.get(timeout=5).action is Action.NEXT
    deadline = time.monotonic() + 5
    while bp.board.preview_viewers != 0:  # the page left: no one watches the preview any more
        assert time.monotonic() < deadline, "the show still thinks a page watches the preview"
        time.sleep(0.02)


def test_the_backstage_process_never_loads_gl(tmp_path: Path) -> None:
    """The child serves phones, stores images and paints the HUD without moderngl, glcontext or pyglet."""
    b = make(tmp_path, {"overlay.hud": True}, probe=gl_modules)
    b.board.publish(ShowSnapshot(hud=True, size=(320, 180)))
    b.start()
    try:
        assert b.port is not None
        asyncio.run(phone_prompt(b.port, "a quiet harbour", "phone-proc0001"))
        b.inbox.images.get(timeout=20)  # a prompt went all the way through the pipeline and the journal
        b.inbox.hud.get(timeout=20)
        assert b.ask("gl?", timeout=10) == []
    finally:
        b.stop()


def test_hud_pictures_and_captures_come_and_go(tmp_path: Path) -> None:
    b = make(tmp_path, {"generation.img2img": "program"})
    b.board.publish(ShowSnapshot(hud=True, size=(320, 180)))
    b.start()
    stop = threading.Event()
    answered: list[int] = []

    def show_thread() -> None:  # answers capture requests as the render loop does
        while not stop.is_set():
            try:
                wanted = b.inbox.captures.get(timeout=0.05).answer
            except queue.Empty:
                continue
            if wanted.set_running_or_notify_cancel():
                wanted.set_result(np.full((180, 320, 3), 200, dtype=np.uint8))
                answered.append(1)

    t = threading.Thread(target=show_thread, daemon=True)
    t.start()
    try:
        hud = b.inbox.hud.get(timeout=20)
        assert hud.ndim == 3 and hud.shape[2] == 4
        assert b.port is not None
        asyncio.run(phone_prompt(b.port, "evolve the picture", "phone-proc0001"))
        image = b.inbox.images.get(timeout=20)
        assert image.caption == "evolve the picture" and answered  # image-to-image got the program frame
    finally:
        stop.set()
        b.stop()


def test_link_tempo_reaches_the_show_audio_engine(tmp_path: Path) -> None:
    """The child's tempo hand (Link) drives the real audio engine in the show's process."""
    live = FakeLive()
    b = make(tmp_path, live=live)
    b.start()
    try:
        assert b._out is not None
        b._handle(Tempo("lock_bpm", 140.0))
        assert live.locked == [140.0]
    finally:
        b.stop()


def test_a_start_failure_is_one_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        b = make(tmp_path, {"server.port": busy.getsockname()[1]})
        with pytest.raises(BackstageError, match=r"cannot listen on 127\.0\.0\.1"):
            b.start()
    assert not b._proc.is_alive()


def test_stop_ends_the_child(bp: BackstageProcess) -> None:
    pid = bp._proc.pid
    bp.stop()
    assert not bp._proc.is_alive() and bp._proc.exitcode == 0
    assert pid is not None


def test_the_child_leaves_when_the_show_process_dies(tmp_path: Path) -> None:
    """A show killed outright (SIGKILL, a crash) does not leave a server holding the port."""
    script = textwrap.dedent(f"""
        import sys, os
        sys.path.insert(0, {str(ROOT)!r})
        from tests.test_backstage_process import make
        from pathlib import Path
        b = make(Path({str(tmp_path)!r}))
        b.start()
        print(b._proc.pid, flush=True)
        os._exit(0)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    child = int(out.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(child, 9)
    pytest.fail("the backstage process outlived the show's process")


def test_mirror_board_counts_images_still_in_the_pipe() -> None:
    class Out:
        def __init__(self) -> None:
            self.items: list[Any] = []

        def put(self, item: Any) -> None:
            self.items.append(item)

    out = Out()
    images = _ProxyQueue(ImageOut, out)  # type: ignore[arg-type]
    board = MirrorBoard(out, images)  # type: ignore[arg-type]
    board.mirror(ShowSnapshot(queue_len=1), received=0)
    images.put("an image")
    images.put("another")
    assert board.read().queue_len == 3  # two sent, not yet in the show
    board.mirror(ShowSnapshot(queue_len=3), received=2)
    assert board.read().queue_len == 3
    board.preview_viewers = 2
    board.preview_viewers = 2
    assert [i for i in out.items if isinstance(i, Viewers)] == [Viewers(2)]


def test_sender_survives_a_closed_pipe() -> None:
    import multiprocessing

    a, b = multiprocessing.Pipe()
    b.close()
    a.close()
    s = Sender(a, "test-send")
    s.put(Stop())
    s.close(timeout=2)
    assert s.broken
    s.put(Stop())  # dropped, never raises


class SlowPipe:
    """A pipe end whose first send waits until the test lets it go (a show busy reading)."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.sent: list[Any] = []

    def send(self, item: Any) -> None:
        if not self.sent:
            self.go.wait(5)
        self.sent.append(item)


def test_only_the_newest_dream_frame_waits_for_a_slow_pipe() -> None:
    """Dream frames put while the pipe is busy replace each other: one is sent, the newest, after what came
    before it; memory never fills with frames nobody will see."""
    pipe = SlowPipe()
    s = Sender(pipe, "test-send")  # type: ignore[arg-type]
    s.put(Stop())  # being sent: the pipe is busy
    frames = [np.full((4, 4, 3), i, dtype=np.uint8) for i in range(5)]
    for f in frames:
        s.put_latest(DreamOut(f))
    s.put(Viewers(1))
    pipe.go.set()
    s.close(timeout=5)
    assert [type(m).__name__ for m in pipe.sent] == ["Stop", "DreamOut", "Viewers"]
    assert pipe.sent[1].pixels is frames[-1]


def test_dream_frames_and_scaled_captures_cross_the_bridge(tmp_path: Path) -> None:
    """The show side: a dream frame goes to the dream slot; a capture ask keeps the size the dream wished."""
    b = make(tmp_path)
    b._handle(DreamOut(np.zeros((4, 4, 3), dtype=np.uint8)))
    seq, frame = b.inbox.dream.latest()
    assert seq == 1 and frame is not None and frame.shape == (4, 4, 3)
    b._handle(CaptureAsk(7, longest=512))
    assert b.inbox.captures.get_nowait().longest == 512


def test_the_child_asks_for_captures_with_their_size() -> None:
    """The child's stand-in for the capture queue sends the wish's size with its number."""
    from concurrent.futures import Future

    from engine.backstage.child import _CaptureProxy
    from engine.contract import CaptureWish

    class Out:
        def __init__(self) -> None:
            self.items: list[Any] = []

        def put(self, item: Any) -> None:
            self.items.append(item)

    out = Out()
    proxy = _CaptureProxy(out)  # type: ignore[arg-type]
    wanted: Future[np.ndarray] = Future()
    proxy.put(CaptureWish(wanted, 256))
    assert out.items == [CaptureAsk(1, 256)]
    proxy.answer(1, np.zeros((2, 2, 3), dtype=np.uint8), None)
    assert wanted.result(timeout=1).shape == (2, 2, 3)


def test_a_backstage_that_dies_mid_show_is_restarted(bp: BackstageProcess) -> None:
    """A crash in the server or a generator no longer ends the audience's part of the show: a new
    backstage serves on the same port, phones reconnect, and images flow again."""
    import signal as signals

    first = bp._proc.pid if bp._proc is not None else None
    assert first is not None and bp.port is not None
    os.kill(first, signals.SIGKILL)
    deadline = time.monotonic() + 30
    while bp.restarts == 0:
        assert time.monotonic() < deadline, "the backstage was not restarted"
        time.sleep(0.05)
    assert bp._proc is not None and bp._proc.pid != first
    reply = asyncio.run(phone_prompt(bp.port, "back after the crash", "phone-proc0001"))
    assert reply["state"] == "queued"
    while True:  # the new child hears the show's state again, and its images reach the show
        image = bp.inbox.images.get(timeout=20)
        if image.caption == "back after the crash":
            break


def test_show_holdings_count_what_is_still_in_the_inbox() -> None:
    """Handed images not yet taken (by count) plus the snapshot's held ones are what a restart must know."""
    from engine.backstage.process import ShowHoldings

    h = ShowHoldings()
    for image_id in ("a", "b", "c"):
        h.handed(image_id)
    h.seen(ShowSnapshot(held=("a",), taken=1))
    assert h.now() == ("a", "b", "c")
    h.seen(ShowSnapshot(held=("b", "c"), taken=3))  # a was shown and retired between two snapshots
    assert h.now() == ("b", "c")


def test_after_a_backstage_kill_the_shows_images_are_shown_once_and_marked(tmp_path: Path) -> None:
    """Three prompts, one image on screen and one waiting when the backstage is killed: after the restart
    nothing is generated again, every image is shown once, marked shown, and every prompt ends done."""
    import signal as signals

    from engine.store import Journal

    b = make(tmp_path, {"demo.interval": 0.0})
    b.start()
    taken: list[str] = []  # what the show took from its inbox, in order
    screen: list[str] = []  # the show's line: screen[0] is on screen
    lock = threading.Lock()
    stop = threading.Event()

    def publish() -> None:
        with lock:
            b.board.publish(ShowSnapshot(size=(320, 180), current_id=screen[0] if screen else None,
                                         queue_len=max(0, len(screen) - 1), held=tuple(screen), taken=len(taken)))

    def show_thread() -> None:  # takes images as the render loop does and publishes what it holds
        while not stop.is_set():
            try:
                image = b.inbox.images.get(timeout=0.05)
            except queue.Empty:
                publish()
                continue
            with lock:
                taken.append(image.id)
                screen.append(image.id)
            publish()

    def wait(cond: Any, what: str) -> None:
        deadline = time.monotonic() + 30
        while not cond():
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    t = threading.Thread(target=show_thread, daemon=True)
    t.start()
    try:
        assert b.port is not None
        for n in range(3):
            asyncio.run(phone_prompt(b.port, f"prompt number {n} of the night", f"phone-kill{n:04d}"))
        wait(lambda: len(screen) >= 2, "the show never held two images")
        time.sleep(0.5)  # the backstage sees the first one on screen
        first = b._proc.pid if b._proc is not None else 0
        os.kill(first, signals.SIGKILL)
        wait(lambda: b.restarts == 1, "the backstage was not restarted")
        for _ in range(3):  # the show moves on: each image leaves in turn, the next comes on screen
            wait(lambda: len(screen) >= 1, "no image came")
            time.sleep(1.0)
            with lock:
                screen.pop(0)
            publish()
        wait(lambda: len(taken) >= 3 and not screen, "the third image never came")
        time.sleep(1.5)
    finally:
        stop.set()
        b.stop()
    assert len(taken) == len(set(taken)) == 3, taken  # nothing shown twice, nothing generated again
    with Journal.open(tmp_path / "out") as journal:
        prompts = journal.prompts()
        assert len(prompts) == 3 and all(p.state is State.DONE for p in prompts), [(p.text, p.state) for p in prompts]
        images = [i for p in prompts for i in journal.images(p.id)]
        assert sorted(i.id for i in images) == sorted(taken) and all(i.shown_at is not None for i in images)
