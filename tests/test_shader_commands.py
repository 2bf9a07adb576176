"""Effect chain, transition choice and parameters through the one command layer."""

from __future__ import annotations

from collections.abc import Iterator

import moderngl
import pytest

from engine.commands import Action, Command, command_for_key
from engine.contract import Inbox
from engine.render.show_loop import ShowLoop
from engine.shaders import chain
from tests.fakes import TEST_SHADERS, make_config, target

SIZE = (64, 36)


@pytest.fixture
def show(ctx: moderngl.Context) -> Iterator[ShowLoop]:
    cfg = make_config({"shaders.dir": str(TEST_SHADERS), "shaders.effects": ["vignette", "nope"]})
    s = ShowLoop(ctx, cfg, SIZE, Inbox(), "http://127.0.0.1:3000")
    yield s
    s.release()


def run(show: ShowLoop, *cmds: Command) -> None:
    fb = target(show.ctx, SIZE)
    for c in cmds:
        show.inbox.commands.put(c)
    show.frame(0.0, fb)
    fb.release()


def test_unknown_start_effect_is_reported_and_skipped(show: ShowLoop) -> None:
    """shaders.effects naming a missing shader: a clear error, the rest of the chain runs."""
    assert show.compositor.effects == ["vignette"]
    assert any("no effect named 'nope'" in e for e in show.errors)


def test_digit_keys_toggle_library_effects(show: ShowLoop) -> None:
    """Key N toggles the Nth effect (by name order) in the chain; 0 clears it."""
    effects = show.library.effects()
    run(show, command_for_key("_1"))  # type: ignore[arg-type]
    assert show.compositor.effects == ["vignette", effects[0]]
    run(show, command_for_key("_1"))  # type: ignore[arg-type]
    assert show.compositor.effects == ["vignette"]
    run(show, command_for_key("_0"))  # type: ignore[arg-type]
    assert show.board.read().effects == ()


def test_chain_holds_at_most_three(show: ShowLoop) -> None:
    """A fourth effect replaces the last of three."""
    run(show, *(Command(Action.EFFECT, float(i)) for i in (1, 2, 3, 4)))
    assert len(show.compositor.effects) == 3


def test_brackets_cycle_transitions_including_crossfade(show: ShowLoop) -> None:
    """] and [ step through crossfade and the library's transitions, wrapping."""
    names = ["crossfade", *show.library.transitions()]
    run(show, command_for_key("BRACKETRIGHT"))  # type: ignore[arg-type]
    assert show.compositor.transition == names[1]
    run(show, command_for_key("BRACKETLEFT"), command_for_key("BRACKETLEFT"))  # type: ignore[arg-type]
    assert show.compositor.transition == names[-1]


def test_transition_by_name_and_unknown_name(show: ShowLoop) -> None:
    """A transition can be picked by name; an unknown one is an error and changes nothing."""
    run(show, Command(Action.TRANSITION, name="wipe"))
    assert show.board.read().transition == "wipe"
    run(show, Command(Action.TRANSITION, name="nope"))
    assert show.board.read().transition == "wipe" and "no transition named 'nope'" in show.errors[-1]


def test_set_effect_slot(show: ShowLoop) -> None:
    """SET_EFFECT puts a named effect in a slot; an empty name clears it; bad slots are refused."""
    run(show, Command(Action.SET_EFFECT, name="feedback", slot=1))
    assert show.compositor.effects == ["vignette", "feedback"]
    run(show, Command(Action.SET_EFFECT, name="", slot=0))
    assert show.compositor.effects == ["feedback"]
    run(show, Command(Action.SET_EFFECT, name="vignette", slot=5))
    assert "slot 6 does not exist" in show.errors[-1]


def test_param_commands_change_values_and_the_catalog(show: ShowLoop) -> None:
    """PARAM sets a live value, visible in the published catalog; a bad value is reported."""
    run(show, Command(Action.PARAM, 0.3, name="vignette", key="amount"))
    info = {s.name: s for s in show.board.catalog()}
    assert info["vignette"].params[0].value == 0.3
    run(show, Command(Action.PARAM, 0.3, name="vignette", key="nope"))
    assert "no parameter 'nope'" in show.errors[-1]
    run(show, Command(Action.PARAM, 0.3, name="ghost", key="x"))
    assert "no shader named 'ghost'" in show.errors[-1]


def test_chain_helpers() -> None:
    """toggle, set_slot and cycle: the list logic behind the commands."""
    assert chain.toggle(["a", "b", "c"], "d") == ["a", "b", "d"]
    assert chain.set_slot(["a"], 2, "b") == ["a", "b"]
    assert chain.cycle(["x", "y", "z"], "z", 1) == "x"
    assert chain.cycle(["x", "y"], "unknown", -1) == "y"
