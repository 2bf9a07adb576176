"""The backstage thread: one asyncio loop for everything that waits on the world.

It owns the audience server, the audience (limits, moderation, fair queue), the
generators, the pipeline and the journal. It hands decoded images to the show
through the inbox and reads the show's state from the state board; it never
touches GL. CPU-heavy work (generating, decoding, PNG encoding, HUD text) goes to
a worker pool so the loop stays responsive.

Start-up problems (an output folder that cannot be written, a port in use, a
missing blocklist file) are raised by ``start()`` on the caller's thread, so the
engine exits with one clear line instead of running half-built.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from engine.audio.live import LiveAudio
from engine.commands import Action
from engine.config import Config, with_overrides
from engine.contract import Inbox, ShowImage, StateBoard
from engine.control.midi_input import MidiInput
from engine.control.midi_map import Control, Target
from engine.control.osc_server import OscControl
from engine.errors import ConfigError, EngineError
from engine.gen.backends import make_generators
from engine.gen.base import GeneratedImage, GenerationRequest, Generator
from engine.gen.decode import prepare
from engine.gen.pipeline import Pipeline
from engine.net import vj_state
from engine.net.audience import NOT_THIS_TIME, Audience, Outbox, Prompt
from engine.net.moderation import Moderator
from engine.net.protocol import State
from engine.net.server import AudienceServer
from engine.net.vj_auth import TokenGate, new_token
from engine.net.vj_hub import VjHub
from engine.net.vj_protocol import VjProtocolError
from engine.net.vj_server import VjRoutes
from engine.render.overlay import HudLayout, hud_image, hud_lines
from engine.store import Journal, PromptState

if TYPE_CHECKING:
    from engine.gen.stability import StabilityStatus  # loaded only with the Stability backend

log = logging.getLogger(__name__)

HUD_REFRESH_S = 0.25
POSITION_FLUSH_S = 0.25
RESUME_LIMIT = 5000  # prompts of this show read back after a restart
# Garbage collection: with ten thousand phones a full collection walks every connection's objects
# (0.6-0.8 s on the bench machine), stalling every push and answer. Young collections stay automatic;
# full ones run here, when the crowd is quiet, every FULL_GC_PERIOD_S (or FULL_GC_MAX_S at the latest).
GC_THRESHOLDS = (700, 10, 1_000_000_000)  # gen0 and gen1 as CPython's defaults; gen2 never automatic
FULL_GC_PERIOD_S = 300.0
FULL_GC_MAX_S = 900.0
QUIET_S = 3.0  # no prompt for this long: a good moment for a full collection
DEMO_PROMPTS = (
    "aurora over a frozen lake", "neon city in the rain", "a forest of glowing mushrooms", "desert dunes at dusk",
    "a whale swimming through stars", "a crystal cave full of light", "ocean waves in a storm", "a field of sunflowers",
)


def full_gc_due(now: float, last_full: float, last_prompt: float) -> bool:
    """A full collection is due: the period is over and the crowd is quiet, or the longest wait is over."""
    since = now - last_full
    return (since >= FULL_GC_PERIOD_S and now - last_prompt >= QUIET_S) or since >= FULL_GC_MAX_S


class BackstageError(EngineError):
    """The backstage could not start (server port, output folder, blocklist)."""


class Backstage:
    def __init__(self, cfg: Config, inbox: Inbox, board: StateBoard, join_url: str = "",
                 journal: Journal | None = None, serve: bool = True, live: LiveAudio | None = None) -> None:
        self.cfg = cfg
        self.inbox = inbox
        self.board = board
        self.join_url = join_url
        self.journal = journal
        self.serve = serve
        self.live = live
        self.osc: OscControl | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._demo_wanted: asyncio.Event | None = None
        self._ready = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="backstage-worker")
        self._demo_seq = itertools.count(1)
        self.failure: BaseException | None = None
        self.audience: Audience | None = None
        self.server: AudienceServer | None = None
        self.pipeline: Pipeline | None = None
        self.generators: tuple[Generator, Generator] | None = None
        self.port: int | None = None
        self.vj_token = cfg.vj.token or new_token()
        self.vj_url = ""
        self.vj: VjRoutes | None = None
        self.hub = VjHub(self)
        self.midi: MidiInput | None = None
        self.last_prompt_at = 0.0  # monotonic time of the latest prompt from a phone
        self.reports: deque[str] = deque(maxlen=6)  # backend problems in plain words, for the control page
        self._reshow_seq = itertools.count(1)

    @property
    def pool(self) -> ThreadPoolExecutor:
        return self._pool

    # --- called from the show thread ------------------------------------------------
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
        loop, wanted = self._loop, self._demo_wanted
        if loop is not None and wanted is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wanted.set)

    def call(self, fn: object) -> None:
        """Run ``fn()`` on the backstage loop (thread-safe)."""
        loop = self._loop
        if loop is not None and not loop.is_closed() and callable(fn):
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn)

    def stop(self, timeout: float = 5.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("backstage did not stop within %.0f s", timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- the loop ---------------------------------------------------------------------
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
            await self._setup()
        except Exception as err:
            self.failure = err
            self._ready.set()
            return
        tasks = [asyncio.create_task(self._hud_painter(), name="hud"),
                 asyncio.create_task(self._collector(), name="gc"),
                 asyncio.create_task(self._flush_positions(), name="positions"),
                 asyncio.create_task(self._demo_source(), name="demo")]
        if self.osc is not None:
            tasks.append(asyncio.create_task(self.osc.run_feed(), name="osc-out"))
        if self.cfg.audio.link and self.live is not None:
            from engine.audio.link import follow_link

            tasks.append(asyncio.create_task(follow_link(self.live), name="link"))
        poll = getattr(self.generators[0] if self.generators else None, "poll_balance", None)
        if poll is not None and self.cfg.stability.balance_interval > 0:
            tasks.append(asyncio.create_task(poll(), name="credits"))
        if self.pipeline is not None:
            tasks.append(asyncio.create_task(self.pipeline.run(), name="pipeline"))
        if self.vj is not None:
            tasks.append(asyncio.create_task(self.hub.run(), name="vj-hub"))
        self._ready.set()
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.osc is not None:
            self.osc.stop()
        if self.midi is not None:
            self.midi.stop()
        if self.vj is not None:
            await self.vj.stop()
        if self.server is not None:
            await self.server.stop()
        if self.generators is not None:
            for g in set(self.generators):
                with contextlib.suppress(Exception):
                    await g.aclose()

    async def _setup(self) -> None:
        cfg = self.cfg
        moderator = Moderator.from_files(user_file=Path(cfg.audience.blocklist_file)
                                         if cfg.audience.blocklist_file else None)
        self.audience = Audience(cfg.audience, moderator)
        self.generators = make_generators(cfg, self._pool)
        primary, fallback = self.generators
        log.info("generator: %s (fallback %s)", primary.name, fallback.name)
        self._resume()
        if not self.serve:
            return
        try:
            gate = TokenGate(self.vj_token)
        except ValueError as err:
            raise BackstageError(str(err)) from err
        if cfg.vj.host and not cfg.vj.port:
            raise BackstageError("[vj] host needs [vj] port too (or leave both empty to share the audience server)")
        self.vj = VjRoutes(cfg.vj, gate, self.hub.handle, self._image)
        own_port = cfg.vj.port != 0
        self.server = AudienceServer(cfg.server, cfg.audience, self.audience, images=self._image,
                                     on_submit=self._on_submit, vj=None if own_port else self.vj)
        self.pipeline = Pipeline(cfg, self.audience, primary, fallback, self.journal, self.inbox, self.board,
                                 self.server.deliver, self._pool, on_show=self._on_show, report=self._report)
        try:
            await self.server.start()
        except OSError as err:
            raise BackstageError(
                f"cannot listen on {cfg.server.host}:{cfg.server.port} ({err.strerror or err}); "
                "is another engine running? pick another with --port") from err
        self.port = self.server.port
        log.info("audience server on %s:%d", cfg.server.host, self.port)
        if own_port:
            host = cfg.vj.host or cfg.server.host
            try:
                await self.vj.start(host, cfg.vj.port)
            except OSError as err:
                raise BackstageError(f"control page: cannot listen on {host}:{cfg.vj.port} "
                                     f"({err.strerror or err}); set [vj] port to another one") from err
        self.vj_url = self._vj_url()
        log.warning("VJ control page: %s?token=%s", self.vj_url, self.vj_token)
        if cfg.midi.input != "none":
            self.midi = MidiInput(cfg.midi, self.inbox.commands)
            self.midi.start()
            log.info("%s", self.midi.snapshot().status)
        if cfg.osc.enabled:
            from engine.control.osc_server import OscControl

            try:
                self.osc = OscControl(cfg.osc, self.inbox.commands, self.board, self.live)
                await self.osc.start()
            except (OSError, ValueError) as err:
                raise BackstageError(f"OSC: cannot listen on {cfg.osc.host}:{cfg.osc.port} ({err})") from err

    # --- the VJ's moderation operations (thread-safe; the control page will call these) -----
    def approve(self, prompt_id: str) -> None:
        self.call(lambda: self._moderate(prompt_id, True, None))

    def reject(self, prompt_id: str, reason: str = NOT_THIS_TIME) -> None:
        self.call(lambda: self._moderate(prompt_id, False, reason))

    def ban(self, client_id: str) -> None:
        """No more prompts from this phone this show; its waiting prompts are rejected."""
        self.call(lambda: self._ban_now(client_id))

    def _ban_now(self, client_id: str) -> None:
        if self.audience is None:
            return
        out = self.audience.ban(client_id)
        for _client, status in out:
            self._journal_decision(status.id, False, status.reason)
        self._deliver(out)

    def _moderate(self, prompt_id: str, approved: bool, reason: str | None) -> None:
        if self.audience is None:
            return
        out = self.audience.approve(prompt_id) if approved else self.audience.reject(prompt_id, reason or "")
        self._journal_decision(prompt_id, approved, reason)
        self._deliver(out)
        if approved and self.pipeline is not None:
            self.pipeline.wake()

    def _journal_decision(self, prompt_id: str, approved: bool, reason: str | None) -> None:
        if self.journal is None:
            return
        try:
            self.journal.set_approval(prompt_id, approved, reason)
            if not approved:
                self.journal.set_state(prompt_id, PromptState.REJECTED, reason)
        except EngineError as err:
            self._report(f"journal: {err}")

    def _deliver(self, out: Outbox) -> None:
        if self.server is not None:
            self.server.deliver(out)

    # --- wiring -------------------------------------------------------------------------
    def _on_submit(self, outbox: Outbox) -> None:
        """Accepted prompts are journaled before the phone hears they were accepted.

        ``Audience.submit`` answers with the new prompt's status alone (others' moves are flushed
        later), so a queued status here is always a prompt the journal has not seen.
        """
        assert self.audience is not None
        self.last_prompt_at = time.monotonic()
        for _client, status in outbox:
            prompt = self.audience.prompts.get(status.id)
            if prompt is not None and status.state is State.QUEUED and self.journal is not None:
                try:
                    self.journal.record_prompt(prompt.id, prompt.client_id, prompt.text,
                                               {"moderation": self.cfg.audience.moderation})
                except EngineError as err:
                    self._report(f"journal: {err}")
        if self.pipeline is not None:
            self.pipeline.wake()

    def _resume(self) -> None:
        """After a restart: prompts left queued or generating go back in line, and every phone's
        earlier prompts (with their images) are known again, so a reloaded page shows them."""
        if self.journal is None or self.audience is None:
            return
        resumed = 0
        for rec in reversed(self.journal.prompts(limit=RESUME_LIMIT)):
            state = rec.state
            if state is State.GENERATING:
                state = State.QUEUED
                self.journal.set_state(rec.id, PromptState.QUEUED)
            elif state is State.SHOWING:
                state = State.DONE
                self.journal.set_state(rec.id, PromptState.DONE)
            prompt = Prompt(rec.id, rec.client_id, "restored", rec.text, time.monotonic(), state=state,
                            reason=rec.reason, needs_approval=rec.approved is None
                            and self.cfg.audience.moderation == "approve")
            prompt.image_urls = [f"/images/{i.path}" for i in self.journal.images(rec.id) if i.path]
            self.audience.restore(prompt)
            resumed += state is State.QUEUED
        if resumed:
            log.info("resuming %d prompts from the journal", resumed)

    def _image(self, image_id: str) -> tuple[bytes, str] | None:
        if self.journal is None:
            return None
        data = self.journal.image_bytes(image_id)
        if data is None:
            return None
        record = self.journal.image(image_id)
        ext = record.path.rsplit(".", 1)[-1] if record and record.path else "png"
        return data, {"jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}.get(ext, "image/png")

    def _on_show(self, prompt: Prompt) -> None:
        if self.server is not None and prompt.ip != "demo":
            self.server.broadcast_feed(prompt.text)

    def _report(self, message: str) -> None:
        log.warning("%s", message)
        self.reports.append(message)

    def _vj_url(self) -> str:
        """Where the VJ opens the control page: the join URL's host, or [vj] host and port of its own."""
        base = urlsplit(self.join_url or f"http://127.0.0.1:{self.port}")
        if self.vj is not None and self.vj.port is not None:
            host = self.cfg.vj.host if self.cfg.vj.host not in ("", "0.0.0.0", "::") else base.hostname or "127.0.0.1"
            return f"http://{host}:{self.vj.port}/vj"
        return urlunsplit((base.scheme, base.netloc, "/vj", "", ""))

    # --- the control page's operations (called on the backstage loop) -------------------------
    def prompt_op(self, op: str, prompt_id: str, reason: str | None = None, to: int = 0) -> None:
        audience = self.audience
        prompt = audience.prompts.get(prompt_id) if audience is not None else None
        if audience is None or prompt is None:
            raise VjProtocolError("not_found", "No such prompt (it may have been served already).")
        if op == "ban":
            self._ban_now(prompt.client_id)
        elif op == "move":
            self._deliver(audience.move(prompt_id, to))
        elif op == "remove":
            out = audience.remove(prompt_id)
            if out:
                self._journal_decision(prompt_id, False, prompt.reason)
            self._deliver(out)
        else:
            if prompt.state is not State.QUEUED:
                raise VjProtocolError("not_found", f"That prompt is {prompt.state.value}, not waiting.")
            self._moderate(prompt_id, op == "approve", reason or NOT_THIS_TIME)

    def vj_prompt(self, text: str) -> str:
        """The VJ's own prompt, generated next (the seed's "generate" button)."""
        if self.audience is None:
            raise VjProtocolError("failed", "The audience queue is not running.")
        prompt = self.audience.submit_vj(text)
        self._on_submit([(prompt.client_id, prompt.status())])
        return prompt.id

    def reshow(self, image_id: str) -> None:
        """An image from the gallery back on screen now: read and decoded in the pool, then straight in."""
        journal = self.journal
        record = journal.image(image_id) if journal is not None else None
        if journal is None or record is None or (record.path is None and not record.in_memory):
            raise VjProtocolError("not_found", "No such image in this show.")
        prompt = journal.prompt(record.prompt_id)
        size = self.board.read().size
        show_id = f"{image_id}-again{next(self._reshow_seq)}"

        def load() -> ShowImage:
            data = journal.image_bytes(image_id)
            if data is None:
                raise EngineError("its file is gone")
            pixels = prepare(GeneratedImage(data=data), size, self.cfg.render.max_image_size, self.cfg.show.fit)
            return ShowImage(show_id, pixels, caption=prompt.text if prompt else "", urgent=True)

        def loaded(done: asyncio.Future[ShowImage]) -> None:
            error = "cancelled" if done.cancelled() else done.exception()
            if error is not None:
                self._report(f"re-show {image_id}: {error}")
                return
            self.inbox.images.put(done.result())

        asyncio.get_running_loop().run_in_executor(self._pool, load).add_done_callback(loaded)

    def change_settings(self, values: Mapping[str, object]) -> None:
        """Generation settings for the next prompts, validated like config.toml."""
        try:
            cfg = with_overrides(self.cfg, vj_state.settings_overrides(values))
        except ConfigError as err:
            raise VjProtocolError("bad_message", str(err)) from err
        self.cfg = cfg
        if self.pipeline is not None:
            self.pipeline.cfg = cfg
        for g in set(self.generators or ()):
            reconfigure = getattr(g, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(cfg.stability)
        log.info("generation settings: %s", ", ".join(f"{k}={v!r}" for k, v in values.items()))

    def midi_learn(self, target: Target | None) -> None:
        if self.midi is None:
            raise VjProtocolError("failed", 'MIDI input is off: set [midi] input = "all" (or a port name).')
        if target is not None and target.action == Action.PARAM.value:
            info = next((p for s in self.board.catalog() if s.name == target.shader for p in s.params
                         if p.name == target.param), None)
            if info is None:
                raise VjProtocolError("not_found", f"No parameter {target.param!r} in shader {target.shader!r}.")
            low = info.min if isinstance(info.min, int | float) else 0.0
            high = info.max if isinstance(info.max, int | float) else 1.0
            target = Target(target.action, target.shader, target.param, float(low), float(high))
        self.midi.learn(target)

    def midi_forget(self, control: Control) -> None:
        if self.midi is None:
            raise VjProtocolError("failed", "MIDI input is off.")
        self.midi.forget(control)

    def gallery_state(self) -> dict[str, Any]:
        if self.journal is None:
            return {"images": []}
        images = self.journal.gallery()[-vj_state.GALLERY_LIMIT:]
        prompts = self.audience.prompts if self.audience else {}
        texts: dict[str, str] = {}
        for pid in {i.prompt_id for i in images}:
            known = prompts.get(pid)
            rec = None if known is not None else self.journal.prompt(pid)
            text = known.text if known is not None else rec.text if rec is not None else None
            if text is not None:
                texts[pid] = text
        return vj_state.gallery_state(images, texts)

    def generation_state(self) -> dict[str, Any]:
        from engine.gen.stability import STYLE_PRESETS

        folder = str(self.journal.folder) if self.journal is not None else self.cfg.store.output_dir
        return vj_state.generation_state(self.cfg, folder, STYLE_PRESETS)

    def backend_state(self) -> dict[str, Any]:
        status = self._primary_status()
        line = self.generator_line(status)
        if self.generators is None:
            return {"name": "", "status": "offline", "line": line, "credits": None, "errors": list(self.reports)}
        return {"name": self.generators[0].name, "status": status.state if status else "ok", "line": line,
                "credits": status.credits if status else None, "errors": list(self.reports)}

    def _primary_status(self) -> StabilityStatus | None:
        """The primary backend's health, when it has one to report (the offline generator has none)."""
        if self.generators is None:
            return None
        primary, fallback = self.generators
        status_of = getattr(primary, "status", None)
        return status_of() if status_of is not None and primary is not fallback else None

    # --- the show's helpers ---------------------------------------------------------------
    async def _collector(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Full garbage collections at quiet moments instead of whenever CPython decides (see GC_THRESHOLDS)."""
        gc.set_threshold(*GC_THRESHOLDS)
        last = clock()
        while True:
            await asyncio.sleep(QUIET_S)
            if full_gc_due(clock(), last, self.last_prompt_at):
                started = time.perf_counter()
                found = gc.collect()
                last = clock()
                log.debug("full garbage collection: %d objects freed in %.0f ms", found,
                          (time.perf_counter() - started) * 1000)

    async def _flush_positions(self) -> None:
        """Queue positions that changed because others joined the line, a few times a second."""
        while True:
            await asyncio.sleep(POSITION_FLUSH_S)
            if self.audience is not None:
                self._deliver(self.audience.flush_positions())

    async def _hud_painter(self) -> None:
        """Paint the HUD from the show's snapshot a few times a second, while it is shown."""
        loop = asyncio.get_running_loop()
        layout = HudLayout()
        while True:
            snap = self.board.read()
            if snap.hud:
                lines = hud_lines(snap, self.join_url)
                lines.insert(2, self.generator_line())
                if self.vj_url:
                    lines.insert(3, f"VJ page: {self.vj_url}?token={self.vj_token}")
                pixels = await loop.run_in_executor(self._pool, hud_image, lines, layout)
                self.inbox.hud.put(pixels)
            await asyncio.sleep(HUD_REFRESH_S)

    def generator_line(self, status: StabilityStatus | None = None) -> str:
        """The image backend as the VJ needs to see it: which one, healthy or not, credits left."""
        if self.generators is None:
            return "images: starting"
        primary, fallback = self.generators
        if primary is fallback:
            return f"images: {primary.name} (offline)"
        s = status or self._primary_status()
        if s is None:
            return f"images: {primary.name}"
        credits = f"   credits {s.credits:g}" if s.credits is not None else ""
        problem = f"   ! {s.last_error}" if s.last_error else ""
        return f"images: {primary.name} {s.state}{credits}{problem}"

    async def _demo_source(self) -> None:
        """When the crowd is quiet: an offline image every ``demo.interval`` s, or at once on Space."""
        assert self._demo_wanted is not None and self.generators is not None
        interval = self.cfg.demo.interval
        fallback = self.generators[1]
        while True:
            try:
                await asyncio.wait_for(self._demo_wanted.wait(), timeout=interval if interval > 0 else None)
                requested = True
            except TimeoutError:
                requested = False
            self._demo_wanted.clear()
            busy = self.audience is not None and self.audience.queued_count > 0
            if not requested and (busy or self.board.read().queue_len > 0):
                continue
            n = next(self._demo_seq)
            text = DEMO_PROMPTS[n % len(DEMO_PROMPTS)]
            g = self.cfg.generation
            try:
                images = await fallback.generate(GenerationRequest(f"demo-{n}", text, width=g.width, height=g.height))
            except EngineError as err:
                self._report(f"demo image: {err}")
                continue
            for i, image in enumerate(images):
                if image.pixels is not None:
                    self.inbox.images.put(ShowImage(f"demo-{n}-{i}", image.pixels, caption=text))
