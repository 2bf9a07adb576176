"""The show's link to a real redis-server: prompts read once and acknowledged only once journaled, statuses
to histories and the channel, the image cache's cap, and a Redis that restarts under it."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import pytest

from engine.backstage.scribe import Scribe
from engine.cluster.keys import PROMPTS_GROUP, Keys
from engine.cluster.link import close, connect
from engine.cluster.show_link import HISTORY_KEPT, ShowLink
from engine.cluster.wire import PromptEntry, history_value, new_prompt_id, read_statuses
from engine.config import AudienceConfig, ClusterConfig
from engine.contract import State
from engine.ledger import Ledger
from engine.net.audience import Audience
from engine.net.protocol import PromptStatus
from engine.store import Journal
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (the fixture)

KEYS = Keys("link-test")
CFG = ClusterConfig(show="link-test", history_ttl=600.0, image_cache_mb=16)
PHONE = "phone-aaaaaaaa"


@pytest.fixture
def server(redis_server: RedisServer) -> RedisServer:  # noqa: F811
    return redis_server


def run(scenario: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, 30))


@asynccontextmanager
async def linked(server: RedisServer, submit: Callable[[PromptEntry], object]) -> AsyncIterator[tuple[Any, ShowLink]]:
    r = await connect(server.url)
    link = ShowLink(r, KEYS, CFG, submit)
    await link.start()
    try:
        yield r, link
    finally:
        await link.aclose()
        await close(r)


async def until(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.02)


async def add(r: Any, pid: str, text: str = "a red fox", client: str = PHONE) -> None:
    await r.xadd(KEYS.prompts, PromptEntry(pid, client, "10.0.0.7", text, "ref-1").fields())


async def unacked(r: Any) -> int:
    return int((await r.xpending(KEYS.prompts, PROMPTS_GROUP))["pending"])


def queued(entry: PromptEntry, position: int = 1) -> tuple[str, PromptStatus]:
    return entry.client_id, PromptStatus(entry.id, entry.text, State.QUEUED, position, ref=entry.ref)


def test_each_entry_is_submitted_once_even_when_a_prompt_comes_twice(server: RedisServer) -> None:
    """Two entries of one prompt are two submits (the ledger keeps it once), and one status acks both."""
    async def scenario() -> None:
        seen: list[PromptEntry] = []
        async with linked(server, seen.append) as (r, link):
            a, b = new_prompt_id(), new_prompt_id()
            for pid in (a, a, b):
                await add(r, pid)
            await until(lambda: len(seen) == 3, "three submits")
            await asyncio.sleep(0.3)  # and no more: nothing is read twice
            assert [e.id for e in seen] == [a, a, b]
            link.deliver([queued(seen[0])])
            assert await link.flush(5)
            assert await unacked(r) == 1  # b's entry, which has no status yet
    run(scenario())


def test_a_status_reaches_history_and_channel_and_only_then_acks_the_entry(server: RedisServer) -> None:
    """Before ``deliver`` the entry stays pending; after it, the phone's history, one PUBLISH, and XACK."""
    async def scenario() -> None:
        seen: list[PromptEntry] = []
        async with linked(server, seen.append) as (r, link):
            listener = r.pubsub()
            await listener.subscribe(KEYS.status)
            pid = new_prompt_id()
            await add(r, pid)
            await until(lambda: seen, "the submit")
            await asyncio.sleep(0.2)
            assert await unacked(r) == 1  # read, not journaled: not acknowledged
            outbox = [queued(seen[0], 3)]
            link.deliver(outbox)
            assert await link.flush(5)
            assert await r.hget(KEYS.phone(PHONE), pid) == history_value(outbox[0][1])
            assert 0 < await r.ttl(KEYS.phone(PHONE)) <= CFG.history_ttl
            message = None
            while message is None or message["type"] != "message":
                message = await listener.get_message(timeout=5)
            assert read_statuses(message["data"]) == outbox
            assert await unacked(r) == 0
            await listener.aclose()
    run(scenario())


def test_a_prompt_added_by_hand_ends_journaled_acked_and_queued_in_its_history(server: RedisServer,
                                                                                 journal: Journal) -> None:
    """The real ledger, audience and scribe: XADD → ledger.submit → journal → deliver → history and XACK."""
    async def scenario() -> None:
        pool = ThreadPoolExecutor(1)
        links: list[ShowLink] = []
        scribe = Scribe(journal, lambda out: links[0].deliver(out), lambda _m: None, pool)
        ledger = Ledger(Audience(AudienceConfig(cooldown=0.0, burst=10)), scribe, scribe.apply)

        def submit(e: PromptEntry) -> object:
            return ledger.submit(e.client_id, e.ip, e.text, e.ref, prompt_id=e.id)

        try:
            async with linked(server, submit) as (r, link):
                links.append(link)
                pid = new_prompt_id()
                await add(r, pid)
                await add(r, pid)  # an intake that heard nothing sends it again: kept once
                await until(lambda: r.hget(KEYS.phone(PHONE), pid), "the phone's history")
                await until(lambda: _none_unacked(r), "both entries acknowledged")
                record = journal.prompt(pid)
                assert record is not None and record.text == "a red fox" and record.client_id == PHONE
                assert len(journal.prompts(limit=10)) == 1
                status = json.loads(await r.hget(KEYS.phone(PHONE), pid))
                assert status["state"] == "queued" and status["position"] == 1 and status["ref"] == "ref-1"
        finally:
            scribe.close()
            pool.shutdown()
    run(scenario())


async def _none_unacked(r: Any) -> bool:
    return await unacked(r) == 0


def test_a_malformed_entry_is_skipped_and_acknowledged(server: RedisServer) -> None:
    """An entry that is not a prompt is logged and acknowledged; the next one is read as usual."""
    async def scenario() -> None:
        seen: list[PromptEntry] = []
        async with linked(server, seen.append) as (r, link):
            await r.xadd(KEYS.prompts, {"id": "not-an-id", "client": PHONE, "ip": "x", "text": "t"})
            await r.xadd(KEYS.prompts, {"junk": "1"})
            pid = new_prompt_id()
            await add(r, pid)
            await until(lambda: seen, "the good entry")
            assert [e.id for e in seen] == [pid]
            assert await link.flush(5)
            assert await unacked(r) == 1  # only the good one waits for its status
    run(scenario())


def test_a_restarted_show_reads_its_unacknowledged_entries_first(server: RedisServer) -> None:
    """Read but never journaled (the show stopped): the next start reads it again from the pending list."""
    async def scenario() -> None:
        first: list[PromptEntry] = []
        async with linked(server, first.append) as (r, _link):
            pid = new_prompt_id()
            await add(r, pid)
            await until(lambda: first, "the first read")
        again: list[PromptEntry] = []
        async with linked(server, again.append) as (r, link):
            await until(lambda: again, "the read after a restart")
            assert [e.id for e in again] == [pid]
            link.deliver([queued(again[0])])
            assert await link.flush(5)
            assert await unacked(r) == 0
    run(scenario())


def test_the_image_cache_stays_under_its_cap(server: RedisServer) -> None:
    """20 images of 1 MB under a 16 MB cap: the oldest go, the count matches what is there, all expire."""
    async def scenario() -> None:
        async with linked(server, lambda _e: None) as (r, link):
            mb = 1024 * 1024
            for n in range(20):
                link.put_image(f"p-{n:012x}-1", b"\x89PNG\r\n\x1a\n" + bytes([n]) * (mb - 8))
            assert await link.flush(10)
            total = int(await r.get(KEYS.image_bytes))
            assert total <= CFG.image_cache_mb * mb
            present = [n for n in range(20) if await r.exists(KEYS.image(f"p-{n:012x}-1"))]
            assert present == list(range(20 - len(present), 20)) and len(present) == 16
            assert total == sum([await r.strlen(KEYS.image(f"p-{n:012x}-1")) for n in present])
            assert await r.zcard(KEYS.images) == len(present)
            assert 0 < await r.ttl(KEYS.image("p-000000000013-1")) <= CFG.history_ttl
            assert await r.ttl(KEYS.images) > 0 and await r.ttl(KEYS.image_bytes) > 0
    run(scenario())


def test_an_image_written_again_is_counted_once(server: RedisServer) -> None:
    """A retried write of one image replaces it: the byte count does not grow."""
    async def scenario() -> None:
        async with linked(server, lambda _e: None) as (r, link):
            for _ in range(3):
                link.put_image("p-000000000001-1", b"\x89PNG\r\n\x1a\n" + b"x" * 1000)
            assert await link.flush(5)
            assert int(await r.get(KEYS.image_bytes)) == 1008 and await r.zcard(KEYS.images) == 1
    run(scenario())


def test_the_link_survives_a_redis_restart(server: RedisServer) -> None:
    """Statuses made while Redis is down reach it once it is back, in order; new prompts are read again."""
    async def scenario() -> None:
        seen: list[PromptEntry] = []
        async with linked(server, seen.append) as (r, link):
            pid = new_prompt_id()
            await add(r, pid)
            await until(lambda: seen, "the first prompt")
            await asyncio.to_thread(server.stop)
            entry = seen[0]
            link.deliver([queued(entry, 2)])
            link.deliver([(entry.client_id, PromptStatus(entry.id, entry.text, State.GENERATING, ref=entry.ref))])
            link.ban_client("phone-bbbbbbbb")
            await asyncio.sleep(1.0)
            assert link.backlog > 0
            await asyncio.to_thread(server.start)
            assert await link.flush(15), "the writes waiting for Redis were not sent after it came back"
            assert json.loads(await r.hget(KEYS.phone(PHONE), pid))["state"] == "generating"  # the newest won
            assert await r.sismember(KEYS.banned_clients, "phone-bbbbbbbb")
            assert await unacked(r) == 0
            later = new_prompt_id()
            await add(r, later)
            await until(lambda: len(seen) >= 2 and seen[-1].id == later, "a prompt after the restart")
    run(scenario())


def test_a_long_outage_keeps_the_newest_status_of_each_prompt_and_every_ack(server: RedisServer,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_BACKLOG waiting writes the backlog is coalesced: bounded, and still right once Redis is back."""
    from engine.cluster import show_link

    monkeypatch.setattr(show_link, "MAX_BACKLOG", 10)

    async def scenario() -> None:
        seen: list[PromptEntry] = []
        async with linked(server, seen.append) as (r, link):
            pids = [new_prompt_id() for _ in range(3)]
            for pid in pids:
                await add(r, pid)
            await until(lambda: len(seen) == 3, "three prompts")
            await asyncio.to_thread(server.stop)
            for position in range(500, 0, -1):  # the line moves while Redis is away
                link.deliver([queued(e, position + i) for i, e in enumerate(seen)])
                link.feed(f"line {position}")
            assert link.backlog <= 2 * (show_link.FEEDS_KEPT + 1) + 1  # not a thousand
            await asyncio.to_thread(server.start)
            assert await link.flush(15)
            positions = [json.loads(await r.hget(KEYS.phone(PHONE), pid))["position"] for pid in pids]
            assert positions == [1, 2, 3]
            assert await unacked(r) == 0
    run(scenario())


def test_a_lost_group_is_made_again_and_read_from_the_start(server: RedisServer) -> None:
    """A Redis that lost its data (the stream and its group gone): the group is made again, new prompts read."""
    async def scenario() -> None:
        seen: list[PromptEntry] = []
        async with linked(server, seen.append) as (r, _link):
            await add(r, new_prompt_id())
            await until(lambda: seen, "the first prompt")
            await r.delete(KEYS.prompts)
            later = new_prompt_id()
            await add(r, later)  # an intake adds to a stream that has no group any more
            await until(lambda: seen[-1].id == later, "the prompt after the loss")
            assert [g["name"] for g in await r.xinfo_groups(KEYS.prompts)] == [PROMPTS_GROUP.encode()]
    run(scenario())


def test_a_phones_history_keeps_its_newest_prompts_only(server: RedisServer) -> None:
    """A phone that keeps sending: its history in Redis holds the newest HISTORY_KEPT prompts, both keys expire."""
    async def scenario() -> None:
        async with linked(server, lambda _e: None) as (r, link):
            pids = [new_prompt_id() for _ in range(HISTORY_KEPT + 5)]
            for pid in pids:
                link.deliver([(PHONE, PromptStatus(pid, "a red fox", State.QUEUED, 1))])
                assert await link.flush(5)
            for pid in pids[-3:]:  # a later status of a prompt it has: no new place taken
                link.deliver([(PHONE, PromptStatus(pid, "a red fox", State.DONE))])
            assert await link.flush(5)
            kept = {k.decode() for k in await r.hkeys(KEYS.phone(PHONE))}
            assert kept == set(pids[-HISTORY_KEPT:])
            assert json.loads(await r.hget(KEYS.phone(PHONE), pids[-1]))["state"] == "done"
            assert 0 < await r.ttl(KEYS.phone_order(PHONE)) <= CFG.history_ttl
            assert await r.zcard(KEYS.phone_order(PHONE)) == HISTORY_KEPT
    run(scenario())
