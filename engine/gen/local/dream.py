"""The dream layer's loop: one denoising step of image-to-image on the program, live, steered by the prompt on screen.

What StreamDiffusion does in TouchDesigner, on the local model (a task on the backstage loop)::

    every 1/fps s at most, while the show's dream mix is above 0:
        the source picture: the program (scaled to the dream's size and read back by the show without waiting,
            before the dream layer and the overlays: no feedback, no HUD or QR code dreamt) or the image on screen
        → the prompt on screen's embeddings, morphed from the last prompt's over [dream] morph seconds
        → one denoising step on the model thread (``worker.call``, below every audience job's priority)
        → the frame into the show's dream slot (the show draws the newest it has and never waits for one)

Design choices:
- One step, whatever the strength: img2img runs ``int(steps * strength)`` steps, so ``steps`` is the
  smallest count with ``steps * strength >= 1`` (``one_step``). No guidance (the turbo models' way; it also
  halves the UNet's work), so no negative prompt.
- The same noise every frame (a fixed seed for the loop's life): the picture changes with its source and
  its prompt, not with fresh noise each frame, which would flicker.
- Prompts are encoded once each (the pipeline's ``encode_prompt``; SDXL's pooled embeddings too) and kept
  for a few prompts. On a change, the morph starts from the embeddings the last frame was made with, so a
  prompt that changes mid-morph never jumps.
- A step that fails (out of memory, a NaN picture, a flagged one) sends nothing: the show holds the last
  frame. The loop backs off (0.5 s, doubling to 8 s) and says so once, not every frame. The worker
  contains the failure itself (frees memory, reloads after driver errors); audience jobs never wait
  behind more than the one dream step in hand, since the loop has at most one job queued.
- While the model loads (or reloads, or cannot be loaded), the dream waits and says why.

The model worker (``engine/gen/local/worker.py``) and what it hands a job are seen through ``ModelWorker``
and ``Models`` below, so the loop is tested with fakes and no torch.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

import numpy as np

from engine.config import DreamConfig
from engine.contract import CaptureWish, DreamSlot, Inbox, StateBoard
from engine.errors import EngineError
from engine.gen.local.status import LocalState
from engine.gen.local.worker import DREAM

log = logging.getLogger(__name__)

T = TypeVar("T")

DREAM_PRIORITY = DREAM  # the worker runs lower numbers first: every audience job goes ahead of the dream
PAUSE_S = 0.25  # how often a paused dream (mix 0) looks again
SOURCE_TIMEOUT_S = 1.0  # a program picture the show has not answered by then: try again next frame
BACKOFF_S = (0.5, 8.0)  # after a failed step: the first wait, and the longest
REPORT_EVERY_S = 30.0  # the same failure is said again at most this often
PROMPTS_KEPT = 8  # prompts whose embeddings are kept
FPS_WINDOW = 20  # frames the status's frames-per-second is measured over
_RESHOWN = re.compile(r"-again\d+$")  # a gallery image shown again: engine/backstage/control.py names it so


class DreamError(EngineError):
    """A dream step that gave nothing to show (a NaN picture, a flagged one)."""


class Models(Protocol):
    """What the model thread hands a job: the loaded pipelines (weights shared) and where they run
    (read-only, so the frozen ``loader.Models`` fits)."""

    @property
    def img2img(self) -> Any: ...
    @property
    def text2img(self) -> Any: ...
    @property
    def device(self) -> Any: ...
    @property
    def dtype(self) -> Any: ...
    @property
    def kind(self) -> str: ...  # "sd" or "sdxl"


class ModelWorker(Protocol):
    """The one thread that owns the model: ``call(fn, priority)`` runs ``fn(models)`` there, lower numbers first."""

    def call(self, fn: Callable[[Any], T], priority: int) -> Future[T]: ...


# --- pure parts -------------------------------------------------------------------------------------
def morph_weight(elapsed: float, duration: float) -> float:
    """How far a morph of ``duration`` seconds is after ``elapsed``: 0 at its start, 1 at its end and after,
    eased in and out between (smoothstep), so the picture starts and settles gently."""
    if duration <= 0.0 or elapsed >= duration:
        return 1.0
    if elapsed <= 0.0:
        return 0.0
    x = elapsed / duration
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True, eq=False)
class Embeds:
    """A prompt's embeddings as the pipeline takes them: per token, and SDXL's pooled one (None for SD 1.x)."""

    prompt: Any
    pooled: Any = None


def blend(a: Embeds, b: Embeds, weight: float) -> Embeds:
    """``a`` → ``b`` at ``weight``, linearly; exactly ``a`` at 0 and exactly ``b`` at 1 (tensors or arrays)."""
    if weight <= 0.0:
        return a
    if weight >= 1.0:
        return b
    pooled = None if a.pooled is None or b.pooled is None else a.pooled + (b.pooled - a.pooled) * weight
    return Embeds(a.prompt + (b.prompt - a.prompt) * weight, pooled)


def one_step(strength: float) -> int:
    """The ``num_inference_steps`` for which image-to-image at ``strength`` runs exactly one denoising step."""
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be in (0, 1], not {strength}")
    steps = max(1, math.ceil(1.0 / strength - 1e-9))
    while int(steps * strength) < 1:  # float rounding: 1/s a hair under an integer
        steps += 1
    return steps


def dream_size(width: int, height: int, longest: int, multiple: int = 8) -> tuple[int, int]:
    """``width`` x ``height`` scaled so the longest side is ``longest``, both sides multiples of ``multiple``."""
    scale = longest / max(width, height)
    w, h = (max(multiple, round(side * scale / multiple) * multiple) for side in (width, height))
    return w, h


def image_id_of(shown_id: str | None) -> str | None:
    """The stored image behind what the show calls ``shown_id`` (a re-shown image has a suffix)."""
    return _RESHOWN.sub("", shown_id) if shown_id else None


# --- on the model thread ------------------------------------------------------------------------------
def encode(models: Models, text: str) -> Embeds:
    """The prompt's embeddings, by the pipeline's own ``encode_prompt`` (no guidance: no negative prompt)."""
    import torch

    with torch.inference_mode():
        out = models.img2img.encode_prompt(prompt=text, device=models.device, num_images_per_prompt=1,
                                           do_classifier_free_guidance=False)
    return Embeds(out[0], out[2] if len(out) > 2 else None)  # SD: (embeds, negative); SDXL adds the pooled pair


@dataclass(frozen=True, eq=False)
class DreamJob:
    """One dream step's inputs: the source picture, the morph's two ends and where it is, how far to move."""

    pixels: np.ndarray  # (h, w, 3 or 4) uint8, top row first
    start: Embeds
    end: Embeds
    weight: float
    strength: float
    size: int
    seed: int


def dream_step(models: Models, job: DreamJob) -> tuple[np.ndarray, Embeds]:
    """One denoising step on ``job``: the frame, (h, w, 3) uint8 at the dream's size, and the embeddings used."""
    import torch
    from PIL import Image

    used = blend(job.start, job.end, job.weight)
    src = job.pixels[..., :3]
    w, h = dream_size(src.shape[1], src.shape[0], job.size)
    image = Image.fromarray(np.ascontiguousarray(src), "RGB")
    if image.size != (w, h):
        image = image.resize((w, h), Image.Resampling.BILINEAR)
    pipe = models.img2img
    pipe.set_progress_bar_config(disable=True)  # 20 bars a second would bury the log
    args: dict[str, Any] = {"prompt_embeds": used.prompt}
    if used.pooled is not None:
        args["pooled_prompt_embeds"] = used.pooled
    with torch.inference_mode():  # out of memory and driver errors are the worker's to contain
        result = pipe(image=image, strength=job.strength, num_inference_steps=one_step(job.strength),
                      guidance_scale=0.0, generator=torch.Generator("cpu").manual_seed(job.seed),
                      output_type="np", **args)
    flagged = getattr(result, "nsfw_content_detected", None)
    if flagged and any(flagged):
        raise DreamError("the safety checker flagged a dream frame")
    out = np.asarray(result.images[0], dtype=np.float32)
    if not np.isfinite(out).all():
        raise DreamError("the model gave a NaN picture")
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), used


# --- the loop -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DreamStatus:
    """What the VJ sees of the dream: ``state`` is starting (the model loads), running, paused (mix 0),
    waiting (no picture to dream on yet), failing (steps fail; backing off) or off (the model cannot be
    used); ``error`` says why when failing or off."""

    state: str = "starting"
    fps: float = 0.0
    frames: int = 0
    prompt: str = ""
    error: str = ""

    def line(self) -> str:
        problem = f"   ! {self.error}" if self.error else ""
        rate = f" {self.fps:.1f} fps" if self.state == "running" else ""
        return f"dream: {self.state}{rate}{problem}"

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "fps": round(self.fps, 1), "frames": self.frames, "prompt": self.prompt,
                "error": self.error}


@dataclass
class _Morph:
    """Where the prompt morph is: from the embeddings last used, to the prompt on screen's."""

    text: str | None = None
    start: Embeds | None = None
    end: Embeds | None = None
    since: float = 0.0
    last_used: Embeds | None = None


@dataclass
class DreamLoop:
    """The dream's task: ``run()`` on the backstage loop; ``status()`` from anywhere (a frozen value)."""

    cfg: DreamConfig
    worker: ModelWorker
    source: Callable[[], Awaitable[np.ndarray | None]]  # the picture to dream on, or None (none yet)
    prompt: Callable[[], str]  # the prompt on screen ("" when it has none)
    out: Callable[[np.ndarray | None], None]  # a frame to the show (None: the layer goes away)
    mix: Callable[[], float]  # the show's dream mix now (0: nobody sees the dream; it pauses)
    report: Callable[[str], None] = lambda _m: None  # a problem the VJ should read
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    seed: int = field(default_factory=lambda: random.randrange(1, 2**31))
    # Why the model cannot take dream steps now: None when it can, else (state, why): "starting" while it
    # loads, "off" when it cannot be loaded.
    hold: Callable[[], tuple[str, str] | None] = lambda: None
    _status: DreamStatus = field(default_factory=DreamStatus)
    _morph: _Morph = field(default_factory=_Morph)
    _embeds: OrderedDict[str, Embeds] = field(default_factory=OrderedDict)
    _times: deque[float] = field(default_factory=lambda: deque(maxlen=FPS_WINDOW))
    _frames: int = 0
    _backoff: float = 0.0
    _said: tuple[str, float] = ("", -math.inf)
    # The next source picture, asked for while the model makes this frame: the show answers a capture a frame
    # or two later, which would otherwise come on top of every step.
    _next: asyncio.Future[np.ndarray | None] | None = None

    def status(self) -> DreamStatus:
        return self._status

    def _set(self, state: str, error: str = "") -> None:
        times = self._times
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        self._status = DreamStatus(state, fps if state == "running" else 0.0, self._frames, self._morph.text or "",
                                   error)

    async def run(self) -> None:
        """Dream until cancelled: at most ``fps`` frames a second, paused while the mix is 0."""
        period = 1.0 / self.cfg.fps
        try:
            while True:
                held = self.hold()
                if held is not None or self.mix() <= 0.0:
                    self._set(*(held or ("paused",)))
                    self._times.clear()
                    self._drop_next()  # stale by the time the dream goes on again
                    await self.sleep(PAUSE_S)
                    continue
                began = self.clock()
                try:
                    await self.step()
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # one bad step never ends the dream, nor touches the audience's images
                    self._drop_next()
                    await self.sleep(self._failed(err))
                    continue
                await self.sleep(max(0.0, began + period - self.clock()))
        finally:
            self._drop_next()
            self.out(None)  # the dream is over: the show takes its layer away instead of holding a frame forever

    async def step(self) -> bool:
        """One frame: True when one went to the show, False when there was no picture to dream on yet."""
        ahead, self._next = self._next, None
        pixels = await (ahead if ahead is not None else self.source())
        if pixels is None:
            self._set("waiting")
            return False
        text = self.prompt() or self._morph.text or ""
        end = await self._encoded(text)
        now = self.clock()
        m = self._morph
        if m.text is None:  # the first prompt: no morph
            m.text, m.start, m.end, m.since = text, end, end, now - self.cfg.morph
        elif text != m.text:  # a new prompt: morph from what the last frame was made with
            m.text, m.start, m.end, m.since = text, m.last_used or m.end, end, now
        assert m.start is not None and m.end is not None
        job = DreamJob(pixels, m.start, m.end, morph_weight(now - m.since, self.cfg.morph), self.cfg.strength,
                       self.cfg.size, self.seed)
        self._next = asyncio.ensure_future(self.source())
        frame, used = await asyncio.wrap_future(self.worker.call(partial(dream_step, job=job), DREAM_PRIORITY))
        m.last_used = used
        self.out(frame)
        self._times.append(self.clock())
        self._frames += 1
        self._backoff = 0.0
        self._set("running")
        return True

    def _drop_next(self) -> None:
        if self._next is not None:
            self._next.cancel()
            self._next = None

    async def _encoded(self, text: str) -> Embeds:
        """The prompt's embeddings, encoded on the model thread the first time it is seen."""
        kept = self._embeds.get(text)
        if kept is None:
            kept = await asyncio.wrap_future(self.worker.call(partial(encode, text=text), DREAM_PRIORITY))
            self._embeds[text] = kept
            while len(self._embeds) > PROMPTS_KEPT:
                self._embeds.popitem(last=False)
        else:
            self._embeds.move_to_end(text)
        return kept

    def _failed(self, err: BaseException) -> float:
        """Say what failed (once, then every REPORT_EVERY_S at most) and how long to wait before the next try."""
        message = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        now = self.clock()
        said, at = self._said
        if message != said or now - at >= REPORT_EVERY_S:
            self._said = (message, now)
            log.warning("dream step failed (%s); the layer holds its last frame", message)
            self.report(f"dream: {message}")
        self._backoff = min(BACKOFF_S[1], self._backoff * 2 if self._backoff else BACKOFF_S[0])
        self._times.clear()
        self._set("failing", message)
        return self._backoff


# --- the sources and the wiring -------------------------------------------------------------------------
def program_source(inbox: Inbox, longest: int) -> Callable[[], Awaitable[np.ndarray | None]]:
    """The program output, scaled so its longest side is ``longest``: the capture path image-to-image uses,
    answered without a second draw (``engine.contract.CaptureWish``)."""

    async def picture() -> np.ndarray | None:
        wanted: Future[np.ndarray] = Future()
        inbox.captures.put(CaptureWish(wanted, longest))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(wanted), SOURCE_TIMEOUT_S)
        except TimeoutError:
            wanted.cancel()
            return None

    return picture


def _decoded_rgb(data: bytes, longest: int) -> np.ndarray:
    """An image file → (h, w, 3) uint8 at the dream's size (in the pool)."""
    from PIL import Image

    from engine.gen.decode import decode

    im = decode(data).convert("RGB")
    size = dream_size(im.width, im.height, longest)
    if im.size != size:
        im = im.resize(size, Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


class Ledgerish(Protocol):
    """The ledger as the dream reads it: an image's prompt and its bytes."""

    def text_of_image(self, image_id: str) -> str: ...

    async def image_bytes(self, image_id: str) -> bytes | None: ...


def image_source(ledger: Ledgerish, board: StateBoard, pool: Executor, longest: int
                 ) -> Callable[[], Awaitable[np.ndarray | None]]:
    """The audience image on screen, read from the journal and decoded once (in the pool) while it stays there."""
    kept: list[tuple[str, np.ndarray]] = []

    async def picture() -> np.ndarray | None:
        image_id = image_id_of(board.read().current_id)
        if image_id is None:
            return None
        if kept and kept[0][0] == image_id:
            return kept[0][1]
        data = await ledger.image_bytes(image_id)
        if data is None:  # a demo picture or one the journal lost: nothing to dream on
            return None
        pixels = await asyncio.get_running_loop().run_in_executor(pool, _decoded_rgb, data, longest)
        kept[:] = [(image_id, pixels)]
        return pixels

    return picture


def prompt_on_screen(ledger: Ledgerish, board: StateBoard) -> Callable[[], str]:
    """The prompt of the image on screen ("" for a demo picture or the idle screen)."""

    def text() -> str:
        image_id = image_id_of(board.read().current_id)
        return ledger.text_of_image(image_id) if image_id else ""

    return text


def model_hold(snapshot: Callable[[], Any]) -> Callable[[], tuple[str, str] | None]:
    """The dream's ``hold`` from the worker's state (``ModelWorker.snapshot``): run when ready, start when
    loading, off when failed."""

    def held() -> tuple[str, str] | None:
        snap = snapshot()
        if snap.state is LocalState.READY:
            return None
        if snap.state in (LocalState.LOADING, LocalState.WARMING):
            return "starting", snap.line
        return "off", f"local model: {snap.line}"

    return held


def dream_loop(cfg: DreamConfig, worker: ModelWorker, inbox: Inbox, board: StateBoard, ledger: Ledgerish,
               pool: Executor, report: Callable[[str], None] = lambda _m: None) -> DreamLoop:
    """The dream, wired to the show (its inbox and state board), the ledger and the worker, as ``[dream]`` says."""
    source = program_source(inbox, cfg.size) if cfg.source == "program" else image_source(ledger, board, pool,
                                                                                          cfg.size)
    slot: DreamSlot = inbox.dream
    snapshot = getattr(worker, "snapshot", None)
    hold = model_hold(snapshot) if callable(snapshot) else (lambda: None)
    return DreamLoop(cfg, worker, source, prompt_on_screen(ledger, board), slot.put,
                     lambda: board.read().dream_mix, report, hold=hold)


def dream_for(cfg: DreamConfig, primary: object, inbox: Inbox, board: StateBoard, ledger: Ledgerish,
              pool: Executor, report: Callable[[str], None] = lambda _m: None) -> DreamLoop | None:
    """The dream on the primary generator's model worker, or None (with the reason logged) when it has none."""
    worker = getattr(primary, "worker", None)
    if worker is None or not callable(getattr(worker, "call", None)):
        log.warning("[dream] is on but the images come from %s, not the local model "
                    "([generation] backend = \"local\" and a [local] model): no dream layer",
                    getattr(primary, "name", "another backend"))
        return None
    return dream_loop(cfg, worker, inbox, board, ledger, pool, report)
