"""OSC over a real UDP socket on loopback: control in, beats and state out."""

from __future__ import annotations

import asyncio
import queue
import socket

import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.udp_client import SimpleUDPClient

from engine.commands import Action, Command
from engine.config import OscConfig
from engine.contract import ShowSnapshot, StateBoard
from engine.control.osc_server import OscControl, parse_target


def test_messages_become_commands_and_junk_is_ignored() -> None:
    """A controller's message lands in the show's inbox as a command; an unknown address is dropped."""
    commands: queue.SimpleQueue[Command] = queue.SimpleQueue()

    async def scenario() -> None:
        osc = OscControl(OscConfig(enabled=True, host="127.0.0.1", port=0), commands, StateBoard())
        await osc.start()
        try:
            client = SimpleUDPClient("127.0.0.1", osc.port)
            try:
                client.send_message("/engine/warp", [1])
                client.send_message("/engine/blackout", [1])
                client.send_message("/engine/param/glow/intensity", [0.8])
                for _ in range(100):
                    if osc.received == 2:
                        break
                    await asyncio.sleep(0.01)
            finally:
                client.close()
        finally:
            osc.stop()

    asyncio.run(scenario())
    got = [commands.get_nowait() for _ in range(commands.qsize())]
    assert got == [Command(Action.BLACKOUT, 1.0, source="osc"),
                   Command(Action.PARAM, pytest.approx(0.8), name="glow", key="intensity", source="osc")]


def test_state_goes_out_to_the_target() -> None:
    """With a target set, /engine/state reaches it with what is on screen."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(5)
    board = StateBoard()
    board.publish(ShowSnapshot(current_id="p-1-1", effects=("glow",), transition="swirl", fps=60.0))

    async def scenario() -> None:
        cfg = OscConfig(enabled=True, host="127.0.0.1", port=0, target=f"127.0.0.1:{listener.getsockname()[1]}")
        osc = OscControl(cfg, queue.SimpleQueue(), board)
        await osc.start()
        feed = asyncio.create_task(osc.run_feed())
        try:
            data = await asyncio.to_thread(listener.recv, 4096)
        finally:
            feed.cancel()
            await asyncio.gather(feed, return_exceptions=True)
            osc.stop()
        msg = OscMessage(data)
        assert msg.address == "/engine/state"
        assert msg.params[:3] == ["p-1-1", "glow", "swirl"]

    try:
        asyncio.run(scenario())
    finally:
        listener.close()


@pytest.mark.parametrize(("text", "expected"), [("", None), ("10.0.0.5:7000", ("10.0.0.5", 7000))])
def test_targets(text: str, expected: tuple[str, int] | None) -> None:
    """host:port is parsed; empty means no feed."""
    assert parse_target(text) == expected


def test_bad_target_names_the_key() -> None:
    """A malformed target is a clear error."""
    with pytest.raises(ValueError, match=r"osc.target 'lights': expected host:port"):
        parse_target("lights")
