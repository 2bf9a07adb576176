"""The OSC address space, as plain calls."""

from __future__ import annotations

import pytest

from engine.commands import Action, Command
from engine.control.osc_map import OscError, command_for


@pytest.mark.parametrize(
    ("address", "args", "expected"),
    [
        ("/engine/next", [], Command(Action.NEXT, source="osc")),
        ("/engine/blackout", [1], Command(Action.BLACKOUT, 1.0, source="osc")),
        ("/engine/blackout", [], Command(Action.BLACKOUT, None, source="osc")),
        ("/engine/freeze", [1], Command(Action.FREEZE, 1.0, source="osc")),
        ("/engine/tap", [], Command(Action.TAP, source="osc")),
        ("/engine/bpm", [128.0], Command(Action.BPM, 128.0, source="osc")),
        ("/engine/effect/1", ["kaleidoscope"], Command(Action.SET_EFFECT, name="kaleidoscope", slot=0, source="osc")),
        ("/engine/effect/3", ["none"], Command(Action.SET_EFFECT, name="", slot=2, source="osc")),
        ("/engine/effect/toggle", [4], Command(Action.EFFECT, 4.0, source="osc")),
        ("/engine/effect/clear", [], Command(Action.CLEAR_EFFECTS, source="osc")),
        ("/engine/transition", ["swirl"], Command(Action.TRANSITION, name="swirl", source="osc")),
        ("/engine/transition", [-1], Command(Action.TRANSITION, -1.0, source="osc")),
        ("/engine/param/kaleidoscope/segments", [8], Command(Action.PARAM, 8.0, name="kaleidoscope",
                                                             key="segments", source="osc")),
        ("/engine/param/ripple/center", [0.2, 0.7], Command(Action.PARAM, (0.2, 0.7), name="ripple", key="center",
                                                            source="osc")),
        ("/engine/dream/mix", [0.25], Command(Action.DREAM_MIX, 0.25, source="osc")),
        ("/engine/dream/mix", [0], Command(Action.DREAM_MIX, 0.0, source="osc")),
    ],
)
def test_addresses_map_to_commands(address: str, args: list[object], expected: Command) -> None:
    """Each documented address becomes the same command the keyboard or page would send."""
    assert command_for(address, args) == expected


@pytest.mark.parametrize(
    ("address", "args", "match"),
    [
        ("/other/next", [], "addresses start with /engine/"),
        ("/engine/warp", [], "unknown address"),
        ("/engine/effect/9", ["x"], "effect slots are 1, 2 and 3"),
        ("/engine/bpm", ["fast"], "expected a number"),
        ("/engine/param/glow", [1], "unknown address"),
        ("/engine/param/glow/intensity", [], "expected a value"),
        ("/engine/dream/mix", [], "expected the mix"),
        ("/engine/dream/mix", ["half"], "expected a number"),
        ("/engine/dream", [0.5], "unknown address"),
    ],
)
def test_bad_messages_say_why(address: str, args: list[object], match: str) -> None:
    """A message that does not fit is an OscError naming the address."""
    with pytest.raises(OscError, match=match):
        command_for(address, args)
