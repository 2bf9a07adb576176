"""Prompt moderation: the tricks pranksters use, and the innocent prompts that must still pass.

Trick tests use a made-up blocklist so this file needs no real slurs; the built-in list
is exercised with entries taken from the loaded file itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.net.moderation import REFUSAL, ModerationError, Moderator, Verdict, normalise

BLOCK = ["badword", "evil thing", "goofball", "smelly sock"]

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]

INNOCENT = [
    "a classic passage of grass",
    "Scunthorpe United",
    "cocktail party at sunset",
    "shiitake mushrooms",
    "assassin's creed style castle",
    "analyst at the therapist",
    "button on a raccoon",
    "hello kitty",
    "the cockpit of a spaceship",
    "sussex countryside",
    "documenting a butterfly",
    # words that hide an entry, collapse onto one, or are only innocent senses left off the list
    "the Niger river at dawn",
    "grapes and raspberries on a table",
    "a peacock in the Middlesex rain",
    "cumulus clouds over Essex",
    "a Maine Coon cat on a sofa",
    "Moby Dick in watercolour",
    "summa cum laude graduation",
    "a blue tit in a hedge",
    "the pen is mightier than the sword",
    "an Al Capone poster",
    "x-ray of a t-shirt",
    "a s-curve road as seen from above",
    "Phuket beach at night",
    "Hitchcock film noir",
    "sniggering gnomes in a spice market",
    "route 455 under neon, 8.0.085 patch notes",
    "pass a salt shaker",
    "let's hit the dance floor",
    "the year's hits on a neon billboard",
    "the band's pic on a poster",
]


@pytest.fixture(scope="module")
def mod() -> Moderator:
    """The made-up list used by the trick tests."""
    return Moderator(BLOCK)


@pytest.fixture(scope="module")
def builtin() -> Moderator:
    """The built-in list, as the engine loads it."""
    return Moderator.from_files()


def blocked(mod: Moderator, text: str) -> str | None:
    """The entry a refused prompt matched; fails the test if the prompt was allowed."""
    verdict = mod.check(text)
    assert not verdict.allowed, f"{text!r} was allowed"
    return verdict.matched


# --- the verdict ---------------------------------------------------------------------


def test_plain_entry_is_refused_politely(mod: Moderator) -> None:
    """An entry typed as is is refused with the polite message and the entry for the log."""
    assert mod.check("a badword here") == Verdict(allowed=False, reason=REFUSAL, matched="badword")


def test_clean_prompt_is_allowed(mod: Moderator) -> None:
    """A prompt with no entry is allowed, with no reason and no match."""
    assert mod.check("a neon cathedral above a misty ocean") == Verdict(allowed=True, reason="", matched=None)


def test_verdict_is_frozen(mod: Moderator) -> None:
    """A verdict cannot be changed after the fact."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        mod.check("badword").allowed = True  # type: ignore[misc]


@pytest.mark.parametrize("text", ["badword", "B A D W O R D", "ev1l th1ng", "g00fba11", "$melly sock"])
def test_reason_never_names_the_word(mod: Moderator, text: str) -> None:
    """The audience sees the refusal only; the matched entry is kept for the VJ."""
    verdict = mod.check(text)
    assert verdict.matched is not None
    assert verdict.reason == REFUSAL
    assert normalise(verdict.matched) not in normalise(verdict.reason)


def test_refusal_message_passes_the_builtin_list(builtin: Moderator) -> None:
    """The refusal text itself contains nothing the built-in list would refuse."""
    assert builtin.check(REFUSAL).allowed


def test_matched_is_the_entry_as_written() -> None:
    """``matched`` is the entry as the list spells it (trimmed), not the prompt's spelling."""
    assert blocked(Moderator(["  Evil Thing  "]), "3V1L 7H1NG") == "Evil Thing"


# --- tricks ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["BADWORD", "BaDwOrD", "Evil THING", "gOOfBaLL"])
def test_case(mod: Moderator, text: str) -> None:
    """Upper and mixed case are refused."""
    blocked(mod, text)


@pytest.mark.parametrize("text", ["bädword", "bádwórd", "bàdwõrd", "b\u0303a\u0301dword", "ëvîl thįng"])
def test_accents_and_diacritics(mod: Moderator, text: str) -> None:
    """Accents, precomposed or combining, are stripped before matching."""
    blocked(mod, text)


@pytest.mark.parametrize(
    "text", ["ｂａｄｗｏｒｄ", "ＢＡＤＷＯＲＤ", "𝐛𝐚𝐝𝐰𝐨𝐫𝐝", "ⓑⓐⓓⓦⓞⓡⓓ", "ｅｖｉｌ　ｔｈｉｎｇ", "goo\ufb00ball"]
)
def test_fullwidth_and_compatibility_forms(mod: Moderator, text: str) -> None:
    """Full-width, mathematical, circled letters, ideographic spaces and ligatures are folded."""
    blocked(mod, text)


@pytest.mark.parametrize(
    ("text", "leet"),
    [
        ("b4dword", "4→a"),
        ("b@dword", "@→a"),
        ("8adword", "8→b"),
        ("badw0rd", "0→o"),
        ("3vil thing", "3→e"),
        ("evil +hing", "+→t"),
        ("evil 7hing", "7→t"),
        ("evil thin9", "9→g"),
        ("evil th!ng", "!→i"),
        ("evil th1ng", "1→i"),
        ("ev1l thing", "1→l"),
        ("evi| thing", "|→l"),
        ("5melly sock", "5→s"),
        ("$melly sock", "$→s"),
        ("smelly so(k", "(→c"),
    ],
)
def test_leetspeak(mod: Moderator, text: str, leet: str) -> None:
    """Digits and symbols standing for letters are read back."""
    blocked(mod, text)


@pytest.mark.parametrize("text", ["ev1l th1ng", "g00fba11", "goofba|1", "3v1| 7h!n9"])
def test_ambiguous_leet_tries_every_reading(mod: Moderator, text: str) -> None:
    """``1`` and ``|`` are both ``i`` and ``l``: both readings are tried, even in one prompt."""
    blocked(mod, text)


@pytest.mark.parametrize("text", ["baaadword", "bbbaaaddwooorrrrd", "eeevil thiiiiing", "gooooofbaaaallllll"])
def test_repeated_letters(mod: Moderator, text: str) -> None:
    """Runs of a letter longer than the entry's are refused."""
    blocked(mod, text)


@pytest.mark.parametrize("text", ["gofbal", "goofbal", "gofball", "smely sock"])
def test_shortened_double_letters_are_other_words(mod: Moderator, text: str) -> None:
    """An entry's double letter must be there: ``as`` is not ``ass``, ``but`` is not ``butt``."""
    assert mod.check(text).allowed


@pytest.mark.parametrize(
    "text",
    [
        "b a d w o r d",
        "b  a  d  w  o  r  d",
        "b.a.d.w.o.r.d",
        "b-a-d-w-o-r-d",
        "b_a_d_w_o_r_d",
        "b*a*d*w*o*r*d",
        "b/a/d/w/o/r/d",
        "b. a. d. w. o. r. d.",
        "bad.word",
        "e v i l t h i n g",
        "e.v.i.l t.h.i.n.g",
        "evil-thing",
    ],
)
def test_spacing_and_punctuation_inside_words(mod: Moderator, text: str) -> None:
    """Letters split by spaces or punctuation are joined back into the word."""
    blocked(mod, text)


@pytest.mark.parametrize("char", ZERO_WIDTH)
def test_invisible_characters(mod: Moderator, char: str) -> None:
    """Zero-width spaces and joiners, word joiner, BOM and soft hyphen vanish."""
    blocked(mod, char.join("badword"))


@pytest.mark.parametrize(
    "text",
    [
        "bаdwоrd",  # Cyrillic а, о
        "еvil thing",  # Cyrillic е
        "smеlly sосk",  # Cyrillic е, о, с
        "ВАDWОRD",  # Cyrillic capitals В, А, О
        "bαdwοrd",  # Greek α, ο
        "ΕVΙL ΤΗΙΝG",  # Greek capitals
        "ʙᴀᴅᴡᴏʀᴅ",  # small capitals
    ],
)
def test_homoglyphs(mod: Moderator, text: str) -> None:
    """Cyrillic, Greek and small-capital look-alikes read as the Latin letters they mimic."""
    blocked(mod, text)


@pytest.mark.parametrize("text", ["b adword", "badwor d", "bad w ord", "ba dw or d", "good b adword day"])
def test_word_split_across_spaces(mod: Moderator, text: str) -> None:
    """A word broken up by spaces (a one-letter piece, or only tiny pieces) is joined back."""
    blocked(mod, text)


@pytest.mark.parametrize("text", ["bad word", "badw ord", "evil things", "evil", "thing", "smelly socks"])
def test_ordinary_words_are_not_joined_or_stretched(mod: Moderator, text: str) -> None:
    """Whole ordinary words next to each other are not glued together, and phrases match whole."""
    assert mod.check(text).allowed


@pytest.mark.parametrize("text", ["evil thing", "an  evil   thing  here", "evilthing", "evil_thing", "Evil, thing"])
def test_phrases(mod: Moderator, text: str) -> None:
    """A multi-word entry matches with any spacing or punctuation between its words, or none."""
    assert blocked(mod, text) == "evil thing"


@pytest.mark.parametrize("text", ["badwords", "notbadword", "badwordy", "goofballs"])
def test_whole_words_only(mod: Moderator, text: str) -> None:
    """An entry inside a longer word does not match it."""
    assert mod.check(text).allowed


@pytest.mark.parametrize(
    "text", ["badword!", "(badword)", '"badword"', "badword's", "what a badword, really", "#badword"]
)
def test_punctuation_around_a_word(mod: Moderator, text: str) -> None:
    """Punctuation around a word, or an apostrophe after it, does not hide it."""
    blocked(mod, text)


def test_tricks_combine(mod: Moderator) -> None:
    """Several tricks in one word still match."""
    blocked(mod, "Ｂ\u200b4 ᴅ.w0ооr\u00add!")


@pytest.mark.parametrize("text", ["8085", "patch 8.0.85", "room 8085, floor 0"])
def test_digits_alone_are_numbers(text: str) -> None:
    """A number is not read as leetspeak unless the word has a letter of its own."""
    assert Moderator(["bobs"]).check(text).allowed


def test_digits_with_a_letter_are_leetspeak() -> None:
    """The same digits with one real letter are read as the word."""
    blocked(Moderator(["bobs"]), "b085")


@pytest.mark.parametrize(
    "text", ["", "   ", "\u200b\u200d", "🎸🔥✨", "日本語のプロンプト", "1|!1$@(" * 40, "a" * 2000, ".*[(?P<"]
)
def test_any_text_gets_a_verdict(mod: Moderator, text: str) -> None:
    """Empty, invisible, emoji, other scripts, regex syntax and long junk are allowed, not errors."""
    assert mod.check(text).allowed


def test_regex_syntax_in_an_entry_is_literal() -> None:
    """An entry is never a pattern: ``x.*y`` does not match ``xzzzy``."""
    assert Moderator(["x.*y"]).check("xzzzy").allowed


def test_entries_without_letters_are_ignored() -> None:
    """Blank or punctuation-only entries would match nothing sensible, so they are dropped."""
    mod = Moderator(["", "   ", "---", "badword"])
    assert mod.entries == ("badword",)
    assert mod.check("anything at all").allowed


# --- the built-in list -------------------------------------------------------------------


def test_builtin_list_loads(builtin: Moderator) -> None:
    """The built-in list ships with the engine and is not empty."""
    assert len(builtin) >= 30


def test_builtin_entries_are_plain_text(builtin: Moderator) -> None:
    """Every built-in entry is one trimmed line with no comment left in it."""
    assert all(entry == entry.strip() and "#" not in entry for entry in builtin.entries)


def test_builtin_list_blocks_its_own_entries(builtin: Moderator) -> None:
    """Every built-in entry typed as is is refused and reported as itself."""
    assert [entry for entry in builtin.entries if builtin.check(entry).matched != entry] == []


_LEET_OUT = str.maketrans("aeiostbg", "43105789")
_CYRILLIC = str.maketrans("aceopxy", "асеорху")


def _spaced_capitals(entry: str) -> str:
    return " ".join(entry.replace(" ", "").upper())


def _leet_after_first(entry: str) -> str:
    return entry[0] + entry[1:].translate(_LEET_OUT)


def _fullwidth(entry: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else "\u3000" for ch in entry)


def _zero_width(entry: str) -> str:
    return "\u200b".join(entry)


def _cyrillic(entry: str) -> str:
    return entry.translate(_CYRILLIC)


def _stretched(entry: str) -> str:
    return "".join(ch * 3 for ch in entry)


def _dotted(entry: str) -> str:
    return " ".join(".".join(word) for word in entry.split())


@pytest.mark.parametrize(
    "disguise",
    [_spaced_capitals, _leet_after_first, _fullwidth, _zero_width, _cyrillic, _stretched, _dotted],
)
def test_builtin_list_blocks_its_entries_disguised(builtin: Moderator, disguise: Callable[[str], str]) -> None:
    """Every built-in entry, disguised with one trick, is still refused."""
    missed = [entry for entry in builtin.entries if builtin.check(f"a {disguise(entry)} please").allowed]
    assert missed == []


@pytest.mark.parametrize("text", INNOCENT)
def test_innocent_prompts_pass_the_builtin_list(builtin: Moderator, text: str) -> None:
    """Common words that contain, resemble or sit next to an entry are not refused."""
    verdict = builtin.check(text)
    assert verdict.allowed, f"{text!r} refused as {verdict.matched!r}"


# --- the venue's own file ----------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_user_file_entries_are_blocked(tmp_path: Path) -> None:
    """Each entry of the venue's file is refused."""
    mod = Moderator.from_files(builtin=False, user_file=_write(tmp_path / "words.txt", "rivalband\nbadword\n"))
    assert [mod.check(w).matched for w in ("rivalband", "b4dword")] == ["rivalband", "badword"]


def test_user_file_comments_and_blank_lines_are_ignored(tmp_path: Path) -> None:
    """``#`` comments (whole-line or trailing) and blank lines are not entries."""
    path = _write(tmp_path / "words.txt", "# venue list\n\n   \nrivalband   # the other band\n\t\n# badword\n")
    assert Moderator.from_files(builtin=False, user_file=path).entries == ("rivalband",)


def test_user_file_phrases(tmp_path: Path) -> None:
    """A line with several words is one phrase entry."""
    mod = Moderator.from_files(builtin=False, user_file=_write(tmp_path / "words.txt", "sponsor beer\n"))
    assert (mod.check("sponsor beer").allowed, mod.check("sponsor").allowed, mod.check("beer").allowed) == (
        False,
        True,
        True,
    )


def test_user_file_is_utf8(tmp_path: Path) -> None:
    """Entries in UTF-8 with accents or other scripts match however they are typed."""
    path = _write(tmp_path / "words.txt", "smörgåsbord\nдурак\n")
    mod = Moderator.from_files(builtin=False, user_file=path)
    assert [mod.check(w).matched for w in ("SMORGASBORD", "ДУРАК")] == ["smörgåsbord", "дурак"]


def test_user_file_with_bom_and_crlf(tmp_path: Path) -> None:
    """A file saved by Windows Notepad (BOM, CRLF) reads the same."""
    path = tmp_path / "words.txt"
    path.write_bytes("\ufeffrivalband\r\nbadword\r\n".encode())
    assert Moderator.from_files(builtin=False, user_file=path).check("rivalband").matched == "rivalband"


def test_user_file_adds_to_builtin(tmp_path: Path, builtin: Moderator) -> None:
    """The venue's file extends the built-in list rather than replacing it."""
    mod = Moderator.from_files(user_file=_write(tmp_path / "words.txt", "rivalband\n"))
    assert mod.entries == (*builtin.entries, "rivalband")


def test_no_lists_allows_everything() -> None:
    """With the built-in list off and no file, nothing is refused."""
    assert Moderator.from_files(builtin=False).check("badword").allowed


def test_missing_user_file_is_an_error_naming_it(tmp_path: Path) -> None:
    """A missing file stops start-up with an engine error that names the path."""
    path = tmp_path / "nope.txt"
    with pytest.raises(ModerationError, match=r"nope\.txt") as info:
        Moderator.from_files(user_file=path)
    assert isinstance(info.value, EngineError)


@pytest.mark.parametrize("kind", ["bad-utf8", "directory"])
def test_unreadable_user_file_is_an_error_naming_it(tmp_path: Path, kind: str) -> None:
    """A file that is not UTF-8, or not a file at all, is an error naming the path."""
    path = tmp_path / "words.txt"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"rivalband\n\xff\xfe\xfa\n")
    with pytest.raises(ModerationError, match=r"words\.txt"):
        Moderator.from_files(user_file=path)


# --- normalise -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello World", "hello world"),
        ("  lots \t of\n\nspace  ", "lots of space"),
        ("Café Noël", "cafe noel"),
        ("ｆｕｌｌ　ｗｉｄｔｈ", "full width"),
        ("ﬁre ﬂy", "fire fly"),
        ("Straße", "strasse"),
        ("zero\u200bwidth\u200djoin\u2060ed\ufeff", "zerowidthjoined"),
        ("soft\u00adhyphen", "softhyphen"),
        ("Рοwеr", "power"),  # Cyrillic Р, е; Greek ο
        ("ᴄᴀᴘs", "caps"),
        ("x²", "x2"),
        ("1337 $p34k baaad", "1337 $p34k baaad"),  # leet and repeats are matching, not identity
        ("日本語", "日本語"),
        ("한국어", "한국어"),  # decomposed to strip marks, recomposed after
    ],
)
def test_normalise(text: str, expected: str) -> None:
    """Each step of the canonical form."""
    assert normalise(text) == expected


@pytest.mark.parametrize("text", ["ＨＥＬＬＯ  wörld", "hello\u200b world", "HELLO WORLD ", "hеllо wоrld"])
def test_normalise_makes_lookalikes_equal(text: str) -> None:
    """Prompts that look the same on a phone normalise the same (duplicate detection)."""
    assert normalise(text) == "hello world"


@pytest.mark.parametrize("text", ["Ｂ\u200b4 ᴅ.w0ооr\u00add!", "Straße Café", "  한국어  ｆｕｌｌ ", "ΕVΙL ΤΗΙΝG"])
def test_normalise_is_idempotent(text: str) -> None:
    """Normalising twice changes nothing more."""
    assert normalise(normalise(text)) == normalise(text)


# --- entries that match inside words -----------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "text"), [("*evil*", "a supereviltron"), ("evil*", "evilness"), ("*evil", "a devil")]
)
def test_star_entry_matches_inside_a_word(entry: str, text: str) -> None:
    """``*`` at an end lets the entry match inside a longer word, on that side."""
    assert blocked(Moderator([entry]), text) == entry


@pytest.mark.parametrize(("entry", "text"), [("evil*", "a devil"), ("*evil", "evilness"), ("evil*", "medieval")])
def test_star_entry_keeps_its_other_end_whole(entry: str, text: str) -> None:
    """``evil*`` must start a word and ``*evil`` end one: ``devil`` is no ``evil*``."""
    assert Moderator([entry]).check(text).allowed


def test_star_entry_inside_a_disguised_compound() -> None:
    """A compound is read like any word: leet, look-alikes, full-width letters."""
    assert blocked(Moderator(["*evil*"]), "ｓｕｐｅｒ3ｖ1ｌｔｒｏｎ") == "*evil*"


def test_plain_entry_still_needs_a_whole_word(mod: Moderator) -> None:
    """Without a ``*`` an entry inside a longer word does not match (``class`` is no ``ass``)."""
    assert mod.check("notbadwordy").allowed


# --- allowed text -------------------------------------------------------------------------


def test_allowed_word_passes() -> None:
    """A ``!`` line is an innocent word that contains an entry: it passes."""
    assert Moderator(["*evil*", "!devil"]).check("a Devil's night").allowed


def test_allowed_word_with_a_short_ending_passes() -> None:
    """Up to two more letters are part of the allowed word (plurals, ``-ed``, ``-ly``)."""
    assert Moderator(["*evil*", "!devil"]).check("devils on stage").allowed


def test_allowed_word_glued_to_an_entry_is_refused() -> None:
    """A longer word is judged on its own: an allowed word is no cover for what follows it."""
    assert blocked(Moderator(["*evil*", "!devil"]), "devilevil") == "*evil*"


def test_allowed_word_does_not_hide_an_entry_beside_it() -> None:
    """Only the allowed word is blanked out: the entry next to it is still refused."""
    assert blocked(Moderator(["*evil*", "!devil"]), "devil and evil") == "*evil*"


def test_allowed_word_is_spelled_as_listed() -> None:
    """Stretched letters are no allowed word: ``deeevil`` is refused."""
    assert blocked(Moderator(["*evil*", "!devil"]), "deeevil") == "*evil*"


def test_allowed_phrase_keeps_innocent_neighbours_apart() -> None:
    """``!goof ball`` lets two words stand apart that would otherwise be joined into an entry."""
    assert Moderator(["*goofball*", "!goof ball"]).check("a goof ball game").allowed


def test_allowed_phrase_is_no_cover_for_another_split() -> None:
    """The same letters split elsewhere are still joined and refused."""
    assert blocked(Moderator(["*goofball*", "!goof ball"]), "goo fball") == "*goofball*"


def test_allowed_lines_are_not_entries() -> None:
    """``!`` lines are listed apart, without their mark; empty ones are dropped."""
    mod = Moderator(["badword", "!badwordy", "!", "! "])
    assert (mod.entries, mod.allowed) == (("badword",), ("badwordy",))


def test_builtin_allowed_words_pass(builtin: Moderator) -> None:
    """Every allowed word of the built-in list, typed as is, passes the built-in list."""
    assert [text for text in builtin.allowed if not builtin.check(text).allowed] == []


# --- words split anywhere ---------------------------------------------------------------


@pytest.mark.parametrize("text", ["badw ord", "bad word", "badwo rd"])
def test_word_a_star_entry_covers_is_joined_from_any_split(text: str) -> None:
    """A word that contains a ``*`` entry is distinctive: split anywhere, it is joined back."""
    assert blocked(Moderator(["*dwo*", "badword"]), text) == "badword"


def test_star_entry_is_joined_from_any_split() -> None:
    """A ``*`` entry itself is joined from pieces of any size."""
    assert blocked(Moderator(["*goofball*"]), "goof ball") == "*goofball*"


def test_joined_pieces_must_spell_the_whole_word() -> None:
    """Pieces are joined only into exactly an entry: an entry across a word's edge is no match."""
    assert Moderator(["*goofball*"]).check("agoof balls").allowed


@pytest.mark.parametrize("text", ["ev ilthing", "evilth ing", "e vil thing", "evi lthi ng"])
def test_phrase_is_joined_from_any_split(text: str) -> None:
    """A phrase matches whatever its letters' spacing."""
    assert blocked(Moderator(["evil thing"]), text) == "evil thing"


# --- censoring marks --------------------------------------------------------------------


@pytest.mark.parametrize("text", ["b*dword", "b**word", "b#dw#rd", "b@dw*rd", "bad.ord", "b-dword", "b_dword"])
def test_censoring_marks_stand_for_letters(text: str) -> None:
    """Each mark inside a word stands for one letter of an entry."""
    assert blocked(Moderator(["badword"]), text) == "badword"


@pytest.mark.parametrize("text", ["a****", "b*****d", "*adword", "badwor*", "b**w**d"])
def test_marks_hiding_too_much_match_nothing(text: str) -> None:
    """Marks must be inside the word, at most three, with two real letters or more."""
    assert Moderator(["badword"]).check(text).allowed


def test_hard_marks_need_two_real_letters() -> None:
    """``*`` and ``#`` are only typed to censor: two real letters are enough."""
    assert blocked(Moderator(["abc"]), "a*c") == "abc"


@pytest.mark.parametrize("text", ["a.c", "a-c", "a_c", "A.C."])
def test_soft_marks_need_three_real_letters(text: str) -> None:
    """``.``, ``-``, ``_`` are also punctuation: initials such as ``A.C.`` are not a censored word."""
    assert Moderator(["abc"]).check(text).allowed


def test_soft_marks_with_three_real_letters_censor() -> None:
    """With three real letters a dot inside a word is read as a hidden letter."""
    assert blocked(Moderator(["abcd"]), "a.cd") == "abcd"


def test_marks_count_one_letter_each() -> None:
    """A mark is one letter: too many or too few marks for the entry match nothing."""
    assert (Moderator(["badword"]).check("b*word").allowed, Moderator(["badword"]).check("b***dword").allowed) == (
        True,
        True,
    )


# --- near-spellings ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["qvack", "gvacc", "quakk", "qu4ck"])
def test_look_alike_letters(text: str) -> None:
    """v reads u, q reads g, k reads c: ``qvack`` is ``quack``."""
    assert blocked(Moderator(["quack"]), text) == "quack"


def test_ck_is_a_double_letter() -> None:
    """``ck`` folds to a double ``c``: one ``k`` alone is another word (``jak`` is no ``jack``)."""
    mod = Moderator(["jack"])
    assert (mod.check("jak").allowed, mod.check("jakk").allowed, mod.check("jacc").allowed) == (True, False, False)


@pytest.mark.parametrize("text", ["phluff", "f l u f f", "p.h.l.u.f.f"])
def test_ph_reads_f(text: str) -> None:
    """``ph`` is read as ``f``, also when dots split its letters."""
    assert blocked(Moderator(["fluff"]), text) == "fluff"


def test_ph_in_an_entry_matches_f() -> None:
    """An entry spelled with ``ph`` matches a prompt that spells it with ``f``."""
    assert blocked(Moderator(["graph"]), "a graf") == "graph"


def test_z_stands_for_s_one_way() -> None:
    """A prompt's ``z`` may be an ``s`` (``mezz``), but an entry's ``z`` is never an ``s``."""
    assert (Moderator(["mess"]).check("mezz").allowed, Moderator(["buzz"]).check("buss").allowed) == (False, True)


def test_entry_needing_longer_runs_is_reported() -> None:
    """When two entries read alike, the one the prompt spells more fully is reported."""
    assert [blocked(Moderator(["jac", "jack"]), t) for t in ("jack", "jac")] == ["jack", "jac"]


def test_user_file_with_star_and_allowed_lines(tmp_path: Path) -> None:
    """A venue's file may use ``*`` entries and ``!`` lines like the built-in one."""
    mod = Moderator.from_files(builtin=False, user_file=_write(tmp_path / "words.txt", "*evil*\n!devil\n"))
    assert [mod.check(t).allowed for t in ("medievil", "devil", "evil")] == [False, True, False]
