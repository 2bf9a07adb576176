"""MIDI learn from the control page: click a parameter, move a knob on a real (JACK) port, it is mapped."""

from __future__ import annotations

import asyncio
import json
import queue
from collections.abc import Iterator
from pathlib import Path

import mido
import pytest

from engine.backstage import Backstage
from engine.commands import Action
from engine.contract import Inbox, ParamInfo, ShaderInfo, StateBoard
from tests.engine_process import free_port
from tests.fakes import make_config
from tests.test_midi_input import JACK, jack  # noqa: F401  (the module's private JACK server)
from tests.test_vj_server import TOKEN, page

CONTROLLER = "stagecraft-vj-knobs"
GLOW = ShaderInfo("glow", "effect", "shaders/effects/glow.fs", "", (
    ParamInfo("amount", "float", "Amount", 0.5, 0.0, 2.0, (), (), 0.5),), None)


@pytest.fixture
def rig(jack: str, tmp_path: Path) -> Iterator[tuple[Backstage, object, Path]]:  # noqa: F811
    controller = mido.Backend(JACK, load=True).open_output(CONTROLLER, virtual=True)
    board = StateBoard()
    board.publish_catalog((GLOW,))
    map_file = tmp_path / "midi-map.json"
    cfg = make_config({"server.host": "127.0.0.1", "server.port": free_port(), "generation.backend": "procedural",
                       "vj.token": TOKEN, "midi.input": CONTROLLER, "midi.backend": JACK,
                       "midi.map_file": str(map_file)})
    b = Backstage(cfg, Inbox(), board, "http://127.0.0.1")
    b.start()
    try:
        yield b, controller, map_file
    finally:
        b.stop()
        controller.close()


def test_learn_a_knob_from_the_page_then_it_drives_the_parameter(rig: tuple[Backstage, object, Path]) -> None:
    b, controller, map_file = rig
    send = controller.send  # type: ignore[attr-defined]

    async def go() -> None:
        async with page(b) as p:
            await p.until(lambda: p.parts["midi"]["available"])
            assert CONTROLLER in " ".join(p.parts["midi"]["ports"])
            ack = await p.ask(type="midi_learn", target={"action": "param", "shader": "glow", "param": "amount"})
            assert ack["type"] == "ack"
            await p.until(lambda: p.parts["midi"]["learning"] is not None)
            send(mido.Message("control_change", channel=2, control=21, value=90))
            await p.until(lambda: bool(p.parts["midi"]["mappings"]))
            assert p.parts["midi"]["learning"] is None
            mapping = p.parts["midi"]["mappings"][0]
            assert mapping["control"] == {"kind": "cc", "channel": 2, "number": 21}
            assert mapping["target"] == {"action": "param", "shader": "glow", "param": "amount", "low": 0.0,
                                         "high": 2.0}
            send(mido.Message("control_change", channel=2, control=21, value=127))
            cmd = await asyncio.to_thread(b.inbox.commands.get, True, 5.0)
            assert (cmd.action, cmd.name, cmd.key, cmd.value, cmd.source) == (Action.PARAM, "glow", "amount",
                                                                               2.0, "midi")
            saved = json.loads(map_file.read_text())
            assert saved[0]["control"]["number"] == 21
            bad = await p.ask(type="midi_learn", target={"action": "param", "shader": "glow", "param": "nope"})
            assert bad["code"] == "not_found"
            await p.ask(type="midi_forget", control={"kind": "cc", "channel": 2, "number": 21})
            await p.until(lambda: p.parts["midi"]["mappings"] == [])
            send(mido.Message("control_change", channel=2, control=21, value=10))
            await asyncio.sleep(0.3)
            with pytest.raises(queue.Empty):
                b.inbox.commands.get_nowait()

    asyncio.run(go())
