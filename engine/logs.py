"""Logging for the show's process and the backstage process alike: one format, quiet libraries, throttled
lines for what strangers send."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable


def setup_logging(level: str) -> None:
    """Log ``level`` and up to stderr, one line each (both processes call this with the config's level)."""
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    # One line per phone connecting would drown the log at a busy show.
    logging.getLogger("websockets").setLevel(logging.WARNING)


class LogThrottle:
    """At most one line per key (a source address) every ``every`` seconds; the lines held back are counted.

    A hostile sender must not be able to write the log for us: one bad packet can hold thousands of
    faults. The keys are bounded too (``max_keys``), since UDP source addresses cost nothing to forge:
    past that many live keys, every other source shares one key, so the whole log stays a few lines.
    """

    SHARED = "*"

    def __init__(self, every: float, max_keys: int = 64, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.max_keys = max_keys
        self.clock = clock
        self._keys: dict[str, tuple[float, int]] = {}  # key → (when its last line was written, held back since)

    def admit(self, key: str) -> int | None:
        """None: keep quiet this time; else write the line, telling how many were held back before it."""
        now = self.clock()
        if key not in self._keys and len(self._keys) >= self.max_keys:
            self._keys = {k: v for k, v in self._keys.items() if now - v[0] < self.every}
            if len(self._keys) >= self.max_keys:
                key = self.SHARED
        last, held = self._keys.get(key, (-math.inf, 0))
        if now - last < self.every:
            self._keys[key] = (last, held + 1)
            return None
        self._keys[key] = (now, 0)
        return held


def held_back(count: int) -> str:
    """The tail of a throttled line: how many like it were not written."""
    return f" ({count} more like this not logged)" if count else ""
