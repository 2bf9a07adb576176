"""Image files in the show folder: whole or absent, fsynced through the given function, held while refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.store import StoreError
from engine.store.files import ImageFiles, prepare_folder, write_atomic


class RecordingFsync:
    """An fsync that notes which inode each call synced."""

    def __init__(self) -> None:
        self.inodes: list[int] = []

    def __call__(self, fd: int) -> None:
        self.inodes.append(os.fstat(fd).st_ino)
        os.fsync(fd)


def test_write_atomic_fsyncs_the_file_and_its_folder_through_the_given_fsync(tmp_path: Path) -> None:
    """Both fsyncs of an atomic write, the file's and the folder's, go through the injected function."""
    fsync = RecordingFsync()
    path = tmp_path / "p1-1.png"
    write_atomic(path, b"image", fsync)
    assert path.read_bytes() == b"image"
    assert fsync.inodes == [path.stat().st_ino, tmp_path.stat().st_ino]


def test_write_atomic_leaves_no_temp_file(tmp_path: Path) -> None:
    """After a write the folder holds the file and nothing else."""
    write_atomic(tmp_path / "a.png", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_prepare_folder_probes_through_the_given_fsync(tmp_path: Path) -> None:
    """The start-up probe is written like any image, so a slow disk shows up there too; the probe is gone."""
    fsync = RecordingFsync()
    prepare_folder(tmp_path / "show", fsync)
    assert len(fsync.inodes) == 2 and list((tmp_path / "show").iterdir()) == []


def test_prepare_folder_under_a_file_is_a_store_error(tmp_path: Path) -> None:
    """A folder that cannot be made is one StoreError naming it."""
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match=r"cannot use show folder .*afile/show: Not a directory \(ENOTDIR\)"):
        prepare_folder(tmp_path / "afile" / "show")


def test_image_files_use_the_injected_fsync(tmp_path: Path) -> None:
    """ImageFiles.write syncs the image and the folder through the fsync it was given."""
    fsync = RecordingFsync()
    files = ImageFiles(tmp_path, fsync=fsync)
    assert files.write("p1-1.png", b"image")
    assert fsync.inodes == [(tmp_path / "p1-1.png").stat().st_ino, tmp_path.stat().st_ino]


def test_keep_drops_the_oldest_past_the_budget(tmp_path: Path) -> None:
    """Holding past the budget drops the oldest held images and says which."""
    files = ImageFiles(tmp_path, memory_limit=25)
    assert files.keep("a-1", "a-1.png", bytes(10)) == (True, [])
    assert files.keep("a-2", "a-2.png", bytes(10)) == (True, [])
    assert files.keep("a-3", "a-3.png", bytes(10)) == (True, ["a-1"])
    assert files.held("a-1") is None and files.held("a-3") == bytes(10)
    assert files.oldest() == ("a-2", "a-2.png", bytes(10))


def test_keep_refuses_an_image_bigger_than_the_budget(tmp_path: Path) -> None:
    """An image larger than the whole budget is not held, and nothing else is dropped for it."""
    files = ImageFiles(tmp_path, memory_limit=25)
    files.keep("a-1", "a-1.png", bytes(10))
    assert files.keep("a-2", "a-2.png", bytes(30)) == (False, [])
    assert files.held_count() == 1


def test_release_forgets_a_held_image(tmp_path: Path) -> None:
    """A released image is no longer held; releasing one already dropped is harmless."""
    files = ImageFiles(tmp_path)
    files.keep("a-1", "a-1.png", b"x")
    files.release("a-1")
    files.release("a-1")
    assert files.held("a-1") is None and files.oldest() is None


def test_scan_removes_temp_files_and_lists_orphans(tmp_path: Path) -> None:
    """A crash's temp file is removed; image files no row knows are listed, other files ignored."""
    for name in (".p1-1.png.abc.tmp", "p1-1.png", "p1-2.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert ImageFiles(tmp_path).scan({"p1-1.png"}) == [tmp_path / "p1-2.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "p1-1.png", "p1-2.jpg"]
