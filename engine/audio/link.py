"""Follow Ableton Link: the DJ's tempo and beat drive the show's beat clock.

Off by default: Link discovers its peers by multicast on every network interface
(``[audio] link = true`` or ``--link`` turns it on). The aalink binding needs an
asyncio loop, so this runs as a task on the backstage loop; it only forwards the
session's tempo and beat to the audio thread (``LiveAudio``) as a lock and a
resync, the same commands tap tempo uses.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, Protocol

log = logging.getLogger(__name__)

POLL_S = 0.02


class TempoHand(Protocol):
    def lock_bpm(self, bpm: float | None) -> None: ...

    def resync(self, at: float | None = None) -> None: ...


class LinkFollower:
    """Pure logic: given Link's tempo and beat position now, what to tell the beat clock."""

    def __init__(self, hand: TempoHand, clock: Any = time.monotonic) -> None:
        self.hand = hand
        self.clock = clock
        self.bpm: float | None = None
        self._beat: int | None = None

    def update(self, peers: int, tempo: float, beat: float) -> None:
        if peers <= 0:
            if self.bpm is not None:
                log.info("Link: no peers left; back to the music's own tempo")
                self.hand.lock_bpm(None)
                self.bpm, self._beat = None, None
            return
        if self.bpm is None or abs(tempo - self.bpm) > 0.01:
            if self.bpm is None:
                log.info("Link: following the session at %.2f bpm", tempo)
            self.bpm = tempo
            self.hand.lock_bpm(tempo)
        whole = math.floor(beat)
        if whole != self._beat:
            self._beat = whole
            # The beat fell (beat - whole) beats ago: put the resync at that moment, not at the poll.
            self.hand.resync(self.clock() - (beat - whole) * 60.0 / tempo)


async def follow_link(hand: TempoHand, quantum: float = 4.0) -> None:
    """Join the Link session and keep the beat clock on it until cancelled."""
    try:
        from aalink import Link
    except ImportError as err:
        log.warning("Link: the aalink package is not installed (%s); Link sync is off", err)
        return
    link = Link(120.0)
    link.quantum = quantum
    link.enabled = True
    follower = LinkFollower(hand)
    log.info("Link: enabled, looking for peers")
    try:
        while True:
            follower.update(int(link.num_peers), float(link.tempo), float(link.beat))
            await asyncio.sleep(POLL_S)
    finally:
        link.enabled = False
