"""The catalogue's schema upgrades and filter SQL, without a model or a vector store."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from indexer import catalogue as C
from indexer.catalogue import Catalogue, FileFilter, NewChunk


def _add(cat: Catalogue, root: int, path: str, kind: str = "image") -> int:
    fid = cat.upsert_pending(root, path, kind, 1, 1, f"h-{path}")
    vec = np.ones(4, np.float32) / 2
    cat.commit_embedded([(fid, [NewChunk(0, None, vec)], 0.0, None)], [])
    return fid


def test_a_version_1_catalogue_is_upgraded_in_place(tmp_path: Path):
    path = tmp_path / "catalogue.sqlite"
    old = Catalogue(path)
    fid = _add(old, old.add_root("/p"), "/p/a.jpg")
    old.close()
    db = sqlite3.connect(path)  # turn it into what schema 1 wrote: no filter indexes
    db.executescript("DROP INDEX files_path; DROP INDEX files_taken; DROP TRIGGER ocr_lines_gone;"
                     " DROP TABLE ocr_lines; DROP TABLE ocr; PRAGMA user_version=1;")
    db.close()

    cat = Catalogue(path)
    assert cat.db.execute("PRAGMA user_version").fetchone()[0] == C.SCHEMA_VERSION == 3
    names = {r[0] for r in cat.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"files_path", "files_taken"} <= names
    tables = {r[0] for r in cat.db.execute("SELECT name FROM sqlite_master")}
    assert {"ocr", "ocr_lines", "ocr_lines_gone"} <= tables  # step 3 ran too (OCR)
    assert cat.chunk_ids_matching(FileFilter(folders=("/p",))).tolist() == [fid]
    where, args = C.filter_sql(FileFilter(folders=("/p",)))
    plan = " ".join(str(tuple(r)) for r in cat.db.execute(
        f"EXPLAIN QUERY PLAN SELECT c.id FROM chunks c JOIN files f ON f.id=c.file_id WHERE {where}",
        args))
    assert "files_path" in plan, plan
    cat.close()


def test_a_newer_schema_is_refused(tmp_path: Path):
    path = tmp_path / "catalogue.sqlite"
    Catalogue(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={C.SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(C.LibraryTooNew, match="newer Magpie"):
        Catalogue(path)


def test_folder_filter_is_exactly_the_folder_and_below(tmp_path: Path):
    cat = Catalogue(tmp_path / "c.sqlite")
    root = cat.add_root("/lib")
    paths = ["/lib/a/x.jpg", "/lib/a/deep/y.jpg", "/lib/a0/z.jpg", "/lib/a.b/w.jpg",
             "/lib/ab/v.jpg", "/lib/a-/u.jpg", "/lib/A/t.jpg", "/lib/a/ü.jpg", "/lib/x.jpg"]
    ids = {p: _add(cat, root, p) for p in paths}
    for folder in ("/lib/a", "/lib/a/"):
        got = set(cat.chunk_ids_matching(FileFilter(folders=(folder,))).tolist())
        assert got == {ids["/lib/a/x.jpg"], ids["/lib/a/deep/y.jpg"], ids["/lib/a/ü.jpg"]}
    everything = set(cat.chunk_ids_matching(FileFilter(folders=("/",))).tolist())
    assert everything == set(ids.values())
    # among: only the given candidates are checked
    some = np.array([ids["/lib/a/x.jpg"], ids["/lib/a0/z.jpg"], 10_000])
    assert cat.chunk_ids_matching(FileFilter(folders=("/lib/a",)), some).tolist() == [
        ids["/lib/a/x.jpg"]]
    assert cat.chunk_ids_matching(FileFilter(folders=("/lib/a",)), np.array([], np.int64)).size == 0
    cat.close()


def test_stored_vectors_leaves_out_chunks_deleted_meanwhile(tmp_path: Path):
    cat = Catalogue(tmp_path / "c.sqlite")
    root = cat.add_root("/lib")
    a, b = _add(cat, root, "/lib/a.jpg"), _add(cat, root, "/lib/b.jpg")
    (chunk_a,), (chunk_b,) = (
        cat.db.execute("SELECT id FROM chunks WHERE file_id=?", (f,)).fetchone() for f in (a, b))
    with cat.db:
        cat.db.execute("DELETE FROM chunks WHERE file_id=?", (b,))
    found, vecs = cat.stored_vectors(np.array([chunk_a, chunk_b, 999]), 4)
    assert found.tolist() == [chunk_a]
    np.testing.assert_allclose(vecs, [[0.5, 0.5, 0.5, 0.5]])
    cat.close()


def test_sample_by_listing_picks_what_the_lookups_pick(tmp_path: Path, monkeypatch):
    """The fast sample (one id list, one read) returns the same vectors in the same order as
    a lookup per target, for all chunks and per kind, with gaps left by deleted files."""
    cat = Catalogue(tmp_path / "c.sqlite")
    root = cat.add_root("/lib")
    rng = np.random.default_rng(4)
    fids = []
    for i in range(300):
        kind = "text" if i % 7 == 0 else "image"
        fid = cat.upsert_pending(root, f"/lib/{i}.x", kind, 1, 1, f"h{i}")
        vec = rng.standard_normal(4).astype(np.float32)
        cat.commit_embedded([(fid, [NewChunk(0, None, vec)], 0.0, None)], [])
        fids.append(fid)
    with cat.db:  # gaps in the ids
        cat.db.executemany("DELETE FROM chunks WHERE file_id=?", [(f,) for f in fids[40:90]])
    for kind in (None, "image", "text"):
        for n in (5, 20, 100):
            fast = cat.sample_vectors(n, seed=3, kind=kind)
            monkeypatch.setattr(C, "SAMPLE_BY_LISTING", 0)
            slow = cat.sample_vectors(n, seed=3, kind=kind)
            monkeypatch.setattr(C, "SAMPLE_BY_LISTING", 50_000)
            assert fast.shape == slow.shape and np.array_equal(fast, slow), (kind, n)


def test_id_lookups_fit_sqlites_host_parameter_limit(tmp_path: Path):
    """Thousands of ids in one lookup stay under SQLite's host-parameter limit (999 on older
    builds): chunk hits, file rows and the vector metadata all go through `select_in`."""
    from indexer.stores import vector_meta

    cat = Catalogue(tmp_path / "c.sqlite")
    root = cat.add_root("/lib")
    n = 2 * C.SQL_MAX_VARS + 7
    for i in range(n):
        cat.upsert_pending(root, f"/lib/{i}.jpg", "image", 1, 1, f"h{i}")
    fids = [r[0] for r in cat.db.execute("SELECT id FROM files ORDER BY id")]
    vec = np.ones(4, np.float32) / 2
    cat.commit_embedded([(f, [NewChunk(0, None, vec)], 0.0, None) for f in fids], [])
    cids = cat.chunk_ids().tolist()
    cat.db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, C.SQL_MAX_VARS)
    with pytest.raises(sqlite3.OperationalError, match="too many SQL variables"):
        cat.db.execute(f"SELECT 1 FROM files WHERE id IN ({','.join('?' * n)})", fids)

    assert sorted(cat.chunk_hits(cids)) == cids
    assert sorted(cat.files_by_ids(fids)) == fids
    assert [m.file_id for m in vector_meta(cat, cids)] == [
        cat.chunk_hits([c])[c].file_id for c in cids]
    rows = list(C.select_in(cat.db, "SELECT id FROM files WHERE id IN ({ids})", fids, size=5))
    assert sorted(r[0] for r in rows) == fids
    with pytest.raises(ValueError, match="exactly once"):
        list(C.select_in(cat.db, "SELECT id FROM files", fids))
    cat.close()


def test_one_filter_serves_both_drivers():
    """The PostgreSQL catalogue uses this same filter with psycopg's placeholder: the same
    clauses and arguments, only the placeholder differs."""
    flt = FileFilter(kinds=("image", "text"), folders=("/p/", "/q"), after=1.0, before=2.0)
    lite, lite_args = C.filter_sql(flt)
    pg, pg_args = C.filter_sql(flt, "%s")
    assert pg_args == lite_args == ["image", "text", "/p/", "/p0", "/q/", "/q0", 1.0, 2.0]
    assert "?" not in pg and pg.count("%s") == lite.count("?") == len(lite_args)
    assert pg.replace("%s", "?") == lite
