"""The scenes folder: what is in it, kept live by a watcher thread, written by a worker thread.

Three threads share it, and each does one thing:

- the **watcher** (``watchfiles``, the OS's own notifications) reads and parses each ``*.toml`` that
  changed, and queues what it found (a ``Loaded``); it never touches the show;
- the **writer** writes a saved scene (into a temporary file renamed over the old one, so neither an
  editor nor the watcher ever reads half a file) and deletes; it queues the result, or an error line;
- the **render thread** drains the queue between frames (``SceneFolder.take``): dictionary updates,
  no file is opened there after the first scan.

A scene is its file's name without ``.toml``; the list is sorted by name (ignoring case), and its
1-based place in that list is the number OSC, the keys and the page use. A file that does not parse
stays in the list with its error, so the numbers of the others do not move when one breaks.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import watchfiles

from engine.errors import ConfigError
from engine.scenes.scene import SUFFIX, Scene, parse_scene, problem

log = logging.getLogger(__name__)

WRITE_QUEUE_LIMIT = 64  # saves waiting for the disk; more is a stuck disk, and the VJ hears it


@dataclass(frozen=True)
class Loaded:
    """One scene file as last read: its scene, or why not; ``gone`` when the file was deleted."""

    name: str
    file: str
    scene: Scene | None = None
    error: ConfigError | None = None
    gone: bool = False


def read_scene(path: Path) -> Loaded:
    """Read and parse one file (any thread); a missing file is ``gone``, an unreadable one an error."""
    name, file = path.stem, str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Loaded(name, file, gone=True)
    except (OSError, UnicodeDecodeError) as err:
        return Loaded(name, file, error=problem(file, "", f"cannot read it: {err}"))
    try:
        return Loaded(name, file, parse_scene(text, file))
    except ConfigError as err:
        return Loaded(name, file, error=err)


def is_scene_file(path: Path) -> bool:
    """A scene file, not an editor's temporary, backup or hidden file."""
    return path.suffix == SUFFIX and not path.name.startswith((".", "#"))


class SceneFolder:
    """The render thread's view of the folder; the watcher and the writer only feed ``changes``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries: dict[str, Loaded] = {}
        self.generation = 0  # bumps whenever an entry changes
        self.changes: queue.SimpleQueue[Loaded | str] = queue.SimpleQueue()  # str: an error line from the writer
        self._watcher: SceneWatcher | None = None
        self._writer: SceneWriter | None = None
        self._lock = threading.Lock()  # the writer may start the watcher (it made the folder)
        self.watching = threading.Event()  # set once the watcher sees changes (files written before may be missed)

    # --- reading -------------------------------------------------------------------------
    def scan(self) -> None:
        """Read every scene file now (start-up)."""
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob(f"*{SUFFIX}")):
            if is_scene_file(path) and path.is_file():
                self._put(read_scene(path))

    def take(self) -> list[Loaded | str]:
        """Apply what the watcher and the writer queued since the last frame; returns it, for reporting."""
        taken: list[Loaded | str] = []
        while True:
            try:
                item = self.changes.get_nowait()
            except queue.Empty:
                return taken
            if isinstance(item, Loaded):
                self._put(item)
            taken.append(item)

    def _put(self, loaded: Loaded) -> None:
        if loaded.gone:
            if self.entries.pop(loaded.name, None) is None:
                return
        else:
            self.entries[loaded.name] = loaded
        self.generation += 1

    def names(self) -> list[str]:
        """Every scene, in the order its numbers count."""
        return sorted(self.entries, key=lambda n: (n.casefold(), n))

    def find(self, name: str = "", number: float | None = None) -> str | None:
        """The scene called ``name`` (exactly, else ignoring case), or the ``number``th (1-based)."""
        if name:
            if name in self.entries:
                return name
            folded = [n for n in self.entries if n.casefold() == name.casefold()]
            return folded[0] if len(folded) == 1 else None
        names = self.names()
        if number is not None and number == int(number) and 1 <= number <= len(names):
            return names[int(number) - 1]
        return None

    def path_of(self, name: str) -> Path:
        return self.root / f"{name}{SUFFIX}"

    # --- threads ---------------------------------------------------------------------------
    def watch(self) -> None:
        """Start the watcher if the folder exists and nobody watches it yet (safe from any thread)."""
        with self._lock:
            if self._watcher is None and self.root.is_dir():
                self._watcher = SceneWatcher(self.root, self.changes, self.watching)
                self._watcher.start()

    def save(self, name: str, text: str) -> None:
        """Hand a scene's text to the writer thread; the answer comes through ``changes``."""
        self._writer_thread().put(("save", name, text))

    def delete(self, name: str) -> None:
        self._writer_thread().put(("delete", name, ""))

    def _writer_thread(self) -> SceneWriter:
        if self._writer is None:
            self._writer = SceneWriter(self, self.changes)
            self._writer.start()
        return self._writer

    def close(self) -> None:
        """Finish the writes already asked for, then stop both threads."""
        if self._writer is not None:
            self._writer.stop()
        with self._lock:
            if self._watcher is not None:
                self._watcher.stop()
                self._watcher = None


class SceneWatcher:
    """A background thread around ``watchfiles.watch``: changed files are read and parsed here."""

    def __init__(self, root: Path, changes: queue.SimpleQueue[Loaded | str], ready: threading.Event,
                 step_ms: int = 10) -> None:
        self.root = root
        self.changes = changes
        self.ready = ready
        self.step_ms = step_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scene-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            for batch in watchfiles.watch(
                self.root, stop_event=self._stop, step=self.step_ms, debounce=100, rust_timeout=100,
                yield_on_timeout=True, watch_filter=lambda _c, p: is_scene_file(Path(p)), raise_interrupt=False,
                recursive=False,
            ):
                self.ready.set()  # the first batch comes (empty) after rust_timeout: the OS watch is in place
                # A batch may hold a delete and a re-create of one file (an editor's save): read what is there now.
                for path in sorted({Path(p) for _change, p in batch}):
                    self.changes.put(read_scene(path))
        except Exception:  # a watcher failure must never reach the show
            log.exception("scene watcher stopped; scene files are not reloaded until restart")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class SceneWriter:
    """Writes and deletes scene files on a thread of its own: the render thread never waits on the disk."""

    def __init__(self, folder: SceneFolder, changes: queue.SimpleQueue[Loaded | str]) -> None:
        self.folder = folder
        self.changes = changes
        self.jobs: queue.Queue[tuple[str, str, str] | None] = queue.Queue(WRITE_QUEUE_LIMIT)
        self._thread = threading.Thread(target=self._run, name="scene-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, job: tuple[str, str, str]) -> None:
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            self.changes.put(f"scene {job[1]!r} not {job[0]}d: {WRITE_QUEUE_LIMIT} scene writes are still waiting "
                             "for the disk")

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            kind, name, text = job
            path = self.folder.path_of(name)
            try:
                if kind == "save":
                    self._write(path, text)
                    self.changes.put(Loaded(name, str(path), parse_scene(text, str(path))))
                    log.info("scene %s saved to %s", name, path)
                else:
                    path.unlink()
                    self.changes.put(Loaded(name, str(path), gone=True))
                    log.info("scene %s deleted (%s)", name, path)
            except FileNotFoundError:
                self.changes.put(f"scene {name!r} not deleted: {path} is not there")
            except (OSError, ConfigError) as err:
                self.changes.put(f"scene {name!r} not {kind}d: {err}")

    def _write(self, path: Path, text: str) -> None:
        made = not path.parent.is_dir()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        if made:
            self.folder.watch()  # the first save made the folder: from now on it is watched

    def stop(self) -> None:
        try:
            self.jobs.put(None, timeout=5)
        except queue.Full:
            return
        self._thread.join(timeout=5)
