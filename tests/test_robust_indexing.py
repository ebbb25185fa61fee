"""No file on a disk can stall a run or end up with a vector that isn't its own (issue 10).

Item 1: a note over its time budget is an error that never blocks its batch.
Item 3: a file edited between hashing and decoding is hashed again, never stored mismatched.
Item 4: a huge note is hashed by what is embedded; pause/cancel act inside a huge file.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from helpers import note, solid

from indexer import indexing
from indexer.indexing import Indexer
from indexer.jobs import JobControl
from indexer.library import Library
from indexer.specs import TINY_SHAPES


def spec16():
    return replace(TINY_SHAPES, embed_dim=16)


def _errors(lib: Library) -> dict[str, str]:
    return {Path(p).name: r for p, r in lib.catalogue.errors()}


def _row(lib: Library, path: Path):
    fid = lib.catalogue.file_id_for_path(str(path))
    assert fid is not None, path
    return lib.catalogue.file_by_id(fid)


# -- item 1 ---------------------------------------------------------------------------------------
def test_a_note_over_its_budget_is_an_error_and_its_batch_still_commits(
    tmp_path, fake_encoder, monkeypatch
):
    from indexer import pipeline

    ticks = itertools.count()
    monkeypatch.setattr(pipeline, "_clock", lambda: float(next(ticks)))  # a second per look
    monkeypatch.setattr(pipeline, "TEXT_BUDGET_S", 5.0)
    root = tmp_path / "notes"
    note(root / "a_long.md", " ".join(f"w{i}" for i in range(60_000)))
    note(root / "b_short.txt", "buy a ladder at the hardware store")
    solid(root / "c.png", (200, 30, 30))
    with Library.open(tmp_path / "lib", spec16()) as lib:
        rep = Indexer(lib, fake_encoder, workers=0, batch_size=8).run([root])
        errors = _errors(lib)
        assert rep.errors == 1 and list(errors) == ["a_long.md"]
        assert errors["a_long.md"].startswith("took longer than 5 s to read")
        assert _row(lib, root / "b_short.txt").state == "indexed"
        assert _row(lib, root / "c.png").state == "indexed"
        again = Indexer(lib, fake_encoder, workers=0, batch_size=8).run([root])
    assert again.embedded_files == 0  # recorded, not pending: later runs don't stall on it


# -- item 3 ---------------------------------------------------------------------------------------
def _edit_after_hashing(monkeypatch, target: Path, edit) -> list[int]:
    real = indexing.content_hash
    done: list[int] = []

    def hash_then_edit(path, *args, **kwargs):
        digest = real(path, *args, **kwargs)
        if Path(path) == target and not done:
            done.append(1)
            edit()
            os.utime(target, ns=(1, 2_000_000_000_000_000_000))  # a different mtime for sure
        return digest

    monkeypatch.setattr(indexing, "content_hash", hash_then_edit)
    return done


def _blake(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def test_a_picture_edited_between_hashing_and_decoding_is_hashed_again(
    tmp_path, fake_encoder, monkeypatch
):
    root = tmp_path / "photos"
    pic = solid(root / "pic.png", (250, 10, 10))
    red_bytes = pic.read_bytes()
    fired = _edit_after_hashing(monkeypatch, pic, lambda: solid(pic, (10, 10, 250)))
    red = fake_encoder.encode_images(np.full((1, 4, 4, 3), (250, 10, 10), np.uint8))[0]
    blue = fake_encoder.encode_images(np.full((1, 4, 4, 3), (10, 10, 250), np.uint8))[0]
    with Library.open(tmp_path / "lib", spec16()) as lib:
        rep = Indexer(lib, fake_encoder, workers=0).run([root])
        assert fired and rep.errors == 0
        row = _row(lib, pic)
        assert row.content_hash == _blake(pic)  # the hash names the bytes now on disk ...
        assert np.allclose(lib.catalogue.file_vector(row.id), blue, atol=1e-3)  # ... and vector
        assert row.mtime_ns == pic.stat().st_mtime_ns
        (root / "copy.png").write_bytes(red_bytes)  # the old picture again: must be red
        Indexer(lib, fake_encoder, workers=0).run([root])
        copy = _row(lib, root / "copy.png")
        assert np.allclose(lib.catalogue.file_vector(copy.id), red, atol=1e-3)


def test_a_note_edited_between_hashing_and_reading_is_hashed_again(
    tmp_path, fake_encoder, monkeypatch
):
    root = tmp_path / "notes"
    n = note(root / "n.txt", "a red sled in the snow")
    _edit_after_hashing(monkeypatch, n, lambda: n.write_text("a yellow kite on the beach, later"))
    with Library.open(tmp_path / "lib", spec16()) as lib:
        Indexer(lib, fake_encoder, workers=0).run([root])
        row = _row(lib, n)
        assert row.state == "indexed" and row.content_hash == _blake(n)
        kite = fake_encoder.encode_texts(["a yellow kite on the beach, later"])[0]
        assert np.allclose(lib.catalogue.file_vector(row.id), kite, atol=1e-5)


def test_a_file_that_never_stops_changing_is_a_retryable_error(tmp_path, fake_encoder, monkeypatch):
    root = tmp_path / "photos"
    pic = solid(root / "pic.png", (250, 10, 10))
    real = indexing.content_hash
    mtimes = itertools.count(2_000_000_000_000_000_000, 1_000_000_000)

    def always_edit(path, *args, **kwargs):
        digest = real(path, *args, **kwargs)
        os.utime(path, ns=(1, next(mtimes)))
        return digest

    monkeypatch.setattr(indexing, "content_hash", always_edit)
    with Library.open(tmp_path / "lib", spec16()) as lib:
        rep = Indexer(lib, fake_encoder, workers=0).run([root])
        assert rep.errors == 1 and "kept changing" in _errors(lib)["pic.png"]
        assert lib.vectors.count() == 0
        monkeypatch.setattr(indexing, "content_hash", real)
        again = Indexer(lib, fake_encoder, workers=0).run([root])
        assert again.errors == 0 and _row(lib, pic).state == "indexed"


# -- item 4 ---------------------------------------------------------------------------------------
def _sparse(path: Path, head: bytes, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(size)
    return path


def test_a_huge_note_is_hashed_by_what_is_embedded(tmp_path):
    from indexer.decode import MAX_TEXT_BYTES

    head = b"meeting notes: the plumber comes on tuesday\n" * 1000
    big = _sparse(tmp_path / "big.txt", head, 256 * 1024 * 1024)
    blocks = []
    digest = indexing.content_hash(str(big), "text", check=lambda: blocks.append(1))
    assert len(blocks) <= MAX_TEXT_BYTES // (1 << 20) + 1  # 4 MiB read, not 256 MiB
    bigger = _sparse(tmp_path / "bigger.txt", head, 300 * 1024 * 1024)
    assert indexing.content_hash(str(bigger), "text") != digest  # the size still counts
    small = note(tmp_path / "small.txt", "a note within the cap")
    assert indexing.content_hash(str(small), "text") == _blake(small)  # as before: no re-embed


class _SlowHash:
    """blake2b that takes 50 ms a block: a huge file on a slow disk."""

    def __init__(self, *args, **kwargs) -> None:
        self._h = hashlib.blake2b(*args, **kwargs)
        self.calls: list[float] = _SlowHash.log

    log: list[float] = []

    def update(self, data: bytes) -> None:
        time.sleep(0.05)
        self.calls.append(time.monotonic())
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def test_pause_and_cancel_take_effect_inside_a_huge_file(tmp_path, fake_encoder, monkeypatch):
    """400 blocks at 50 ms: 20 s to hash whole. Pause must stop the reads and cancel end the run
    within about a block (asserted generously: under 5 s on a shared machine)."""
    import types

    _SlowHash.log = []
    monkeypatch.setattr(indexing, "hashlib", types.SimpleNamespace(blake2b=_SlowHash))
    root = tmp_path / "disk"
    _sparse(root / "huge.png", b"\x89PNG\r\n\x1a\n", 400 * (1 << 20))
    control = JobControl()
    result: dict = {}
    with Library.open(tmp_path / "lib", spec16()) as lib:
        worker = threading.Thread(
            target=lambda: result.update(rep=Indexer(lib, fake_encoder, control=control,
                                                     workers=0).run([root]))
        )
        worker.start()
        while len(_SlowHash.log) < 3:  # hashing has begun
            time.sleep(0.01)
        paused_at = time.monotonic()
        control.pause()
        time.sleep(1.0)
        settled = len(_SlowHash.log)
        last_read = _SlowHash.log[-1]
        time.sleep(1.0)
        assert len(_SlowHash.log) == settled  # nothing read while paused
        pause_latency = max(0.0, last_read - paused_at)
        control.resume()
        while len(_SlowHash.log) < settled + 3:
            time.sleep(0.01)
        cancelled_at = time.monotonic()
        control.cancel()
        worker.join(30)
        cancel_latency = time.monotonic() - cancelled_at
        assert not worker.is_alive()
    assert result["rep"].cancelled
    print(f"\npause latency {pause_latency:.3f} s, cancel latency {cancel_latency:.3f} s "
          f"({len(_SlowHash.log)} of 400 blocks read)")
    assert pause_latency < 5 and cancel_latency < 5
    assert len(_SlowHash.log) < 200
