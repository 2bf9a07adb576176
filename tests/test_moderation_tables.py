"""The built-in list against two tables: what a hostile crowd typed, and what an ordinary one types.

``tests/data/moderation/evasions.txt`` must all be refused; ``innocent.txt`` (English and
Spanish concert prompts, with the Scunthorpe-style traps) must all pass: the false-positive
rate on it is 0%. One prompt a line, ``# `` starts a comment, ``\\uXXXX`` is an invisible character.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.net.moderation import Moderator

DATA = Path(__file__).resolve().parent / "data" / "moderation"
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def read_table(name: str) -> list[str]:
    """The prompts of one table, escapes turned into the characters they name."""
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [
        _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), line)
        for line in lines
        if line.strip() and not line.startswith("# ")
    ]


EVASIONS = read_table("evasions.txt")
INNOCENT = read_table("innocent.txt")


@pytest.fixture(scope="module")
def builtin() -> Moderator:
    """The built-in list, as the engine loads it."""
    return Moderator.from_files()


def test_tables_are_large() -> None:
    """Each table has at least a hundred prompts."""
    assert (len(EVASIONS) >= 100, len(INNOCENT) >= 100) == (True, True)


def test_tables_have_no_repeats() -> None:
    """No prompt is listed twice (a repeat would hide a missing case)."""
    assert [t for t in EVASIONS + INNOCENT if (EVASIONS + INNOCENT).count(t) > 1] == []


@pytest.mark.parametrize("text", EVASIONS)
def test_evasion_is_refused(builtin: Moderator, text: str) -> None:
    """A disguised blocked word is refused."""
    assert not builtin.check(text).allowed, f"{text!r} was allowed"


@pytest.mark.parametrize("text", INNOCENT)
def test_innocent_prompt_is_allowed(builtin: Moderator, text: str) -> None:
    """An innocent prompt, even one that contains or spells a blocked word, passes."""
    verdict = builtin.check(text)
    assert verdict.allowed, f"{text!r} refused as {verdict.matched!r}"
