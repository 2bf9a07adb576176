"""Bounded memory of the crowd, without sockets: token buckets, remembered phones, message gates.

A show faces strangers who can make up client ids and send frames as fast as their network
allows, so nothing here grows with what they send:

- ``Buckets``: token buckets by key (a phone, an address). A bucket that has refilled completely
  says nothing a fresh one would not, so it is dropped; the table holds only keys that sent lately.
- ``PhoneBook``: what the audience remembers of each phone (its history and recent prompts), at
  most ``max_phones`` in all and ``max_phones_per_ip`` per address. An idle phone (nothing queued,
  generating or on screen) is forgotten after ``phone_memory`` seconds, or sooner to make room:
  the least recently seen goes first. A phone with a prompt in the show is never forgotten.
- ``MessageGate``: one connection's frames against its own bucket and its address's; a connection
  that keeps sending past its limit is a flood, to be closed.

Everything takes ``now`` from the caller, so it is tested with plain calls and a fake clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from engine.net.protocol import ErrorBudget

STATUSES_PER_CLIENT = 20  # prompts a phone is told about again after a reload
REFUSED_PER_CLIENT = 3  # of which refused at the door: what a flood makes for free, so only the latest few
RECENT_PER_CLIENT = 10  # accepted prompts a new one is compared with (duplicates)
EXPIRE_PER_SWEEP = 256  # phones looked at per sweep: a sweep costs the same however big the crowd


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second; a take costs one."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

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

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.capacity


class Buckets:
    """Token buckets by key, made on the first take and dropped once refilled.

    Kept in the order of their last take, so the ones that may have refilled are at the front and
    a sweep stops at the first that has not: each take sweeps a couple, so the table cleans itself.
    """

    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self._table: OrderedDict[str, TokenBucket] = OrderedDict()

    def wait_time(self, key: str, now: float) -> float:
        """Seconds until ``key`` may take again; a key without a bucket has a full one (and gets none)."""
        bucket = self._table.get(key)
        return 0.0 if bucket is None else bucket.wait_time(now)

    def take(self, key: str, now: float) -> None:
        if self.rate <= 0:  # no limit: nothing to remember
            return
        bucket = self._table.get(key)
        if bucket is None:
            bucket = self._table[key] = TokenBucket(self.capacity, self.rate, now)
        else:
            self._table.move_to_end(key)
        bucket.take(now)
        self.sweep(now, 2)

    def try_take(self, key: str, now: float) -> bool:
        """Take a token if one is there; False (and nothing taken) when ``key`` must wait."""
        if self.wait_time(key, now) > 0:
            return False
        self.take(key, now)
        return True

    def sweep(self, now: float, limit: int | None = None) -> int:
        """Drop buckets that have refilled, oldest take first; how many were dropped."""
        dropped = 0
        while self._table and (limit is None or dropped < limit):
            key, bucket = next(iter(self._table.items()))
            if not bucket.full(now):
                break
            del self._table[key]
            dropped += 1
        return dropped

    def __len__(self) -> int:
        return len(self._table)

    def __contains__(self, key: object) -> bool:
        return key in self._table


@dataclass(slots=True)
class Phone:
    """What the audience remembers of one client id."""

    ip: str | None  # where it was first seen; None for the journal's and the VJ's prompts
    first_seen: float
    last_seen: float
    # Lists, not deques: a few entries each, and an empty deque costs 600 bytes to a list's 56.
    history: list[str] = field(default_factory=list)  # its prompt ids, oldest first
    refused: list[str] = field(default_factory=list)  # those of them refused at the door, oldest first
    recent: list[str] = field(default_factory=list)  # duplicate keys of its latest accepted prompts

    def accepted(self, key: str) -> None:
        """A prompt of this phone went into the line: later ones are compared with it."""
        self.recent.append(key)
        del self.recent[:-RECENT_PER_CLIENT]


class PhoneBook:
    """The phones the audience remembers, least recently seen first, with a ceiling in all and per address.

    ``live(prompt_id)`` says whether a prompt is still in the show (queued, generating, on screen);
    ``free(prompt_id)`` lets go of a finished one. Every prompt the audience holds is in its phone's
    history, so forgetting an idle phone frees all its prompts.
    """

    def __init__(self, max_phones: int, max_per_ip: int, memory_s: float, quiet_s: float,
                 live: Callable[[str], bool], free: Callable[[str], None]) -> None:
        self.max_phones = max_phones
        self.max_per_ip = max_per_ip
        self.memory_s = memory_s
        self.quiet_s = quiet_s  # seen this recently, a phone may still be typing: not forgotten to make room
        self.live = live
        self.free = free
        self._phones: OrderedDict[str, Phone] = OrderedDict()
        self._by_ip: dict[str, OrderedDict[str, None]] = {}

    def __len__(self) -> int:
        return len(self._phones)

    def __iter__(self) -> Iterator[str]:
        return iter(self._phones)

    def get(self, client_id: str) -> Phone | None:
        return self._phones.get(client_id)

    def per_ip(self, ip: str) -> int:
        return len(self._by_ip.get(ip, ()))

    def seen(self, client_id: str, now: float) -> Phone | None:
        """A known phone is back: it moves to the end of the line to be forgotten."""
        phone = self._phones.get(client_id)
        if phone is not None:
            phone.last_seen = now
            self._phones.move_to_end(client_id)
            if phone.ip is not None:
                self._by_ip[phone.ip].move_to_end(client_id)
        return phone

    def admit(self, client_id: str, ip: str | None, now: float, force: bool = False) -> Phone | None:
        """The phone, remembered from now on; None when there is no room for a new one.

        A new phone at its address's ceiling takes the place of that address's least recently seen
        idle phone, if one has been quiet for ``quiet_s``; at the ceiling in all, of the least recently
        seen idle phone anywhere. ``force`` (the journal, the VJ) admits past both ceilings.
        """
        phone = self.seen(client_id, now)
        if phone is not None:
            return phone
        if ip is not None and self.per_ip(ip) >= self.max_per_ip and not self._forget_quiet(ip, now) and not force:
            return None
        if len(self._phones) >= self.max_phones and not self._forget_oldest_idle() and not force:
            return None
        phone = self._phones[client_id] = Phone(ip, now, now)
        if ip is not None:
            self._by_ip.setdefault(ip, OrderedDict())[client_id] = None
        return phone

    def remember(self, client_id: str, prompt_id: str, refused: bool = False) -> None:
        """One more prompt in this phone's history; past ``STATUSES_PER_CLIENT`` the oldest finished one
        goes, and past ``REFUSED_PER_CLIENT`` refusals the oldest refusal."""
        phone = self._phones[client_id]
        phone.history.append(prompt_id)
        old: str | None = None
        if refused:
            phone.refused.append(prompt_id)
            if len(phone.refused) > REFUSED_PER_CLIENT:
                old = phone.refused[0]
        if old is None and len(phone.history) > STATUSES_PER_CLIENT:
            old = next((p for p in phone.history if not self.live(p)), None)
        if old is not None:  # else every one is still in the show: the history waits for one to finish
            phone.history.remove(old)
            if old in phone.refused:
                phone.refused.remove(old)
            self.free(old)

    def idle(self, phone: Phone) -> bool:
        return not any(self.live(p) for p in phone.history)

    def forget(self, client_id: str) -> None:
        """Let go of a phone and its finished prompts (callers forget only idle phones)."""
        phone = self._phones.pop(client_id)
        if phone.ip is not None:
            same = self._by_ip[phone.ip]
            del same[client_id]
            if not same:
                del self._by_ip[phone.ip]
        for prompt_id in phone.history:
            self.free(prompt_id)

    def expire(self, now: float, limit: int = EXPIRE_PER_SWEEP) -> int:
        """Forget idle phones not seen for ``memory_s``, least recently seen first; how many went.

        A phone with a prompt still in the show counts as seen now.
        """
        gone = 0
        for _ in range(min(limit, len(self._phones))):
            client_id, phone = next(iter(self._phones.items()))
            if now - phone.last_seen < self.memory_s:
                break
            if self.idle(phone):
                self.forget(client_id)
                gone += 1
            else:
                self.seen(client_id, now)
        return gone

    def _forget_quiet(self, ip: str, now: float) -> bool:
        for client_id in self._by_ip.get(ip, ()):
            phone = self._phones[client_id]
            if now - phone.last_seen < self.quiet_s:
                return False  # the rest of this address was seen even later
            if self.idle(phone):
                self.forget(client_id)
                return True
        return False

    def _forget_oldest_idle(self) -> bool:
        for client_id, phone in self._phones.items():
            if self.idle(phone):
                self.forget(client_id)
                return True
        return False


class Gate(Enum):
    PASS = "pass"
    DROP = "drop"  # over the limit: not handled, the sender is told to slow down
    CLOSE = "close"  # a flood: close the connection


class MessageGate:
    """One connection's frames: its own token bucket and its address's (shared by its connections).

    Checked before a frame is even parsed, so a flood costs a subtraction per frame. More than
    ``burst`` frames dropped in 10 s is a flood: the connection is to be closed.
    """

    def __init__(self, ip: str, rate: float, burst: int, per_ip: Buckets, now: float) -> None:
        self.ip = ip
        self.bucket = TokenBucket(burst, rate, now)
        self.per_ip = per_ip
        self.drops = ErrorBudget(burst)

    def admit(self, now: float) -> Gate:
        if self.bucket.wait_time(now) <= 0 and self.per_ip.try_take(self.ip, now):
            self.bucket.take(now)
            return Gate.PASS
        return Gate.CLOSE if self.drops.record(now) else Gate.DROP
