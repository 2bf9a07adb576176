"""The ``Journal`` facade: one lock over the rows and the image files, and the show's calls on them.

Locking: one re-entrant lock guards the rows and every decision that spans rows and files, and is never held
while an image file is written. ``add_image`` reserves the image's number under the lock (so two images of one
prompt never get the same number), writes the file with no lock held, then takes the lock again to save the
row; a ``set_state`` from the show never waits behind the disk. Writing held images out once the disk works
again happens the same way, one thread at a time.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np

from engine.contract import FINAL_STATES, State
from engine.errors import ImageError
from engine.gen import images
from engine.gen.base import GeneratedImage
from engine.store.errors import StoreError, describe, log
from engine.store.files import DEFAULT_MEMORY_LIMIT, Fsync, ImageFiles, prepare_folder
from engine.store.rows import (
    DB_NAME,
    ImageRecord,
    PromptRecord,
    Rows,
    as_json,
    check_text,
    closed_on_failure,
    connect,
)


@dataclass(frozen=True)
class _Encoded:
    data: bytes
    ext: str
    width: int | None
    height: int | None


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
        try:
            data = images.encode(payload, "png")
        except ImageError as err:
            raise StoreError(str(err)) from None
        encoded = _Encoded(data, "png", int(payload.shape[1]), int(payload.shape[0]))
    else:
        data = bytes(payload)
        if not data:
            raise StoreError("image: no bytes")
        kind = images.sniff(data) or images.ext_for_mime(mime) or "bin"
        encoded = _Encoded(data, kind, *images.size_of(data))
    if ext is not None:
        wanted = ext.lower().lstrip(".")
        if not images.EXT.match(wanted):
            raise StoreError(f"ext: {ext!r} is not a plain file extension")
        encoded = replace(encoded, ext=wanted)
    return encoded, meta


class Journal:
    """The show's prompts and images, on disk; safe to call from several threads (one connection, one lock)."""

    def __init__(
        self,
        folder: Path,
        conn: sqlite3.Connection,
        *,
        memory_limit: int,
        clock: Callable[[], float],
        fsync: Fsync = os.fsync,
    ) -> None:
        """Use ``Journal.open``; this only wires the parts together."""
        self.folder = folder
        self.db_path = folder / DB_NAME
        self._conn = conn
        self._clock = clock
        self._lock = threading.RLock()
        self._closed = False
        self._rows = Rows(conn, self.db_path)
        self._files = ImageFiles(folder, memory_limit=memory_limit, fsync=fsync)
        self._reserved: dict[str, set[int]] = {}  # prompt id → image numbers being written now, rows not saved
        self._catching_up = threading.Lock()  # one thread at a time writes held images out
        self._orphans: list[Path] = []

    @classmethod
    def open(
        cls,
        output_dir: Path,
        today: datetime.date | None = None,
        *,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        clock: Callable[[], float] = time.time,
        fsync: Fsync = os.fsync,
    ) -> Journal:
        """Open today's show folder, creating it, or resume it after a restart; ``fsync`` syncs image files."""
        day = today if today is not None else datetime.date.today()
        folder = Path(output_dir) / day.isoformat()
        prepare_folder(folder, fsync)
        conn = connect(folder / DB_NAME)
        with closed_on_failure(conn, lambda err: f"journal {folder / DB_NAME} cannot be written: {err}"):
            journal = cls(folder, conn, memory_limit=memory_limit, clock=clock, fsync=fsync)
            journal._recover()
        return journal

    def _recover(self) -> None:
        """Note what the last run left: images that lived only in its memory, and files without a row."""
        lost, known = self._rows.recover()
        if lost:
            log.warning("%d images were only in the last run's memory and are lost (rows kept, no file)", lost)
        self._orphans = self._files.scan(known)
        if self._orphans:
            log.warning("%d image files in %s have no journal row (a crash between file and row); "
                        "they are kept but not in the gallery", len(self._orphans), self.folder)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Several writes, one commit: what the show's scribe does with every round of queued steps.

        The journal's lock is held throughout (keep the batch short); a write that fails inside it
        fails alone, and the rest still commit at the end.
        """
        with self._lock:
            self._check_open()
            self._rows.deferred = True
            try:
                yield
            finally:
                self._rows.deferred = False
                self._rows.save()

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
        check_text("prompt_id", prompt_id)
        if not prompt_id:
            raise StoreError("prompt_id: must not be empty")
        check_text("client_id", client_id)
        check_text("text", text)
        _, settings_dict = as_json("settings", settings)
        with self._lock:
            self._check_open()
            if self._rows.find_prompt(prompt_id) is not None:
                raise StoreError(f"prompt {prompt_id!r} is already in the journal")
            when = self._clock() if created is None else float(created)
            record = PromptRecord(
                id=prompt_id, client_id=client_id, text=text, state=State.QUEUED, reason=None,
                settings=settings_dict, created=when, updated=when, approved=None,
            )
            self._rows.save(prompts=[record])
            return record

    def set_state(self, prompt_id: str, state: State | str, reason: str | None = None) -> PromptRecord:
        """Move a prompt to ``state``, stamping started/finished; ``reason`` replaces the last one."""
        try:
            new = State(state)
        except ValueError:
            allowed = ", ".join(s.value for s in State)
            raise StoreError(f"state: {state!r} is not one of {allowed}") from None
        if reason is not None:
            check_text("reason", reason)
        with self._lock:
            self._check_open()
            old = self._require_prompt(prompt_id)
            now = self._clock()
            started, finished = old.started, old.finished
            if new is State.GENERATING:
                started, finished = now, None
            elif new is State.QUEUED:
                started, finished = None, None
            elif new in FINAL_STATES:
                finished = now
            record = replace(old, state=new, reason=reason, updated=now, started=started, finished=finished)
            self._rows.save(prompts=[record])
            return record

    def set_approval(self, prompt_id: str, approved: bool, reason: str | None = None) -> PromptRecord:
        """The VJ's verdict in moderation mode; the state is the caller's to change."""
        if not isinstance(approved, bool):
            raise StoreError(f"approved: expected true or false, got {approved!r}")
        if reason is not None:
            check_text("reason", reason)
        with self._lock:
            self._check_open()
            old = self._require_prompt(prompt_id)
            record = replace(old, approved=approved, reason=reason if reason is not None else old.reason,
                             updated=self._clock())
            self._rows.save(prompts=[record])
            return record

    def prompt(self, prompt_id: str) -> PromptRecord | None:
        """One prompt, or None when the journal has never seen it."""
        with self._lock:
            self._check_open()
            return self._rows.find_prompt(prompt_id)

    def unfinished(self) -> list[PromptRecord]:
        """Prompts still queued or generating, oldest first: what a restart must resume."""
        with self._lock:
            self._check_open()
            return self._rows.unfinished()

    def prompts(self, client_id: str | None = None, limit: int = 100) -> list[PromptRecord]:
        """The latest prompts, newest first, of everyone or of one client (a phone coming back)."""
        with self._lock:
            self._check_open()
            return self._rows.prompts(client_id, limit)

    # ---- images --------------------------------------------------------------------------------------------

    def add_image(
        self,
        prompt_id: str,
        image: GeneratedImage | bytes | np.ndarray,
        metadata: Mapping[str, object],
        ext: str | None = None,
    ) -> ImageRecord:
        """Write the image file (atomically), then its row; a refusing disk keeps it in memory instead.

        The file is written with no lock held: only the number is reserved before, and the row saved after.
        """
        encoded, meta = _encode(image, metadata, ext)  # outside the lock: PNG encoding is the slow part
        _, meta_dict = as_json("metadata", meta)
        with self._lock:
            self._check_open()
            self._require_prompt(prompt_id)
            n = self._reserve_n(prompt_id)
            created = self._clock()
        try:
            image_id = images.make_image_id(images.safe_stem(prompt_id), n)
            name = images.file_name(image_id, encoded.ext)
            written = self._files.write(name, encoded.data)  # the slow part on a slow disk: no lock held
            with self._lock:
                self._check_open()
                record = ImageRecord(
                    id=image_id, prompt_id=prompt_id, n=n, path=name, created=created, shown_at=None,
                    metadata=meta_dict, width=encoded.width, height=encoded.height,
                )
                if not written:
                    record = replace(record, path=None, in_memory=self._keep(image_id, name, encoded.data))
                self._rows.save(images=[record])
                record = self._rows.find_image(image_id) or record
        finally:
            with self._lock:
                self._release_n(prompt_id, n)
        if written:
            self._catch_up()
        return record

    def mark_shown(self, image_id: str) -> ImageRecord:
        """Note that the image went on screen; its first showing fixes its place in the gallery."""
        with self._lock:
            self._check_open()
            old = self._rows.find_image(image_id)
            if old is None:
                raise StoreError(f"unknown image {image_id!r}")
            if old.show_seq is not None:
                return old
            record = replace(old, shown_at=self._clock(), show_seq=self._rows.take_show_seq())
            self._rows.save(images=[record])
            return record

    def image(self, image_id: str) -> ImageRecord | None:
        """One image's record, or None."""
        with self._lock:
            self._check_open()
            return self._rows.find_image(image_id)

    def images(self, prompt_id: str) -> list[ImageRecord]:
        """A prompt's images in the order they were made."""
        with self._lock:
            self._check_open()
            return self._rows.images(prompt_id)

    def gallery(self) -> list[ImageRecord]:
        """Every image that has been on screen, in the order it was first shown."""
        with self._lock:
            self._check_open()
            return self._rows.gallery()

    def image_path(self, image_id: str) -> Path | None:
        """Where the image file is, or None while it lives only in memory (or was lost)."""
        with self._lock:
            self._check_open()
            record = self._rows.find_image(image_id)
            return None if record is None or record.path is None else self.folder / record.path

    def image_bytes(self, image_id: str) -> bytes | None:
        """The encoded image, from memory or from its file; None when it is gone."""
        with self._lock:
            self._check_open()
            kept = self._files.held(image_id)
            if kept is not None:
                return kept
            record = self._rows.find_image(image_id)
            if record is None or record.path is None:
                return None
            path = self.folder / record.path
        try:
            return path.read_bytes()
        except OSError as err:
            log.warning("cannot read image %s: %s", path, describe(err))
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
        try:
            self._catch_up(wait=True)
        finally:
            self._shut()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _shut(self) -> None:
        """Save held rows if the database allows, report what only memory held, close the database."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._rows.held_count():
                    self._rows.save()
                lost_rows = self._rows.held_count()
                if lost_rows:
                    log.error("%d journal records could not be written to %s and are lost", lost_rows, self.db_path)
                lost_images = self._files.held_count()
                if lost_images:
                    log.error("%d images kept in memory could not be written to %s and are lost",
                              lost_images, self.folder)
            finally:
                self._conn.close()

    # ---- internals (the lock is held, except in _catch_up) -------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"journal {self.db_path} is closed")

    def _require_prompt(self, prompt_id: str) -> PromptRecord:
        record = self._rows.find_prompt(prompt_id)
        if record is None:
            raise StoreError(f"unknown prompt {prompt_id!r}")
        return record

    def _reserve_n(self, prompt_id: str) -> int:
        """The next image number, reserved until its row is saved; a number whose file exists (an orphan)
        is skipped, never overwritten."""
        reserved = self._reserved.setdefault(prompt_id, set())
        n = max([self._rows.last_n(prompt_id), *reserved]) + 1
        stem = images.safe_stem(prompt_id)
        while self._files.exists(images.file_pattern(images.make_image_id(stem, n))):
            n += 1
        reserved.add(n)
        return n

    def _release_n(self, prompt_id: str, n: int) -> None:
        reserved = self._reserved.get(prompt_id)
        if reserved is not None:
            reserved.discard(n)
            if not reserved:
                del self._reserved[prompt_id]

    def _keep(self, image_id: str, name: str, data: bytes) -> bool:
        """Hold a refused image in memory; the rows of images dropped for it say they are no longer there."""
        kept, dropped = self._files.keep(image_id, name, data)
        for old_id in dropped:
            old = self._rows.find_image(old_id)
            if old is not None:
                self._rows.save(images=[replace(old, in_memory=False)])
        return kept

    def catch_up(self) -> int:
        """Try again to write the images held in memory (a disk that came back); how many are still held."""
        if self._files.held_count():
            self._catch_up()
        return self._files.held_count()

    def _catch_up(self, wait: bool = False) -> None:
        """Write images held in memory to their files, oldest first, until the disk refuses again.

        Runs without the journal lock while a file is written; one thread at a time (others go on, unless
        ``wait``). An image dropped from memory while its file was being written still gets its path.
        """
        if not self._catching_up.acquire(blocking=wait):
            return
        try:
            while (oldest := self._files.oldest()) is not None:
                image_id, name, data = oldest
                if not self._files.write(name, data):
                    return
                with self._lock:
                    if self._closed:
                        return
                    self._files.release(image_id)
                    record = self._rows.find_image(image_id)
                    if record is not None:
                        self._rows.save(images=[replace(record, path=name, in_memory=False)])
        finally:
            self._catching_up.release()
