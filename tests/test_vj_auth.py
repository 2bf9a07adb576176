"""The VJ gate: the token and pairing codes open sessions; wrong guesses are throttled per address, never the VJ."""

from __future__ import annotations

import logging

import pytest

from engine.net import vj_auth
from engine.net.vj_auth import COOKIE, GateVerdict, TokenGate, new_token, session_from_cookies
from tests.fakes import FakeClock

TOKEN = "s3cret-token"


def assert_throttled(verdict: GateVerdict) -> None:
    assert not verdict.ok and verdict.retry_after is not None and verdict.retry_after > 0


def assert_logged_in(verdict: GateVerdict) -> str:
    assert verdict.ok and verdict.session is not None
    return verdict.session


def guess(gate: TokenGate, ip: str, n: int) -> list[GateVerdict]:
    return [gate.check(f"guess-{i:04d}", ip) for i in range(n)]


def test_right_token_passes_wrong_one_does_not() -> None:
    """Only the exact token opens the gate; missing means no."""
    gate = TokenGate("s3cret-token")
    assert gate.check("s3cret-token", "1.1.1.1").ok
    assert not gate.check("s3cret-tokeN", "1.1.1.1").ok
    assert not gate.check(None, "1.1.1.1").ok


def test_repeated_failures_throttle_that_addresses_guesses_for_a_minute() -> None:
    """After five wrong tries in a minute an address's wrong guesses get 429 for a minute; others are untouched."""
    clock = FakeClock(0.0)
    gate = TokenGate(TOKEN, clock)
    assert all(v.retry_after is None for v in guess(gate, "6.6.6.6", 4))
    locked = gate.check("guess5", "6.6.6.6")
    assert not locked.ok and locked.retry_after == 60.0
    assert_throttled(gate.check("guess6", "6.6.6.6"))
    assert gate.check("guess6", "7.7.7.7").retry_after is None  # others are not affected
    clock.now += 61
    assert gate.check("guess7", "6.6.6.6").retry_after is None


def test_the_right_token_gets_in_from_a_throttled_address() -> None:
    """Fifty wrong guesses from the VJ's own address (one NAT) never keep the token out."""
    gate = TokenGate(TOKEN, FakeClock(0.0))
    guesses = guess(gate, "10.0.0.1", 50)
    assert_throttled(guesses[-1])
    assert_logged_in(gate.check(TOKEN, "10.0.0.1"))


def test_a_session_gets_in_from_a_throttled_address() -> None:
    """The VJ's login keeps working while others behind the same address guess."""
    gate = TokenGate(TOKEN, FakeClock(0.0))
    session = assert_logged_in(gate.check(TOKEN, "10.0.0.1"))
    guess(gate, "10.0.0.1", 50)
    assert gate.check_session(session, "10.0.0.1").ok


def test_a_throttle_is_logged_once_per_address(caplog: pytest.LogCaptureFixture) -> None:
    """One warning when an address starts being throttled, not one per guess."""
    gate = TokenGate(TOKEN, FakeClock(0.0))
    with caplog.at_level(logging.INFO, logger="engine.net.vj_auth"):
        guess(gate, "6.6.6.6", 50)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "6.6.6.6" in warnings[0].getMessage()


def test_a_throttle_is_logged_again_in_the_next_window(caplog: pytest.LogCaptureFixture) -> None:
    """A guesser who keeps at it is reported once a minute."""
    clock = FakeClock(0.0)
    gate = TokenGate(TOKEN, clock)
    with caplog.at_level(logging.WARNING, logger="engine.net.vj_auth"):
        guess(gate, "6.6.6.6", 20)
        clock.now += 61
        later = [gate.check(f"later-{i}", "6.6.6.6") for i in range(20)]
    assert_throttled(later[-1])
    assert len(caplog.records) == 2


def test_old_failures_expire() -> None:
    """Wrong tries spread over more than a minute never lock anyone out."""
    clock = FakeClock(0.0)
    gate = TokenGate("s3cret-token", clock)
    for _ in range(10):
        clock.now += 20
        assert gate.check("typo", "1.2.3.4").retry_after is None


def test_tokens_are_random_and_long() -> None:
    """Per-show tokens differ and carry 128 bits."""
    a, b = new_token(), new_token()
    assert a != b and len(a) >= 21


def test_short_configured_token_is_refused() -> None:
    """A configured token must not be trivially guessable."""
    with pytest.raises(ValueError, match="at least 8 characters"):
        TokenGate("1234")


def test_the_same_stale_token_again_and_again_is_one_guess() -> None:
    """A page retrying with its old cookie after a restart does not lock its VJ out."""
    gate = TokenGate("s3cret-token", FakeClock(0.0))
    for _ in range(50):
        assert gate.check("last-shows-token", "1.2.3.4").retry_after is None
    assert gate.check("s3cret-token", "1.2.3.4").ok


def test_token_with_cookie_breaking_characters_is_refused() -> None:
    """A configured token must travel in a URL as it is."""
    with pytest.raises(ValueError, match="letters, digits"):
        TokenGate("my token; x=1")


def test_many_guessing_addresses_do_not_fill_the_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Addresses cost an attacker little: the gate remembers a bounded number of them."""
    monkeypatch.setattr(vj_auth, "MAX_TRACKED", 100)
    clock = FakeClock(0.0, tick=0.001)
    gate = TokenGate(TOKEN, clock)
    for n in range(1000):
        for verdict in guess(gate, f"10.0.{n // 250}.{n % 250}", 5):
            assert not verdict.ok
    assert len(gate._guesses) <= 100 and len(gate._throttled) <= 100


# --- sessions ------------------------------------------------------------------------------------
def test_a_login_opens_a_random_session_not_the_token() -> None:
    """The cookie's value is a fresh 256-bit id each login, with nothing of the token in it."""
    gate = TokenGate(TOKEN)
    first = assert_logged_in(gate.check(TOKEN, "1.1.1.1"))
    second = assert_logged_in(gate.check(TOKEN, "1.1.1.1"))
    assert first != second and len(first) >= 43 and TOKEN not in first
    assert gate.check_session(first, "1.1.1.1").ok and gate.check_session(second, "1.1.1.1").ok


def test_the_token_is_not_a_session() -> None:
    """A cookie holding the token itself (the old way) is refused."""
    gate = TokenGate(TOKEN)
    assert not gate.check_session(TOKEN, "1.1.1.1").ok


def test_a_session_expires_after_twelve_hours() -> None:
    """A login lasts a show, then the page must log in again."""
    clock = FakeClock(0.0)
    gate = TokenGate(TOKEN, clock)
    session = assert_logged_in(gate.check(TOKEN, "1.1.1.1"))
    clock.now += 12 * 3600 - 1
    assert gate.check_session(session, "1.1.1.1").ok
    clock.now += 2
    assert not gate.check_session(session, "1.1.1.1").ok
    assert not gate.session_ok(session)


def test_an_ended_session_is_refused() -> None:
    """Logging out ends that login and no other."""
    gate = TokenGate(TOKEN)
    mine = assert_logged_in(gate.check(TOKEN, "1.1.1.1"))
    other = assert_logged_in(gate.check(TOKEN, "1.1.1.2"))
    gate.end_session(mine)
    assert not gate.check_session(mine, "1.1.1.1").ok
    assert gate.check_session(other, "1.1.1.2").ok


def test_all_sessions_can_be_revoked_at_once() -> None:
    """Logging out everywhere ends every login and the pending pairing code."""
    gate = TokenGate(TOKEN)
    sessions = [assert_logged_in(gate.check(TOKEN, f"1.1.1.{i}")) for i in range(3)]
    code = gate.new_code()
    gate.end_all_sessions()
    assert not any(gate.session_ok(s) for s in sessions)
    assert not gate.check(code, "1.1.1.1").ok


def test_unknown_sessions_count_as_guesses() -> None:
    """Guessing session ids is throttled like guessing the token."""
    gate = TokenGate(TOKEN, FakeClock(0.0))
    verdicts = [gate.check_session(f"made-up-{i}", "6.6.6.6") for i in range(5)]
    assert_throttled(verdicts[-1])


def test_the_session_is_read_from_the_cookie_header() -> None:
    """The control page's cookie among others in one or more Cookie headers."""
    assert session_from_cookies(["a=1", f"theme=dark; {COOKIE}=abc-123; x=y"]) == "abc-123"
    assert session_from_cookies(["a=1"]) is None


# --- pairing codes --------------------------------------------------------------------------------
def test_a_pairing_code_logs_in_once() -> None:
    """A code opens one session; the second use is a wrong guess."""
    gate = TokenGate(TOKEN, FakeClock(0.0))
    code = gate.new_code()
    assert_logged_in(gate.check(code, "1.1.1.1"))
    assert not gate.check(code, "1.1.1.1").ok


def test_a_pairing_code_expires_after_a_minute() -> None:
    """A code not used within 60 s no longer logs in."""
    clock = FakeClock(0.0)
    gate = TokenGate(TOKEN, clock)
    code = gate.new_code()
    clock.now += 60
    assert not gate.check(code, "1.1.1.1").ok


def test_a_pairing_code_is_short_unambiguous_and_typed_loosely() -> None:
    """Eight characters with no 0/O or 1/I/L, accepted in any case, with or without its dash."""
    gate = TokenGate(TOKEN, FakeClock(0.0))
    code = gate.new_code()
    assert len(code.replace("-", "")) == 8 and not set(code) & set("01OIL")
    assert_logged_in(gate.check(f" {code.replace('-', '').lower()} ", "1.1.1.1"))


def test_a_new_pairing_code_replaces_the_last() -> None:
    """Only the latest code works."""
    gate = TokenGate(TOKEN, FakeClock(0.0))
    old = gate.new_code()
    new = gate.new_code()
    assert not gate.check(old, "1.1.1.1").ok
    assert_logged_in(gate.check(new, "1.1.1.1"))


def test_a_pairing_code_gets_in_from_a_throttled_address() -> None:
    """Guessers behind the VJ's address do not keep the VJ's code out."""
    gate = TokenGate(TOKEN, FakeClock(0.0))
    code = gate.new_code()
    guess(gate, "10.0.0.1", 50)
    assert_logged_in(gate.check(code, "10.0.0.1"))
