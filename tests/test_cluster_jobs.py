"""The job and result streams: the show's ``RemoteGenerator`` and the ``generate`` worker, against a real
redis-server on 127.0.0.1 (tests/redis_server.py). Workers run in the test's event loop, or as processes
(``python -m engine generate``) where one must die by SIGKILL."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from redis.exceptions import ResponseError

from engine.cluster.jobs import RemoteGenerator
from engine.cluster.keys import JOBS_GROUP, RESULTS_GROUP, Keys
from engine.cluster.link import client
from engine.cluster.wire import Result, new_prompt_id, result_fields
from engine.cluster.worker import Worker, main, run_worker
from engine.config import Config
from engine.gen.base import FailureKind, GeneratedImage, GenerationError, GenerationRequest
from engine.gen.mock_contract import output_size
from engine.gen.mock_stability import MockStabilityServer, serve_in_thread
from engine.gen.stability import Redactor
from tests.cluster_fakes import WorkerProcess, eventually
from tests.fakes import encoded_image, make_config
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (the fixture)

SHOW = "jobs"
KEYS = Keys(SHOW)
SIDE = 128  # the procedural generator's smallest picture


def cluster_config(url: str, **more: Any) -> Config:
    return make_config({"cluster.redis": url, "cluster.show": SHOW, "cluster.claim_after": 5.0,
                        "generation.backend": "procedural", "generation.width": SIDE, "generation.height": SIDE,
                        **more})


def request(prompt: str = "a lighthouse in a violet storm") -> GenerationRequest:
    return GenerationRequest(prompt_id=new_prompt_id(), prompt=prompt, width=SIDE, height=SIDE)


def assert_png(image: GeneratedImage, size: tuple[int, int]) -> None:
    assert image.mime == "image/png" and image.data is not None
    with Image.open(io.BytesIO(image.data)) as im:
        assert (im.format, im.size) == ("PNG", size)


async def pending(r: Any, stream: str, group: str) -> int:
    return int((await r.xpending(stream, group))["pending"])


async def results_held(r: Any, count: int, what: str) -> None:
    """Wait until the result stream holds ``count`` entries, all still pending (not yet committed)."""
    async def held() -> bool:
        return bool(await r.xlen(KEYS.results) == count and await pending(r, KEYS.results, RESULTS_GROUP) == count)

    await eventually(held, what)


async def assert_streams_empty(r: Any) -> None:
    """Nothing left behind: no job, no result, nothing pending in either group."""
    async def empty() -> bool:
        return (await r.xlen(KEYS.results) == 0 and await r.xlen(KEYS.jobs) == 0
                and await pending(r, KEYS.results, RESULTS_GROUP) == 0 and await pending(r, KEYS.jobs, JOBS_GROUP) == 0)

    await eventually(empty, "the job and result streams emptied")


@asynccontextmanager
async def show_side(url: str, wait_s: float | None = None, by_hand: bool = False
                    ) -> AsyncIterator[tuple[Any, RemoteGenerator]]:
    """A Redis client and a started RemoteGenerator, closed afterwards. ``by_hand``: the test plays the worker
    (adds results itself), so a consumer named "by-hand" reads the job group first and counts as a live worker."""
    r = client(url)
    remote = RemoteGenerator(r, KEYS, cluster_config(url).cluster, wait_s=wait_s)
    await remote.start()
    if by_hand:
        await r.xgroup_createconsumer(KEYS.jobs, JOBS_GROUP, "by-hand")
    try:
        yield r, remote
    finally:
        await remote.aclose()
        await r.aclose()


@asynccontextmanager
async def worker_task(cfg: Config, name: str = "w-test") -> AsyncIterator[asyncio.Task[None]]:
    """``run_worker`` in this event loop, stopped (gracefully) afterwards."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(cfg, stop, name, grace_s=5.0))
    r = client(cfg.cluster.redis)

    async def reading() -> bool:  # the worker is in the group: the show counts it as live
        try:
            return name.encode() in [c["name"] for c in await r.xinfo_consumers(KEYS.jobs, JOBS_GROUP)]
        except ResponseError:  # no group yet
            return False

    try:
        await eventually(reading, f"worker {name} reading the job stream")
    finally:
        await r.aclose()
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


class FakeBackend:
    """A generator that takes ``delay`` seconds, then answers ``answer()`` (images, or raises)."""

    name = "fake"

    def __init__(self, answer: Callable[[GenerationRequest], list[GeneratedImage]], delay: float = 0.0) -> None:
        self.answer = answer
        self.delay = delay
        self.started = asyncio.Event()

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        self.started.set()
        await asyncio.sleep(self.delay)
        return self.answer(request)

    async def aclose(self) -> None:
        return None


# --- the round trip --------------------------------------------------------------------------------------------

def test_a_job_comes_back_as_a_png_and_leaves_nothing_behind(redis_server: RedisServer) -> None:  # noqa: F811
    """Show and worker in one loop: generate returns the worker's PNG; once committed, both streams are empty."""
    cfg = cluster_config(redis_server.url)

    async def scenario() -> None:
        async with show_side(redis_server.url) as (r, remote), worker_task(cfg):
            req = request()
            images = await asyncio.wait_for(remote.generate(req), 20)
            assert len(images) == 1
            assert_png(images[0], (SIDE, SIDE))
            assert images[0].metadata["generator"] == "procedural"
            # Held until the show has journaled it: a show that crashes now reads it again.
            assert await r.xlen(KEYS.results) == 1
            assert await pending(r, KEYS.results, RESULTS_GROUP) == 1
            remote.committed(req.prompt_id)
            await assert_streams_empty(r)

    asyncio.run(scenario())


def test_a_stopped_worker_finishes_its_job_and_leaves_the_group(redis_server: RedisServer) -> None:  # noqa: F811
    """Stop while a job is being made: its result is still posted, then the worker's name leaves the group."""
    async def scenario() -> None:
        async with show_side(redis_server.url, by_hand=True) as (r, remote):
            backend = FakeBackend(lambda q: [GeneratedImage(data=encoded_image((0, 0, 255)), seed=7)], delay=0.5)
            worker = Worker(r, KEYS, backend, "w-stopping", claim_after=5.0, slots=1)
            stop = asyncio.Event()
            running = asyncio.create_task(worker.run(stop, grace_s=5.0))
            req = request()
            made = asyncio.create_task(remote.generate(req))
            await asyncio.wait_for(backend.started.wait(), 10)
            stop.set()
            await asyncio.wait_for(running, 10)
            images = await asyncio.wait_for(made, 10)
            assert [im.seed for im in images] == [7]
            assert_png(images[0], (64, 64))
            assert [c["name"] for c in await r.xinfo_consumers(KEYS.jobs, JOBS_GROUP)] == [b"by-hand"]
            remote.committed(req.prompt_id)
            await assert_streams_empty(r)

    asyncio.run(scenario())


def test_a_backend_failure_reaches_the_show_with_its_kind_and_no_key(redis_server: RedisServer) -> None:  # noqa: F811
    """The worker's backend refuses the prompt: the show hears it at once, as that kind, the API key redacted."""
    key = "sk-cluster-secret-0123456789"

    def refuse(_q: GenerationRequest) -> list[GeneratedImage]:
        raise GenerationError(FailureKind.MODERATED, f"the API refused it (key {key})")

    async def scenario() -> None:
        async with show_side(redis_server.url, by_hand=True) as (r, remote):
            worker = Worker(r, KEYS, FakeBackend(refuse), "w-refusing", claim_after=5.0, slots=1,
                            redact=Redactor(key))
            stop = asyncio.Event()
            running = asyncio.create_task(worker.run(stop))
            req = request()
            with pytest.raises(GenerationError, match=r"worker w-refusing: the API refused it") as caught:
                await asyncio.wait_for(remote.generate(req), 10)
            assert caught.value.kind is FailureKind.MODERATED
            assert key not in str(caught.value) and "[redacted]" in str(caught.value)
            remote.committed(req.prompt_id)
            await assert_streams_empty(r)
            stop.set()
            await asyncio.wait_for(running, 10)

    asyncio.run(scenario())


# --- at least once, idempotent by prompt id -------------------------------------------------------------------

def test_a_duplicate_result_is_acknowledged_and_ignored(redis_server: RedisServer,  # noqa: F811
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """Two results for one prompt (a reclaimed job finished twice): the first is the answer, the second goes."""
    caplog.set_level(logging.INFO, logger="engine.cluster")

    async def scenario() -> None:
        async with show_side(redis_server.url, by_hand=True) as (r, remote):
            req = request()
            made = asyncio.create_task(remote.generate(req))

            async def queued() -> bool:
                return bool(await r.xlen(KEYS.jobs) == 1)

            await eventually(queued, "the job queued")
            for worker, colour in (("w-first", (255, 0, 0)), ("w-second", (0, 0, 255))):
                image = GeneratedImage(data=encoded_image(colour), seed=1)
                await r.xadd(KEYS.results, result_fields(Result(req.prompt_id, (image,), worker=worker)))
            images = await asyncio.wait_for(made, 10)
            assert len(images) == 1 and images[0].data == encoded_image((255, 0, 0))

            await results_held(r, 1, "the duplicate acknowledged and deleted, the answer held")
            remote.committed(req.prompt_id)

            await results_held(r, 0, "the answer deleted once committed")

    asyncio.run(scenario())
    dropped = [m for m in caplog.messages if "nobody waits for it" in m]
    assert len(dropped) == 1 and "from worker w-second" in dropped[0], caplog.messages


def test_no_answer_in_time_fails_over_and_a_late_result_is_dropped(redis_server: RedisServer,  # noqa: F811
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """No worker: generate gives up after wait_s (the show paints offline), the job stays queued, and its
    result arriving later is acknowledged and deleted."""
    caplog.set_level(logging.INFO, logger="engine.cluster")

    async def scenario() -> None:
        async with show_side(redis_server.url, wait_s=0.5, by_hand=True) as (r, remote):
            req = request()
            with pytest.raises(GenerationError, match="no generate worker answered within") as caught:
                await remote.generate(req)
            assert caught.value.kind is FailureKind.NETWORK
            assert await r.xlen(KEYS.jobs) == 1
            late = Result(req.prompt_id, (GeneratedImage(data=encoded_image()),), worker="w-late")
            await r.xadd(KEYS.results, result_fields(late))

            await results_held(r, 0, "the late result acknowledged and deleted")

    asyncio.run(scenario())
    assert any("from worker w-late: nobody waits for it" in m for m in caplog.messages), caplog.messages


def test_a_malformed_job_is_logged_acknowledged_and_skipped(redis_server: RedisServer,  # noqa: F811
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """A hand-typed job entry: one log line naming the problem, gone from the stream; the next job is made."""
    caplog.set_level(logging.INFO, logger="engine.cluster")
    cfg = cluster_config(redis_server.url)

    async def scenario() -> None:
        async with show_side(redis_server.url) as (r, remote), worker_task(cfg):
            await r.xadd(KEYS.jobs, {"id": "nonsense", "request": "{}"})
            req = request()
            images = await asyncio.wait_for(remote.generate(req), 20)
            assert_png(images[0], (SIDE, SIDE))
            remote.committed(req.prompt_id)
            await assert_streams_empty(r)

    asyncio.run(scenario())
    bad = [m for m in caplog.messages if "is malformed" in m]
    assert len(bad) == 1 and "id 'nonsense' is not a prompt id" in bad[0], caplog.messages


def test_a_malformed_result_is_logged_acknowledged_and_deleted(redis_server: RedisServer,  # noqa: F811
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """A result entry that cannot be read is dropped with one log line; the reader goes on."""
    caplog.set_level(logging.INFO, logger="engine.cluster")

    async def scenario() -> None:
        async with show_side(redis_server.url, by_hand=True) as (r, remote):
            req = request()
            made = asyncio.create_task(remote.generate(req))
            await r.xadd(KEYS.results, {"id": req.prompt_id, "n": "many"})
            good = Result(req.prompt_id, (GeneratedImage(data=encoded_image()),), worker="w-good")
            await r.xadd(KEYS.results, result_fields(good))
            images = await asyncio.wait_for(made, 10)
            assert images[0].data == encoded_image()
            remote.committed(req.prompt_id)

            await results_held(r, 0, "both result entries acknowledged and deleted")

    asyncio.run(scenario())
    bad = [m for m in caplog.messages if "is malformed" in m]
    assert len(bad) == 1 and "n is not a number" in bad[0], caplog.messages


def test_results_left_pending_by_a_stopped_show_are_dropped_when_it_starts_again(redis_server: RedisServer,  # noqa: F811
                                                                                 caplog: pytest.LogCaptureFixture
                                                                                 ) -> None:
    """A show that read a result and died before committing it: started again, it reads its own pending entries
    first, and since no prompt of this run waits for that one, it is acknowledged and deleted."""
    caplog.set_level(logging.INFO, logger="engine.cluster")

    async def scenario() -> None:
        async with show_side(redis_server.url, by_hand=True) as (r, remote):
            await remote.aclose()  # the show goes away...
            old = Result(new_prompt_id(), (GeneratedImage(data=encoded_image()),), worker="w-before")
            await r.xadd(KEYS.results, result_fields(old))
            await r.xreadgroup(RESULTS_GROUP, remote.consumer, {KEYS.results: ">"})  # ...having read this one
            assert await pending(r, KEYS.results, RESULTS_GROUP) == 1
            await remote.start()  # ...and comes back

            await results_held(r, 0, "the old result acknowledged and deleted")

    asyncio.run(scenario())
    assert any("from worker w-before: nobody waits for it" in m for m in caplog.messages), caplog.messages


def test_status_counts_jobs_and_names_the_live_workers(redis_server: RedisServer) -> None:  # noqa: F811
    """While a worker makes the only job: one job, taken, by that worker, one prompt waiting, no trouble."""
    async def scenario() -> None:
        async with show_side(redis_server.url, by_hand=True) as (r, remote):
            backend = FakeBackend(lambda q: [GeneratedImage(data=encoded_image())], delay=1.0)
            stop = asyncio.Event()
            running = asyncio.create_task(Worker(r, KEYS, backend, "w-status", 5.0, 1).run(stop))
            req = request()
            made = asyncio.create_task(remote.generate(req))
            await asyncio.wait_for(backend.started.wait(), 10)
            status = await remote.refresh_status()
            assert (status.jobs, status.generating, status.workers, status.waiting, status.last_error) == (
                1, 1, ("by-hand", "w-status"), 1, "")
            await asyncio.wait_for(made, 10)
            remote.committed(req.prompt_id)
            stop.set()
            await asyncio.wait_for(running, 10)

    asyncio.run(scenario())


# --- failures of machines ----------------------------------------------------------------------------------------

def test_a_worker_killed_mid_prompt_is_replaced_by_another(redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    """SIGKILL of a worker while the (mocked, slow) Stability API makes its image: a second worker takes the job
    over after claim_after, says so, and the show's one generate call gets one image."""
    scale = 1 / 19
    mock = MockStabilityServer("sk-mock-cluster-jobs", latency=2.0, scale=scale)
    with serve_in_thread(mock):
        env = {**os.environ, "STABILITY_API_KEY": mock.key, "STABILITY_API_HOST": mock.url}
        sets = [f"cluster.redis={redis_server.url}", f"cluster.show={SHOW}", "cluster.claim_after=5",
                "generation.backend=stability", f"stability.api_host={mock.url}"]
        args = ["--config", str(tmp_path / "none.toml"), *[a for key in sets for a in ("--set", key)]]
        workers: list[WorkerProcess] = []

        async def scenario() -> None:
            async with show_side(redis_server.url) as (r, remote):
                first = WorkerProcess(args, tmp_path, env)
                workers.append(first)
                await asyncio.to_thread(first.wait_for, "generate worker .* ready on", 30)
                first_name = f"{socket.gethostname()}-{first.proc.pid}"
                req = request("a clockwork owl at midnight")
                made = asyncio.create_task(remote.generate(req))

                async def generating() -> bool:
                    taken = await r.xpending_range(KEYS.jobs, JOBS_GROUP, "-", "+", 10)
                    return bool([t["consumer"] for t in taken] == [first_name.encode()] and sum(mock.requests.values()))

                await eventually(generating, "the first worker making the image")
                first.kill()
                taken = await r.xpending_range(KEYS.jobs, JOBS_GROUP, "-", "+", 10)
                assert [t["consumer"] for t in taken] == [first_name.encode()]  # still its job, unfinished

                second = WorkerProcess(args, tmp_path, env)
                workers.append(second)
                images = await asyncio.wait_for(made, 40)
                assert len(images) == 1
                assert_png(images[0], output_size("core", 1.0, scale))
                assert f"reclaimed job {req.prompt_id} from {first_name}" in second.output, second.output
                assert sum(mock.requests.values()) == 2  # one API call by each worker
                remote.committed(req.prompt_id)
                await assert_streams_empty(r)
                assert await asyncio.to_thread(second.terminate) == 0
                assert "stopped" in second.output.splitlines()[-1], second.output

        try:
            asyncio.run(scenario())
        finally:
            for w in workers:
                w.kill()


def test_a_job_that_killed_its_workers_is_given_up(redis_server: RedisServer) -> None:  # noqa: F811
    """A job delivered MAX_DELIVERIES times and never finished (it kills every worker that takes it): the next
    worker answers it with an error instead of making it, so the show paints it offline."""
    async def scenario() -> None:
        async with show_side(redis_server.url, by_hand=True) as (r, remote):
            backend = FakeBackend(lambda q: [GeneratedImage(data=encoded_image())])
            req = request()
            made = asyncio.create_task(remote.generate(req))

            async def queued() -> bool:
                return bool(await r.xlen(KEYS.jobs) == 1)

            await eventually(queued, "the job queued")
            for start in (">", "0", "0"):  # three deliveries to workers that died on it
                await r.xreadgroup(JOBS_GROUP, "w-dead", {KEYS.jobs: start})
            await asyncio.sleep(0.2)
            stop = asyncio.Event()
            running = asyncio.create_task(Worker(r, KEYS, backend, "w-next", claim_after=0.1, slots=1).run(stop))
            with pytest.raises(GenerationError, match="3 workers stopped while making it") as caught:
                await asyncio.wait_for(made, 10)
            assert caught.value.kind is FailureKind.SERVER
            assert not backend.started.is_set()
            remote.committed(req.prompt_id)
            await assert_streams_empty(r)
            stop.set()
            await asyncio.wait_for(running, 10)

    asyncio.run(scenario())


def test_worker_and_reader_reconnect_after_a_hard_redis_restart(redis_server: RedisServer,  # noqa: F811
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """Redis killed (SIGKILL, its AOF kept) between two jobs: both sides log the outage once, reconnect by
    themselves, and the second job is made."""
    caplog.set_level(logging.INFO, logger="engine.cluster")
    cfg = cluster_config(redis_server.url)

    async def scenario() -> None:
        async with show_side(redis_server.url) as (r, remote), worker_task(cfg):
            first = request("a paper boat on a river")
            assert len(await asyncio.wait_for(remote.generate(first), 20)) == 1
            remote.committed(first.prompt_id)
            await assert_streams_empty(r)
            await asyncio.sleep(1.2)  # appendfsync everysec: the groups and acknowledgements are on disk
            await asyncio.to_thread(redis_server.restart, True, 1.0)
            second = request("a second paper boat")
            images = await asyncio.wait_for(remote.generate(second), 30)
            assert_png(images[0], (SIDE, SIDE))
            remote.committed(second.prompt_id)
            await assert_streams_empty(r)

    asyncio.run(scenario())
    worker_lines = [m for m in caplog.messages if m.startswith("Redis is unreachable")]
    show_lines = [m for m in caplog.messages if m.startswith("cluster: Redis is unreachable")]
    assert len(worker_lines) == 1 and len(show_lines) == 1, caplog.messages
    assert "Redis is back" in caplog.messages and "cluster: Redis is back" in caplog.messages


def test_generate_fails_fast_when_redis_is_gone(redis_server: RedisServer) -> None:  # noqa: F811
    """Redis down when a prompt is to be generated: UNAVAILABLE within a few seconds, never a hang."""
    async def scenario() -> None:
        async with show_side(redis_server.url) as (_r, remote):
            redis_server.stop()
            with pytest.raises(GenerationError, match="the job could not be queued") as caught:
                await asyncio.wait_for(remote.generate(request()), 10)
            assert caught.value.kind is FailureKind.UNAVAILABLE
            status = await remote.refresh_status()
            assert status.jobs is None and status.workers == () and status.last_error

    asyncio.run(scenario())


def test_main_without_redis_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    """An unreachable Redis at start: exit code 1 and one line saying which address."""
    rc = main(cluster_config("redis://127.0.0.1:1/0"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert len(err) == 1 and err[0].startswith("error: cannot reach Redis at redis://127.0.0.1:1/0"), err


def test_with_no_worker_running_the_show_paints_offline_at_once(redis_server: RedisServer) -> None:  # noqa: F811
    """No consumer has read the job stream: ``generate`` is UNAVAILABLE at once (the pipeline's offline generator
    then paints the prompt) and adds no job; the page's line says why."""

    async def scenario() -> None:
        async with show_side(redis_server.url) as (r, remote):
            started = time.monotonic()
            with pytest.raises(GenerationError) as caught:
                await remote.generate(request())
            assert caught.value.kind is FailureKind.UNAVAILABLE and "no generate worker" in str(caught.value)
            assert time.monotonic() - started < 2.0
            assert await r.xlen(KEYS.jobs) == 0
            status = remote.status()
            assert status is not None and status.workers == ()
            assert status.summary().startswith("no generate worker running")

    asyncio.run(scenario())
