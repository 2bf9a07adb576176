"""The crowd, without sockets: who may send what, and in which order prompts reach the screen.

- rate limits: a token bucket per phone and a looser one per address (many ids, one prankster);
- duplicates: a phone's prompt too close to one of its recent ones is refused;
- moderation: the blocklist decides, and in ``approve`` mode the VJ too;
- fairness: the queue serves phones round-robin, so nobody dominates the screen;
- every change of a prompt's state is returned as (client id, status) pairs for the
  server to deliver, so this module is tested with plain calls and a fake clock.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Protocol

from engine.config import AudienceConfig
from engine.net.protocol import FINAL_STATES, PromptStatus, State

Outbox = list[tuple[str, PromptStatus]]
RECENT_PER_CLIENT = 10
STATUSES_PER_CLIENT = 20
IP_BUCKET_FACTOR = 4  # an address may hold several phones (a family, a NAT)

QUEUE_FULL = "The queue is full, try again in a minute."
DUPLICATE = "You already sent that one. Try something new!"
BANNED = "Sorry, you can't send prompts at this show."
TOO_MANY = "You have enough prompts waiting. Send more once they are on screen!"
NOT_THIS_TIME = "Not this time, sorry!"  # the VJ rejected it and gave no reason
VJ_CLIENT = "vj"  # the VJ's own prompts; too short to be a phone's id, so no phone can pose as the VJ


class Verdict(Protocol):
    @property
    def allowed(self) -> bool: ...

    @property
    def reason(self) -> str: ...


class Moderation(Protocol):
    def check(self, text: str) -> Verdict: ...


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second; a take costs one."""

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.stamp = now

    def _refill(self, now: float) -> None:
        if self.rate > 0:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        else:
            self.tokens = self.capacity
        self.stamp = now

    def wait_time(self, now: float) -> float:
        """Seconds until a token is available (0 when one is)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1


def dupe_key(text: str) -> str:
    """Case, accents, spacing and punctuation do not make a prompt new."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c if c.isalnum() else " " for c in folded if not unicodedata.combining(c)).split())


@dataclass
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


class Audience:
    def __init__(self, cfg: AudienceConfig, moderator: Moderation | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        import time

        self.cfg = cfg
        self.moderator = moderator
        self.clock = clock or time.monotonic
        self.prompts: dict[str, Prompt] = {}
        self._queues: OrderedDict[str, deque[str]] = OrderedDict()  # client → queued prompt ids, in turn order
        self._client_buckets: dict[str, TokenBucket] = {}
        self._ip_buckets: dict[str, TokenBucket] = {}
        self._recent: dict[str, deque[str]] = {}
        self._history: dict[str, deque[str]] = {}
        self.banned: set[str] = set()
        self._told: dict[str, int] = {}  # prompt → the position its phone was last sent
        self._positions_dirty = False
        self._front: list[str] = []  # prompts the VJ placed ahead of the fair order, in that order
        self._generating: set[str] = set()
        self._queued = 0  # prompts in all the queues: counted, not summed over every phone per prompt
        self.version = 0  # bumps whenever the line, approvals or generating prompts change

    # --- intake -----------------------------------------------------------------
    def submit(self, client_id: str, ip: str, text: str, ref: str | None = None) -> Outbox:
        """A prompt from a phone: accepted into the queue, or rejected with a human reason."""
        now = self.clock()
        prompt = Prompt(f"p-{secrets.token_hex(6)}", client_id, ip, text, now, ref=ref)
        rejection, retry_after = self._screen(prompt, now)
        self.prompts[prompt.id] = prompt
        self._remember(client_id, prompt.id)
        if rejection is not None:
            prompt.state, prompt.reason = State.REJECTED, rejection
            return [(client_id, prompt.status(retry_after=retry_after))]
        self._bucket(self._client_buckets, client_id, 1.0, now).take(now)
        self._bucket(self._ip_buckets, ip, IP_BUCKET_FACTOR, now).take(now)
        self._recent.setdefault(client_id, deque(maxlen=RECENT_PER_CLIENT)).append(dupe_key(text))
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
        """Position changes since the last flush (called a few times a second, not per prompt)."""
        if not self._positions_dirty:
            return []
        self._positions_dirty = False
        return self._position_updates()

    def _screen(self, prompt: Prompt, now: float) -> tuple[str | None, float | None]:
        cid = prompt.client_id
        if cid in self.banned:
            return BANNED, None
        if self.moderator is not None:
            verdict = self.moderator.check(prompt.text)
            if not verdict.allowed:
                return verdict.reason, None
        wait = max(self._bucket(self._client_buckets, cid, 1.0, now).wait_time(now),
                   self._bucket(self._ip_buckets, prompt.ip, IP_BUCKET_FACTOR, now).wait_time(now))
        if wait > 0:
            return f"Slow down! You can send another prompt in {max(1, round(wait))} s.", wait
        key = dupe_key(prompt.text)
        for old in self._recent.get(cid, ()):
            if old == key or SequenceMatcher(None, old, key).ratio() >= self.cfg.similarity:
                return DUPLICATE, None
        if len(self._queues.get(cid, ())) >= self.cfg.max_pending_per_client:
            return TOO_MANY, None
        if self.queued_count >= self.cfg.max_queue:
            return QUEUE_FULL, 60.0
        return None, None

    def _bucket(self, table: dict[str, TokenBucket], key: str, factor: float, now: float) -> TokenBucket:
        bucket = table.get(key)
        if bucket is None:
            rate = factor / self.cfg.cooldown if self.cfg.cooldown > 0 else 0.0
            bucket = table[key] = TokenBucket(self.cfg.burst * factor, rate, now)
        return bucket

    def _remember(self, client_id: str, prompt_id: str) -> None:
        history = self._history.setdefault(client_id, deque(maxlen=STATUSES_PER_CLIENT))
        if len(history) == history.maxlen:
            dropped = history[0]
            if self.prompts.get(dropped) and self.prompts[dropped].state in FINAL_STATES:
                del self.prompts[dropped]
        history.append(prompt_id)

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
        return [self.status_of(pid) for pid in self._history.get(client_id, ()) if pid in self.prompts]

    def restore(self, prompt: Prompt) -> None:
        """Put back a prompt from the journal after a restart (queued ones rejoin the line)."""
        self.prompts[prompt.id] = prompt
        self._remember(prompt.client_id, prompt.id)
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
        return self.reject(prompt_id, "Removed from the queue by the VJ.")

    def ban(self, client_id: str) -> Outbox:
        """No more prompts from this phone this show; its waiting prompts leave the line."""
        self.banned.add(client_id)
        out: Outbox = []
        for pid in list(self._queues.get(client_id, ())):
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
        self.prompts[prompt.id] = prompt
        self._remember(VJ_CLIENT, prompt.id)
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

