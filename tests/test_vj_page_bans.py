"""The control page's ban buttons in real headless Chromium, against an in-process backstage."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect
from websockets.sync.client import connect

from engine.backstage import Backstage
from engine.net.audience import BANNED
from engine.store import Journal
from tests.test_vj_server import TOKEN, started

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
CLIENT = "phone-secret-nat-0001"


@pytest.fixture
def approving(journal: Journal) -> Iterator[Backstage]:
    b = started(journal, {"audience.moderation": "approve"})
    yield b
    b.stop()


def prompt_from(port: int, text: str, client: str, local: str) -> dict[str, object]:
    with connect(f"ws://127.0.0.1:{port}/ws?client={client}", source_address=(local, 0)) as ws:
        ws.recv()  # welcome
        ws.send(json.dumps({"type": "prompt", "text": text}))
        return json.loads(ws.recv())  # type: ignore[no-any-return]


def test_ban_address_warns_about_shared_networks_then_bans_the_address(
        browser: Browser, approving: Backstage) -> None:
    """The page shows a handle, not the id; Ban address asks with a NAT warning, then refuses the address."""
    port = approving.port
    assert port is not None
    sent = prompt_from(port, "a copper dragon", CLIENT, "127.0.0.71")
    context = browser.new_context(**DESKTOP)
    problems: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"http://127.0.0.1:{port}/vj?token={TOKEN}")
        item = page.locator(f"#pending li[data-prompt-id='{sent['id']}']")
        expect(item).to_contain_text("a copper dragon", timeout=10000)
        expect(item.locator(".client")).to_have_text(re.compile(r"^from [a-z2-7]{6}$"))  # a handle
        assert CLIENT not in page.content()

        ban = item.locator("button[data-act=ban-address]")
        warning = item.locator(".ban-warning")
        expect(warning).to_be_hidden()
        ban.click()
        expect(ban).to_have_text("Sure?")
        expect(warning).to_be_visible()
        expect(warning).to_contain_text("NAT")
        ban.click()
        expect(item).to_have_count(0, timeout=10000)
        again = prompt_from(port, "another dragon", "phone-secret-nat-0002", "127.0.0.71")
        assert (again["state"], again["reason"]) == ("rejected", BANNED)
        assert problems == []
    finally:
        context.close()
