"""The crowd, without sockets: who may send what, and in which order prompts reach the screen.

- bans: by phone, by address, and for ``ban_memory`` seconds of any id new on a banned phone's address;
- rate limits: a token bucket per phone and a looser one per address (many ids, one prankster),
  checked before anything costly; a prompt that gets past them costs a token whatever the verdict;
- duplicates: a phone's prompt too close to one of its recent ones is refused;
- moderation: the blocklist decides, and in ``approve`` mode the VJ too;
- bounded memory: phones, their histories and buckets are kept in ``net/limits.py``, with a ceiling;
- fairness: the queue serves phones round-robin, so nobody dominates the screen;
- every change of a prompt's state is returned as (client id, status) pairs for the
  server to deliver, so this module is tested with plain calls and a fake clock.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import unicodedata
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Protocol

from engine.config import AudienceConfig
from engine.net.limits import Buckets, Phone, PhoneBook
from engine.net.protocol import FINAL_STATES, REASONS, PromptStatus, State, reason_text

Outbox = list[tuple[str, PromptStatus]]
IP_BUCKET_FACTOR = 4  # an address may hold several phones (a family, a NAT)
HANDLE_LENGTH = 6

# The English words of each refusal; the phone shows its own language's, by code (protocol.REASONS).
QUEUE_FULL = REASONS["queue_full"]
DUPLICATE = REASONS["duplicate"]
BANNED = REASONS["banned"]
TOO_MANY = REASONS["too_many_waiting"]
NOT_THIS_TIME = REASONS["vj_rejected"]  # the VJ rejected it and gave no reason
REMOVED = REASONS["removed"]
TOO_MANY_PHONES = REASONS["too_many_phones"]
BUSY = REASONS["busy"]
VJ_CLIENT = "vj"  # the VJ's own prompts; too short to be a phone's id, so no phone can pose as the VJ
NO_ADDRESS = frozenset({VJ_CLIENT, "restored", "demo", "unknown"})  # the ip of prompts no phone sent just now


class Verdict(Protocol):
    @property
    def allowed(self) -> bool: ...

    @property
    def reason(self) -> str: ...


class Moderation(Protocol):
    def check(self, text: str) -> Verdict: ...


def dupe_key(text: str) -> str:
    """Case, accents, spacing and punctuation do not make a prompt new."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c if c.isalnum() else " " for c in folded if not unicodedata.combining(c)).split())


@functools.cache  # one string per number of seconds, shared by every refusal that says it
def _slow_down(seconds: int) -> str:
    return reason_text("slow_down", seconds=seconds)


def _alike(a: str, b: str, similarity: float) -> bool:
    """``ratio() >= similarity``, after its cheap upper bounds: most pairs are told apart in microseconds."""
    m = SequenceMatcher(None, a, b)
    return m.real_quick_ratio() >= similarity and m.quick_ratio() >= similarity and m.ratio() >= similarity


@dataclass(slots=True)  # a crowd's worth of them are kept: no per-object dict
class Prompt:
    id: str
    client_id: str
    ip: str
    text: str
    created: float
    state: State = State.QUEUED
    needs_approval: bool = False
    ref: str | None = None
    reason: str | None = None
    image_urls: list[str] = field(default_factory=list)

    def status(self, position: int | None = None, retry_after: float | None = None) -> PromptStatus:
        return PromptStatus(self.id, self.text, self.state, position, self.reason, retry_after,
                            tuple(self.image_urls), self.ref)


@dataclass(frozen=True)
class Remembered:
    phones: int
    prompts: int
    buckets: int  # per phone and per address


class Audience:
    def __init__(self, cfg: AudienceConfig, moderator: Moderation | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        import time

        self.cfg = cfg
        self.moderator = moderator
        self.clock = clock or time.monotonic
        self.prompts: dict[str, Prompt] = {}  # every one is in its phone's history (limits.PhoneBook)
        self._queues: OrderedDict[str, deque[str]] = OrderedDict()  # client → queued prompt ids, in turn order
        rate = 1.0 / cfg.cooldown if cfg.cooldown > 0 else 0.0
        self._client_buckets = Buckets(cfg.burst, rate)
        self._ip_buckets = Buckets(cfg.burst * IP_BUCKET_FACTOR, rate * IP_BUCKET_FACTOR)
        self.phones = PhoneBook(cfg.max_phones, cfg.max_phones_per_ip, cfg.phone_memory, cfg.burst * cfg.cooldown,
                                self._live, self._free)
        self.banned: set[str] = set()
        self.banned_ips: set[str] = set()
        self._ban_marks: dict[str, float] = {}  # address → when a phone seen there was last banned
        self._handle_key = secrets.token_bytes(16)  # handles are stable for the show, unguessable from outside
        self._told: dict[str, int] = {}  # prompt → the position its phone was last sent
        self._positions_dirty = False
        self._front: list[str] = []  # prompts the VJ placed ahead of the fair order, in that order
        self._generating: set[str] = set()
        self._queued = 0  # prompts in all the queues: counted, not summed over every phone per prompt
        self.version = 0  # bumps whenever the line, approvals or generating prompts change

    # --- intake -----------------------------------------------------------------
    def submit(self, client_id: str, ip: str, text: str, ref: str | None = None,
               prompt_id: str | None = None) -> Outbox:
        """A prompt from a phone: accepted into the queue, or rejected with a human reason.

        ``prompt_id``: the id an intake gave it (engine/cluster); a prompt delivered again under an id already
        known is not a new prompt: its phone is told where it stands, and nothing changes.
        """
        if prompt_id is not None and prompt_id in self.prompts:
            known = self.prompts[prompt_id]
            return [(known.client_id, self.status_of(prompt_id))] if known.client_id == client_id else []
        now = self.clock()
        prompt = Prompt(prompt_id or f"p-{secrets.token_hex(6)}", client_id, ip, text, now, ref=ref)
        phone = self.phones.admit(client_id, ip, now)
        if phone is None:  # nothing is remembered of it: a made-up id costs nothing
            crowded = self.phones.per_ip(ip) >= self.cfg.max_phones_per_ip
            prompt.state, prompt.reason = State.REJECTED, TOO_MANY_PHONES if crowded else BUSY
            return [(client_id, prompt.status(retry_after=60.0))]
        rejection, retry_after = self._screen(prompt, phone, now)
        if rejection is not None:
            prompt.state, prompt.reason = State.REJECTED, rejection
        self.prompts[prompt.id] = prompt
        self.phones.remember(client_id, prompt.id, refused=rejection is not None)
        if rejection is not None:
            return [(client_id, prompt.status(retry_after=retry_after))]
        phone.accepted(dupe_key(text))
        prompt.needs_approval = self.cfg.moderation == "approve"
        self._queues.setdefault(client_id, deque()).append(prompt.id)
        self._queued += 1
        self.version += 1
        self._positions_dirty = True  # others may have moved: flush_positions() tells them, batched
        position = None if prompt.needs_approval else self._new_position(client_id)
        if position is not None:
            self._told[prompt.id] = position
        return [(client_id, prompt.status(position))]

    def _new_position(self, client_id: str) -> int | None:
        """The place in line of ``client_id``'s newest prompt, counted per phone, not per prompt.

        Round-robin: it is served in round k (its phone's k-th waiting prompt), after every phone's
        prompts of earlier rounds and after the phones ahead of it in turn order that also have a
        round-k prompt. Only prompts awaiting approval are left out of the line, and those exist
        only in ``approve`` mode: there the full order is counted instead.
        """
        if self.cfg.moderation == "approve" or self._front:
            return self.positions().get(self._queues[client_id][-1])
        k = len(self._queues[client_id]) - 1
        if k == 0 and next(reversed(self._queues)) == client_id:
            return len(self._queues)  # a phone new to the line, last in turn: one place per phone waiting
        ahead = 0
        before = True
        for cid, q in self._queues.items():
            ahead += min(len(q), k)
            if cid == client_id:
                before = False
            elif before and len(q) > k:
                ahead += 1
        return ahead + 1

    def flush_positions(self) -> Outbox:
        """Position changes since the last flush (called a few times a second, not per prompt).

        Also the moment to forget idle phones: a tick, whether or not the crowd sends anything.
        """
        self.forget_idle()
        if not self._positions_dirty:
            return []
        self._positions_dirty = False
        return self._position_updates()

    def _screen(self, prompt: Prompt, phone: Phone, now: float) -> tuple[str | None, float | None]:
        """Why a prompt is refused (and when to try again), or (None, None): the cheap checks first.

        The blocklist and the duplicate check cost up to milliseconds, so they run only for a prompt
        within its rate limits, and it pays a token for them whatever they find.
        """
        cid, ip = prompt.client_id, prompt.ip
        if cid in self.banned or ip in self.banned_ips or self._tainted(phone, now):
            return BANNED, None
        wait = max(self._client_buckets.wait_time(cid, now), self._ip_buckets.wait_time(ip, now))
        if wait > 0:
            return _slow_down(max(1, round(wait))), wait
        if len(self._queues.get(cid, ())) >= self.cfg.max_pending_per_client:
            return TOO_MANY, None
        if self.queued_count >= self.cfg.max_queue:
            return QUEUE_FULL, 60.0
        self._client_buckets.take(cid, now)
        self._ip_buckets.take(ip, now)
        if self.moderator is not None:
            verdict = self.moderator.check(prompt.text)
            if not verdict.allowed:
                return verdict.reason, None
        key = dupe_key(prompt.text)
        for old in phone.recent:
            if old == key or _alike(old, key, self.cfg.similarity):
                return DUPLICATE, None
        return None, None

    def _tainted(self, phone: Phone, now: float) -> bool:
        """A phone first seen on an address just after a phone there was banned: the banned one, back."""
        mark = self._ban_marks.get(phone.ip) if phone.ip is not None else None
        return mark is not None and phone.first_seen > mark and now - mark < self.cfg.ban_memory

    def _live(self, prompt_id: str) -> bool:
        prompt = self.prompts.get(prompt_id)
        return prompt is not None and prompt.state not in FINAL_STATES

    def _free(self, prompt_id: str) -> None:
        self.prompts.pop(prompt_id, None)
        self._told.pop(prompt_id, None)

    def forget_idle(self) -> None:
        """Forget what the crowd no longer needs: idle phones past ``phone_memory``, refilled buckets, old
        ban marks. Each call looks at a bounded number of phones; ``flush_positions`` calls it."""
        now = self.clock()
        self.phones.expire(now)
        self._client_buckets.sweep(now)
        self._ip_buckets.sweep(now)
        for ip in [ip for ip, mark in self._ban_marks.items() if now - mark >= self.cfg.ban_memory]:
            del self._ban_marks[ip]

    def remembered(self) -> Remembered:
        """How much of the crowd is in memory now: what ``max_phones`` and its friends bound."""
        return Remembered(len(self.phones), len(self.prompts), len(self._client_buckets) + len(self._ip_buckets))

    def handle(self, client_id: str) -> str:
        """A short name for a phone that the control page may show: a keyed hash, not the id.

        The client id is a bearer credential (whoever has it reads and sends as that phone), so it
        never leaves for the page; the handle is stable for the show and says nothing about the id.
        """
        if client_id == VJ_CLIENT:
            return "VJ"
        digest = hashlib.blake2s(client_id.encode(), key=self._handle_key, digest_size=5).digest()
        return base64.b32encode(digest).decode().lower()[:HANDLE_LENGTH]

    # --- the queue ----------------------------------------------------------------
    @property
    def queued_count(self) -> int:
        return self._queued

    def _order(self) -> list[str]:
        """Queued prompt ids in the order they will be served: the VJ's picks, then round-robin over phones."""
        front = set(self._front)
        order: list[str] = list(self._front)
        queues = [[p for p in q if p not in front] if front else list(q) for q in self._queues.values()]
        depth = max((len(q) for q in queues), default=0)
        for r in range(depth):
            order += [q[r] for q in queues if len(q) > r]
        return order

    def positions(self) -> dict[str, int]:
        """1-based place in line of every prompt that can be served (approved ones)."""
        return {p.id: i + 1 for i, p in enumerate(self.line())}

    def status_of(self, prompt_id: str) -> PromptStatus:
        p = self.prompts[prompt_id]
        return p.status(self.positions().get(prompt_id) if p.state is State.QUEUED else None)

    def next_prompt(self) -> tuple[Prompt | None, Outbox]:
        """Take the next prompt to generate (the VJ's picks first, then round-robin); statuses for it and
        everyone who moved up."""
        pinned = next((p for p in self._front if not self.prompts[p].needs_approval), None)
        if pinned is not None:
            prompt = self.prompts[pinned]
            self._unqueue(prompt)
            return self._start(prompt)
        front = set(self._front)
        for client_id in list(self._queues):
            q = self._queues[client_id]
            pid = next((p for p in q if not self.prompts[p].needs_approval and p not in front), None)
            if pid is None:
                continue
            q.remove(pid)
            self._queued -= 1
            self._queues.move_to_end(client_id)
            if not q:
                del self._queues[client_id]
            return self._start(self.prompts[pid])
        return None, []

    def _start(self, prompt: Prompt) -> tuple[Prompt, Outbox]:
        prompt.state = State.GENERATING
        self._generating.add(prompt.id)
        self.version += 1
        return prompt, [(prompt.client_id, prompt.status()), *self._position_updates()]

    def _position_updates(self, exclude: Iterable[str] = ()) -> Outbox:
        """Statuses for prompts whose place in line changed since the phone last heard."""
        skip = set(exclude)
        positions = self.positions()
        out: Outbox = []
        for pid, pos in positions.items():
            if self._told.get(pid) != pos and pid not in skip:
                out.append((self.prompts[pid].client_id, self.prompts[pid].status(pos)))
            self._told[pid] = pos
        for pid in [p for p in self._told if p not in positions]:
            del self._told[pid]
        return out

    # --- what happens to a prompt after the queue ---------------------------------------
    def set_state(self, prompt_id: str, state: State, reason: str | None = None,
                  image_url: str | None = None) -> Outbox:
        prompt = self.prompts.get(prompt_id)
        if prompt is None:
            return []
        if state is not prompt.state:
            self.version += 1
        prompt.state = state
        if state is State.GENERATING:
            self._generating.add(prompt_id)
        else:
            self._generating.discard(prompt_id)
        if reason is not None:
            prompt.reason = reason
        if image_url is not None and image_url not in prompt.image_urls:
            prompt.image_urls.append(image_url)
        return [(prompt.client_id, prompt.status())]

    def statuses_for(self, client_id: str) -> list[PromptStatus]:
        """The latest status of each prompt this phone sent (oldest first): for welcome."""
        phone = self.phones.seen(client_id, self.clock())
        return [self.status_of(pid) for pid in phone.history if pid in self.prompts] if phone else []

    def restore(self, prompt: Prompt) -> None:
        """Put back a prompt from the journal after a restart (queued ones rejoin the line)."""
        self.phones.admit(prompt.client_id, None, self.clock(), force=True)
        self.prompts[prompt.id] = prompt
        self.phones.remember(prompt.client_id, prompt.id)
        if prompt.state is State.QUEUED:
            self._queues.setdefault(prompt.client_id, deque()).append(prompt.id)
            self._queued += 1
            self.version += 1

    # --- the VJ's operations ----------------------------------------------------------------
    def awaiting_approval(self) -> list[Prompt]:
        return self.waiting()[0]

    def waiting(self) -> tuple[list[Prompt], list[Prompt]]:
        """(prompts awaiting approval, approved ones in serving order), from one walk of the queues."""
        pending: list[Prompt] = []
        line: list[Prompt] = []
        for pid in self._order():
            prompt = self.prompts[pid]
            (pending if prompt.needs_approval else line).append(prompt)
        return pending, line

    def approve(self, prompt_id: str) -> Outbox:
        prompt = self.prompts.get(prompt_id)
        if prompt is None or prompt.state is not State.QUEUED:
            return []
        prompt.needs_approval = False
        self.version += 1
        return self._position_updates()

    def reject(self, prompt_id: str, reason: str = NOT_THIS_TIME) -> Outbox:
        prompt = self.prompts.get(prompt_id)
        if prompt is None or prompt.state is not State.QUEUED:
            return []
        self._unqueue(prompt)
        prompt.state, prompt.reason = State.REJECTED, reason
        return [(prompt.client_id, prompt.status()), *self._position_updates()]

    def remove(self, prompt_id: str) -> Outbox:
        """The VJ takes a prompt out of the line (the phone hears it was not shown)."""
        return self.reject(prompt_id, REMOVED)

    def ban(self, client_id: str) -> Outbox:
        """No more prompts from this phone this show; its waiting prompts leave the line.

        Clearing the phone's storage makes a new id, so for ``ban_memory`` seconds an id first seen on
        an address where this phone was seen is refused too (phones known there before are not).
        """
        self.banned.add(client_id)
        phone = self.phones.get(client_id)
        if phone is not None:
            now = self.clock()
            seen_at = {self.prompts[p].ip for p in phone.history if p in self.prompts}
            seen_at.update([phone.ip] if phone.ip is not None else [])
            for ip in seen_at - NO_ADDRESS:
                self._ban_marks[ip] = now
        return self._reject_all(list(self._queues.get(client_id, ())))

    def ban_address(self, ip: str) -> Outbox:
        """No more prompts from this address this show, whatever the id; its waiting prompts leave the line.

        Every phone behind one venue NAT shares its address: the control page says so beside the button.
        """
        if ip in NO_ADDRESS:
            return []
        self.banned_ips.add(ip)
        return self._reject_all([p for q in self._queues.values() for p in q if self.prompts[p].ip == ip])

    def _reject_all(self, prompt_ids: list[str]) -> Outbox:
        out: Outbox = []
        for pid in prompt_ids:
            out += self.reject(pid, BANNED)
        return out

    def line(self) -> list[Prompt]:
        """Approved prompts waiting, in serving order (what the VJ reorders)."""
        return self.waiting()[1]

    def generating(self) -> list[Prompt]:
        return [self.prompts[pid] for pid in self._generating if pid in self.prompts]

    def move(self, prompt_id: str, to: int) -> Outbox:
        """The VJ puts a waiting prompt at place ``to`` (0-based) in the line.

        Everything ahead of it keeps its order and is pinned there with it, ahead of the fair
        round-robin; prompts behind stay fair. Phones whose place changed hear it.
        """
        line = [p.id for p in self.line()]
        if prompt_id not in line:
            return []
        line.remove(prompt_id)
        to = max(0, min(to, len(line)))
        line.insert(to, prompt_id)
        self._front = line[: to + 1]  # only approved prompts (and the VJ's own) are ever pinned
        self.version += 1
        return self._position_updates()

    def submit_vj(self, text: str) -> Prompt:
        """The VJ's own prompt: no limits, no moderation, generated before anything else in line."""
        prompt = Prompt(f"p-{secrets.token_hex(6)}", VJ_CLIENT, VJ_CLIENT, text, self.clock())
        self.phones.admit(VJ_CLIENT, None, prompt.created, force=True)
        self.prompts[prompt.id] = prompt
        self.phones.remember(VJ_CLIENT, prompt.id)
        self._queues.setdefault(VJ_CLIENT, deque()).append(prompt.id)
        self._queued += 1
        self._front.insert(0, prompt.id)
        self.version += 1
        self._positions_dirty = True
        return prompt

    def _unqueue(self, prompt: Prompt) -> None:
        q = self._queues.get(prompt.client_id)
        if q is not None and prompt.id in q:
            q.remove(prompt.id)
            self._queued -= 1
            if not q:
                del self._queues[prompt.client_id]
        if prompt.id in self._front:
            self._front.remove(prompt.id)
        self.version += 1

