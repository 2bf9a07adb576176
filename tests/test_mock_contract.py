"""The mock's reading of the contract, unit by unit: output sizes and the multipart parser."""

from __future__ import annotations

import httpx

from engine.gen.mock_contract import output_size, parse_multipart


def test_output_sizes_follow_the_endpoint() -> None:
    """About 1 MP for ultra/sd3 (1024² at 1:1), 1.5 MP for core, in the asked shape; scale shrinks them."""
    assert output_size("ultra", 1.0) == (1024, 1024)
    assert output_size("sd3", 16 / 9) == (1344, 768)
    assert output_size("core", 1.0) == (1280, 1280)
    w, h = output_size("core", 9 / 21)
    assert abs(w * h / (1.5 * 1024 * 1024) - 1) < 0.1 and abs(w / h - 9 / 21) < 0.03
    assert output_size("ultra", 1.0, scale=1 / 16) == (64, 64)


def test_multipart_parser_keeps_binary_bytes() -> None:
    """File bytes with CR/LF and boundary-like text inside come through untouched; ``none`` is dropped."""
    payload = b"\r\n--x\r\n\r\n\x00\xff\r"
    request = httpx.Request("POST", "http://x/", data={"prompt": "héllo"},
                            files={"image": ("a.png", payload), "none": ("none", b"")})
    form = parse_multipart(request.headers["content-type"], request.read())
    assert form.fields == {"prompt": "héllo"} and form.files == {"image": payload}
