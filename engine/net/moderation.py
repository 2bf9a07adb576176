"""Prompt moderation: keep offensive words off the projector.

Sans-I/O: pure functions and one small class, no sockets, no asyncio. The audience
server calls :meth:`Moderator.check` on every prompt before it reaches the generator;
the only file reading happens once, at start-up, in :meth:`Moderator.from_files`.

A blocklist line is a word or a phrase, matched as a whole word; a ``*`` at either end of
a single word lets it match inside longer words too: ``fuck*`` at the start of one
(``fuckface``), ``*shit`` at the end (``bullshit``), ``*hitler*`` anywhere. A line starting
with ``!`` is an *allowed* word or phrase instead, innocent text that would otherwise match
(``!scunthorpe``, ``!pen is``).

How a prompt is matched (everything is built once in the constructor, so a check is
a few dictionary lookups and regex searches over a handful of candidate strings):

1. :func:`~engine.net.folding.normalise` folds case, accents, full-width, mathematical,
   enclosed and regional-indicator letters, look-alikes, and removes invisible characters.
2. Allowed words and phrases are blanked out (whole words, with up to two more letters:
   ``shiitakes``): ``Scunthorpe`` and ``the pen is mightier`` pass; an entry beside an
   allowed word, or glued to it, is still refused.
3. The text is cut into fragments two ways: at every space *and* punctuation mark
   (``b.a.d`` → ``b a d``), and at spaces only with punctuation inside a chunk removed
   (``b.a.d`` → ``bad``). Both drop endings such as ``'s`` and ``'re`` (``badword's`` is
   caught, ``it's hit`` does not become ``s hit``, nor ``who're`` a word of the list).
4. Each fragment is read with leetspeak undone (``b4d`` → ``bad``; ``1`` is read both
   ``i`` and ``l``) and near-spellings folded (``fvck``, ``phuck``, ``niqqa``), see
   :func:`~engine.net.folding.readings`.
5. Windows of consecutive fragments are tried as phrases (``evil thing``) and joined up.
   Any split is joined for phrases and for words that a ``*`` entry covers (``nig ger``,
   ``fuc king``, ``kill your self``); other words only when the prompt looks split on
   purpose (a one-character fragment, or only one- and two-character fragments: ``b a d``,
   ``b ad``), so ``bad word`` never becomes ``badword``. Digits alone are a number, never
   a word (``80085`` and ``patch 6.0.085`` pass).
6. A candidate matches an entry as a *whole* fragment or window, so ``class`` never
   matches ``ass``. Repeated letters match by run: the letters with runs collapsed must be
   equal, and every run in the prompt must be at least as long as the entry's (``baaad``
   matches ``bad``; ``as`` does not match ``ass``, nor ``but`` ``butt``).
7. ``*`` entries are also searched inside every fragment, at the start, end or anywhere
   as the entry says (``hitlerface``).
8. A word with censoring marks inside (``*#@._-``) reads each mark as one unknown letter
   (``f**k``, ``n#gger``, ``sh.t``): at least two letters must be real, and three when the
   marks are ordinary punctuation (``.``, ``-``, ``_``, ``@``), so ``A.S.`` stays initials.

Prompt text is data: it is never evaluated and never becomes part of a regex.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from engine.errors import EngineError
from engine.net.folding import LEET, LEET_SYMBOLS, MASKS, fold, normalise, readings, spellings
from engine.net.protocol import REASONS

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

REFUSAL = REASONS["blocked"]
"""What the person who typed a refused prompt is told: polite, and never the word itself (in English;
the phone page shows its own language's words for the code ``blocked``)."""

BUILTIN_NAME = "blocklist.txt"
ALLOW_MARK = "!"
"""A blocklist line starting with this is an allowed word or phrase, not a blocked one."""


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

# --- fragments -------------------------------------------------------------------------

# "Split" view: alphanumeric runs; every other character separates.
_WORD_RE = re.compile(r"[^\W_]+")
# "Joined" view: inside a space-separated chunk, drop all but alphanumerics and leet symbols.
_JOIN_DROP_RE = re.compile(rf"[^\w{re.escape(LEET_SYMBOLS)}]|_")
# English endings after an apostrophe, dropped from both views: "it's hit" must not read "s hit".
_CLITIC_RE = re.compile(r"['’ʼ`](?:s|t|d|m|ll|re|ve)\b")
# A chunk's edges that are neither letters, digits nor leet: quotes, brackets, trailing dots, masks.
_EDGE_RE = re.compile(rf"^(?:[^\w{re.escape(LEET_SYMBOLS)}]|_)+|(?:[^\w{re.escape(LEET_SYMBOLS)}]|_)+$")
# A chunk with a mark between two other characters: the only ones the masked rule looks at.
_MASKED_RE = re.compile(rf"(?<!\S)(?=\S*?[^\s{re.escape(MASKS)}][{re.escape(MASKS)}]+[^\s{re.escape(MASKS)}])\S+")
_HARD_MASKS = "*#"  # only ever typed to hide a letter; the others are also ordinary punctuation
_MAX_MASKS = 3  # masked letters in one word; "f*****" hides too much to be any one word

Runs = tuple[str, tuple[int, ...]]
"""A string as its letters with repeats collapsed, and how long each run was: ``baaad`` → ("bad", (1, 3, 1))."""


def _runs(s: str) -> Runs:
    """``s`` as runs of one character (a plain loop: four times faster than ``itertools.groupby`` here)."""
    letters: list[str] = []
    lengths: list[int] = []
    previous = ""
    for ch in s:
        if ch == previous:
            lengths[-1] += 1
        else:
            letters.append(ch)
            lengths.append(1)
            previous = ch
    return "".join(letters), tuple(lengths)


def _join(a: Runs, b: Runs) -> Runs:
    """``a`` and ``b`` written together: a run at the seam becomes one longer run."""
    (la, na), (lb, nb) = a, b
    if la and lb and la[-1] == lb[0]:
        return la + lb[1:], (*na[:-1], na[-1] + nb[0], *nb[1:])
    return la + lb, na + nb


class _Read(NamedTuple):
    """One fragment as the matcher reads it (see :func:`_read`)."""

    runs: tuple[Runs, ...]  # every reading, as runs
    words: str  # every reading, each after a space, for the compound search; "" for a number
    letter: bool  # has a letter of its own: digits alone ("80085") are a number, not a word


@functools.lru_cache(maxsize=8192)
def _read(fragment: str) -> _Read:
    """:func:`~engine.net.folding.readings` of a fragment in the forms the rules use; cached,
    since the same words come back prompt after prompt."""
    texts, letter = readings(fragment)
    return _Read(tuple(map(_runs, texts)), "".join(" " + t for t in texts) if letter else "", letter)


def _fragment_views(norm: str) -> list[list[str]]:
    """The prompt cut into fragments: split at punctuation, then (if different) joined across it."""
    norm = _CLITIC_RE.sub("", norm)
    split = _WORD_RE.findall(norm)
    joined = [f for f in (_JOIN_DROP_RE.sub("", chunk) for chunk in norm.split()) if f]
    return [split, joined] if joined != split else [split]


def _masked_words(norm: str) -> Iterator[tuple[str, bool]]:
    """Words with censoring marks inside, each mark as ``?``; and whether any mark was a hard one (``*#``).

    ``@`` is also leetspeak for ``a``: the other views read it that way.
    """
    for chunk in _MASKED_RE.findall(norm):
        core = _EDGE_RE.sub("", chunk)
        if len(core) < 3 or not any(ch in MASKS for ch in core[1:-1]):
            continue
        hard = any(ch in _HARD_MASKS for ch in core)
        yield "".join("?" if ch in MASKS else ch for ch in core), hard


# --- entries ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    """One blocklist line, as the matcher sees it."""

    text: str  # as written, for the log
    key: str  # read and folded, words kept: "kill yourself" → "cill yourself"
    open_start: bool  # "*shit": may end a longer word
    open_end: bool  # "fuck*": may start a longer word
    splits: bool  # joined from pieces split anywhere, not only from one- and two-letter ones


def _entry_key(entry: str) -> str:
    """A blocklist entry as the folded letters it matches: words kept, punctuation joined, digits read."""
    words = (_JOIN_DROP_RE.sub("", w) for w in normalise(entry).split())
    keys = ("".join(LEET[ch][0] if ch in LEET else ch for ch in w) for w in words)
    return " ".join(fold(k) for k in keys if k)


def _literal(key: str) -> str:
    """A regex for ``key``'s letters, each run at least as long as in ``key`` (``fucc`` → ``ff*uu*ccc*``).

    Each alternative starts with a plain letter, which lets the regex engine skip the ones
    that cannot start at a position without entering them.
    """
    return "".join(re.escape(ch) * n + re.escape(ch) + "*" for ch, n in zip(*_runs(key), strict=True))


class _Compounds:
    """The ``*`` entries, searched inside the readings of every fragment at once.

    The text searched is each fragment's readings as words, each after a space
    (``_Read.words``), so "starts a word" is "follows a space".
    """

    def __init__(self, entries: Sequence[_Entry]) -> None:
        self._each: list[tuple[re.Pattern[str], int]] = []
        starts: list[str] = []
        anywhere: list[str] = []
        ends: list[str] = []
        for number, entry in enumerate(entries):
            if not (entry.open_start or entry.open_end) or " " in entry.key:
                continue
            body = _literal(spellings(entry.key)[-1])
            if entry.open_start and entry.open_end:
                anywhere.append(body)
            else:
                (starts if entry.open_end else ends).append(body)
            start = "" if entry.open_start else "(?<= )"
            end = "" if entry.open_end else "(?![^ ])"
            self._each.append((re.compile(f"{start}{body}{end}"), number))
        parts = [*anywhere]
        if starts:
            parts.append(f" (?:{'|'.join(starts)})")
        if ends:
            parts.append(f"(?:{'|'.join(ends)})(?![^ ])")
        self._all = re.compile("|".join(parts)) if parts else None

    def find(self, text: str) -> int | None:
        """The first ``*`` entry inside ``text`` (words each after a space), by number; None when none."""
        if self._all is None or (found := self._all.search(text)) is None:
            return None
        return next(n for pattern, n in self._each if pattern.search(text, max(found.start() - 1, 0)))


def _masked_forms(key: str) -> Iterator[str]:
    """``key`` with one to three inner letters hidden (``f??c``), keeping at least two real letters."""
    inner = range(1, len(key) - 1)
    for n in range(1, _MAX_MASKS + 1):
        if len(key) - n < 2:
            break
        for hidden in itertools.combinations(inner, n):
            chars = list(key)
            for i in hidden:
                chars[i] = "?"
            yield "".join(chars)


def _allow_regex(allowed: Iterable[str]) -> re.Pattern[str] | None:
    """Allowed words and phrases in the normalised prompt, as whole words spelled as listed.

    Up to two more letters may end the word (``shiitakes``, ``niggardly``): a longer ending
    makes another word, judged on its own (``faqqot`` is no ``faq``), and a spelling with
    stretched letters is no allowed word either (``raaape`` is no ``rappee``).
    """
    texts = sorted({normalise(a) for a in allowed}, key=lambda a: (-len(a), a))
    patterns = [re.escape(text) for text in texts if any(ch.isalnum() for ch in text)]
    if not patterns:
        return None
    return re.compile(rf"(?<![^\W_])(?:{'|'.join(patterns)})[^\W_]{{0,2}}(?![^\W_])")


def _step(
    window: Runs,
    has_letter: bool,
    prefixes: dict[str, tuple[int, ...]],
    index: dict[str, list[tuple[tuple[int, ...], int]]],
    candidates: list[tuple[Runs, bool]],
    phrases: set[tuple[Runs, bool]],
) -> None:
    """A window read as words: a candidate if it spells something, a phrase under way if one goes on from it."""
    letters, lengths = window
    if has_letter and letters in index:
        candidates.append((window, True))
    if letters + " " in prefixes:
        phrases.add(((letters + " ", (*lengths, 1)), has_letter))


# --- the moderator -------------------------------------------------------------------


class Moderator:
    """Checks prompts against a blocklist; build once at start-up, call :meth:`check` per prompt."""

    def __init__(self, blocklist: Iterable[str]) -> None:
        """Index the entries; ones with no letters or digits (``"---"``) are ignored, ``!`` lines are allowed text."""
        allowed: list[str] = []
        parsed: list[tuple[str, str, bool, bool]] = []
        for raw in blocklist:
            line = raw.strip()
            if line.startswith(ALLOW_MARK):
                if _entry_key(line[1:]):
                    allowed.append(line[1:].strip())
                continue
            key = _entry_key(line)
            if key:
                parsed.append((line, key, line.startswith("*"), line.endswith("*")))
        self._allowed = tuple(allowed)
        self._allow_re = _allow_regex(allowed)
        self._compounds = _Compounds([_Entry(*fields, splits=False) for fields in parsed])
        # A word is joined from pieces of any size if it is a phrase, or if a "*" entry would refuse it anyway:
        # then it is as distinctive as that entry ("fucking"), unlike "badword" = "bad word".
        self._entries = [
            _Entry(text, key, start, end, splits=" " in key or start or end or self._covered(key))
            for text, key, start, end in parsed
        ]
        # collapsed letters -> [(run lengths, entry number)]
        self._index: dict[str, list[tuple[tuple[int, ...], int]]] = {}
        # every start of a collapsed key -> the longest run each of its letters needs in any entry
        # that starts so; longer runs in a prompt change no verdict, so they are cut to that
        self._prefixes: dict[str, tuple[int, ...]] = {}
        # single words with inner letters hidden ("f??c") -> entry number
        self._masked: dict[str, int] = {}
        for number, entry in enumerate(self._entries):
            # A phrase also matches with its spaces removed ("evil thing" → "evilthing").
            for form in dict.fromkeys(s for k in (entry.key, entry.key.replace(" ", "")) for s in spellings(k)):
                letters, lengths = _runs(form)
                self._index.setdefault(letters, []).append((lengths, number))
                for i in range(1, len(letters) + 1):
                    known = self._prefixes.get(letters[:i], lengths[:i])
                    self._prefixes[letters[:i]] = tuple(map(max, known, lengths[:i]))
            if " " not in entry.key:
                for form in _masked_forms(spellings(entry.key)[-1]):
                    self._masked.setdefault(form, number)

    def _covered(self, key: str) -> bool:
        """Whether a ``*`` entry would refuse ``key`` typed as a word."""
        return any(self._compounds.find(" " + spelling) is not None for spelling in spellings(key))

    @property
    def entries(self) -> tuple[str, ...]:
        """The blocked entries in use, as written (for the VJ's screen and for tests)."""
        return tuple(e.text for e in self._entries)

    @property
    def allowed(self) -> tuple[str, ...]:
        """The allowed words and phrases in use, without their ``!``."""
        return self._allowed

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
        if self._allow_re is not None:
            norm = self._allow_re.sub(" ", norm)
        matched = self._find(norm)
        if matched is None:
            return ALLOWED
        return Verdict(allowed=False, reason=REFUSAL, matched=self._entries[matched].text)

    def _find(self, norm: str) -> int | None:
        """The number of an entry the normalised prompt spells, by the rules in order; None when none."""
        views = _fragment_views(norm)
        for fragments in views:
            if (found := self._scan(fragments)) is not None:
                return found
        for fragments in views:
            if (found := self._compounds.find("".join([_read(f).words for f in fragments]))) is not None:
                return found
        if self._masked:
            return self._match_masked(norm)
        return None

    def _lookup(self, candidate: Runs, tiny: bool) -> int | None:
        """The entry ``candidate`` spells, each run at least as long as the entry's; None when none.

        ``tiny`` says the candidate was joined from one- or two-letter pieces (or is one fragment);
        otherwise only entries that may be joined from any split count. When several entries
        fit (``fuk`` and ``fuck`` read alike), the one needing the longest runs is reported.
        """
        letters, lengths = candidate
        best: tuple[int, int] | None = None
        for entry_lengths, number in self._index.get(letters, ()):
            if (
                (tiny or self._entries[number].splits)
                and all(have >= need for have, need in zip(lengths, entry_lengths, strict=True))
                and (best is None or sum(entry_lengths) > best[0])
            ):
                best = (sum(entry_lengths), number)
        return None if best is None else best[1]

    def _scan(self, fragments: Sequence[str]) -> int | None:
        """An entry spelled by one fragment or a window of fragments, as a phrase or joined up.

        One pass, left to right, over "open windows": the readings so far of every window
        that is still the start of some entry. Identical windows merge (runs are capped at
        the longest run any entry needs), so the work stays linear in the prompt, and a
        normal prompt costs about one set lookup per fragment.
        """
        prefixes, index, open_window = self._prefixes, self._index, self._open
        # Open windows, read as a phrase under way ("evil " → "evil thing", kept with its trailing
        # space) or joined up ("b ad" → "bad"), with flags: has a letter of its own (digits alone,
        # "80085" or "6.0.085", are numbers, not words), and for joined ones: has a one-character
        # fragment, has only fragments of one or two characters (together: "tiny").
        spaced: set[tuple[Runs, bool]] = set()
        joined: set[tuple[Runs, bool, bool, bool]] = set()
        for fragment in fragments:
            fragment_readings, _, letter = _read(fragment)
            one, short = len(fragment) == 1, len(fragment) <= 2
            next_spaced: set[tuple[Runs, bool]] = set()
            next_joined: set[tuple[Runs, bool, bool, bool]] = set()
            candidates: list[tuple[Runs, bool]] = []  # (window, tiny)
            for phrase, has_letter in spaced:
                for r in fragment_readings:
                    if (grown := open_window(_join(phrase, r))) is not None:
                        _step(grown, has_letter or letter, prefixes, index, candidates, next_spaced)
            for text, has_letter, has_one, all_short in joined:
                for r in fragment_readings:
                    if (grown := open_window(_join(text, r))) is not None:
                        flags = (has_letter or letter, has_one or one, all_short and short)
                        next_joined.add((grown, *flags))
                        if flags[0] and grown[0] in index:
                            candidates.append((grown, flags[1] or flags[2]))
            for r in fragment_readings:
                if (start := open_window(r)) is not None:  # a window starts here
                    _step(start, letter, prefixes, index, candidates, next_spaced)
                    next_joined.add((start, letter, one, short))
            # Longest first, so "heil hitler" is reported rather than "hitler", the same every run.
            for candidate, tiny in sorted(candidates, key=lambda c: (-len(c[0][0]), c[0][0], not c[1])):
                if (matched := self._lookup(candidate, tiny)) is not None:
                    return matched
            spaced, joined = next_spaced, next_joined
        return None

    def _open(self, window: Runs) -> Runs | None:
        """``window`` with runs cut to what any entry it could still become needs; None if it can't."""
        needed = self._prefixes.get(window[0])
        if needed is None:
            return None
        return window[0], tuple(map(min, window[1], needed))

    def _match_masked(self, norm: str) -> int | None:
        """An entry spelled by a word with censoring marks inside (``f**k``), each mark one letter."""
        for pattern, hard in _masked_words(norm):
            texts, letter = readings(pattern)
            for text in texts:
                real = sum(ch != "?" for ch in text)
                if letter and real >= (2 if hard else 3) and (found := self._masked.get(text)) is not None:
                    return found
        return None


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
