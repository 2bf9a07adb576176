"""The model worker (engine/gen/local/worker.py): one thread, jobs by priority, failures contained.

A stand-in loader and plain functions as jobs: what is tested is the thread's behaviour, not a model.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest

from engine.gen.base import FailureKind, GenerationError
from engine.gen.local import device
from engine.gen.local.folder import LocalModelError
from engine.gen.local.status import LocalState
from engine.gen.local.worker import AUDIENCE, DREAM, ModelWorker
from tests.fakes import wait_for

FAKE = SimpleNamespace(device="cpu", device_line="cpu float32")


def loader(gate: threading.Event | None = None, loads: list[int] | None = None) -> Callable[..., Any]:
    """A load that reports progress, waits for ``gate`` (when given) and counts itself."""

    def load(progress: Callable[[float, str], None]) -> Any:
        progress(0.4, "reading unet")
        if gate is not None:
            assert gate.wait(10)
        if loads is not None:
            loads.append(1)
        return FAKE

    return load


@pytest.fixture
def worker() -> Any:
    made: list[ModelWorker] = []

    def make(load: Callable[..., Any], **kw: Any) -> ModelWorker:
        w = ModelWorker(load, name="fake", **kw)
        made.append(w)
        w.start()
        return w

    yield make
    for w in made:
        w.close()


def result(future: Future[Any]) -> Any:
    return future.result(timeout=10)


def test_loading_shows_its_progress_then_ready(worker: Any) -> None:
    """While the load runs the snapshot says how far; then ready, with the load time."""
    gate = threading.Event()
    w = worker(loader(gate))
    wait_for(lambda: w.snapshot().progress == 0.4)
    snap = w.snapshot()
    assert snap.state is LocalState.LOADING and snap.line == "loading 40%: reading unet" and w.models is None
    gate.set()
    wait_for(lambda: w.snapshot().state is LocalState.READY)
    assert w.models is FAKE and w.snapshot().load_s is not None


def test_a_job_sent_while_loading_runs_once_loaded(worker: Any) -> None:
    """call() never blocks: the job waits for the model and then gets it."""
    gate = threading.Event()
    w = worker(loader(gate))
    future = w.call(lambda models: models.device)
    assert not future.done()
    gate.set()
    assert result(future) == "cpu"


def test_audience_jobs_go_before_dream_jobs(worker: Any) -> None:
    """With the worker busy, a later audience job still runs before an earlier dream job."""
    w = worker(loader())
    busy = threading.Event()
    ran: list[str] = []
    first = w.call(lambda _m: busy.wait(10))
    dream = w.call(lambda _m: ran.append("dream"), DREAM)
    audience = w.call(lambda _m: ran.append("audience"), AUDIENCE)
    busy.set()
    for f in (first, dream, audience):
        result(f)
    assert ran == ["audience", "dream"]


def test_a_failed_load_fails_the_jobs_with_the_reason(worker: Any) -> None:
    """A loader that raises leaves the worker failed, saying why; jobs fail as UNAVAILABLE."""

    def broken(_progress: Any) -> Any:
        raise LocalModelError("models/x: no model_index.json: not a diffusers pipeline folder")

    w = worker(broken)
    future = w.call(lambda _m: "never")
    with pytest.raises(GenerationError, match=r"no model_index\.json") as err:
        result(future)
    assert err.value.kind is FailureKind.UNAVAILABLE
    snap = w.snapshot()
    assert snap.state is LocalState.FAILED and snap.line == "models/x: no model_index.json: not a diffusers " \
                                                            "pipeline folder"


def test_a_foreign_load_error_is_one_line_with_its_type(worker: Any) -> None:
    """diffusers' own errors reach the VJ as their type and first line."""

    def broken(_progress: Any) -> Any:
        raise OSError("Error no file named diffusion_pytorch_model.bin found in directory unet.\nmore")

    w = worker(broken)
    wait_for(lambda: w.snapshot().state is LocalState.FAILED)
    assert w.snapshot().line == "OSError: Error no file named diffusion_pytorch_model.bin found in directory unet."


def test_a_job_error_reaches_its_future_unchanged(worker: Any) -> None:
    """The caller gets the job's own exception; the worker goes on."""
    w = worker(loader())

    def bad(_m: Any) -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        result(w.call(bad))
    assert result(w.call(lambda _m: 7)) == 7


def test_out_of_memory_frees_memory(worker: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An out-of-memory job makes the worker collect garbage and empty the GPU cache, then go on."""
    freed: list[str] = []
    monkeypatch.setattr(device, "free_memory", freed.append)
    w = worker(loader())

    def oom(_m: Any) -> None:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(RuntimeError):
        result(w.call(oom))
    assert freed == ["cpu"] and w.snapshot().state is LocalState.READY


def test_three_driver_errors_in_a_row_reload_the_model(worker: Any) -> None:
    """Driver errors are counted; a success resets the count; the third in a row reloads."""
    loads: list[int] = []
    w = worker(loader(loads=loads))

    def crash(_m: Any) -> None:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    for job in (crash, crash, lambda _m: None, crash, crash):
        with pytest.raises(RuntimeError) if job is crash else contextlib.nullcontext():
            result(w.call(job))
    assert loads == [1]
    with pytest.raises(RuntimeError):
        result(w.call(crash))
    wait_for(lambda: len(loads) == 2 and w.snapshot().state is LocalState.READY)
    assert w.snapshot().loads == 2 and result(w.call(lambda m: m is FAKE))


def test_close_cancels_waiting_jobs_and_refuses_new_ones(worker: Any) -> None:
    """Closing stops after the job in hand; queued ones are cancelled, later ones UNAVAILABLE."""
    w = worker(loader())
    started, busy = threading.Event(), threading.Event()
    running = w.call(lambda _m: started.set() or busy.wait(10))
    queued = w.call(lambda _m: "late")
    assert started.wait(10)
    closer = threading.Thread(target=w.close)
    closer.start()
    busy.set()
    closer.join(10)
    assert result(running) is True and queued.cancelled()
    with pytest.raises(GenerationError, match="closed"):
        result(w.call(lambda _m: None))
    assert w.snapshot().state is LocalState.CLOSED
