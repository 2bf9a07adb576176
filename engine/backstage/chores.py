"""The backstage's periodic chores, each one task on the loop: garbage, queue positions, HUD, demo images,
a recalled scene's generation style.

They share nothing but what they are handed; each sleeps between rounds and never blocks the loop
(the HUD's text and the demo's pictures are made in the worker pool).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import itertools
import logging
import queue
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor

from engine.commands import Action, Command
from engine.config import Config, ShowConfig
from engine.contract import Inbox, StateBoard
from engine.errors import EngineError
from engine.gen.base import GenerationRequest, Generator
from engine.gen.pipeline import show_image
from engine.ledger import Ledger
from engine.line_pace import expected_wait, paced_hold
from engine.net.server import AudienceServer
from engine.render.overlay import HudLayout, hud_image, hud_lines

log = logging.getLogger(__name__)

HUD_REFRESH_S = 0.25
SCENE_WATCH_S = 0.1
POSITION_FLUSH_S = 0.25
# Garbage collection: with ten thousand phones a full collection walks every connection's objects
# (0.6-0.8 s on the bench machine), stalling every push and answer. Young collections stay automatic;
# full ones run here, when the crowd is quiet, every FULL_GC_PERIOD_S (or FULL_GC_MAX_S at the latest).
GC_THRESHOLDS = (700, 10, 1_000_000_000)  # gen0 and gen1 as CPython's defaults; gen2 never automatic
FULL_GC_PERIOD_S = 300.0
FULL_GC_MAX_S = 900.0
QUIET_S = 3.0  # no prompt for this long: a good moment for a full collection
TRIM_PERIOD_S = 10.0
PACE_PERIOD_S = 1.0
DEMO_PROMPTS = (
    "aurora over a frozen lake", "neon city in the rain", "a forest of glowing mushrooms", "desert dunes at dusk",
    "a whale swimming through stars", "a crystal cave full of light", "ocean waves in a storm", "a field of sunflowers",
)


def full_gc_due(now: float, last_full: float, last_prompt: float) -> bool:
    """A full collection is due: the period is over and the crowd is quiet, or the longest wait is over."""
    since = now - last_full
    return (since >= FULL_GC_PERIOD_S and now - last_prompt >= QUIET_S) or since >= FULL_GC_MAX_S


async def collect_garbage(last_prompt_at: Callable[[], float], clock: Callable[[], float] = time.monotonic) -> None:
    """Full garbage collections at quiet moments instead of whenever CPython decides (see GC_THRESHOLDS)."""
    gc.set_threshold(*GC_THRESHOLDS)
    last = clock()
    while True:
        await asyncio.sleep(QUIET_S)
        if full_gc_due(clock(), last, last_prompt_at()):
            started = time.perf_counter()
            found = gc.collect()
            last = clock()
            log.debug("full garbage collection: %d objects freed in %.0f ms", found,
                      (time.perf_counter() - started) * 1000)


def release_free_memory() -> bool:
    """Hand freed heap back to the system (glibc's ``malloc_trim``); False where there is no such call.

    Images are made and decoded on worker threads, and glibc gives each thread an arena of its own
    that keeps its freed pages: a burst of procedural images (a Stability outage) left the backstage at
    209 MB instead of 70 MB for the rest of the show. Trimming returns them.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # musl or another libc: nothing to trim
        return False
    return True


M_ARENA_MAX = -8  # glibc's mallopt parameter


def one_heap() -> bool:
    """One malloc arena for the whole process (glibc's ``M_ARENA_MAX``), before its threads start.

    Each worker thread otherwise gets an arena of its own, and a burst of images (a Stability outage painted
    offline) spreads freed pages over all of them: 25 procedural images at 1024² took a process from 42 MB to
    160-195 MB, 57-73 MB after a trim; with one arena, 104 MB and 57 MB, at the same speed. A fixed mmap
    threshold kept it at 60 MB but made the generator 2x slower (fresh pages for every array).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 1))
    except (OSError, AttributeError):
        return False


async def trim_memory(pool: Executor, period: float = TRIM_PERIOD_S) -> None:
    """Every ``period`` seconds, free heap goes back to the system (in the pool: it can take a few ms)."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(period)
        if not await loop.run_in_executor(pool, release_free_memory):
            return


async def pace_the_line(show: ShowConfig, ledger: Ledger, commands: queue.SimpleQueue[Command],
                        period: float = PACE_PERIOD_S, server: AudienceServer | None = None) -> None:
    """Keep the line's wait near ``[show] max_wait``: a shorter hold while many prompts wait, the usual one
    when few do. Sent to the show only when it changes by a quarter second or more; the server tells each
    waiting phone its expected wait at this pace."""
    sent = show.hold
    while True:
        await asyncio.sleep(period)
        audience = ledger.audience
        hold = paced_hold(audience.queued_count + len(audience.generating()), show)
        if abs(hold - sent) >= 0.25:
            sent = hold
            if server is not None:
                server.per_place = expected_wait(1, hold, show)
            commands.put(Command(Action.HOLD, round(hold, 2), source="pace"))
            log.info("the line's pace: each image holds %.1f s", hold)


async def flush_positions(ledger: Ledger) -> None:
    """Queue positions that changed because others joined the line, a few times a second."""
    while True:
        await asyncio.sleep(POSITION_FLUSH_S)
        ledger.flush_positions()


async def paint_hud(board: StateBoard, inbox: Inbox, pool: Executor, join_url: str,
                    extra_lines: Callable[[], list[str]]) -> None:
    """Paint the HUD from the show's snapshot a few times a second, while it is shown."""
    loop = asyncio.get_running_loop()
    layout = HudLayout()
    while True:
        snap = board.read()
        if snap.hud:
            lines = hud_lines(snap, join_url)
            lines[2:2] = extra_lines()
            pixels = await loop.run_in_executor(pool, hud_image, lines, layout)
            inbox.hud.put(pixels)
        await asyncio.sleep(HUD_REFRESH_S)


async def follow_scene_style(board: StateBoard, settings: Callable[[], Config],
                             change: Callable[[Mapping[str, object]], None], report: Callable[[str], None],
                             period: float = SCENE_WATCH_S) -> None:
    """A scene recalled on the show (page, MIDI, OSC, keys) brings its generation style preset.

    The look lives on the show thread and the style backstage, so the show only publishes each recall
    (``scene_seq``, ``scene_style``) and this applies the style, whether or not a control page is open.
    A scene without a style (None) leaves it; recalls from before the backstage started are not replayed.
    """
    seen = board.read().scene_seq
    while True:
        await asyncio.sleep(period)
        snap = board.read()
        if snap.scene_seq == seen:
            continue
        seen = snap.scene_seq
        style = snap.scene_style
        if style is None or style == settings().generation.style_preset:
            continue
        try:
            change({"style_preset": style})
        except Exception as err:  # a style this backend does not know: one line, the style stays
            report(f"scene {snap.scene!r}: style preset {style!r} not applied: {err}")


async def demo_images(cfg: Config, offline: Generator, wanted: asyncio.Event, ledger: Ledger, board: StateBoard,
                      inbox: Inbox, report: Callable[[str], None]) -> None:
    """When the crowd is quiet: an offline image every ``demo.interval`` s, or at once on Space."""
    interval = cfg.demo.interval
    numbers = itertools.count(1)
    while True:
        try:
            await asyncio.wait_for(wanted.wait(), timeout=interval if interval > 0 else None)
            requested = True
        except TimeoutError:
            requested = False
        wanted.clear()
        busy = ledger.audience.queued_count > 0
        if not requested and (busy or board.read().queue_len > 0):
            continue
        n = next(numbers)
        text = DEMO_PROMPTS[n % len(DEMO_PROMPTS)]
        g = cfg.generation
        try:
            images = await offline.generate(GenerationRequest(f"demo-{n}", text, width=g.width, height=g.height))
        except EngineError as err:
            report(f"demo image: {err}")
            continue
        for i, image in enumerate(images):
            if image.pixels is not None:
                inbox.images.put(await show_image(cfg, None, f"demo-{n}-{i}", image.pixels, text, board.read().size))
