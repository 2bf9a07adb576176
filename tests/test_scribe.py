"""The scribe: journal writes off the loop, statuses only once committed, and in the ledger's order."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from engine.backstage.scribe import Scribe
from engine.contract import State
from engine.gen.base import GeneratedImage
from engine.ledger import RecordPrompt, SetState, Step
from engine.net.audience import Outbox
from engine.net.protocol import PromptStatus
from engine.store import Journal


def status(pid: str, state: State = State.QUEUED) -> tuple[str, PromptStatus]:
    return ("phone-1", PromptStatus(pid, "text", state))


class Rig:
    def __init__(self, journal: Journal | None) -> None:
        self.delivered: list[tuple[str, State, bool]] = []  # (prompt id, state, in the journal when delivered)
        self.reports: list[str] = []
        self.pool = ThreadPoolExecutor(1)
        self.journal = journal
        self.scribe = Scribe(journal, self.deliver, self.reports.append, self.pool)

    def deliver(self, out: Outbox) -> None:
        for _c, s in out:
            known = self.journal is not None and self.journal.prompt(s.id) is not None
            self.delivered.append((s.id, s.state, known))

    def run(self, steps: list[Step], until: int) -> None:
        async def main() -> None:
            for step in steps:
                self.scribe.apply(step)
            while len(self.delivered) < until:
                await asyncio.sleep(0.01)
        asyncio.run(asyncio.wait_for(main(), 10))
        self.scribe.close()
        self.pool.shutdown()


def test_a_status_is_delivered_only_once_its_prompt_is_on_disk(journal: Journal) -> None:
    """The phone hears "queued" after the prompt's row is committed, never before."""
    rig = Rig(journal)
    rig.run([Step((status("p-1"),), (RecordPrompt("p-1", "phone-1", "a red fox", {}),))], until=1)
    assert rig.delivered == [("p-1", State.QUEUED, True)]


def test_statuses_keep_the_ledgers_order(journal: Journal) -> None:
    """A step with nothing to write waits behind one still being written, so phones hear steps in order."""
    rig = Rig(journal)
    rig.run([Step((status("p-1"),), (RecordPrompt("p-1", "phone-1", "a red fox", {}),)),
             Step((status("p-1", State.GENERATING),)),
             Step((status("p-1", State.FAILED),), (SetState("p-1", State.FAILED, "oops"),))], until=3)
    assert [s for _p, s, _k in rig.delivered] == [State.QUEUED, State.GENERATING, State.FAILED]


def test_a_refused_write_is_reported_and_the_rest_still_land(journal: Journal) -> None:
    """A write the journal refuses (an unknown prompt) is a VJ report; the statuses still go out."""
    rig = Rig(journal)
    rig.run([Step((status("p-x", State.FAILED),), (SetState("p-x", State.FAILED, None),)),
             Step((status("p-2"),), (RecordPrompt("p-2", "phone-1", "a blue whale", {}),))], until=2)
    assert any("unknown prompt" in r for r in rig.reports) and rig.delivered[-1] == ("p-2", State.QUEUED, True)


def test_without_a_journal_statuses_go_out_at_once() -> None:
    """No journal (a rehearsal without an output folder): delivered on the spot, ids numbered per prompt."""
    rig = Rig(None)
    rig.scribe.apply(Step((status("p-1"),), (RecordPrompt("p-1", "phone-1", "a red fox", {}),)))
    assert rig.delivered == [("p-1", State.QUEUED, False)]
    ids = asyncio.run(_two_images(rig.scribe))
    assert ids == ["p-1-1", "p-1-2"]


async def _two_images(scribe: Scribe) -> list[str]:
    image = GeneratedImage(data=b"\x89PNG\r\n\x1a\n")
    return [(await scribe.add_image("p-1", image, {})).id for _ in range(2)]


def test_an_image_file_is_written_off_the_loop(tmp_path: Path) -> None:
    """add_image runs the file write (and its fsyncs) on the files lane: the loop's thread never does."""
    writers: list[str] = []

    def fsync(fd: int) -> None:
        writers.append(threading.current_thread().name)

    journal = Journal.open(tmp_path, fsync=fsync)
    rig = Rig(journal)
    journal.record_prompt("p-1", "phone-1", "a red fox", {})
    writers.clear()  # the folder's probe at open

    async def main() -> str:
        return (await rig.scribe.add_image("p-1", GeneratedImage(data=b"\x89PNG\r\n\x1a\nrest"), {})).id

    try:
        assert asyncio.run(main()) == "p-1-1"
        assert writers and all(name.startswith("journal-files") for name in writers)
    finally:
        rig.scribe.close()
        rig.pool.shutdown()
        journal.close()


def test_the_scribe_retries_held_images_on_its_own(tmp_path: Path) -> None:
    """While images wait in memory, the scribe tries the disk again every period, without a new image."""
    journal = Journal.open(tmp_path)
    rig = Rig(journal)
    calls: list[int] = []
    journal.catch_up = lambda: calls.append(1) or 0  # type: ignore[method-assign]

    async def main() -> None:
        task = asyncio.create_task(rig.scribe.keep_catching_up(period=0.01))
        await asyncio.sleep(0.1)
        task.cancel()

    try:
        asyncio.run(main())
        assert len(calls) >= 3
    finally:
        rig.scribe.close()
        rig.pool.shutdown()
        journal.close()
