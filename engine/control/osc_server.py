"""OSC in and out, on the backstage loop (python-osc).

In: every message on ``[osc] port`` becomes a command (``osc_map``) in the show's
inbox, exactly like a key press. Out: when ``[osc] target`` is set, the engine sends
``/engine/beat`` on every beat and ``/engine/state`` once a second, so lights and
other software can follow the show. Off by default; the listener binds
``[osc] host`` (a venue usually wants the VJ laptop's LAN address, or 0.0.0.0).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import AsyncIOOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from engine.audio.live import LiveAudio
from engine.commands import Command
from engine.config import OscConfig
from engine.contract import StateBoard
from engine.control.osc_map import OscError, command_for

log = logging.getLogger(__name__)

BEAT_POLL_S = 0.005
STATE_PERIOD_S = 1.0
WARN_EVERY_S = 10.0


def parse_target(text: str) -> tuple[str, int] | None:
    """``"host:port"`` → (host, port); empty → None; anything else is a ValueError naming it."""
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"osc.target {text!r}: expected host:port, e.g. 192.168.1.50:7000")
    return host, int(port)


class OscControl:
    def __init__(self, cfg: OscConfig, commands: queue.SimpleQueue[Command], board: StateBoard,
                 live: LiveAudio | None = None) -> None:
        self.cfg = cfg
        self.commands = commands
        self.board = board
        self.live = live
        self.target = parse_target(cfg.target)
        self.received = 0
        self._transport: asyncio.BaseTransport | None = None
        self._client: SimpleUDPClient | None = None
        self._last_warning = 0.0

    async def start(self) -> None:
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._on_message)
        loop: Any = asyncio.get_running_loop()  # python-osc annotates BaseEventLoop; any running loop works
        server = AsyncIOOSCUDPServer((self.cfg.host, self.cfg.port), dispatcher, loop)
        self._transport, _ = await server.create_serve_endpoint()
        if self.target is not None:
            self._client = SimpleUDPClient(*self.target)
        log.info("OSC: listening on %s:%d%s", self.cfg.host, self.port,
                 f", sending beats to {self.target[0]}:{self.target[1]}" if self.target else "")

    @property
    def port(self) -> int:
        if self._transport is None:
            return self.cfg.port
        return int(self._transport.get_extra_info("sockname")[1])

    def _on_message(self, address: str, *args: Any) -> None:
        try:
            command = command_for(address, args)
        except OscError as err:
            now = time.monotonic()
            if now - self._last_warning > WARN_EVERY_S:  # a misconfigured controller must not flood the log
                self._last_warning = now
                log.warning("OSC: %s", err)
            return
        self.received += 1
        self.commands.put(command)

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
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._client is not None:
            self._client.close()
            self._client = None
