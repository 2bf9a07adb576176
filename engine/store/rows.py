"""The journal's SQLite side: schema, connection, records, and the rows held in memory while the database refuses.

``journal.sqlite3`` is SQLite in WAL mode, ``synchronous=NORMAL``, foreign keys on. Every write commits before it
returns, so an engine crash loses nothing a call has returned (a power cut may lose the last commits: that is
what NORMAL trades for speed in WAL mode).

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

When a write fails, the rows are held in memory, newest version per id, and reads answer from there first; the
next write that works commits them too. ``Rows`` is not thread-safe: the journal calls it with its lock held.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from engine.contract import State
from engine.store.errors import StoreError, Warnings, log

DB_NAME = "journal.sqlite3"
SCHEMA_VERSION = 1

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

# One vocabulary of prompt states for the wire and the journal (protocol.py is sans-I/O).
ACTIVE_STATES = frozenset({State.QUEUED, State.GENERATING})  # what a restart must resume


@dataclass(frozen=True)
class PromptRecord:
    """One prompt as the journal knows it; times are ``time.time()`` seconds."""

    id: str
    client_id: str
    text: str
    state: State
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


# ---- text and JSON in ------------------------------------------------------------------------------------


def check_text(field: str, value: str) -> str:
    """Refuse text that SQLite cannot hold as UTF-8 (lone surrogates); everything else is kept verbatim."""
    if not isinstance(value, str):
        raise StoreError(f"{field}: expected text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise StoreError(f"{field}: not valid Unicode text (a lone surrogate at {err.start})") from None
    return value


def as_json(field: str, value: Mapping[str, object]) -> tuple[str, dict[str, Any]]:
    """The JSON text stored, and the dict it reads back as: what a caller gets equals what a restart gets."""
    try:
        text = json.dumps(dict(value), default=str)
    except (TypeError, ValueError) as err:
        raise StoreError(f"{field}: cannot be stored as JSON: {err}") from err
    loaded = json.loads(text)
    return text, loaded


# ---- rows ↔ records --------------------------------------------------------------------------------------


def prompt_from_row(row: sqlite3.Row) -> PromptRecord:
    approved = row["approved"]
    return PromptRecord(
        id=row["id"],
        client_id=row["client_id"],
        text=row["text"],
        state=State(row["state"]),
        reason=row["reason"],
        settings=json.loads(row["settings"]),
        created=row["created"],
        updated=row["updated"],
        approved=None if approved is None else bool(approved),
        started=row["started"],
        finished=row["finished"],
    )


def image_from_row(row: sqlite3.Row) -> ImageRecord:
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


def prompt_params(p: PromptRecord) -> dict[str, object]:
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


def image_params(i: ImageRecord) -> dict[str, object]:
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


# ---- the database ----------------------------------------------------------------------------------------


def _sqlite_kind(err: sqlite3.Error) -> str:
    name = getattr(err, "sqlite_errorname", None)
    return name if isinstance(name, str) else type(err).__name__


def connect(path: Path) -> sqlite3.Connection:
    """Open (or create) the journal database; anything unusable is one StoreError naming the file."""
    try:
        conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as err:
        raise StoreError(f"cannot open journal {path}: {err}") from err
    hint = "move it away to start a fresh journal"
    with closed_on_failure(conn, lambda err: f"journal {path} is not a usable database ({err}); {hint}"):
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
    return conn


@contextlib.contextmanager
def closed_on_failure(conn: sqlite3.Connection, what: Callable[[sqlite3.DatabaseError], str]) -> Iterator[None]:
    """Close ``conn`` when the block fails: a database error becomes one StoreError saying ``what(err)``."""
    try:
        yield
    except sqlite3.DatabaseError as err:
        conn.close()
        raise StoreError(what(err)) from err
    except BaseException:
        conn.close()
        raise


class Rows:
    """The prompts and images tables, with the rows the database refused held in memory and read back first."""

    def __init__(self, conn: sqlite3.Connection, db_path: Path) -> None:
        self.conn = conn
        self.db_path = db_path
        # rows whose latest version the database refused, newest version per id; reads look here first
        self._held_prompts: dict[str, PromptRecord] = {}
        self._held_images: dict[str, ImageRecord] = {}
        self._failing = False
        self.deferred = False  # inside Journal.batch(): rows wait in memory for one commit at its end
        self._warnings = Warnings()
        self._next_seq = 1

    def recover(self) -> tuple[int, set[str]]:
        """After a restart: clear the last run's in-memory marks; how many there were, and the known file names.

        Raises sqlite3.DatabaseError: a database that cannot be written at start-up is the caller's StoreError.
        """
        cur = self.conn.execute("UPDATE images SET in_memory = 0 WHERE in_memory = 1")
        self._next_seq = self.conn.execute("SELECT COALESCE(MAX(show_seq), 0) + 1 FROM images").fetchone()[0]
        known = {row[0] for row in self.conn.execute("SELECT path FROM images WHERE path IS NOT NULL")}
        return cur.rowcount, known

    # ---- reads ---------------------------------------------------------------------------------------------

    def read(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        """A query that, if the database fails, answers from what is held in memory rather than raising."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as err:
            self._warnings.once(("db-read", _sqlite_kind(err)),
                                "cannot read journal %s (%s): answering from memory", self.db_path, err)
            return []

    def find_prompt(self, prompt_id: str) -> PromptRecord | None:
        held = self._held_prompts.get(prompt_id)
        if held is not None:
            return held
        rows = self.read("SELECT * FROM prompts WHERE id = ?", (prompt_id,))
        return prompt_from_row(rows[0]) if rows else None

    def find_image(self, image_id: str) -> ImageRecord | None:
        held = self._held_images.get(image_id)
        if held is not None:
            return held
        rows = self.read("SELECT * FROM images WHERE id = ?", (image_id,))
        return image_from_row(rows[0]) if rows else None

    def unfinished(self) -> list[PromptRecord]:
        """Prompts still queued or generating, oldest first."""
        rows = self.read("SELECT * FROM prompts WHERE state IN ('queued', 'generating') ORDER BY created, rowid")
        found = _merge([prompt_from_row(r) for r in rows], self._held_prompts.values())
        return sorted((p for p in found if p.state in ACTIVE_STATES), key=lambda p: p.created)

    def prompts(self, client_id: str | None, limit: int) -> list[PromptRecord]:
        """The latest prompts, newest first, of everyone or of one client."""
        if client_id is None:
            rows = self.read("SELECT * FROM prompts ORDER BY created DESC, rowid DESC LIMIT ?", (limit,))
        else:
            rows = self.read(
                "SELECT * FROM prompts WHERE client_id = ? ORDER BY created DESC, rowid DESC LIMIT ?",
                (client_id, limit),
            )
        held = (p for p in self._held_prompts.values() if client_id is None or p.client_id == client_id)
        found = _merge([prompt_from_row(r) for r in rows], held)
        return sorted(found, key=lambda p: p.created, reverse=True)[: max(limit, 0)]

    def images(self, prompt_id: str) -> list[ImageRecord]:
        """A prompt's images in the order they were made."""
        rows = self.read("SELECT * FROM images WHERE prompt_id = ? ORDER BY n", (prompt_id,))
        held = (i for i in self._held_images.values() if i.prompt_id == prompt_id)
        return sorted(_merge([image_from_row(r) for r in rows], held), key=lambda i: i.n)

    def gallery(self) -> list[ImageRecord]:
        """Every image that has been on screen, in the order it was first shown."""
        rows = self.read("SELECT * FROM images WHERE show_seq IS NOT NULL ORDER BY show_seq")
        found = _merge([image_from_row(r) for r in rows], self._held_images.values())
        return sorted((i for i in found if i.show_seq is not None), key=lambda i: i.show_seq or 0)

    def last_n(self, prompt_id: str) -> int:
        """The highest image number the prompt has a row for, held rows included; 0 for none."""
        rows = self.read("SELECT COALESCE(MAX(n), 0) FROM images WHERE prompt_id = ?", (prompt_id,))
        return max([rows[0][0] if rows else 0] + [i.n for i in self._held_images.values() if i.prompt_id == prompt_id])

    def take_show_seq(self) -> int:
        """The next place in the gallery, used up by this call."""
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def held_count(self) -> int:
        """How many rows live only in memory."""
        return len(self._held_prompts) + len(self._held_images)

    # ---- writes --------------------------------------------------------------------------------------------

    def save(self, prompts: Iterable[PromptRecord] = (), images: Iterable[ImageRecord] = ()) -> None:
        """Commit these rows and any held back; while the database refuses, hold them in memory instead."""
        if self.deferred:  # reads look at held rows first, so the batch reads its own writes
            self._held_prompts.update((p.id, p) for p in prompts)
            self._held_images.update((i.id, i) for i in images)
            return
        held_prompts = dict(self._held_prompts)
        held_prompts.update((p.id, p) for p in prompts)
        held_images = dict(self._held_images)
        held_images.update((i.id, i) for i in images)
        try:
            self.commit(list(held_prompts.values()), list(held_images.values()))
        except sqlite3.DatabaseError as err:
            self._held_prompts, self._held_images = held_prompts, held_images
            self._failing = True
            self._warnings.once(("db", _sqlite_kind(err)),
                                "cannot write journal %s (%s): holding new records in memory until it works again",
                                self.db_path, err)
            return
        caught_up = self.held_count()
        self._held_prompts, self._held_images = {}, {}
        if self._failing:
            self._failing = False
            self._warnings.forget("db", "db-read")
            log.info("journal %s is written again: %d held records saved", self.db_path, caught_up)

    def commit(self, prompts: list[PromptRecord], images: list[ImageRecord]) -> None:
        """One transaction: prompts before images, so held images find their held prompts."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_UPSERT_PROMPT, [prompt_params(p) for p in prompts])
            conn.executemany(_UPSERT_IMAGE, [image_params(i) for i in images])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise


def _merge(rows: list[_R], held: Iterable[_R]) -> list[_R]:
    found = {r.id: r for r in rows}
    for record in held:
        found[record.id] = record  # held versions are newer than the database's
    return list(found.values())
