"""The control pages' conversation, on the backstage loop.

Keeps every open control page up to date (each part of the state is sent again
only when it changed), carries out what the pages ask through the backstage and
the show's command inbox, and streams the preview: the show thread publishes
small RGB frames on the state board while a page wants them; they are JPEG-encoded
in the worker pool and sent as binary frames, dropped rather than queued for a
slow page.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed

from engine.net import vj_protocol as vp
from engine.net import vj_state

if TYPE_CHECKING:
    from engine.backstage import Backstage

log = logging.getLogger(__name__)

TICK_S = 0.1
SLOW_PARTS_S = 1.0  # backend, generation: looked at once a second
GALLERY_S = 5.0  # the gallery: when the picture changes, and every few seconds in case
MESSAGES_PER_S = 120.0  # two sliders dragged at once send about 60 a second
PARTS = ("show", "tempo", "shaders", "queue", "gallery", "generation", "backend", "midi")


@dataclass
class Page:
    connection: ServerConnection
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


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


class VjHub:
    def __init__(self, backstage: Backstage, clock: Callable[[], float] = time.monotonic) -> None:
        self.bs = backstage
        self.clock = clock
        self.pages: dict[ServerConnection, Page] = {}
        self.latest: dict[str, str] = {}  # part → its last message, what a new page gets first
        self._seen: dict[str, object] = {}  # part → the state it was last built from (skip rebuilding)
        self._slow_at = 0.0
        self._gallery_at = 0.0
        self._preview_seq = 0
        self._encoding = False

    # --- state out -------------------------------------------------------------------
    def refresh(self, force_slow: bool = False) -> None:
        """Build the parts whose inputs changed; send the ones whose message changed."""
        bs = self.bs
        snap = bs.board.read()
        self._offer("show", vj_state.show_state(snap))
        self._offer("tempo", vj_state.tempo_state(bs.live.latest() if bs.live else None, bs.cfg.audio.link))
        catalog = bs.board.catalog()
        if self._changed("shaders", (catalog, snap.shader_errors)):
            self._offer("shaders", vj_state.shaders_state(catalog, snap.shader_errors))
        if bs.audience is not None and self._changed("queue", bs.audience.version):
            self._offer("queue", vj_state.queue_state(bs.audience, self.clock()))
        midi = bs.midi.snapshot() if bs.midi is not None else None
        if self._changed("midi", midi):
            self._offer("midi", vj_state.midi_state(midi))
        now = self.clock()
        new_image = self._changed("current", snap.current_id)
        if force_slow or new_image or now - self._gallery_at >= GALLERY_S:  # the journal is read only then
            self._gallery_at = now
            self._offer("gallery", bs.gallery_state())
        if force_slow or new_image or now - self._slow_at >= SLOW_PARTS_S:
            self._slow_at = now
            self._offer("generation", bs.generation_state())
            self._offer("backend", bs.backend_state())

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
        tick = min(TICK_S, 1.0 / max(1.0, self.bs.cfg.vj.preview_fps))  # previews up to preview_fps
        refreshed = 0.0
        while True:
            await asyncio.sleep(tick)
            watchers = [p.connection for p in self.pages.values() if p.preview]
            self.bs.board.preview_viewers = len(watchers)
            if not self.pages:
                continue
            if self.clock() - refreshed >= TICK_S:
                refreshed = self.clock()
                try:
                    self.refresh()
                except Exception:  # one bad part must not stop the page's updates
                    log.exception("control page: state update failed")
            seq, pixels = self.bs.board.preview()
            if watchers and pixels is not None and seq != self._preview_seq and not self._encoding:
                self._preview_seq = seq
                self._encoding = True
                try:
                    jpeg = await loop.run_in_executor(self.bs.pool, encode_jpeg, pixels,
                                                      self.bs.cfg.vj.preview_quality)
                finally:
                    self._encoding = False
                broadcast([p.connection for p in self.pages.values() if p.preview], jpeg)

    # --- one page ----------------------------------------------------------------------
    async def handle(self, connection: ServerConnection) -> None:
        page = Page(connection)
        self.pages[connection] = page
        log.info("control page connected from %s", connection.remote_address[0] if connection.remote_address
                 else "?")
        try:
            self.refresh(force_slow=True)
            cfg = self.bs.cfg
            await connection.send(vp.message("hello", version=1, moderation=cfg.audience.moderation,
                                             join_url=self.bs.join_url))
            for part in PARTS:
                if part in self.latest:
                    await connection.send(self.latest[part])
            async for frame in connection:
                reply = self.answer(page, frame)
                if reply is not None:
                    await connection.send(reply)
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
        bs = self.bs
        if isinstance(req, vp.PingReq):
            return vp.message("pong", ref=req.ref)
        if isinstance(req, vp.PreviewReq):
            page.preview = req.on
            return None
        if isinstance(req, vp.CommandReq):
            bs.inbox.commands.put(req.command)
            return vp.ack(req.ref)
        if isinstance(req, vp.PromptOp):
            bs.prompt_op(req.op, req.id, req.reason, req.to)
        elif isinstance(req, vp.ReshowReq):
            bs.reshow(req.image)
        elif isinstance(req, vp.VjPromptReq):
            return vp.ack(req.ref, id=bs.vj_prompt(req.text))
        elif isinstance(req, vp.SettingsReq):
            bs.change_settings(req.values)
            self.refresh(force_slow=True)
        elif isinstance(req, vp.MidiLearnReq):
            bs.midi_learn(req.target)
        elif isinstance(req, vp.MidiForgetReq):
            bs.midi_forget(req.control)
        self.refresh()
        return vp.ack(req.ref)


_NOTHING = object()
