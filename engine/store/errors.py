"""How the journal fails and how it tells: StoreError for a caller, one warning per kind of trouble for the VJ.

Only start-up problems and wrong calls raise (``StoreError``). A disk or database that fails during the show is
logged, once per kind of failure, and worked around; when it works again the kind is forgotten, so the next
failure is news again.
"""

from __future__ import annotations

import errno
import logging
import threading

from engine.errors import EngineError

# One logger for the whole journal, whichever of its modules speaks: a VJ filters on "engine.store".
log = logging.getLogger("engine.store")


class StoreError(EngineError):
    """The journal cannot be used (folder, database) or was called wrongly (unknown id, bad state)."""


def describe(err: OSError) -> str:
    """``No space left on device (ENOSPC)``: the words and the code a VJ can search for."""
    name = errno.errorcode.get(err.errno or 0)
    words = err.strerror or str(err)
    return f"{words} ({name})" if name else words


class Warnings:
    """One warning per kind of failure: a full disk must not flood the log once per image.

    A kind is ``(group, detail)``, e.g. ``("file", "ENOSPC")``; a recovery forgets whole groups.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[tuple[str, str]] = set()

    def once(self, kind: tuple[str, str], message: str, *args: object) -> None:
        """Log ``message`` unless this kind was already told since its group last recovered."""
        with self._lock:
            if kind in self._seen:
                return
            self._seen.add(kind)
        log.warning(message, *args)

    def forget(self, *groups: str) -> None:
        """After a recovery, the next failure of these groups is news again."""
        with self._lock:
            self._seen = {k for k in self._seen if k[0] not in groups}
