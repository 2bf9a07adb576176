"""The phone page in the audience's language, in real headless Chromium (Debian's) against the real audience server.

The server runs in this process on a loopback port, with the real ``web/`` folder, audience rules and
moderator, and the ledger delivering at once (no journal, no generator): what these tests look at is
the page's words, not images.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from engine.config import AudienceConfig, ServerConfig
from engine.ledger import Ledger
from engine.net.audience import Audience
from engine.net.http import WEB_ROOT
from engine.net.i18n import best_language_for
from engine.net.moderation import Moderator
from engine.net.server import AudienceServer
from tests.fakes import direct_ledger

T = TypeVar("T")


class LiveServer:
    """The audience server on its own event loop in a thread; ``call`` runs a function on that loop."""

    def __init__(self, audience_cfg: AudienceConfig, best_language: str | None = "en", web_root: Path = WEB_ROOT,
                 moderator: Moderator | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="audience-server", daemon=True)
        servers: list[AudienceServer] = []
        self.ledger: Ledger = direct_ledger(Audience(audience_cfg, moderator), lambda out: servers[0].deliver(out))
        self.server = AudienceServer(ServerConfig(host="127.0.0.1", port=0), audience_cfg, self.ledger,
                                     web_root=web_root, best_language=best_language)
        servers.append(self.server)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/"

    def call(self, fn: Callable[[], T]) -> T:
        done: Future[T] = Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except Exception as err:  # handed to the test thread
                done.set_exception(err)
        self.loop.call_soon_threadsafe(run)
        return done.result(10)


def phone(browser: Browser, locale: str) -> BrowserContext:
    """A phone (tests/test_phone_page.py's size) whose browser asks for ``locale``."""
    return browser.new_context(locale=locale, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                               device_scale_factor=2)


def open_page(context: BrowserContext, server: LiveServer, errors: list[str] | None = None) -> Page:
    page = context.new_page()
    if errors is not None:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url)
    expect(page.locator("html")).to_have_attribute("data-words", re.compile(r"^[a-z]{2}$"))  # the catalog is in
    expect(page.locator("#status-banner")).to_be_hidden()
    return page


def send(page: Page, text: str) -> None:
    page.locator("#prompt").fill(text)
    expect(page.locator("#send")).to_be_enabled()
    page.locator("#send").click()


def expect_spanish(page: Page) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("#send")).to_have_text("Enviar")
    expect(page.locator(".tagline")).to_have_text("Escribe una idea. Mírala brillar en la pantalla gigante.")
    expect(page.locator("label[for=prompt]")).to_have_text("Tu prompt")
    expect(page.locator("#prompt")).to_have_attribute("placeholder", "una ballena de neón nadando sobre la ciudad")
    expect(page).to_have_title("Stagecraft — envía tu prompt")


def expect_english(page: Page) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#send")).to_have_text("Send")
    expect(page.locator(".tagline")).to_have_text("Type an idea. Watch it light up the big screen.")
    expect(page).to_have_title("Stagecraft — send your prompt")


# --- which language -------------------------------------------------------------------------------------
def test_page_is_in_spanish_when_the_browser_asks_for_it(browser: Browser) -> None:
    """A phone set to Spanish (es-ES) gets the Spanish page, with no script or CSP error."""
    errors: list[str] = []
    with LiveServer(AudienceConfig()) as server:
        context = phone(browser, "es-ES")
        try:
            page = open_page(context, server, errors)
            expect_spanish(page)
            expect(page.locator("#lang-switch button[lang=es]")).to_have_attribute("aria-pressed", "true")
        finally:
            context.close()
    assert not errors, errors


def test_page_is_in_english_by_default(browser: Browser) -> None:
    """A phone set to English (en-US) gets English; the switch offers both, each in its own name."""
    with LiveServer(AudienceConfig()) as server:
        context = phone(browser, "en-US")
        try:
            page = open_page(context, server)
            expect_english(page)
            expect(page.locator("#lang-switch button")).to_have_text(["English", "Español"])
        finally:
            context.close()


@pytest.mark.parametrize(("default", "expect_language"), [("en", expect_english), ("es", expect_spanish)],
                         ids=["default-en", "default-es"])
def test_a_browser_language_not_offered_falls_back_to_the_default(
        browser: Browser, default: str, expect_language: Callable[[Page], None]) -> None:
    """A French phone gets [audience] default_language."""
    with LiveServer(AudienceConfig(default_language=default)) as server:
        context = phone(browser, "fr-FR")
        try:
            expect_language(open_page(context, server))
        finally:
            context.close()


def test_only_the_configured_languages_are_offered(browser: Browser) -> None:
    """[audience] languages = ["en"]: no switch, and a Spanish phone reads English."""
    with LiveServer(AudienceConfig(languages=("en",), default_language="en")) as server:
        context = phone(browser, "es-ES")
        try:
            page = open_page(context, server)
            expect_english(page)
            expect(page.locator("#lang-switch")).to_be_hidden()
        finally:
            context.close()


def test_the_switch_changes_the_language_and_a_reload_remembers_it(browser: Browser) -> None:
    """Tap Español on an English phone: the page, and the statuses already shown, turn Spanish; so after a reload."""
    with LiveServer(AudienceConfig()) as server:
        context = phone(browser, "en-US")
        try:
            page = open_page(context, server)
            send(page, "a lighthouse in a purple storm")
            entry = page.locator("#prompts li.item").first
            expect(entry.locator(".state-label")).to_have_text("In the queue — #1")
            page.locator("#lang-switch button[lang=es]").click()
            expect_spanish(page)
            expect(entry.locator(".state-label")).to_have_text("En la cola — #1")
            expect(page.locator("#history-title")).to_have_text("Tus prompts")
            page.reload()
            expect_spanish(page)
            expect(page.locator("#prompts li.item .state-label").first).to_have_text("En la cola — #1")
            page.locator("#lang-switch button[lang=en]").click()
            expect_english(page)
            page.reload()
            expect_english(page)
        finally:
            context.close()


def test_a_key_missing_from_a_catalog_shows_in_english(browser: Browser, tmp_path: Path) -> None:
    """A gap in es.json shows the English words for that key, never the key itself."""
    web = tmp_path / "web"
    shutil.copytree(WEB_ROOT, web, ignore=shutil.ignore_patterns("vj"))
    es = json.loads((web / "i18n" / "es.json").read_text(encoding="utf-8"))
    del es["composer.send"]
    (web / "i18n" / "es.json").write_text(json.dumps(es, ensure_ascii=False), encoding="utf-8")
    with LiveServer(AudienceConfig(), web_root=web) as server:
        context = phone(browser, "es-ES")
        try:
            page = context.new_page()
            page.goto(server.url)
            expect(page.locator("label[for=prompt]")).to_have_text("Tu prompt")
            expect(page.locator("#send")).to_have_text("Send")
        finally:
            context.close()


# --- what the server says, in the page's language -------------------------------------------------------------
def test_refusals_arrive_in_spanish(browser: Browser) -> None:
    """A blocked word, then sending too soon: both refusals read in Spanish, the wait with its seconds."""
    cfg = AudienceConfig(burst=1, cooldown=30.0)
    with LiveServer(cfg, moderator=Moderator(["badword"])) as server:
        context = phone(browser, "es-ES")
        try:
            page = open_page(context, server)
            send(page, "a badword on a wall")
            blocked = page.locator("#prompts li.item").first
            expect(blocked).to_have_attribute("data-state", "rejected")
            expect(blocked.locator(".state-label")).to_have_text(
                "Lo sentimos, ese prompt no está permitido aquí. ¡Prueba con otra cosa!")
            send(page, "a calm lake at dawn")
            slow = page.locator("#prompts li.item").first
            expect(slow).to_have_attribute("data-state", "rejected")
            expect(slow.locator(".state-label")).to_have_text(
                re.compile(r"^¡Más despacio! Puedes enviar otro prompt en (29|30) s\.$"))
            expect(page.locator("#cooldown")).to_have_text(re.compile(r"^Puedes enviar otro en \d+ s$"))
            page.locator("#lang-switch button[lang=en]").click()
            expect(slow.locator(".state-label")).to_have_text(
                re.compile(r"^Slow down! You can send another prompt in (29|30) s\.$"))
        finally:
            context.close()


def test_the_vjs_own_words_are_shown_as_typed(browser: Browser) -> None:
    """A reason the VJ typed cannot be translated: a Spanish page shows it as typed; without one, Spanish words."""
    with LiveServer(AudienceConfig(moderation="approve")) as server:
        context = phone(browser, "es-ES")
        try:
            page = open_page(context, server)
            send(page, "a neon whale")
            send(page, "a paper moon")
            items = page.locator("#prompts li.item")
            expect(items).to_have_count(2)
            for item in (items.nth(0), items.nth(1)):
                expect(item).to_have_attribute("data-prompt-id", re.compile(r"^p-"))
                expect(item.locator(".state-label")).to_have_text("Esperando aprobación")
            moon, whale = (items.nth(i).get_attribute("data-prompt-id") or "" for i in (0, 1))
            server.call(lambda: server.ledger.reject(whale, "Too close to the last one, sorry"))
            server.call(lambda: server.ledger.reject(moon))
            expect(page.locator(f'li[data-prompt-id="{whale}"] .state-label')).to_have_text(
                "Too close to the last one, sorry")
            expect(page.locator(f'li[data-prompt-id="{moon}"] .state-label')).to_have_text("Esta vez no, ¡lo sentimos!")
        finally:
            context.close()


@pytest.mark.parametrize(("generator", "locale", "hint"), [
    ("stability", "es-ES", "Los prompts en inglés dan las mejores imágenes."),
    ("local", "es-ES", "Los prompts en inglés dan las mejores imágenes."),
    ("procedural", "es-ES", "Escribe en cualquier idioma."),
    ("stability", "en-US", "Prompts in English give the best images."),
    ("procedural", "en-US", "Write in any language."),
])
def test_the_hint_names_the_best_prompt_language_for_the_generator(browser: Browser, generator: str, locale: str,
                                                                   hint: str) -> None:
    """English for the diffusion backends, any language for the procedural one; the cooldown follows."""
    with LiveServer(AudienceConfig(cooldown=15.0), best_language=best_language_for(generator)) as server:
        context = phone(browser, locale)
        try:
            page = open_page(context, server)
            cooldown = "Un prompt cada 15 s." if locale == "es-ES" else "One prompt every 15 s."
            expect(page.locator("#hint")).to_have_text(f"{hint} {cooldown}")
        finally:
            context.close()


def test_a_protocol_error_reads_in_the_pages_language(browser: Browser) -> None:
    """An error the server sends (too long: the page was told a looser limit on the way) shows the catalog's words."""
    def loosen(route: WebSocketRoute) -> None:
        server_side = route.connect_to_server()

        def from_server(message: str | bytes) -> None:
            msg = json.loads(message)
            if msg.get("type") == "welcome":
                msg["max_length"] = 200  # a page with a stale limit: the server's is 20
            route.send(json.dumps(msg))
        server_side.on_message(from_server)  # phone → server still flows on its own

    with LiveServer(AudienceConfig(max_length=20)) as server:
        context = phone(browser, "es-ES")
        try:
            page = context.new_page()
            page.route_web_socket(re.compile(r"/ws\?"), loosen)
            page.goto(server.url)
            expect(page.locator("#send")).to_have_text("Enviar")
            send(page, "x" * 21)
            expect(page.locator("#error")).to_have_text("Ese prompt es demasiado largo: 20 caracteres como máximo.")
            expect(page.locator("#prompt")).to_have_value("x" * 21)  # back in the box
        finally:
            context.close()
