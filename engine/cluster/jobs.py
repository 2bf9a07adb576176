"""The show's side of the generate workers: a Generator whose images are made on other machines.

    pipeline ─generate(request)─▶ RemoteGenerator ─XADD─▶ jobs ─▶ generate workers
                                        ▲  result reader ◀─XREADGROUP─ results ◀─XADD─┘
    pipeline ─committed(prompt id)─▶ XACK + XDEL of that result (its images are journaled now)

``RemoteGenerator`` is one more backend to the pipeline (``name = "cluster"``): ``generate`` adds a job and
waits for the result with that prompt id, which one reader task per show takes off the result stream.

Delivery is at least once and idempotent by prompt id. A worker that dies mid-job leaves the job pending,
and another takes it over after ``[cluster] claim_after``; the first may still answer, a Redis that lost a
reply makes a worker post again. So the first result for a prompt someone waits for is the answer; every
other (a duplicate, a late one after ``generate`` gave up, one from before a show restart) is acknowledged
and deleted at once. The answer's entry stays pending until the pipeline calls ``committed`` (its images are
in the journal): a show that crashes before that reads it again from its own pending entries.

Nothing here waits long for Redis. Adding a job is a few quick tries, then ``UNAVAILABLE`` and the show's
offline generator paints the prompt; no result within ``wait_s`` is a failure the VJ hears about, and the
offline generator paints it too. The reader and the acknowledger retry with ``Backoff`` until Redis is back.

A worker's failure travels in the result's ``error`` as ``"<FailureKind>: <message for the VJ>"``
(``failure_text``/``read_failure``), so the show acts on it as the one-process show does: a prompt the
API's moderation refused is refused to its sender, any other failure falls back to the offline generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from engine.cluster.keys import JOBS_GROUP, RESULTS_GROUP, STREAM_MAXLEN, Keys
from engine.cluster.link import (
    Backoff,
    ClusterError,
    describe,
    ensure_group,
    is_connection_error,
    is_missing_group,
    raise_if_cancelled,
    stop_tasks,
)
from engine.cluster.wire import Fields, Result, WireError, job_fields, read_result
from engine.config import ClusterConfig
from engine.gen.base import FailureKind, GeneratedImage, GenerationError, GenerationRequest

log = logging.getLogger(__name__)

BLOCK_MS = 2000  # the reader's longest blocking read (Redis' socket timeout is longer)
READ_COUNT = 16  # result entries per read
WAIT_MARGIN_S = 30.0  # generate waits 2 × claim_after + this: time for one takeover and its generation
ADD_TRIES = 3  # tries to add a job before the offline generator takes the prompt
ADD_TIMEOUT_S = 5.0  # all of those tries together
WORKER_SEEN_S = 30.0  # a consumer of the job group that read this recently counts as a live worker
STATUS_TIMEOUT_S = 2.0
STATUS_PERIOD_S = 2.0  # how often the live workers are looked at (the page's line, the no-worker fallback)
CLOSE_FLUSH_S = 1.0  # at close, how long the last acknowledgements may take


def failure_text(kind: FailureKind, message: str) -> str:
    """A worker's failure as it travels in ``Result.error``."""
    return f"{kind.value}: {message}"


def read_failure(text: str) -> tuple[FailureKind, str]:
    """``Result.error`` → (kind, message); an error without a known kind is the worker's backend failing."""
    head, sep, rest = text.partition(": ")
    if sep:
        with contextlib.suppress(ValueError):
            return FailureKind(head), rest
    return FailureKind.SERVER, text


class Retries:
    """One loop's pauses between tries after Redis errors.

    The first error after a success is tried again at once and is not an outage: a client's pooled
    connection that died with an earlier Redis fails once, on its first use after Redis came back. From the
    second error in a row on, it is one: ``failed`` says so (the caller logs it, once), ``wait`` backs off.
    """

    def __init__(self) -> None:
        self.backoff = Backoff()
        self.streak = 0

    def failed(self) -> bool:
        """One more error in a row; True from the second on (an outage, not a stale connection)."""
        self.streak += 1
        return self.streak > 1

    def delay(self) -> float:
        return self.backoff.next_delay() if self.streak > 1 else 0.0

    async def wait(self) -> None:
        await asyncio.sleep(self.delay())

    def ok(self) -> None:
        self.streak = 0
        self.backoff.reset()


@dataclass(frozen=True)
class ClusterStatus:
    """What the control page can show about the generate workers (None: Redis did not answer)."""

    jobs: int | None  # jobs not finished yet: waiting for a worker or being generated
    generating: int | None  # of those, the ones a worker has taken
    workers: tuple[str, ...]  # live workers: read the job group in the last WORKER_SEEN_S, or hold a job
    waiting: int  # this show's prompts waiting for their result
    last_error: str  # the last trouble with Redis, "" when none since start

    def summary(self) -> str:
        """One line for the HUD and the control page's backend line."""
        if self.jobs is None:
            return f"Redis not answering{': ' + self.last_error if self.last_error else ''} (offline images)"
        if not self.workers:
            return f"no generate worker running (offline images), {self.jobs} job(s) queued"
        return (f"{len(self.workers)} worker(s), {self.generating} generating, "
                f"{(self.jobs or 0) - (self.generating or 0)} queued")


class RemoteGenerator:
    """The Generator protocol over the job and result streams of one show (see the module docstring).

    ``r`` is an asyncio Redis client (``link.connect``); the caller owns it and closes it after ``aclose``.
    ``consumer`` is this show's name in the result group: keep it the same across restarts, so a restarted
    show reads the results it had not committed. ``wait_s``: how long ``generate`` waits for a result
    (default ``2 × claim_after + 30`` s: a worker that dies is replaced, and the new one has time to finish).
    """

    name = "cluster"

    def __init__(self, r: Any, keys: Keys, cfg: ClusterConfig, consumer: str = "show",
                 wait_s: float | None = None, block_ms: int = BLOCK_MS) -> None:
        self._r = r
        self._keys = keys
        self._cfg = cfg
        self.consumer = consumer
        self.wait_s = wait_s if wait_s is not None else 2.0 * cfg.claim_after + WAIT_MARGIN_S
        self._block_ms = block_ms
        self._waiting: dict[str, asyncio.Future[Result]] = {}
        self._held: dict[str, bytes] = {}  # prompt id → the entry of its answer, until committed
        self._held_ids: set[bytes] = set()
        self._drop: list[bytes] = []  # result entries to acknowledge and delete
        self._drop_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._down = False  # an outage is logged once, when it starts
        self.last_error = ""
        self._status: ClusterStatus | None = None  # the newest of ``refresh_status``, every STATUS_PERIOD_S

    # --- lifecycle ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Make the consumer groups (if new) and start reading results; ClusterError when Redis cannot be used."""
        try:
            await ensure_group(self._r, self._keys.jobs, JOBS_GROUP)
            await ensure_group(self._r, self._keys.results, RESULTS_GROUP)
        except Exception as err:
            raise_if_cancelled(err)
            raise ClusterError(f"cannot set up the job and result streams: {describe(err)}") from err
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._read_results(), name="cluster-results"),
                           asyncio.create_task(self._acknowledge(), name="cluster-acks"),
                           asyncio.create_task(self._watch_workers(), name="cluster-workers")]

    async def aclose(self) -> None:
        """Stop reading; waiting ``generate`` calls fail (UNAVAILABLE). The Redis client stays open."""
        if self._drop:
            with contextlib.suppress(Exception):  # best effort: what is left is read again after a restart
                async with asyncio.timeout(CLOSE_FLUSH_S):
                    await self._ack_and_delete(list(self._drop))
                    self._drop.clear()
        await stop_tasks(self._tasks)
        self._tasks = []
        for pid, fut in self._waiting.items():
            if not fut.done():
                fut.set_exception(GenerationError(FailureKind.UNAVAILABLE, f"the cluster link closed ({pid})"))

    # --- the Generator protocol -------------------------------------------------------------------------------
    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        """Add the job and wait for its result; GenerationError when Redis, the workers or the backend fail."""
        if not self._tasks:
            raise GenerationError(FailureKind.UNAVAILABLE, "the cluster link is not started")
        pid = request.prompt_id
        if pid in self._waiting:
            raise GenerationError(FailureKind.BAD_REQUEST, f"prompt {pid} is already being generated")
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting[pid] = fut  # before the job exists: a fast worker's result must find it
        try:
            await self._some_worker()
            await self._add_job(request)
            try:
                async with asyncio.timeout(self.wait_s):
                    result = await fut
            except TimeoutError:
                raise GenerationError(
                    FailureKind.NETWORK,
                    f"no generate worker answered within {self.wait_s:.0f} s (prompt {pid}; its job stays queued)",
                ) from None
        finally:
            self._waiting.pop(pid, None)
        if result.error:
            kind, message = read_failure(result.error)
            raise GenerationError(kind, f"worker {result.worker or '?'}: {message}")
        return list(result.images)

    async def _some_worker(self) -> None:
        """Every worker gone (or none started): UNAVAILABLE, so the offline generator paints the prompt now
        instead of the phone waiting 2 x claim_after for a takeover that cannot come. Redis not answering is
        left to ``_add_job`` to find out."""
        seen = self._status or await self.refresh_status()
        if seen.jobs is not None and not seen.workers:
            seen = await self.refresh_status()  # the cached look may predate a worker that just started
        if seen.jobs is not None and not seen.workers:
            raise GenerationError(FailureKind.UNAVAILABLE, "no generate worker is running")

    def committed(self, prompt_id: str) -> None:
        """The pipeline journaled this prompt's images (or gave up on it): its result entry can go."""
        entry = self._held.pop(prompt_id, None)
        if entry is not None:
            self._held_ids.discard(entry)
            self._discard(entry)

    def status(self) -> ClusterStatus | None:
        """The newest worker summary (None until the first look, just after start): never waits."""
        return self._status

    async def _watch_workers(self) -> None:
        while True:
            await self.refresh_status()
            await asyncio.sleep(STATUS_PERIOD_S)

    async def refresh_status(self) -> ClusterStatus:
        """Jobs queued and taken, the live workers, the last trouble: three cheap commands, 2 s at most."""
        try:
            async with asyncio.timeout(STATUS_TIMEOUT_S):
                jobs = int(await self._r.xlen(self._keys.jobs))
                pending = await self._r.xpending(self._keys.jobs, JOBS_GROUP)
                consumers = await self._r.xinfo_consumers(self._keys.jobs, JOBS_GROUP)
        except Exception as err:  # the page shows why; the show goes on
            raise_if_cancelled(err)
            self._status = ClusterStatus(None, None, (), len(self._waiting), describe(err) or self.last_error)
            return self._status
        holding = self._cfg.claim_after * 1000  # a worker busy with every slot reads nothing until one frees
        workers = tuple(sorted(_text(c["name"]) for c in consumers if int(c["idle"]) < WORKER_SEEN_S * 1000
                               or (int(c["pending"]) > 0 and int(c["idle"]) < holding)))
        self._status = ClusterStatus(jobs, int(pending["pending"]), workers, len(self._waiting), self.last_error)
        return self._status

    # --- adding jobs --------------------------------------------------------------------------------------------
    async def _add_job(self, request: GenerationRequest) -> None:
        fields = job_fields(request)
        backoff = Backoff()
        try:
            async with asyncio.timeout(ADD_TIMEOUT_S):
                for attempt in range(ADD_TRIES):
                    try:
                        await self._r.xadd(self._keys.jobs, fields, maxlen=STREAM_MAXLEN, approximate=True)
                        self._link_ok()
                        return
                    except Exception as err:
                        raise_if_cancelled(err)
                        if not is_connection_error(err) or attempt == ADD_TRIES - 1:
                            self._trouble(err)
                            raise GenerationError(FailureKind.UNAVAILABLE,
                                                  f"the job could not be queued in Redis: {describe(err)}") from err
                        await backoff.wait()
        except TimeoutError:
            self.last_error = "Redis did not answer"
            raise GenerationError(FailureKind.UNAVAILABLE,
                                  f"the job could not be queued: Redis did not answer in {ADD_TIMEOUT_S:.0f} s"
                                  ) from None

    # --- reading results --------------------------------------------------------------------------------------
    async def _read_results(self) -> None:
        """First this consumer's own pending entries (a restarted show), then new ones, for ever."""
        retries = Retries()
        backlog: bytes | None = b"0"  # where the next read of our own pending entries starts; None: read new
        while True:
            try:
                if backlog is not None:
                    answer = await self._r.xreadgroup(RESULTS_GROUP, self.consumer, {self._keys.results: backlog},
                                                      count=READ_COUNT)
                else:
                    answer = await self._r.xreadgroup(RESULTS_GROUP, self.consumer, {self._keys.results: ">"},
                                                      count=READ_COUNT, block=self._block_ms)
                self._link_ok()
                retries.ok()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                raise_if_cancelled(err)
                if is_missing_group(err):
                    log.warning("the result group was gone (Redis restarted without its data?): made again")
                    with contextlib.suppress(Exception):  # next round tells
                        await ensure_group(self._r, self._keys.results, RESULTS_GROUP)
                    continue
                if retries.failed() or not is_connection_error(err):
                    self._trouble(err)
                await retries.wait()
                continue
            entries = _entries(answer)
            if backlog is not None:
                backlog = entries[-1][0] if entries else None
            for entry_id, fields in entries:
                self._on_result(entry_id, fields)

    def _on_result(self, entry_id: bytes, fields: Fields) -> None:
        if entry_id in self._held_ids:
            return  # read again from our own pending entries: already the answer of a prompt
        if not fields:
            self._discard(entry_id)  # deleted while pending: only the acknowledgement is left to do
            return
        try:
            result = read_result(fields)
        except WireError as err:
            log.warning("result entry %s is malformed (%s): acknowledged and dropped", _text(entry_id), err)
            self._discard(entry_id)
            return
        pid = result.prompt_id
        fut = self._waiting.get(pid)
        if pid in self._held or fut is None or fut.done():
            log.info("result for %s from worker %s: nobody waits for it (a duplicate, late, or from before a "
                     "restart): acknowledged and dropped", pid, result.worker or "?")
            self._discard(entry_id)
            return
        self._held[pid] = entry_id
        self._held_ids.add(entry_id)
        fut.set_result(result)

    # --- acknowledging ----------------------------------------------------------------------------------------
    def _discard(self, entry_id: bytes) -> None:
        self._drop.append(entry_id)
        self._drop_wake.set()

    async def _acknowledge(self) -> None:
        """XACK + XDEL of finished result entries, in batches, retried until Redis takes them."""
        retries = Retries()
        while True:
            await self._drop_wake.wait()
            self._drop_wake.clear()
            while self._drop:
                batch = list(self._drop)
                try:
                    await self._ack_and_delete(batch)
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    raise_if_cancelled(err)
                    if is_connection_error(err):
                        if retries.failed():
                            self._trouble(err)
                        await retries.wait()
                        continue
                    # Not Redis being away: trying again would fail the same way.
                    self.last_error = describe(err)
                    log.error("result entries %s could not be acknowledged: %s", b", ".join(batch).decode(),
                              self.last_error)
                self._link_ok()
                retries.ok()
                del self._drop[:len(batch)]

    async def _ack_and_delete(self, ids: list[bytes]) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.xack(self._keys.results, RESULTS_GROUP, *ids)
            pipe.xdel(self._keys.results, *ids)
            await pipe.execute()

    # --- Redis' health, logged once per outage ------------------------------------------------------------------
    def _trouble(self, err: BaseException) -> None:
        self.last_error = describe(err)
        if not is_connection_error(err):
            log.error("cluster: Redis refused a command: %s", self.last_error)
        elif not self._down:
            self._down = True
            log.warning("cluster: Redis is unreachable (%s); retrying", self.last_error)

    def _link_ok(self) -> None:
        if self._down:
            self._down = False
            log.info("cluster: Redis is back")


def _entries(answer: Any) -> list[tuple[bytes, Fields]]:
    """XREADGROUP's answer for one stream → its entries."""
    if not answer:
        return []
    return [(entry_id, fields or {}) for entry_id, fields in answer[0][1]]


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
