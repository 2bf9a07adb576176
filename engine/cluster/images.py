"""The show's images where every intake can serve them: in Redis, the newest ones, under a size cap.

Why Redis, and not a shared folder or an object store: every intake already talks to Redis, and nothing
else. A venue then has no NFS share or S3 bucket to set up, secure and test on show day, and no second
thing that can fail under the phones. The show's own disk (the journal and its output folder) keeps every
image for good; Redis only holds what phones come back for. One image (a 1024² JPEG or PNG) is 0.1 to
1.5 MB, so the default 512 MB (``[cluster] image_cache_mb``) holds the last few hundred: the ones on screen
now and lately, which is what a phone's history links to. An older one is a 404 on the phone (its
history still says what happened); the show's control page still has it from the disk.

Keys (``keys.py``): ``image(id)`` the bytes, with the TTL ``history_ttl``; ``images`` a sorted set of
every cached image by the time it was added (Redis' clock), its member ``<bytes>:<id>`` so the size of an
image that has expired is still known; ``image_bytes`` the sum. One Lua script adds an image and, in the
same atomic step, drops the expired and then the oldest until the sum is under the cap, so two shows (or
a retried write) can never leave the count wrong. Adding an id that is already there replaces it.

Reading (the intakes): ``lookup`` is the server's ``ImageLookup``, a GET and the type sniffed from the bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from engine.cluster.link import raise_if_cancelled
from engine.gen.images import content_type, sniff

from .keys import Keys
from .link import describe

log = logging.getLogger(__name__)

# KEYS: the image, the sorted set, the byte count. ARGV: image id, bytes, TTL (s), cap (bytes), key prefix.
# Answers {bytes cached, images dropped}.
PUT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl, cap = tonumber(ARGV[3]), tonumber(ARGV[4])
local total = tonumber(redis.call('GET', KEYS[3]) or '0')
local function drop(member)
  local size, id = string.match(member, '^(%d+):(.*)$')
  redis.call('ZREM', KEYS[2], member)
  if id ~= nil then
    redis.call('DEL', ARGV[5] .. id)
    total = total - tonumber(size)
  end
end
local old = redis.call('STRLEN', KEYS[1])
if old > 0 then
  drop(old .. ':' .. ARGV[1])
end
-- expired by their TTL (written ttl seconds ago): their bytes leave the count with them
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', tostring(now - ttl))) do
  drop(member)
end
local size = string.len(ARGV[2])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ttl)
redis.call('ZADD', KEYS[2], tostring(now), size .. ':' .. ARGV[1])
total = total + size
local dropped = 0
while total > cap do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)
  if #oldest == 0 then
    break
  end
  drop(oldest[1])
  dropped = dropped + 1
end
if total < 0 then total = 0 end
redis.call('SET', KEYS[3], total, 'EX', ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return {total, dropped}
"""


class ImageCache:
    """The show's side: ``put`` (in a pipeline of the caller's, or alone)."""

    def __init__(self, r: Any, keys: Keys, cap_mb: int, ttl: float) -> None:
        self.keys = keys
        self.cap_bytes = cap_mb * 1024 * 1024
        self.ttl = max(1, int(ttl))
        self._script = r.register_script(PUT)  # EVALSHA; loaded again on NOSCRIPT (a restarted Redis)

    def put(self, image_id: str, data: bytes, pipe: Any = None) -> Awaitable[Any]:
        """Cache the image (replacing one of the same id), dropping the oldest past the cap; with ``pipe``
        the call is queued in that pipeline (which loads the script before it runs)."""
        k = self.keys
        prefix = k.image("")
        return self._script(keys=[k.image(image_id), k.images, k.image_bytes],  # type: ignore[no-any-return]
                            args=[image_id, data, self.ttl, self.cap_bytes, prefix], client=pipe)


def lookup(r: Any, keys: Keys) -> Callable[[str], Awaitable[tuple[bytes, str] | None]]:
    """The intake's image route: bytes and type by id from Redis; None (a 404) when it is not cached, or
    when Redis cannot be asked now (the page tries again: a 404 is sent with no-cache)."""

    async def find(image_id: str) -> tuple[bytes, str] | None:
        try:
            data = await r.get(keys.image(image_id))
        except Exception as err:  # Redis away: a 404 now beats a phone left hanging
            raise_if_cancelled(err)
            log.debug("image %s: %s", image_id, describe(err))
            return None
        if not data:
            return None
        return bytes(data), content_type(sniff(data) or "png")

    return find
