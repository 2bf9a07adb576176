"""One thread owns the local model: it loads it, warms it up, and runs every job on it, most urgent first.

Why a thread and not a process: torch releases the GIL inside every kernel, so the Python left
around a denoising step is all the backstage's event loop shares with it; a process would need every
image, and every dream frame going the other way, pickled across a pipe, and a second interpreter
importing torch and diffusers (hundreds of MB more). Measured on this 2-core machine while another
process kept it busy, with the tiny test pipelines and one torch thread: a thread loads a model in
0.15-0.5 s once torch is imported, a process needs 7-9 s (its own interpreter and imports); per
image the two are the same within the noise (256 px: 72-102 ms in the thread, 80-99 ms in a
process; 512 px: 300-440 ms and 390 ms); and a 1 ms sleep loop on another thread woke late by
2.0-3.6 ms at the 99th percentile while the thread generated, 1.6-2.7 ms with a process, 1.8 ms idle.

Why one thread: a GPU runs one pipeline call at a time anyway, and CUDA state (streams, the
caching allocator, cuDNN's chosen kernels) is cheapest when one thread drives it. Jobs wait in a
priority queue: audience images (``AUDIENCE``) go before dream frames (``DREAM``).

The API for other parts of the engine (the generator, the dream layer)::

    worker = ModelWorker(load, warmup, name="sd-turbo")
    worker.start()                       # loads in the background; returns at once
    future = worker.call(fn, priority)   # concurrent.futures.Future of fn(models), run on the worker
    worker.snapshot()                    # state (loading, warming, ready, failed), progress, why
    worker.models                        # the loaded Models, or None (read-only: knobs, kind, device)
    worker.close()                       # stop after the current job; queued jobs are cancelled

``fn(models)`` gets ``loader.Models``: ``text2img`` and ``img2img`` pipelines (one set of weights),
``device``, ``dtype``, ``kind`` ("sd" or "sdxl"), and the model's own steps, guidance and size.
Lower ``priority`` numbers run first; equal ones in the order they came. A job submitted while the
model loads waits for it; if the model cannot be loaded, or the worker is closed, its future fails
with ``GenerationError(UNAVAILABLE)``. A job's exception reaches its future unchanged, after the
worker has contained it: out of memory frees what it can (garbage collection and the GPU cache),
and ``reload_after`` driver errors in a row (other torch RuntimeErrors) reload the model.
"""

from __future__ import annotations

import gc
import itertools
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from engine.gen.base import FailureKind, GenerationError
from engine.gen.local.folder import LocalModelError
from engine.gen.local.status import LocalState

if TYPE_CHECKING:
    from engine.gen.local.loader import Models, Progress

log = logging.getLogger(__name__)

T = TypeVar("T")
AUDIENCE = 0  # a phone's prompt: first
DREAM = 10  # a dream-layer frame: when no audience image waits
RELOAD_AFTER = 3  # driver errors in a row before the model is loaded again
STOP = -1  # the stop signal jumps the queue


@dataclass(frozen=True)
class Snapshot:
    """The worker's state at one moment, for the status line."""

    state: LocalState
    progress: float  # of the current or last load, 0..1
    line: str  # plain words: "loading 40%: reading unet", "warming up", "ready", the failure
    load_s: float | None  # how long the last successful load and warm-up took
    loads: int  # loads started so far (2 and more: reloads)


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    fn: Callable[[Models], Any] | None = field(compare=False)
    future: Future[Any] | None = field(compare=False)


def plain(exc: BaseException) -> str:
    """An exception as one line for the VJ: our own errors as they are, others with their type."""
    if isinstance(exc, LocalModelError | GenerationError):
        return str(exc.vj_message if isinstance(exc, GenerationError) else exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:240] if text else type(exc).__name__


def _drop_frames(exc: BaseException) -> None:
    """Forget the tracebacks of ``exc`` and its causes: their frames hold the failed step's tensors,
    which out-of-memory recovery must free (the VJ gets plain words, the debug log the trace)."""
    seen: set[int] = set()
    each: BaseException | None = exc
    while each is not None and id(each) not in seen:
        seen.add(id(each))
        each.__traceback__ = None
        each = each.__cause__ or each.__context__


class ModelWorker:
    """The thread that owns the model (see the module docstring for the API)."""

    def __init__(self, load: Callable[[Progress], Models], warmup: Callable[[Models], object] | None = None,
                 *, name: str = "local", reload_after: int = RELOAD_AFTER) -> None:
        self.name = name
        self.reload_after = reload_after
        self._load_fn = load
        self._warmup = warmup
        self._queue: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._state = LocalState.LOADING
        self._progress = 0.0
        self._line = "loading 0%"
        self._load_s: float | None = None
        self._loads = 0
        self._models: Models | None = None
        self._driver_errors = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"model-{name}", daemon=True)

    # --- any thread ----------------------------------------------------------------------------
    def start(self) -> None:
        """Begin loading in the background; returns at once."""
        self._thread.start()

    def call(self, fn: Callable[[Models], T], priority: int = AUDIENCE) -> Future[T]:
        """Run ``fn(models)`` on the worker thread; lower ``priority`` first. Never blocks."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                future.set_exception(GenerationError(FailureKind.UNAVAILABLE, f"local model {self.name} is closed"))
                return future
            self._queue.put(_Job(priority, next(self._seq), fn, future))
        return future

    @property
    def models(self) -> Models | None:
        """The loaded model while it is ready (its knobs and kind may be read from any thread)."""
        with self._lock:
            return self._models if self._state is LocalState.READY else None

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(self._state, self._progress, self._line, self._load_s, self._loads)

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the job in hand (a load cannot be cut short); waiting jobs are cancelled."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_Job(STOP, next(self._seq), None, None))
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("local model %s: still busy after %.0f s; left to finish on its own", self.name, timeout)

    # --- the worker thread ---------------------------------------------------------------------
    def _set(self, state: LocalState, line: str, progress: float | None = None) -> None:
        with self._lock:
            if self._state is LocalState.CLOSED:
                return
            self._state = state
            self._line = line
            if progress is not None:
                self._progress = progress

    def _report_progress(self, fraction: float, what: str) -> None:
        fraction = min(1.0, max(0.0, fraction))
        self._set(LocalState.LOADING, f"loading {fraction * 100:.0f}%: {what}", fraction)

    def _load(self) -> None:
        with self._lock:
            self._loads += 1
            self._models = None
        started = time.monotonic()
        self._set(LocalState.LOADING, "loading 0%", 0.0)
        models: Models | None = None
        try:
            models = self._load_fn(self._report_progress)
            if self._warmup is not None:
                self._set(LocalState.WARMING, "warming up")
                self._warmup(models)
        except Exception as exc:
            why = plain(exc)
            log.error("local model %s cannot be used (offline images instead): %s", self.name, why)
            if not isinstance(exc, LocalModelError):
                log.debug("local model %s: load failed", self.name, exc_info=True)
            _drop_frames(exc)  # what was read before the failure goes with the frames
            self._set(LocalState.FAILED, why)
            models = None
        if models is None:
            self._free(None)
            return
        took = time.monotonic() - started
        with self._lock:
            self._models = models
            self._load_s = took
            self._driver_errors = 0
        self._set(LocalState.READY, "ready", 1.0)
        log.info("local model %s ready on %s in %.1f s", self.name, models.device_line, took)

    def _free(self, device: str | None) -> None:
        """Garbage first, then the GPU cache (any GPU's when the device is not known, as after a failed load)."""
        gc.collect()
        if "torch" not in sys.modules:
            return
        from engine.gen.local.device import free_memory

        for each in (device,) if device is not None else ("cuda", "mps"):
            free_memory(each)

    def _contain(self, exc: Exception, models: Models) -> bool:
        """Free memory after running out of it; count driver errors. True: reload the model now."""
        from engine.gen.local.device import free_memory, is_driver_error, is_out_of_memory

        if is_out_of_memory(exc):
            log.warning("local model %s ran out of memory; freeing what it can", self.name)
            free_memory(models.device)
            return False
        if not is_driver_error(exc):
            return False
        self._driver_errors += 1
        log.warning("local model %s: driver error %d in a row: %s", self.name, self._driver_errors, plain(exc))
        return self._driver_errors >= self.reload_after

    def _run(self) -> None:
        self._load()
        while True:
            job = self._queue.get()
            if job.fn is None or job.future is None:
                break
            if not job.future.set_running_or_notify_cancel():
                continue
            with self._lock:
                models = self._models
                failed = self._line if self._state is LocalState.FAILED else ""
            if models is None:
                job.future.set_exception(GenerationError(FailureKind.UNAVAILABLE,
                                                         f"local model {self.name} failed: {failed}"))
                continue
            try:
                result = job.fn(models)
            except Exception as exc:
                log.debug("local model %s: a job failed", self.name, exc_info=exc)
                _drop_frames(exc)
                reload = self._contain(exc, models)
                job.future.set_exception(exc)
                del exc, models
                if reload:
                    log.warning("local model %s: reloading after %d driver errors", self.name, self.reload_after)
                    device = self._drop()
                    self._free(device)
                    self._load()
                continue
            self._driver_errors = 0
            job.future.set_result(result)
        self._finish()

    def _drop(self) -> str | None:
        with self._lock:
            models, self._models = self._models, None
        return None if models is None else models.device

    def _finish(self) -> None:
        device = self._drop()
        with self._lock:
            self._state = LocalState.CLOSED
            self._line = "closed"
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job.future is not None:
                job.future.cancel()
        if device is not None and device != "cpu":  # on the CPU the dropped references free the tensors
            self._free(device)
