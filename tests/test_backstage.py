"""The backstage thread feeds the show through the inbox and stops cleanly."""

from __future__ import annotations

import queue
import threading

import pytest

from engine.backstage import Backstage
from engine.render.show_loop import Inbox, StateBoard
from engine.show import ShowSnapshot
from tests.fakes import make_config


def test_request_image_delivers_one_promptly() -> None:
    """Asking for the next image (Space with nothing ready) puts one in the inbox."""
    inbox = Inbox()
    b = Backstage(make_config({"demo.interval": 0.0}), inbox, StateBoard())
    b.start()
    try:
        b.request_image()
        image = inbox.images.get(timeout=10)
        assert image.pixels.shape[2] == 4 and image.id.startswith("demo-")
    finally:
        b.stop()


def test_interval_source_keeps_the_queue_short() -> None:
    """On its timer the placeholder source stops when the show already has enough waiting."""
    inbox = Inbox()
    board = StateBoard()
    board.publish(ShowSnapshot(queue_len=5))
    b = Backstage(make_config({"demo.interval": 0.05}), inbox, board)
    b.start()
    try:
        try:
            inbox.images.get(timeout=0.5)
            got = True
        except queue.Empty:
            got = False
        assert not got
    finally:
        b.stop()


def test_hud_is_painted_while_the_show_wants_it() -> None:
    """With the HUD on in the snapshot, backstage paints HUD pictures into the inbox."""
    inbox = Inbox()
    board = StateBoard()
    board.publish(ShowSnapshot(hud=True, fps=60.0))
    b = Backstage(make_config({"demo.interval": 0.0}), inbox, board, "http://10.0.0.2:3000")
    b.start()
    try:
        pixels = inbox.hud.get(timeout=5)
        assert pixels.ndim == 3 and pixels.shape[2] == 4 and pixels[..., 3].max() > 0
    finally:
        b.stop()


def test_hud_is_not_painted_when_hidden() -> None:
    """No HUD in the snapshot: no painting work at all."""
    inbox = Inbox()
    b = Backstage(make_config({"demo.interval": 0.0}), inbox, StateBoard())
    b.start()
    try:
        with pytest.raises(queue.Empty):
            inbox.hud.get(timeout=0.6)
    finally:
        b.stop()


def test_stop_ends_the_thread() -> None:
    """stop() returns with the backstage thread gone."""
    b = Backstage(make_config(), Inbox(), StateBoard())
    b.start()
    b.stop()
    assert not any(t.name == "backstage" and t.is_alive() for t in threading.enumerate())
    assert b.failure is None


def test_request_before_start_is_harmless() -> None:
    """A key press before the loop exists is ignored, not a crash."""
    Backstage(make_config(), Inbox(), StateBoard()).request_image()
