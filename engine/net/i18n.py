"""The audience's languages: the message catalogs in ``web/i18n/``, read by Python too.

One flat JSON object per language, ``web/i18n/<code>.json``: key → text, with ``{name}`` placeholders
filled from parameters (``"Puedes enviar otro en {seconds} s"``). ``en.json`` is the reference: every
key lives there, another catalog missing a key falls back to its English text (never to the raw key),
so a third language is one file. The phone page reads the catalogs itself (``web/app.js``); Python
reads them for what the server and the projector say: the languages on offer with their own names
(``/i18n/languages.json``) and the join card's headline.

No exception leaves this module: a catalog that cannot be read is one log line and is not offered,
because a typo in a translation must never stop a show. Reading happens once, at start-up.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

I18N_ROOT = Path(__file__).resolve().parent.parent.parent / "web" / "i18n"
REFERENCE = "en"
"""The catalog that holds every key, and the fallback for a key another catalog lacks."""
NAME_KEY = "language.name"
"""A catalog's own name for its language, as the switch on the page shows it ("Español")."""

_CODE = re.compile(r"^[a-z]{2}$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill(template: str, params: Mapping[str, object] | None = None) -> str:
    """``template`` with each ``{name}`` replaced by ``params[name]``; unknown names are left as written.

    Not ``str.format``: a translator's stray brace or ``{0}`` must not raise, and nothing but a name is read.
    """
    if not params:
        return template
    return _PLACEHOLDER.sub(lambda m: str(params[m[1]]) if m[1] in params else m[0], template)


def placeholders(template: str) -> set[str]:
    """The parameter names ``template`` uses."""
    return set(_PLACEHOLDER.findall(template))


def read_catalog(path: Path) -> dict[str, str] | None:
    """One catalog file as key → text; None (and one log line saying why) when it cannot be used."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        log.warning("language catalog %s cannot be read (%s): not offered", path, err)
        return None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        log.warning("language catalog %s must be one JSON object of texts (key: \"text\"): not offered", path)
        return None
    return data


@dataclass(frozen=True)
class Catalogs:
    """The catalogs of the languages on offer, in the order they were asked for; English behind each."""

    messages: Mapping[str, Mapping[str, str]]  # language → its own catalog
    reference: Mapping[str, str] = field(default_factory=dict)  # en.json, whether offered or not

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.messages)

    def text(self, language: str, key: str, params: Mapping[str, object] | None = None) -> str:
        """``key`` in ``language``, else in English; KeyError when no catalog has it (a bug, not a translation gap)."""
        own = self.messages.get(language, {})
        template = own.get(key)
        if template is None:
            template = self.reference[key]
        return fill(template, params)

    def name(self, language: str) -> str:
        """The language's own name ("Español"), or its code when its catalog does not say."""
        return self.messages.get(language, {}).get(NAME_KEY) or language


def load(languages: Iterable[str], root: Path = I18N_ROOT) -> Catalogs:
    """The catalogs of ``languages`` found under ``root``; a language without a usable one is left out, with a log line.

    Codes are two lower-case letters (``[audience] languages`` is validated so): nothing else is ever
    joined onto ``root``.
    """
    reference = read_catalog(root / f"{REFERENCE}.json") or {}
    found: dict[str, Mapping[str, str]] = {}
    for code in languages:
        if code in found:
            continue
        if not _CODE.match(code):
            log.warning("language %r is not a two-letter code: not offered", code)
            continue
        catalog = reference if code == REFERENCE and reference else read_catalog(root / f"{code}.json")
        if catalog is None:
            if root.is_dir():
                log.warning("[audience] languages offers %r but %s is missing: not offered", code,
                            root / f"{code}.json")
            continue
        found[code] = catalog
    return Catalogs(found, reference)


def missing_keys(catalog: Mapping[str, str], reference: Mapping[str, str]) -> list[str]:
    """The reference's keys that ``catalog`` lacks (shown in English), sorted."""
    return sorted(set(reference) - set(catalog))


def offer(catalogs: Catalogs, default: str) -> dict[str, object]:
    """What ``/i18n/languages.json`` says: the languages on offer, the default, and each one's own name.

    The default is the configured one when its catalog is there, else the first on offer, else English
    (the page's own words, from ``index.html``).
    """
    languages = catalogs.languages
    chosen = default if default in languages else (languages[0] if languages else REFERENCE)
    return {"languages": list(languages), "default": chosen, "names": {c: catalogs.name(c) for c in languages}}


def best_language_for(generator: str) -> str | None:
    """The prompt language that gives the best images with this generator (its ``name``); None: any.

    The diffusion models behind the Stability API and the local backend were trained on English
    captions; the offline procedural generator makes its own picture of any words, in any language
    (words it knows steer the palette, the rest are hashed into the look).
    """
    return None if generator == "procedural" else "en"
