"""Scenes from the VJ control page, in real headless Chromium against the real engine (headless, offline
generator): save the look, change it, recall it, and the program comes back to the saved picture."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.engine_process import EngineProcess, free_port
from tests.fakes import HEADLESS_ENV, SHADERS
from tests.test_vj_page import DESKTOP, TOKEN, log_in, next_preview, phone_prompt

BLEND_S = 0.4


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[EngineProcess, int]]:
    """The engine in ``tmp_path``: its scenes are ``tmp_path/scenes`` (the default folder, relative to it)."""
    port = free_port()
    p = EngineProcess(["--headless", "--size", "320x180", "--fps", "30", "--port", str(port),
                       "--output", str(tmp_path / "out"), "--generator", "procedural", "--vj-token", TOKEN,
                       "--effect", "pixelate", "--set", f'shaders.dir="{SHADERS}"', "--set", "show.hold=600",
                       "--set", "show.transition=0.3", "--set", "vj.preview_fps=10",
                       "--set", f"scenes.blend={BLEND_S}",
                       "--set", "generation.width=256", "--set", "generation.height=256"], tmp_path, HEADLESS_ENV)
    p.wait_for("VJ control page: ")
    yield p, port
    p.kill()


def settle(page: Page, src: str) -> tuple[str, np.ndarray]:
    """The preview once the picture holds still: two frames in a row that match."""
    src, last = next_preview(page, src)
    for _ in range(30):
        src, now = next_preview(page, src)
        if np.abs(now - last).mean() < 1.0:
            return src, now
        last = now
    pytest.fail("the preview never settled")


def set_style(page: Page, value: str) -> None:
    """Pick a style preset in the generation settings and apply it."""
    page.locator("#settings select[name=style_preset]").select_option(value)
    page.locator("#settings-apply").click()
    expect(page.locator("#settings select[name=style_preset]")).to_have_value(value, timeout=5000)
    expect(page.locator("#settings .field.dirty")).to_have_count(0, timeout=5000)


def test_save_change_and_recall_a_scene_from_the_page(browser: Browser, engine: tuple[EngineProcess, int],
                                                      tmp_path: Path) -> None:
    """The page saves the look (with its style preset) as scenes/<name>.toml; after the look and the style change,
    Recall brings the same picture back on the program and the style back to the generation settings."""
    _proc, port = engine
    context = browser.new_context(**DESKTOP)
    problems: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
        log_in(page, port)
        prompt_id = phone_prompt(port, "a glass lighthouse at dawn")
        expect(page.locator("#current")).to_contain_text(prompt_id, timeout=30000)
        page.locator("#freeze").click()  # shader time stands still: only the look changes the picture
        expect(page.locator("#freeze")).to_have_attribute("aria-pressed", "true", timeout=5000)
        set_style(page, "anime")

        src, saved = settle(page, "")
        page.locator("#scene-name").fill("big cells")
        page.locator("#scene-save").click()
        item = page.locator("#scene-list li[data-scene='big cells']")
        expect(item).to_be_visible(timeout=10000)
        kept = tomllib.loads((tmp_path / "scenes" / "big cells.toml").read_text(encoding="utf-8"))
        assert kept["effects"] == ["pixelate"] and kept["style_preset"] == "anime" and "cellSize" in kept["params"][
            "pixelate"]

        # Change the look: the pixelate cells to their smallest, and the style.
        slider = page.locator("input[type=range][data-shader=pixelate][data-param=cellSize]")
        slider.evaluate("(el) => { el.value = el.min; el.dispatchEvent(new Event('input', {bubbles: true})); "
                        "el.dispatchEvent(new Event('change', {bubbles: true})); }")
        set_style(page, "comic-book")
        src, changed = settle(page, src)
        assert np.abs(changed - saved).mean() > 6.0, "changing the look did not change the picture"

        item.locator("button[data-act=recall]").click()
        expect(page.locator("#scene-current")).to_have_text("big cells", timeout=5000)
        page.wait_for_timeout(BLEND_S * 1000)
        src, back = settle(page, src)
        assert np.abs(back - saved).mean() < 2.0, "the recalled look is not the saved picture"
        expect(page.locator("#settings select[name=style_preset]")).to_have_value("anime", timeout=5000)
        expect(item).to_have_attribute("aria-current", "true")
        assert problems == []
    finally:
        context.close()


def test_the_page_lists_scenes_with_numbers_and_errors(browser: Browser, engine: tuple[EngineProcess, int],
                                                       tmp_path: Path) -> None:
    """Files dropped into the folder appear, numbered by name; a bad one shows its file and key and cannot be
    recalled. The panel is what docs/scenes.png shows."""
    _proc, port = engine
    folder = tmp_path / "scenes"
    folder.mkdir(exist_ok=True)
    (folder / "intro.toml").write_text('effects = []\nstyle_preset = "cinematic"\n')
    (folder / "drop.toml").write_text('effects = ["pixelate"]\n[params.pixelate]\ncellSize = 80.0\n')
    (folder / "outro.toml").write_text('effects = ["pixelate"]\n[params.pixelate]\ncellSize = 500.0\n')
    context = browser.new_context(**DESKTOP)
    try:
        page = context.new_page()
        log_in(page, port)
        rows = page.locator("#scene-list li")
        expect(rows).to_have_count(3, timeout=10000)
        assert [rows.nth(i).get_attribute("data-scene") for i in range(3)] == ["drop", "intro", "outro"]
        assert page.locator("#scene-list .scene-index").all_inner_texts() == ["1", "2", "3"]
        bad = page.locator("#scene-list li[data-scene=outro]")
        expect(bad.locator(".scene-error")).to_contain_text("outro.toml: params.pixelate.cellSize: 500 is out of range")
        expect(page.locator("#show-errors")).to_contain_text("outro.toml: params.pixelate.cellSize")  # the HUD's too
        expect(bad.locator("button[data-act=recall]")).to_be_disabled()
        page.locator("#scene-list li[data-scene=drop] button[data-act=recall]").click()
        expect(page.locator("#scene-list li[data-scene=drop]")).to_have_attribute("aria-current", "true",
                                                                                  timeout=5000)
        page.keyboard.press("Shift+Digit2")  # as on the show machine: scene 2
        expect(page.locator("#scene-current")).to_have_text("intro", timeout=5000)
        page.locator("#scene-list li[data-scene=drop] button[data-act=recall]").click()
        expect(page.locator("#scene-current")).to_have_text("drop", timeout=5000)
        page.locator("#scene-name").fill("late night")
        page.locator(".area-scenes").screenshot(path=str(tmp_path / "scenes.png"))
    finally:
        context.close()
