"""The show's side of the cluster: prompts in from the stream; statuses, the feed, bans and images out.

    intakes ─XADD─▶ prompts ─XREADGROUP (group "show", consumer "show")─▶ submit(entry) ─▶ ledger
    ledger ─▶ scribe (journaled) ─▶ deliver(outbox) ─▶ writer: HSET history, PUBLISH status, XACK

At least once, and the ledger keeps a prompt once: an entry is acknowledged (XACK) only when a status of
its prompt comes through ``deliver``, which the scribe calls once the step's writes are journaled. Until
then it stays in the group's pending list, and a show that restarts reads its own pending entries first
("0") before new ones (">"). An intake that hears nothing adds its prompt again under the same id; the
ledger tells the phone where that prompt stands and writes nothing, and the new entry is acknowledged
with it. A malformed entry (another version, a hand-typed XADD) is logged and acknowledged: read again,
it would be as malformed.

Writes go through one queue and one writer task, so ``deliver``, ``feed``, the bans and ``put_image``
never wait on the network and reach Redis in the order they were made (an image before the status that
links to it). Each round sends what has queued up as one pipeline. While Redis is away the queue waits
and the writer retries with ``Backoff``; past ``MAX_BACKLOG`` writes the backlog is coalesced: only the
newest status of each prompt matters to a phone, the feed keeps its last lines, images their newest
``IMAGES_KEPT_MB``; every acknowledgement is kept.

The consumer reads again from "0" after any error, so entries whose reply was lost with a connection are
not lost with it; a group lost with a Redis that kept no data is made again, from the stream's start.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.config import ClusterConfig
from engine.net.audience import NO_ADDRESS
from engine.net.protocol import CLIENT_ID, PromptStatus

from .images import ImageCache
from .keys import PROMPTS_GROUP, Keys
from .link import Backoff, describe, ensure_group, is_connection_error, is_missing_group, raise_if_cancelled, stop_tasks
from .wire import PromptEntry, WireError, history_value, read_prompt, statuses_message

log = logging.getLogger(__name__)

CONSUMER = "show"  # one show per screen, so one consumer in its group
READ_COUNT = 256  # entries per read
BLOCK_MS = 2000  # a read waits this long for new entries, then looks again
MAX_UNACKED = 50_000  # prompts whose entries wait for their status; past it the oldest are left pending
BATCH_ITEMS = 256  # queued writes sent in one pipeline
MAX_BACKLOG = 2000  # queued writes before the backlog is coalesced (Redis away)
FEEDS_KEPT = 20  # feed lines kept through a coalesce: the rest are old news
IMAGES_KEPT_MB = 128  # image bytes kept waiting for Redis; the oldest go first
CHUNK = 500  # statuses per PUBLISH, ids per XACK
FLUSH_ON_CLOSE_S = 2.0
HISTORY_KEPT = 20  # prompts a phone's history keeps in Redis (the newest): what its page lists
# KEYS: the phone's history hash, its order set. ARGV: prompt id, status, ttl (s), HISTORY_KEPT. A prompt new to
# the phone goes into the order set by Redis' clock; past HISTORY_KEPT the oldest leave both, so a phone that
# keeps sending all night costs Redis a bounded few KB.
HISTORY = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local t = redis.call('TIME')
if redis.call('ZADD', KEYS[2], 'NX', tonumber(t[1]) + tonumber(t[2]) / 1000000, ARGV[1]) == 1 then
  local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
  if extra > 0 then
    local old = redis.call('ZPOPMIN', KEYS[2], extra)
    for i = 1, #old, 2 do redis.call('HDEL', KEYS[1], old[i]) end
  end
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""

Outbox = Sequence[tuple[str, PromptStatus]]


@dataclass(frozen=True)
class _Statuses:
    outbox: tuple[tuple[str, PromptStatus], ...]
    acks: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class _Feed:
    text: str


@dataclass(frozen=True)
class _Ban:
    key: str
    who: str


@dataclass(frozen=True)
class _Image:
    id: str
    data: bytes


_Write = _Statuses | _Feed | _Ban | _Image


class ShowLink:
    """``start`` the consumer and the writer; ``deliver``, ``feed``, ``ban_*`` and ``put_image`` from the
    loop (they queue and return); ``aclose`` at the end (flushes for up to 2 s)."""

    def __init__(self, r: Any, keys: Keys, cfg: ClusterConfig, submit: Callable[[PromptEntry], object]) -> None:
        self.r = r
        self.keys = keys
        self.submit = submit
        self.ttl = max(1, int(cfg.history_ttl))
        self.images = ImageCache(r, keys, cfg.image_cache_mb, cfg.history_ttl)
        self._history = r.register_script(HISTORY)  # EVALSHA; loaded again on NOSCRIPT (a restarted Redis)
        self._entries: OrderedDict[str, list[bytes]] = OrderedDict()  # prompt id → its unacknowledged entries
        self._queue: deque[_Write] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._coalesce_at = MAX_BACKLOG  # doubles after each coalesce, so a long outage costs O(n), not O(n²)

    # --- life cycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._consume(), name="show-link-prompts"),
                       asyncio.create_task(self._write_loop(), name="show-link-writer")]

    async def aclose(self) -> None:
        """Stop reading; give the writer ``FLUSH_ON_CLOSE_S`` to send what is queued (the journal has it all
        anyway: what is not acknowledged is read again at the next start)."""
        if not self._tasks:
            return
        consumer = self._tasks[0]
        consumer.cancel()
        await self.flush(FLUSH_ON_CLOSE_S)
        await stop_tasks(self._tasks)
        self._tasks = []

    async def flush(self, timeout: float) -> bool:
        """Wait until every queued write has reached Redis; False if ``timeout`` came first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @property
    def backlog(self) -> int:
        """Writes waiting for Redis."""
        return len(self._queue)

    # --- out: the show's calls (on the loop; never wait) --------------------------------------------------
    def deliver(self, outbox: Outbox) -> None:
        """A step's statuses, journaled: to each phone's history and every intake; their entries acknowledged."""
        items = tuple(outbox)
        acks: list[bytes] = []
        for _client, status in items:
            acks += self._entries.pop(status.id, ())
        if items or acks:
            self._put(_Statuses(items, tuple(acks)))

    def feed(self, text: str) -> None:
        """A line for every phone's feed (a prompt went on screen)."""
        self._put(_Feed(text))

    def ban_client(self, client_id: str) -> None:
        """Every intake refuses this phone at its gate from now on (the ledger has banned it here)."""
        self._put(_Ban(self.keys.banned_clients, client_id))

    def ban_address(self, ip: str) -> None:
        """Every intake refuses this address at its gate (every phone behind it: a venue's NAT too)."""
        if ip not in NO_ADDRESS:
            self._put(_Ban(self.keys.banned_addresses, ip))

    def put_image(self, image_id: str, data: bytes) -> None:
        """Cache the image for the intakes to serve (``images.py``), before any status that links to it."""
        self._put(_Image(image_id, bytes(data)))

    # --- in: the prompt stream -----------------------------------------------------------------------------
    async def _consume(self) -> None:
        backoff = Backoff()
        after = "0"  # our own pending entries first: read before a restart (or a lost reply), never acknowledged
        grouped = False
        away = False
        while True:
            try:
                if not grouped:
                    await ensure_group(self.r, self.keys.prompts, PROMPTS_GROUP, "0")
                    grouped = True
                reply = await self.r.xreadgroup(PROMPTS_GROUP, CONSUMER, {self.keys.prompts: after},
                                                count=READ_COUNT, block=BLOCK_MS if after == ">" else None)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                raise_if_cancelled(err)
                after = "0"
                if is_missing_group(err):
                    log.warning("the prompt stream's group is gone (Redis lost its data?): making it again")
                    grouped = False
                elif is_connection_error(err):
                    if not away:
                        log.warning("prompts: Redis is away (%s); trying again", describe(err))
                        away = True
                else:
                    log.error("prompts: reading the stream failed: %s", describe(err))
                await backoff.wait()
                continue
            if away:
                log.info("prompts: Redis is back")
                away = False
            backoff.reset()
            entries = _entries_of(reply)
            if after != ">" and not entries:
                after = ">"  # the pending ones are all read: on to new entries
                continue
            for entry_id, fields in entries:
                if after != ">":
                    after = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                self._take(entry_id if isinstance(entry_id, bytes) else str(entry_id).encode(), fields)

    def _take(self, entry_id: bytes, fields: Any) -> None:
        if not fields:  # a pending entry trimmed from the stream: nothing left to read
            self._put(_Statuses((), (entry_id,)))
            return
        try:
            entry = read_prompt(fields)
        except WireError as err:
            log.warning("prompt entry %s skipped: %s", entry_id.decode(errors="replace"), err)
            self._put(_Statuses((), (entry_id,)))
            return
        self._remember(entry.id, entry_id)  # before submit: its status may be delivered before submit returns
        try:
            self.submit(entry)
        except Exception:  # one entry that breaks the show's intake is dropped, not read again at every start
            raise_if_cancelled()
            log.exception("prompt %s could not be submitted; dropped", entry.id)
            self._put(_Statuses((), tuple(self._entries.pop(entry.id, ()))))

    def _remember(self, prompt_id: str, entry_id: bytes) -> None:
        ids = self._entries.setdefault(prompt_id, [])
        if entry_id not in ids:
            ids.append(entry_id)
        self._entries.move_to_end(prompt_id)
        while len(self._entries) > MAX_UNACKED:  # never answered: left pending, read again at the next start
            self._entries.popitem(last=False)

    # --- the writer -------------------------------------------------------------------------------------
    def _put(self, write: _Write) -> None:
        self._queue.append(write)
        if len(self._queue) > self._coalesce_at:
            self._coalesce()
        self._idle.clear()
        self._wake.set()

    async def _write_loop(self) -> None:
        backoff = Backoff()
        away = False
        while True:
            if not self._queue:
                self._coalesce_at = MAX_BACKLOG
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(BATCH_ITEMS, len(self._queue)))]
            try:
                await self._send(batch)
            except asyncio.CancelledError:
                self._queue.extendleft(reversed(batch))
                raise
            except Exception as err:
                raise_if_cancelled(err)
                if not is_connection_error(err):
                    log.error("writes to Redis refused, %d dropped: %s", len(batch), describe(err))
                    continue
                self._queue.extendleft(reversed(batch))  # in order, ahead of what came meanwhile
                if len(self._queue) > self._coalesce_at:
                    self._coalesce()
                if not away:
                    log.warning("statuses: Redis is away (%s); %d writes wait", describe(err), len(self._queue))
                    away = True
                await backoff.wait()
                continue
            if away:
                log.info("statuses: Redis is back")
                away = False
            backoff.reset()

    async def _send(self, batch: Iterable[_Write]) -> None:
        async with self.r.pipeline(transaction=False) as pipe:  # reset even when Redis fails mid-way
            for write in batch:
                if isinstance(write, _Statuses):
                    await self._statuses(pipe, write)
                elif isinstance(write, _Feed):
                    pipe.publish(self.keys.feed, write.text.encode())
                elif isinstance(write, _Ban):
                    pipe.sadd(write.key, write.who)
                    pipe.expire(write.key, self.ttl)
                else:
                    await self.images.put(write.id, write.data, pipe)
            results = await pipe.execute(raise_on_error=False)
        refused = [r for r in results if isinstance(r, Exception)]
        if refused:
            log.error("Redis refused %d of %d writes: %s", len(refused), len(results), describe(refused[0]))

    async def _statuses(self, pipe: Any, write: _Statuses) -> None:
        phones = [(c, s) for c, s in write.outbox if CLIENT_ID.match(c)]  # not the VJ's own: no phone to tell
        for client, status in phones:
            await self._history(keys=[self.keys.phone(client), self.keys.phone_order(client)],
                                args=[status.id, history_value(status), self.ttl, HISTORY_KEPT], client=pipe)
        for i in range(0, len(phones), CHUNK):  # after the histories: a phone that reconnects finds it there
            pipe.publish(self.keys.status, statuses_message(phones[i:i + CHUNK]))
        for i in range(0, len(write.acks), CHUNK):  # last: journaled, and told
            pipe.xack(self.keys.prompts, PROMPTS_GROUP, *write.acks[i:i + CHUNK])

    def _coalesce(self) -> None:
        """The backlog in a few writes: images (newest, up to ``IMAGES_KEPT_MB``), bans, the newest status of
        each prompt with every acknowledgement, the last feed lines."""
        before = len(self._queue)
        images: list[_Image] = []
        bans: dict[_Ban, None] = {}
        feeds: deque[_Feed] = deque(maxlen=FEEDS_KEPT)
        latest: dict[str, tuple[str, PromptStatus]] = {}
        acks: list[bytes] = []
        for write in self._queue:
            if isinstance(write, _Statuses):
                for client, status in write.outbox:
                    latest.pop(status.id, None)  # keeps the order of each prompt's newest status
                    latest[status.id] = (client, status)
                acks += write.acks
            elif isinstance(write, _Feed):
                feeds.append(write)
            elif isinstance(write, _Ban):
                bans[write] = None
            else:
                images.append(write)
        kept: list[_Image] = []
        room = IMAGES_KEPT_MB * 1024 * 1024
        for image in reversed(images):
            if len(image.data) > room:
                break
            room -= len(image.data)
            kept.append(image)
        statuses = [_Statuses(tuple(latest.values()), tuple(acks))] if latest or acks else []
        self._queue = deque([*reversed(kept), *bans, *statuses, *feeds])
        self._coalesce_at = max(MAX_BACKLOG, 2 * len(self._queue))
        log.warning("Redis has been away: %d writes waiting, kept as %d (%d images dropped)",
                    before, len(self._queue), len(images) - len(kept))


def _entries_of(reply: Any) -> list[tuple[Any, Any]]:
    """The (entry id, fields) of an XREADGROUP reply on one stream: a list of [stream, entries], or a map."""
    if not reply:
        return []
    streams = list(reply.values()) if isinstance(reply, dict) else [stream[1] for stream in reply]
    return [(entry[0], entry[1]) for entry in streams[0]] if streams else []
