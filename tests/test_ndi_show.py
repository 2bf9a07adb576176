"""NDI through the whole show: the compositor's frame out through [output] ndi, and an NDI sender in as a layer.

Like tests/test_ndi.py, the sending side runs in a child inside a loopback-only network namespace; the
``child_*`` functions are that child, each printing one JSON line for the test to check.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from engine.contract import Inbox, ShowImage
from engine.render.gl import standalone_context
from engine.render.show_loop import ShowLoop, read_rgb
from tests.fakes import make_config
from tests.netns import run_json_in_netns
from tests.test_ndi import CardSender, ProbeReceiver, assert_same_picture, compare, make_picture, opaque

SIZE = (1280, 720)
FRAME_DT = 1 / 60


def _show(overrides: dict[str, Any]) -> tuple[Any, Any, ShowLoop, Inbox]:
    ctx = standalone_context()
    fb = ctx.framebuffer(color_attachments=[ctx.texture(SIZE, 4)])
    cfg = make_config({"show.transition": 0.0, "show.fit": "cover", "render.max_image_size": 2048, **overrides})
    inbox = Inbox()
    return ctx, fb, ShowLoop(ctx, cfg, SIZE, inbox, "http://x"), inbox


def child_program_out() -> None:
    """The show draws a test card; [output] ndi sends it; a plain NDI receiver compares with the drawn frame."""
    ctx, fb, show, inbox = _show({"output.ndi": "Stagecraft show"})
    clock = [0.0]

    def tick() -> None:
        show.frame(clock[0], fb)
        clock[0] += FRAME_DT

    out: dict[str, Any] = {}
    probe = ProbeReceiver("Stagecraft show")
    try:
        inbox.images.put(ShowImage("card", opaque(make_picture(*SIZE))))
        while show.director.current is None and clock[0] < 2.0:
            tick()
        if not probe.connect(tick):
            out["error"] = "the show's NDI source was never found"
        else:
            got = probe.next_of_size(SIZE, tick)
            drawn = np.dstack([read_rgb(fb, SIZE), np.full((SIZE[1], SIZE[0]), 255, np.uint8)])
            out = {"picture": compare(got, drawn)} if got is not None else {"error": "no frame arrived"}
            state = next(s for s in show.board.read().outputs if s.name == "ndi")
            out.update(state=state.state, receivers=state.receivers, detail=state.detail)
    finally:
        probe.close()
        show.release()
        ctx.release()
    print(json.dumps(out))


def child_ndi_in_as_layer() -> None:
    """An NDI sender's picture, picked as the live input, is what the show draws."""
    card = opaque(make_picture(*SIZE))
    sender = CardSender("Stagecraft cam", card)
    ctx, fb, show, _ = _show({"input.ndi": "Stagecraft cam"})
    from engine.commands import Action, Command

    out: dict[str, Any] = {}
    try:
        show.apply(Command(Action.INPUT, name="ndi"), 0.0)
        t = 0.0
        while t < 10.0:
            show.frame(t, fb)
            t += FRAME_DT
            if show.director.current is not None and show.director.current.id.startswith("live:"):
                show.frame(t, fb)
                break
        drawn = np.dstack([read_rgb(fb, SIZE), np.full((SIZE[1], SIZE[0]), 255, np.uint8)])
        out = {"picture": compare(drawn, card), "current": show.director.current.id if show.director.current else None,
               "input": [s.state for s in show.board.read().inputs]}
    finally:
        show.release()
        sender.close()
        ctx.release()
    print(json.dumps(out))


def test_the_program_out_over_ndi_matches_the_compositors_frame() -> None:
    out = run_json_in_netns("from tests.test_ndi_show import child_program_out; child_program_out()", timeout=120)
    assert "error" not in out, out
    assert_same_picture(out["picture"])  # mean abs diff under 2/255 at full size (1280x720)
    assert out["state"] == "on" and out["receivers"] >= 1, out
    assert "Stagecraft show" in out["detail"]


def test_an_ndi_sender_feeds_the_live_input_layer() -> None:
    out = run_json_in_netns("from tests.test_ndi_show import child_ndi_in_as_layer; child_ndi_in_as_layer()",
                            timeout=120)
    assert out["current"] and out["current"].startswith("live:ndi"), out
    assert_same_picture(out["picture"])
    assert out["input"] == ["on"]
