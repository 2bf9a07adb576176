"""Join card and HUD pictures, made on the CPU."""

from __future__ import annotations

import numpy as np
import zxingcpp

from engine.contract import ShowSnapshot
from engine.render.overlay import HudLayout, hud_image, hud_lines, join_card, qr_image, qr_modules


def decode_qr(rgb: np.ndarray) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(np.ascontiguousarray(rgb))]


def test_qr_image_round_trips() -> None:
    """The QR picture decodes back to its text."""
    url = "http://192.168.1.23:3000"
    assert decode_qr(qr_image(url, 200)[..., :3]) == [url]


def test_qr_image_uses_whole_pixels_per_module() -> None:
    """Module edges stay crisp: the side is a whole multiple of the module count."""
    modules = qr_modules("http://10.0.0.1:3000").shape[0]
    img = qr_image("http://10.0.0.1:3000", 250)
    assert img.shape[0] == img.shape[1] <= 250
    assert img.shape[0] % modules == 0


def test_join_card_holds_a_decodable_qr_and_is_white() -> None:
    """The card is a white panel whose QR code decodes to the URL."""
    url = "http://192.168.0.5:3000"
    card = join_card(url, 180, "Send your prompt")
    assert decode_qr(card[..., :3]) == [url]
    assert tuple(card[0, 0]) == (255, 255, 255, 255)


def test_hud_lines_show_what_a_technician_looks_for() -> None:
    """fps, frame time, work, queue length, what is on screen, the join URL, and recent errors."""
    snap = ShowSnapshot(fps=59.9, frame_ms=16.7, frame_p99_ms=18.0, work_ms=5.0, queue_len=3,
                        current_id="img-7", size=(1280, 720), blackout=True, errors=("e1", "e2", "e3"))
    text = "\n".join(hud_lines(snap, "http://10.0.0.2:3000"))
    for part in ("59.9 fps", "frame  16.7 ms", "p99  18.0 ms", "work  5.0 ms", "queue 3", "img-7",
                 "1280x720", "BLACKOUT", "join http://10.0.0.2:3000", "! e2", "! e3"):
        assert part in text
    assert "! e1" not in text


def test_hud_box_covers_only_the_text() -> None:
    """The HUD texture keeps its size; below the last line it is transparent."""
    layout = HudLayout()
    img = hud_image(["one line"], layout)
    assert img.shape == (layout.height, layout.width, 4)
    assert img[5, 5, 3] > 0
    assert img[-1, -1, 3] == 0
