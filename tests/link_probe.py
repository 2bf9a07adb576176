"""Run inside a loopback-only network namespace: a 'DJ' Link peer changes tempo; does the engine follow?"""

from __future__ import annotations

import asyncio
import sys

from aalink import Link

from engine.audio.link import follow_link


class Recorder:
    def __init__(self) -> None:
        self.locks: list[float | None] = []
        self.resyncs = 0

    def lock_bpm(self, bpm: float | None) -> None:
        self.locks.append(bpm)

    def resync(self, at: float | None = None) -> None:
        self.resyncs += 1


async def main() -> int:
    hand = Recorder()
    dj = Link(120.0)
    dj.enabled = True
    task = asyncio.create_task(follow_link(hand))
    try:
        for _ in range(100):  # up to 10 s for the peers to find each other
            await asyncio.sleep(0.1)
            if hand.locks:
                break
        dj.tempo = 133.0
        for _ in range(50):
            await asyncio.sleep(0.1)
            if hand.locks and hand.locks[-1] is not None and abs(hand.locks[-1] - 133.0) < 0.05:
                break
        await asyncio.sleep(1.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        dj.enabled = False
    print(f"locks={[round(b, 2) if b else b for b in hand.locks][-3:]} resyncs={hand.resyncs}")
    return 0


sys.exit(asyncio.run(main()))
