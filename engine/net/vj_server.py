"""The control page's routes: ``/vj`` (page, files, gallery images) and the ``/vj/ws`` socket.

Every route needs a login (docs/vj-protocol.md): the VJ token or a one-time pairing
code, given once as ``/vj?token=`` (or ``?code=``), opens a session whose id (never the
token) an HttpOnly, SameSite=Strict cookie scoped to ``/vj`` carries. Anything without
one gets a bare 401 login form (no state, no prompts, no paths); an address that keeps
guessing gets 429 for its guesses, never for a right secret (``vj_auth``). The socket
also checks that a browser's Origin is the page's own host, so another site cannot
drive a logged-in browser.

The routes are served by the audience server (same port) or, when ``[vj] port`` is
set, by a server of their own on ``[vj] host``.
"""

from __future__ import annotations

import base64
import hashlib
import http
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from engine.config import VjConfig
from engine.gen.images import parse_image_path
from engine.net.http import (
    WEB_ROOT,
    HandshakeGate,
    ImageLookup,
    content_type,
    guarded_connection,
    http_response,
    image_response,
    ip_of,
    is_vj_path,
    only_get_and_head,
    static_files,
    text_response,
)
from engine.net.vj_auth import COOKIE, TokenGate, session_from_cookies

log = logging.getLogger(__name__)

VJ_ROOT = WEB_ROOT / "vj"
IMAGES = "/vj/images/"  # the gallery's images, behind the token
MAX_MESSAGE_BYTES = 16384
HANDSHAKES_PER_IP, HANDSHAKES = 8, 64  # unfinished openings on the page's own port: one VJ, a few tabs
NO_STORE = "no-store"  # nothing of the control page stays in a shared browser's cache

LOGIN_STYLE = (
    "body{background:#0c0b14;color:#f4f2ff;font:16px system-ui,sans-serif;display:grid;place-items:center;"
    "min-height:90vh;margin:0}form{background:#17152a;padding:24px 28px;border-radius:14px;display:grid;gap:12px;"
    "min-width:280px}input,button{font:inherit;padding:10px;border-radius:8px;border:1px solid #2f2b4d;"
    "background:#1f1c36;color:inherit}button{background:#ff4fd8;color:#0c0b14;font-weight:600;border:0}"
    "p{margin:0;color:#aaa6c8}.bad{color:#ff8095}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(LOGIN_STYLE.encode()).digest()).decode()
LOGIN_CSP = (f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; base-uri 'none'; "
             "frame-ancestors 'none'")


def login_page(note: str = "") -> bytes:
    extra = f'<p class="bad">{note}</p>' if note else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        'content="width=device-width, initial-scale=1"><meta name="referrer" content="no-referrer">'
        f"<title>Stagecraft VJ: log in</title><style>{LOGIN_STYLE}</style></head><body>"
        '<form method="get" action="/vj"><strong>Stagecraft control page</strong>'
        "<p>Enter the VJ token printed on the engine's console, or a pairing code: press P on the show "
        "machine and read it off its console.</p>"
        f'{extra}<input name="token" type="password" autocomplete="current-password" '
        'aria-label="VJ token or pairing code" '
        'autofocus required><button type="submit">Log in</button></form></body></html>'
    ).encode()


TOO_MANY = "Too many wrong tokens or codes from this network: wait a minute (the right one still works)."


def _refused(status: http.HTTPStatus, note: str = "", retry_after: float | None = None,
             forget_cookie: bool = False) -> Response:
    headers = {"Content-Security-Policy": LOGIN_CSP}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, round(retry_after)))
    if forget_cookie:  # a login that ended: the browser stops sending it
        headers["Set-Cookie"] = f"{COOKIE}=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/vj"
    return http_response(status, login_page(note), "text/html; charset=utf-8", NO_STORE, headers)


def cookie_session(headers: Headers) -> str | None:
    return session_from_cookies(headers.get_all("Cookie"))


class VjRoutes:
    """HTTP and WebSocket admission for ``/vj``; the socket's conversation is the hub's."""

    def __init__(self, cfg: VjConfig, gate: TokenGate, handler: Callable[[ServerConnection], Awaitable[None]],
                 images: ImageLookup, web_root: Path = VJ_ROOT, secure_cookie: bool = False) -> None:
        self.cfg = cfg
        self.gate = gate
        self.handler = handler
        self.images = images
        self.files = {"/vj" + k: v for k, v in static_files(web_root).items() if k != "/"}
        self.files["/vj"] = self.files.pop("/vj/index.html", web_root / "index.html")
        self.secure_cookie = secure_cookie
        self.sockets = 0
        self._server: Server | None = None

    # --- admission -------------------------------------------------------------
    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer a ``/vj`` request, or None to let the WebSocket handshake go on."""
        try:
            parts = urlsplit(request.path)
        except ValueError:
            return text_response(http.HTTPStatus.BAD_REQUEST, "Bad request", NO_STORE)
        path = unquote(parts.path)
        ip = ip_of(connection)
        if path == "/vj":
            query = parse_qs(parts.query)
            offered = next(iter(query.get("token", []) or query.get("code", [])), None)
            if offered is not None:
                return self._log_in(offered, ip)
        session = cookie_session(request.headers)
        if session is None:
            return _refused(http.HTTPStatus.UNAUTHORIZED)
        verdict = self.gate.check_session(session, ip)
        if verdict.retry_after is not None:
            return _refused(http.HTTPStatus.TOO_MANY_REQUESTS, TOO_MANY, verdict.retry_after, forget_cookie=True)
        if not verdict.ok:
            return _refused(http.HTTPStatus.UNAUTHORIZED, "Your login has ended: log in again.", forget_cookie=True)
        if path == "/vj/ws":
            return self._admit_socket(request)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return text_response(http.HTTPStatus.NOT_FOUND, "Not found", NO_STORE)
        return await self._serve(path)

    def _log_in(self, offered: str, ip: str) -> Response:
        """A token or pairing code: a new session in the cookie, and the secret out of the address bar."""
        verdict = self.gate.check(offered, ip)
        if verdict.retry_after is not None:
            return _refused(http.HTTPStatus.TOO_MANY_REQUESTS, TOO_MANY, verdict.retry_after)
        if not verdict.ok or verdict.session is None:
            log.debug("VJ page: wrong token or code from %s", ip)  # the gate warns once an address keeps at it
            return _refused(http.HTTPStatus.UNAUTHORIZED, "That token or code is not right.")
        log.info("VJ page: logged in from %s", ip)
        secure = "; Secure" if self.secure_cookie else ""
        cookie = f"{COOKIE}={verdict.session}; HttpOnly; SameSite=Strict; Path=/vj{secure}"
        return http_response(http.HTTPStatus.SEE_OTHER, b"", "text/plain; charset=utf-8", NO_STORE,
                             {"Location": "/vj", "Set-Cookie": cookie})

    def _admit_socket(self, request: Request) -> Response | None:
        origin = request.headers.get("Origin")
        host = request.headers.get("Host", "")
        if origin is not None and urlsplit(origin).netloc != host:
            log.warning("VJ socket refused: origin %s is not this page's host", origin[:100])
            return text_response(http.HTTPStatus.FORBIDDEN, "Forbidden", NO_STORE)
        if self.sockets >= self.cfg.max_connections:
            return text_response(http.HTTPStatus.SERVICE_UNAVAILABLE, "Too many control pages open", NO_STORE)
        return None

    async def _serve(self, path: str) -> Response:
        image = parse_image_path(path, IMAGES)
        if image is not None:
            return await image_response(self.images, image[0], "private, max-age=86400", NO_STORE)
        file = self.files.get(path)
        if file is None:
            return text_response(http.HTTPStatus.NOT_FOUND, "Not found", NO_STORE)
        try:
            body = file.read_bytes()  # read each time: the page is small and rarely loaded
        except OSError:
            return text_response(http.HTTPStatus.NOT_FOUND, "Not found", NO_STORE)
        return http_response(http.HTTPStatus.OK, body, content_type(file), NO_STORE)

    async def handle(self, connection: ServerConnection) -> None:
        self.sockets += 1
        try:
            await self.handler(connection)
        finally:
            self.sockets -= 1

    # --- a server of its own ([vj] port) --------------------------------------------
    async def start(self, host: str, port: int) -> None:
        async def process(connection: ServerConnection, request: Request) -> Response | None:
            try:
                path = urlsplit(request.path).path
            except ValueError:
                path = ""
            if not is_vj_path(path):
                return text_response(http.HTTPStatus.NOT_FOUND, "Not found", NO_STORE)
            return await self.process_request(connection, request)

        self._server = await serve(self.handle, host, port, process_request=only_get_and_head(process),
                                   create_connection=guarded_connection(HandshakeGate(HANDSHAKES_PER_IP, HANDSHAKES)),
                                   max_size=MAX_MESSAGE_BYTES, max_queue=16, open_timeout=10, ping_interval=20,
                                   ping_timeout=20, close_timeout=2, compression=None, server_header=None)

    @property
    def port(self) -> int | None:
        return int(self._server.sockets[0].getsockname()[1]) if self._server is not None else None

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None

