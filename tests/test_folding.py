"""Letter folding: every Unicode dress a letter can wear, and the readings the matcher tries."""

from __future__ import annotations

import pytest

from engine.net.folding import fold, normalise, readings, spellings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("🇳🇮🇬🇭🇹", "night"),  # regional-indicator symbols (pairs render as flags)
        ("🅝🅘🅖🅗🅣", "night"),  # negative circled capitals
        ("🅽🅸🅶🅷🆃", "night"),  # negative squared capitals
        ("🄽🄸🄶🄷🅃", "night"),  # squared capitals
        ("⒩⒤⒢⒣⒯", "night"),  # parenthesised small letters ("(n)" would read "c n")
        ("🄝🄘🄖🄗🄣", "night"),  # parenthesised capitals
        ("ⓝⓘⓖⓗⓣ", "night"),  # circled
        ("𝐧𝐢𝐠𝐡𝐭", "night"),  # mathematical bold
        ("𝓷𝓲𝓰𝓱𝓽", "night"),  # mathematical script
        ("𝔫𝔦𝔤𝔥𝔱", "night"),  # fraktur
        ("𝕟𝕚𝕘𝕙𝕥", "night"),  # double-struck
        ("𝚗𝚒𝚐𝚑𝚝", "night"),  # monospace
        ("ｎｉｇｈｔ", "night"),  # full-width
        ("ɴɪɢʜᴛ", "night"),  # small capitals
        ("ⁿⁱᵍʰᵗ", "night"),  # modifier (superscript) letters
    ],
)
def test_letter_like_symbols_fold_to_letters(text: str, expected: str) -> None:
    """Every letter-like form a phone keyboard or a fancy-text site offers reads as the plain letter."""
    assert normalise(text) == expected


def test_regional_indicators_next_to_words_join_them() -> None:
    """Flag letters are letters: typed inside a word they are part of it."""
    assert normalise("a 🇫🇺🇨🇰 sign") == "a fuck sign"


def test_ascii_takes_the_short_way_to_the_same_answer() -> None:
    """Plain ASCII is only lowered and respaced, as the full path would do."""
    assert normalise("  Neon\tCATHEDRAL\n at  Night ") == "neon cathedral at night"


def test_normalise_keeps_emoji_and_other_scripts() -> None:
    """Pictures and other scripts are content, not disguises: they are kept."""
    assert normalise("🎸🔥 日本語 ✨") == "🎸🔥 日本語 ✨"


@pytest.mark.parametrize(("text", "expected"), [("fvck", "fucc"), ("niqqa", "nigga"), ("kick", "cicc")])
def test_fold_near_spellings(text: str, expected: str) -> None:
    """v reads u, q reads g, k reads c (so ``ck`` is a double letter)."""
    assert fold(text) == expected


def test_spellings_read_ph_both_ways() -> None:
    """``ph`` is kept and also read as ``f``; a word without one has one spelling."""
    assert (spellings("phuc"), spellings("fuc")) == (("phuc", "fuc"), ("fuc",))


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("n1ght", {"night", "nlght"}),  # 1 is i or l
        ("1111", {"iiii", "llll"}),  # one way throughout a fragment
        ("g00fba|1", {"goofball", "goofbali", "goofbail", "goofbaii"}),  # two kinds: every mix
        ("ni6ht", {"night", "nibht"}),  # 6 is g or b
    ],
)
def test_readings_of_two_way_characters(fragment: str, expected: set[str]) -> None:
    """A digit or symbol with two readings gives both."""
    assert set(readings(fragment)[0]) == expected


def test_z_may_read_s_one_way() -> None:
    """A prompt's ``z`` may stand for ``s`` (``niggaz``); an ``s`` never reads ``z``."""
    assert (set(readings("azz")[0]), readings("ass")[0]) == ({"azz", "ass"}, ("ass",))


@pytest.mark.parametrize(("fragment", "expected"), [("bad!", {"badi", "bad"}), ("(bad", {"cbad", "bad"})])
def test_symbols_at_the_ends_may_be_punctuation(fragment: str, expected: set[str]) -> None:
    """``!`` or ``(`` at either end of a word may be punctuation, and read as nothing."""
    assert set(readings(fragment)[0]) == expected


def test_symbols_inside_a_word_are_letters() -> None:
    """Inside a word a symbol is a letter: ``sh!t`` has one reading."""
    assert readings("sh!t")[0] == ("shit",)


def test_dollar_and_at_are_always_letters() -> None:
    """``$`` and ``@`` are only ever typed as letters, even at the end of a word."""
    assert readings("$hit!")[0] == ("shiti", "shit")


def test_digits_alone_have_no_letter() -> None:
    """A number is read, but flagged as having no letter of its own."""
    assert readings("8085") == (("bobs",), False)


def test_junk_has_few_readings() -> None:
    """Many two-way characters in one fragment are read all one way or all the other, not every mix."""
    assert len(readings("1|6z1|6z1|6z")[0]) <= 2


def test_masked_letters_are_kept() -> None:
    """A ``?`` standing for a censored letter passes through every reading."""
    assert readings("f??k")[0] == ("f??c",)


@pytest.mark.parametrize("text", ["🇳🇮🇬🇭🇹", "🅝🅘🅖🅗🅣 ⒩⒤⒢⒣⒯", "ꜰᴜɴ ᶠᵘⁿ", "ƒun"])
def test_normalise_is_idempotent_on_letter_like_symbols(text: str) -> None:
    """Folded letters are plain letters: normalising again changes nothing."""
    assert normalise(normalise(text)) == normalise(text)
