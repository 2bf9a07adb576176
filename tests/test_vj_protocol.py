"""The control page's messages: every field checked at the edge, with a code the page can show."""

from __future__ import annotations

import json
import re

import pytest

from engine.commands import Action, Command
from engine.control.midi_map import Control, Target
from engine.net import vj_protocol as vp


def parse(**msg: object) -> vp.VjRequest:
    return vp.parse(json.dumps(msg))


def test_commands_become_the_shared_command_layer() -> None:
    assert parse(type="command", action="next") == vp.CommandReq(Command(Action.NEXT, source="vj"))
    req = parse(type="command", action="param", name="glow", key="amount", value=0.5, ref="r1")
    assert req == vp.CommandReq(Command(Action.PARAM, 0.5, source="vj", name="glow", key="amount"), "r1")
    req = parse(type="command", action="param", name="kaleido", key="center", value=[0.2, 0.8])
    assert isinstance(req, vp.CommandReq) and req.command.value == (0.2, 0.8)
    req = parse(type="command", action="set_effect", slot=2, name="glow")
    assert isinstance(req, vp.CommandReq) and req.command.slot == 2
    req = parse(type="command", action="param", name="s", key="on", value=True)
    assert isinstance(req, vp.CommandReq) and req.command.value == 1.0
    req = parse(type="command", action="dream_mix", value=0.3)
    assert req == vp.CommandReq(Command(Action.DREAM_MIX, 0.3, source="vj"))


def test_the_dream_mix_can_be_learned_for_a_knob() -> None:
    req = parse(type="midi_learn", target={"action": "dream_mix"})
    assert isinstance(req, vp.MidiLearnReq) and req.target is not None and req.target.action == "dream_mix"
    assert (req.target.low, req.target.high) == (0.0, 1.0)


@pytest.mark.parametrize(("msg", "code", "words"), [
    ({"type": "command", "action": "quit"}, "not_allowed", "quit"),
    ({"type": "command", "action": "escape"}, "not_allowed", "escape"),
    ({"type": "command", "action": "explode"}, "bad_message", "unknown action"),
    ({"type": "command", "action": "param", "name": "glow", "key": "amount"}, "bad_message", "value"),
    ({"type": "command", "action": "param", "name": "glow", "key": "a", "value": "x"}, "bad_message", "number"),
    ({"type": "command", "action": "param", "name": "glow", "key": "a", "value": [1, 2, 3, 4, 5]}, "bad_message",
     "1 to 4"),
    ({"type": "command", "action": "set_effect", "slot": 3, "name": "glow"}, "bad_message", "slot"),
    ({"type": "approve"}, "bad_message", "id"),
    ({"type": "approve", "id": "x" * 200}, "bad_message", "id"),
    ({"type": "move", "id": "p-1", "to": -1}, "bad_message", "to"),
    ({"type": "move", "id": "p-1", "to": True}, "bad_message", "to"),
    ({"type": "reject", "id": "p-1", "reason": "r" * 300}, "bad_message", "reason"),
    ({"type": "prompt", "text": "   "}, "bad_message", "text"),
    ({"type": "prompt", "text": "x" * 501}, "bad_message", "text"),
    ({"type": "settings", "values": {"api_key": "sk-1"}}, "bad_message", "unknown setting"),
    ({"type": "settings", "values": {}}, "bad_message", "values"),
    ({"type": "midi_learn", "target": {"action": "quit"}}, "bad_message", "target.action"),
    ({"type": "midi_forget", "control": {"kind": "cc", "channel": 16, "number": 1}}, "bad_message", "channel"),
    ({"type": "hack"}, "unknown_type", "hack"),
    ({"type": "ping", "ref": "r" * 100}, "bad_message", "ref"),
])
def test_bad_messages_say_what_is_wrong(msg: dict[str, object], code: str, words: str) -> None:
    with pytest.raises(vp.VjProtocolError) as caught:
        vp.parse(json.dumps(msg))
    assert caught.value.code == code and words in caught.value.message


def test_bad_frames() -> None:
    for frame, code in (("{nope", "bad_json"), ("[1, 2]", "bad_message"), (b"\x00", "bad_message"),
                        ('{"type": "command", "action": "param", "name": "a", "key": "b", "value": NaN}',
                         "bad_message")):
        with pytest.raises(vp.VjProtocolError) as caught:
            vp.parse(frame)
        assert caught.value.code == code


def test_prompt_operations_and_the_rest() -> None:
    assert parse(type="reject", id="p-1", reason="  ") == vp.PromptOp("reject", "p-1", None)
    assert parse(type="move", id="p-1", to=3) == vp.PromptOp("move", "p-1", to=3)
    assert parse(type="ban", id="p-1", ref=7) == vp.PromptOp("ban", "p-1", ref="7")
    assert parse(type="reshow", image="p-1-1") == vp.ReshowReq("p-1-1")
    assert parse(type="prompt", text=" a comet ") == vp.VjPromptReq("a comet")
    assert parse(type="settings", values={"steps": 20}) == vp.SettingsReq({"steps": 20})
    assert parse(type="midi_learn", target={"action": "param", "shader": "glow", "param": "amount"}) \
        == vp.MidiLearnReq(Target("param", "glow", "amount"))
    assert parse(type="midi_learn", target={"action": "blackout"}) == vp.MidiLearnReq(Target("blackout"))
    assert parse(type="midi_learn", target=None) == vp.MidiLearnReq(None)
    assert parse(type="midi_forget", control={"kind": "note", "channel": 0, "number": 36}) \
        == vp.MidiForgetReq(Control("note", 0, 36))
    assert parse(type="preview", on=False) == vp.PreviewReq(False)


def test_outgoing_messages_are_compact_json() -> None:
    assert json.loads(vp.ack("r", id="p-1")) == {"type": "ack", "ref": "r", "id": "p-1"}
    assert json.loads(vp.error("not_found", "No such prompt", "r")) == {
        "type": "error", "code": "not_found", "message": "No such prompt", "ref": "r"}
    assert json.loads(vp.message("show", size=(1, 2), fps=float("inf"))) == {"type": "show", "size": [1, 2],
                                                                             "fps": None}


def test_ban_address_names_a_prompt_not_an_address() -> None:
    """The page bans an address by one of its prompts: it never sees addresses or client ids."""
    assert parse(type="ban_address", id="p-1", ref="r2") == vp.PromptOp("ban_address", "p-1", ref="r2")
    with pytest.raises(vp.VjProtocolError, match="id"):
        parse(type="ban_address", ip="1.2.3.4")


@pytest.mark.parametrize(("key", "value"), [
    ("corners", [0.1, 0.0, 0.9, 0.0, 1.0, 1.0, 0.0, 1.0]),
    ("mesh", []),
    ("mesh", [3, 3]),
    ("mesh", [16, 16, *[0.5] * 512]),
    ("point", [4, 0.6, 0.45]),
    ("masks", []),
    ("masks", [4, 0.4, 0.4, 0.6, 0.4, 0.6, 0.6, 0.4, 0.6, 3, 0, 0, 0.2, 0, 0, 0.2]),
])
def test_mapping_commands_carry_each_edit_of_any_output(key: str, value: list[float]) -> None:
    """corners, a whole mesh up to 16x16, one mesh point, the masks; for the output named."""
    req = parse(type="command", action="mapping", name="side", key=key, value=value)
    assert req == vp.CommandReq(Command(Action.MAPPING, tuple(float(v) for v in value), source="vj", name="side",
                                        key=key))


def test_a_mapping_without_a_value_removes_a_mesh() -> None:
    """No value is an empty one: mesh [] and no value mean the same."""
    req = parse(type="command", action="mapping", key="mesh")
    assert req == vp.CommandReq(Command(Action.MAPPING, None, source="vj", key="mesh"))


@pytest.mark.parametrize(("key", "value", "words"), [
    ("corners", [0.0] * 6, "mapping corners: expected 8 numbers"),
    ("corners", [], "mapping corners: expected 8 numbers"),
    ("mesh", [17, 17], "mapping mesh: cols and rows: whole numbers from 2 to 16"),
    ("mesh", [3, 3, 0.5, 0.5], "mapping mesh: expected [cols, rows] or 9 points for 3x3"),
    ("mesh", [16, 16, *[0.5] * 513], "value: a list of 0 to 514 numbers"),
    ("point", [4, 0.5], "mapping point: expected [index, x, y]"),
    ("point", [1.5, 0.5, 0.5], "mapping point: index: a whole number"),
    ("masks", [2, 0, 0, 1, 1], "mapping masks: mask 1: a vertex count of 3 to 256"),
    ("masks", [4, 0, 0, 1, 0, 1, 1], "mapping masks: mask 1: expected 4 points"),
    ("blend", [0.1], "mapping blend: unknown key 'blend'"),
    ("", [0.1], "mapping: unknown key ''"),
])
def test_a_mapping_of_the_wrong_shape_is_refused_at_the_edge(key: str, value: list[float], words: str) -> None:
    """Each key's exact shape is checked before the show sees it, with the problem in words."""
    with pytest.raises(vp.VjProtocolError, match=re.escape(words)) as err:
        parse(type="command", action="mapping", name="main", key=key, value=value)
    assert err.value.code == "bad_message"


def test_other_commands_keep_their_four_numbers() -> None:
    """The mapping's long lists are for the mapping only."""
    with pytest.raises(vp.VjProtocolError, match="1 to 4 numbers"):
        parse(type="command", action="param", name="s", key="k", value=[0.0] * 8)
    with pytest.raises(vp.VjProtocolError, match="1 to 4 numbers"):
        parse(type="command", action="param", name="s", key="k", value=[])
