"""The show folder's image files: written whole or not at all, and held in memory while the disk refuses them.

A file is written to a temporary name, fsynced, renamed into place and the folder fsynced, so a reader (or a
restart after a crash) sees the whole file or none of it. Every fsync goes through the ``fsync`` function given
at start-up, so a test can make the disk slow and prove the show never waits for it.

When a write fails (ENOSPC, EIO, EDQUOT, EROFS, ...) the bytes are kept in memory, at most ``memory_limit``
bytes, oldest dropped first, and written to their files once the disk works again. One warning is logged per
kind of failure, not per image.

``ImageFiles`` is safe to call from several threads: its own lock guards only what it holds in memory and is
never held while the disk works.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from engine.gen.images import IMAGE_FILE
from engine.store.errors import StoreError, Warnings, describe, log

Fsync = Callable[[int], None]

DEFAULT_MEMORY_LIMIT = 512 * 1024 * 1024  # bytes of images held while the disk refuses them
PROBE_NAME = ".write-probe"


def fsync_dir(folder: Path, fsync: Fsync = os.fsync) -> None:
    """Make a rename durable on POSIX; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, fsync: Fsync = os.fsync) -> None:
    """Write ``data`` so that a reader, or a restart after a crash, sees the whole file or none of it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent, fsync)


def prepare_folder(folder: Path, fsync: Fsync = os.fsync) -> None:
    """Make the show folder and prove it takes a file now, at start-up, rather than at the first image."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / PROBE_NAME
        write_atomic(probe, b"ok", fsync)
        probe.unlink()
    except OSError as err:
        raise StoreError(f"cannot use show folder {folder}: {describe(err)}") from err


class ImageFiles:
    """Image files in one show folder, and the images the disk refused, held in memory oldest first."""

    def __init__(self, folder: Path, *, memory_limit: int = DEFAULT_MEMORY_LIMIT, fsync: Fsync = os.fsync) -> None:
        self.folder = folder
        self._memory_limit = memory_limit
        self._fsync = fsync
        self._lock = threading.Lock()
        # image id → (file name, bytes) for images the disk refused, oldest first
        self._kept: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._kept_bytes = 0
        self._failing = False
        self._warnings = Warnings()

    # ---- the disk ------------------------------------------------------------------------------------------

    def write(self, name: str, data: bytes) -> bool:
        """True when the file is safely on disk; False (warned once per kind) when the disk refused."""
        try:
            write_atomic(self.folder / name, data, self._fsync)
        except OSError as err:
            with self._lock:
                self._failing = True
            self._warnings.once(("file", errno.errorcode.get(err.errno or 0, str(err.errno))),
                                "cannot write images to %s: %s; keeping new images in memory (up to %d MB) "
                                "until the disk works again", self.folder, describe(err), self._memory_limit >> 20)
            return False
        with self._lock:
            recovered, self._failing = self._failing, False
        if recovered:
            self._warnings.forget("file", "memory")
            log.info("image files are written to %s again", self.folder)
        return True

    def exists(self, pattern: str) -> bool:
        """Whether a file matching the glob ``pattern`` is in the folder; an unreadable folder has none."""
        try:
            return any(self.folder.glob(pattern))
        except OSError:
            return False

    def scan(self, known: set[str]) -> list[Path]:
        """Remove temp files a crash left, and list the image files no row knows (``known``: their names)."""
        orphans: list[Path] = []
        for entry in sorted(self.folder.iterdir()):
            name = entry.name
            if name.startswith(".") and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    entry.unlink()  # a write cut short by a crash: never renamed, so never complete
            elif IMAGE_FILE.match(name) and name not in known:
                orphans.append(entry)
        return orphans

    # ---- memory --------------------------------------------------------------------------------------------

    def keep(self, image_id: str, name: str, data: bytes) -> tuple[bool, list[str]]:
        """Hold a refused image in memory within the budget: whether it is held, and the ids dropped for it."""
        if len(data) > self._memory_limit:
            self._warnings.once(("memory", "too-big"), "image %s (%d bytes) is larger than the in-memory budget: "
                                "it is lost", image_id, len(data))
            return False, []
        dropped: list[str] = []
        with self._lock:
            while self._kept and self._kept_bytes + len(data) > self._memory_limit:
                old_id, (_, old_data) = self._kept.popitem(last=False)
                self._kept_bytes -= len(old_data)
                dropped.append(old_id)
            self._kept[image_id] = (name, data)
            self._kept_bytes += len(data)
        if dropped:
            self._warnings.once(("memory", "full"), "in-memory image budget (%d MB) is full: dropping the oldest "
                                "held images, starting with %s", self._memory_limit >> 20, dropped[0])
        return True, dropped

    def held(self, image_id: str) -> bytes | None:
        """The bytes of an image held in memory, or None."""
        with self._lock:
            kept = self._kept.get(image_id)
        return None if kept is None else kept[1]

    def oldest(self) -> tuple[str, str, bytes] | None:
        """``(image id, file name, bytes)`` of the image held longest, the next to write out; None when none."""
        with self._lock:
            if not self._kept:
                return None
            image_id, (name, data) = next(iter(self._kept.items()))
        return image_id, name, data

    def release(self, image_id: str) -> None:
        """Stop holding an image (its file is written now); an image already dropped is no error."""
        with self._lock:
            kept = self._kept.pop(image_id, None)
            if kept is not None:
                self._kept_bytes -= len(kept[1])

    def held_count(self) -> int:
        """How many images live only in memory."""
        with self._lock:
            return len(self._kept)
