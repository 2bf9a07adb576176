"""The audience's languages without a browser: the catalogs, their loader, reason codes, the join card's headline."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import zxingcpp

from engine.config import AudienceConfig, ServerConfig
from engine.gen.base import FailureKind, default_user_message
from engine.net import audience, i18n, moderation, protocol
from engine.net.audience import Audience
from engine.net.protocol import REASONS, PromptStatus, ProtocolError, State
from engine.net.server import AudienceServer
from engine.render import overlay
from engine.render.overlay import card_font, join_card, join_headline
from tests.fakes import direct_ledger

EN = i18n.read_catalog(i18n.I18N_ROOT / "en.json") or {}
CATALOGS = sorted(i18n.I18N_ROOT.glob("*.json"))
ERROR_CODES = ("bad_json", "binary_not_allowed", "unknown_type", "missing_field", "wrong_type", "too_long", "empty",
               "too_fast")  # docs/protocol.md's table


def assert_has_every_key(catalog: Mapping[str, str], name: str) -> None:
    missing = i18n.missing_keys(catalog, EN)
    assert not missing, f"{name} lacks {missing}: those would show in English"


def write_catalog(root: Path, code: str, messages: Mapping[str, str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{code}.json").write_text(json.dumps(messages, ensure_ascii=False), encoding="utf-8")


# --- the catalogs in web/i18n -------------------------------------------------------------------------
def test_english_and_spanish_catalogs_ship() -> None:
    """The page speaks at least English and Spanish, and English is a full catalog."""
    assert {p.stem for p in CATALOGS} >= {"en", "es"}
    assert len(EN) > 50


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.name)
def test_every_catalog_has_every_key_of_english(path: Path) -> None:
    """A catalog missing a key would fall back to English for it: every shipped one is complete."""
    catalog = i18n.read_catalog(path)
    assert catalog is not None, f"{path.name} is not a JSON object of texts"
    assert_has_every_key(catalog, path.name)


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.name)
def test_every_catalog_fills_the_same_parameters_as_english(path: Path) -> None:
    """A translation uses exactly the {names} its English does: none dropped, none the page cannot fill."""
    catalog = i18n.read_catalog(path) or {}
    wrong = {k: (sorted(i18n.placeholders(v)), sorted(i18n.placeholders(EN[k])))
             for k, v in catalog.items() if k in EN and i18n.placeholders(v) != i18n.placeholders(EN[k])}
    assert not wrong, f"{path.name}: {wrong}"


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.name)
def test_every_catalog_names_its_language(path: Path) -> None:
    """The switch shows each language in its own name."""
    catalog = i18n.read_catalog(path) or {}
    assert catalog.get(i18n.NAME_KEY), f"{path.name} has no {i18n.NAME_KEY}"
    assert path.stem == path.stem.lower() and len(path.stem) == 2


def test_every_reason_and_error_code_has_its_words() -> None:
    """The page can render every reason code and error code the server sends, and its English is the server's."""
    for code, text in REASONS.items():
        assert EN.get(f"reason.{code}") == text, code
    for code in ERROR_CODES:
        assert f"error.{code}" in EN, code
    assert "error.unknown" in EN


def test_no_catalog_text_is_left_untranslated_by_accident() -> None:
    """Spanish differs from English wherever a person reads a sentence (names and numbers aside)."""
    es = i18n.read_catalog(i18n.I18N_ROOT / "es.json") or {}
    same = [k for k, v in es.items() if v == EN.get(k) and any(c.isalpha() for c in v)]
    assert same == [], same


# --- the loader ---------------------------------------------------------------------------------------
def test_loader_reads_the_shipped_catalogs_in_the_asked_order() -> None:
    """load() keeps the configured order; text() fills parameters."""
    cats = i18n.load(("es", "en"))
    assert cats.languages == ("es", "en")
    assert cats.text("es", "reason.slow_down", {"seconds": 7}) == "¡Más despacio! Puedes enviar otro prompt en 7 s."
    assert cats.name("es") == "Español" and cats.name("en") == "English"


def test_a_key_missing_from_a_catalog_reads_english(tmp_path: Path) -> None:
    """A gap in a translation shows the English words, never the key."""
    write_catalog(tmp_path, "en", {"a": "Hello {name}", "b": "Bye"})
    write_catalog(tmp_path, "de", {"a": "Hallo {name}"})
    cats = i18n.load(("en", "de"), tmp_path)
    assert cats.text("de", "a", {"name": "Ana"}) == "Hallo Ana"
    assert cats.text("de", "b") == "Bye"
    with pytest.raises(KeyError, match="nowhere"):
        cats.text("de", "nowhere")


def test_english_backs_a_catalog_even_when_not_offered(tmp_path: Path) -> None:
    """Offering Spanish alone still falls back to en.json for its gaps."""
    write_catalog(tmp_path, "en", {"a": "A", "b": "B"})
    write_catalog(tmp_path, "es", {"a": "Á"})
    cats = i18n.load(("es",), tmp_path)
    assert cats.languages == ("es",) and cats.text("es", "b") == "B"


def test_unusable_catalogs_are_left_out_with_a_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Broken JSON, a list, a number as text, a missing file and a path-like code: not offered, and said so."""
    write_catalog(tmp_path, "en", {"a": "A"})
    (tmp_path / "de.json").write_text("{not json")
    (tmp_path / "fr.json").write_text('["a"]')
    (tmp_path / "it.json").write_text('{"a": 3}')
    with caplog.at_level(logging.WARNING, logger="engine.net.i18n"):
        cats = i18n.load(("en", "de", "fr", "it", "pt", "../en"), tmp_path)
    assert cats.languages == ("en",)
    logged = caplog.text
    for part in ("de.json cannot be read", "fr.json must be one JSON object", "it.json must be one JSON object",
                 "'pt' but", "'../en' is not a two-letter code"):
        assert part in logged, part


def test_fill_reads_only_names_and_never_raises() -> None:
    """Unknown names and stray braces stay as written; a translator's typo cannot break the page."""
    assert i18n.fill("in {seconds} s", {"seconds": 3}) == "in 3 s"
    assert i18n.fill("{unknown} {0} {", {"seconds": 3}) == "{unknown} {0} {"
    assert i18n.fill("{a.__class__}", {"a": 1}) == "{a.__class__}"


def test_languages_on_offer_say_the_default_and_each_name(tmp_path: Path) -> None:
    """offer(): configured order, own names, and a default that is really on offer."""
    write_catalog(tmp_path, "en", {i18n.NAME_KEY: "English"})
    write_catalog(tmp_path, "es", {i18n.NAME_KEY: "Español"})
    cats = i18n.load(("es", "en", "fr"), tmp_path)
    assert i18n.offer(cats, "en") == {"languages": ["es", "en"], "default": "en",
                                      "names": {"es": "Español", "en": "English"}}
    assert i18n.offer(cats, "fr")["default"] == "es"
    assert i18n.offer(i18n.load(("fr",), tmp_path), "fr") == {"languages": [], "default": "en", "names": {}}


@pytest.mark.parametrize(("generator", "best"), [("stability", "en"), ("local", "en"), ("procedural", None)])
def test_best_language_follows_the_generator(generator: str, best: str | None) -> None:
    """Diffusion models want English; the procedural generator takes any language."""
    assert i18n.best_language_for(generator) == best


# --- reasons on the wire ------------------------------------------------------------------------------
ENGINE_REASONS = [
    (audience.QUEUE_FULL, "queue_full", {}),
    (audience.DUPLICATE, "duplicate", {}),
    (audience.BANNED, "banned", {}),
    (audience.TOO_MANY, "too_many_waiting", {}),
    (audience.NOT_THIS_TIME, "vj_rejected", {}),
    (audience.REMOVED, "removed", {}),
    (audience.TOO_MANY_PHONES, "too_many_phones", {}),
    (audience.BUSY, "busy", {}),
    (moderation.REFUSAL, "blocked", {}),
    (default_user_message(FailureKind.MODERATED), "generator_refused", {}),
    (default_user_message(FailureKind.UNPROCESSABLE), "unusable", {}),
    *[(default_user_message(k), "generation_failed", {}) for k in FailureKind
      if k not in (FailureKind.MODERATED, FailureKind.UNPROCESSABLE)],
    ("The image could not be made. Please try again.", "image_failed", {}),  # gen/pipeline.py's words
    ("Something went wrong (KeyError).", "internal", {"error": "KeyError"}),  # gen/pipeline.py's words
    (protocol.reason_text("slow_down", seconds=12), "slow_down", {"seconds": 12}),
]


@pytest.mark.parametrize(("text", "code", "params"), ENGINE_REASONS, ids=[c for _t, c, _p in ENGINE_REASONS])
def test_every_reason_the_engine_sends_has_its_code(text: str, code: str, params: dict[str, object]) -> None:
    """Each English reason reads back as its stable code and parameters."""
    assert protocol.reason_code(text) == (code, params)


def test_a_reason_the_vj_typed_is_custom() -> None:
    """Free words have no code a page can translate: custom, shown as typed."""
    assert protocol.reason_code("Hoy no, lo siento") == ("custom", {})
    assert protocol.reason_code("Slow down! You can send another prompt in soon s. Really.") == ("custom", {})


def test_a_refused_status_carries_its_code_and_parameters() -> None:
    """status: reason (English), reason_code, reason_params."""
    msg = PromptStatus("p-1", "t", State.REJECTED, reason=protocol.reason_text("slow_down", seconds=9),
                       retry_after=8.6).to_message()
    assert (msg["reason_code"], msg["reason_params"], msg["retry_after"]) == ("slow_down", {"seconds": 9}, 8.6)
    assert msg["reason"] == "Slow down! You can send another prompt in 9 s."
    plain = PromptStatus("p-2", "t", State.FAILED, reason=audience.QUEUE_FULL).to_message()
    assert plain["reason_code"] == "queue_full" and "reason_params" not in plain
    assert "reason_code" not in PromptStatus("p-3", "t", State.DONE).to_message()


def test_too_long_carries_the_limit_as_a_parameter() -> None:
    """error: code, English message, and params for the page's own words."""
    with pytest.raises(ProtocolError) as info:
        protocol.parse('{"type": "prompt", "text": "' + "x" * 31 + '", "ref": "r1"}', 30)
    msg = json.loads(protocol.error(info.value.code, info.value.message, info.value.ref, info.value.params))
    assert msg == {"type": "error", "code": "too_long", "message": "That prompt is too long: 30 characters at most.",
                   "params": {"max_length": 30}, "ref": "r1"}
    assert "params" not in json.loads(protocol.TOO_FAST)


@pytest.mark.parametrize("best", ["en", None])
def test_welcome_says_the_best_prompt_language(best: str | None) -> None:
    """welcome.best_language: "en" or null."""
    msg = json.loads(protocol.welcome("abcdefgh", 200, 15.0, [], True, best_language=best))
    assert "best_language" in msg and msg["best_language"] == best


# --- the server: catalogs and the list on offer ---------------------------------------------------------
def fetch(port: int, path: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.status, r.headers["Content-Type"], r.read()


@pytest.mark.parametrize(("languages", "default", "offered"),
                         [(("en", "es"), "en", {"languages": ["en", "es"], "default": "en",
                                                "names": {"en": "English", "es": "Español"}}),
                          (("es",), "es", {"languages": ["es"], "default": "es", "names": {"es": "Español"}})])
def test_server_serves_the_catalogs_and_what_is_on_offer(languages: tuple[str, ...], default: str,
                                                         offered: dict[str, object]) -> None:
    """/i18n/<code>.json come from web/i18n (a sub-folder); /i18n/languages.json from the config."""
    cfg = AudienceConfig(languages=languages, default_language=default)

    async def main() -> None:
        srv = AudienceServer(ServerConfig(host="127.0.0.1", port=0), cfg, direct_ledger(Audience(cfg), print))
        await srv.start()
        try:
            status, kind, body = await asyncio.to_thread(fetch, srv.port, "/i18n/es.json")
            assert status == 200 and kind == "application/json; charset=utf-8"
            assert json.loads(body)["composer.send"] == "Enviar"
            status, kind, body = await asyncio.to_thread(fetch, srv.port, "/i18n/languages.json")
            assert status == 200 and kind == "application/json; charset=utf-8"
            assert json.loads(body) == offered
        finally:
            await srv.stop()
    asyncio.run(main())


# --- the join card ------------------------------------------------------------------------------------------
def test_join_headline_speaks_every_offered_language() -> None:
    """One line per language, from the catalogs, in the configured order."""
    assert join_headline("Send your prompt", ("en", "es")) == "Send your prompt\nEnvía tu prompt"
    assert join_headline("Send your prompt", ("es", "en")) == "Envía tu prompt\nSend your prompt"
    assert join_headline("Send your prompt", ("en",)) == "Send your prompt"


def test_a_changed_headline_is_the_english_line() -> None:
    """[overlay] headline set by the VJ replaces English only; empty means no headline."""
    assert join_headline("Scan me!", ("en", "es")) == "Scan me!\nEnvía tu prompt"
    assert join_headline("Scan me!", ("es",)) == "Scan me!\nEnvía tu prompt"
    assert join_headline("", ("en", "es")) == ""


def test_join_card_draws_every_line_and_its_accents() -> None:
    """Two lines make a taller card whose QR still decodes; the font chosen draws "í", or it is written "i"."""
    url = "http://192.168.0.5:3000"
    one = join_card(url, 180, "Send your prompt")
    two = join_card(url, 180, join_headline("Send your prompt", ("en", "es")))
    assert two.shape[0] > one.shape[0]
    assert [r.text for r in zxingcpp.read_barcodes(np.ascontiguousarray(two[..., :3]))] == [url]
    _font, text = card_font("Envía tu prompt", 30)
    assert text in ("Envía tu prompt", "Envia tu prompt")


def test_without_a_system_font_the_card_writes_accents_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a bare machine the bundled font lacks "í": the card says "Envia", never a missing-glyph box."""
    monkeypatch.setattr(overlay, "FALLBACK_FONTS", ())
    f, text = card_font("Envía tu prompt · ¡ya!", 30)
    assert f is overlay.font(30) and text == "Envia tu prompt · ya!"
