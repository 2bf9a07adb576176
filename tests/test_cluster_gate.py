"""The intake's gate against a real redis-server: buckets, the address's bucket, repeated texts, bans, TTLs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from engine.cluster.gate import Gate, Refusal
from engine.cluster.keys import Keys
from engine.cluster.link import close, connect
from engine.config import AudienceConfig
from engine.net.protocol import reason_code
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (the fixture)

KEYS = Keys("gate-test")
ADDRESS = "10.0.0.7"


@pytest.fixture
def server(redis_server: RedisServer) -> RedisServer:  # noqa: F811
    return redis_server


def run(server: RedisServer, scenario: Callable[[Any], Awaitable[None]]) -> None:
    async def main() -> None:
        r = await connect(server.url)
        try:
            await asyncio.wait_for(scenario(r), 20)
        finally:
            await close(r)
    asyncio.run(main())


def gate(r: Any, cooldown: float = 0.0, burst: int = 2, dupe_window: float = 0.0) -> Gate:
    return Gate(r, KEYS, AudienceConfig(cooldown=cooldown, burst=burst), dupe_window=dupe_window)


def assert_refused(refusal: Refusal | None, code: str) -> Refusal:
    assert refusal is not None, f"admitted, expected {code}"
    assert reason_code(refusal.reason)[0] == code, refusal.reason
    return refusal


def test_a_phone_is_refused_past_its_burst_and_admitted_once_a_token_is_back(server: RedisServer) -> None:
    """burst 2, cooldown 0.5 s: two pass, the third waits about 0.5 s (and is told so), then passes."""
    async def scenario(r: Any) -> None:
        g = gate(r, cooldown=0.5, burst=2)
        assert await g.admit("phone-aaaaaaaa", ADDRESS, "one") is None
        assert await g.admit("phone-aaaaaaaa", ADDRESS, "two") is None
        refusal = assert_refused(await g.admit("phone-aaaaaaaa", ADDRESS, "three"), "slow_down")
        assert refusal.retry_after is not None and 0 < refusal.retry_after <= 0.5
        assert reason_code(refusal.reason)[1] == {"seconds": 1}
        await asyncio.sleep(refusal.retry_after + 0.05)
        assert await g.admit("phone-aaaaaaaa", ADDRESS, "three") is None
    run(server, scenario)


def test_the_address_bucket_covers_many_phones_on_one_address(server: RedisServer) -> None:
    """burst 1: an address holds 4 (IP_BUCKET_FACTOR); the fifth phone there waits, one elsewhere does not."""
    async def scenario(r: Any) -> None:
        g = gate(r, cooldown=10.0, burst=1)
        for n in range(4):
            assert await g.admit(f"phone-{n}-aaaaaa", ADDRESS, "hello") is None
        refusal = assert_refused(await g.admit("phone-4-aaaaaa", ADDRESS, "hello"), "slow_down")
        assert refusal.retry_after is not None and 1.5 < refusal.retry_after <= 2.5  # 4 tokens per 10 s
        assert await g.admit("phone-4-aaaaaa", "10.0.0.8", "hello") is None
    run(server, scenario)


def test_a_phone_keeps_its_bucket_whichever_intake_it_asks(server: RedisServer) -> None:
    """Two gates (two intakes) share one bucket per phone: the limit is the show's, not the intake's."""
    async def scenario(r: Any) -> None:
        one, two = gate(r, cooldown=30.0, burst=1), gate(r, cooldown=30.0, burst=1)
        assert await one.admit("phone-aaaaaaaa", ADDRESS, "one") is None
        assert_refused(await two.admit("phone-aaaaaaaa", ADDRESS, "two"), "slow_down")
    run(server, scenario)


def test_the_same_text_is_refused_within_the_window_and_taken_after(server: RedisServer) -> None:
    """Case and punctuation do not make a text new; another phone may send it; after the window, so may this one."""
    async def scenario(r: Any) -> None:
        g = gate(r, dupe_window=1.0)
        assert await g.admit("phone-aaaaaaaa", ADDRESS, "A red fox!") is None
        assert_refused(await g.admit("phone-aaaaaaaa", ADDRESS, "a  red FOX"), "duplicate")
        assert await g.admit("phone-bbbbbbbb", ADDRESS, "a red fox") is None
        await asyncio.sleep(1.1)
        assert await g.admit("phone-aaaaaaaa", ADDRESS, "a red fox") is None
    run(server, scenario)


def test_a_forgotten_text_may_come_again_at_once(server: RedisServer) -> None:
    """``forget`` (the show refused the prompt) lifts the duplicate mark."""
    async def scenario(r: Any) -> None:
        g = gate(r, dupe_window=60.0)
        assert await g.admit("phone-aaaaaaaa", ADDRESS, "a red fox") is None
        await g.forget("phone-aaaaaaaa", "A red fox.")
        assert await g.admit("phone-aaaaaaaa", ADDRESS, "a red fox") is None
    run(server, scenario)


def test_a_banned_phone_and_a_banned_address_are_refused(server: RedisServer) -> None:
    """The show's bans (sets in Redis) stop a phone, and every phone behind a banned address, at the gate."""
    async def scenario(r: Any) -> None:
        g = gate(r)
        await r.sadd(KEYS.banned_clients, "phone-banned01")
        await r.sadd(KEYS.banned_addresses, "10.9.9.9")
        assert_refused(await g.admit("phone-banned01", ADDRESS, "hi"), "banned")
        assert_refused(await g.admit("phone-innocent", "10.9.9.9", "hi"), "banned")
        assert await g.admit("phone-innocent", ADDRESS, "hi") is None
    run(server, scenario)


def test_every_key_the_gate_writes_expires(server: RedisServer) -> None:
    """Buckets live until they would be full again, the duplicate mark for its window: nothing is left behind."""
    async def scenario(r: Any) -> None:
        g = gate(r, cooldown=2.0, burst=3, dupe_window=1.0)
        assert await g.admit("phone-aaaaaaaa", ADDRESS, "one") is None
        keys = [k async for k in r.scan_iter(match=KEYS.prefix + "*")]
        assert len(keys) == 3  # the phone's bucket, the address's, the duplicate mark
        assert 0 < await r.pttl(KEYS.bucket("c", "phone-aaaaaaaa")) <= 2000  # one token short: full in 2 s
        assert 0 < await r.pttl(KEYS.bucket("a", ADDRESS)) <= 500  # four times the rate
        [mark] = [k for k in keys if b":dupe:" in k]
        assert 0 < await r.pttl(mark) <= 1000
        await asyncio.sleep(2.1)
        assert [k async for k in r.scan_iter(match=KEYS.prefix + "*")] == []
    run(server, scenario)


def test_the_script_is_loaded_again_after_a_redis_restart(server: RedisServer) -> None:
    """A restarted Redis has forgotten the script (NOSCRIPT): the gate loads it again and answers."""
    async def scenario(r: Any) -> None:
        g = gate(r, cooldown=30.0, burst=1)
        assert await g.admit("phone-aaaaaaaa", ADDRESS, "one") is None
        sha = g._script.sha
        await asyncio.to_thread(server.restart)
        fresh = await connect(server.url)
        try:
            assert await fresh.script_exists(sha) == [False]
            assert await g.admit("phone-bbbbbbbb", "10.0.0.8", "one") is None  # on a pooled connection Redis closed
            assert await fresh.script_exists(sha) == [True]
        finally:
            await close(fresh)
        assert_refused(await g.admit("phone-aaaaaaaa", ADDRESS, "two"), "slow_down")  # the AOF kept the bucket
    run(server, scenario)
