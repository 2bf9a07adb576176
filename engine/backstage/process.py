"""The backstage in a process of its own, so the crowd never makes the projector stutter.

With the server in the show's process, ten thousand phones meant the render thread
fought the asyncio loop for the interpreter lock, and a full garbage collection over
every connection's objects froze frames for half a second (docs: bench/audience.py).
Here the same ``Backstage`` runs in a spawned child; the show's process keeps only
the render thread, the audio thread and two bridge threads:

- child → show: images, commands, HUD pictures, capture requests, tempo changes from
  Link, and how many control pages watch the preview, sent by a sender thread so the
  backstage loop never waits on the pipe;
- show → child: the show's snapshot, the shader catalog, the audio engine's latest
  features (50 times a second), preview pictures, Space's "make an image", answers
  to captures, and "stop".

Inside the child, ``MirrorBoard``, ``LiveMirror`` and proxy queues stand in for the
show's ``StateBoard``, ``LiveAudio`` and ``Inbox``, so ``Backstage`` runs unchanged. The pipe
carries the frozen messages of ``messages.py``, one dispatcher on each side.

This module, and everything the child imports, never imports moderngl or pyglet: the child
has no GL and must not pay for it (a test checks ``sys.modules`` there).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import itertools
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import numpy as np

from engine.audio.input import AudioStatus
from engine.audio.live import Heard, LiveAudio
from engine.config import Config
from engine.contract import Inbox, ShowSnapshot, StateBoard
from engine.errors import BackstageError, EngineError
from engine.logs import setup_logging
from engine.store import Journal

from .messages import (
    CaptureAsk,
    Captured,
    CatalogIn,
    CommandOut,
    Failed,
    HeardIn,
    HudOut,
    ImageOut,
    PreviewIn,
    ProbeAnswer,
    ProbeAsk,
    Ready,
    RequestImage,
    SnapshotIn,
    Stop,
    Tempo,
    ToBackstage,
    ToShow,
    Viewers,
)
from .runner import Backstage

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # linux/prctl.h
PUBLISH_S = 0.02  # show state to the child 50 times a second (beats reach OSC within a frame or so)
START_TIMEOUT_S = 60.0
NO_HEARD = Heard(None, 0, AudioStatus("none", False, "no audio"), None)

# A benchmark's or a diagnostic's question to the backstage, answered in the child: a module-level
# function (it is pickled to the child), called on the child's bridge thread.
Probe = Callable[[Backstage, Any], Any]


class _Sender:
    """Sends from any thread through one thread, so no caller ever waits on the pipe."""

    def __init__(self, conn: Connection, name: str) -> None:
        self.conn = conn
        self.items: queue.SimpleQueue[ToShow | ToBackstage | None] = queue.SimpleQueue()
        self.broken = False
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def put(self, item: ToShow | ToBackstage) -> None:
        if not self.broken:
            self.items.put(item)

    def _run(self) -> None:
        while (item := self.items.get()) is not None:
            try:
                self.conn.send(item)
            except (OSError, ValueError):  # the other side is gone
                self.broken = True
                return

    def close(self, timeout: float = 5.0) -> None:
        self.items.put(None)
        self.thread.join(timeout)


# --- inside the child ------------------------------------------------------------------------------
class _ProxyQueue:
    """What the backstage puts into an inbox queue travels to the show's process, wrapped by ``wrap``."""

    def __init__(self, wrap: Callable[[Any], ToShow], out: _Sender) -> None:
        self.wrap = wrap
        self.out = out
        self.sent = 0

    def put(self, item: object, block: bool = True, timeout: float | None = None) -> None:
        self.sent += 1
        self.out.put(self.wrap(item))

    def qsize(self) -> int:
        return 0


class _CaptureProxy:
    """Capture requests wait here, by number, for the show's answer."""

    def __init__(self, out: _Sender) -> None:
        self.out = out
        self.waiting: dict[int, Future[np.ndarray]] = {}
        self._ids = itertools.count(1)

    def put(self, wanted: Future[np.ndarray], block: bool = True, timeout: float | None = None) -> None:
        n = next(self._ids)
        self.waiting[n] = wanted
        self.out.put(CaptureAsk(n))

    def answer(self, n: int, pixels: np.ndarray | None, error: str | None) -> None:
        wanted = self.waiting.pop(n, None)
        if wanted is None or not wanted.set_running_or_notify_cancel():
            return
        if pixels is not None:
            wanted.set_result(pixels)
        else:
            wanted.set_exception(EngineError(error or "capture failed"))


class MirrorBoard(StateBoard):
    """The show's state board as last heard from the show's process.

    ``read()`` counts the images still on their way through the pipe in ``queue_len``, so the
    pipeline does not run ahead of the show.

    Threads: the child's bridge loop (its main thread, ``_ChildSide``) is the only writer of the
    mirrored snapshot, catalog, preview and ``_received``; the backstage loop is the only writer of
    ``preview_viewers``. Each is replaced whole, so a reader on the other thread sees old or new.
    """

    def __init__(self, out: _Sender | None = None, images: _ProxyQueue | None = None) -> None:
        self._out = out
        self._images = images
        self._received = 0
        self._viewers = 0
        super().__init__()

    @property
    def preview_viewers(self) -> int:
        return self._viewers

    @preview_viewers.setter
    def preview_viewers(self, n: int) -> None:
        if n != self._viewers and self._out is not None:
            self._out.put(Viewers(n))
        self._viewers = n

    def mirror(self, snapshot: ShowSnapshot, received: int) -> None:
        self._received = received
        self.publish(snapshot)

    def read(self) -> ShowSnapshot:
        snap = super().read()
        in_flight = (self._images.sent if self._images else 0) - self._received
        return dataclasses.replace(snap, queue_len=snap.queue_len + in_flight) if in_flight > 0 else snap


class LiveMirror:
    """The audio engine as the backstage sees it: its latest features, and a hand on its tempo (Link)."""

    def __init__(self, out: _Sender) -> None:
        self.out = out
        self.heard = NO_HEARD

    def latest(self) -> Heard:
        return self.heard

    def lock_bpm(self, bpm: float | None) -> None:
        self.out.put(Tempo("lock_bpm", bpm))

    def resync(self, at: float | None = None) -> None:
        self.out.put(Tempo("resync", at))  # monotonic time is the same clock in both processes


def _die_with_parent() -> None:
    """On Linux the kernel ends this process the moment the show's process dies (a crash, SIGKILL), so
    it never holds the port against the restarted show; elsewhere the bridge notices within 0.5 s."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _child(conn: Connection, cfg: Config, join_url: str, probe: Probe | None = None,
           held: tuple[str, ...] = ()) -> None:
    """The backstage process: the same Backstage, its inbox and board bridged over ``conn``."""
    setup_logging(cfg.log.level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C goes to the show's process, which says "stop"
    if cfg.server.backstage_nice and hasattr(os, "nice"):
        os.nice(cfg.server.backstage_nice)  # short of CPU, the projector's frames come before the crowd's answers
    parent = os.getppid()
    _die_with_parent()
    out = _Sender(conn, "backstage-send")
    images = _ProxyQueue(ImageOut, out)
    captures = _CaptureProxy(out)
    inbox = Inbox(images=cast(Any, images), commands=cast(Any, _ProxyQueue(CommandOut, out)),
                  hud=cast(Any, _ProxyQueue(HudOut, out)), captures=cast(Any, captures))
    board = MirrorBoard(out, images)
    live = LiveMirror(out)
    journal: Journal | None = None
    backstage: Backstage | None = None
    try:
        try:
            journal = Journal.open(Path(cfg.store.output_dir))
            log.info("show journal and images in %s", journal.folder)
            backstage = Backstage(cfg, inbox, board, join_url, journal=journal, live=cast(LiveAudio, live),
                                  held_by_show=held)
            backstage.start()
        except EngineError as err:
            out.put(Failed(str(err)))
            return
        gc.collect()
        gc.freeze()  # start-up objects live all show: keep them out of every collection
        out.put(Ready(backstage.port, backstage.vj_url))
        side = _ChildSide(backstage, board, live, captures, out, probe)
        while True:
            if not conn.poll(0.5):
                if os.getppid() != parent:  # the show's process is gone
                    log.warning("the show's process is gone: the backstage stops")
                    return
                continue
            if not side.handle(conn.recv()):
                return
    except (EOFError, OSError):
        return
    finally:
        if backstage is not None:
            backstage.stop()
        if journal is not None:
            journal.close()
        out.close()


class _ChildSide:
    """The backstage process's one dispatcher: what the show sends, to the parts that stand in for it.

    Runs on the child's main thread only (the bridge loop in ``_child``).
    """

    def __init__(self, backstage: Backstage, board: MirrorBoard, live: LiveMirror, captures: _CaptureProxy,
                 out: _Sender, probe: Probe | None) -> None:
        self.backstage = backstage
        self.board = board
        self.live = live
        self.captures = captures
        self.out = out
        self.probe = probe

    def handle(self, msg: ToBackstage) -> bool:
        """Carry out one message; False when the show said stop."""
        match msg:
            case SnapshotIn(snapshot, received):
                self.board.mirror(snapshot, received)
            case HeardIn(heard):
                self.live.heard = heard
            case CatalogIn(catalog):
                self.board.publish_catalog(catalog)
            case PreviewIn(pixels):
                self.board.publish_preview(pixels)
            case RequestImage():
                self.backstage.request_image()
            case Captured(number, pixels, error):
                self.captures.answer(number, pixels, error)
            case ProbeAsk(question) if self.probe is not None:
                try:
                    self.out.put(ProbeAnswer(self.probe(self.backstage, question)))
                except Exception as err:
                    self.out.put(ProbeAnswer(err))
            case Stop():
                return False
        return True


# --- in the show's process -------------------------------------------------------------------------
def _light(heard: Heard) -> Heard:
    """The features without their spectrum and waveform arrays (shaders only; the backstage reads numbers)."""
    f = heard.features
    if f is None:
        return heard
    return dataclasses.replace(heard, features=dataclasses.replace(f, spectrum=_EMPTY, waveform=_EMPTY))


_EMPTY = np.zeros(0, dtype=np.float32)


class ShowHoldings:
    """The images in the show's hands, which a restarted backstage must not generate or lose again.

    The inbox is first in, first out, and the show counts what it takes (``ShowSnapshot.taken``): so
    the images handed to the inbox and not yet taken are the last ``handed - taken`` ones, and with
    the snapshot's ``held`` (taken and not yet retired) that is everything the show holds.

    Threads: the receive thread calls ``handed``, the publish thread ``seen``, a restart ``now``;
    one lock, held for a few list operations.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_inbox: deque[str] = deque()
        self._handed = 0  # images handed to the inbox since the show started
        self._held: tuple[str, ...] = ()

    def handed(self, image_id: str) -> None:
        with self._lock:
            self._in_inbox.append(image_id)
            self._handed += 1

    def seen(self, snapshot: ShowSnapshot) -> None:
        with self._lock:
            self._held = snapshot.held
            while self._in_inbox and self._handed - len(self._in_inbox) < snapshot.taken:
                self._in_inbox.popleft()

    def now(self) -> tuple[str, ...]:
        with self._lock:
            return (*self._held, *self._in_inbox)


@dataclass(frozen=True)
class _Link:
    """One backstage child and the pipe to it; replaced whole on a restart, so a reader sees one or the other."""

    proc: multiprocessing.process.BaseProcess
    conn: Connection
    out: _Sender


class BackstageProcess:
    """``Backstage``'s interface for ``engine.app``, with the backstage in a process of its own.

    Threads and what each owns:
    - the caller's thread (the show's main thread) runs ``start`` and ``stop``, and ``request_image``;
    - the receive thread is the only writer of ``_link`` after start (a restart swaps it whole),
      of ``_received`` (reset with each new link), of ``port``, ``vj_url`` and ``restarts``;
    - the publish thread only reads: it takes ``_link`` once per round, and a link it has not seen
      before gets everything again (a new child knows nothing yet).
    """

    def __init__(self, cfg: Config, inbox: Inbox, board: StateBoard, join_url: str,
                 live: LiveAudio | None = None, probe: Probe | None = None) -> None:
        self.cfg = cfg
        self.inbox = inbox
        self.board = board
        self.join_url = join_url
        self.live = live
        self.port: int | None = None
        self.vj_url = ""
        self._probe = probe
        self._link: _Link | None = None
        self._answers: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._received = 0
        self._last_proc: multiprocessing.process.BaseProcess | None = None  # also one that failed at start
        self.holdings = ShowHoldings()
        self.restarts = 0

    @property
    def _proc(self) -> multiprocessing.process.BaseProcess | None:
        return self._link.proc if self._link is not None else self._last_proc

    @property
    def _out(self) -> _Sender | None:
        return self._link.out if self._link is not None else None

    def start(self) -> None:
        """Start the child and wait until it serves; raise BackstageError with its reason if it cannot.

        Call it from the thread that lives as long as the show (the main thread): on Linux the child
        is ended when the thread that started it ends.
        """
        self._link = self._launch()
        for target, name in ((self._receive, "backstage-bridge-recv"), (self._publish, "backstage-bridge-state")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def _launch(self) -> _Link:
        ctx = multiprocessing.get_context("spawn")  # no fork: this process holds GL contexts and threads
        conn, child_conn = ctx.Pipe()
        held = self.holdings.now()  # a restarted backstage resumes around what the show already holds
        proc = ctx.Process(target=_child, args=(child_conn, self.cfg, self.join_url, self._probe, held),
                           name="stagecraft-backstage", daemon=True)
        self._last_proc = proc
        proc.start()
        child_conn.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not conn.poll(0.2):
            if not proc.is_alive():
                conn.close()
                raise BackstageError(f"the backstage process exited at start (code {proc.exitcode})")
            if time.monotonic() > deadline:
                proc.terminate()
                conn.close()
                raise BackstageError(f"the backstage did not start within {START_TIMEOUT_S:.0f} s")
        first = conn.recv()
        if not isinstance(first, Ready):
            proc.join(10)
            conn.close()
            raise BackstageError(first.reason if isinstance(first, Failed) else f"the backstage said {first!r}")
        self.port, self.vj_url = first.port, first.vj_url
        self._received = 0
        return _Link(proc, conn, _Sender(conn, "backstage-bridge-send"))

    def _restart(self) -> None:
        """The backstage died mid-show: start a new one (the journal resumes its prompts, phones reconnect)."""
        delay = 1.0
        while not self._stop.is_set():
            try:
                link = self._launch()
            except BackstageError as err:
                log.error("the backstage could not restart (%s); trying again in %.0f s", err, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
                continue
            old, self._link = self._link, link
            if old is not None:
                old.out.close(timeout=0.5)
            self.restarts += 1
            log.warning("the backstage is back (restart %d): phones reconnect by themselves", self.restarts)
            return

    def request_image(self) -> None:
        link = self._link
        if link is not None:
            link.out.put(RequestImage())

    def ask(self, question: Any, timeout: float) -> Any:
        """Ask the child's probe (benchmarks); its answer, or its exception raised here."""
        link = self._link
        if link is None:
            raise BackstageError("the backstage process is not running")
        link.out.put(ProbeAsk(question))
        answer = self._answers.get(timeout=timeout)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        link = self._link
        if link is not None:
            link.out.put(Stop())
            link.out.close(timeout=2.0)
        proc = self._proc
        if proc is not None:
            proc.join(timeout)
            if proc.is_alive():
                log.warning("the backstage process did not stop within %.0f s; terminating it", timeout)
                proc.terminate()
                proc.join(5)
        for t in self._threads:
            t.join(2.0)
        if link is not None:
            with contextlib.suppress(OSError):
                link.conn.close()

    # --- bridge threads ---------------------------------------------------------------------
    def _receive(self) -> None:
        """What the child sends, into the show's inbox (never the render thread's work)."""
        while not self._stop.is_set():
            link = self._link
            assert link is not None
            try:
                msg = link.conn.recv()
            except (EOFError, OSError):
                if self._stop.is_set():
                    return
                log.error("the backstage process died (exit code %s): the show goes on, restarting it",
                          link.proc.exitcode)
                self._restart()
                continue
            try:
                self._handle(msg)
            except Exception:  # one odd message never stops the bridge
                log.exception("backstage bridge: could not handle %s", type(msg).__name__)

    def _handle(self, msg: ToShow) -> None:
        """The show side's one dispatcher (the receive thread)."""
        match msg:
            case ImageOut(image):
                self.holdings.handed(image.id)
                self.inbox.images.put(image)
                self._received += 1
            case CommandOut(command):
                self.inbox.commands.put(command)
            case HudOut(pixels):
                self.inbox.hud.put(pixels)
            case Viewers(count):
                self.board.preview_viewers = int(count)
            case CaptureAsk(number):
                self._capture(number)
            case ProbeAnswer(value):
                self._answers.put(value)
            case Tempo(op, value) if self.live is not None:
                if op == "lock_bpm":
                    self.live.lock_bpm(value)
                else:
                    self.live.resync(value)

    def _capture(self, n: int) -> None:
        wanted: Future[np.ndarray] = Future()

        def answered(done: Future[np.ndarray]) -> None:  # on the render thread: only a hand-off
            error = done.exception()
            link = self._link
            if link is not None:
                link.out.put(Captured(n, None if error else done.result(), str(error) if error else None))

        wanted.add_done_callback(answered)
        self.inbox.captures.put(wanted)

    def _publish(self) -> None:
        """The show's state to the child, whenever it changed, 50 times a second at most."""
        seen: _Link | None = None
        snap: ShowSnapshot | None = None
        catalog: object = None
        seq = 0
        heard: object = None
        while not self._stop.wait(PUBLISH_S):
            link = self._link
            if link is None or link.out.broken:
                continue  # between a dead child and its replacement
            if link is not seen:  # a new child knows nothing yet
                seen, snap, catalog, seq, heard = link, None, None, 0, None
            out = link.out
            board = self.board
            received = self._received
            now_snap = board.read()
            if now_snap is not snap:
                snap = now_snap
                self.holdings.seen(snap)
                out.put(SnapshotIn(snap, received))
            if board.catalog() is not catalog:
                catalog = board.catalog()
                out.put(CatalogIn(board.catalog()))
            now_seq, pixels = board.preview()
            if now_seq != seq and pixels is not None:
                seq = now_seq
                out.put(PreviewIn(pixels))
            if self.live is not None:
                now_heard = self.live.latest()
                if now_heard is not heard:
                    heard = now_heard
                    out.put(HeardIn(_light(now_heard)))
