"""The phone page in real headless Chromium (Debian's), against the real engine with the offline generator."""

from __future__ import annotations

import signal
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.engine_process import EngineProcess, free_port
from tests.fakes import HEADLESS_ENV, SHADERS

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}


def start_engine(tmp: Path, port: int) -> EngineProcess:
    p = EngineProcess(["--headless", "--size", "320x180", "--fps", "30", "--port", str(port),
                       "--output", str(tmp / "out"), "--generator", "procedural",
                       "--set", "show.hold=0.5", "--set", "show.transition=0.3", "--set", "shaders.effects=[]",
                       "--set", f'shaders.dir="{SHADERS}"'], tmp, HEADLESS_ENV)
    p.wait_for("audience server on")
    return p


def test_prompt_goes_to_the_screen_and_status_survives_going_offline(browser: Browser, tmp_path: Path) -> None:
    """Send a prompt from a phone: accepted → being painted → on screen with the image; the engine
    goes away (the phone is offline) and comes back: the page reconnects and shows the status again."""
    port = free_port()
    engine = start_engine(tmp_path, port)
    context = browser.new_context(**PHONE)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(f"http://127.0.0.1:{port}/")
        expect(page.locator("#status-banner")).to_be_hidden()
        page.locator("#prompt").fill("a lighthouse in a purple storm")
        expect(page.locator("#counter")).to_have_text("30 / 200")
        page.locator("#send").click()

        states = []
        entry = page.locator("#prompts li.item").first
        for _ in range(200):
            state = entry.get_attribute("data-state")
            if state and (not states or states[-1] != state):
                states.append(state)
            if state in ("showing", "done"):
                break
            page.wait_for_timeout(50)
        assert "showing" in states or "done" in states, states
        assert states.index("showing" if "showing" in states else "done") > 0  # something came before it
        image = entry.locator("img.prompt-image")
        expect(image).to_be_visible()
        assert f"127.0.0.1:{port}/images/" in (image.get_attribute("src") or "")
        prompt_id = entry.get_attribute("data-prompt-id")
        expect(entry.locator("a.save-link")).to_have_attribute("download", f"stagecraft-{prompt_id}.png")
        page.screenshot(path=str(tmp_path / "phone.png"))

        engine.proc.send_signal(signal.SIGTERM)
        assert engine.wait(20) == 0
        engine.kill()  # closes its pipe
        expect(page.locator("#status-banner")).to_be_visible(timeout=15000)
        expect(page.locator("#send")).to_be_disabled()

        engine = start_engine(tmp_path, port)
        expect(page.locator("#status-banner")).to_be_hidden(timeout=20000)
        back = page.locator(f'#prompts li.item[data-prompt-id="{prompt_id}"]')
        expect(back).to_have_attribute("data-state", "done", timeout=10000)
        expect(back.locator("img.prompt-image")).to_be_visible()
        assert not errors, errors
    finally:
        context.close()
        engine.kill()


def test_blocked_prompt_is_refused_politely_and_text_stays_text(browser: Browser, tmp_path: Path) -> None:
    """A blocked word gets a polite refusal; HTML in a prompt is shown as text, never run."""
    port = free_port()
    engine = start_engine(tmp_path, port)
    context = browser.new_context(**PHONE)
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.locator("#prompt").fill('<img src=x onerror="document.title=1"> a cat')
        page.locator("#send").click()
        entry = page.locator("#prompts li.item").first
        expect(entry.locator(".item-text")).to_have_text('<img src=x onerror="document.title=1"> a cat')
        assert page.title() != "1"
        assert page.locator("#prompts img[src='x']").count() == 0
    finally:
        context.close()
        engine.kill()
