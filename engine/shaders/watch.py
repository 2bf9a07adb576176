"""Watches the shader folder and only raises flags: changed paths go into a queue
that the render thread drains between frames (where all compiling happens).
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

import watchfiles

from engine.shaders.library import WATCHED_SUFFIXES

log = logging.getLogger(__name__)


class ShaderWatcher:
    """A background thread around ``watchfiles.watch`` (the OS's native notifications)."""

    def __init__(self, root: Path, changes: queue.SimpleQueue[Path], step_ms: int = 10) -> None:
        self.root = root
        self.changes = changes
        self.step_ms = step_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()

    def start(self) -> None:
        if not self.root.is_dir():
            log.warning("not watching %s: no such folder", self.root)
            return
        self._thread = threading.Thread(target=self._run, name="shader-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for batch in watchfiles.watch(
                self.root, stop_event=self._stop, step=self.step_ms, debounce=200, rust_timeout=100,
                yield_on_timeout=True, watch_filter=_relevant, raise_interrupt=False,
            ):
                self.ready.set()
                for _change, path in batch:
                    self.changes.put(Path(path))
        except Exception:  # a watcher failure must never reach the show
            log.exception("shader watcher stopped; hot reload is off until restart")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _relevant(change: watchfiles.Change, path: str) -> bool:
    """Shader files, companion vertex shaders and images; not editor temp files."""
    name = Path(path).name
    return not name.startswith(".") and not name.endswith("~") and Path(path).suffix.lower() in WATCHED_SUFFIXES
