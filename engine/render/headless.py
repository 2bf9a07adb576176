"""Headless driver: the show under an EGL context, no window, no display."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from engine.pacing import FramePacer
from engine.render.gl import standalone_context
from engine.render.show_loop import ShowLoop, read_rgb
from engine.show_options import ShowOptions

log = logging.getLogger(__name__)


def run_headless(opts: ShowOptions, stop: threading.Event) -> None:
    """Render until ``stop`` is set or ``opts.frames`` frames are drawn; save the last if asked."""
    ctx = standalone_context()
    size = opts.size
    fb = ctx.framebuffer(color_attachments=[ctx.texture(size, 4)])
    show = ShowLoop(ctx, opts.cfg, size, opts.inbox, opts.join_url, opts.board, opts.request_image, opts.live)
    pacer = FramePacer(opts.fps)
    log.info("headless: %dx%d on %s, %s", *size, ctx.info["GL_RENDERER"],
             f"{opts.fps:g} fps" if opts.fps > 0 else "unpaced")
    try:
        while not stop.is_set():
            show.frame(time.perf_counter(), fb)
            if any(cmd.action.value == "quit" for cmd in show.driver_actions):
                break
            show.driver_actions.clear()
            if opts.frames is not None and show.frame_index >= opts.frames:
                break
            pacer.wait()
        if opts.snapshot is not None:
            ctx.finish()
            save_png(read_rgb(fb, size), opts.snapshot)
    finally:
        show.release()
        fb.release()
        ctx.release()


def save_png(rgb: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    log.info("snapshot written to %s", path)
