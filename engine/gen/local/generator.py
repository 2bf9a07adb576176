"""``LocalGenerator``: the local diffusers model behind the ``Generator`` seam (``[generation] backend = "local"``).

The show starts at once: the model loads on its worker thread in the background, and until it is
ready every request raises ``GenerationError(UNAVAILABLE, "local model loading 40%")``, which the
pipeline answers with the offline generator, silently. A model that cannot be loaded stays
``failed`` with its reason on the VJ page, and the show goes on offline.

Each request becomes a job on the worker (audience priority, before dream frames). What comes back
is checked (``paint``); what goes wrong is translated here into the pipeline's terms:

* out of GPU memory → ``SERVER`` "ran out of GPU memory at WxH" (the worker has freed what it could);
* a torch or driver error → ``SERVER`` (three in a row and the worker reloads the model);
* NaN or all-black output → ``BAD_RESPONSE``; all flagged by the safety checker → ``MODERATED``.

Every one but ``MODERATED`` makes the pipeline paint that prompt offline, and the phone gets that
image; ``MODERATED`` tells the sender politely and shows nothing. torch is imported on the worker
thread (loading), never on the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from engine.config import Config, LocalConfig
from engine.gen.base import FailureKind, GeneratedImage, GenerationError, GenerationRequest
from engine.gen.local.knobs import Knobs, knobs_for
from engine.gen.local.presets import Plan
from engine.gen.local.status import LocalState, LocalStatus, RateMeter
from engine.gen.local.worker import AUDIENCE, ModelWorker, plain

if TYPE_CHECKING:
    from engine.gen.local.loader import Models, Progress

MAX_SAMPLES = 10
CLOSE_WAIT_S = 3.0


class LocalGenerator:
    """The local model as a backend; ``worker`` is shared with the dream layer."""

    name = "local"

    def __init__(self, cfg: LocalConfig, plan: Plan, *, load: Callable[[Progress], Models] | None = None,
                 start: bool = True) -> None:
        self._cfg = cfg
        self._plan = plan
        self._meter = RateMeter()
        self._last_error: str | None = None
        self.worker = ModelWorker(load or self._load, self._warm if cfg.warmup else None, name=plan.name)
        if start:
            self.worker.start()

    def __repr__(self) -> str:
        return f"LocalGenerator({self._plan.name!r}, {self.worker.snapshot().state.value})"

    # --- on the worker thread ----------------------------------------------------------------------
    def _load(self, progress: Progress) -> Models:
        from engine.gen.local.loader import load_models

        return load_models(self._plan, self._cfg, progress)

    @staticmethod
    def _warm(models: Models) -> None:
        from engine.gen.local.paint import warm_up

        warm_up(models)

    # --- on the loop ---------------------------------------------------------------------------------
    def reconfigure(self, cfg: Config) -> None:
        """New knobs from the control page (steps, guidance, size) for the next images; the model, its device
        and dtype stay as loaded (changing them means a restart)."""
        self._cfg = dataclasses.replace(cfg.local, model=self._cfg.model, device=self._cfg.device,
                                        dtype=self._cfg.dtype, tiny_vae=self._cfg.tiny_vae)

    def status(self) -> LocalStatus:
        """What the VJ page and the HUD show: state, load progress, device, memory, images/s."""
        snap = self.worker.snapshot()
        models = self.worker.models
        memory = 0.0
        if models is not None:
            from engine.gen.local.device import memory_mb  # torch is loaded once a model is

            memory = memory_mb(models.device)
        return LocalStatus(snap.state, snap.progress, snap.line, self._plan.name,
                           models.device_line if models is not None else "", memory, self._meter.rate(),
                           self._last_error, snap.load_s)

    def unavailable(self) -> GenerationError:
        """Why no request can run now, as the pipeline's UNAVAILABLE (it then paints offline, silently)."""
        snap = self.worker.snapshot()
        if snap.state is LocalState.LOADING:
            why = f"local model loading {snap.progress * 100:.0f}%"
        elif snap.state is LocalState.WARMING:
            why = "local model warming up"
        elif snap.state is LocalState.FAILED:
            why = f"local model failed: {snap.line}"
        else:
            why = f"local model {snap.state.value}"
        return GenerationError(FailureKind.UNAVAILABLE, why)

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        """``request.samples`` images from the local model, made on its worker; GenerationError otherwise."""
        if not request.prompt.strip():
            raise GenerationError(FailureKind.BAD_REQUEST, "empty prompt", "Please type something to see!")
        if not 1 <= request.samples <= MAX_SAMPLES:
            raise GenerationError(FailureKind.BAD_REQUEST, f"samples must be 1..{MAX_SAMPLES}, not {request.samples}")
        models = self.worker.models
        if models is None:
            raise self.unavailable()
        knobs = knobs_for(request, self._cfg, models.steps, models.cfg, models.native_size)
        from engine.gen.local.paint import paint  # the worker has imported torch by now

        future = self.worker.call(partial(paint, request=request, knobs=knobs), AUDIENCE)
        try:
            images, took = await asyncio.wrap_future(future)
        except GenerationError as err:
            if err.kind is not FailureKind.UNAVAILABLE:
                self._last_error = err.vj_message
            raise
        except Exception as exc:
            failure = translate(exc, knobs, len(knobs.seeds))
            self._last_error = failure.vj_message
            raise failure from None
        self._meter.add(len(knobs.seeds), took)
        self._last_error = None
        return images

    async def aclose(self) -> None:
        """Stop the worker (after the job in hand) and free the model; a load in progress is left to finish
        on its own after a few seconds (it cannot be cut short, and the show's shutdown must not wait)."""
        await asyncio.to_thread(self.worker.close, CLOSE_WAIT_S)


def translate(exc: Exception, knobs: Knobs, samples: int) -> GenerationError:
    """A failed job's exception in the pipeline's terms, with plain words for the VJ."""
    from engine.gen.local.device import is_out_of_memory

    if is_out_of_memory(exc):
        many = f", {samples} images at once" if samples > 1 else ""
        return GenerationError(FailureKind.SERVER, f"local model ran out of GPU memory at {knobs.size}{many}; "
                                                   "memory freed (a smaller [local] size or fewer samples helps)")
    if isinstance(exc, RuntimeError):
        return GenerationError(FailureKind.SERVER, f"local model driver error: {plain(exc)}")
    return GenerationError(FailureKind.SERVER, f"local model failed: {plain(exc)}")
