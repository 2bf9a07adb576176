"""The backstage thread: one asyncio loop for everything that waits on the world.

It hands decoded images to the show through the inbox queue and reads the show's
state from the state board; it never touches GL. CPU-heavy work (generating,
decoding) goes to a worker pool so the loop stays responsive.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from engine.config import Config
from engine.gen.placeholder import placeholder_image
from engine.render.overlay import HudLayout, hud_image, hud_lines
from engine.render.show_loop import Inbox, StateBoard
from engine.show import ShowImage

log = logging.getLogger(__name__)

# Keep the show fed without piling up images it cannot use yet.
TARGET_QUEUE = 2
HUD_REFRESH_S = 0.25


class Backstage:
    def __init__(self, cfg: Config, inbox: Inbox, board: StateBoard, join_url: str = "") -> None:
        self.cfg = cfg
        self.join_url = join_url
        self.inbox = inbox
        self.board = board
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._wanted: asyncio.Event | None = None
        self._ready = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="backstage-worker")
        self._seeds = itertools.count(1)
        self.failure: BaseException | None = None

    # --- called from the show thread ------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="backstage", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)

    def request_image(self) -> None:
        """The VJ asked for the next image and none is ready: make one now."""
        loop, wanted = self._loop, self._wanted
        if loop is not None and wanted is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wanted.set)

    def stop(self, timeout: float = 5.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("backstage did not stop within %.0f s", timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- the loop ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as err:  # never let the thread die silently
            self.failure = err
            log.exception("backstage stopped on an error")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._wanted = asyncio.Event()
        tasks = [
            asyncio.create_task(self._placeholder_source(), name="placeholder"),
            asyncio.create_task(self._hud_painter(), name="hud"),
        ]
        self._ready.set()
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _hud_painter(self) -> None:
        """Paint the HUD from the show's snapshot a few times a second, while it is shown."""
        loop = asyncio.get_running_loop()
        layout = HudLayout()
        while True:
            snap = self.board.read()
            if snap.hud:
                lines = hud_lines(snap, self.join_url)
                pixels = await loop.run_in_executor(self._pool, hud_image, lines, layout)
                self.inbox.hud.put(pixels)
            await asyncio.sleep(HUD_REFRESH_S)

    async def _placeholder_source(self) -> None:
        """Stand-in source: a new image every ``demo.interval`` seconds, or on request."""
        assert self._wanted is not None
        interval = self.cfg.demo.interval
        loop = asyncio.get_running_loop()
        while True:
            try:
                await asyncio.wait_for(self._wanted.wait(), timeout=interval if interval > 0 else None)
                requested = True
            except TimeoutError:
                requested = False
            self._wanted.clear()
            if not requested and self.board.read().queue_len >= TARGET_QUEUE:
                continue
            seed = next(self._seeds)
            pixels = await loop.run_in_executor(self._pool, placeholder_image, seed)
            self.inbox.images.put(ShowImage(f"demo-{seed}", pixels, caption=f"placeholder #{seed}"))
