"""The intake's first line, shared by every intake through Redis: bans, rate limits and repeated texts.

One Lua script (``SCRIPT``, run with EVALSHA: loaded once, loaded again when a restarted Redis answers
NOSCRIPT) decides for (phone, address, the text's duplicate key) atomically, on Redis' own clock
(``TIME``), so intakes on machines whose clocks disagree still share one idea of "15 s since the last one":

- a phone or an address in ``banned_clients`` / ``banned_addresses`` is refused ("banned");
- a token is taken from the phone's bucket and from its address's (the rates and bursts of
  ``net/audience.py``: ``cooldown``/``burst`` per phone, ``IP_BUCKET_FACTOR`` times that per address),
  else refused with the seconds until the next token ("slow down", ``retry_after``);
- a text this phone sent within the duplicate window is refused ("duplicate"): ``SET NX`` with a TTL on
  ``dupe(client, key)``, with ``dupe_key`` of the audience, so case, accents and punctuation do not make
  a text new. The window is ``phone_memory``, as long as the audience remembers a phone's recent texts;
  and as the audience remembers only the prompts it accepts, the intake takes the mark back (``forget``)
  when the show refuses the prompt or never answers, so "the queue is full, try again" can be tried again.

Every key it touches has a TTL: a bucket expires when it would be full again (a full bucket says nothing
a missing one does not), a duplicate mark at the end of its window. Nothing leaks, whatever the crowd.

Why here, at the intake, when the show's ``Audience`` checks the same things again:

- the intakes are the only part that scales out. A flood (one prankster's script, a hundred phones behind
  one address) is stopped at whichever intake it reaches, for one Redis round trip, before it costs the
  show a stream entry, a journal row or a moment of its one event loop;
- the limits live in Redis, not in an intake's memory, so a phone that moves to another intake (its
  intake went away, the page tried the next address) keeps its bucket and its recent texts.

The show's ``Audience`` still applies its full screening to every prompt that gets this far: moderation,
near-duplicates by similarity, prompts waiting per phone, the queue's size, the taint of a banned phone's
address. It sees every prompt of the show, so those need no sharing; the gate only has to be cheap, exact
and the same everywhere. A refusal here speaks the audience's words (``protocol.REASONS``), so a phone
reads it in its own language as it would in a one-process show.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from engine.config import AudienceConfig
from engine.net.audience import BANNED, DUPLICATE, IP_BUCKET_FACTOR, dupe_key
from engine.net.protocol import reason_text

from .keys import Keys

# KEYS: banned clients, banned addresses, the phone's bucket, the address's bucket, the duplicate mark.
# ARGV: client id, address, phone capacity, phone rate (tokens/s; 0: no limit), address capacity, address
# rate, duplicate window (ms; 0: none). Answers {verdict, seconds to wait}: numbers as strings, since Redis
# would cut a Lua number to an integer.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 or redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then
  return {'banned', '0'}
end
local cap, rate = tonumber(ARGV[3]), tonumber(ARGV[4])
local ipcap, iprate = tonumber(ARGV[5]), tonumber(ARGV[6])
local function level(key, capacity, r)
  local b = redis.call('HMGET', key, 'tokens', 'stamp')
  local tokens, stamp = tonumber(b[1]), tonumber(b[2])
  if tokens == nil or stamp == nil then
    return capacity
  end
  return math.min(capacity, tokens + math.max(0, now - stamp) * r)
end
local function take(key, tokens, capacity, r)
  tokens = tokens - 1
  redis.call('HSET', key, 'tokens', tostring(tokens), 'stamp', tostring(now))
  -- gone when it would be full again: a full bucket and no bucket are the same
  redis.call('PEXPIRE', key, math.max(1, math.ceil((capacity - tokens) / r * 1000)))
end
if rate > 0 then
  local mine, theirs = level(KEYS[3], cap, rate), level(KEYS[4], ipcap, iprate)
  local wait = 0
  if mine < 1 then wait = (1 - mine) / rate end
  if theirs < 1 then wait = math.max(wait, (1 - theirs) / iprate) end
  if wait > 0 then
    return {'slow', tostring(wait)}
  end
  take(KEYS[3], mine, cap, rate)
  take(KEYS[4], theirs, ipcap, iprate)
end
local window = tonumber(ARGV[7])
if window > 0 and not redis.call('SET', KEYS[5], '1', 'NX', 'PX', window) then
  return {'duplicate', '0'}
end
return {'ok', '0'}
"""


@dataclass(frozen=True)
class Refusal:
    """Why the gate said no: the audience's English reason (its code is read back from it) and, for a
    rate limit, the seconds until the phone may send again."""

    reason: str
    retry_after: float | None = None


class Gate:
    """``admit`` asks Redis; ``forget`` takes back a duplicate mark (the show refused the prompt after all).

    ``dupe_window``: seconds a phone's exact text is refused again; by default the audience's
    ``phone_memory``, as long as the show's ``Audience`` remembers a phone's recent prompts.
    """

    def __init__(self, r: Any, keys: Keys, cfg: AudienceConfig, dupe_window: float | None = None) -> None:
        self.r = r
        self.keys = keys
        rate = 1.0 / cfg.cooldown if cfg.cooldown > 0 else 0.0
        self.capacity = float(cfg.burst)
        self.rate = rate
        self.dupe_window = cfg.phone_memory if dupe_window is None else dupe_window
        self._script = r.register_script(SCRIPT)  # EVALSHA; SCRIPT LOAD on NOSCRIPT, then EVALSHA again

    async def admit(self, client_id: str, ip: str, text: str) -> Refusal | None:
        """None: let the prompt on to the show; else why not. Raises redis-py's errors (Redis is away)."""
        k = self.keys
        keys = [k.banned_clients, k.banned_addresses, k.bucket("c", client_id), k.bucket("a", ip),
                k.dupe(client_id, _short(dupe_key(text)))]
        args = [client_id, ip, repr(self.capacity), repr(self.rate), repr(self.capacity * IP_BUCKET_FACTOR),
                repr(self.rate * IP_BUCKET_FACTOR), str(int(self.dupe_window * 1000))]
        # Once more on a closed connection; the script may have run before its reply was lost: a token
        # taken twice, at worst, once.
        answer = await self._script(keys=keys, args=args)
        verdict = answer[0].decode() if isinstance(answer[0], bytes) else str(answer[0])
        if verdict == "ok":
            return None
        if verdict == "banned":
            return Refusal(BANNED)
        if verdict == "duplicate":
            return Refusal(DUPLICATE)
        wait = float(answer[1])
        return Refusal(reason_text("slow_down", seconds=max(1, round(wait))), wait)

    async def forget(self, client_id: str, text: str) -> None:
        """The show refused this text (moderation, its own limits) or never answered: like the audience,
        which remembers only accepted prompts, the phone may send it again."""
        await self.r.delete(self.keys.dupe(client_id, _short(dupe_key(text))))


def _short(key: str) -> str:
    """The duplicate key as it goes into a Redis key name: a hash, so the name is short whatever the prompt's
    length, and no prompt's words are spelled out in Redis' key space (a ``KEYS *`` in a runbook)."""
    return hashlib.blake2s(key.encode(), digest_size=12).hexdigest()
