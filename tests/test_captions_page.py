"""Captions on the pages, in real headless Chromium: the phone's notice (English, Spanish, none) and the VJ's button."""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect
from websockets.sync.client import connect

from engine.backstage import Backstage
from engine.commands import Action
from engine.config import AudienceConfig
from engine.contract import ShowSnapshot
from engine.store import Journal
from tests.fakes import wait_for
from tests.test_phone_i18n import LiveServer, open_page, phone
from tests.test_vj_server import TOKEN, started

NOTICE = {"en": "Your words will appear on the big screen with your image.",
          "es": "Tus palabras aparecerán en la pantalla gigante junto a tu imagen."}
WORDS = "a glass octopus playing the drums"


def captioned_server(on: bool) -> LiveServer:
    server = LiveServer(AudienceConfig())
    server.server.captions = on
    return server


def welcome_of(server: LiveServer) -> dict[str, object]:
    with connect(f"ws://127.0.0.1:{server.server.port}/ws?client=phone-captions01") as ws:
        return json.loads(ws.recv())  # type: ignore[no-any-return]


@pytest.mark.parametrize(("locale", "language"), [("en-US", "en"), ("es-ES", "es")])
def test_with_captions_on_the_phone_says_the_words_will_be_on_screen(browser: Browser, locale: str,
                                                                      language: str) -> None:
    """welcome.captions is true and the page shows the notice under the prompt box, in the phone's language."""
    errors: list[str] = []
    with captioned_server(True) as server:
        assert welcome_of(server)["captions"] is True
        context = phone(browser, locale)
        try:
            page = open_page(context, server, errors)
            expect(page.locator("html")).to_have_attribute("lang", language)
            note = page.locator("#captions-note")
            expect(note).to_be_visible()
            expect(note).to_have_text(NOTICE[language])
            box = page.locator("#prompt").bounding_box()
            below = note.bounding_box()
            assert box is not None and below is not None and below["y"] > box["y"] + box["height"]
        finally:
            context.close()
    assert errors == []


def test_the_notice_follows_the_language_switch(browser: Browser) -> None:
    """Switching to Spanish on the page rewords the notice too."""
    with captioned_server(True) as server:
        context = phone(browser, "en-US")
        try:
            page = open_page(context, server)
            expect(page.locator("#captions-note")).to_have_text(NOTICE["en"])
            page.locator("#lang-switch button[data-lang=es]").click()
            expect(page.locator("#captions-note")).to_have_text(NOTICE["es"])
        finally:
            context.close()


def test_with_captions_off_there_is_no_notice(browser: Browser) -> None:
    """welcome.captions is false and the notice stays hidden."""
    with captioned_server(False) as server:
        assert welcome_of(server)["captions"] is False
        context = phone(browser, "en-US")
        try:
            page = open_page(context, server)
            expect(page.locator("#send")).to_have_text("Send")
            expect(page.locator("#captions-note")).to_be_hidden()
        finally:
            context.close()


# --- the control page -----------------------------------------------------------------------------------
@pytest.fixture
def backstage(journal: Journal) -> Iterator[Backstage]:
    b = started(journal)
    yield b
    b.stop()


def caption_values(b: Backstage) -> list[float | tuple[float, ...] | None]:
    """The values of the caption commands that reached the show's inbox so far (other commands dropped)."""
    out = []
    while True:
        try:
            cmd = b.inbox.commands.get_nowait()
        except queue.Empty:
            return out
        if cmd.action is Action.CAPTION:
            out.append(cmd.value)


def expect_caption_command(b: Backstage, value: float) -> None:
    seen: list[float | tuple[float, ...] | None] = []

    def arrived() -> bool:
        seen.extend(caption_values(b))
        return bool(seen)
    wait_for(arrived, what=f"a caption command from the page (value {value:g})")
    assert seen == [value]


def test_the_vj_sees_the_caption_and_hides_it(browser: Browser, backstage: Backstage) -> None:
    """The page shows the words on screen; Hide caption sends caption 0, and once hidden the button shows it again."""
    backstage.board.publish(ShowSnapshot(current_id="img-1", caption=WORDS))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    problems: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"http://127.0.0.1:{backstage.port}/vj?token={TOKEN}")
        text, button = page.locator("#caption-text"), page.locator("#caption-hide")
        expect(text).to_have_text(f"“{WORDS}”", timeout=10000)
        expect(button).to_have_text("Hide caption")
        expect(button).to_be_enabled()
        button.click()
        expect_caption_command(backstage, 0.0)

        backstage.board.publish(ShowSnapshot(current_id="img-1", caption=WORDS, caption_hidden=True))
        expect(button).to_have_text("Show caption", timeout=10000)
        expect(button).to_have_attribute("aria-pressed", "true")
        expect(text).to_have_text(f"Hidden: “{WORDS}”")
        button.click()
        expect_caption_command(backstage, 1.0)

        backstage.board.publish(ShowSnapshot(current_id="img-2"))
        expect(text).to_have_text("none", timeout=10000)
        expect(button).to_be_disabled()
        assert problems == []
    finally:
        context.close()
