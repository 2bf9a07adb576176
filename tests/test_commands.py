"""Key bindings and toggles of the command layer."""

from __future__ import annotations

import pytest

from engine.commands import Action, command_for_key, toggled


@pytest.mark.parametrize(
    ("key", "action"),
    [
        ("F", Action.FULLSCREEN),
        ("H", Action.HUD),
        ("SPACE", Action.NEXT),
        ("B", Action.BLACKOUT),
        ("Q", Action.QUIT),
        ("ESCAPE", Action.ESCAPE),
        ("f", Action.FULLSCREEN),
    ],
)
def test_keys_map_to_actions(key: str, action: Action) -> None:
    """Each documented key produces its command, from the keyboard."""
    cmd = command_for_key(key)
    assert cmd is not None and cmd.action is action and cmd.source == "keyboard"


def test_unbound_key_is_ignored() -> None:
    """Keys without a binding produce no command."""
    assert command_for_key("Z") is None


@pytest.mark.parametrize(("current", "value", "expected"), [(False, None, True), (True, None, False),
                                                           (True, 1.0, True), (False, 0.0, False)])
def test_toggled(current: bool, value: float | None, expected: bool) -> None:
    """No value flips a toggle; 1/0 set it."""
    assert toggled(current, value) is expected
