"""Stability's wire format: the pure functions that size requests and read answers' headers."""

from __future__ import annotations

from engine.gen.stability_wire import nearest_aspect_ratio, parse_retry_after, snap_sdxl, snap_v1_size


def test_sdxl_snapping_table() -> None:
    """Every allowed SDXL size maps to itself; odd shapes to the nearest aspect."""
    for size in [(1024, 1024), (1152, 896), (1216, 832), (1344, 768), (1536, 640), (640, 1536), (768, 1344),
                 (832, 1216), (896, 1152)]:
        assert snap_sdxl(*size) == size
    assert snap_sdxl(4000, 1000) == (1536, 640)
    assert snap_sdxl(1000, 700) == (1216, 832)
    assert snap_v1_size("stable-diffusion-v1-6", 700, 500) == (704, 512)
    assert nearest_aspect_ratio(1920, 1080) == "16:9"


def test_retry_after_parsing() -> None:
    """Retry-After in seconds or as an HTTP date; garbage is ignored."""
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now_wall=1445412500.0) == 10.0
