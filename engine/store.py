"""The show journal: every prompt and image is on disk before it is shown, and comes back after a restart.

One show is one folder, ``<output_dir>/<YYYY-MM-DD>/`` (the date the engine started, so a show that runs past
midnight stays in one folder). It holds the image files, named ``<prompt id>-<n>.<ext>`` (the id reduced to
``[A-Za-z0-9_-]``; never any prompt text), and ``journal.sqlite3``: SQLite in WAL mode, ``synchronous=NORMAL``,
foreign keys on. Every write commits before it returns, so an engine crash loses nothing a call has returned
(a power cut may lose the last commits: that is what NORMAL trades for speed in WAL mode).

Schema (``PRAGMA user_version = 1``)::

    prompts(id TEXT PRIMARY KEY, client_id TEXT, text TEXT, state TEXT, reason TEXT,
            settings TEXT  -- JSON object
            approved INTEGER  -- NULL: no VJ decision (none needed, or still awaited); 0/1: rejected/approved
            created REAL, updated REAL, started REAL, finished REAL)  -- time.time() seconds
    images(id TEXT PRIMARY KEY  -- the file stem, "<prompt id>-<n>"
           prompt_id TEXT REFERENCES prompts(id), n INTEGER  -- 1, 2, ... per prompt
           path TEXT  -- relative to the show folder; NULL while (or since) the file could not be written
           in_memory INTEGER  -- 1: the bytes are held in this process's memory instead
           created REAL, shown_at REAL, show_seq INTEGER  -- first showing; show_seq orders the gallery
           metadata TEXT  -- JSON object
           width INTEGER, height INTEGER)

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
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import io
import json
import logging
import os
import re
import sqlite3
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import numpy as np
from PIL import Image

from engine.errors import EngineError
from engine.gen.base import GeneratedImage
from engine.net.protocol import FINAL_STATES, State

log = logging.getLogger(__name__)

DB_NAME = "journal.sqlite3"
SCHEMA_VERSION = 1
DEFAULT_MEMORY_LIMIT = 512 * 1024 * 1024  # bytes of images held while the disk refuses them
PNG_COMPRESS_LEVEL = 1  # pixels → PNG: speed over size; the file is written once and read rarely

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_IMAGE_FILE = re.compile(r"^[A-Za-z0-9_-]+-[0-9]+\.[a-z0-9]{1,8}$")
_EXT = re.compile(r"^[a-z0-9]{1,8}$")
_MIME_EXT = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/pjpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
}

_SCHEMA = """
BEGIN;
CREATE TABLE IF NOT EXISTS prompts (
    id        TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    text      TEXT NOT NULL,
    state     TEXT NOT NULL CHECK (state IN ('queued', 'generating', 'showing', 'done', 'rejected', 'failed')),
    reason    TEXT,
    settings  TEXT NOT NULL,
    approved  INTEGER CHECK (approved IN (0, 1)),
    created   REAL NOT NULL,
    updated   REAL NOT NULL,
    started   REAL,
    finished  REAL
);
CREATE INDEX IF NOT EXISTS prompts_by_state ON prompts (state, created);
CREATE INDEX IF NOT EXISTS prompts_by_client ON prompts (client_id, created);
CREATE TABLE IF NOT EXISTS images (
    id        TEXT PRIMARY KEY,
    prompt_id TEXT NOT NULL REFERENCES prompts (id),
    n         INTEGER NOT NULL,
    path      TEXT,
    in_memory INTEGER NOT NULL DEFAULT 0,
    created   REAL NOT NULL,
    shown_at  REAL,
    show_seq  INTEGER UNIQUE,
    metadata  TEXT NOT NULL,
    width     INTEGER,
    height    INTEGER
);
CREATE INDEX IF NOT EXISTS images_by_prompt ON images (prompt_id, n);
PRAGMA user_version = 1;
COMMIT;
"""

_UPSERT_PROMPT = """
INSERT INTO prompts (id, client_id, text, state, reason, settings, approved, created, updated, started, finished)
VALUES (:id, :client_id, :text, :state, :reason, :settings, :approved, :created, :updated, :started, :finished)
ON CONFLICT (id) DO UPDATE SET
    client_id = excluded.client_id, text = excluded.text, state = excluded.state, reason = excluded.reason,
    settings = excluded.settings, approved = excluded.approved, created = excluded.created,
    updated = excluded.updated, started = excluded.started, finished = excluded.finished
"""

_UPSERT_IMAGE = """
INSERT INTO images (id, prompt_id, n, path, in_memory, created, shown_at, show_seq, metadata, width, height)
VALUES (:id, :prompt_id, :n, :path, :in_memory, :created, :shown_at, :show_seq, :metadata, :width, :height)
ON CONFLICT (id) DO UPDATE SET
    prompt_id = excluded.prompt_id, n = excluded.n, path = excluded.path, in_memory = excluded.in_memory,
    created = excluded.created, shown_at = excluded.shown_at, show_seq = excluded.show_seq,
    metadata = excluded.metadata, width = excluded.width, height = excluded.height
"""


class StoreError(EngineError):
    """The journal cannot be used (folder, database) or was called wrongly (unknown id, bad state)."""


# One vocabulary of prompt states for the wire and the journal (protocol.py is sans-I/O).
PromptState = State
ACTIVE_STATES = frozenset({PromptState.QUEUED, PromptState.GENERATING})  # what a restart must resume


@dataclass(frozen=True)
class PromptRecord:
    """One prompt as the journal knows it; times are ``time.time()`` seconds."""

    id: str
    client_id: str
    text: str
    state: PromptState
    reason: str | None
    settings: dict[str, Any]
    created: float
    updated: float  # the last change of state, approval or reason
    approved: bool | None  # None: no VJ decision (none needed, or still awaited)
    started: float | None = None  # last entry into "generating"
    finished: float | None = None  # entry into done / rejected / failed


@dataclass(frozen=True)
class ImageRecord:
    """One generated image: its file (relative to the show folder) or, while the disk refuses, memory."""

    id: str
    prompt_id: str
    n: int
    path: str | None
    created: float
    shown_at: float | None
    metadata: dict[str, Any]
    width: int | None
    height: int | None
    in_memory: bool = False
    show_seq: int | None = None  # position in the gallery, set by the first mark_shown


_R = TypeVar("_R", PromptRecord, ImageRecord)


@dataclass(frozen=True)
class _Encoded:
    data: bytes
    ext: str
    width: int | None
    height: int | None


def safe_stem(prompt_id: str) -> str:
    """A file-name-safe stem for a prompt id; ids that needed changing get a hash so two never collide."""
    stem = _UNSAFE.sub("_", prompt_id)[:64]
    if stem != prompt_id or not stem:
        digest = hashlib.sha256(prompt_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        stem = f"{stem}_{digest}" if stem else digest
    return stem


def _reason(err: OSError) -> str:
    """``No space left on device (ENOSPC)``: the words and the code a VJ can search for."""
    name = errno.errorcode.get(err.errno or 0)
    words = err.strerror or str(err)
    return f"{words} ({name})" if name else words


def _sqlite_kind(err: sqlite3.Error) -> str:
    name = getattr(err, "sqlite_errorname", None)
    return name if isinstance(name, str) else type(err).__name__


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable on POSIX; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` so that a reader, or a restart after a crash, sees the whole file or none of it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _check_text(field: str, value: str) -> str:
    """Refuse text that SQLite cannot hold as UTF-8 (lone surrogates); everything else is kept verbatim."""
    if not isinstance(value, str):
        raise StoreError(f"{field}: expected text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise StoreError(f"{field}: not valid Unicode text (a lone surrogate at {err.start})") from None
    return value


def _as_json(field: str, value: Mapping[str, object]) -> tuple[str, dict[str, Any]]:
    """The JSON text stored, and the dict it reads back as: what a caller gets equals what a restart gets."""
    try:
        text = json.dumps(dict(value), default=str)
    except (TypeError, ValueError) as err:
        raise StoreError(f"{field}: cannot be stored as JSON: {err}") from err
    loaded = json.loads(text)
    return text, loaded


def _sniff(data: bytes) -> str | None:
    """The file type from its first bytes: the content decides the extension when it can."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def _size_of(data: bytes) -> tuple[int | None, int | None]:
    """Width and height from the header; the size is a nicety, never a reason to lose an image."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            return int(width), int(height)
    except Exception:
        return None, None


def _encode_pixels(pixels: np.ndarray) -> _Encoded:
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise StoreError(f"pixels: expected uint8 (h, w), (h, w, 3) or (h, w, 4), got {arr.dtype} {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise StoreError(f"pixels: empty image {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return _Encoded(buf.getvalue(), "png", int(arr.shape[1]), int(arr.shape[0]))


def _encode(
    image: GeneratedImage | bytes | np.ndarray, metadata: Mapping[str, object], ext: str | None
) -> tuple[_Encoded, Mapping[str, object]]:
    """Bytes to write and the metadata to store; encoded bytes are kept exactly as they came."""
    meta: dict[str, object] = {}
    mime: str | None = None
    payload: bytes | np.ndarray
    if isinstance(image, GeneratedImage):
        meta.update(image.metadata)
        if image.seed:
            meta["seed"] = image.seed
        if image.data is not None:
            payload, mime = image.data, image.mime
        elif image.pixels is not None:
            payload = image.pixels
        else:
            raise StoreError("image: a GeneratedImage with neither data nor pixels")
    elif isinstance(image, bytes | bytearray | memoryview):
        payload = bytes(image)
    elif isinstance(image, np.ndarray):
        payload = image
    else:
        raise StoreError(f"image: expected GeneratedImage, bytes or a numpy array, got {type(image).__name__}")
    meta.update(metadata)
    if isinstance(payload, np.ndarray):
        encoded = _encode_pixels(payload)
    else:
        data = bytes(payload)
        if not data:
            raise StoreError("image: no bytes")
        kind = _sniff(data) or _MIME_EXT.get((mime or "").split(";")[0].strip().lower()) or "bin"
        encoded = _Encoded(data, kind, *_size_of(data))
    if ext is not None:
        wanted = ext.lower().lstrip(".")
        if not _EXT.match(wanted):
            raise StoreError(f"ext: {ext!r} is not a plain file extension")
        encoded = replace(encoded, ext=wanted)
    return encoded, meta


def _prompt_from_row(row: sqlite3.Row) -> PromptRecord:
    approved = row["approved"]
    return PromptRecord(
        id=row["id"],
        client_id=row["client_id"],
        text=row["text"],
        state=PromptState(row["state"]),
        reason=row["reason"],
        settings=json.loads(row["settings"]),
        created=row["created"],
        updated=row["updated"],
        approved=None if approved is None else bool(approved),
        started=row["started"],
        finished=row["finished"],
    )


def _image_from_row(row: sqlite3.Row) -> ImageRecord:
    return ImageRecord(
        id=row["id"],
        prompt_id=row["prompt_id"],
        n=row["n"],
        path=row["path"],
        created=row["created"],
        shown_at=row["shown_at"],
        metadata=json.loads(row["metadata"]),
        width=row["width"],
        height=row["height"],
        in_memory=bool(row["in_memory"]),
        show_seq=row["show_seq"],
    )


def _prompt_params(p: PromptRecord) -> dict[str, object]:
    return {
        "id": p.id,
        "client_id": p.client_id,
        "text": p.text,
        "state": p.state.value,
        "reason": p.reason,
        "settings": json.dumps(p.settings),
        "approved": None if p.approved is None else int(p.approved),
        "created": p.created,
        "updated": p.updated,
        "started": p.started,
        "finished": p.finished,
    }


def _image_params(i: ImageRecord) -> dict[str, object]:
    return {
        "id": i.id,
        "prompt_id": i.prompt_id,
        "n": i.n,
        "path": i.path,
        "in_memory": int(i.in_memory),
        "created": i.created,
        "shown_at": i.shown_at,
        "show_seq": i.show_seq,
        "metadata": json.dumps(i.metadata),
        "width": i.width,
        "height": i.height,
    }


def _prepare_folder(folder: Path) -> None:
    """Make the show folder and prove it takes a file now, at start-up, rather than at the first image."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-probe"
        _write_atomic(probe, b"ok")
        probe.unlink()
    except OSError as err:
        raise StoreError(f"cannot use show folder {folder}: {_reason(err)}") from err


def _connect(path: Path) -> sqlite3.Connection:
    """Open (or create) the journal database; anything unusable is one StoreError naming the file."""
    try:
        conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as err:
        raise StoreError(f"cannot open journal {path}: {err}") from err
    hint = "move it away to start a fresh journal"
    try:
        conn.row_factory = sqlite3.Row
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"journal {path}: cannot use WAL mode here (got {mode})")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise StoreError(f"journal {path} is damaged ({check}); {hint}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"journal {path} has schema {version}, newer than this engine's {SCHEMA_VERSION}")
        conn.executescript(_SCHEMA)
    except sqlite3.DatabaseError as err:
        conn.close()
        raise StoreError(f"journal {path} is not a usable database ({err}); {hint}") from err
    except BaseException:
        conn.close()
        raise
    return conn


class Journal:
    """The show's prompts and images, on disk; safe to call from several threads (one connection, one lock)."""

    def __init__(
        self, folder: Path, conn: sqlite3.Connection, *, memory_limit: int, clock: Callable[[], float]
    ) -> None:
        """Use ``Journal.open``; this only wires the parts together."""
        self.folder = folder
        self.db_path = folder / DB_NAME
        self._conn = conn
        self._clock = clock
        self._memory_limit = memory_limit
        self._lock = threading.RLock()
        self._closed = False
        # rows whose latest version the database refused, newest version per id; reads look here first
        self._held_prompts: dict[str, PromptRecord] = {}
        self._held_images: dict[str, ImageRecord] = {}
        # image id → (file name, bytes) for images the disk refused, oldest first
        self._kept: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._kept_bytes = 0
        self._warned: set[tuple[str, str]] = set()
        self._files_failing = False
        self._db_failing = False
        self._orphans: list[Path] = []
        self._next_seq = 1

    @classmethod
    def open(
        cls,
        output_dir: Path,
        today: datetime.date | None = None,
        *,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        clock: Callable[[], float] = time.time,
    ) -> Journal:
        """Open today's show folder, creating it, or resume it after a restart."""
        day = today if today is not None else datetime.date.today()
        folder = Path(output_dir) / day.isoformat()
        _prepare_folder(folder)
        conn = _connect(folder / DB_NAME)
        journal = cls(folder, conn, memory_limit=memory_limit, clock=clock)
        try:
            journal._recover()
        except sqlite3.DatabaseError as err:
            conn.close()
            raise StoreError(f"journal {journal.db_path} cannot be written: {err}") from err
        except BaseException:
            conn.close()
            raise
        return journal

    def _recover(self) -> None:
        """Note what the last run left: images that lived only in its memory, and files without a row."""
        cur = self._conn.execute("UPDATE images SET in_memory = 0 WHERE in_memory = 1")
        if cur.rowcount:
            log.warning("%d images were only in the last run's memory and are lost (rows kept, no file)",
                        cur.rowcount)
        self._next_seq = self._conn.execute("SELECT COALESCE(MAX(show_seq), 0) + 1 FROM images").fetchone()[0]
        known = {row[0] for row in self._conn.execute("SELECT path FROM images WHERE path IS NOT NULL")}
        for entry in sorted(self.folder.iterdir()):
            name = entry.name
            if name.startswith(".") and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    entry.unlink()  # a write cut short by a crash: never renamed, so never complete
            elif _IMAGE_FILE.match(name) and name not in known:
                self._orphans.append(entry)
        if self._orphans:
            log.warning("%d image files in %s have no journal row (a crash between file and row); "
                        "they are kept but not in the gallery", len(self._orphans), self.folder)

    # ---- prompts -------------------------------------------------------------------------------------------

    def record_prompt(
        self,
        prompt_id: str,
        client_id: str,
        text: str,
        settings: Mapping[str, object],
        created: float | None = None,
    ) -> PromptRecord:
        """Journal a new prompt, state "queued"; a second prompt with the same id is a StoreError."""
        _check_text("prompt_id", prompt_id)
        if not prompt_id:
            raise StoreError("prompt_id: must not be empty")
        _check_text("client_id", client_id)
        _check_text("text", text)
        _, settings_dict = _as_json("settings", settings)
        with self._lock:
            self._check_open()
            if self._find_prompt(prompt_id) is not None:
                raise StoreError(f"prompt {prompt_id!r} is already in the journal")
            when = self._clock() if created is None else float(created)
            record = PromptRecord(
                id=prompt_id, client_id=client_id, text=text, state=PromptState.QUEUED, reason=None,
                settings=settings_dict, created=when, updated=when, approved=None,
            )
            self._save(prompts=[record])
            return record

    def set_state(self, prompt_id: str, state: PromptState | str, reason: str | None = None) -> PromptRecord:
        """Move a prompt to ``state``, stamping started/finished; ``reason`` replaces the last one."""
        try:
            new = PromptState(state)
        except ValueError:
            allowed = ", ".join(s.value for s in PromptState)
            raise StoreError(f"state: {state!r} is not one of {allowed}") from None
        if reason is not None:
            _check_text("reason", reason)
        with self._lock:
            self._check_open()
            old = self._require_prompt(prompt_id)
            now = self._clock()
            started, finished = old.started, old.finished
            if new is PromptState.GENERATING:
                started, finished = now, None
            elif new is PromptState.QUEUED:
                started, finished = None, None
            elif new in FINAL_STATES:
                finished = now
            record = replace(old, state=new, reason=reason, updated=now, started=started, finished=finished)
            self._save(prompts=[record])
            return record

    def set_approval(self, prompt_id: str, approved: bool, reason: str | None = None) -> PromptRecord:
        """The VJ's verdict in moderation mode; the state is the caller's to change."""
        if not isinstance(approved, bool):
            raise StoreError(f"approved: expected true or false, got {approved!r}")
        if reason is not None:
            _check_text("reason", reason)
        with self._lock:
            self._check_open()
            old = self._require_prompt(prompt_id)
            record = replace(old, approved=approved, reason=reason if reason is not None else old.reason,
                             updated=self._clock())
            self._save(prompts=[record])
            return record

    def prompt(self, prompt_id: str) -> PromptRecord | None:
        """One prompt, or None when the journal has never seen it."""
        with self._lock:
            self._check_open()
            return self._find_prompt(prompt_id)

    def unfinished(self) -> list[PromptRecord]:
        """Prompts still queued or generating, oldest first: what a restart must resume."""
        with self._lock:
            self._check_open()
            rows = self._read("SELECT * FROM prompts WHERE state IN ('queued', 'generating') ORDER BY created, rowid")
            found = self._merge([_prompt_from_row(r) for r in rows], self._held_prompts.values())
            return sorted((p for p in found if p.state in ACTIVE_STATES), key=lambda p: p.created)

    def prompts(self, client_id: str | None = None, limit: int = 100) -> list[PromptRecord]:
        """The latest prompts, newest first, of everyone or of one client (a phone coming back)."""
        with self._lock:
            self._check_open()
            if client_id is None:
                rows = self._read("SELECT * FROM prompts ORDER BY created DESC, rowid DESC LIMIT ?", (limit,))
            else:
                rows = self._read(
                    "SELECT * FROM prompts WHERE client_id = ? ORDER BY created DESC, rowid DESC LIMIT ?",
                    (client_id, limit),
                )
            held = (p for p in self._held_prompts.values() if client_id is None or p.client_id == client_id)
            found = self._merge([_prompt_from_row(r) for r in rows], held)
            return sorted(found, key=lambda p: p.created, reverse=True)[: max(limit, 0)]

    # ---- images --------------------------------------------------------------------------------------------

    def add_image(
        self,
        prompt_id: str,
        image: GeneratedImage | bytes | np.ndarray,
        metadata: Mapping[str, object],
        ext: str | None = None,
    ) -> ImageRecord:
        """Write the image file (atomically), then its row; a refusing disk keeps it in memory instead."""
        encoded, meta = _encode(image, metadata, ext)  # outside the lock: PNG encoding is the slow part
        _, meta_dict = _as_json("metadata", meta)
        with self._lock:
            self._check_open()
            self._require_prompt(prompt_id)
            stem = safe_stem(prompt_id)
            n = self._next_n(prompt_id, stem)
            image_id = f"{stem}-{n}"
            name = f"{image_id}.{encoded.ext}"
            record = ImageRecord(
                id=image_id, prompt_id=prompt_id, n=n, path=name, created=self._clock(), shown_at=None,
                metadata=meta_dict, width=encoded.width, height=encoded.height,
            )
            if self._write_file(name, encoded.data):
                self._save(images=[record])
                self._write_kept()
            else:
                kept = self._keep(image_id, name, encoded.data)
                record = replace(record, path=None, in_memory=kept)
                self._save(images=[record])
            return self._find_image(image_id) or record

    def mark_shown(self, image_id: str) -> ImageRecord:
        """Note that the image went on screen; its first showing fixes its place in the gallery."""
        with self._lock:
            self._check_open()
            old = self._find_image(image_id)
            if old is None:
                raise StoreError(f"unknown image {image_id!r}")
            if old.show_seq is not None:
                return old
            record = replace(old, shown_at=self._clock(), show_seq=self._next_seq)
            self._next_seq += 1
            self._save(images=[record])
            return record

    def image(self, image_id: str) -> ImageRecord | None:
        """One image's record, or None."""
        with self._lock:
            self._check_open()
            return self._find_image(image_id)

    def images(self, prompt_id: str) -> list[ImageRecord]:
        """A prompt's images in the order they were made."""
        with self._lock:
            self._check_open()
            rows = self._read("SELECT * FROM images WHERE prompt_id = ? ORDER BY n", (prompt_id,))
            held = (i for i in self._held_images.values() if i.prompt_id == prompt_id)
            return sorted(self._merge([_image_from_row(r) for r in rows], held), key=lambda i: i.n)

    def gallery(self) -> list[ImageRecord]:
        """Every image that has been on screen, in the order it was first shown."""
        with self._lock:
            self._check_open()
            rows = self._read("SELECT * FROM images WHERE show_seq IS NOT NULL ORDER BY show_seq")
            found = self._merge([_image_from_row(r) for r in rows], self._held_images.values())
            return sorted((i for i in found if i.show_seq is not None), key=lambda i: i.show_seq or 0)

    def image_path(self, image_id: str) -> Path | None:
        """Where the image file is, or None while it lives only in memory (or was lost)."""
        with self._lock:
            self._check_open()
            record = self._find_image(image_id)
            return None if record is None or record.path is None else self.folder / record.path

    def image_bytes(self, image_id: str) -> bytes | None:
        """The encoded image, from memory or from its file; None when it is gone."""
        with self._lock:
            self._check_open()
            kept = self._kept.get(image_id)
            if kept is not None:
                return kept[1]
            record = self._find_image(image_id)
            if record is None or record.path is None:
                return None
            path = self.folder / record.path
        try:
            return path.read_bytes()
        except OSError as err:
            log.warning("cannot read image %s: %s", path, _reason(err))
            return None

    def orphans(self) -> list[Path]:
        """Image files found at open with no row: a crash came between the file and its row."""
        return list(self._orphans)

    # ---- life cycle ----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Catch up what is held in memory if the disk allows, report what is lost, close the database."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._kept:
                    self._write_kept()
                if self._held_prompts or self._held_images:
                    self._save()
                lost_rows = len(self._held_prompts) + len(self._held_images)
                if lost_rows:
                    log.error("%d journal records could not be written to %s and are lost", lost_rows, self.db_path)
                if self._kept:
                    log.error("%d images kept in memory could not be written to %s and are lost",
                              len(self._kept), self.folder)
            finally:
                self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- internals (the lock is held) ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"journal {self.db_path} is closed")

    def _warn_once(self, kind: tuple[str, str], message: str, *args: object) -> None:
        """One warning per kind of failure: a full disk must not flood the log once per image."""
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning(message, *args)

    def _forget_warnings(self, *groups: str) -> None:
        """After a recovery, the next failure is news again."""
        self._warned = {k for k in self._warned if k[0] not in groups}

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        """A query that, if the database fails, answers from what is held in memory rather than raising."""
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as err:
            self._warn_once(("db-read", _sqlite_kind(err)), "cannot read journal %s (%s): answering from memory",
                            self.db_path, err)
            return []

    def _merge(self, rows: list[_R], held: Iterable[_R]) -> list[_R]:
        found = {r.id: r for r in rows}
        for record in held:
            found[record.id] = record  # held versions are newer than the database's
        return list(found.values())

    def _find_prompt(self, prompt_id: str) -> PromptRecord | None:
        held = self._held_prompts.get(prompt_id)
        if held is not None:
            return held
        rows = self._read("SELECT * FROM prompts WHERE id = ?", (prompt_id,))
        return _prompt_from_row(rows[0]) if rows else None

    def _require_prompt(self, prompt_id: str) -> PromptRecord:
        record = self._find_prompt(prompt_id)
        if record is None:
            raise StoreError(f"unknown prompt {prompt_id!r}")
        return record

    def _find_image(self, image_id: str) -> ImageRecord | None:
        held = self._held_images.get(image_id)
        if held is not None:
            return held
        rows = self._read("SELECT * FROM images WHERE id = ?", (image_id,))
        return _image_from_row(rows[0]) if rows else None

    def _next_n(self, prompt_id: str, stem: str) -> int:
        """The next image number; a number whose file exists (an orphan) is skipped, never overwritten."""
        rows = self._read("SELECT COALESCE(MAX(n), 0) FROM images WHERE prompt_id = ?", (prompt_id,))
        n = max([rows[0][0] if rows else 0] + [i.n for i in self._held_images.values() if i.prompt_id == prompt_id])
        n += 1
        while self._file_exists(f"{stem}-{n}.*"):
            n += 1
        return n

    def _file_exists(self, pattern: str) -> bool:
        try:
            return any(self.folder.glob(pattern))
        except OSError:
            return False

    def _save(self, prompts: Iterable[PromptRecord] = (), images: Iterable[ImageRecord] = ()) -> None:
        """Commit these rows and any held back; while the database refuses, hold them in memory instead."""
        held_prompts = dict(self._held_prompts)
        held_prompts.update((p.id, p) for p in prompts)
        held_images = dict(self._held_images)
        held_images.update((i.id, i) for i in images)
        try:
            self._commit_rows(list(held_prompts.values()), list(held_images.values()))
        except sqlite3.DatabaseError as err:
            self._held_prompts, self._held_images = held_prompts, held_images
            self._db_failing = True
            self._warn_once(("db", _sqlite_kind(err)),
                            "cannot write journal %s (%s): holding new records in memory until it works again",
                            self.db_path, err)
            return
        caught_up = len(self._held_prompts) + len(self._held_images)
        self._held_prompts, self._held_images = {}, {}
        if self._db_failing:
            self._db_failing = False
            self._forget_warnings("db", "db-read")
            log.info("journal %s is written again: %d held records saved", self.db_path, caught_up)

    def _commit_rows(self, prompts: list[PromptRecord], images: list[ImageRecord]) -> None:
        """One transaction: prompts before images, so held images find their held prompts."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_UPSERT_PROMPT, [_prompt_params(p) for p in prompts])
            conn.executemany(_UPSERT_IMAGE, [_image_params(i) for i in images])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    def _write_file(self, name: str, data: bytes) -> bool:
        """True when the file is safely on disk; False (warned once per kind) when the disk refused."""
        try:
            _write_atomic(self.folder / name, data)
        except OSError as err:
            self._files_failing = True
            self._warn_once(("file", errno.errorcode.get(err.errno or 0, str(err.errno))),
                            "cannot write images to %s: %s; keeping new images in memory (up to %d MB) "
                            "until the disk works again", self.folder, _reason(err), self._memory_limit >> 20)
            return False
        if self._files_failing:
            self._files_failing = False
            self._forget_warnings("file", "memory")
            log.info("image files are written to %s again", self.folder)
        return True

    def _keep(self, image_id: str, name: str, data: bytes) -> bool:
        """Hold a refused image in memory within the budget, dropping the oldest held first."""
        if len(data) > self._memory_limit:
            self._warn_once(("memory", "too-big"), "image %s (%d bytes) is larger than the in-memory budget: "
                            "it is lost", image_id, len(data))
            return False
        while self._kept and self._kept_bytes + len(data) > self._memory_limit:
            old_id, (_, old_data) = self._kept.popitem(last=False)
            self._kept_bytes -= len(old_data)
            self._warn_once(("memory", "full"), "in-memory image budget (%d MB) is full: dropping the oldest "
                            "held images, starting with %s", self._memory_limit >> 20, old_id)
            old = self._find_image(old_id)
            if old is not None:
                self._save(images=[replace(old, in_memory=False)])
        self._kept[image_id] = (name, data)
        self._kept_bytes += len(data)
        return True

    def _write_kept(self) -> None:
        """Move images held in memory to their files, oldest first, until the disk refuses again."""
        while self._kept:
            image_id, (name, data) = next(iter(self._kept.items()))
            if not self._write_file(name, data):
                return
            del self._kept[image_id]
            self._kept_bytes -= len(data)
            record = self._find_image(image_id)
            if record is not None:
                self._save(images=[replace(record, path=name, in_memory=False)])
