"""The generate role: take a show's jobs from Redis, make their images, post the results.

    jobs ─XREADGROUP (group "generate")─▶ read_job ─▶ primary generator ─▶ PNG ─▶ MULTI XADD results,
                                                                                    XACK + XDEL the job EXEC

Each round the worker first takes over jobs whose worker died (pending longer than ``[cluster]
claim_after``: XPENDING names the old owner, XCLAIM with the same idle time lets only one worker win), then
reads new ones, up to ``[cluster] workers`` at once. A job is acknowledged in the same transaction that adds
its result, so it is done exactly when its images are in Redis: a worker killed before that leaves it pending
for another. The job entry is deleted there too, so the stream holds only unfinished jobs (an image-to-image
job carries its init picture). A job that has killed ``MAX_DELIVERIES`` workers gets an error result instead
of a fourth: the show paints it offline and the farm goes on.

A failure of the backend is a result too (``error``, see ``jobs.failure_text``), so the show falls back at
once instead of waiting for a takeover. Its message passes the API key redactor first.

Redis going away mid-run is one log line; the worker reconnects with ``Backoff``, and a finished job's result
is posted again and again until Redis takes it (or the stop's grace runs out: the job stays pending and
another worker makes it). On SIGTERM or SIGINT the worker stops taking jobs, finishes the ones it has (at most
``STOP_GRACE_S``), leaves the group if it holds nothing, and exits 0; a second signal stops it at once.

Run as ``python -m engine generate [--redis URL] [--name NAME] [--set section.key=value ...]``
(engine/cluster/roles_cli.py calls ``main``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from engine.cluster.jobs import Retries, failure_text
from engine.cluster.keys import JOBS_GROUP, STREAM_MAXLEN, Keys
from engine.cluster.link import (
    ClusterError,
    close,
    connect,
    describe,
    ensure_group,
    is_connection_error,
    is_missing_group,
    raise_if_cancelled,
    redacted,
)
from engine.cluster.wire import MAX_IMAGES, Fields, Result, WireError, read_job, result_fields
from engine.config import Config
from engine.errors import ImageError
from engine.gen.backends import make_generators, stability_key
from engine.gen.base import FailureKind, GeneratedImage, GenerationError, GenerationRequest, Generator
from engine.gen.images import encode

log = logging.getLogger(__name__)

BLOCK_MS = 2000  # the longest blocking read while idle (Redis' socket timeout is longer)
BUSY_BLOCK_MS = 250  # while jobs run: a slot that frees is filled soon
STOP_GRACE_S = 60.0  # how long a stopping worker lets its jobs finish
MAX_DELIVERIES = 3  # a job delivered this often (each worker died on it) is given up
POST_TRIES = 5  # a result Redis refuses (not: is away) this often stays pending, for a takeover

Redact = Callable[[str], str]
Entry = tuple[bytes, Fields]  # a stream entry: its id and fields ({} when deleted while pending)


def default_name() -> str:
    """``host-pid``: unique among the workers of a farm, and tells a technician where to look."""
    return f"{socket.gethostname()}-{os.getpid()}"


def encoded(images: Iterable[GeneratedImage]) -> list[GeneratedImage]:
    """Images as they go on the wire: bytes as they came, pixels as PNG (in a pool: PNG takes a while)."""
    out = []
    for image in images:
        if image.data is not None:
            out.append(GeneratedImage(data=image.data, mime=image.mime, seed=image.seed, metadata=image.metadata))
        elif image.pixels is not None:
            try:
                data = encode(image.pixels, "png")
            except ImageError as err:
                raise GenerationError(FailureKind.BAD_RESPONSE, f"an image could not be encoded: {err}") from err
            out.append(GeneratedImage(data=data, mime="image/png", seed=image.seed, metadata=image.metadata))
    return out


class Worker:
    """The job loop of one generate process (``run_worker`` builds it; tests may drive it directly)."""

    def __init__(self, r: Any, keys: Keys, generator: Generator, name: str, claim_after: float, slots: int,
                 pool: Executor | None = None, redact: Redact = lambda text: text) -> None:
        self.r = r
        self.keys = keys
        self.generator = generator
        self.name = name
        self.claim_ms = int(claim_after * 1000)
        self.slots = slots
        self.pool = pool
        self.redact = redact
        self._running: dict[bytes, asyncio.Task[None]] = {}
        self._slot_free = asyncio.Event()
        self._retries = Retries()
        self._down = False

    async def run(self, stop: asyncio.Event, grace_s: float = STOP_GRACE_S) -> None:
        """Take and make jobs until ``stop`` is set, then let the running ones finish (``grace_s`` at most)."""
        backlog: bytes | None = b"0"  # our own pending jobs first (a worker restarted under its old name)
        while not stop.is_set():
            free = self.slots - len(self._running)
            if free <= 0:
                await self._wait_for_slot(stop)
                continue
            try:
                if backlog is not None:
                    entries = await self._read(backlog, free, block=None)
                    backlog = entries[-1][0] if entries else None
                    entries = [e for e in entries if e[0] not in self._running]
                else:
                    entries = await self._reclaim(free)
                    if len(entries) < free:
                        block = BUSY_BLOCK_MS if self._running else BLOCK_MS
                        entries += await self._read(b">", free - len(entries), block)
                self._link_ok()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                raise_if_cancelled(err)
                await self._link_failed(err, stop)
                continue
            for entry_id, fields in entries:
                self._start(entry_id, fields)
        await self._finish_running(grace_s)

    # --- taking jobs ------------------------------------------------------------------------------------------
    async def _read(self, start: bytes, count: int, block: int | None) -> list[Entry]:
        answer = await self.r.xreadgroup(JOBS_GROUP, self.name, {self.keys.jobs: start}, count=count, block=block)
        return [(entry_id, fields or {}) for entry_id, fields in answer[0][1]] if answer else []

    async def _reclaim(self, count: int) -> list[Entry]:
        """Jobs pending longer than claim_after (their worker died, or is far slower than it should be)."""
        stale = await self.r.xpending_range(self.keys.jobs, JOBS_GROUP, "-", "+", count + len(self._running),
                                            idle=self.claim_ms)
        if not [s for s in stale if s["message_id"] not in self._running]:
            return []
        # XAUTOCLAIM takes what is idle past claim_after, atomically: of two workers reclaiming one job, only the
        # first gets it. XPENDING just before says whose they were and how often they were handed out (for the
        # log, and to give up on a job that kills every worker). A job of ours still being made is only
        # refreshed by the claim (its idle time starts again), never started twice.
        answer = await self.r.xautoclaim(self.keys.jobs, JOBS_GROUP, self.name, self.claim_ms, "0-0", count=count)
        claimed = [(entry_id, fields) for entry_id, fields in answer[1] if entry_id not in self._running]
        owners = {s["message_id"]: s for s in stale}
        out: list[Entry] = []
        for entry_id, fields in claimed:
            info = owners.get(entry_id, {})
            old = info.get("consumer", b"?")
            log.warning("reclaimed job %s from %s (pending over %.0f s)", _prompt_of(fields), _text(old),
                        self.claim_ms / 1000)
            if int(info.get("times_delivered", 0)) >= MAX_DELIVERIES and fields:
                self._start_give_up(entry_id, fields, int(info["times_delivered"]))
                continue
            out.append((entry_id, fields or {}))
        return out

    def _start(self, entry_id: bytes, fields: Fields) -> None:
        self._track(entry_id, asyncio.create_task(self._job(entry_id, fields), name=f"job-{_text(entry_id)}"))

    def _start_give_up(self, entry_id: bytes, fields: Fields, times: int) -> None:
        log.error("job %s was taken by %d workers and none finished it: given up (the show paints it offline)",
                  _prompt_of(fields), times)
        try:
            pid = read_job(fields).prompt_id
        except WireError:
            pid = ""  # a malformed job: nobody can be told, it is only acknowledged
        result = Result(pid, error=failure_text(FailureKind.SERVER, f"{times} workers stopped while making it"),
                        worker=self.name) if pid else None
        self._track(entry_id, asyncio.create_task(self._post(entry_id, result), name=f"give-up-{_text(entry_id)}"))

    def _track(self, entry_id: bytes, task: asyncio.Task[None]) -> None:
        self._running[entry_id] = task

        def done(t: asyncio.Task[None]) -> None:
            self._running.pop(entry_id, None)
            self._slot_free.set()
            if not t.cancelled() and t.exception() is not None:
                log.error("job entry %s failed unexpectedly", _text(entry_id), exc_info=t.exception())

        task.add_done_callback(done)

    async def _wait_for_slot(self, stop: asyncio.Event) -> None:
        self._slot_free.clear()
        if self.slots - len(self._running) > 0:
            return
        waits = [asyncio.ensure_future(self._slot_free.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    # --- making one job -------------------------------------------------------------------------------------
    async def _job(self, entry_id: bytes, fields: Fields) -> None:
        if not fields:  # deleted (trimmed) while pending: only the acknowledgement is left
            await self._post(entry_id, None)
            return
        try:
            request = read_job(fields)
        except WireError as err:
            log.warning("job entry %s is malformed (%s): acknowledged and skipped", _text(entry_id), err)
            await self._post(entry_id, None)
            return
        result = await self._make(request)
        await self._post(entry_id, result)
        if result.error:
            log.info("job %s failed, the show was told: %s", request.prompt_id, result.error)
        else:
            log.info("job %s done: %d image(s)", request.prompt_id, len(result.images))

    async def _make(self, request: GenerationRequest) -> Result:
        pid = request.prompt_id
        try:
            images = await self.generator.generate(request)
            ready = await asyncio.get_running_loop().run_in_executor(self.pool, encoded, images[:MAX_IMAGES])
            if not ready:
                raise GenerationError(FailureKind.BAD_RESPONSE, f"{self.generator.name} returned no images")
            return Result(pid, tuple(ready), worker=self.name)
        except GenerationError as err:
            return Result(pid, error=failure_text(err.kind, self.redact(err.vj_message)), worker=self.name)
        except Exception as err:  # a backend's bug costs one prompt (painted offline by the show), not the worker
            raise_if_cancelled(err)
            log.exception("job %s: the %s generator failed unexpectedly", pid, self.generator.name)
            return Result(pid, error=failure_text(FailureKind.SERVER, f"the worker failed ({type(err).__name__})"),
                          worker=self.name)

    async def _post(self, entry_id: bytes, result: Result | None) -> None:
        """The result in and the job out, in one transaction, retried while Redis is away."""
        fields = result_fields(result) if result is not None else None
        retries = Retries()
        refused = 0
        while True:
            try:
                async with self.r.pipeline(transaction=True) as pipe:
                    if fields is not None:
                        pipe.xadd(self.keys.results, fields, maxlen=STREAM_MAXLEN, approximate=True)
                    pipe.xack(self.keys.jobs, JOBS_GROUP, entry_id)
                    pipe.xdel(self.keys.jobs, entry_id)
                    await pipe.execute()
                self._link_ok()
                return
            except asyncio.CancelledError:
                raise
            except Exception as err:
                raise_if_cancelled(err)
                if is_connection_error(err):
                    if retries.failed():
                        self._outage(err)
                else:
                    retries.failed()
                    refused += 1
                    log.error("job entry %s: Redis refused its result (%s)", _text(entry_id), describe(err))
                    if refused >= POST_TRIES:
                        log.error("job entry %s left pending: another worker takes it over", _text(entry_id))
                        return
                await retries.wait()

    async def _finish_running(self, grace_s: float) -> None:
        running = list(self._running.values())
        if running:
            log.info("stopping: finishing %d job(s), %.0f s at most", len(running), grace_s)
            _done, late = await asyncio.wait(running, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            if late:
                log.warning("stopped with %d job(s) unfinished: they stay pending, another worker takes them over",
                            len(late))
        await self._leave_group()

    async def _leave_group(self) -> None:
        """Drop this worker's name from the group when it holds no job, so the workers list stays true."""
        with contextlib.suppress(Exception):  # Redis away: the name just stays listed, idle
            async with asyncio.timeout(2.0):
                mine = await self.r.xpending_range(self.keys.jobs, JOBS_GROUP, "-", "+", 1, consumername=self.name)
                if not mine:
                    await self.r.xgroup_delconsumer(self.keys.jobs, JOBS_GROUP, self.name)

    # --- Redis' health ----------------------------------------------------------------------------------------
    async def _link_failed(self, err: BaseException, stop: asyncio.Event) -> None:
        if is_missing_group(err):
            log.warning("the job group was gone (Redis restarted without its data?): made again")
            with contextlib.suppress(Exception):  # the next round tells
                await ensure_group(self.r, self.keys.jobs, JOBS_GROUP)
            return
        if not is_connection_error(err):
            self._retries.failed()
            log.error("reading jobs failed: %s", describe(err))
        elif self._retries.failed():
            self._outage(err)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self._retries.delay())

    def _outage(self, err: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning("Redis is unreachable (%s); reconnecting", describe(err))

    def _link_ok(self) -> None:
        self._retries.ok()
        if self._down:
            self._down = False
            log.info("Redis is back")


async def run_worker(cfg: Config, stop: asyncio.Event, name: str | None = None, *,
                     grace_s: float = STOP_GRACE_S) -> None:
    """Serve ``cfg.cluster.show``'s jobs until ``stop`` is set; ClusterError when Redis cannot be used at start."""
    name = name or default_name()
    keys = Keys(cfg.cluster.show)
    r = await connect(cfg.cluster.redis)
    pool = ThreadPoolExecutor(max_workers=max(2, cfg.cluster.workers), thread_name_prefix="generate")
    generators: tuple[Generator, ...] = ()
    try:
        try:
            await ensure_group(r, keys.jobs, JOBS_GROUP)
        except Exception as err:
            raise_if_cancelled(err)
            raise ClusterError(f"Redis at {redacted(cfg.cluster.redis)} refused the job group: {describe(err)}"
                               ) from err
        generators = make_generators(cfg, pool)  # (primary, fallback): the show has its own fallback
        primary = generators[0]
        worker = Worker(r, keys, primary, name, cfg.cluster.claim_after, cfg.cluster.workers, pool,
                        _redactor(cfg))
        log.info("generate worker %s: %s generator, %d job(s) at once, takeover after %.0f s", name, primary.name,
                 cfg.cluster.workers, cfg.cluster.claim_after)
        log.info("generate worker %s ready on %s, show %s", name, redacted(cfg.cluster.redis), cfg.cluster.show)
        await worker.run(stop, grace_s)
        log.info("generate worker %s stopped", name)
    finally:
        for gen in {id(g): g for g in generators}.values():
            with contextlib.suppress(Exception):  # closing must not hide why we stop
                await gen.aclose()
        pool.shutdown(wait=False, cancel_futures=True)
        await close(r)


def _redactor(cfg: Config) -> Redact:
    from engine.gen.stability import Redactor

    return Redactor(stability_key(cfg))


def main(cfg: Config, name: str | None = None) -> int:
    """The ``generate`` role until SIGTERM/SIGINT: 0 after a clean stop, 1 (one line) when Redis cannot be used."""
    try:
        asyncio.run(_serve(cfg, name))
    except ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


async def _serve(cfg: Config, name: str | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and task is not None:
            log.warning("stopping now: unfinished jobs stay pending for another worker")
            task.cancel()
        else:
            log.info("stopping (a second signal stops at once)")
            stop.set()

    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    try:
        await run_worker(cfg, stop, name)
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def _prompt_of(fields: Fields) -> str:
    raw = fields.get(b"id", b"?") if fields else b"(deleted)"
    return _text(raw)[:40]


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
