"""Helpers for the cluster's role tests: a generate worker as a real process, and polling Redis until it agrees."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.engine_process import EngineProcess


class WorkerProcess(EngineProcess):
    """``python -m engine generate ARGS`` with its log (stdout and stderr) collected line by line."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(["generate", *args], cwd, env)

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM, and the exit code once it stopped."""
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15.0) -> None:
    """Poll the async ``check`` until it holds; AssertionError naming ``what`` after ``timeout`` seconds.
    A Redis connection error is "not yet": a test's client has stale pooled connections after a restart."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    deadline = time.monotonic() + timeout
    while True:
        try:
            if await check():
                return
        except RedisConnectionError:  # a pooled connection that died with an earlier Redis: ask again
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.05)
