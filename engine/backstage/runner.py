"""The backstage's life cycle: one asyncio loop, in a thread of its own, for everything that waits on the world.

It runs what ``assembly`` builds (the audience server, the ledger and its scribe, the generators, the
pipeline, the control surfaces) and the ``chores``. It hands decoded images to the show through the
inbox and reads the show's state from the state board; it never touches GL. CPU-heavy work
(generating, decoding, PNG encoding, HUD text) goes to a worker pool so the loop stays responsive.

Start-up problems (an output folder that cannot be written, a port in use, a missing blocklist file)
are raised by ``start()`` on the caller's thread, so the engine exits with one clear line instead of
running half-built.

Threads: ``start``, ``stop``, ``call``, ``request_image``, ``pair``, ``approve``, ``reject`` and ``ban``
may be called from any thread; they reach the loop through ``call_soon_threadsafe``. Everything else
runs on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from engine.audio.live import LiveAudio
from engine.config import Config
from engine.contract import Inbox, StateBoard
from engine.control.osc_server import OscControl
from engine.errors import BackstageError
from engine.gen.pipeline import Pipeline
from engine.net.audience import NOT_THIS_TIME
from engine.net.server import AudienceServer
from engine.net.vj_auth import CODE_S, new_token
from engine.store import Journal

from .assembly import Parts, assemble
from .chores import (
    collect_garbage,
    demo_images,
    flush_positions,
    follow_scene_style,
    pace_the_line,
    paint_hud,
    trim_memory,
)

if TYPE_CHECKING:
    from engine.gen.local.dream import DreamLoop  # loaded only with [dream] on

log = logging.getLogger(__name__)


class Backstage:
    def __init__(self, cfg: Config, inbox: Inbox, board: StateBoard, join_url: str = "",
                 journal: Journal | None = None, serve: bool = True, live: LiveAudio | None = None,
                 held_by_show: tuple[str, ...] = ()) -> None:
        self.cfg = cfg
        self.held_by_show = held_by_show  # images the show still holds from a backstage that died
        self.inbox = inbox
        self.board = board
        self.join_url = join_url
        self.journal = journal
        self.serve = serve
        self.live = live
        self.vj_token = cfg.vj.token or new_token()
        self.parts: Parts | None = None  # set on the loop by start-up; read-only after
        self.dream: DreamLoop | None = None  # the dream layer's loop, when [dream] is on and the model is local
        self.failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._demo_wanted: asyncio.Event | None = None
        self._ready = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="backstage-worker")

    # --- what the rest of the engine (and the tests) read ----------------------------------------
    @property
    def pool(self) -> ThreadPoolExecutor:
        return self._pool

    @property
    def port(self) -> int | None:
        return self.parts.port if self.parts else None

    @property
    def vj_url(self) -> str:
        return self.parts.vj_url if self.parts else ""

    @property
    def server(self) -> AudienceServer | None:
        return self.parts.server if self.parts else None

    @property
    def pipeline(self) -> Pipeline | None:
        return self.parts.pipeline if self.parts else None

    @property
    def osc(self) -> OscControl | None:
        return self.parts.osc if self.parts else None

    def generator_line(self) -> str:
        return self.parts.controls.generator_line() if self.parts else "images: starting"

    # --- called from any thread ----------------------------------------------------------------------
    def start(self) -> None:
        """Run the loop in its own thread; raise BackstageError if it cannot start."""
        self._thread = threading.Thread(target=self._run, name="backstage", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise BackstageError("the backstage did not start within 30 s")
        if self.failure is not None:
            self._thread.join(timeout=5)
            raise BackstageError(str(self.failure)) from self.failure

    def request_image(self) -> None:
        """The VJ asked for the next image and none is ready: make one now."""
        wanted = self._demo_wanted
        if wanted is not None:
            self.call(wanted.set)

    def pair(self) -> None:
        """P on the show machine: a one-time code for the control page, on this console only, never on screen."""
        self.call(self._pair)

    def _pair(self) -> None:
        gate = self.parts.vj.gate if self.parts is not None and self.parts.vj is not None else None
        if gate is None:
            log.warning("VJ pairing code: the control page is not served")
            return
        log.warning("VJ pairing code: %s at %s (one login, within %.0f s)", gate.new_code(), self.vj_url, CODE_S)

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn()`` on the backstage loop (thread-safe)."""
        loop = self._loop
        if loop is not None and not loop.is_closed() and callable(fn):
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn)

    def approve(self, prompt_id: str) -> None:
        self.call(lambda: self._ledger_op("approve", prompt_id))

    def reject(self, prompt_id: str, reason: str = NOT_THIS_TIME) -> None:
        self.call(lambda: self._ledger_op("reject", prompt_id, reason))

    def ban(self, client_id: str) -> None:
        """No more prompts from this phone this show; its waiting prompts are rejected."""
        self.call(lambda: self.parts.ledger.ban(client_id) if self.parts else None)

    def _ledger_op(self, op: str, prompt_id: str, reason: str | None = None) -> None:
        if self.parts is None:
            return
        if op == "approve":
            self.parts.ledger.approve(prompt_id)
        else:
            self.parts.ledger.reject(prompt_id, reason or NOT_THIS_TIME)

    def stop(self, timeout: float = 5.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("backstage did not stop within %.0f s", timeout)
        if self.parts is not None:
            self.parts.scribe.close()  # every queued journal write lands before the journal closes
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- the loop ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as err:  # never let the thread die silently
            if self.failure is None:
                self.failure = err
            log.exception("backstage stopped on an error")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._demo_wanted = asyncio.Event()
        try:
            self.parts = await assemble(self.cfg, self.inbox, self.board, self._pool, self.journal, self.join_url,
                                        self.vj_token, self.serve, self.live, self.held_by_show)
        except Exception as err:
            self.failure = err
            self._ready.set()
            return
        tasks = [asyncio.create_task(coro, name=name) for name, coro in self._chores(self.parts)]
        self._ready.set()
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._shut(self.parts)

    def _chores(self, parts: Parts) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        cfg, ledger, controls = self.cfg, parts.ledger, parts.controls
        assert self._demo_wanted is not None
        jobs: list[tuple[str, Coroutine[Any, Any, None]]] = [
            ("hud", paint_hud(self.board, self.inbox, self._pool, self.join_url, self._hud_lines)),
            ("gc", collect_garbage(lambda: ledger.last_prompt_at)),
            ("positions", flush_positions(ledger)),
            ("catch-up", parts.scribe.keep_catching_up()),
            ("trim", trim_memory(self._pool)),
            ("pace", pace_the_line(cfg.show, ledger, self.inbox.commands, server=parts.server)),
            ("scene-style", follow_scene_style(self.board, lambda: controls.cfg, controls.change_settings,
                                               controls.report)),
            ("demo", demo_images(cfg, parts.generators[1], self._demo_wanted, ledger, self.board, self.inbox,
                                        controls.report)),
        ]
        if parts.osc is not None:
            jobs.append(("osc-out", parts.osc.run_feed()))
        if cfg.audio.link and self.live is not None:
            from engine.audio.link import follow_link

            jobs.append(("link", follow_link(self.live)))
        poll = getattr(parts.generators[0], "poll_balance", None)
        if poll is not None and cfg.stability.balance_interval > 0:
            jobs.append(("credits", poll()))
        if parts.pipeline is not None:
            jobs.append(("pipeline", parts.pipeline.run()))
        if parts.hub is not None:
            jobs.append(("vj-hub", parts.hub.run()))
        if cfg.dream.enabled:
            from engine.gen.local.dream import dream_for

            self.dream = dream_for(cfg.dream, parts.generators[0], self.inbox, self.board, ledger, self._pool,
                                   controls.report)
            if self.dream is not None:
                parts.controls.dream_state = self.dream_state
                jobs.append(("dream", self.dream.run()))
        return jobs

    def dream_state(self) -> dict[str, Any] | None:
        """The dream layer's state for the control page (state, fps, frames, prompt, error); None when off."""
        return self.dream.status().as_dict() if self.dream is not None else None

    def _hud_lines(self) -> list[str]:
        parts = self.parts
        if parts is None:
            return []
        lines = [parts.controls.generator_line()]
        if self.dream is not None:
            lines.append(self.dream.status().line())
        if parts.vj_url:  # the audience sees the HUD: the token stays on the console (or use P's pairing code)
            lines.append(f"VJ page: {parts.vj_url}")
        return lines

    async def _shut(self, parts: Parts) -> None:
        if parts.cluster is not None:
            with contextlib.suppress(Exception):  # Redis may be gone already: nothing of ours is lost with it
                await parts.cluster.aclose()
        if parts.osc is not None:
            parts.osc.stop()
        if parts.midi is not None:
            parts.midi.stop()
        if parts.vj is not None:
            await parts.vj.stop()
        if parts.server is not None:
            await parts.server.stop()
        for g in set(parts.generators):
            with contextlib.suppress(Exception):
                await g.aclose()
