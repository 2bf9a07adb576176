"""The audience protocol as plain function calls."""

from __future__ import annotations

import json

import pytest

from engine.net import protocol
from engine.net.protocol import PingMsg, PromptMsg, PromptStatus, ProtocolError, State


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x00\x01", "binary_not_allowed"),
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('"text"', "bad_json"),
        ("{}", "unknown_type"),
        ('{"type": "shout"}', "unknown_type"),
        ('{"type": "prompt"}', "missing_field"),
        ('{"type": "prompt", "text": 42}', "wrong_type"),
        ('{"type": "prompt", "text": null}', "wrong_type"),
        ('{"type": "prompt", "text": "hi", "ref": 5}', "wrong_type"),
        ('{"type": "prompt", "text": "   \\n  "}', "empty"),
        ('{"type": "prompt", "text": "' + "x" * 201 + '"}', "too_long"),
        ("[" * 100000, "bad_json"),
    ],
)
def test_bad_frames_have_codes(frame: str | bytes, code: str) -> None:
    """Every malformed message maps to its documented error code."""
    with pytest.raises(ProtocolError) as info:
        protocol.parse(frame, 200)
    assert info.value.code == code


def test_prompt_is_parsed_and_cleaned() -> None:
    """Whitespace and control characters are folded; ref is kept."""
    msg = protocol.parse('{"type": "prompt", "text": "  a\\tneon\\u0000 whale\\u202e ", "ref": "r1"}', 200)
    assert msg == PromptMsg("a neon whale", "r1")


def test_ping() -> None:
    """ping parses, and pong is the answer."""
    assert protocol.parse('{"type": "ping"}', 10) == PingMsg()
    assert json.loads(protocol.PONG) == {"type": "pong"}


@pytest.mark.parametrize(("given", "keeps"), [("abcdefgh", True), ("a" * 64, True), ("short", False),
                                              ("has space12", False), (None, False), ("../../etc", False)])
def test_client_ids(given: str | None, keeps: bool) -> None:
    """A well-formed id is kept; anything else gets a fresh random one."""
    cid, new = protocol.client_id_or_new(given)
    assert (cid == given) is keeps and new is not keeps
    assert protocol.CLIENT_ID.match(cid)


def test_status_messages_carry_the_documented_fields() -> None:
    """queued has position; rejected has reason and retry_after; done has the image URL(s)."""
    queued = PromptStatus("p-1", "t", State.QUEUED, position=3, ref="r")
    assert queued.to_message() == {"type": "status", "id": "p-1", "text": "t", "state": "queued", "position": 3,
                                   "ref": "r"}
    rejected = PromptStatus("p-2", "t", State.REJECTED, reason="slow down", retry_after=12.04).to_message()
    assert (rejected["reason"], rejected["retry_after"], "position" in rejected) == ("slow down", 12.0, False)
    done = PromptStatus("p-3", "t", State.DONE, image_urls=("/images/a.png", "/images/b.png")).to_message()
    assert done["image_url"] == "/images/a.png" and done["images"] == ["/images/a.png", "/images/b.png"]


def test_welcome_lists_the_clients_prompts() -> None:
    """welcome carries the id, the limits and the statuses to rebuild the page."""
    msg = json.loads(protocol.welcome("abcdefgh", 200, 15.0, [PromptStatus("p-1", "t", State.DONE)], True))
    assert msg["type"] == "welcome" and msg["client_id"] == "abcdefgh" and msg["max_length"] == 200
    assert msg["prompts"][0]["id"] == "p-1" and msg["feed"] is True


def test_error_budget_trips_past_the_limit() -> None:
    """More than `limit` errors in 10 s marks the client abusive; old errors expire."""
    budget = protocol.ErrorBudget(3)
    assert [budget.record(t) for t in (0, 1, 2)] == [False, False, False]
    assert budget.record(3) is True
    fresh = protocol.ErrorBudget(3)
    assert [fresh.record(t) for t in (0, 11, 22, 33)] == [False] * 4


def test_errors_echo_the_ref() -> None:
    """A bad prompt that carried a ref gets it back, so the page knows which one failed."""
    with pytest.raises(ProtocolError) as info:
        protocol.parse('{"type": "prompt", "text": "", "ref": "r9"}', 200)
    assert json.loads(protocol.error(info.value.code, info.value.message, info.value.ref))["ref"] == "r9"
