"""The audience server: HTTP for the page and images, WebSocket ``/ws`` for prompts.

One ``websockets`` server in the backstage asyncio loop. It only pumps frames
between sockets and the sans-I/O ``protocol`` and ``audience`` modules, and
pushes statuses with ``fanout()`` (one frame built once for every phone; it never waits on a slow one).

Hardening, in one place:
- only files listed at start-up from ``web/`` (its sub-folders too: the catalogs in ``web/i18n/``),
  ``/i18n/languages.json`` (the languages on offer, made from the config) and journal images by id are served:
  a request path is never joined onto a folder, so ``..``, encoded dots and
  symlinks lead nowhere;
- every answer carries a strict Content-Security-Policy and friends, websockets' own
  too; methods other than GET and HEAD get 405 (``net/http.py``);
- openings still unfinished and connections are capped per address and in all; the
  opening handshake and idle phones time out; frames over ``server.max_message_bytes`` close the connection;
- every frame, of any type, first passes a token bucket per connection and a looser one per
  address (``limits.MessageGate``), before it is even parsed; a connection that keeps sending past
  its limit is closed (1008), so a flood cannot slow the other phones' pings;
- a client that keeps sending bad messages is dropped; whatever one client sends,
  the others are still served.
"""

from __future__ import annotations

import asyncio
import http
import inspect
import json
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from engine.config import AudienceConfig, ServerConfig
from engine.gen.images import parse_image_path
from engine.net import i18n, protocol
from engine.net.audience import Outbox
from engine.net.fanout import fanout
from engine.net.http import (
    WEB_ROOT,
    AddressCounts,
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
from engine.net.limits import Buckets, Gate, MessageGate
from engine.net.protocol import PingMsg, PromptStatus, ProtocolError
from engine.net.vj_server import VjRoutes


class Intake(Protocol):
    """Where phones' prompts go (the ledger, or a cluster intake's stream): it answers through ``deliver``,
    once they are journaled. ``statuses_for`` may be a coroutine (a phone's history read from Redis)."""

    def submit(self, client_id: str, ip: str, text: str, ref: str | None = None) -> object: ...

    def statuses_for(self, client_id: str) -> list[PromptStatus] | Awaitable[list[PromptStatus]]: ...

log = logging.getLogger(__name__)

LANGUAGES_PATH = "/i18n/languages.json"  # made from [audience] languages, not a file in web/
FILES_IN_RESERVE = 256  # descriptors beyond the phones: journal, images, shaders, the control page, libraries


def raise_open_files(wanted: int) -> int:
    """Lift this process's open-file limit toward ``wanted`` (one socket per phone); the limit now.

    Linux defaults to 1,024 open files per process, which would cap the show near a thousand phones.
    The soft limit may go up to the hard one without privileges.
    """
    try:
        import resource
    except ImportError:  # not on Windows: no such limit to lift
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return wanted
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
    return target


@dataclass
class Client:
    connection: ServerConnection
    client_id: str
    ip: str
    errors: protocol.ErrorBudget
    gate: MessageGate


class AudienceServer:
    def __init__(self, server_cfg: ServerConfig, audience_cfg: AudienceConfig, intake: Intake,
                 images: ImageLookup | None = None, web_root: Path = WEB_ROOT, vj: VjRoutes | None = None,
                 best_language: str | None = "en", captions: bool = False) -> None:
        self.cfg = server_cfg
        self.audience_cfg = audience_cfg
        self.intake = intake
        self.images: ImageLookup = images or (lambda _id: None)
        self.vj = vj
        self.per_place = 0.0  # seconds the screen spends per image (the line's pace): a queued phone's wait
        # The prompt language the generator in use works best with (i18n.best_language_for), None: any;
        # phones read it in welcome. English until told: right for every backend, if not needed for all.
        self.best_language = best_language
        self.captions = captions  # [overlay] captions: phones are told their words will be on the big screen
        self.intakes: tuple[str, ...] = ()  # [cluster] intakes: where a phone goes when this intake goes away
        self.files = static_files(web_root, exclude=("vj",))  # the control page is served only with the token
        offer = i18n.offer(i18n.load(audience_cfg.languages, web_root / "i18n"), audience_cfg.default_language)
        self._languages = json.dumps(offer, ensure_ascii=False).encode()
        self._cache: dict[str, bytes] = {}
        self._server: Server | None = None
        self._by_client: dict[str, set[ServerConnection]] = {}
        self._connections = AddressCounts(server_cfg.max_connections_per_ip, server_cfg.max_connections)
        self._messages_per_ip = Buckets(server_cfg.messages_burst_per_ip, server_cfg.messages_per_s_per_ip)
        self.openings = HandshakeGate(server_cfg.max_handshakes_per_ip, server_cfg.max_handshakes)
        self._tasks: set[asyncio.Task[None]] = set()
        if "/" not in self.files:
            log.warning("no web/index.html: the phone page is missing")

    # --- life cycle -------------------------------------------------------------
    async def start(self, host: str | None = None, port: int | None = None) -> None:
        wanted = self.cfg.max_connections + FILES_IN_RESERVE
        limit = raise_open_files(wanted)
        if limit < wanted:
            log.warning("this process may open only %d files: about %d phones can connect, not %d "
                        "(raise the hard limit: ulimit -Hn)", limit, max(0, limit - FILES_IN_RESERVE),
                        self.cfg.max_connections)
        self._server = await serve(
            self._handle, host if host is not None else self.cfg.host, port if port is not None else self.cfg.port,
            process_request=only_get_and_head(self._process_request),
            create_connection=guarded_connection(self.openings),
            max_size=self.cfg.max_message_bytes, max_queue=4, open_timeout=self.cfg.handshake_timeout,
            ping_interval=20, ping_timeout=20, close_timeout=2, compression=None, server_header=None,
            write_limit=65536,
        )

    @property
    def connections(self) -> int:
        """Phones' sockets open now (admitted and not yet closed)."""
        return self._connections.open

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None

    # --- HTTP -------------------------------------------------------------------
    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        try:
            path = urlsplit(request.path).path
        except ValueError:
            return text_response(http.HTTPStatus.BAD_REQUEST, "Bad request")
        if is_vj_path(path):
            if self.vj is None:
                return text_response(http.HTTPStatus.NOT_FOUND, "Not found")
            return await self.vj.process_request(connection, request)
        if path == "/ws":
            return self._admit(connection)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return text_response(http.HTTPStatus.NOT_FOUND, "Not found")
        return await self._serve_file(path)

    async def _serve_file(self, raw_path: str) -> Response:
        path = unquote(raw_path)
        image = parse_image_path(path)
        if image is not None:
            return await image_response(self.images, image[0], "public, max-age=86400, immutable")
        if path == LANGUAGES_PATH:
            return http_response(http.HTTPStatus.OK, self._languages, "application/json; charset=utf-8")
        file = self.files.get(path)
        if file is None:
            return text_response(http.HTTPStatus.NOT_FOUND, "Not found")
        cached = self._cache.get(path)
        if cached is None:
            try:
                cached = file.read_bytes()
            except OSError:
                return text_response(http.HTTPStatus.NOT_FOUND, "Not found")
            self._cache[path] = cached
        return http_response(http.HTTPStatus.OK, cached, content_type(file))

    def _admit(self, connection: ServerConnection) -> Response | None:
        ip = ip_of(connection)
        # Counted from admission, not from the end of the handshake, so a burst of
        # simultaneous handshakes cannot slip past the cap; released when the socket closes.
        if not self._connections.enter(ip):
            if self._connections.full():
                return text_response(http.HTTPStatus.SERVICE_UNAVAILABLE, "The show is full, try again soon.")
            return text_response(http.HTTPStatus.TOO_MANY_REQUESTS, "Too many connections from your address.")
        task = asyncio.get_running_loop().create_task(self._release_when_closed(connection, ip))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return None

    async def _release_when_closed(self, connection: ServerConnection, ip: str) -> None:
        try:
            await connection.wait_closed()
        finally:
            self._connections.leave(ip)

    # --- WebSocket ----------------------------------------------------------------
    async def _handle(self, connection: ServerConnection) -> None:
        parts = urlsplit(connection.request.path if connection.request else "")
        if self.vj is not None and parts.path == "/vj/ws":  # admitted by the VJ routes, token checked
            await self.vj.handle(connection)
            return
        ip = ip_of(connection)
        query = parse_qs(parts.query)
        client_id, _new = protocol.client_id_or_new(next(iter(query.get("client", [])), None))
        gate = MessageGate(ip, self.cfg.messages_per_s, self.cfg.messages_burst, self._messages_per_ip,
                           time.monotonic())
        client = Client(connection, client_id, ip, protocol.ErrorBudget(self.cfg.max_errors), gate)
        self._register(client)
        try:
            history = self.intake.statuses_for(client_id)
            if inspect.isawaitable(history):
                history = await history
            await connection.send(protocol.welcome(
                client_id, self.audience_cfg.max_length, self.audience_cfg.cooldown,
                history, self.audience_cfg.feed, self.per_place, self.best_language, self.captions,
                self.intakes))
            while True:
                try:
                    frame = await asyncio.wait_for(connection.recv(), self.cfg.idle_timeout)
                except TimeoutError:
                    await connection.close(1000, "idle")
                    return
                closing = self._on_frame(client, frame)
                if closing is not None:
                    await connection.close(1008, closing)
                    return
        except ConnectionClosed:
            pass
        finally:
            self._unregister(client)

    def _on_frame(self, client: Client, frame: str | bytes) -> str | None:
        """Handle one frame; the reason to close the connection with, or None to go on."""
        now = time.monotonic()
        gate = client.gate.admit(now)  # before parsing: a flood costs the least possible
        if gate is Gate.CLOSE:
            return "too many messages"
        if gate is Gate.DROP:
            broadcast([client.connection], protocol.TOO_FAST)
            return None
        try:
            msg = protocol.parse(frame, self.audience_cfg.max_length)
        except ProtocolError as err:
            broadcast([client.connection], protocol.error(err.code, err.message, err.ref, err.params))
            return "too many bad messages" if client.errors.record(now) else None
        if isinstance(msg, PingMsg):
            broadcast([client.connection], protocol.PONG)
            return None
        self.intake.submit(client.client_id, client.ip, msg.text, msg.ref)  # answered once journaled
        return None

    def deliver(self, outbox: Outbox) -> None:
        """Push statuses to every connection of the phones concerned; never waits."""
        for client_id, status in outbox:
            conns = self._by_client.get(client_id)
            if conns:
                fanout(conns, protocol.status(status, self.per_place))

    def broadcast_feed(self, text: str) -> None:
        if self.audience_cfg.feed:
            self.broadcast_all(protocol.feed(text))

    def clients(self) -> list[str]:
        """The client ids with a connection open here now (a cluster intake re-tells them their history)."""
        return list(self._by_client)

    def broadcast_all(self, message: str) -> None:
        fanout([c for conns in self._by_client.values() for c in conns], message)

    def _register(self, client: Client) -> None:
        self._by_client.setdefault(client.client_id, set()).add(client.connection)

    def _unregister(self, client: Client) -> None:
        conns = self._by_client.get(client.client_id)
        if conns is not None:
            conns.discard(client.connection)
            if not conns:
                del self._by_client[client.client_id]
