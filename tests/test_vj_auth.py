"""The VJ token gate: right token in, wrong ones limited per address."""

from __future__ import annotations

import pytest

from engine.net.vj_auth import TokenGate, new_token
from tests.fakes import FakeClock


def test_right_token_passes_wrong_one_does_not() -> None:
    """Only the exact token opens the gate; missing means no."""
    gate = TokenGate("s3cret-token")
    assert gate.check("s3cret-token", "1.1.1.1").ok
    assert not gate.check("s3cret-tokeN", "1.1.1.1").ok
    assert not gate.check(None, "1.1.1.1").ok


def test_repeated_failures_lock_the_address_out() -> None:
    """After five wrong tries in a minute an address is refused, even with the right token, for a minute."""
    clock = FakeClock(0.0)
    gate = TokenGate("s3cret-token", clock)
    for i in range(4):
        assert gate.check(f"guess{i}", "6.6.6.6").retry_after is None
    locked = gate.check("guess5", "6.6.6.6")
    assert not locked.ok and locked.retry_after == 60.0
    assert not gate.check("s3cret-token", "6.6.6.6").ok
    assert gate.check("s3cret-token", "7.7.7.7").ok  # others are not affected
    clock.now += 61
    assert gate.check("s3cret-token", "6.6.6.6").ok


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
    with pytest.raises(ValueError, match="letters, digits"):
        TokenGate("my token; x=1")
