"""The mock Stability server's HTTP/1.1: reading one request off a stream and encoding one reply.

Only what the mock needs: a request line, headers, a ``Content-Length`` or chunked body, keep-alive. A
body over the cap is read and dropped (``too_large``) so the client gets the API's 413, not a reset.
What to answer is decided elsewhere; this module only moves bytes.
"""

from __future__ import annotations

import asyncio
import email.utils
import http
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class HttpRequest:
    """One parsed HTTP request (header names lower case). ``too_large``: the body was over the cap and dropped."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes = field(default=b"", repr=False)
    too_large: bool = False

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass(frozen=True)
class Reply:
    """What to do with a request: answer it, hold the connection (``hang``), or drop it unanswered (``close``)."""

    status: int = 200
    body: bytes = field(default=b"", repr=False)
    headers: tuple[tuple[str, str], ...] = ()
    action: Literal["answer", "hang", "close"] = "answer"
    hold: float | None = None  # for hang: give up after this many seconds; None = until the client leaves
    delay: float = 0.0  # latency before the answer


def json_reply(status: int, doc: Any, headers: Sequence[tuple[str, str]] = (),
               ctype: str = "application/json") -> Reply:
    return Reply(status, json.dumps(doc).encode(), (("Content-Type", ctype), *headers))


def phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Status"


class BadHttp(Exception):
    """Not HTTP/1.1 we understand: the connection is dropped."""


async def read_request(reader: asyncio.StreamReader, max_body: int) -> HttpRequest | None:
    """The next request on the connection; None when the client closed it between requests."""
    line = await reader.readline()
    if line in (b"\r\n", b"\n"):
        line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadHttp(line[:80])
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n"):
            break
        name, sep, value = raw.decode("latin-1").partition(":")
        if not raw or not sep:
            raise BadHttp(raw[:80])
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, too_large = await _read_chunked(reader, max_body)
    else:
        length = int(headers.get("content-length", "0") or "0")
        too_large = length > max_body
        if too_large:
            while length > 0:  # drain, so the client reads our 413 instead of a reset
                chunk = await reader.read(min(length, 1 << 16))
                if not chunk:
                    raise asyncio.IncompleteReadError(b"", length)
                length -= len(chunk)
            body = b""
        else:
            body = await reader.readexactly(length)
    return HttpRequest(parts[0].upper(), parts[1], headers, body, too_large)


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> tuple[bytes, bool]:
    body = bytearray()
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            break
        chunk = await reader.readexactly(size + 2)
        if len(body) <= max_body:
            body += chunk[:-2]
    return (b"", True) if len(body) > max_body else (bytes(body), False)


def encode_reply(reply: Reply) -> bytes:
    lines = [f"HTTP/1.1 {reply.status} {phrase(reply.status)}", f"Content-Length: {len(reply.body)}",
             f"Date: {email.utils.formatdate(usegmt=True)}", "Server: stagecraft-mock-stability"]
    lines += [f"{k}: {v}" for k, v in reply.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body
