"""The VJ control page in real headless Chromium, against the real engine (headless, offline generator)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect
from websockets.sync.client import connect

from engine.backstage import Backstage
from engine.store import Journal
from tests.engine_process import EngineProcess, free_port
from tests.fakes import HEADLESS_ENV, SHADERS
from tests.test_vj_server import TOKEN as SERVER_TOKEN
from tests.test_vj_server import pairing_code, started

TOKEN = "vj-page-test-token"
DESKTOP = {"viewport": {"width": 1280, "height": 800}}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[EngineProcess, int]]:
    port = free_port()
    p = EngineProcess(["--headless", "--size", "320x180", "--fps", "30", "--port", str(port),
                       "--output", str(tmp_path / "out"), "--generator", "procedural", "--vj-token", TOKEN,
                       "--effect", "pixelate", "--set", f'shaders.dir="{SHADERS}"',
                       "--set", "audience.moderation=\"approve\"", "--set", "show.hold=1.0",
                       "--set", "show.transition=0.3", "--set", "vj.preview_fps=10",
                       "--set", "generation.width=256", "--set", "generation.height=256"], tmp_path, HEADLESS_ENV)
    p.wait_for("VJ control page: ")
    yield p, port
    p.kill()


def phone_prompt(port: int, text: str) -> str:
    with connect(f"ws://127.0.0.1:{port}/ws?client=phone-vjtest01") as ws:
        ws.recv()
        ws.send(json.dumps({"type": "prompt", "text": text}))
        status = json.loads(ws.recv())
        assert status["state"] == "queued", status
        return str(status["id"])


def preview(page: Page) -> np.ndarray:
    """The preview picture the page shows now, as the browser decoded it."""
    data = page.locator("#preview").screenshot()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def next_preview(page: Page, after: str | None) -> tuple[str, np.ndarray]:
    """Wait for a preview frame newer than ``after`` (its blob URL) and return it."""
    page.wait_for_function("(old) => { const s = document.querySelector('#preview').src; return s && s !== old; }",
                           arg=after or "", timeout=10000)
    return page.locator("#preview").get_attribute("src") or "", preview(page)


def log_in(page: Page, port: int) -> None:
    first = page.goto(f"http://127.0.0.1:{port}/vj")
    assert first is not None and first.status == 401
    page.locator("input[name=token]").fill(TOKEN)
    page.locator("button[type=submit]").click()
    expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=10000)
    assert page.url == f"http://127.0.0.1:{port}/vj"  # the token is not left in the address bar


def test_vj_logs_in_approves_a_prompt_moves_a_slider_and_taps_tempo(
        browser: Browser, engine: tuple[EngineProcess, int], tmp_path: Path) -> None:
    _proc, port = engine
    context = browser.new_context(**DESKTOP)
    problems: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
        log_in(page, port)

        # Approve a prompt from a phone and watch it reach the screen.
        prompt_id = phone_prompt(port, "a copper dragon over the harbour")
        item = page.locator(f"#pending li[data-prompt-id='{prompt_id}']")
        expect(item).to_contain_text("a copper dragon over the harbour", timeout=10000)
        item.locator("button[data-act=approve]").click()
        expect(page.locator("#current")).to_contain_text(prompt_id, timeout=30000)
        expect(page.locator(f"#gallery figure[data-image-id^='{prompt_id}']")).to_be_visible(timeout=10000)

        # Freeze the picture, so only the slider can change it, then move an ISF input's slider.
        page.locator("#freeze").click()
        expect(page.locator("#freeze")).to_have_attribute("aria-pressed", "true", timeout=5000)
        src, _ = next_preview(page, None)
        src, _ = next_preview(page, src)  # one taken surely after the freeze
        src, before = next_preview(page, src)
        src, still = next_preview(page, src)
        assert np.abs(still - before).mean() < 2.0  # frozen: the same picture, frame after frame
        slider = page.locator("input[type=range][data-shader=pixelate][data-param=mixAmount]")
        expect(slider).to_be_visible()
        slider.evaluate("(el) => { el.value = el.min; el.dispatchEvent(new Event('input', {bubbles: true})); "
                        "el.dispatchEvent(new Event('change', {bubbles: true})); }")
        changed = 0.0
        for _ in range(20):
            src, after = next_preview(page, src)
            changed = float(np.abs(after - before).mean())
            if changed > 6.0:
                break
        assert changed > 6.0, f"the program output did not change (mean difference {changed:.1f})"
        page.locator("#freeze").click()
        expect(page.locator("#freeze")).to_have_attribute("aria-pressed", "false", timeout=5000)

        # Tap tempo: four taps half a second apart lock 120 bpm.
        page.evaluate("""() => new Promise((done) => {
            const tap = document.querySelector('#tap');
            let n = 0;
            const once = () => {
                tap.dispatchEvent(new PointerEvent('pointerdown', {bubbles: true}));
                if (++n < 4) setTimeout(once, 500); else done();
            };
            once();
        })""")
        expect(page.locator("#bpm-locked")).to_contain_text("locked", timeout=5000)
        bpm = float(page.locator("#bpm").inner_text())
        assert 108 <= bpm <= 133, bpm  # taps land on the show's frames (30 fps here)
        beats = int(page.locator("#beat").get_attribute("data-beats") or 0)
        page.wait_for_function(f"() => +document.querySelector('#beat').dataset.beats > {beats + 1}", timeout=5000)
        page.screenshot(path=str(tmp_path / "vj.png"))
        assert problems == []
    finally:
        context.close()


def test_without_the_token_the_page_and_socket_refuse(browser: Browser,
                                                      engine: tuple[EngineProcess, int]) -> None:
    _proc, port = engine
    context = browser.new_context(**DESKTOP)
    try:
        page = context.new_page()
        for route in ("/vj", "/vj/vj.js", "/vj/vj.css", "/vj/index.html"):
            response = page.goto(f"http://127.0.0.1:{port}{route}")
            assert response is not None and response.status == 401, route
            assert page.locator("#pending").count() == 0 and "copper" not in page.content()
        bad = page.goto(f"http://127.0.0.1:{port}/vj?token=not-the-token")
        assert bad is not None and bad.status == 401
        opened = page.evaluate("""(url) => new Promise((done) => {
            const ws = new WebSocket(url);
            ws.onopen = () => done('open');
            ws.onerror = () => done('refused');
        })""", f"ws://127.0.0.1:{port}/vj/ws")
        assert opened == "refused"
        phone = page.goto(f"http://127.0.0.1:{port}/")
        assert phone is not None and phone.status == 200 and "/vj" not in page.content()
    finally:
        context.close()


@pytest.fixture
def served(journal: Journal) -> Iterator[Backstage]:
    """The backstage in this process, so the test can press P (``Backstage.pair``) and read its console."""
    b = started(journal)
    yield b
    b.stop()


def test_a_pairing_code_typed_into_the_login_form_opens_the_page(
        browser: Browser, served: Backstage, caplog: pytest.LogCaptureFixture) -> None:
    """P's code, typed on a tablet, logs it in; the browser keeps a session, neither the code nor the token."""
    code = pairing_code(served, caplog)
    context = browser.new_context(**DESKTOP)
    try:
        page = context.new_page()
        first = page.goto(f"http://127.0.0.1:{served.port}/vj")
        assert first is not None and first.status == 401
        page.locator("input[name=token]").fill(code.lower())
        page.locator("button[type=submit]").click()
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=10000)
        assert page.url == f"http://127.0.0.1:{served.port}/vj"
        kept = " ".join(c["value"] for c in context.cookies())
        assert kept and code.replace("-", "") not in kept.upper() and SERVER_TOKEN not in kept
    finally:
        context.close()


def test_log_out_ends_the_login(browser: Browser, served: Backstage) -> None:
    """The Log out button: back to the login form, and the page stays shut until the next login."""
    context = browser.new_context(**DESKTOP)
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{served.port}/vj?token={SERVER_TOKEN}")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=10000)
        page.locator("#logout").click()
        expect(page.locator("input[name=token]")).to_be_visible(timeout=10000)
        again = page.goto(f"http://127.0.0.1:{served.port}/vj")
        assert again is not None and again.status == 401
    finally:
        context.close()


def test_log_out_all_asks_first_then_closes_every_page(browser: Browser, served: Backstage) -> None:
    """Log out all ends the other pages' logins too, so it asks "Sure?" before it does."""
    pages = []
    contexts = [browser.new_context(**DESKTOP) for _ in range(2)]
    try:
        for context in contexts:
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{served.port}/vj?token={SERVER_TOKEN}")
            expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=10000)
            pages.append(page)
        other, mine = pages
        mine.locator("#logout-all").click()
        expect(mine.locator("#logout-all")).to_have_text("Sure?")
        expect(other.locator("#conn")).to_have_attribute("data-state", "open")
        mine.locator("#logout-all").click()
        expect(other.locator("#conn-text")).to_have_text("Logged out", timeout=10000)
        expect(mine.locator("input[name=token]")).to_be_visible(timeout=10000)
    finally:
        for context in contexts:
            context.close()


def test_the_dream_slider_drives_the_mix_and_follows_the_show(browser: Browser, served: Backstage) -> None:
    """The Program panel's dream slider: the show's mix and dream fps shown, a move sent as the dream_mix
    command, its L button asks for MIDI learn of the mix (refused here: no MIDI input)."""
    from engine.commands import Action, Command
    from engine.contract import ShowSnapshot
    from tests.fakes import drain

    context = browser.new_context(**DESKTOP)
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{served.port}/vj?token={SERVER_TOKEN}")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=10000)
        served.board.publish(ShowSnapshot(dream_mix=0.3, dream_fps=12.0))
        expect(page.locator("#dream-mix-out")).to_have_text("0.30", timeout=5000)
        expect(page.locator("#dream-fps")).to_have_text("12.0 fps")
        assert page.locator("#dream-mix").input_value() == "0.3"
        drain(served.inbox.commands)
        page.locator("#dream-mix").evaluate("(el) => { el.value = 0.8; el.dispatchEvent(new Event('input')); }")
        deadline = 50
        got: list[Command] = []
        while not got and deadline:
            page.wait_for_timeout(100)
            got = [c for c in drain(served.inbox.commands) if c.action is Action.DREAM_MIX]
            deadline -= 1
        assert got == [Command(Action.DREAM_MIX, 0.8, source="vj")]
        page.locator("#dream-learn").click()
        expect(page.locator("#toasts")).to_contain_text("MIDI input is off", timeout=5000)
    finally:
        context.close()


def test_the_outputs_panel_records_shows_each_output_and_picks_the_live_input(
    browser: Browser, served: Backstage
) -> None:
    """Record sends the record command and shows the recording's time and size; each output's state is a
    line (receivers, drops, or why it is unavailable); the source buttons pick a live input."""
    from engine.commands import Action, Command
    from engine.contract import ShowSnapshot
    from engine.inputs.source import InputState
    from engine.output.sink import OutputState
    from tests.fakes import drain

    context = browser.new_context(**DESKTOP)
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{served.port}/vj?token={SERVER_TOKEN}")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=10000)
        expect(page.locator("#record-info")).to_have_text("not recording")
        drain(served.inbox.commands)
        page.locator("#record").click()
        got: list[Command] = []
        for _ in range(50):
            got = [c for c in drain(served.inbox.commands) if c.action is Action.RECORD]
            if got:
                break
            page.wait_for_timeout(100)
        assert got == [Command(Action.RECORD, None, source="vj")]
        served.board.publish(ShowSnapshot(
            outputs=(
                OutputState("ndi", "on", 'NDI "Stagecraft" 1920x1080', receivers=2, frames=900, dropped=3),
                OutputState("virtualcam", "unavailable", "no virtual camera: load v4l2loopback"),
                OutputState("record", "on", "recording", seconds=75.4, bytes=12_300_000, file="/x/stagecraft-1.mp4"),
            ),
            inputs=(InputState("camera:/dev/video0", "on", "1280x720 mjpeg 30 fps (v4l2)", 10, (1280, 720)),),
            live_input="",
        ))
        expect(page.locator("#record-info")).to_have_text("REC 1:15 · 12.3 MB", timeout=5000)
        expect(page.locator("#record")).to_have_attribute("aria-pressed", "true")
        items = page.locator("#output-list li")
        expect(items).to_have_count(3)
        expect(items.nth(0)).to_have_text('ndi: NDI "Stagecraft" 1920x1080 · receivers 2 · dropped 3')
        expect(items.nth(1)).to_contain_text("virtualcam: unavailable — no virtual camera: load v4l2loopback")
        expect(items.nth(2)).to_contain_text("stagecraft-1.mp4")
        camera = page.locator('#live-inputs button[data-input="camera"]')
        expect(camera).to_have_text("Camera")
        camera.click()
        for _ in range(50):
            got = [c for c in drain(served.inbox.commands) if c.action is Action.INPUT]
            if got:
                break
            page.wait_for_timeout(100)
        assert got == [Command(Action.INPUT, name="camera", source="vj")]
        served.board.publish(ShowSnapshot(inputs=(InputState("camera:/dev/video0", "on", "ok"),), live_input="camera"))
        expect(camera).to_have_attribute("aria-pressed", "true", timeout=5000)
        expect(page.locator('#live-inputs button[data-input=""]')).to_have_attribute("aria-pressed", "false")
    finally:
        context.close()
