"""The roles' link to Redis: one client per process, the start-up check, consumer groups, and backoff.

A venue's Redis restarts or fails over mid-show. Every loop that reads a stream or a channel catches the
connection's errors, waits (``Backoff``: 0.1 s doubling to 5 s, with jitter so a room of intakes does not
knock at the same instant), and goes on; a consumer group lost with a Redis that kept no data is made
again (``ensure_group``). Commands sent while Redis is away fail fast and are retried by their loop, never
by blocking the event loop.

At start, an unreachable Redis is one line and exit code 1 (``connect``), not a retry loop: a technician
who typed the wrong address should hear so at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from engine.errors import EngineError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0
SOCKET_TIMEOUT_S = 10.0  # longer than any blocking read we ask for (BLOCK is at most 2 s)
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0


class ClusterError(EngineError):
    """Redis cannot be used: unreachable, refused, or answering what a role cannot work with."""


def redacted(url: str) -> str:
    """The URL without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{netloc}", parts.path, parts.query, parts.fragment))


def client(url: str) -> Any:
    """An asyncio Redis client (bytes in, bytes out) for ``url``; nothing is sent until it is used.

    A command whose connection turns out closed is sent once more, at once, on a fresh one: after Redis
    restarts, every pooled connection fails its first command, and without this each caller would need its
    own second try. A Redis that is really away fails the second try too, as fast.
    """
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as Closed

    return Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S,
                          health_check_interval=15, decode_responses=False,
                          retry=Retry(NoBackoff(), 1), retry_on_error=[Closed])


async def connect(url: str) -> Any:
    """A client whose server answered PING; ``ClusterError`` with one plain line when it does not."""
    if not url:
        raise ClusterError('this role needs Redis: set [cluster] redis = "redis://host:6379/0" (or --redis URL)')
    try:
        r = client(url)
    except (ValueError, ImportError) as err:
        raise ClusterError(f"[cluster] redis {redacted(url)!r}: {err}") from err
    try:
        await asyncio.wait_for(r.ping(), CONNECT_TIMEOUT_S + 1.0)
    except Exception as err:  # refused, timed out, DNS, auth: all one line for the technician
        await close(r)
        raise ClusterError(f"cannot reach Redis at {redacted(url)}: {describe(err)}") from err
    return r


def describe(err: BaseException) -> str:
    """An error from redis-py in a few plain words."""
    text = str(err) or type(err).__name__
    return text.splitlines()[0][:200]


async def close(r: Any) -> None:
    with contextlib.suppress(Exception):  # already gone: nothing to release
        await r.aclose()


async def ensure_group(r: Any, stream: str, group: str, start: str = "0") -> None:
    """Create ``group`` on ``stream`` (and the stream) unless it exists."""
    from redis.exceptions import ResponseError

    try:
        await r.xgroup_create(stream, group, id=start, mkstream=True)
    except ResponseError as err:
        if "BUSYGROUP" not in str(err):
            raise


def raise_if_cancelled(err: BaseException | None = None) -> None:
    """Re-raise a cancellation that a library turned into another error on the way out.

    A task cancelled while redis-py is mid-command can see the command fail with a connection error instead of
    ``CancelledError``; a loop that catches ``Exception`` and goes on would then never stop (a show that hangs on
    its way out). Every ``except Exception`` in a loop here calls this first.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from err


async def stop_tasks(tasks: list[asyncio.Task[Any]], timeout: float = 2.0) -> None:
    """Cancel ``tasks`` and wait ``timeout`` seconds at most: a task stuck inside a Redis call that swallowed its
    cancellation is left to die with the loop, and the role still stops."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _done, late = await asyncio.wait(tasks, timeout=timeout)
    for task in late:
        log.warning("task %s did not stop within %.0f s; leaving it", task.get_name(), timeout)


def is_connection_error(err: BaseException) -> bool:
    """Redis went away (or is loading its AOF): wait and try again, the data is not in question."""
    from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

    return isinstance(err, ConnectionError | TimeoutError | BusyLoadingError | OSError)


def is_missing_group(err: BaseException) -> bool:
    """A stream read whose group is gone (a Redis restarted without its data): make it again."""
    from redis.exceptions import ResponseError

    return isinstance(err, ResponseError) and "NOGROUP" in str(err)


class Backoff:
    """Waits between retries: 0.1 s doubling to 5 s, each with up to 25% jitter; ``reset`` after a success."""

    def __init__(self, first: float = BACKOFF_FIRST_S, most: float = BACKOFF_MAX_S,
                 rng: random.Random | None = None) -> None:
        self.first, self.most = first, most
        self.rng = rng or random.Random()
        self.failures = 0

    def next_delay(self) -> float:
        base = min(self.most, self.first * 2.0 ** self.failures)
        self.failures += 1
        return float(base * (1.0 + 0.25 * self.rng.random()))

    async def wait(self) -> None:
        await asyncio.sleep(self.next_delay())

    def reset(self) -> None:
        self.failures = 0
