"""The show journal: every prompt and image is on disk before it is shown, and comes back after a restart.

One show is one folder, ``<output_dir>/<YYYY-MM-DD>/`` (the date the engine started, so a show that runs past
midnight stays in one folder). It holds the image files, named ``<prompt id>-<n>.<ext>`` (the id reduced to
``[A-Za-z0-9_-]``; never any prompt text; the scheme lives in ``engine.gen.images``), and ``journal.sqlite3``:
SQLite in WAL mode, ``synchronous=NORMAL``, foreign keys on. Every write commits before it returns, so an engine
crash loses nothing a call has returned (a power cut may lose the last commits: that is what NORMAL trades for
speed in WAL mode). The schema is drawn in ``engine.store.rows``.

Text is data: prompt text, ids and settings only ever reach SQL as bound parameters and never reach a path or a
log line. Text is stored verbatim, NUL characters included; text that cannot be UTF-8 at all (lone surrogates,
which JSON escapes can smuggle in) is refused with StoreError.

A failing disk never stops the show. Start-up problems (a folder that cannot be made or written, a corrupt or
too-new database) raise StoreError. After that, when an image file cannot be written (ENOSPC, EIO, EDQUOT,
EROFS, ...) its bytes are kept in memory (at most ``memory_limit`` bytes, oldest dropped first) and its row says
``path=NULL, in_memory=1``; when a database write fails, the rows are held in memory and read back from there.
Either way one warning is logged per kind of failure, not per image. The next successful write catches up:
held rows are committed and kept images are written to their files. Whatever is still only in memory at
``close()`` is reported as lost; after a restart, rows still marked in memory are set to ``in_memory=0``.

The parts, one job each:

    errors.py   StoreError, and one warning per kind of failure
    files.py    image files written atomically (injectable fsync); images held in memory while the disk refuses
    rows.py     SQLite: schema, connection, PromptRecord / ImageRecord, rows held while the database refuses
    journal.py  Journal: one lock over both, never held while an image file is written

This package never imports GL or windowing code: the backstage process that uses it must not load them.
"""

from __future__ import annotations

from engine.store.errors import StoreError
from engine.store.files import DEFAULT_MEMORY_LIMIT, Fsync
from engine.store.journal import Journal
from engine.store.rows import (
    ACTIVE_STATES,
    DB_NAME,
    SCHEMA_VERSION,
    ImageRecord,
    PromptRecord,
)

__all__ = [
    "ACTIVE_STATES",
    "DB_NAME",
    "DEFAULT_MEMORY_LIMIT",
    "SCHEMA_VERSION",
    "Fsync",
    "ImageRecord",
    "Journal",
    "PromptRecord",
    "StoreError",
]
