"""The control pages' conversation, on the backstage loop.

Keeps every open control page up to date (each part of the state is sent again
only when it changed), carries out what the pages ask through the ``Controls`` seam
(the backstage implements it; the hub never sees the backstage itself) and the show's
command inbox, ends logins on ``logout`` (closing the pages they opened), and streams
the preview: the show thread publishes small RGB frames on the state board while a
page wants them; they are JPEG-encoded in the worker pool and sent as binary frames,
dropped rather than queued for a slow page.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed

from engine.audio.live import Heard
from engine.commands import Command
from engine.config import Config
from engine.contract import StateBoard
from engine.control.midi_input import MidiState
from engine.control.midi_map import Control, Target
from engine.gen.images import encode
from engine.net import vj_protocol as vp
from engine.net import vj_state
from engine.net.vj_auth import session_from_cookies

log = logging.getLogger(__name__)

TICK_S = 0.1
SLOW_PARTS_S = 1.0  # backend, generation: looked at once a second
GALLERY_S = 5.0  # the gallery: when the picture changes, and every few seconds in case
MESSAGES_PER_S = 120.0  # two sliders dragged at once send about 60 a second
PARTS = ("show", "tempo", "shaders", "queue", "gallery", "generation", "backend", "midi")
LOGGED_OUT = 1008  # the close code the page reads as "log in again"


@dataclass
class Page:
    connection: ServerConnection
    session: str | None = None  # the login it was opened with
    ended: bool = False  # its login ended: closed after its last answer
    preview: bool = True
    allowance: float = MESSAGES_PER_S
    last: float = field(default_factory=time.monotonic)

    def spend(self, now: float) -> bool:
        """A message budget refilled at MESSAGES_PER_S: a stuck key or a script cannot flood the show."""
        self.allowance = min(MESSAGES_PER_S, self.allowance + (now - self.last) * MESSAGES_PER_S)
        self.last = now
        if self.allowance < 1.0:
            return False
        self.allowance -= 1.0
        return True


class Listening(Protocol):
    """The audio engine's latest features (the show's, or its mirror in the backstage process)."""

    def latest(self) -> Heard: ...


class Sessions(Protocol):
    """The logins (``vj_auth.TokenGate``): what ``logout`` ends."""

    def session_ok(self, session: str | None) -> bool: ...

    def end_session(self, session: str | None) -> None: ...

    def end_all_sessions(self) -> None: ...


class Controls(Protocol):
    """What the control page may read and do backstage; raises VjProtocolError for what it cannot."""

    @property
    def cfg(self) -> Config: ...

    def queue_version(self) -> int: ...

    def queue_state(self, now: float) -> dict[str, Any]: ...

    def midi_snapshot(self) -> MidiState | None: ...

    def gallery_state(self) -> dict[str, Any]: ...

    def generation_state(self) -> dict[str, Any]: ...

    def backend_state(self) -> dict[str, Any]: ...

    def prompt_op(self, op: str, prompt_id: str, reason: str | None = None, to: int = 0) -> None: ...

    def reshow(self, image_id: str) -> None: ...

    def vj_prompt(self, text: str) -> str: ...

    def change_settings(self, values: Mapping[str, object]) -> None: ...

    def midi_learn(self, target: Target | None) -> None: ...

    def midi_forget(self, control: Control) -> None: ...


class VjHub:
    def __init__(self, controls: Controls, board: StateBoard, commands: queue.SimpleQueue[Command],
                 pool: Executor, join_url: str, live: Listening | None = None,
                 clock: Callable[[], float] = time.monotonic, sessions: Sessions | None = None) -> None:
        self.controls = controls
        self.board = board
        self.commands = commands
        self.pool = pool
        self.join_url = join_url
        self.live = live
        self.clock = clock
        self.sessions = sessions
        self.pages: dict[ServerConnection, Page] = {}
        self.latest: dict[str, str] = {}  # part → its last message, what a new page gets first
        self._seen: dict[str, object] = {}  # part → the state it was last built from (skip rebuilding)
        self._slow_at = 0.0
        self._gallery_at = 0.0
        self._preview_seq = 0
        self._encoding = False
        self._closing: set[asyncio.Task[None]] = set()

    # --- state out -------------------------------------------------------------------
    def refresh(self, force_slow: bool = False) -> None:
        """Build the parts whose inputs changed; send the ones whose message changed."""
        ctl = self.controls
        snap = self.board.read()
        self._offer("show", vj_state.show_state(snap))
        self._offer("tempo", vj_state.tempo_state(self.live.latest() if self.live else None, ctl.cfg.audio.link))
        catalog = self.board.catalog()
        if self._changed("shaders", (catalog, snap.shader_errors)):
            self._offer("shaders", vj_state.shaders_state(catalog, snap.shader_errors))
        if self._changed("queue", ctl.queue_version()):
            self._offer("queue", ctl.queue_state(self.clock()))
        midi = ctl.midi_snapshot()
        if self._changed("midi", midi):
            self._offer("midi", vj_state.midi_state(midi))
        now = self.clock()
        new_image = self._changed("current", snap.current_id)
        if force_slow or new_image or now - self._gallery_at >= GALLERY_S:  # the journal is read only then
            self._gallery_at = now
            self._offer("gallery", ctl.gallery_state())
        if force_slow or new_image or now - self._slow_at >= SLOW_PARTS_S:
            self._slow_at = now
            self._offer("generation", ctl.generation_state())
            self._offer("backend", ctl.backend_state())

    def _changed(self, part: str, source: object) -> bool:
        old = self._seen.get(part, _NOTHING)
        self._seen[part] = source
        return old is _NOTHING or old != source

    def _offer(self, part: str, state: dict[str, Any]) -> None:
        text = vp.message(part, **state)
        if self.latest.get(part) != text:
            self.latest[part] = text
            broadcast(list(self.pages), text)

    async def run(self) -> None:
        """Refresh the pages ten times a second and pass preview frames on while anyone watches."""
        loop = asyncio.get_running_loop()
        tick = min(TICK_S, 1.0 / max(1.0, self.controls.cfg.vj.preview_fps))  # previews up to preview_fps
        refreshed = 0.0
        while True:
            await asyncio.sleep(tick)
            watchers = [p.connection for p in self.pages.values() if p.preview]
            self.board.preview_viewers = len(watchers)
            if not self.pages:
                continue
            if self.clock() - refreshed >= TICK_S:
                refreshed = self.clock()
                try:
                    self.refresh()
                except Exception:  # one bad part must not stop the page's updates
                    log.exception("control page: state update failed")
            seq, pixels = self.board.preview()
            if watchers and pixels is not None and seq != self._preview_seq and not self._encoding:
                self._preview_seq = seq
                self._encoding = True
                try:
                    jpeg = await loop.run_in_executor(self.pool, _jpeg, pixels, self.controls.cfg.vj.preview_quality)
                finally:
                    self._encoding = False
                broadcast([p.connection for p in self.pages.values() if p.preview], jpeg)

    # --- one page ----------------------------------------------------------------------
    async def handle(self, connection: ServerConnection) -> None:
        request = connection.request
        page = Page(connection, session_from_cookies(request.headers.get_all("Cookie")) if request else None)
        self.pages[connection] = page
        log.info("control page connected from %s", connection.remote_address[0] if connection.remote_address
                 else "?")
        try:
            self.refresh(force_slow=True)
            cfg = self.controls.cfg
            await connection.send(vp.message("hello", version=1, moderation=cfg.audience.moderation,
                                             join_url=self.join_url))
            for part in PARTS:
                if part in self.latest:
                    await connection.send(self.latest[part])
            async for frame in connection:
                reply = self.answer(page, frame)
                if reply is not None:
                    await connection.send(reply)
                if page.ended:
                    await connection.close(LOGGED_OUT, "logged out")
        except ConnectionClosed:
            pass
        finally:
            self.pages.pop(connection, None)  # run() recounts the preview's viewers at its next tick

    def answer(self, page: Page, frame: str | bytes) -> str | None:
        """One message from a page → what to tell it (ack, error or pong)."""
        within = page.spend(self.clock())
        try:
            req = vp.parse(frame)
        except vp.VjProtocolError as err:
            return vp.error(err.code, err.message, err.ref)
        if not within:
            return vp.error("too_fast", "Too many messages: slow down.", req.ref)
        try:
            return self._carry_out(page, req)
        except vp.VjProtocolError as err:
            return vp.error(err.code, err.message, req.ref)
        except Exception as err:  # the page hears it; the show goes on
            log.exception("control page request failed")
            return vp.error("failed", f"{type(err).__name__}: {err}", req.ref)

    def _carry_out(self, page: Page, req: vp.VjRequest) -> str | None:
        ctl = self.controls
        if isinstance(req, vp.PingReq):
            return vp.message("pong", ref=req.ref)
        if isinstance(req, vp.PreviewReq):
            page.preview = req.on
            return None
        if isinstance(req, vp.CommandReq):
            self.commands.put(req.command)
            return vp.ack(req.ref)
        if isinstance(req, vp.LogoutReq):
            self._log_out(page, req.everywhere)
            return vp.ack(req.ref)
        if isinstance(req, vp.PromptOp):
            ctl.prompt_op(req.op, req.id, req.reason, req.to)
        elif isinstance(req, vp.ReshowReq):
            ctl.reshow(req.image)
        elif isinstance(req, vp.VjPromptReq):
            return vp.ack(req.ref, id=ctl.vj_prompt(req.text))
        elif isinstance(req, vp.SettingsReq):
            ctl.change_settings(req.values)
            self.refresh(force_slow=True)
        elif isinstance(req, vp.MidiLearnReq):
            ctl.midi_learn(req.target)
        elif isinstance(req, vp.MidiForgetReq):
            ctl.midi_forget(req.control)
        self.refresh()
        return vp.ack(req.ref)

    def _log_out(self, page: Page, everywhere: bool) -> None:
        """End the login (or all of them); every page left without one is closed."""
        sessions = self.sessions
        if sessions is None:
            raise vp.VjProtocolError("failed", "this control page has no login to end")
        if everywhere:
            sessions.end_all_sessions()
        else:
            sessions.end_session(page.session)
        log.info("control page: logged out%s", " everywhere" if everywhere else "")
        for other in self.pages.values():
            if other.ended or sessions.session_ok(other.session):
                continue
            other.ended = True
            if other is not page:  # this page is closed after its ack (handle)
                task = asyncio.get_running_loop().create_task(other.connection.close(LOGGED_OUT, "logged out"))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)


_NOTHING = object()


def _jpeg(rgb: np.ndarray, quality: int) -> bytes:
    return encode(rgb, "jpeg", quality=quality)
