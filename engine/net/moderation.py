"""Prompt moderation: keep offensive words off the projector.

Sans-I/O: pure functions and one small class, no sockets, no asyncio. The audience
server calls :meth:`Moderator.check` on every prompt before it reaches the generator;
the only file reading happens once, at start-up, in :meth:`Moderator.from_files`.

How a prompt is matched (everything is built once in the constructor, so a check is
dictionary lookups over a handful of candidate strings):

1. :func:`normalise` folds case, accents, full-width and other compatibility forms,
   Cyrillic/Greek/small-capital look-alikes, and removes invisible characters.
2. The text is cut into fragments two ways: at every space *and* punctuation mark
   (``b.a.d`` → ``b a d``), and at spaces only with punctuation inside a chunk removed
   (``b.a.d`` → ``bad``). The split view drops endings such as ``'s`` and ``'ll``
   (``badword's`` is caught, ``it's hit`` does not become ``s hit``).
3. Each fragment is read with leetspeak undone (``b4d`` → ``bad``); ambiguous
   characters give every reading (``1`` is ``i`` or ``l``), and symbols such as ``!``
   may also be plain punctuation.
4. Windows of consecutive fragments are tried as phrases (``evil thing``) and, when the
   prompt looks split on purpose (a one-character fragment, or only one- and
   two-character fragments: ``b a d``, ``b ad``, ``sh it``), joined (``bad``).
   Digits alone are a number, never a word (``80085`` and ``patch 6.0.085`` pass).
5. A candidate matches an entry only as a *whole* fragment or window, so ``class``
   never matches ``ass`` and ``Scunthorpe`` passes. Repeated letters match by run:
   the letters with runs collapsed must be equal, and every run in the prompt must be
   at least as long as the entry's (``baaad`` matches ``bad``; ``as`` does not match
   ``ass``, nor ``but`` ``butt``).

Prompt text is data: it is never evaluated and never becomes part of a regex.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from engine.errors import EngineError

__all__ = [
    "REFUSAL",
    "ModerationError",
    "Moderator",
    "Verdict",
    "builtin_blocklist",
    "normalise",
    "parse_blocklist",
    "read_blocklist",
]

REFUSAL = "Sorry, that prompt isn't allowed here. Try something else!"
"""What the person who typed a refused prompt is told: polite, and never the word itself."""

BUILTIN_NAME = "blocklist.txt"


class ModerationError(EngineError):
    """A blocklist could not be loaded (start-up only: a check never raises)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer for one prompt.

    ``reason`` is safe to show the audience; ``matched`` is the blocklist entry that
    fired, for the VJ and the log only: showing it would put the word on screen anyway.
    """

    allowed: bool
    reason: str
    matched: str | None


ALLOWED = Verdict(allowed=True, reason="", matched=None)

# --- normalise -----------------------------------------------------------------------

# Characters that render as nothing (or as a blank) but split a word for a naive matcher.
# Every Unicode "format" character (category Cf: ZWSP, ZWNJ, ZWJ, word joiner, BOM, soft
# hyphen, bidi controls...) is removed too; these are the invisible ones outside Cf.
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
    "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
}  # fmt: skip
_HOMOGLYPH_TABLE = str.maketrans(_HOMOGLYPHS)


def _strip_marks_and_invisibles(text: str) -> str:
    """Decompose, then drop combining marks (accents) and characters that show nothing."""
    return "".join(
        ch
        for ch in unicodedata.normalize("NFKD", text)
        if unicodedata.category(ch) not in ("Mn", "Me", "Cf") and ch not in _INVISIBLE
    )


def normalise(text: str) -> str:
    """The canonical form of ``text`` used for matching; also a key for duplicate detection.

    Two prompts that look the same on a phone normalise to the same string. In order:

    1. NFKC: full-width ``ｂａｄ``, ligatures, circled and mathematical letters,
       superscript digits and odd spaces become their plain forms.
    2. NFKD, then combining marks (accents, diaeresis...) are dropped: ``bäd`` → ``bad``.
    3. Invisible characters are dropped: zero-width space/joiners, word joiner, BOM,
       soft hyphen, other format characters and blank fillers.
    4. Cyrillic, Greek, Armenian and small-capital look-alikes become Latin letters.
    5. Case folding (``ß`` → ``ss``), then NFC so other scripts are recomposed.
    6. Whitespace runs become one space; leading and trailing whitespace goes.

    Leetspeak, repeated letters and punctuation are left alone: they are matching
    heuristics, not the text's identity.
    """
    text = unicodedata.normalize("NFKC", text)
    text = _strip_marks_and_invisibles(text)
    text = text.translate(_HOMOGLYPH_TABLE).casefold()
    return " ".join(unicodedata.normalize("NFC", text).split())


# --- fragments and readings ----------------------------------------------------------

# Leetspeak: what a digit or symbol may stand for, every reading of an ambiguous one.
_LEET: dict[str, str] = {
    "0": "o", "1": "il", "2": "z", "3": "e", "4": "a", "5": "s", "6": "gb", "7": "t", "8": "b", "9": "g",
    "@": "a", "$": "s", "!": "i", "|": "li", "+": "t", "(": "c", "€": "e", "£": "l", "¢": "c", "¥": "y",
    "§": "s", "×": "x",
}  # fmt: skip
_LEET_KEYS = frozenset(_LEET)
_LEET_SYMBOLS = "".join(ch for ch in _LEET if not ch.isalnum())
_LETTER_SYMBOLS = "@$"  # symbols only ever typed as letters; "(", "|", "+", "!" also surround numbers

# "Split" view: alphanumeric runs; every other character separates.
_WORD_RE = re.compile(r"[^\W_]+")
# "Joined" view: inside a space-separated chunk, drop all but alphanumerics and leet symbols.
_JOIN_DROP_RE = re.compile(rf"[^\w{re.escape(_LEET_SYMBOLS)}]|_")
# English endings after an apostrophe, dropped from the "split" view: "it's hit" must not read "s hit".
_CLITIC_RE = re.compile(r"['’ʼ`](?:s|t|d|m|ll|re|ve)\b")
_MAX_AMBIGUOUS = 4  # characters with several readings in one fragment that get every mix (2**4 readings)

Runs = tuple[str, tuple[int, ...]]
"""A string as its letters with repeats collapsed, and how long each run was: ``baaad`` → ("bad", (1, 3, 1))."""


def _runs(s: str) -> Runs:
    """``s`` as runs of one character."""
    pairs = [(ch, len(list(group))) for ch, group in itertools.groupby(s)]
    return "".join(ch for ch, _ in pairs), tuple(n for _, n in pairs)


def _join(a: Runs, b: Runs) -> Runs:
    """``a`` and ``b`` written together: a run at the seam becomes one longer run."""
    (la, na), (lb, nb) = a, b
    if la and lb and la[-1] == lb[0]:
        return la + lb[1:], (*na[:-1], na[-1] + nb[0], *nb[1:])
    return la + lb, na + nb


@functools.lru_cache(maxsize=4096)
def _readings(fragment: str) -> tuple[tuple[Runs, ...], bool]:
    """Every way to read a fragment with leetspeak undone (``sh1t`` → ``shit``, ``shlt``), as runs;
    and whether it has a letter of its own (or ``@``/``$``): digits alone are a number, not a word.

    Runs of one character are read together (``1111`` is ``iiii`` or ``llll``), which keeps
    the count small. A symbol may also be punctuation and read as nothing (``bad!``).
    Past four ambiguous characters, each reading is applied throughout rather than mixed.
    Cached: the same words come back prompt after prompt.
    """
    if _LEET_KEYS.isdisjoint(fragment):
        return (_runs(fragment),), True
    letter = any(ch.isalpha() or ch in _LETTER_SYMBOLS for ch in fragment)
    options: list[tuple[str, ...]] = []
    for ch, group in itertools.groupby(fragment):
        n = len(list(group))
        if ch in _LEET:
            opts = tuple(c * n for c in _LEET[ch])
            options.append((*opts, "") if not ch.isalnum() else opts)
        else:
            options.append((ch * n,))
    if sum(len(o) > 1 for o in options) <= _MAX_AMBIGUOUS:
        choices: Iterable[tuple[str, ...]] = itertools.product(*options)
    else:  # junk like "1|!1$@(1|!...": read each way throughout instead of every mix
        choices = (tuple(o[min(k, len(o) - 1)] for o in options) for k in range(3))
    texts = dict.fromkeys("".join(c) for c in choices)
    texts.pop("", None)
    return tuple(_runs(t) for t in texts) or (_runs(fragment),), letter


def _fragment_views(norm: str) -> Iterator[list[str]]:
    """The prompt cut into fragments: split at punctuation, then (if different) joined across it."""
    split = _WORD_RE.findall(_CLITIC_RE.sub("", norm))
    yield split
    joined = [f for f in (_JOIN_DROP_RE.sub("", chunk) for chunk in norm.split()) if f]
    if joined != split:
        yield joined


def _entry_key(entry: str) -> str:
    """A blocklist entry as the letters it matches: words kept, punctuation joined, digits read."""
    words = (_JOIN_DROP_RE.sub("", w) for w in normalise(entry).split())
    keys = ("".join(_LEET[ch][0] if ch in _LEET else ch for ch in w) for w in words)
    return " ".join(k for k in keys if k)


# --- the moderator -------------------------------------------------------------------


class Moderator:
    """Checks prompts against a blocklist; build once at start-up, call :meth:`check` per prompt."""

    def __init__(self, blocklist: Iterable[str]) -> None:
        """Index the entries; ones with no letters or digits (``"---"``) are ignored."""
        # collapsed letters -> [(run lengths, entry as written)]
        self._index: dict[str, list[tuple[tuple[int, ...], str]]] = {}
        # every start of a collapsed key -> the longest run each of its letters needs in any entry
        # that starts so; longer runs in a prompt change no verdict, so they are cut to that
        self._prefixes: dict[str, tuple[int, ...]] = {}
        self._entries: list[str] = []
        for raw in blocklist:
            entry = raw.strip()
            key = _entry_key(entry)
            if not key:
                continue
            self._entries.append(entry)
            # A phrase also matches with its spaces removed ("evil thing" → "evilthing").
            for form in dict.fromkeys((key, key.replace(" ", ""))):
                letters, lengths = _runs(form)
                self._index.setdefault(letters, []).append((lengths, entry))
                for i in range(1, len(letters) + 1):
                    known = self._prefixes.get(letters[:i], lengths[:i])
                    self._prefixes[letters[:i]] = tuple(map(max, known, lengths[:i]))

    @property
    def entries(self) -> tuple[str, ...]:
        """The entries in use, as written (for the VJ's screen and for tests)."""
        return tuple(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def from_files(cls, builtin: bool = True, user_file: Path | None = None) -> Moderator:
        """The built-in list plus a venue's own file; a missing or unreadable file is a :class:`ModerationError`."""
        entries: list[str] = []
        if builtin:
            entries += builtin_blocklist()
        if user_file is not None:
            entries += read_blocklist(user_file)
        return cls(entries)

    def check(self, text: str) -> Verdict:
        """Whether ``text`` may go on screen; never raises on any string."""
        norm = normalise(text)
        if not norm:
            return ALLOWED
        for fragments in _fragment_views(norm):
            matched = self._scan(fragments)
            if matched is not None:
                return Verdict(allowed=False, reason=REFUSAL, matched=matched)
        return ALLOWED

    def _lookup(self, candidate: Runs) -> str | None:
        """The entry ``candidate`` spells, each run at least as long as the entry's; None when none."""
        letters, lengths = candidate
        for entry_lengths, entry in self._index.get(letters, ()):
            if all(have >= need for have, need in zip(lengths, entry_lengths, strict=True)):
                return entry
        return None

    def _scan(self, fragments: Sequence[str]) -> str | None:
        """An entry spelled by one fragment or a window of fragments, as a phrase or joined up.

        One pass, left to right, over "open windows": the readings so far of every window
        that is still the start of some entry. Identical windows merge (runs are capped at
        the longest run any entry needs), so the work stays linear in the prompt, and a
        normal prompt costs about one set lookup per fragment.
        """
        # Open windows, read as a phrase ("evil thing") or joined up ("b ad" → "bad"), with flags:
        # has a letter of its own (digits alone, "80085" or "6.0.085", are numbers, not words),
        # has a one-character fragment, has only fragments of one or two characters.
        spaced: set[tuple[Runs, bool]] = set()
        joined: set[tuple[Runs, bool, bool, bool]] = set()
        for fragment in fragments:
            readings, letter = _readings(fragment)
            one, short = len(fragment) == 1, len(fragment) <= 2
            next_spaced: set[tuple[Runs, bool]] = set()
            next_joined: set[tuple[Runs, bool, bool, bool]] = set()
            for (letters, lengths), has_letter in spaced:
                if letters + " " not in self._prefixes:  # no phrase goes on from here
                    continue
                for r in readings:
                    if (grown := self._open(_join((letters + " ", (*lengths, 1)), r))) is not None:
                        next_spaced.add((grown, has_letter or letter))
            for text, has_letter, has_one, all_short in joined:
                for r in readings:
                    if (grown := self._open(_join(text, r))) is not None:
                        next_joined.add((grown, has_letter or letter, has_one or one, all_short and short))
            for r in readings:
                if (start := self._open(r)) is not None:  # a window starts here
                    next_spaced.add((start, letter))
                    next_joined.add((start, letter, one, short))
            candidates = [t for t, has_letter in next_spaced if has_letter]
            candidates += (
                t for t, has_letter, has_one, all_short in next_joined if has_letter and (has_one or all_short)
            )
            # Longest first, so "heil hitler" is reported rather than "hitler", the same every run.
            for candidate in sorted(candidates, key=lambda c: (-len(c[0]), c[0])):
                matched = self._lookup(candidate)
                if matched is not None:
                    return matched
            spaced, joined = next_spaced, next_joined
        return None

    def _open(self, window: Runs) -> Runs | None:
        """``window`` with runs cut to what any entry it could still become needs; None if it can't."""
        needed = self._prefixes.get(window[0])
        if needed is None:
            return None
        return window[0], tuple(map(min, window[1], needed))


# --- blocklist files -----------------------------------------------------------------


def parse_blocklist(text: str) -> list[str]:
    """Entries of a blocklist file: one per line, ``#`` starts a comment, blank lines skipped."""
    entries = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [e for e in entries if e]


def read_blocklist(path: Path) -> list[str]:
    """A venue's blocklist file (UTF-8); any failure to read it names the file."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # Notepad's BOM is not part of the first entry
    except FileNotFoundError:
        raise ModerationError(f"{path}: blocklist file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ModerationError(f"{path}: cannot read blocklist: {err}") from None
    return parse_blocklist(text)


def builtin_blocklist() -> list[str]:
    """The list that ships with the engine (``engine/net/blocklist.txt``)."""
    resource = resources.files(__package__ or "engine.net").joinpath(BUILTIN_NAME)
    try:
        text = resource.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ModerationError(f"{resource}: cannot read the built-in blocklist: {err}") from None
    return parse_blocklist(text)
