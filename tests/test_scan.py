"""Walking a folder (indexer/scan.py): what is ours, what is skipped, links, loops, problems."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from indexer import scan as scan_mod
from indexer.scan import ScanProblem, classify, scan


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def walk(root: Path, **kw) -> tuple[list[str], list[ScanProblem]]:
    problems: list[ScanProblem] = []
    found = [os.path.relpath(e.path, root) for e in scan(root, on_problem=problems.append, **kw)]
    return found, problems


@pytest.mark.parametrize("name, kind", [
    ("a.jpg", "image"), ("B.JPEG", "image"), ("c.Png", "image"), ("d.webp", "image"),
    ("e.gif", "image"), ("f.bmp", "image"), ("g.tif", "image"), ("h.TIFF", "image"),
    ("notes.txt", "text"), ("README.md", "text"), ("x.markdown", "text"), ("y.rst", "text"),
    ("z.org", "text"), ("w.note", "text"),
    ("movie.mp4", None), ("archive.zip", None), ("noext", None), ("jpg", None),
    ("photo.jpg.part", None), ("script.py", None),
])
def test_classify_by_extension(name, kind):
    assert classify(name) == kind


def test_heif_counts_only_when_it_can_be_decoded():
    assert classify("IMG_0001.HEIC", heif=False) is None
    assert classify("IMG_0001.HEIC", heif=True) == "image"
    assert classify("x.heif", heif=True) == "image"


def test_entries_carry_kind_size_and_mtime_in_a_stable_order(tmp_path):
    touch(tmp_path / "b" / "z.png", b"12345")
    touch(tmp_path / "b" / "a.txt", b"hello")
    touch(tmp_path / "a.jpg", b"123")
    touch(tmp_path / "c" / "deeper" / "x.md", b"# x")
    touch(tmp_path / "skip.mp4")
    os.utime(tmp_path / "a.jpg", ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    entries = list(scan(tmp_path))
    rel = [os.path.relpath(e.path, tmp_path) for e in entries]
    assert rel == ["a.jpg", "b/a.txt", "b/z.png", "c/deeper/x.md"]  # files first, sorted
    first = entries[0]
    assert (first.kind, first.size, first.mtime_ns) == ("image", 3, 1_600_000_000_123_456_789)
    assert [e.kind for e in entries] == ["image", "text", "image", "text"]
    assert rel == [os.path.relpath(e.path, tmp_path) for e in scan(tmp_path)]  # same again


def test_hidden_entries_and_skipped_folders_are_left_out(tmp_path):
    touch(tmp_path / ".hidden.jpg")
    touch(tmp_path / ".git" / "x.png")
    touch(tmp_path / "lib" / "thumb.png")  # the library inside a root
    touch(tmp_path / "keep.png")
    found, problems = walk(tmp_path, skip=(str(tmp_path / "lib"),))
    assert found == ["keep.png"] and problems == []
    # the skip holds whichever way the folder is reached (a link to it too)
    os.symlink(tmp_path / "lib", tmp_path / "alias")
    found, _ = walk(tmp_path, skip=(str(tmp_path / "lib"),))
    assert found == ["keep.png"]


def test_a_symlink_loop_ends_and_a_folder_reached_twice_counts_once(tmp_path):
    touch(tmp_path / "photos" / "p.jpg")
    os.symlink(tmp_path, tmp_path / "photos" / "loop")  # points back up
    os.symlink(tmp_path / "photos", tmp_path / "again")  # a second way to the same folder
    found, problems = walk(tmp_path)
    assert found == ["again/p.jpg"] and problems == []  # "again" sorts before "photos"


def test_linked_files_and_folders_are_followed_unless_asked_not_to(tmp_path):
    outside = tmp_path / "outside"
    touch(outside / "o.png")
    touch(outside / "inner" / "i.jpg")
    root = tmp_path / "root"
    touch(root / "own.png")
    os.symlink(outside / "o.png", root / "linked.png")
    os.symlink(outside / "inner", root / "linked-folder")
    found, _ = walk(root)
    assert found == ["linked.png", "own.png", "linked-folder/i.jpg"]  # files, then subfolders
    found, _ = walk(root, follow_symlinks=False)
    assert found == ["own.png"]


def test_a_dangling_link_is_reported_only_when_it_would_be_ours(tmp_path):
    touch(tmp_path / "ok.jpg")
    os.symlink(tmp_path / "gone.jpg", tmp_path / "dead.jpg")
    os.symlink(tmp_path / "gone.mp4", tmp_path / "dead.mp4")
    found, problems = walk(tmp_path)
    assert found == ["ok.jpg"]
    assert [(Path(p.path).name, p.reason) for p in problems] == [
        ("dead.jpg", "dangling link (its target is missing)")]


def test_a_fifo_or_a_folder_named_like_a_picture_is_not_a_file(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")  # reading it would block the scan for ever
    (tmp_path / "album.png").mkdir()
    touch(tmp_path / "album.png" / "inside.png")
    found, problems = walk(tmp_path)
    assert found == ["album.png/inside.png"] and problems == []


def test_an_unreadable_folder_is_reported_and_the_rest_is_scanned(tmp_path, monkeypatch):
    touch(tmp_path / "a" / "one.png")
    locked = tmp_path / "b-locked"
    touch(locked / "secret.png")
    touch(tmp_path / "c" / "two.png")
    real = os.scandir

    def scandir(path="."):  # root ignores modes: inject what a locked folder gives
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(scan_mod.os, "scandir", scandir)
    found, problems = walk(tmp_path)
    assert found == ["a/one.png", "c/two.png"]
    assert [(p.path, p.reason) for p in problems] == [(str(locked), "permission denied")]


def test_a_missing_root_is_a_problem_not_a_crash(tmp_path):
    found, problems = walk(tmp_path / "unplugged")
    assert found == [] and [p.reason for p in problems] == ["vanished or dangling link"]


def test_names_that_are_not_utf8_survive_the_walk(tmp_path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9.jpg"  # latin-1 bytes, not UTF-8
    with open(raw, "wb") as fh:
        fh.write(b"x")
    [entry] = list(scan(tmp_path))
    assert os.fsencode(entry.path) == raw  # the surrogate escape maps back to the same bytes
    assert os.path.getsize(entry.path) == 1
