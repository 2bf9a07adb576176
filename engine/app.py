"""Wires the threads together, runs the show, and shuts everything down cleanly."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import segno

from engine.audio.live import LiveAudio
from engine.backstage import Backstage
from engine.backstage.process import BackstageProcess
from engine.show_options import ShowOptions
from engine.store import Journal

log = logging.getLogger(__name__)


def display_available() -> bool:
    """Whether a window can be opened at all (Linux needs an X or Wayland display)."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(opts: ShowOptions, headless: bool) -> None:
    """Start backstage, run the show on this (main) thread, stop everything on the way out.

    Start-up failures (output folder, server port, blocklist) raise before any window opens.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if isinstance(backstage, BackstageProcess):
            backstage.begin_shutdown()  # first: a child that dies from here on is not a crash to restart
        log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    opts.live = LiveAudio(opts.cfg.audio)
    journal: Journal | None = None
    backstage: Backstage | BackstageProcess
    if opts.cfg.server.backstage == "process":
        # The crowd's server in a process of its own: ten thousand phones never starve the render thread.
        backstage = BackstageProcess(opts.cfg, opts.inbox, opts.board, opts.join_url, live=opts.live)
    else:
        journal = Journal.open(Path(opts.cfg.store.output_dir))
        log.info("show journal and images in %s", journal.folder)
        backstage = Backstage(opts.cfg, opts.inbox, opts.board, opts.join_url, journal=journal, live=opts.live)
    opts.request_image = backstage.request_image
    opts.pair = backstage.pair
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    watcher = None
    try:
        opts.live.start()
        backstage.start()
        if opts.cfg.shaders.hot_reload:
            from engine.shaders.watch import ShaderWatcher

            watcher = ShaderWatcher(Path(opts.cfg.shaders.dir), opts.inbox.shader_changes)
            watcher.start()
        log.info("join at %s", opts.join_url)
        if sys.stdout.isatty():
            segno.make(opts.join_url, error="m").terminal(compact=True)
        # Objects made at start-up live for the whole show: keep them out of every
        # collection so a full GC pass never freezes a frame for long.
        gc.collect()
        gc.freeze()
        if headless:
            from engine.render.headless import run_headless

            run_headless(opts, stop)
        else:
            from engine.render.window import run_window

            run_window(opts, stop)
    finally:
        if watcher is not None:
            watcher.stop()
        opts.live.stop()
        backstage.stop()
        if journal is not None:
            journal.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
        log.info("show stopped")
