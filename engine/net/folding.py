"""Letter folding for moderation: every way a phone can dress up a letter, undone.

Two layers, kept apart on purpose:

- :func:`normalise` is the prompt's *identity*: what looks the same on a phone becomes the
  same string (case, accents, full-width, mathematical, circled, squared, regional-indicator
  and look-alike letters, invisible characters, spacing). Duplicate detection may rely on it,
  so it never guesses: ``1`` stays ``1`` and ``fvck`` stays ``fvck``.
- :func:`readings` and :func:`fold` are *matching* heuristics: leetspeak undone (every reading
  of an ambiguous character) and a small table of near-spellings folded onto one letter
  (``k``→``c``, ``q``→``g``, ``v``→``u``), applied alike to the blocklist and to prompts, so
  ``fvck`` and ``niqqa`` meet the words they imitate; ``ph`` is read both as itself and as
  ``f`` on both sides (``phuck``, ``pedofile``); and, one way only, a prompt's ``z`` may
  also read ``s`` (``niggaz``) and its ``q`` a ``k`` (``fuq``).

``k`` folds onto ``c`` (not the other way) so that ``ck`` becomes a double letter: ``fuck``
reads ``fucc``, which ``Phuket``, ``fuchsia`` and ``Fukuoka`` (one ``c`` each) never contain.
"""

from __future__ import annotations

import itertools
import re
import unicodedata

__all__ = ["LEET", "LEET_SYMBOLS", "MASKS", "fold", "normalise", "readings", "spellings"]

# --- identity: what looks the same is the same ---------------------------------------------

# Characters that render as nothing (or as a blank) but split a word for a naive matcher.
# Every Unicode "format" character (category Cf: ZWSP, ZWNJ, ZWJ, word joiner, BOM, soft
# hyphen, bidi controls, tag letters...) is removed too; these are the invisible ones outside Cf.
_INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u2800\u3164\uffa0")

# Look-alikes of Latin letters, case-aware (uppercase Greek Eta looks like H, lowercase
# like n), applied before case folding. Letters with marks are decomposed first, so
# only bare letters are listed.
_HOMOGLYPHS: dict[str, str] = {
    # Cyrillic
    "А": "a", "а": "a", "В": "b", "в": "b", "Ь": "b", "ь": "b", "С": "c", "с": "c",
    "Ԁ": "d", "ԁ": "d", "Е": "e", "е": "e", "Һ": "h", "һ": "h", "Н": "h", "н": "h",
    "І": "i", "і": "i", "Ј": "j", "ј": "j", "К": "k", "к": "k", "Ӏ": "l", "ӏ": "l",
    "М": "m", "м": "m", "п": "n", "О": "o", "о": "o", "Р": "p", "р": "p", "Ԛ": "q",
    "ԛ": "q", "Ѕ": "s", "ѕ": "s", "Т": "t", "т": "t", "Ԝ": "w", "ԝ": "w", "Х": "x",
    "х": "x", "У": "y", "у": "y", "Ү": "y", "ү": "y",
    # Greek
    "Α": "a", "α": "a", "Β": "b", "β": "b", "Ε": "e", "ε": "e", "Η": "h", "η": "n",
    "Ι": "i", "ι": "i", "Κ": "k", "κ": "k", "Μ": "m", "μ": "u", "Ν": "n", "ν": "v",
    "Ο": "o", "ο": "o", "Ρ": "p", "ρ": "p", "Τ": "t", "τ": "t", "Υ": "y", "υ": "u",
    "Χ": "x", "χ": "x", "Ζ": "z", "γ": "y", "ω": "w",
    # Armenian
    "օ": "o", "ս": "u", "ո": "n", "հ": "h", "ց": "g",
    # Latin letters without a decomposition, and small capitals
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "Ø": "o", "ø": "o", "Đ": "d", "đ": "d",
    "Ł": "l", "ł": "l", "Ħ": "h", "ħ": "h", "Ŧ": "t", "ŧ": "t", "Æ": "ae", "æ": "ae",
    "Œ": "oe", "œ": "oe", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h",
    "ᴀ": "a", "ꜰ": "f", "ɪ": "i", "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p",
    "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z", "ꞯ": "q",
    "ɩ": "i", "ǀ": "l", "ƒ": "f",
}  # fmt: skip


def _alphabet_block(first: int, wrap: str = "{}") -> dict[str, str]:
    """26 consecutive code points standing for a..z (``wrap`` is what NFKC would make of them)."""
    return {chr(first + i): wrap.format(chr(ord("a") + i)) for i in range(26)}


# Letter-like symbols that NFKC leaves alone (or turns into "(a)", whose "(" would read as a
# leet "c"): regional indicators (🇳🇮🇬, which pairs render as flags), negative circled 🅝 and
# negative squared 🅰 capitals, parenthesised ⒜ and 🄐 letters.
_ENCLOSED: dict[str, str] = {
    **_alphabet_block(0x1F1E6),  # 🇦..🇿 regional indicator symbols
    **_alphabet_block(0x1F150),  # 🅐..🅩 negative circled capitals
    **_alphabet_block(0x1F170),  # 🅰..🆉 negative squared capitals
    **_alphabet_block(0x249C),  # ⒜..⒵ parenthesised small letters
    **_alphabet_block(0x1F110),  # 🄐..🄩 parenthesised capitals
}
_BEFORE_NFKC = str.maketrans(_ENCLOSED)
_HOMOGLYPH_TABLE = str.maketrans(_HOMOGLYPHS)


class _DropUnseen(dict[int, int | None]):
    """A ``str.translate`` table that deletes combining marks and invisible characters.

    Filled on first sight of each character, so a check costs a dictionary lookup per
    character in C rather than a Unicode lookup in Python. Past ``_MAX_KNOWN`` characters
    (a prankster walking through Unicode) new ones are answered without being kept.
    """

    _MAX_KNOWN = 20_000

    def __missing__(self, code: int) -> int | None:
        ch = chr(code)
        keep = unicodedata.category(ch) not in ("Mn", "Me", "Cf") and ch not in _INVISIBLE
        value = code if keep else None
        if len(self) < self._MAX_KNOWN:
            self[code] = value
        return value


_DROP_UNSEEN = _DropUnseen()


def _strip_marks_and_invisibles(text: str) -> str:
    """Decompose, then drop combining marks (accents) and characters that show nothing."""
    return unicodedata.normalize("NFKD", text).translate(_DROP_UNSEEN)


def normalise(text: str) -> str:
    """The canonical form of ``text`` used for matching; also a key for duplicate detection.

    Two prompts that look the same on a phone normalise to the same string. In order:

    1. Regional-indicator, negative circled/squared and parenthesised letters become letters.
    2. NFKC: full-width ``ｂａｄ``, ligatures, circled, squared and mathematical letters,
       superscript digits and odd spaces become their plain forms.
    3. NFKD, then combining marks (accents, diaeresis...) are dropped: ``bäd`` → ``bad``.
    4. Invisible characters are dropped: zero-width space/joiners, word joiner, BOM,
       soft hyphen, other format characters and blank fillers.
    5. Cyrillic, Greek, Armenian and small-capital look-alikes become Latin letters.
    6. Case folding (``ß`` → ``ss``), then NFC so other scripts are recomposed.
    7. Whitespace runs become one space; leading and trailing whitespace goes.

    Leetspeak, repeated letters, near-spellings and punctuation are left alone: they are
    matching heuristics (:func:`readings`), not the text's identity.
    """
    if text.isascii():  # every step below is the identity on ASCII, but case and spacing
        return " ".join(text.lower().split())
    text = unicodedata.normalize("NFKC", text.translate(_BEFORE_NFKC))
    text = _strip_marks_and_invisibles(text)
    text = text.translate(_HOMOGLYPH_TABLE).casefold()
    return " ".join(unicodedata.normalize("NFC", text).split())


# --- matching: leetspeak and near-spellings ---------------------------------------------------

# Leetspeak: what a digit or symbol may stand for, every reading of an ambiguous one.
LEET: dict[str, str] = {
    "0": "o", "1": "il", "2": "z", "3": "e", "4": "a", "5": "s", "6": "gb", "7": "t", "8": "b", "9": "g",
    "@": "a", "$": "s", "!": "i", "|": "li", "+": "t", "(": "c", "€": "e", "£": "l", "¢": "c", "¥": "y",
    "§": "s", "×": "x", "¡": "i",
}  # fmt: skip
LEET_SYMBOLS = "".join(ch for ch in LEET if not ch.isalnum())
LETTER_SYMBOLS = "@$"  # symbols only ever typed as letters; "(", "|", "+", "!" also surround numbers

MASKS = "*#@._-"
"""Characters typed in place of a letter to censor a word (``f**k``, ``n#gger``, ``sh.t``)."""

# Near-spellings: letters swapped for one that looks or sounds the same. Both the blocklist and
# the prompt are folded, so the direction only decides which innocent words collide (see above).
_CONFUSABLES = {"k": "c", "q": "g", "v": "u"}
_FOLD = str.maketrans(_CONFUSABLES)
# One way only: a prompt's "z" may stand for "s" (niggaz, azz), but a blocked "nazi" must not read
# "nasi", which gymnasium, euthanasia and unassigned contain. A "q" looks like a "g" (niqqa) and
# sounds like a "k" (fuq): both.
_READS = {**LEET, "z": "zs", "q": "gc"}
_READ_KEYS = frozenset(_READS)
_TWO_WAY = "".join(ch for ch, letters in _READS.items() if len(letters) > 1)  # 1 | 6 z q
_TWO_WAY_SET = frozenset(_TWO_WAY)
_MAX_TWO_WAY = 2  # kinds of them whose readings are all mixed in one fragment (2**2 readings)
# Symbols that may also be plain punctuation at either end of a word: "bad!", "(bad". "$" and "@"
# are only ever typed as letters ("$hit!").
_EDGE_PUNCTUATION = "".join(ch for ch in LEET_SYMBOLS if ch not in LETTER_SYMBOLS)
_LETTER_RE = re.compile(rf"[^\W\d_]|[{re.escape(LETTER_SYMBOLS)}]")


def _reading_table(choice: dict[str, str]) -> dict[int, str]:
    """One ``str.translate`` table that reads leetspeak (``choice`` for the two-way characters) and folds."""
    letters = {ch: _CONFUSABLES.get(read[0], read[0]) for ch, read in _READS.items()}
    return str.maketrans({**letters, **_CONFUSABLES, **choice})


# Every way to read the two-way characters, as one table each: (1 reads i or l) x (| reads l or i) x ...
_TABLES: dict[tuple[int, ...], dict[int, str]] = {
    picks: _reading_table({ch: _READS[ch][pick] for ch, pick in zip(_TWO_WAY, picks, strict=True)})
    for picks in itertools.product((0, 1), repeat=len(_TWO_WAY))
}


def _tables_for(present: tuple[bool, ...]) -> list[dict[int, str]]:
    """The tables for a fragment holding the two-way kinds marked in ``present``: every mix of
    those (the others at their first reading); past ``_MAX_TWO_WAY`` kinds, all first or all second."""
    if sum(present) > _MAX_TWO_WAY:
        return [_TABLES[picks] for picks in _TABLES if len(set(picks)) == 1]
    return [_TABLES[picks] for picks in _TABLES if all(on or not pick for on, pick in zip(present, picks, strict=True))]


# The tables to read a fragment with, by the two-way kinds it holds.
_PICKS: dict[frozenset[str], list[dict[int, str]]] = {
    frozenset(itertools.compress(_TWO_WAY, present)): _tables_for(present)
    for present in itertools.product((False, True), repeat=len(_TWO_WAY))
}


def fold(text: str) -> str:
    """``text`` (already read: no leet) with look-alike letters folded: ``fvck`` → ``fucc``, ``niqqa`` → ``nigga``."""
    return text.translate(_FOLD)


def spellings(key: str) -> tuple[str, ...]:
    """A folded word and, if it has a ``ph``, the same with ``f`` (``pedophile``, ``pedofile``).

    ``ph`` is not simply folded to ``f``: a prompt may spell it ``p h`` or ``p.h``, letters
    that are read one fragment at a time and only meet again when joined.
    """
    return (key, key.replace("ph", "f")) if "ph" in key else (key,)


def readings(fragment: str) -> tuple[tuple[str, ...], bool]:
    """Every way to read a fragment with leetspeak undone and near-spellings folded
    (``sh1t`` → ``shit``, ``shlt``); and whether it has a letter of its own (or ``@``/``$``):
    digits alone are a number, not a word.

    A two-way character (``1`` is ``i`` or ``l``, ``6`` is ``g`` or ``b``, ``|``, ``z`` that
    may be ``s``, ``q`` that may be ``g`` or ``k``) is read one way throughout a fragment;
    with more than two kinds of them, all are read the first way or all the second. A symbol
    at either end may also be punctuation and read as nothing (``bad!``). So a fragment has
    at most 3 × 4 readings (twice that with a ``ph``), each one ``str.translate``, and junk
    costs no more than a word.
    Any other character (``?`` for a masked letter) is kept as it is.
    """
    letter = _LETTER_RE.search(fragment) is not None
    if _READ_KEYS.isdisjoint(fragment):
        return spellings(fold(fragment)), letter
    texts = [fragment]
    if fragment[-1] in _EDGE_PUNCTUATION:
        texts.append(fragment.rstrip(_EDGE_PUNCTUATION))
    if fragment[0] in _EDGE_PUNCTUATION:
        texts.append(texts[-1].lstrip(_EDGE_PUNCTUATION))
    tables = _PICKS[_TWO_WAY_SET.intersection(fragment)]
    if len(texts) == 1 and len(tables) == 1:
        return spellings(fragment.translate(tables[0])), letter
    found = dict.fromkeys(s for text in texts for table in tables for s in spellings(text.translate(table)))
    found.pop("", None)
    return tuple(found) or spellings(fold(fragment)), letter
