"""Projection mapping inside the show: [show] venue warps the screen; the outputs keep the program unwarped."""

from __future__ import annotations

from pathlib import Path

import moderngl
import numpy as np

from engine.commands import Action, Command
from engine.contract import Inbox
from engine.render.show_loop import ShowLoop
from tests.fakes import RED, assert_color, make_config, pixels, solid
from tests.test_output_hub import FakeRecorder, FakeSink

SIZE = (160, 96)
LEFT_HALF = '''
[[output]]
name = "main"
corners = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
'''


def mapped_show(ctx: moderngl.Context, venue: Path, sink: FakeSink) -> ShowLoop:
    from engine.output.hub import OutputHub

    cfg = make_config({"show.transition": 0.0, "show.fit": "cover", "show.venue": str(venue)})
    hub = OutputHub(ctx, cfg, SIZE, 60.0, sinks=[sink], recorder=FakeRecorder())
    return ShowLoop(ctx, cfg, SIZE, Inbox(), "http://x", outputs=hub, sources={})


def test_a_venue_profile_warps_the_screen_and_not_the_outputs(ctx: moderngl.Context, tmp_path: Path) -> None:
    venue = tmp_path / "venue.toml"
    venue.write_text(LEFT_HALF)
    sink = FakeSink()
    show = mapped_show(ctx, venue, sink)
    fb = ctx.framebuffer(color_attachments=[ctx.texture(SIZE, 4)])
    try:
        show.inbox.images.put(solid(RED, id="red"))
        for i in range(6):
            show.frame(i / 60, fb)
        px = pixels(fb)
        assert_color(px[:, 4:76], RED)  # the picture is pinned onto the left half of the screen
        assert px[:, 84:, :3].max() <= 2  # and nothing is drawn right of it
        assert sink.frames, "the outputs got no frame"
        sent = sink.frames[-1].pixels
        assert_color(np.ascontiguousarray(sent[..., :3]), RED)  # the outputs keep the whole program, unwarped
        show.apply(Command(Action.GRID, 1.0), 0.2)
        show.frame(7 / 60, fb)
        grid = pixels(fb)
        assert np.abs(grid[:, :80].astype(int) - px[:, :80].astype(int)).max() > 100  # the alignment grid shows
        show.apply(Command(Action.GRID, 0.0), 0.3)
        show.frame(8 / 60, fb)
        assert_color(pixels(fb)[:, 4:76], RED)
    finally:
        show.release()
        fb.release()


def test_a_bad_venue_profile_is_one_error_and_the_show_runs_unwarped(ctx: moderngl.Context, tmp_path: Path) -> None:
    venue = tmp_path / "venue.toml"
    venue.write_text(LEFT_HALF.replace("[0.0, 1.0]]", "[0.0, 1.0], [0.3, 0.3]]"))
    show = mapped_show(ctx, venue, FakeSink())
    fb = ctx.framebuffer(color_attachments=[ctx.texture(SIZE, 4)])
    try:
        assert show.screen_map.mapper is None
        assert "venue profile not used" in show.errors[-1] and "corners" in show.errors[-1]
        show.inbox.images.put(solid(RED, id="red"))
        for i in range(6):
            show.frame(i / 60, fb)
        assert_color(pixels(fb), RED)  # the whole screen: unwarped
    finally:
        show.release()
        fb.release()
