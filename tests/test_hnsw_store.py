"""The embedded hnswlib store on disk: saves that are really atomic, ids that stay consistent.

A save writes three files (index, deleted labels, vectors.json). hnswlib's save does not report
a short write, so a full disk used to rename a cut-short index over the good one; and a label
deleted then added again stayed in the deleted list, so after SQLite lost its newest commits
(a power cut, a restored backup) the saved index never agreed with SQLite again.
"""
from __future__ import annotations

import errno
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEncoder
from helpers import solid

from indexer.atomic import IncompleteWrite, atomic_write_bytes
from indexer.indexing import Indexer
from indexer.library import Library
from indexer.specs import TINY_SHAPES
from indexer.vectors import HnswStore

DIM = 16
FP = "0123456789abcdef"


def unit_rows(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def saved(tmp_path: Path) -> tuple[HnswStore, Path, dict[str, bytes]]:
    """A store with 40 vectors (3 deleted) saved, then 40 more added but not saved yet."""
    folder = tmp_path / "store"
    folder.mkdir()
    s = HnswStore(folder, DIM, FP)
    s.add(np.arange(1, 41), unit_rows(40, 1))
    s.delete([2, 3, 4])
    s.flush()
    before = files_of(folder)
    s.add(np.arange(41, 81), unit_rows(40, 2))
    s.delete([5])
    return s, folder, before


# -- #10.6 saves are really atomic ------------------------------------------------------------
def test_a_short_index_write_is_an_error_and_never_replaces_the_good_index(saved, monkeypatch):
    s, folder, before = saved
    real = HnswStore._save_index

    def short_write(self, tmp: Path) -> None:  # what hnswlib does on a full disk: no error
        real(self, tmp)
        with open(tmp, "r+b") as fh:
            fh.truncate(tmp.stat().st_size // 2)

    monkeypatch.setattr(HnswStore, "_save_index", short_write)
    with pytest.raises(IncompleteWrite) as err:
        s.flush()
    assert "bytes could be written" in str(err.value) and "previous file is kept" in str(err.value)
    assert err.value.errno in (errno.ENOSPC, errno.EIO)
    assert files_of(folder) == before, "a failed save changed the files on disk"
    monkeypatch.setattr(HnswStore, "_save_index", real)

    reopened = HnswStore(folder, DIM, FP)  # the old index is intact and whole
    assert reopened.loaded_from_disk and reopened.count() == 37
    assert sorted(reopened.ids().tolist()) == [1] + list(range(5, 41))
    assert s.dirty, "the unsaved changes are still pending"
    s.flush()  # space again: the next save goes through
    again = HnswStore(folder, DIM, FP)
    assert again.count() == 76 and json.loads((folder / "vectors.json").read_text())["count"] == 76


@pytest.mark.parametrize("victim", ["vectors.hnsw", "vectors.deleted.npy", "vectors.json"])
def test_a_full_disk_while_saving_any_of_the_three_files_changes_none(saved, monkeypatch, victim):
    s, folder, before = saved
    real_save = HnswStore._save_index
    real_write = Path.write_bytes

    def full(tmp: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    if victim == "vectors.hnsw":
        monkeypatch.setattr(HnswStore, "_save_index", lambda self, tmp: full(tmp))
    else:
        def write_bytes(self: Path, data):
            if self.name.startswith(f".{victim}.tmp"):
                full(self)
            return real_write(self, data)

        monkeypatch.setattr(Path, "write_bytes", write_bytes)
    with pytest.raises(OSError) as err:
        s.flush()
    assert err.value.errno == errno.ENOSPC
    assert files_of(folder) == before, "a failed save changed the files on disk"
    monkeypatch.setattr(HnswStore, "_save_index", real_save)
    monkeypatch.setattr(Path, "write_bytes", real_write)
    assert HnswStore(folder, DIM, FP).count() == 37


def test_atomic_write_bytes_checks_what_was_written(tmp_path, monkeypatch):
    target = tmp_path / "settings.json"
    target.write_bytes(b"old and good")
    real_write = Path.write_bytes
    monkeypatch.setattr(Path, "write_bytes", lambda self, data: real_write(self, data[:3]))
    with pytest.raises(IncompleteWrite):
        atomic_write_bytes(target, b"new and longer")
    monkeypatch.setattr(Path, "write_bytes", real_write)
    assert target.read_bytes() == b"old and good"
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"], "a temp file was left"


def test_a_save_torn_between_its_renames_is_recognised_and_rebuilt(tmp_path):
    """A crash after the index was renamed but before vectors.json was: the set is not
    trusted (it would disagree about what is deleted); the library rebuilds it from SQLite."""
    enc = FakeEncoder(dim=DIM)
    spec = replace(TINY_SHAPES, embed_dim=enc.dim)
    photos = tmp_path / "photos"
    for i in range(6):
        solid(photos / f"p{i}.png", (40 * i, 200 - 30 * i, 90))
    lib_dir = tmp_path / "lib"
    with Library.open(lib_dir, spec) as lib:
        Indexer(lib, enc, workers=0, batch_size=2).run([photos])
        folder = lib.folder
    old_meta = (folder / "vectors.json").read_bytes()
    old_deleted = (folder / "vectors.deleted.npy").read_bytes()
    for i in range(6, 9):
        solid(photos / f"p{i}.png", (10, 20 * i, 200))
    (photos / "p0.png").unlink()
    with Library.open(lib_dir, spec) as lib:
        Indexer(lib, enc, workers=0, batch_size=2).run([photos])
    # the crash: only the index made it
    (folder / "vectors.json").write_bytes(old_meta)
    (folder / "vectors.deleted.npy").write_bytes(old_deleted)
    assert not HnswStore(folder, enc.dim, spec.fingerprint()).loaded_from_disk
    with Library.open(lib_dir, spec) as lib:
        sql = sorted(lib.catalogue.chunk_ids().tolist())
        assert len(sql) == 8 and sorted(lib.vectors.ids().tolist()) == sql
    s = HnswStore(folder, enc.dim, spec.fingerprint())
    assert s.loaded_from_disk and sorted(s.ids().tolist()) == sql


# -- #10.8 index ids stay consistent ----------------------------------------------------------
def test_a_deleted_id_added_again_is_live_after_a_reload(tmp_path):
    s = HnswStore(tmp_path, DIM, FP)
    vecs = unit_rows(10, 3)
    s.add(np.arange(1, 11), vecs)
    s.flush()
    s.delete([7, 8])
    s.add(np.array([7, 8]), vecs[[6, 7]])
    s.flush()
    again = HnswStore(tmp_path, DIM, FP)
    assert again.count() == 10 and sorted(again.ids().tolist()) == list(range(1, 11))
    ids, _ = again.knn(vecs[6], 1)
    assert ids.tolist() == [7]
    again.delete([7])
    again.flush()
    third = HnswStore(tmp_path, DIM, FP)
    assert 7 not in third.knn(vecs[6], 10)[0].tolist() and third.count() == 9


def test_after_sqlite_loses_its_newest_commits_the_index_agrees_again(tmp_path):
    """A power cut (or a restored backup) takes SQLite back to before the last batches, which
    the index had already saved. Those ids are dropped, then SQLite hands the same ids to the
    next files: the index must take them back, and agree with SQLite from then on."""
    enc = FakeEncoder(dim=DIM)
    spec = replace(TINY_SHAPES, embed_dim=enc.dim)
    photos, lib_dir = tmp_path / "photos", tmp_path / "lib"
    colors = [(250, 10, 10), (10, 250, 10), (10, 10, 250), (250, 250, 10), (10, 250, 250),
              (250, 10, 250)]
    for i, c in enumerate(colors[:3]):
        solid(photos / f"a{i}.png", c)
    with Library.open(lib_dir, spec) as lib:
        Indexer(lib, enc, workers=0, batch_size=2).run([photos])
        db = lib.folder / "catalogue.sqlite"
        folder = lib.folder
    backup = tmp_path / "catalogue.backup"
    shutil.copy(db, backup)  # closed: the WAL is checkpointed into the main file
    for i, c in enumerate(colors[3:]):
        solid(photos / f"b{i}.png", c)
    with Library.open(lib_dir, spec) as lib:
        Indexer(lib, enc, workers=0, batch_size=2).run([photos])
        assert sorted(lib.catalogue.chunk_ids().tolist()) == [1, 2, 3, 4, 5, 6]

    # SQLite loses its last commits; the index (saved after them) still has ids 4..6
    shutil.copy(backup, db)
    for side in ("-wal", "-shm"):
        Path(f"{db}{side}").unlink(missing_ok=True)
    with Library.open(lib_dir, spec) as lib:
        assert sorted(lib.vectors.ids().tolist()) == [1, 2, 3]  # 4..6 dropped by reconcile
        Indexer(lib, enc, workers=0, batch_size=2).run([photos])  # b*.png again: ids 4..6
        assert sorted(lib.catalogue.chunk_ids().tolist()) == [1, 2, 3, 4, 5, 6]

    on_disk = HnswStore(folder, enc.dim, spec.fingerprint())
    assert on_disk.loaded_from_disk
    assert sorted(on_disk.ids().tolist()) == [1, 2, 3, 4, 5, 6] and on_disk.count() == 6
    for i, c in enumerate(colors):
        q = enc.encode_images(np.full((1, 8, 8, 3), c, np.uint8))[0]
        ids, _ = on_disk.knn(q, 1)
        assert ids.tolist() == [i + 1], f"colour {c} not found under its id"
    with Library.open(lib_dir, spec) as lib:
        assert lib.reconcile() == (0, 0)


# -- #10.8 what a power cut can cost: SQLite's synchronous setting ----------------------------
def test_every_embedded_batch_is_committed_with_a_full_sync(tmp_path):
    """NORMAL for the scan's many small commits; each embedded batch commits under FULL (which
    also syncs the earlier commits in the log), and the connection is back to NORMAL after,
    also when the batch fails."""
    from indexer.catalogue import SYNCHRONOUS, SYNCHRONOUS_BATCH, Catalogue, NewChunk

    assert (SYNCHRONOUS, SYNCHRONOUS_BATCH) == ("NORMAL", "FULL")
    cat = Catalogue(tmp_path / "catalogue.sqlite")
    root = cat.add_root("/photos")
    fid = cat.upsert_pending(root, "/photos/a.jpg", "image", 1, 1, "h1")
    levels = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    assert levels[cat.db.execute("PRAGMA synchronous").fetchone()[0]] == "NORMAL"
    log: list[str] = []
    cat.db.set_trace_callback(log.append)
    cat.commit_embedded([(fid, [NewChunk(0, None, np.ones(DIM, np.float32))], None, None)], [])
    cat.db.set_trace_callback(None)
    sql = [line.strip().upper() for line in log if not line.startswith("--")]
    full, commit = sql.index("PRAGMA SYNCHRONOUS=FULL"), sql.index("COMMIT")
    assert full < sql.index("BEGIN") < commit < sql.index("PRAGMA SYNCHRONOUS=NORMAL")
    assert levels[cat.db.execute("PRAGMA synchronous").fetchone()[0]] == "NORMAL"
    with pytest.raises(ValueError, match="could not convert"):  # failed inside the transaction
        cat.commit_embedded([(fid, [NewChunk(0, None, "not a vector")], None, None)], [])
    assert levels[cat.db.execute("PRAGMA synchronous").fetchone()[0]] == "NORMAL"
    assert cat.chunk_ids().tolist() == [1]
    cat.close()


FILE_SIZE_LIMIT_SCRIPT = r'''
import json, resource, signal, sys
from pathlib import Path
import numpy as np
from indexer.vectors import HnswStore

folder, dim, fp = Path(sys.argv[1]), 16, "0123456789abcdef"
rng = np.random.default_rng(0)
s = HnswStore(folder, dim, fp)
s.add(np.arange(1, 201), rng.normal(size=(200, dim)).astype(np.float32))
s.flush()
good = (folder / "vectors.hnsw").stat().st_size
s.add(np.arange(201, 2201), rng.normal(size=(2000, dim)).astype(np.float32))
# every write past the old index's size fails (EFBIG, like a full disk): hnswlib does not notice
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (good + 4096, good + 4096))
try:
    s.flush()
except OSError as exc:
    print(json.dumps({"raised": type(exc).__name__, "message": str(exc)}))
else:
    print(json.dumps({"raised": None}))
'''


def test_a_real_short_write_from_hnswlib_is_caught(tmp_path):
    """Not a simulation inside Python: the process's file size limit makes hnswlib's own
    writes fail part-way, which it ignores; the save must refuse the short file."""
    import subprocess
    import sys

    folder = tmp_path / "store"
    folder.mkdir()
    out = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMIT_SCRIPT, str(folder)],
                         cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["raised"] == "IncompleteWrite", result
    assert "bytes could be written" in result["message"]
    s = HnswStore(folder, DIM, FP)
    assert s.loaded_from_disk and s.count() == 200  # the good index, whole
    assert sorted(p.name for p in folder.iterdir()) == [
        "vectors.deleted.npy", "vectors.hnsw", "vectors.json"]
