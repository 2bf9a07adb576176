"""The ledger's hands on the disk: journal writes on threads of their own, never on the event loop.

Two lanes, each one thread, so each keeps its order:
- rows: every ``Step``'s writes (SQLite, milliseconds), then its statuses go back to the loop to be
  delivered. A phone hears "queued" only once its prompt is committed, and statuses reach phones in
  the order the ledger made them: a step with nothing to write still waits behind earlier ones.
- files: image files (encoded, written, fsynced twice; seconds on a slow venue disk), then their rows.
  Slow here never holds up the rows lane, and so never holds up a phone's answer.

Reads of image bytes (the phone page, the gallery, image-to-image) run in the worker pool.

Under load the rows lane takes whatever has queued up since its last round in one go, and its
statuses come back to the loop in one hand-off: a thousand prompts a second cost a few dozen
thread wake-ups, not a thousand.

Threads: ``apply``, ``add_image`` and ``image_bytes`` are called on the loop only; ``_draining`` is
the loop's alone (set when a round is handed to the rows lane, cleared when its statuses are back).
``_queue`` is a deque: the loop appends, the rows lane pops from the other end. The lanes touch only
the journal, which has its own lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor

from engine.errors import EngineError
from engine.gen.base import GeneratedImage
from engine.gen.images import ext_of
from engine.ledger import MarkShown, RecordPrompt, SetApproval, SetState, Step, StoredImage, Write
from engine.net.audience import Outbox
from engine.store import Journal

log = logging.getLogger(__name__)

CATCH_UP_S = 2.0  # how often images held in memory are tried on the disk again


class Scribe:
    def __init__(self, journal: Journal | None, deliver: Callable[[Outbox], None], report: Callable[[str], None],
                 pool: Executor) -> None:
        self.journal = journal
        self.deliver = deliver
        self.report = report
        self.pool = pool
        self._rows = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-rows")
        self._files = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-files")
        self._queue: deque[tuple[tuple[Write, ...], Outbox]] = deque()
        self._draining = False
        self._numbers: dict[str, int] = {}  # images per prompt while there is no journal

    # --- the ledger's sink ------------------------------------------------------------------------
    def apply(self, step: Step) -> None:
        """Commit the step's writes off the loop, then deliver its statuses on the loop."""
        outbox = list(step.outbox)
        if self.journal is None or (not step.writes and not self._draining):
            if outbox:
                self.deliver(outbox)
            return
        self._queue.append((step.writes, outbox))
        if not self._draining:
            self._draining = True
            self._rows.submit(self._round, asyncio.get_running_loop())

    def _round(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the rows lane: every step queued so far, written in order; their statuses back to the loop."""
        outbox: Outbox = []
        journal = self.journal
        assert journal is not None
        try:
            with journal.batch():
                while self._queue:
                    writes, out = self._queue.popleft()
                    self._write(writes)
                    outbox += out
        except EngineError as err:  # the journal closed under us: the show is ending
            self.report(f"journal: {err}")
        finally:
            _call_soon(loop, self._delivered, outbox)

    def _delivered(self, outbox: Outbox) -> None:
        """On the loop: a round is committed; deliver it, and start the next if steps came meanwhile."""
        if outbox:
            self.deliver(outbox)
        if self._queue:
            self._rows.submit(self._round, asyncio.get_running_loop())
        else:
            self._draining = False

    def _write(self, writes: tuple[Write, ...]) -> None:
        """On the rows lane: one write after another; a refusal is reported, the rest still go."""
        journal = self.journal
        assert journal is not None
        for w in writes:
            try:
                if isinstance(w, RecordPrompt):
                    journal.record_prompt(w.prompt_id, w.client_id, w.text, w.settings)
                elif isinstance(w, SetState):
                    journal.set_state(w.prompt_id, w.state, w.reason)
                elif isinstance(w, SetApproval):
                    journal.set_approval(w.prompt_id, w.approved, w.reason)
                elif isinstance(w, MarkShown):
                    journal.mark_shown(w.image_id)
            except EngineError as err:
                self.report(f"journal: {err}")
            except Exception as err:  # one bad write never stops the lane
                log.exception("journal write %s failed", type(w).__name__)
                self.report(f"journal: {type(err).__name__}: {err}")

    # --- the ledger's keeper ------------------------------------------------------------------------
    async def add_image(self, prompt_id: str, image: GeneratedImage, metadata: Mapping[str, object]
                        ) -> StoredImage:
        """The image file and its row, on the files lane; raises the journal's error (StoreError)."""
        journal = self.journal
        if journal is None:
            n = self._numbers[prompt_id] = self._numbers.get(prompt_id, 0) + 1
            return StoredImage(f"{prompt_id}-{n}", "png")
        loop = asyncio.get_running_loop()
        record = await loop.run_in_executor(self._files, journal.add_image, prompt_id, image, metadata)
        return StoredImage(record.id, ext_of(record.path))  # held in memory (no path): served as png, as before

    async def keep_catching_up(self, period: float = CATCH_UP_S) -> None:
        """While the disk refuses images (kept in memory), try again every ``period`` s on the files lane,
        so they reach their files soon after the disk is back, not only when the next image comes."""
        journal = self.journal
        if journal is None:
            return
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            await loop.run_in_executor(self._files, journal.catch_up)

    async def image_bytes(self, image_id: str) -> bytes | None:
        if self.journal is None:
            return None
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.journal.image_bytes, image_id)

    # --- life cycle ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Finish every queued write (from any thread but the lanes'), so the journal can close after.

        Called once the loop has stopped: steps it queued but never handed to the rows lane are
        written here, so nothing a phone was told is missing from the journal after a restart.
        """
        for lane in (self._files, self._rows):
            lane.shutdown(wait=True, cancel_futures=False)
        if self.journal is not None:
            while self._queue:
                self._write(self._queue.popleft()[0])

def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[[Outbox], None], outbox: Outbox) -> None:
    if not loop.is_closed():
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the show is ending
            loop.call_soon_threadsafe(fn, outbox)
