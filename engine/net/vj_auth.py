"""Who may steer the show: the VJ token, one-time pairing codes, the sessions they open, and guessing throttled.

Sans-I/O: the control page's routes ask the gate with plain calls (the clock is injectable) and
answer what it says; nothing here touches a socket.

- ``check(secret, ip)``: the show's token, or the pairing code of the moment (``new_code``: the
  ``P`` key on the show machine, printed on its console only; 8 characters, 60 s, one login), opens a
  session: a random id that the cookie carries instead of the token, kept server-side for 12 hours
  and revocable (``end_session``, ``end_all_sessions``).
- ``check_session(session, ip)``: every later request and socket.

A right secret always gets in, whatever its address did: many devices share one address at a venue
(a NAT), so an address that guesses must never lock the VJ out. So the secret is compared first (in
constant time; sessions are looked up by their SHA-256, so a lookup's timing says nothing about the
stored ids), and only a wrong one counts against its address: after ``MAX_GUESSES`` different wrong
secrets within ``WINDOW_S``, that address's wrong guesses are answered 429 for ``THROTTLE_S``, and a
warning is logged once per address per throttle, not once per guess.

What a guesser gets: per address, 4 wrong answers (401) a minute, 240 an hour; every other guess is
answered 429. Since a 429 goes only to a wrong secret, a guesser who ignores it still learns, request
by request, whether a guess was right: no per-address throttle can cap that without denying the VJ,
so what makes guessing hopeless is the secrets' size. This server answers about 1,200 guesses a
second (loopback, measured); take 10,000 a second from all addresses together, 36 million an hour,
as a generous ceiling. Against a random token (22 characters, 128 bits) that is a 1 in 10^31 chance
an hour; against the shortest configured token (8 characters, 48 bits) about 1,000 years. A pairing
code (8 of 31 characters, 2^39.6) lives 60 s: at most 600,000 guesses, a 1 in 1.4 million chance per
code, and its first login spends it. A session id has 256 bits.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

COOKIE = "stagecraft_vj"  # holds a session id, never the token
MAX_GUESSES = 5  # different wrong secrets from one address within WINDOW_S: its guesses get 429
WINDOW_S = 60.0
THROTTLE_S = 60.0
SESSION_S = 12 * 3600.0  # a login lasts a show
MAX_SESSIONS = 64  # the oldest login ends when a 65th begins
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read off a console, typed on a tablet
CODE_LENGTH = 8
CODE_S = 60.0
MAX_TRACKED = 10_000  # guessing (and throttled) addresses remembered at most: addresses cost an attacker little
TOKEN_CHARS = re.compile(r"^[A-Za-z0-9._~-]+$")  # safe in a URL and a cookie as it is


def new_token() -> str:
    """A fresh per-show token: 128 bits, URL-safe."""
    return secrets.token_urlsafe(16)


def session_from_cookies(headers: Iterable[str]) -> str | None:
    """The session id in a request's ``Cookie`` headers, if any."""
    for header in headers:
        for part in header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
    return None


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


@dataclass(frozen=True)
class GateVerdict:
    ok: bool
    session: str | None = None  # the session a token or code just opened
    retry_after: float | None = None  # set on a wrong guess while its address is throttled


class TokenGate:
    def __init__(self, token: str, clock: Callable[[], float] = time.monotonic, max_guesses: int = MAX_GUESSES,
                 window: float = WINDOW_S, throttle: float = THROTTLE_S, session_s: float = SESSION_S,
                 code_s: float = CODE_S) -> None:
        if len(token) < 8:
            raise ValueError("vj.token: use at least 8 characters (or leave it empty for a random one)")
        if not TOKEN_CHARS.match(token):
            raise ValueError("vj.token: use only letters, digits and . _ ~ - (it travels in a URL)")
        self._token = token.encode()
        self.clock = clock
        self.max_guesses = max_guesses
        self.window = window
        self.throttle = throttle
        self.session_s = session_s
        self.code_s = code_s
        self._code: bytes | None = None
        self._code_until = 0.0
        self._sessions: dict[bytes, float] = {}  # SHA-256 of the id → when it ends; oldest first
        self._guesses: dict[str, dict[bytes, float]] = {}  # address → its recent wrong secrets' digests → when
        self._throttled: dict[str, float] = {}  # address → until when its wrong guesses get 429

    # --- logging in --------------------------------------------------------------------------
    def check(self, presented: str | None, ip: str) -> GateVerdict:
        """Is ``presented`` the token or the live pairing code? Then a new session, whatever ``ip`` did before."""
        now = self.clock()
        given = presented or ""
        token_ok = hmac.compare_digest(given.encode(), self._token)
        code_ok = self._code_ok(given, now)
        if token_ok or code_ok:
            if code_ok:
                self._code = None  # one login per code
            return GateVerdict(True, session=self._open_session(now))
        return self._wrong(given, ip, now)

    def new_code(self) -> str:
        """A fresh pairing code, shown as ``ABCD-EFGH``; the one before stops working."""
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        self._code = code.encode()
        self._code_until = self.clock() + self.code_s
        return f"{code[:4]}-{code[4:]}"

    def _code_ok(self, given: str, now: float) -> bool:
        if self._code is None:
            return False
        if now >= self._code_until:
            self._code = None
            return False
        typed = "".join(given.split()).replace("-", "").upper()  # as read: any case, with or without the dash
        return hmac.compare_digest(typed.encode(), self._code)

    # --- sessions -----------------------------------------------------------------------------
    def _open_session(self, now: float) -> str:
        session = secrets.token_urlsafe(32)
        self._sessions[_digest(session)] = now + self.session_s
        while len(self._sessions) > MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        return session

    def check_session(self, session: str | None, ip: str) -> GateVerdict:
        """Is ``session`` a live login? An unknown one counts as a guess against ``ip``."""
        if not session:
            return GateVerdict(False)
        now = self.clock()
        key = _digest(session)
        ends = self._sessions.get(key)
        if ends is None:
            return self._wrong(session, ip, now)
        if now >= ends:
            del self._sessions[key]
            return GateVerdict(False)
        return GateVerdict(True)

    def session_ok(self, session: str | None) -> bool:
        """A live login (asked by open sockets after a logout; never counted as a guess)."""
        ends = self._sessions.get(_digest(session)) if session else None
        return ends is not None and self.clock() < ends

    def end_session(self, session: str | None) -> None:
        if session:
            self._sessions.pop(_digest(session), None)

    def end_all_sessions(self) -> None:
        """Every control page logs in again (a leaked login, a device lost); the pairing code goes too."""
        self._sessions.clear()
        self._code = None

    # --- guessing -----------------------------------------------------------------------------
    def _wrong(self, given: str, ip: str, now: float) -> GateVerdict:
        until = self._throttled.get(ip)
        if until is not None:
            if now < until:
                return GateVerdict(False, retry_after=until - now)
            del self._throttled[ip]
        guesses = self._guesses.get(ip)
        if guesses is None:
            guesses = self._guesses[ip] = {}
            _bound(self._guesses)
        # Guesses count once each: a page that keeps retrying with a stale cookie (after a restart)
        # is one guess, while every new guess counts. Kept oldest first, at most max_guesses of them.
        digest = _digest(given)[:8]
        guesses.pop(digest, None)
        guesses[digest] = now
        while now - next(iter(guesses.values())) > self.window:
            del guesses[next(iter(guesses))]
        if len(guesses) < self.max_guesses:
            return GateVerdict(False)
        del self._guesses[ip]
        self._throttled[ip] = now + self.throttle
        _bound(self._throttled)
        log.warning("VJ page: %d wrong tokens or codes from %s within %.0f s: its guesses get 429 for %.0f s "
                    "(the right token, code or login still gets in)", self.max_guesses, ip, self.window,
                    self.throttle)
        return GateVerdict(False, retry_after=self.throttle)


def _bound(by_address: dict[str, Any]) -> None:
    """Forget the address seen first once too many are remembered (one at a time: no pause, whatever the crowd)."""
    if len(by_address) > MAX_TRACKED:
        del by_address[next(iter(by_address))]
