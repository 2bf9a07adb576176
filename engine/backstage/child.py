"""The backstage process's side of the bridge: the same Backstage, with stand-ins for the show.

Inside the child, ``MirrorBoard``, ``LiveMirror`` and proxy queues stand in for the show's
``StateBoard``, ``LiveAudio`` and ``Inbox``, so ``Backstage`` runs unchanged; ``_ChildSide`` is this
side's one dispatcher. ``Sender`` (used by both sides) sends through a thread of its own, so no
caller ever waits on the pipe. Nothing here imports moderngl or pyglet (a test checks the child).
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import logging
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import numpy as np

from engine.audio.input import AudioStatus
from engine.audio.live import Heard, LiveAudio
from engine.backstage import chores
from engine.config import Config
from engine.contract import CaptureWish, Inbox, ShowSnapshot, StateBoard
from engine.errors import EngineError
from engine.logs import setup_logging
from engine.store import Journal

from .messages import (
    CaptureAsk,
    Captured,
    CatalogIn,
    CommandOut,
    DreamOut,
    Failed,
    HeardIn,
    HudOut,
    ImageOut,
    Pair,
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

log = logging.getLogger("engine.backstage.process")  # one name in the log for both sides of the bridge

PR_SET_PDEATHSIG = 1  # linux/prctl.h
NO_HEARD = Heard(None, 0, AudioStatus("none", False, "no audio"), None)

# A benchmark's or a diagnostic's question to the backstage, answered in the child: a module-level
# function (it is pickled to the child), called on the child's bridge thread.
Probe = Callable[[Backstage, Any], Any]


class _Newest:
    """A place in the send queue for "the newest of its kind": its value is read when its turn comes."""


class Sender:
    """Sends from any thread through one thread, so no caller ever waits on the pipe.

    ``put_latest`` is for a stream where only the newest counts (dream frames): one place in the queue,
    whose value each new item replaces until it is sent; at most one item of it ever waits, however slow
    the pipe.
    """

    def __init__(self, conn: Connection, name: str) -> None:
        self.conn = conn
        self.items: queue.SimpleQueue[ToShow | ToBackstage | _Newest | None] = queue.SimpleQueue()
        self.broken = False
        self._newest_lock = threading.Lock()  # between the putting thread and the sending thread, never the show's
        self._newest: ToShow | ToBackstage | None = None
        self._newest_queued = False
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def put(self, item: ToShow | ToBackstage) -> None:
        if not self.broken:
            self.items.put(item)

    def put_latest(self, item: ToShow | ToBackstage) -> None:
        """Send ``item`` unless a newer one comes before its turn (it then replaces it)."""
        if self.broken:
            return
        with self._newest_lock:
            self._newest = item
            if self._newest_queued:
                return
            self._newest_queued = True
        self.items.put(_Newest())

    def _take_newest(self) -> ToShow | ToBackstage | None:
        with self._newest_lock:
            item, self._newest, self._newest_queued = self._newest, None, False
        return item

    def _run(self) -> None:
        while (item := self.items.get()) is not None:
            if isinstance(item, _Newest) and (item := self._take_newest()) is None:
                continue
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

    def __init__(self, wrap: Callable[[Any], ToShow], out: Sender) -> None:
        self.wrap = wrap
        self.out = out
        self.sent = 0

    def put(self, item: object, block: bool = True, timeout: float | None = None) -> None:
        self.sent += 1
        self.out.put(self.wrap(item))

    def qsize(self) -> int:
        return 0


class _LatestProxy:
    """The dream slot's stand-in: what the backstage puts travels to the show, only the newest when the pipe lags."""

    def __init__(self, out: Sender) -> None:
        self.out = out

    def put(self, frame: np.ndarray | None, block: bool = True, timeout: float | None = None) -> None:
        self.out.put_latest(DreamOut(frame))


class _CaptureProxy:
    """Capture requests wait here, by number, for the show's answer."""

    def __init__(self, out: Sender) -> None:
        self.out = out
        self.waiting: dict[int, Future[np.ndarray]] = {}
        self._ids = itertools.count(1)

    def put(self, wish: CaptureWish, block: bool = True, timeout: float | None = None) -> None:
        n = next(self._ids)
        self.waiting[n] = wish.answer
        self.out.put(CaptureAsk(n, wish.longest))

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

    def __init__(self, out: Sender | None = None, images: _ProxyQueue | None = None) -> None:
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

    def __init__(self, out: Sender) -> None:
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
    # Ctrl+C, and a SIGTERM sent to the whole group (systemd, a closed terminal), go to the show's process
    # too, which says "stop": dying of them here would look like a crash to the show, mid-shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if cfg.server.backstage_nice and hasattr(os, "nice"):
        os.nice(cfg.server.backstage_nice)  # short of CPU, the projector's frames come before the crowd's answers
    parent = os.getppid()
    _die_with_parent()
    chores.one_heap()  # before the pool's threads: see there
    out = Sender(conn, "backstage-send")
    images = _ProxyQueue(ImageOut, out)
    captures = _CaptureProxy(out)
    inbox = Inbox(images=cast(Any, images), commands=cast(Any, _ProxyQueue(CommandOut, out)),
                  hud=cast(Any, _ProxyQueue(HudOut, out)), captures=cast(Any, captures),
                  dream=cast(Any, _LatestProxy(out)))
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
                 out: Sender, probe: Probe | None) -> None:
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
            case Pair():
                self.backstage.pair()
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
