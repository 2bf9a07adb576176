"""From the fair queue to the projector: generate, decode, journal, hand to the show.

    ledger.next_prompt() → generator (primary, else the offline fallback)
        → decode + resize in a worker → ledger.store_image (journal: file, then row)
        → the show's image queue → the show reports what is on screen → ledger.on_screen

Every change of a prompt's state goes through the ledger, which tells the phone and the
journal; the pipeline only makes images. Generation is paced by the show: a new prompt
starts only while the show has fewer than ``SHOW_BACKLOG`` images waiting, so images never
pile up in memory and the queue positions phones see stay true. A backend that fails
(network, credits, a circuit breaker) never costs a prompt: the offline generator makes it.

With ``[overlay] captions`` on, each image goes with its prompt's words painted as a caption band
(``show_image``, in the pool: engine/render/captions.py). Only prompts the ledger hands out get here,
so only words that passed moderation (and the VJ's approval, when asked for) reach the screen; the VJ's
own prompts, gallery re-shows and demo images carry their words too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor, Future

import numpy as np

from engine.config import Config
from engine.contract import CaptureWish, Inbox, ShowImage, State, StateBoard
from engine.errors import EngineError
from engine.gen.base import FailureKind, GeneratedImage, GenerationError, GenerationRequest, Generator
from engine.gen.decode import prepare
from engine.gen.images import encode
from engine.ledger import Ledger
from engine.net.audience import Prompt
from engine.render.captions import paint_caption

log = logging.getLogger(__name__)

SHOW_BACKLOG = 2  # images waiting in the show before the next generation starts
CAPTURE_TIMEOUT_S = 2.0
WATCH_PERIOD_S = 0.05
# Outcomes that are about the prompt itself: tell the sender, do not try another backend.
SENDER_FAILURES = frozenset({FailureKind.MODERATED, FailureKind.UNPROCESSABLE})


class Pipeline:
    def __init__(
        self,
        cfg: Config,
        ledger: Ledger,
        primary: Generator,
        fallback: Generator,
        inbox: Inbox,
        board: StateBoard,
        pool: Executor,
        report: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.cfg = cfg
        self.ledger = ledger
        self.primary = primary
        self.fallback = fallback
        self.inbox = inbox
        self.board = board
        self.pool = pool
        self.report = report
        self._wake = asyncio.Event()
        self._pending = 0

    def wake(self) -> None:
        """A prompt arrived (or was approved): look at the queue now."""
        self._wake.set()

    async def run(self) -> None:
        await self._hand_again()
        workers = [asyncio.create_task(self._worker(), name=f"generate-{i}")
                   for i in range(self.cfg.generation.in_flight)]
        watcher = asyncio.create_task(self._watch_show(), name="watch-show")
        try:
            await asyncio.gather(*workers, watcher)
        finally:
            for t in (*workers, watcher):
                t.cancel()

    async def _hand_again(self) -> None:
        """After a restart: images made before it that never reached the show go to it now, from the journal,
        instead of being generated (and paid for) again."""
        for prompt, stored in self.ledger.take_rehand():
            try:
                pixels = await from_journal(self.ledger, stored.id, self.board.read().size, self.cfg, self.pool)
            except GenerationError as err:
                self.report(f"image {stored.id} of {prompt.id} cannot be handed again: {err.vj_message}")
                self.ledger.finish(prompt, State.FAILED, "The image could not be made. Please try again.")
                continue
            self.inbox.images.put(await show_image(self.cfg, self.pool, stored.id, pixels, prompt.text,
                                                   self.board.read().size))

    # --- generating -------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            if self.board.read().queue_len + self._pending >= SHOW_BACKLOG:
                await asyncio.sleep(WATCH_PERIOD_S)
                continue
            prompt = self.ledger.next_prompt()
            if prompt is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                continue
            self._pending += 1
            try:
                await self._make(prompt)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # one prompt's surprise never stops the pipeline
                log.exception("prompt %s failed unexpectedly", prompt.id)
                self.ledger.finish(prompt, State.FAILED, f"Something went wrong ({type(err).__name__}).")
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
            last = self.ledger.last_image
            return None if last is None else await self.ledger.image_bytes(last)
        if mode == "program":
            wanted: Future[np.ndarray] = Future()
            self.inbox.captures.put(CaptureWish(wanted))
            try:
                rgb = await asyncio.wait_for(asyncio.wrap_future(wanted), CAPTURE_TIMEOUT_S)
            except (TimeoutError, Exception) as err:  # no frame in time: plain text-to-image
                self.report(f"image-to-image: no program frame ({type(err).__name__})")
                return None
            return await asyncio.get_running_loop().run_in_executor(self.pool, encode, rgb, "png")
        return None

    async def _make(self, prompt: Prompt) -> None:
        try:
            await self._make_images(prompt)
        finally:
            # A backend that hands images over at least once (engine/cluster: a Redis stream) is told they are
            # journaled now, so it can let them go; a prompt made again after a crash is the same prompt.
            committed = getattr(self.primary, "committed", None)
            if committed is not None:
                committed(prompt.id)

    async def _make_images(self, prompt: Prompt) -> None:
        request = self.request(prompt, await self.init_image())
        try:
            images = await self._generate(request)
        except GenerationError as err:
            state = State.REJECTED if err.kind in SENDER_FAILURES else State.FAILED
            self.ledger.finish(prompt, state, err.user_message)
            return
        handed = 0
        size = self.board.read().size
        for image in images:
            try:
                pixels = await decoded(image, size, self.cfg, self.pool)
            except GenerationError as err:
                self.report(f"image for {prompt.id} refused: {err.vj_message}")
                continue
            image_id = await self._save(prompt, image)
            self.ledger.handed_to_show(prompt, image_id)
            self.inbox.images.put(await show_image(self.cfg, self.pool, image_id, pixels, prompt.text, size))
            handed += 1
        if not handed:
            self.ledger.finish(prompt, State.FAILED, "The image could not be made. Please try again.")

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
        try:
            return (await self.ledger.store_image(prompt, image)).id
        except EngineError as err:  # the journal refused it: shown all the same, the VJ hears why
            self.report(f"journal: {err}")
            return f"{prompt.id}-x{id(image) % 10000}"

    # --- the show tells us what is on screen ---------------------------------------------
    async def _watch_show(self) -> None:
        while True:
            snap = self.board.read()
            self.ledger.on_screen((snap.current_id, snap.incoming_id))
            await asyncio.sleep(WATCH_PERIOD_S)


async def decoded(image: GeneratedImage, size: tuple[int, int], cfg: Config, pool: Executor) -> np.ndarray:
    """``image`` decoded and fitted to the show's ``size``, in the pool (never on the loop)."""
    return await asyncio.get_running_loop().run_in_executor(
        pool, prepare, image, size, cfg.render.max_image_size, cfg.show.fit)


async def from_journal(ledger: Ledger, image_id: str, size: tuple[int, int], cfg: Config, pool: Executor
                       ) -> np.ndarray:
    """A stored image read back and decoded for the show; GenerationError when its file is gone."""
    data = await ledger.image_bytes(image_id)
    if data is None:
        raise GenerationError(FailureKind.UNAVAILABLE, "its file is gone")
    return await decoded(GeneratedImage(data=data), size, cfg, pool)


async def show_image(cfg: Config, pool: Executor | None, image_id: str, pixels: np.ndarray, text: str,
                     size: tuple[int, int], urgent: bool = False) -> ShowImage:
    """The image for the show, with its caption band painted in ``pool`` for a ``size`` screen when
    ``[overlay] captions`` is on. A caption that cannot be painted is logged and left out: never the image."""
    band = None
    if cfg.overlay.captions and text.strip():
        try:
            band = await asyncio.get_running_loop().run_in_executor(pool, paint_caption, text, size, cfg.overlay)
        except Exception:
            log.exception("the caption of image %s could not be painted; it shows without", image_id)
    return ShowImage(image_id, pixels, caption=text, urgent=urgent, caption_pixels=band)
