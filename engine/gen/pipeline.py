"""From the fair queue to the projector, with the sender told at every step.

    audience.next_prompt() → generator (primary, else the offline fallback)
        → decode + resize in a worker → journal (file, then row) → the show's image queue
        → the show puts it on screen → "showing" → replaced on screen → "done"

Generation is paced by the show: a new prompt starts only while the show has fewer
than ``SHOW_BACKLOG`` images waiting, so images never pile up in memory and the
queue positions phones see stay true. A backend that fails (network, credits, a
circuit breaker) never costs a prompt: the offline generator makes it instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from engine.config import Config
from engine.contract import Inbox, ShowImage, StateBoard
from engine.gen.base import FailureKind, GeneratedImage, GenerationError, GenerationRequest, Generator
from engine.gen.decode import prepare
from engine.net.audience import Audience, Outbox, Prompt
from engine.net.protocol import State
from engine.store import Journal, PromptState, StoreError

log = logging.getLogger(__name__)

SHOW_BACKLOG = 2  # images waiting in the show before the next generation starts
CAPTURE_TIMEOUT_S = 2.0
WATCH_PERIOD_S = 0.05
# Outcomes that are about the prompt itself: tell the sender, do not try another backend.
SENDER_FAILURES = frozenset({FailureKind.MODERATED, FailureKind.UNPROCESSABLE})


@dataclass
class _InFlight:
    prompt: Prompt
    images: list[str] = field(default_factory=list)  # image ids, in show order
    shown: set[str] = field(default_factory=set)


class Pipeline:
    def __init__(
        self,
        cfg: Config,
        audience: Audience,
        primary: Generator,
        fallback: Generator,
        journal: Journal | None,
        inbox: Inbox,
        board: StateBoard,
        deliver: Callable[[Outbox], None],
        pool: Executor,
        on_show: Callable[[Prompt], None] = lambda _p: None,
        report: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.cfg = cfg
        self.audience = audience
        self.primary = primary
        self.fallback = fallback
        self.journal = journal
        self.inbox = inbox
        self.board = board
        self.deliver = deliver
        self.pool = pool
        self.on_show = on_show
        self.report = report
        self._wake = asyncio.Event()
        self._by_image: dict[str, _InFlight] = {}
        self._on_screen: set[str] = set()
        self._pending = 0
        self._last_image: str | None = None

    def wake(self) -> None:
        """A prompt arrived (or was approved): look at the queue now."""
        self._wake.set()

    async def run(self) -> None:
        workers = [asyncio.create_task(self._worker(), name=f"generate-{i}")
                   for i in range(self.cfg.generation.in_flight)]
        watcher = asyncio.create_task(self._watch_show(), name="watch-show")
        try:
            await asyncio.gather(*workers, watcher)
        finally:
            for t in (*workers, watcher):
                t.cancel()

    # --- generating -------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            if self.board.read().queue_len + self._pending >= SHOW_BACKLOG:
                await asyncio.sleep(WATCH_PERIOD_S)
                continue
            prompt, out = self.audience.next_prompt()
            if prompt is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                continue
            self.deliver(out)
            self._pending += 1
            try:
                await self._make(prompt)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # one prompt's surprise never stops the pipeline
                log.exception("prompt %s failed unexpectedly", prompt.id)
                self._finish(prompt, State.FAILED, f"Something went wrong ({type(err).__name__}).")
            finally:
                self._pending -= 1

    def request(self, prompt: Prompt, init_image: bytes | None = None) -> GenerationRequest:
        g = self.cfg.generation
        return GenerationRequest(
            prompt_id=prompt.id, prompt=prompt.text, negative_prompt=g.negative_prompt, width=g.width,
            height=g.height, aspect_ratio=g.aspect_ratio, seed=g.seed, samples=g.samples,
            style_preset=g.style_preset, cfg_scale=g.cfg_scale or None, steps=g.steps, strength=g.strength,
            init_image=init_image,
        )

    async def init_image(self) -> bytes | None:
        """For image-to-image: the previous image, or the picture on the projector now, as PNG."""
        mode = self.cfg.generation.img2img
        if mode == "previous":
            if self.journal is None or self._last_image is None:
                return None
            return await asyncio.to_thread(self.journal.image_bytes, self._last_image)
        if mode == "program":
            wanted: Future[np.ndarray] = Future()
            self.inbox.captures.put(wanted)
            try:
                rgb = await asyncio.wait_for(asyncio.wrap_future(wanted), CAPTURE_TIMEOUT_S)
            except (TimeoutError, Exception) as err:  # no frame in time: plain text-to-image
                self.report(f"image-to-image: no program frame ({type(err).__name__})")
                return None
            return await asyncio.get_running_loop().run_in_executor(self.pool, encode_png, rgb)
        return None

    async def _make(self, prompt: Prompt) -> None:
        self._journal_state(prompt.id, PromptState.GENERATING)
        request = self.request(prompt, await self.init_image())
        try:
            images = await self._generate(request)
        except GenerationError as err:
            state = State.REJECTED if err.kind in SENDER_FAILURES else State.FAILED
            self._finish(prompt, state, err.user_message)
            return
        flight = _InFlight(prompt)
        loop = asyncio.get_running_loop()
        snap = self.board.read()
        for image in images:
            try:
                pixels = await loop.run_in_executor(
                    self.pool, prepare, image, snap.size, self.cfg.render.max_image_size, self.cfg.show.fit)
            except GenerationError as err:
                self.report(f"image for {prompt.id} refused: {err.vj_message}")
                continue
            image_id = await self._save(prompt, image)
            self._last_image = image_id
            flight.images.append(image_id)
            self._by_image[image_id] = flight
            self.inbox.images.put(ShowImage(image_id, pixels, caption=prompt.text))
        if not flight.images:
            self._finish(prompt, State.FAILED, "The image could not be made. Please try again.")

    async def _generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        """The primary backend, else the offline one; only the prompt's own faults reach the sender."""
        if self.primary is not self.fallback:
            try:
                return await self.primary.generate(request)
            except GenerationError as err:
                if err.kind in SENDER_FAILURES:
                    raise
                if err.kind is not FailureKind.UNAVAILABLE:
                    self.report(f"{self.primary.name}: {err.vj_message}; using {self.fallback.name}")
        return await self.fallback.generate(request)

    async def _save(self, prompt: Prompt, image: GeneratedImage) -> str:
        """Journal first (file, then row); the image id names it everywhere after."""
        if self.journal is None:
            return f"{prompt.id}-{len(prompt.image_urls) + 1}"
        meta = {"prompt": prompt.text, "seed": image.seed, **image.metadata}
        try:
            record = await asyncio.to_thread(self.journal.add_image, prompt.id, image, meta)
        except StoreError as err:
            self.report(f"journal: {err}")
            return f"{prompt.id}-x{id(image) % 10000}"
        return record.id

    # --- the show tells us what is on screen ---------------------------------------------
    async def _watch_show(self) -> None:
        while True:
            snap = self.board.read()
            visible = {i for i in (snap.current_id, snap.incoming_id) if i}
            for image_id in visible - self._on_screen:
                self._shown(image_id)
            for image_id in self._on_screen - visible:
                self._left_screen(image_id)
            self._on_screen = visible
            await asyncio.sleep(WATCH_PERIOD_S)

    def _shown(self, image_id: str) -> None:
        flight = self._by_image.get(image_id)
        if flight is None:
            return
        prompt = flight.prompt
        flight.shown.add(image_id)
        self.deliver(self.audience.set_state(prompt.id, State.SHOWING, image_url=self.url(image_id)))
        self._journal_state(prompt.id, PromptState.SHOWING)
        if self.journal is not None:
            try:
                self.journal.mark_shown(image_id)
            except StoreError as err:
                self.report(f"journal: {err}")
        self.on_show(prompt)

    def _left_screen(self, image_id: str) -> None:
        flight = self._by_image.pop(image_id, None)
        if flight is None:
            return
        if all(i in flight.shown for i in flight.images) and not any(i in self._by_image for i in flight.images):
            self._finish(flight.prompt, State.DONE, None)

    def _finish(self, prompt: Prompt, state: State, reason: str | None) -> None:
        self.deliver(self.audience.set_state(prompt.id, state, reason))
        self._journal_state(prompt.id, state, reason)

    def _journal_state(self, prompt_id: str, state: PromptState, reason: str | None = None) -> None:
        if self.journal is None:
            return
        try:
            self.journal.set_state(prompt_id, state, reason)
        except StoreError as err:
            self.report(f"journal: {err}")

    def url(self, image_id: str) -> str:
        ext = "png"
        if self.journal is not None:
            record = self.journal.image(image_id)
            if record is not None and record.path:
                ext = record.path.rsplit(".", 1)[-1]
        return f"/images/{image_id}.{ext}"


def encode_png(rgb: np.ndarray) -> bytes:
    """A captured frame as PNG for an image-to-image request (fast compression: it is sent, not kept)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", compress_level=1)
    return buf.getvalue()
