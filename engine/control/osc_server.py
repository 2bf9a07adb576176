"""OSC in and out, on the backstage loop (python-osc reads and writes the wire format).

In: every message on ``[osc] port`` becomes a command (``osc_map``) in the show's
inbox, exactly like a key press. Out: when ``[osc] target`` is set, the engine sends
``/engine/beat`` on every beat and ``/engine/state`` once a second, so lights and
other software can follow the show. Off by default; the listener binds
``[osc] host`` (a venue usually wants the VJ laptop's LAN address, or 0.0.0.0).

OSC has no authentication, so the source address is the gate: only ``[osc] allow``
(this machine alone when it is empty) may drive the show. Packets from elsewhere
are dropped and counted, with a warning per source a minute at most. Nothing a
sender does writes the log for it: a packet that means nothing (python-osc's own
complaints included, one per bad element) is at most a line per source every few
seconds, with a count of the lines held back.

Bundle time tags are not honoured: every message acts when it arrives. (python-osc's
dispatcher sleeps on the event loop until a future time tag, which one packet could
set to next year.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import queue
import time
from collections.abc import Callable
from typing import Any

import pythonosc
from pythonosc.osc_packet import OscPacket
from pythonosc.udp_client import SimpleUDPClient

from engine.audio.live import LiveAudio
from engine.commands import Command
from engine.config import IpNetwork, OscConfig
from engine.contract import StateBoard
from engine.control.osc_map import OscError, command_for
from engine.logs import LogThrottle, held_back

log = logging.getLogger(__name__)

BEAT_POLL_S = 0.005
STATE_PERIOD_S = 1.0
DROP_WARN_EVERY_S = 60.0  # a stranger's packets: a warning per source a minute
FAULT_WARN_EVERY_S = 5.0  # packets that mean nothing: a line per source every few seconds
LOOPBACK: tuple[IpNetwork, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_PYTHONOSC_DIR = os.path.dirname(pythonosc.__file__) + os.sep


def parse_target(text: str) -> tuple[str, int] | None:
    """``"host:port"`` → (host, port); empty → None; anything else is a ValueError naming it."""
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"osc.target {text!r}: expected host:port, e.g. 192.168.1.50:7000")
    return host, int(port)


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` keeps the listener on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SourceFilter:
    """Who may drive the show over OSC: the allowed networks, or this machine alone."""

    def __init__(self, networks: tuple[IpNetwork, ...]) -> None:
        self.networks = networks or LOOPBACK

    def admits(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host.partition("%")[0])  # an IPv6 source may carry its interface
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # an IPv4 sender seen through a dual-stack socket
        return any(ip in net for net in self.networks)


class _LibraryLines(logging.Filter):
    """python-osc's complaints, kept out of the log and counted.

    python-osc logs what it cannot parse on the root logger, one line per bad element: an 8 KB
    bundle wrote 2,000 lines. On the root logger while the listener runs, this filter holds those
    lines back so the listener can report them once, with the packet's source, throttled.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.first = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.pathname.startswith(_PYTHONOSC_DIR):
            return True
        if not self.count:
            self.first = record.getMessage()[:120]
        self.count += 1
        return False

    def take(self) -> tuple[int, str]:
        taken = self.count, self.first
        self.count, self.first = 0, ""
        return taken


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, on_packet: Callable[[bytes, str], None]) -> None:
        self.on_packet = on_packet

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.on_packet(data, str(addr[0]))


class OscControl:
    def __init__(self, cfg: OscConfig, commands: queue.SimpleQueue[Command], board: StateBoard,
                 live: LiveAudio | None = None) -> None:
        self.cfg = cfg
        self.commands = commands
        self.board = board
        self.live = live
        self.target = parse_target(cfg.target)
        self.sources = SourceFilter(cfg.networks())
        self.received = 0  # commands taken
        self.dropped = 0  # packets from sources [osc] allow does not list
        self.malformed = 0  # packets and messages that meant nothing
        self._transport: asyncio.BaseTransport | None = None
        self._client: SimpleUDPClient | None = None
        self._drops = LogThrottle(DROP_WARN_EVERY_S)
        self._faults = LogThrottle(FAULT_WARN_EVERY_S)
        self._library = _LibraryLines()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self._on_packet), local_addr=(self.cfg.host, self.cfg.port))
        if self.target is not None:
            self._client = SimpleUDPClient(*self.target)
        logging.getLogger().addFilter(self._library)  # removed by stop()
        if not self.cfg.allow and not is_loopback_host(self.cfg.host):
            log.warning("OSC: listening on %s, but [osc] allow is empty: only this machine may send. Allow your "
                        "controllers, e.g. --set 'osc.allow=[\"192.168.1.0/24\"]' (docs/osc.md)", self.cfg.host)
        allowed = ", ".join(map(str, self.sources.networks)) if self.cfg.allow else "this machine"
        log.info("OSC: listening on %s:%d (from %s)%s", self.cfg.host, self.port, allowed,
                 f", sending beats to {self.target[0]}:{self.target[1]}" if self.target else "")

    @property
    def port(self) -> int:
        if self._transport is None:
            return self.cfg.port
        return int(self._transport.get_extra_info("sockname")[1])

    def _on_packet(self, data: bytes, source: str) -> None:
        """One datagram: dropped unless its source is allowed, else each message in it to a command."""
        if not self.sources.admits(source):
            self.dropped += 1
            held = self._drops.admit(source)
            if held is not None:
                log.warning("OSC: dropped a packet from %s, which [osc] allow does not list%s",
                            source, held_back(held))
            return
        try:
            messages = [timed.message for timed in OscPacket(data).messages]
        except Exception as err:  # whatever the bytes do to the parser (a deep bundle: RecursionError)
            self._library.take()
            self._fault(source, f"unreadable packet of {len(data)} bytes ({type(err).__name__}: {str(err)[:120]})")
            return
        complaints, first = self._library.take()
        if complaints:
            self._fault(source, f"{complaints} unreadable parts in a packet of {len(data)} bytes (python-osc: {first})")
        for message in messages:
            try:
                command = command_for(message.address, message.params)
            except OscError as err:
                self._fault(source, str(err))
                continue
            self.received += 1
            self.commands.put(command)

    def _fault(self, source: str, text: str) -> None:
        self.malformed += 1
        held = self._faults.admit(source)
        if held is not None:  # a misconfigured controller, or a hostile one, must not flood the log
            shown = "".join(c if c.isprintable() else "?" for c in text[:300])  # no forged lines either
            log.warning("OSC from %s: %s%s", source, shown, held_back(held))

    async def run_feed(self) -> None:
        """Beats and state out to the target, for as long as the show runs."""
        if self._client is None:
            return
        beats_seen = 0
        next_state = time.monotonic()
        while True:
            await asyncio.sleep(BEAT_POLL_S)
            if self.live is not None:
                heard = self.live.latest()
                if heard.beats > beats_seen and heard.features is not None:
                    f = heard.features
                    self._send("/engine/beat", [heard.beats, float(heard.locked_bpm or f.bpm), int(f.bar_beat)])
                beats_seen = heard.beats
            if time.monotonic() >= next_state:
                next_state += STATE_PERIOD_S
                s = self.board.read()
                self._send("/engine/state", [s.current_id or "", " > ".join(s.effects), s.transition,
                                             int(s.blackout), float(s.fps)])

    def _send(self, address: str, args: list[Any]) -> None:
        assert self._client is not None
        try:
            self._client.send_message(address, args)
        except OSError as err:  # the lights desk is off: never our problem
            log.debug("OSC: cannot send %s: %s", address, err)

    def stop(self) -> None:
        logging.getLogger().removeFilter(self._library)
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._client is not None:
            self._client.close()
            self._client = None
