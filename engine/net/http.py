"""HTTP answers both servers give (the audience server and the control page's own port).

Every answer carries the security headers; files are served only from a list made at start-up
(a request path is never joined onto a folder); images are looked up by id, off the loop when
the lookup is a coroutine (their bytes come from the journal's disk).

Both servers are ``websockets`` servers, and some of what happens on their sockets is its code,
not ours: it reads the request (and answers 414 and 431 itself, from inside its parser), and
only then calls ``process_request``. ``GuardedConnection`` is the hook in front of that: it
caps the openings still unfinished per address and in all, and it finishes every answer on
the way out (the security headers, no body for HEAD). ``only_get_and_head`` answers 405 to
every other method before a route sees the request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http
import inspect
import logging
import mimetypes
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from websockets.asyncio.server import Server, ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from engine.logs import LogThrottle, held_back

log = logging.getLogger(__name__)

WEB_ROOT = Path(__file__).resolve().parent.parent.parent / "web"
CSP = ("default-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws: wss:; style-src 'self'; "
       "script-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

ALLOWED_METHODS = ("GET", "HEAD")
REFUSAL_WARN_EVERY_S = 60.0

# image id → (bytes, content type), or None; a coroutine when the bytes come from the disk
Found = tuple[bytes, str] | None
ImageLookup = Callable[[str], Found | Awaitable[Found]]
Route = Callable[[ServerConnection, Request], Awaitable[Response | None]]


def static_files(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, Path]:
    """URL path → file for every regular file under ``root`` (no symlinks, nothing outside, not the
    top-level folders in ``exclude``)."""
    files: dict[str, Path] = {}
    if not root.is_dir():
        return files
    base = root.resolve()
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        real = path.resolve()
        parts = path.relative_to(root).parts
        if not real.is_relative_to(base) or any(part.startswith(".") for part in parts) or parts[0] in exclude:
            continue
        files["/" + path.relative_to(root).as_posix()] = real
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    return files


def http_response(status: http.HTTPStatus, body: bytes, content_type: str, cache: str = "no-cache",
                  extra: Mapping[str, str] | None = None) -> Response:
    """An answer with the security headers; ``extra`` adds headers or replaces them (a page's own CSP)."""
    headers = Headers({"Content-Type": content_type, "Content-Length": str(len(body)), "Cache-Control": cache,
                       **SECURITY_HEADERS, **(extra or {})})
    return Response(status.value, status.phrase, headers, body)


def text_response(status: http.HTTPStatus, text: str, cache: str = "no-cache") -> Response:
    return http_response(status, (text + "\n").encode(), "text/plain; charset=utf-8", cache)


def content_type(file: Path) -> str:
    """A served file's Content-Type, with the charset for text."""
    mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    if mime.startswith("text/") or mime in ("application/javascript", "application/json"):
        mime += "; charset=utf-8"
    return mime


async def image_response(lookup: ImageLookup, image_id: str, cache: str, missing_cache: str = "no-cache"
                         ) -> Response:
    """An image by id, or 404; awaits the lookup when it reads the disk, so the loop never does."""
    found = lookup(image_id)
    if inspect.isawaitable(found):
        found = await found
    if found is None:
        return text_response(http.HTTPStatus.NOT_FOUND, "Not found", missing_cache)
    body, mime = found
    return http_response(http.HTTPStatus.OK, body, mime, cache)


def is_vj_path(path: str) -> bool:
    return path == "/vj" or path.startswith("/vj/")


def ip_of(connection: ServerConnection) -> str:
    addr = connection.remote_address
    return str(addr[0]) if addr else "unknown"


def only_get_and_head(route: Route) -> Route:
    """``route`` behind a 405 for every method but GET and HEAD (a HEAD is answered as a GET, less the body).

    websockets reads any method and hands it to ``process_request``: without this, DELETE or TRACE
    got the page.
    """
    async def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if request.method not in ALLOWED_METHODS:
            return http_response(http.HTTPStatus.METHOD_NOT_ALLOWED, b"Method not allowed\n",
                                 "text/plain; charset=utf-8", extra={"Allow": ", ".join(ALLOWED_METHODS)})
        return await route(connection, request)
    return process_request


class AddressCounts:
    """How many of something each address holds, and all addresses together, under a cap for each.

    Serves the audience server's open connections and the openings still in their handshake.
    """

    def __init__(self, per_ip: int, total: int) -> None:
        self.per_ip = per_ip
        self.total = total
        self.open = 0
        self._by_ip: dict[str, int] = {}

    def full(self) -> bool:
        return self.open >= self.total

    def held(self, ip: str) -> int:
        return self._by_ip.get(ip, 0)

    def enter(self, ip: str) -> bool:
        """Count one more for ``ip``; False, and nothing counted, when either cap is reached."""
        held = self._by_ip.get(ip, 0)
        if held >= self.per_ip or self.open >= self.total:
            return False
        self._by_ip[ip] = held + 1
        self.open += 1
        return True

    def leave(self, ip: str) -> None:
        left = self._by_ip.get(ip, 1) - 1
        if left <= 0:
            self._by_ip.pop(ip, None)
        else:
            self._by_ip[ip] = left
        self.open -= 1


class HandshakeGate(AddressCounts):
    """Openings in progress (connected, request not read yet), counted per address and in all.

    A client that connects and never sends its request holds a socket until the handshake timeout;
    without a cap, one address could hold thousands (slowloris). Past the cap a new connection is
    closed at once, before anything is read.
    """

    def __init__(self, per_ip: int, total: int) -> None:
        super().__init__(per_ip, total)
        self.refused = 0
        self.quiet = LogThrottle(REFUSAL_WARN_EVERY_S)

    def enter(self, ip: str) -> bool:
        if super().enter(ip):
            return True
        self.refused += 1
        return False

    def unfinished(self, ip: str) -> int:
        return self.held(ip)


class GuardedConnection(ServerConnection):
    """A ``websockets`` connection that answers to a ``HandshakeGate`` and finishes every answer.

    Made per server by ``guarded_connection`` and given to ``serve(create_connection=...)``.
    """

    gate: ClassVar[HandshakeGate]

    def __init__(self, protocol: ServerProtocol, server: Server, **kwargs: Any) -> None:
        super().__init__(protocol, server, **kwargs)
        self._opening: str | None = None
        send = protocol.send_response

        def send_response(response: Response) -> None:
            send(self._finished(response))

        # Every answer goes through here, websockets' own too: 414 and 431 are sent from inside its
        # parser, where neither process_request nor process_response is called.
        protocol.send_response = send_response  # type: ignore[method-assign]

    def _finished(self, response: Response) -> Response:
        for k, v in SECURITY_HEADERS.items():
            if k not in response.headers:
                response.headers[k] = v
        if self.request is not None and self.request.method == "HEAD":
            return dataclasses.replace(response, body=b"")  # Content-Length stays the GET body's
        return response

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        ip = ip_of(self)
        if not self.gate.enter(ip):
            held = self.gate.quiet.admit(ip)
            if held is not None:
                log.warning("too many unfinished openings (%d from %s, %d in all): new connections are closed "
                            "at once%s", self.gate.unfinished(ip), ip, self.gate.open, held_back(held))
            self.transport.abort()
            return
        self._opening = ip
        self.request_rcvd.add_done_callback(lambda _: self._opened())

    def _opened(self) -> None:
        if self._opening is not None:
            self.gate.leave(self._opening)
            self._opening = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._opened()
        super().connection_lost(exc)


def guarded_connection(gate: HandshakeGate) -> type[GuardedConnection]:
    """The connection class for one server, answering to its ``gate``."""
    class Connection(GuardedConnection):
        pass

    Connection.gate = gate
    return Connection
