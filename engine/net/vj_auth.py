"""Who may steer the show: the VJ token, checked in constant time, with failed attempts limited per address.

Sans-I/O: the control page's HTTP routes and WebSocket ask ``TokenGate.check`` and
answer 401 (or 429 while an address is locked out) without leaking anything else.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MAX_FAILURES = 5
WINDOW_S = 60.0
LOCKOUT_S = 60.0
TOKEN_CHARS = re.compile(r"^[A-Za-z0-9._~-]+$")  # safe in a URL and a cookie as it is


def new_token() -> str:
    """A fresh per-show token: 128 bits, URL-safe, easy to read off the HUD."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class GateVerdict:
    ok: bool
    retry_after: float | None = None  # set while the address is locked out


class TokenGate:
    def __init__(self, token: str, clock: Callable[[], float] = time.monotonic, max_failures: int = MAX_FAILURES,
                 window: float = WINDOW_S, lockout: float = LOCKOUT_S) -> None:
        if len(token) < 8:
            raise ValueError("vj.token: use at least 8 characters (or leave it empty for a random one)")
        if not TOKEN_CHARS.match(token):
            raise ValueError("vj.token: use only letters, digits and . _ ~ - (it travels in a URL and a cookie)")
        self._token = token.encode()
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self._failures: dict[str, deque[tuple[float, bytes]]] = {}
        self._locked_until: dict[str, float] = {}

    def check(self, presented: str | None, ip: str) -> GateVerdict:
        """Is ``presented`` the token? A locked-out address is refused without comparing anything."""
        now = self.clock()
        until = self._locked_until.get(ip)
        if until is not None:
            if now < until:
                return GateVerdict(False, until - now)
            del self._locked_until[ip]
        if hmac.compare_digest((presented or "").encode(), self._token):
            self._failures.pop(ip, None)
            return GateVerdict(True)
        # Guesses count once each: a page that keeps retrying with a stale cookie (after a restart
        # with a new random token) must not lock its VJ out, while every new guess counts.
        fails = self._failures.setdefault(ip, deque())
        digest = hashlib.sha256((presented or "").encode()).digest()[:8]
        fails.append((now, digest))
        while fails and now - fails[0][0] > self.window:
            fails.popleft()
        if len({d for _t, d in fails}) >= self.max_failures:
            self._locked_until[ip] = now + self.lockout
            fails.clear()
            return GateVerdict(False, self.lockout)
        return GateVerdict(False)
