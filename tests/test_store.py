"""The show journal: prompts and images on disk before they are shown, back after a restart, a full disk survived."""

from __future__ import annotations

import datetime
import errno
import io
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import store
from engine.contract import State
from engine.errors import EngineError
from engine.gen.base import GeneratedImage
from engine.store import Journal, StoreError, files
from engine.store.rows import Rows
from tests.fakes import FakeClock

DAY = datetime.date(2025, 6, 21)
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]+-[0-9]+\.[a-z0-9]+$")


def encoded(fmt: str = "PNG", size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buf, format=fmt)
    return buf.getvalue()


def open_journal(root: Path, memory_limit: int = store.DEFAULT_MEMORY_LIMIT) -> Journal:
    return Journal.open(root, DAY, memory_limit=memory_limit, clock=FakeClock(1000.0, tick=1.0))


def crash_copy(root: Path, dest: Path) -> Path:
    """What a crash leaves behind: the files exactly as they are, the connection never closed."""
    shutil.copytree(root, dest)
    assert (dest / "2025-06-21" / "journal.sqlite3-wal").stat().st_size > 0  # the commits are still in the WAL
    return dest


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "engine.store" and r.levelno == logging.WARNING]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def journal(root: Path) -> Iterator[Journal]:
    j = open_journal(root)
    yield j
    j.close()


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Callable[[int | None], None]:
    """Switch image writes between working (None) and failing with an errno."""
    failure: list[int | None] = [None]
    real = files.write_atomic

    def write(path: Path, data: bytes, fsync: files.Fsync = os.fsync) -> None:
        code = failure[0]
        if code is not None:
            raise OSError(code, "simulated " + errno.errorcode[code], str(path))
        real(path, data, fsync)

    monkeypatch.setattr(files, "write_atomic", write)

    def set_failure(code: int | None) -> None:
        failure[0] = code

    return set_failure


# ---- opening ---------------------------------------------------------------------------------------------


def test_open_creates_dated_folder_and_wal_db(root: Path) -> None:
    """The show folder is <output>/<date>/ with a WAL journal, synchronous NORMAL and foreign keys on."""
    with open_journal(root) as j:
        assert j.folder == root / "2025-06-21" and j.folder.is_dir()
        assert j.db_path == j.folder / "journal.sqlite3" and j.db_path.is_file()
        assert j._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert j._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert j._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert [p.name for p in j.folder.iterdir() if p.name.startswith(".")] == []  # the write probe is gone


def test_output_dir_under_a_file_is_a_store_error(tmp_path: Path) -> None:
    """An output folder that cannot exist (a regular file in its path) fails at start-up, naming the path."""
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError) as info:
        Journal.open(tmp_path / "afile" / "out", DAY)
    assert str(tmp_path / "afile" / "out" / "2025-06-21") in str(info.value)
    assert "Not a directory" in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, EngineError)


def test_file_where_show_folder_should_be_is_a_store_error(root: Path) -> None:
    """A file in the way of the dated folder is one clear error naming it."""
    root.mkdir()
    (root / "2025-06-21").write_text("")
    with pytest.raises(StoreError, match=r"2025-06-21: .*File exists"):
        Journal.open(root, DAY)


def test_read_only_folder_is_a_store_error(root: Path, disk: Callable[[int | None], None]) -> None:
    """A folder that takes no file (read-only file system) fails at start-up, not at the first image."""
    disk(errno.EROFS)
    with pytest.raises(StoreError, match=r"cannot use show folder .*2025-06-21: .*\(EROFS\)"):
        Journal.open(root, DAY)


def test_corrupt_database_is_a_store_error(root: Path) -> None:
    """A journal file that is not SQLite gives one clear StoreError naming the file."""
    folder = root / "2025-06-21"
    folder.mkdir(parents=True)
    (folder / "journal.sqlite3").write_bytes(b"this is not a database, it is a setlist\n" * 200)
    with pytest.raises(StoreError, match=r"journal\.sqlite3 is not a usable database"):
        Journal.open(root, DAY)


def test_newer_schema_is_a_store_error(root: Path) -> None:
    """A journal written by a newer engine is refused rather than misread."""
    folder = root / "2025-06-21"
    folder.mkdir(parents=True)
    conn = sqlite3.connect(folder / "journal.sqlite3")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Journal.open(root, DAY)


def test_reopen_resumes_prompts_and_images(root: Path) -> None:
    """Opening the same folder again finds every prompt, image and the gallery."""
    with open_journal(root) as j:
        j.record_prompt("p1", "c1", "a red fox", {"seed": 7})
        image = j.add_image("p1", encoded(), {"backend": "procedural"})
        j.mark_shown(image.id)
    with open_journal(root) as j:
        p = j.prompt("p1")
        assert p is not None and p.text == "a red fox" and p.settings == {"seed": 7}
        assert [i.id for i in j.gallery()] == [image.id]
        assert j.images("p1")[0].metadata == {"backend": "procedural"}
        assert j.image_bytes(image.id) == encoded()


def test_the_store_never_loads_gl_or_windowing() -> None:
    """engine.store runs in the backstage process, which must never load moderngl or pyglet."""
    code = ("import sys, engine.store; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('moderngl', 'pyglet')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_closed_journal_refuses_calls(root: Path) -> None:
    """After close() every call is a StoreError, and closing twice is harmless."""
    j = open_journal(root)
    j.close()
    j.close()
    with pytest.raises(StoreError, match="closed"):
        j.prompt("p1")


# ---- prompts ---------------------------------------------------------------------------------------------


def test_prompt_lifecycle_timestamps(journal: Journal) -> None:
    """Each state change stamps updated; generating stamps started, done stamps finished."""
    p = journal.record_prompt("p1", "c1", "stars", {})
    assert (p.state, p.created, p.updated, p.started, p.finished) == (State.QUEUED, 1001, 1001, None, None)
    p = journal.set_state("p1", State.GENERATING)
    assert (p.state, p.updated, p.started, p.finished) == ("generating", 1002, 1002, None)
    p = journal.set_state("p1", "showing")
    assert (p.updated, p.started, p.finished) == (1003, 1002, None)
    p = journal.set_state("p1", "done", reason="shown")
    assert (p.updated, p.started, p.finished, p.reason) == (1004, 1002, 1004, "shown")
    assert journal.prompt("p1") == p


def test_invalid_state_is_a_store_error(journal: Journal) -> None:
    """A state outside State is refused and the prompt is unchanged."""
    journal.record_prompt("p1", "c1", "x", {})
    with pytest.raises(StoreError, match="'dancing' is not one of queued, generating"):
        journal.set_state("p1", "dancing")
    record = journal.prompt("p1")
    assert record is not None and record.state is State.QUEUED


def test_unknown_ids_are_store_errors(journal: Journal) -> None:
    """Changing or adding to a prompt or image the journal never saw is a StoreError."""
    for call in (
        lambda: journal.set_state("nope", "done"),
        lambda: journal.set_approval("nope", True),
        lambda: journal.add_image("nope", encoded(), {}),
        lambda: journal.mark_shown("nope-1"),
    ):
        with pytest.raises(StoreError, match="unknown"):
            call()
    assert journal.prompt("nope") is None and journal.image_path("nope-1") is None
    assert list(journal.folder.glob("*.png")) == []


def test_duplicate_prompt_id_is_a_store_error(journal: Journal) -> None:
    """A prompt id is recorded once; the first text stays."""
    journal.record_prompt("p1", "c1", "first", {})
    with pytest.raises(StoreError, match="already"):
        journal.record_prompt("p1", "c2", "second", {})
    record = journal.prompt("p1")
    assert record is not None and record.text == "first"


def test_approval_is_none_until_the_vj_decides(journal: Journal) -> None:
    """approved starts None; set_approval stores the verdict and its reason without touching the state."""
    assert journal.record_prompt("p1", "c1", "x", {}).approved is None
    p = journal.set_approval("p1", False, reason="not for this crowd")
    assert (p.approved, p.reason, p.state) == (False, "not for this crowd", State.QUEUED)
    assert journal.set_approval("p1", True).approved is True


def test_unfinished_after_crash_is_queued_and_generating_oldest_first(root: Path, tmp_path: Path) -> None:
    """After a crash (files copied with the connection open), unfinished() gives queued+generating, oldest first."""
    j = open_journal(root)
    for pid, created in (("late", 50.0), ("early", 10.0), ("done", 5.0), ("mid", 30.0), ("failed", 1.0)):
        j.record_prompt(pid, "c1", pid, {}, created=created)
    j.set_state("mid", "generating")
    j.set_state("done", "done")
    j.set_state("failed", "failed", reason="moderated")
    crashed = crash_copy(root, tmp_path / "crashed")
    j.close()
    with open_journal(crashed) as again:
        assert [(p.id, p.state) for p in again.unfinished()] == [
            ("early", "queued"), ("mid", "generating"), ("late", "queued")]


def test_prompts_by_client_newest_first(journal: Journal) -> None:
    """prompts() lists newest first, for everyone or one client, up to the limit."""
    for n in range(5):
        journal.record_prompt(f"p{n}", "a" if n % 2 else "b", f"t{n}", {})
    assert [p.id for p in journal.prompts()] == ["p4", "p3", "p2", "p1", "p0"]
    assert [p.id for p in journal.prompts(client_id="a")] == ["p3", "p1"]
    assert [p.id for p in journal.prompts(limit=2)] == ["p4", "p3"]


# ---- images ----------------------------------------------------------------------------------------------


def test_png_from_pixels_round_trips(journal: Journal) -> None:
    """An RGBA pixel array is written as a PNG that decodes to the same pixels."""
    pixels = np.random.default_rng(1).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    journal.record_prompt("p1", "c1", "noise", {})
    image = journal.add_image("p1", GeneratedImage(pixels=pixels, seed=42), {"backend": "procedural"})
    assert (image.path, image.width, image.height) == ("p1-1.png", 7, 5)
    assert image.metadata == {"seed": 42, "backend": "procedural"}
    path = journal.image_path(image.id)
    assert path is not None
    with Image.open(path) as im:
        assert im.mode == "RGBA"
        assert np.array_equal(np.asarray(im), pixels)


@pytest.mark.parametrize(("fmt", "mime", "ext"), [("PNG", "image/png", "png"), ("JPEG", "image/jpeg", "jpg"),
                                                  ("WEBP", "image/webp", "webp")])
def test_encoded_bytes_kept_verbatim(journal: Journal, fmt: str, mime: str, ext: str) -> None:
    """Bytes from an API are written exactly as received, with the extension their type calls for."""
    data = encoded(fmt)
    journal.record_prompt("p1", "c1", "x", {})
    image = journal.add_image("p1", GeneratedImage(data=data, mime=mime), {})
    path = journal.image_path(image.id)
    assert path is not None and path.name == f"p1-1.{ext}" and path.read_bytes() == data
    assert (image.width, image.height) == (8, 6)


def test_raw_bytes_get_their_extension_from_content(journal: Journal) -> None:
    """Plain bytes are named by what they are (JPEG here), whatever mime is missing."""
    journal.record_prompt("p1", "c1", "x", {})
    assert journal.add_image("p1", encoded("JPEG"), {}).path == "p1-1.jpg"
    assert journal.add_image("p1", b"not an image at all", {}).path == "p1-2.bin"


def test_images_numbered_per_prompt(journal: Journal) -> None:
    """A prompt's images are <id>-1, <id>-2, ... and listed in that order."""
    journal.record_prompt("p1", "c1", "x", {})
    journal.record_prompt("p2", "c1", "y", {})
    journal.add_image("p1", encoded(), {})
    journal.add_image("p2", encoded(), {})
    journal.add_image("p1", encoded(), {})
    assert [i.id for i in journal.images("p1")] == ["p1-1", "p1-2"]


def test_gallery_in_show_order(root: Path) -> None:
    """gallery() lists shown images in the order first shown, also after a restart."""
    with open_journal(root) as j:
        j.record_prompt("p1", "c1", "x", {})
        ids = [j.add_image("p1", encoded(), {}).id for _ in range(4)]
        for k in (2, 0, 3):
            j.mark_shown(ids[k])
        j.mark_shown(ids[2])  # shown again: keeps its first place
        expected = [ids[2], ids[0], ids[3]]
        assert [i.id for i in j.gallery()] == expected
    with open_journal(root) as j:
        assert [i.id for i in j.gallery()] == expected
        assert all(i.shown_at is not None for i in j.gallery())


def test_crash_between_file_and_row_leaves_a_harmless_orphan(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The file is written before its row; a crash in between leaves a reported orphan that is never overwritten."""

    class Crash(Exception):
        pass

    def crash(*args: object) -> None:
        raise Crash

    j = open_journal(root)
    j.record_prompt("p1", "c1", "x", {})
    monkeypatch.setattr(Rows, "commit", crash)
    with pytest.raises(Crash):
        j.add_image("p1", encoded("JPEG"), {})
    monkeypatch.undo()
    orphan = j.folder / "p1-1.jpg"
    assert orphan.read_bytes() == encoded("JPEG")
    j.close()
    with open_journal(root) as again:
        assert again.orphans() == [orphan]
        assert any("no journal row" in w for w in warnings_of(caplog))
        assert again.images("p1") == []
        assert again.add_image("p1", encoded(), {}).path == "p1-2.png"
        assert orphan.read_bytes() == encoded("JPEG")


def test_file_names_never_hold_unsafe_characters(journal: Journal) -> None:
    """A prompt id with path characters becomes a safe, distinct stem inside the show folder."""
    journal.record_prompt("../../etc/passwd", "c1", "x", {})
    journal.record_prompt("__.._etc_passwd", "c1", "y", {})
    a = journal.image_path(journal.add_image("../../etc/passwd", encoded(), {}).id)
    b = journal.image_path(journal.add_image("__.._etc_passwd", encoded(), {}).id)
    assert a is not None and b is not None and a != b
    assert a.parent == journal.folder and SAFE_NAME.match(a.name) and SAFE_NAME.match(b.name)


# ---- a failing disk --------------------------------------------------------------------------------------


def test_disk_full_keeps_images_in_memory_with_one_warning(
    journal: Journal, disk: Callable[[int | None], None], caplog: pytest.LogCaptureFixture
) -> None:
    """ENOSPC: images stay in memory (one warning), then go to disk again, the held ones included."""
    journal.record_prompt("p1", "c1", "x", {})
    disk(errno.ENOSPC)
    held = [journal.add_image("p1", encoded(size=(4 + k, 4)), {}) for k in range(3)]
    assert [(i.path, i.in_memory) for i in held] == [(None, True)] * 3
    assert len(warnings_of(caplog)) == 1 and "ENOSPC" in warnings_of(caplog)[0]
    assert journal.image_bytes(held[1].id) == encoded(size=(5, 4))
    assert journal.image_path(held[1].id) is None
    disk(None)
    later = journal.add_image("p1", encoded(), {})
    assert later.path == "p1-4.png" and (journal.folder / "p1-4.png").is_file()
    for record, k in zip(journal.images("p1")[:3], range(3), strict=True):
        assert record.path == f"p1-{k + 1}.png" and not record.in_memory
        assert (journal.folder / record.path).read_bytes() == encoded(size=(4 + k, 4))


def test_failed_rename_leaves_no_temp_file(
    journal: Journal, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """os.replace failing mid-write removes the temp file and falls back to memory without raising."""

    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    journal.record_prompt("p1", "c1", "x", {})
    monkeypatch.setattr(os, "replace", full)
    image = journal.add_image("p1", encoded(), {})
    monkeypatch.undo()
    assert image.in_memory and journal.image_bytes(image.id) == encoded()
    assert [p.name for p in journal.folder.iterdir() if p.suffix in (".png", ".tmp")] == []
    assert len(warnings_of(caplog)) == 1


def test_memory_budget_drops_oldest(
    root: Path, disk: Callable[[int | None], None], caplog: pytest.LogCaptureFixture
) -> None:
    """Past the in-memory budget the oldest held image is dropped, with one warning."""
    blob = b"\x89PNG\r\n\x1a\n" + bytes(1000)
    with open_journal(root, memory_limit=2500) as j:
        j.record_prompt("p1", "c1", "x", {})
        disk(errno.EIO)
        ids = [j.add_image("p1", blob, {}).id for _ in range(4)]
        assert j.image_bytes(ids[0]) is None and j.image_bytes(ids[1]) is None
        assert j.image_bytes(ids[3]) == blob
        first = j.image(ids[0])
        assert first is not None and not first.in_memory and first.path is None
        assert len(warnings_of(caplog)) == 2  # one for the disk (EIO), one for the full budget
        disk(None)


def test_images_only_in_memory_are_marked_lost_after_restart(
    root: Path, tmp_path: Path, disk: Callable[[int | None], None], caplog: pytest.LogCaptureFixture
) -> None:
    """A crash while images were held in memory: their rows come back with no file and in_memory off."""
    j = open_journal(root)
    j.record_prompt("p1", "c1", "x", {})
    disk(errno.ENOSPC)
    image = j.add_image("p1", encoded(), {})
    crashed = crash_copy(root, tmp_path / "crashed")
    disk(None)
    j.close()
    with open_journal(crashed) as again:
        record = again.image(image.id)
        assert record is not None and (record.path, record.in_memory) == (None, False)
        assert again.image_bytes(image.id) is None
        assert any("lost" in w for w in warnings_of(caplog))


def test_database_full_holds_rows_in_memory(journal: Journal, caplog: pytest.LogCaptureFixture) -> None:
    """A real SQLITE_FULL: calls still return, reads see the rows, one warning, saved once space returns."""
    journal.record_prompt("p1", "c1", "x", {})
    pages = journal._conn.execute("PRAGMA page_count").fetchone()[0]
    journal._conn.execute(f"PRAGMA max_page_count = {pages}")  # the database may not grow: "disk" full
    journal.record_prompt("p2", "c1", "y" * 50_000, {})
    journal.record_prompt("p3", "c1", "z" * 50_000, {})
    assert [p.id for p in journal.unfinished()] == ["p1", "p2", "p3"]
    assert len(warnings_of(caplog)) == 1 and "full" in warnings_of(caplog)[0]
    journal._conn.execute("PRAGMA max_page_count = 1000000")
    journal.set_state("p1", "generating")
    count = journal._conn.execute("SELECT COUNT(*) FROM prompts").fetchone()[0]
    assert count == 3


def test_database_io_error_never_reaches_the_caller(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A "disk I/O error" on every write keeps the show going in memory and is caught up afterwards."""
    failing = [False]
    real = Rows.commit

    def commit(self: Rows, prompts: list[store.PromptRecord], images: list[store.ImageRecord]) -> None:
        if failing[0]:
            raise sqlite3.OperationalError("disk I/O error")
        real(self, prompts, images)

    monkeypatch.setattr(Rows, "commit", commit)
    j = open_journal(root)
    j.record_prompt("p1", "c1", "x", {})
    failing[0] = True
    j.record_prompt("p2", "c1", "y", {})
    j.set_state("p1", "generating")
    image = j.add_image("p2", encoded(), {})
    j.mark_shown(image.id)
    assert [i.id for i in j.gallery()] == [image.id]
    assert len(warnings_of(caplog)) == 1 and "disk I/O error" in warnings_of(caplog)[0]
    failing[0] = False
    j.record_prompt("p3", "c1", "z", {})
    crashed = crash_copy(root, tmp_path / "crashed")
    j.close()
    with open_journal(crashed) as again:
        assert [(p.id, p.state) for p in again.unfinished()] == [
            ("p1", "generating"), ("p2", "queued"), ("p3", "queued")]
        assert [i.id for i in again.gallery()] == [image.id]


# ---- text is data ----------------------------------------------------------------------------------------

HOSTILE = [
    "it's a \"quoted\" prompt",
    "'; DROP TABLE prompts; --",
    "../../etc/passwd",
    "a\x00b NUL inside",
    "%s %d {0} ? :id",
    "line\nbreak\r\ttab 🎸 ünïcødé",
    "/absolute/path\\windows\\..\\x",
]


def test_hostile_prompt_text_is_stored_verbatim_and_never_in_a_path(root: Path) -> None:
    """Quotes, SQL, paths and NUL bytes come back exactly (NUL kept) and never reach a file name."""
    with open_journal(root) as j:
        for n, text in enumerate(HOSTILE):
            j.record_prompt(f"p{n}", text, text, {"style": text})
            j.add_image(f"p{n}", encoded(), {"prompt": text})
    with open_journal(root) as j:
        for n, text in enumerate(HOSTILE):
            p = j.prompt(f"p{n}")
            assert p is not None and (p.text, p.client_id, p.settings) == (text, text, {"style": text})
            assert j.images(f"p{n}")[0].metadata == {"prompt": text}
        names = [p.name for p in j.folder.iterdir() if p.name.startswith("p")]
        assert len(names) == len(HOSTILE) and all(SAFE_NAME.match(name) for name in names)
    assert sorted(p.name for p in root.iterdir()) == ["2025-06-21"]


def test_text_that_is_not_unicode_is_a_store_error(journal: Journal) -> None:
    """A lone surrogate (smuggled in by a JSON escape) cannot be UTF-8: refused without echoing the text."""
    with pytest.raises(StoreError, match=r"^text: not valid Unicode text"):
        journal.record_prompt("p1", "c1", "bad \ud800 text", {})
    assert journal.prompt("p1") is None


# ---- threads ---------------------------------------------------------------------------------------------


def test_concurrent_writes_from_8_threads_keep_every_row(journal: Journal) -> None:
    """Eight threads writing prompts, images and showings at once lose nothing."""
    data = encoded()
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for k in range(15):
                pid = f"t{t}-{k}"
                journal.record_prompt(pid, f"c{t}", f"thread {t} prompt {k}", {"k": k})
                journal.set_state(pid, "generating")
                journal.mark_shown(journal.add_image(pid, data, {}).id)
                journal.set_state(pid, "done")
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(journal.prompts(limit=1000)) == 120 and journal.unfinished() == []
    gallery = journal.gallery()
    assert len(gallery) == 120 and [i.show_seq for i in gallery] == list(range(1, 121))
    assert len([p for p in journal.folder.iterdir() if p.suffix == ".png"]) == 120


class GatedFsync:
    """An fsync that, once armed, stops the first call at a gate: a disk as slow as the test wants."""

    def __init__(self) -> None:
        self.armed = False
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __call__(self, fd: int) -> None:
        if self.armed and not self.entered.is_set():
            self.entered.set()
            assert self.gate.wait(timeout=10), "the test never opened the gate"
        os.fsync(fd)


def test_set_state_does_not_wait_for_an_image_write(root: Path) -> None:
    """While add_image sits in a slow fsync, set_state from another thread returns before the image is done."""
    fsync = GatedFsync()
    with Journal.open(root, DAY, clock=FakeClock(1000.0, tick=1.0), fsync=fsync) as j:
        j.record_prompt("p1", "c1", "x", {})
        fsync.armed = True
        writer = threading.Thread(target=j.add_image, args=("p1", encoded(), {}))
        writer.start()
        assert fsync.entered.wait(timeout=10)
        state_set = threading.Event()
        setter = threading.Thread(target=lambda: (j.set_state("p1", "generating"), state_set.set()))
        setter.start()
        try:
            assert state_set.wait(timeout=10) and writer.is_alive()
        finally:
            fsync.gate.set()
            writer.join()
            setter.join()
        record = j.prompt("p1")
        assert record is not None and record.state is State.GENERATING
        assert [i.id for i in j.images("p1")] == ["p1-1"]


def test_concurrent_images_of_one_prompt_get_distinct_numbers(root: Path) -> None:
    """A second add_image while the first is still writing its file takes the next number, not the same."""
    fsync = GatedFsync()
    with Journal.open(root, DAY, clock=FakeClock(1000.0, tick=1.0), fsync=fsync) as j:
        j.record_prompt("p1", "c1", "x", {})
        fsync.armed = True
        first: list[store.ImageRecord] = []
        writer = threading.Thread(target=lambda: first.append(j.add_image("p1", encoded(), {})))
        writer.start()
        assert fsync.entered.wait(timeout=10)
        try:
            second = j.add_image("p1", encoded("JPEG"), {})
            assert writer.is_alive()
        finally:
            fsync.gate.set()
            writer.join()
        assert (first[0].path, second.path) == ("p1-1.png", "p1-2.jpg")
        assert [i.id for i in j.images("p1")] == ["p1-1", "p1-2"]


def test_a_batch_commits_its_writes_together(journal: Journal) -> None:
    """Inside batch() the writes are readable at once and reach the database in one commit at its end."""
    with journal.batch():
        journal.record_prompt("p-1", "phone-1", "a red fox", {})
        journal.set_state("p-1", State.GENERATING)
        assert journal.prompt("p-1").state is State.GENERATING  # type: ignore[union-attr]
        assert journal._rows.read("SELECT COUNT(*) FROM prompts")[0][0] == 0  # not committed yet
    assert journal._rows.read("SELECT state FROM prompts WHERE id = 'p-1'")[0][0] == "generating"


def test_a_failing_write_in_a_batch_fails_alone(journal: Journal) -> None:
    """An unknown prompt inside a batch is a StoreError for that call; the batch's other writes commit."""
    with journal.batch():
        journal.record_prompt("p-1", "phone-1", "a red fox", {})
        with pytest.raises(StoreError, match="unknown prompt"):
            journal.set_state("p-missing", State.DONE)
    assert journal.prompt("p-1") is not None


def test_held_images_reach_their_files_when_the_disk_is_back_without_a_new_image(
    journal: Journal, disk: Callable[[int | None], None]
) -> None:
    """catch_up() writes the images kept in memory once the disk works again; no next image is needed."""
    journal.record_prompt("p1", "c1", "x", {})
    disk(errno.ENOSPC)
    held = journal.add_image("p1", encoded(), {})
    assert journal.catch_up() == 1  # the disk still refuses
    disk(None)
    assert journal.catch_up() == 0
    record = journal.image(held.id)
    assert record is not None and record.path == "p1-1.png" and (journal.folder / "p1-1.png").is_file()
