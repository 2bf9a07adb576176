"""The control page's messages: every field checked at the edge, with a code the page can show."""

from __future__ import annotations

import json

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
