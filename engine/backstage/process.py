"""The backstage in a process of its own, so the crowd never makes the projector stutter.

With the server in the show's process, ten thousand phones meant the render thread
fought the asyncio loop for the interpreter lock, and a full garbage collection over
every connection's objects froze frames for half a second (docs: bench/audience.py).
Here the same ``Backstage`` runs in a spawned child; the show's process keeps only
the render thread, the audio thread and two bridge threads:

- child → show: images, commands, HUD pictures, dream frames (only the newest waits), capture
  requests, tempo changes from Link, and how many control pages watch the preview, sent by a
  sender thread so the backstage loop never waits on the pipe;
- show → child: the show's snapshot, the shader catalog, the audio engine's latest
  features (50 times a second), preview pictures, Space's "make an image", P's
  "a pairing code", answers to captures, and "stop".

The child's side (its stand-ins for the show's board, audio engine and inbox) is in ``child.py``;
this module is the show's side. The pipe
carries the frozen messages of ``messages.py``, one dispatcher on each side.

This module, and everything the child imports, never imports moderngl or pyglet: the child
has no GL and must not pay for it (a test checks ``sys.modules`` there).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from engine.audio.live import Heard, LiveAudio
from engine.config import Config
from engine.contract import CaptureWish, Inbox, ShowSnapshot, StateBoard
from engine.errors import BackstageError

from .child import Probe, Sender, _child
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
    ToShow,
    Viewers,
)

log = logging.getLogger(__name__)

PUBLISH_S = 0.02  # show state to the child 50 times a second (beats reach OSC within a frame or so)
START_TIMEOUT_S = 60.0


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
    out: Sender


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
        self._closing = False  # begin_shutdown's flag: a plain attribute, so a signal handler may set it
        self._threads: list[threading.Thread] = []
        self._received = 0
        self._last_proc: multiprocessing.process.BaseProcess | None = None  # also one that failed at start
        self.holdings = ShowHoldings()
        self.restarts = 0

    @property
    def _proc(self) -> multiprocessing.process.BaseProcess | None:
        return self._link.proc if self._link is not None else self._last_proc

    @property
    def _out(self) -> Sender | None:
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

    def _launch(self, restart: bool = False) -> _Link:
        """A new child, once it serves; a restart is given up as soon as the show begins to stop."""
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
            if (restart and self._stopping) or time.monotonic() > deadline:
                proc.kill()  # not terminate(): the child ignores SIGTERM
                proc.join(5)
                conn.close()
                if restart and self._stopping:
                    raise BackstageError("the show is stopping")
                raise BackstageError(f"the backstage did not start within {START_TIMEOUT_S:.0f} s")
        try:
            first = conn.recv()
        except (EOFError, OSError) as err:  # the child died between "ready to read" and its first word
            conn.close()
            raise BackstageError(f"the backstage process exited at start (code {proc.exitcode})") from err
        if not isinstance(first, Ready):
            proc.join(10)
            conn.close()
            raise BackstageError(first.reason if isinstance(first, Failed) else f"the backstage said {first!r}")
        self.port, self.vj_url = first.port, first.vj_url
        self._received = 0
        return _Link(proc, conn, Sender(conn, "backstage-bridge-send"))

    def _restart(self) -> None:
        """The backstage died mid-show: start a new one (the journal resumes its prompts, phones reconnect)."""
        delay = 1.0
        while not self._stopping:
            try:
                link = self._launch(restart=True)
            except BackstageError as err:
                if self._stopping:
                    return
                log.error("the backstage could not restart (%s); trying again in %.0f s", err, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
                continue
            if self._stopping:  # the show began to stop while this one started: it never joins the show
                self._end(link, timeout=5.0)
                link.conn.close()
                return
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

    def pair(self) -> None:
        if (link := self._link) is not None:
            link.out.put(Pair())

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

    def begin_shutdown(self) -> None:
        """The show is stopping: from now on a backstage that dies stays dead, never restarted.

        The signal handler calls it first, before the child's death can reach the receive thread.
        Safe there: a plain assignment, where ``Event.set`` takes a lock the interrupted thread may hold.
        """
        self._closing = True

    @property
    def _stopping(self) -> bool:
        return self._closing or self._stop.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        self.begin_shutdown()
        self._stop.set()
        link = self._link
        if link is not None:
            self._end(link, timeout)
        elif (proc := self._proc) is not None:
            self._reap(proc, timeout)
        for t in self._threads:
            t.join(2.0)
        late = self._link  # a restart that finished just as the show began to stop
        if late is not None and late is not link:
            self._end(late, 5.0)
        if (last := self._last_proc) is not None and last.is_alive():  # one still starting when the threads gave up
            self._reap(last, 0.0)
        for ended in (link, late):  # only now: a pipe closed under the receive thread could be reused by another
            if ended is not None:
                with contextlib.suppress(OSError):
                    ended.conn.close()

    def _end(self, link: _Link, timeout: float) -> None:
        """Tell one child to stop and wait for it (its pipe stays open for the receive thread)."""
        link.out.put(Stop())
        link.out.close(timeout=2.0)
        self._reap(link.proc, timeout)

    @staticmethod
    def _reap(proc: multiprocessing.process.BaseProcess, timeout: float) -> None:
        proc.join(timeout)
        if proc.is_alive():
            if timeout:
                log.warning("the backstage process did not stop within %.0f s; killing it", timeout)
            proc.kill()  # not terminate(): the child ignores SIGTERM, which the show's process answers for it
            proc.join(5)

    # --- bridge threads ---------------------------------------------------------------------
    def _receive(self) -> None:
        """What the child sends, into the show's inbox (never the render thread's work)."""
        while not self._stopping:
            link = self._link
            assert link is not None
            try:
                msg = link.conn.recv()
            except (EOFError, OSError):
                if self._stopping:  # the show is stopping: its backstage ends with it
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
            case DreamOut(pixels):
                self.inbox.dream.put(pixels)
            case Viewers(count):
                self.board.preview_viewers = int(count)
            case CaptureAsk(number, longest):
                self._capture(number, longest)
            case ProbeAnswer(value):
                self._answers.put(value)
            case Tempo(op, value) if self.live is not None:
                if op == "lock_bpm":
                    self.live.lock_bpm(value)
                else:
                    self.live.resync(value)

    def _capture(self, n: int, longest: int = 0) -> None:
        wanted: Future[np.ndarray] = Future()

        def answered(done: Future[np.ndarray]) -> None:  # on the render thread: only a hand-off
            error = done.exception()
            link = self._link
            if link is not None:
                link.out.put(Captured(n, None if error else done.result(), str(error) if error else None))

        wanted.add_done_callback(answered)
        self.inbox.captures.put(CaptureWish(wanted, longest))

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
