"""The intake role: the phones' web server, without a screen or a queue of its own; as many as the crowd needs.

    phone ─ws─▶ AudienceServer ─submit─▶ RedisIntake ─ gate (Lua) ─▶ XADD prompts ─▶ the show
    the show ─PUBLISH status, feed─▶ RedisIntake ─▶ server.deliver / broadcast_feed ─▶ this intake's phones
    a phone's history (welcome): HGETALL phone(id);  images: GET image(id)

An intake keeps nothing a phone needs after it goes away: the limits are in Redis (``gate.py``), a phone's
statuses in its history hash, images in the image cache, so a phone that moves to another intake (the
welcome lists them: ``[cluster] intakes``) finds everything there.

What it does keep, for a while, is each prompt it sent on and has not heard about (``pending``): the
show's ledger answers every prompt with a status on the status channel, and until that status comes the
intake adds the prompt again every ``RESEND_AFTER_S`` under the same id (a Redis that lost its last second
of writes, a show that was down: the ledger keeps a prompt once whatever number of times it comes). After
``GIVE_UP_S`` the phone is told it failed and may try again. A refusal at the gate goes to the phone at
once, from here: it is not the show's, so it is in no journal and no history.

Pub/Sub loses what is published while a subscriber is away, so every time the intake (re)subscribes it
sends each phone connected here its history again; a status is a whole state, so hearing one twice is
harmless. The VJ's control page is never served by an intake (it belongs to the show machines).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from engine.cluster.link import (
    raise_if_cancelled,
    stop_tasks,
)
from engine.config import Config
from engine.contract import State
from engine.line_pace import expected_wait
from engine.net.audience import BUSY, Outbox
from engine.net.i18n import best_language_for
from engine.net.protocol import PromptStatus
from engine.net.server import AudienceServer

from .gate import Gate
from .images import lookup
from .keys import STREAM_MAXLEN, Keys
from .link import Backoff, ClusterError, close, connect, describe, is_connection_error
from .wire import PromptEntry, WireError, new_prompt_id, read_history, read_statuses

log = logging.getLogger(__name__)

RESEND_AFTER_S = 5.0  # a prompt not answered in this long is added to the stream again, same id
GIVE_UP_S = 120.0  # then the phone hears it failed
MAX_PENDING = 10_000  # prompts awaiting the show's answer; past it new ones are refused ("busy")
LISTEN_POLL_S = 5.0
HISTORY_CHUNK = 256  # phones whose history is read in one pipeline after a (re)subscribe
RETELL_TRIES = 5


class Phones(Protocol):
    """The server, as the intake sees it (``AudienceServer``)."""

    def deliver(self, outbox: Outbox) -> None: ...

    def broadcast_feed(self, text: str) -> None: ...

    def clients(self) -> Collection[str]: ...


@dataclass
class Pending:
    entry: PromptEntry
    born: float
    sent: float | None = None  # when Redis last took it; None: not yet


class RedisIntake:
    """The server's ``Intake`` over Redis; ``attach`` the server, ``start``, and ``aclose`` at the end."""

    def __init__(self, r: Any, keys: Keys, gate: Gate, *, resend_after: float = RESEND_AFTER_S,
                 give_up_after: float = GIVE_UP_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.r = r
        self.keys = keys
        self.gate = gate
        self.resend_after = resend_after
        self.give_up_after = give_up_after
        self.clock = clock
        self.phones: Phones | None = None
        self.pending: dict[str, Pending] = {}  # prompt id → what was sent, until the show answers
        self._in_order: dict[str, tuple[asyncio.Lock, int]] = {}  # phone → its lock and the prompts using it
        self.subscribed = asyncio.Event()  # set while the status channel is subscribed
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._outages = Outages()

    def attach(self, phones: Phones) -> None:
        self.phones = phones

    async def start(self) -> None:
        self._loops = [asyncio.create_task(self._listen(), name="intake-statuses"),
                       asyncio.create_task(self._resend_loop(), name="intake-resend")]

    async def aclose(self) -> None:
        """Stop; prompts Redis has not taken yet get one last try (a second at most)."""
        unsent = [p for p in self.pending.values() if p.sent is None]
        if unsent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._send(unsent), 1.0)
        await stop_tasks([*self._loops, *self._tasks])
        self._loops = []

    # --- the server's Intake ------------------------------------------------------------------------------
    def submit(self, client_id: str, ip: str, text: str, ref: str | None = None) -> None:
        """From a frame handler: never waits; the phone hears back through ``deliver``."""
        self._spawn(self._submit(PromptEntry(new_prompt_id(), client_id, ip, text, ref)))

    async def statuses_for(self, client_id: str) -> list[PromptStatus]:
        """The phone's history, whichever intake it used before; none while Redis is away."""
        try:
            history = read_history(await self.r.hgetall(self.keys.phone(client_id)))
        except Exception as err:  # a welcome without history beats no welcome: it comes again on resubscribe
            raise_if_cancelled(err)
            self._outages.failed("phones' histories", err, "welcomes go without one")
            return []
        self._outages.ok("phones' histories")
        return history

    # --- prompts in ---------------------------------------------------------------------------------------
    async def _submit(self, entry: PromptEntry) -> None:
        """One phone's prompts pass the gate and reach the stream in the order it sent them (each awaits
        Redis, and the fair queue keeps each phone's prompts in arrival order); different phones in parallel."""
        lock, users = self._in_order.get(entry.client_id, (asyncio.Lock(), 0))
        self._in_order[entry.client_id] = (lock, users + 1)
        try:
            async with lock:
                await self._submit_now(entry)
        finally:
            lock, users = self._in_order[entry.client_id]
            if users <= 1:
                del self._in_order[entry.client_id]
            else:
                self._in_order[entry.client_id] = (lock, users - 1)

    async def _submit_now(self, entry: PromptEntry) -> None:
        if len(self.pending) >= MAX_PENDING:
            self._tell(entry, State.REJECTED, BUSY, 60.0)
            return
        try:
            refusal = await self.gate.admit(entry.client_id, entry.ip, entry.text)
            self._outages.ok("gate")
        except Exception as err:  # the show's Audience applies the same limits: let it through meanwhile
            raise_if_cancelled(err)
            self._outages.failed("gate", err, "prompts go on to the show's own limits")
            refusal = None
        if refusal is not None:
            self._tell(entry, State.REJECTED, refusal.reason, refusal.retry_after)
            return
        pending = self.pending[entry.id] = Pending(entry, self.clock())
        await self._send([pending])

    async def _send(self, batch: Sequence[Pending]) -> None:
        """XADD each (one pipeline); those Redis took are marked sent, the others wait for the next round."""
        try:
            async with self.r.pipeline(transaction=False) as pipe:  # one added twice is the same prompt to the show
                for p in batch:
                    pipe.xadd(self.keys.prompts, p.entry.fields(), maxlen=STREAM_MAXLEN, approximate=True)
                results = await pipe.execute(raise_on_error=False)
        except Exception as err:
            raise_if_cancelled(err)
            self._outages.failed("prompts", err, f"they wait here, tried again every {self.resend_after:g} s")
            return
        self._outages.ok("prompts")
        now = self.clock()
        for p, result in zip(batch, results, strict=False):
            if not isinstance(result, Exception):
                p.sent = now

    async def _resend_loop(self) -> None:
        tick = max(0.05, min(1.0, self.resend_after / 4))
        while True:
            await asyncio.sleep(tick)
            now = self.clock()
            due, lost = [], 0
            for pid, p in list(self.pending.items()):
                if now - p.born >= self.give_up_after:
                    del self.pending[pid]
                    lost += 1
                    self._tell(p.entry, State.FAILED, BUSY)
                    self._spawn(self._forget(p.entry))
                elif p.sent is None or now - p.sent >= self.resend_after:
                    due.append(p)
            if lost:
                log.warning("%d prompt(s) had no answer from the show in %g s: their phones were told to try again",
                            lost, self.give_up_after)
            if due:
                await self._send(due)

    def _tell(self, entry: PromptEntry, state: State, reason: str, retry_after: float | None = None) -> None:
        if self.phones is not None:
            status = PromptStatus(entry.id, entry.text, state, reason=reason, retry_after=retry_after, ref=entry.ref)
            self.phones.deliver([(entry.client_id, status)])

    async def _forget(self, entry: PromptEntry) -> None:
        with contextlib.suppress(Exception):  # the mark expires by itself anyway
            await self.gate.forget(entry.client_id, entry.text)

    # --- statuses out -------------------------------------------------------------------------------------
    async def _listen(self) -> None:
        backoff = Backoff()
        while True:
            pubsub = self.r.pubsub()
            try:
                await pubsub.subscribe(self.keys.status, self.keys.feed)
                while True:
                    message = await pubsub.get_message(timeout=LISTEN_POLL_S)
                    if message is None:
                        continue
                    if _is_subscribed(message, self.keys.status):
                        self._outages.ok("statuses")
                        backoff.reset()
                        self.subscribed.set()
                        self._spawn(self._retell())
                    else:
                        self._on_message(message)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                raise_if_cancelled(err)
                self.subscribed.clear()
                if not is_connection_error(err):
                    log.error("statuses: %s", describe(err))
                else:
                    self._outages.failed("statuses", err, "subscribing again; phones hear their history then")
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await backoff.wait()

    def _on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message" or self.phones is None:
            return
        channel, data = _text(message.get("channel")), message.get("data")
        if not isinstance(data, bytes):
            return
        if channel == self.keys.feed:
            self.phones.broadcast_feed(data.decode(errors="replace"))
            return
        try:
            outbox = read_statuses(data)
        except WireError as err:
            log.warning("a status message skipped: %s", err)
            return
        for _client, status in outbox:
            p = self.pending.pop(status.id, None)
            if p is not None and status.state is State.REJECTED:  # the show refused it: it may come again
                self._spawn(self._forget(p.entry))
        self.phones.deliver(outbox)

    async def _retell(self) -> None:
        """Every phone connected here hears its history again: what was published while we were away."""
        if self.phones is None:
            return
        clients = list(self.phones.clients())
        backoff = Backoff()
        i = 0
        while i < len(clients):
            chunk = clients[i:i + HISTORY_CHUNK]
            pipe = self.r.pipeline(transaction=False)
            for client_id in chunk:
                pipe.hgetall(self.keys.phone(client_id))
            try:
                histories = await pipe.execute(raise_on_error=False)
            except Exception as err:  # a pooled connection the restarted Redis closed fails once
                raise_if_cancelled(err)
                if backoff.failures >= RETELL_TRIES:
                    log.warning("statuses: histories not read again (%s)", describe(err))
                    return
                await backoff.wait()
                continue
            outbox = [(c, s) for c, h in zip(chunk, histories, strict=False) if isinstance(h, dict)
                      for s in read_history(h)]
            if outbox:
                self.phones.deliver(outbox)
            i += HISTORY_CHUNK

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class Outages:
    """One warning when a kind of call starts failing, one line when it works again: a Redis outage is two
    lines per kind in the log, not one per phone."""

    def __init__(self) -> None:
        self._away: set[str] = set()

    def failed(self, what: str, err: BaseException, meanwhile: str) -> None:
        if what not in self._away:
            self._away.add(what)
            log.warning("%s: Redis is away (%s); %s", what, describe(err), meanwhile)

    def ok(self, what: str) -> None:
        if what in self._away:
            self._away.discard(what)
            log.info("%s: Redis is back", what)


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _is_subscribed(message: dict[str, Any], channel: str) -> bool:
    return message.get("type") == "subscribe" and _text(message.get("channel")) == channel


# --- the role -----------------------------------------------------------------------------------------------
async def run_intake(cfg: Config, stop: asyncio.Event) -> None:
    """Serve phones until ``stop`` is set; ``ClusterError`` when Redis cannot be reached or the port is taken."""
    r = await connect(cfg.cluster.redis)
    keys = Keys(cfg.cluster.show)
    intake = RedisIntake(r, keys, Gate(r, keys, cfg.audience))
    server = AudienceServer(cfg.server, cfg.audience, intake, images=lookup(r, keys), vj=None)
    server.intakes = cfg.cluster.intakes
    server.per_place = expected_wait(1, cfg.show.hold, cfg.show)
    server.best_language = best_language_for(cfg.generation.backend)
    server.captions = cfg.overlay.captions
    intake.attach(server)
    try:
        await intake.start()
        try:
            await server.start()
        except OSError as err:
            raise ClusterError(f"cannot listen on {cfg.server.host}:{cfg.server.port} ({err.strerror or err}); "
                               "pick another with --port") from err
        log.info("intake ready on %s:%d, show %s", cfg.server.host, server.port, cfg.cluster.show)
        await stop.wait()
    finally:
        await server.stop()
        await intake.aclose()
        await close(r)


def main(cfg: Config) -> int:
    """The intake until SIGTERM or SIGINT: 0; 1 with one ``error:`` line when it cannot start."""

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # Windows, not the main thread
                loop.add_signal_handler(sig, stop.set)
        await run_intake(cfg, stop)

    try:
        asyncio.run(serve())
    except ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
