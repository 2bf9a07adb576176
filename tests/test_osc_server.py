"""OSC over a real UDP socket on loopback: control in, beats and state out."""

from __future__ import annotations

import asyncio
import logging
import queue
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from engine.commands import Action, Command
from engine.config import OscConfig
from engine.contract import ShowSnapshot, StateBoard
from engine.control import osc_server
from engine.control.osc_server import OscControl, SourceFilter, parse_target

NTP_EPOCH = 2208988800  # seconds from 1900 (OSC time tags) to 1970


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


def test_the_dream_mix_arrives_as_a_command() -> None:
    """/engine/dream/mix 0.25 over UDP: the dream layer's mix, in the show's inbox like any other control."""
    commands: queue.SimpleQueue[Command] = queue.SimpleQueue()

    async def scenario() -> None:
        osc = OscControl(OscConfig(enabled=True, host="127.0.0.1", port=0), commands, StateBoard())
        await osc.start()
        try:
            client = SimpleUDPClient("127.0.0.1", osc.port)
            try:
                client.send_message("/engine/dream/mix", [0.25])
                for _ in range(100):
                    if osc.received == 1:
                        break
                    await asyncio.sleep(0.01)
            finally:
                client.close()
        finally:
            osc.stop()

    asyncio.run(scenario())
    assert commands.get_nowait() == Command(Action.DREAM_MIX, 0.25, source="osc")


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


# --- who may send, and what a hostile sender can do to the log -------------------------------------------
def dgram(address: str, *args: Any) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def bundle(*contents: bytes, at: float | None = None) -> bytes:
    """An OSC bundle around raw elements; ``at`` (Unix time) or immediately."""
    tag = struct.pack(">Q", int((at + NTP_EPOCH) * 2**32)) if at is not None else struct.pack(">Q", 1)
    return b"#bundle\0" + tag + b"".join(struct.pack(">i", len(c)) + c for c in contents)


@asynccontextmanager
async def listening(commands: queue.SimpleQueue[Command], **cfg: Any) -> AsyncIterator[OscControl]:
    osc = OscControl(OscConfig(enabled=True, **{"host": "127.0.0.1", "port": 0, **cfg}), commands, StateBoard())
    await osc.start()
    try:
        yield osc
    finally:
        osc.stop()


async def until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


def send_from(local: str, port: int, *packets: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((local, 0))
        for packet in packets:
            sock.sendto(packet, ("127.0.0.1", port))


def osc_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_allowed_source_drives_the_show() -> None:
    """A packet from an address [osc] allow lists becomes a command."""
    commands: queue.SimpleQueue[Command] = queue.SimpleQueue()

    async def scenario() -> None:
        async with listening(commands, allow=("127.0.0.1/32",)) as osc:
            send_from("127.0.0.1", osc.port, dgram("/engine/next"))
            await until(lambda: osc.received == 1, "the allowed packet was not taken")

    asyncio.run(scenario())
    assert commands.get_nowait() == Command(Action.NEXT, source="osc")


def test_a_source_not_allowed_is_dropped_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    """Five packets from 127.0.0.2 with only 127.0.0.1/32 allowed: no command, five drops, one warning."""
    commands: queue.SimpleQueue[Command] = queue.SimpleQueue()

    async def scenario() -> None:
        async with listening(commands, allow=("127.0.0.1/32",)) as osc:
            send_from("127.0.0.2", osc.port, *[dgram("/engine/blackout", 1)] * 5)
            await until(lambda: osc.dropped == 5, "the stranger's packets were not all seen")
            assert osc.received == 0

    caplog.set_level(logging.INFO)
    asyncio.run(scenario())
    assert commands.empty()
    dropped = [w for w in osc_warnings(caplog) if "127.0.0.2" in w]
    assert dropped == ["OSC: dropped a packet from 127.0.0.2, which [osc] allow does not list"]


def test_an_empty_allowlist_means_this_machine_only() -> None:
    """Without [osc] allow, loopback is served and another source is not."""
    sources = SourceFilter(OscConfig().networks())
    assert sources.admits("127.0.0.1") and sources.admits("::1")
    assert not sources.admits("192.168.1.20")


@pytest.mark.parametrize(("source", "admitted"), [
    ("192.168.1.20", True), ("192.168.2.20", False), ("::ffff:192.168.1.20", True), ("fd00::7", True),
    ("fe80::1%eth0", False), ("127.0.0.1", False), ("not-an-address", False),
])
def test_allowed_networks_admit_their_addresses(source: str, admitted: bool) -> None:
    """IPv4 and IPv6 networks; an IPv4 sender seen through a dual-stack socket counts as itself."""
    sources = SourceFilter(OscConfig(allow=("192.168.1.0/24", "fd00::/8")).networks())
    assert sources.admits(source) is admitted


def test_a_lan_host_without_an_allowlist_warns_at_start(caplog: pytest.LogCaptureFixture) -> None:
    """Listening on 0.0.0.0 with [osc] allow empty starts, with one warning that says how to allow."""
    async def scenario() -> None:
        async with listening(queue.SimpleQueue(), host="0.0.0.0"):
            pass

    asyncio.run(scenario())
    [warning] = osc_warnings(caplog)
    assert "[osc] allow is empty: only this machine may send" in warning and "osc.allow=" in warning


def test_a_lan_host_with_an_allowlist_starts_quietly(caplog: pytest.LogCaptureFixture) -> None:
    """With [osc] allow set, binding the LAN is what the VJ asked for."""
    async def scenario() -> None:
        async with listening(queue.SimpleQueue(), host="0.0.0.0", allow=("192.168.1.0/24",)):
            pass

    asyncio.run(scenario())
    assert osc_warnings(caplog) == []


def test_a_malformed_8kb_bundle_writes_a_handful_of_lines(caplog: pytest.LogCaptureFixture) -> None:
    """2,000 bad elements, three times over: python-osc's complaints and ours make one line, not 6,000."""
    junk = bundle(*[b""] * 2040)
    assert len(junk) > 8000

    async def scenario() -> None:
        async with listening(queue.SimpleQueue()) as osc:
            send_from("127.0.0.1", osc.port, junk, junk, junk)
            await until(lambda: osc.malformed == 3, "the bundles were not all read")

    caplog.set_level(logging.DEBUG)
    asyncio.run(scenario())
    [line] = osc_warnings(caplog)
    assert line.startswith("OSC from 127.0.0.1: 2040 unreadable parts in a packet of")


def test_lines_held_back_are_counted_in_the_next_one(caplog: pytest.LogCaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """After the quiet spell, the next line from that source says how many were not written."""
    monkeypatch.setattr(osc_server, "FAULT_WARN_EVERY_S", 0.2)

    async def scenario() -> None:
        async with listening(queue.SimpleQueue()) as osc:
            send_from("127.0.0.1", osc.port, *[dgram("/engine/warp")] * 4)
            await until(lambda: osc.malformed == 4, "the packets were not all read")
            await asyncio.sleep(0.25)
            caplog.clear()
            send_from("127.0.0.1", osc.port, dgram("/engine/warp"))
            await until(lambda: osc.malformed == 5, "the last packet was not read")

    asyncio.run(scenario())
    assert osc_warnings(caplog) == ["OSC from 127.0.0.1: /engine/warp: unknown address (see docs/osc.md) "
                                    "(3 more like this not logged)"]


def test_a_deeply_nested_bundle_is_dropped_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """3,000 bundles inside each other overflow python-osc's recursion: one line, and the listener goes on."""
    nested = dgram("/engine/next")
    for _ in range(3000):
        nested = bundle(nested)
    commands: queue.SimpleQueue[Command] = queue.SimpleQueue()

    async def scenario() -> None:
        async with listening(commands) as osc:
            send_from("127.0.0.1", osc.port, nested, dgram("/engine/tap"))
            await until(lambda: osc.received == 1, "the listener stopped after the nested bundle")
            assert osc.malformed == 1

    asyncio.run(scenario())
    assert commands.get_nowait() == Command(Action.TAP, source="osc")
    [line] = osc_warnings(caplog)
    assert "unreadable packet" in line and "RecursionError" in line


def test_a_bundle_timed_next_year_acts_at_once() -> None:
    """Time tags are not honoured: a far-future bundle never stalls the loop (python-osc's dispatcher slept)."""
    commands: queue.SimpleQueue[Command] = queue.SimpleQueue()

    async def scenario() -> None:
        async with listening(commands) as osc:
            send_from("127.0.0.1", osc.port, bundle(dgram("/engine/next"), at=time.time() + 365 * 86400))
            await until(lambda: osc.received == 1, "the timed bundle was not taken", timeout=2.0)

    asyncio.run(scenario())
    assert commands.get_nowait() == Command(Action.NEXT, source="osc")
