"""Faults the mock Stability server can inject: scripted errors, hangs, drops, filtered or corrupt images, lockouts.

A test (or ``POST /_mock/faults``) queues ``Scripted`` answers; each is taken once by the next request whose
path matches. ``RateLockout`` plays the real API's rate limit: too many requests in 10 s and every request
is refused for a while. Sans-I/O: the server passes the time in and carries out hangs and latency itself.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Literal

from engine.gen.mock_contract import ApiError, stock_error

WINDOW = 10.0  # seconds: the API counts requests per 10 s

Action = Literal["answer", "hang", "close", "filter", "corrupt"]


@dataclass(frozen=True)
class Scripted:
    """One scripted answer, taken by the next request whose path contains ``match``.

    ``action``: ``answer`` (the error ``status``), ``hang`` (hold the connection), ``close`` (drop it
    unanswered), ``filter`` (a normal 200 whose images are CONTENT_FILTERED; v1: only the artifacts in
    ``filtered`` when given), ``corrupt`` (a 200 whose image bytes are garbage). ``echo_key`` copies the
    request's Authorization header into the error text, like a careless server would.
    """

    status: int = 500
    retry_after: float | None = None
    name: str = ""
    message: str = ""
    action: Action = "answer"
    hold: float | None = None
    echo_key: bool = False
    match: str = ""
    filtered: tuple[int, ...] | None = None


def scripted_from_json(item: object) -> Scripted:
    """One entry of ``POST /_mock/faults``'s ``script`` (ValueError when it is not a valid ``Scripted``)."""
    if not isinstance(item, dict):
        raise ValueError("script: each entry must be an object")
    names = {f.name for f in fields(Scripted)}
    unknown = set(item) - names
    if unknown:
        raise ValueError(f"script: unknown keys {', '.join(sorted(unknown))} (known: {', '.join(sorted(names))})")
    if "filtered" in item and item["filtered"] is not None:
        item = {**item, "filtered": tuple(item["filtered"])}
    if item.get("action", "answer") not in ("answer", "hang", "close", "filter", "corrupt"):
        raise ValueError("script: action must be answer, hang, close, filter or corrupt")
    return Scripted(**item)


def scripted_error(s: Scripted, authorization: str) -> ApiError:
    """The error a scripted ``answer`` stands for, in the API's own words unless it names its own."""
    name, stock = stock_error(s.status)
    message = s.message or stock[0]
    if s.echo_key:
        message += f" (received authorization: {authorization})"
    headers = (("Retry-After", f"{s.retry_after:g}"),) if s.retry_after is not None else ()
    return ApiError(s.status, s.name or name, [message], headers)


class ScriptedAnswers:
    """The queue of scripted answers, each used once, in order (the first whose ``match`` fits the path)."""

    def __init__(self) -> None:
        self._items: list[Scripted] = []

    def __len__(self) -> int:
        return len(self._items)

    def add(self, answers: Iterable[Scripted]) -> None:
        self._items.extend(answers)

    def take(self, path: str) -> Scripted | None:
        for i, item in enumerate(self._items):
            if item.match in path:
                return self._items.pop(i)
        return None

    def clear(self) -> None:
        self._items.clear()


class RateLockout:
    """The real API's lockout: more than ``limit`` requests in 10 s → every request refused for ``lockout`` s."""

    def __init__(self) -> None:
        self._recent: deque[float] = deque()
        self._locked_until = -math.inf

    def refuses(self, now: float, limit: int, lockout: float) -> bool:
        """Count a request at ``now``; True when it is to be refused (429)."""
        if now < self._locked_until:
            return True
        self._recent.append(now)
        while self._recent and self._recent[0] <= now - WINDOW:
            self._recent.popleft()
        if len(self._recent) > limit:
            self._locked_until = now + lockout
            return True
        return False

    def clear(self) -> None:
        self._recent.clear()
        self._locked_until = -math.inf
