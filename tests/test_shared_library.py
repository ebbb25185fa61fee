"""One library, many searchers: a PostgreSQL catalogue beside a Milvus vector store.

Real servers (a throwaway PostgreSQL cluster and milvus-lite, both on loopback), the real CLI,
and a FakeEncoder of the pinned model's width. A second library folder stands in for a second
machine: it holds nothing but the two URLs.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEncoder
from helpers import note, solid
from milvus_server import milvus_server, own_milvus_server  # noqa: F401 - fixtures
from pg_server import own_pg_server, pg_server  # noqa: F401 - fixtures

from indexer.errors import ConfigError


def _fake_model(monkeypatch):
    import app.wiring

    monkeypatch.setattr(app.wiring, "load_model",
                        lambda spec, *a, **k: FakeEncoder(dim=spec.embed_dim))


def _pictures(folder: Path, start: int, n: int, colour=(220, 30, 30), name="red") -> None:
    for i in range(start, start + n):
        solid(folder / ("holiday" if i % 2 else "work") / f"{name}_{i:02d}.png",
              tuple(min(255, c + i) for c in colour))


def _hits(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _spec():
    from indexer.specs import get_spec

    return get_spec("tiny-shapes")


def _urls(pg, milvus) -> tuple[str, str]:
    name = f"s{uuid.uuid4().hex[:8]}"
    return pg.url(name), milvus.url(name)


def _truth(cat_url: str, store_url: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(catalogue chunk ids, Milvus ids, Milvus count), read without opening a library."""
    from indexer.milvus_store import MilvusStore
    from indexer.pg_catalogue import PgCatalogue

    spec = _spec()
    cat = PgCatalogue(cat_url, spec.fingerprint(), readonly=True)
    try:
        ids = np.sort(cat.chunk_ids())
    finally:
        cat.close()
    store = MilvusStore.from_url(store_url, dim=spec.embed_dim, fingerprint=spec.fingerprint(),
                                 readonly=True)
    try:
        return ids, np.sort(store.ids()), store.count()
    finally:
        store.close()


def test_a_postgresql_catalogue_needs_a_shared_vector_store(pg_server, tmp_path, monkeypatch,  # noqa: F811
                                                            capsys):  # noqa: F811
    from app.cli import main
    from indexer.library import Library

    _fake_model(monkeypatch)
    with pytest.raises(ConfigError, match="--vector-store milvus://"):
        Library.open(tmp_path / "lib", _spec(), catalogue=pg_server.url("x"))
    folder = tmp_path / "Pictures"
    _pictures(folder, 0, 2)
    assert main(["index", str(folder), "--library", str(tmp_path / "lib2"), "--model",
                 "tiny-shapes", "--catalogue", pg_server.url("x"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--vector-store milvus://" in err[0], err


def test_index_then_a_searcher_on_another_folder_finds_what_was_just_added(
        pg_server, milvus_server, tmp_path, monkeypatch, capsys):  # noqa: F811
    from app.cli import main
    from indexer.library import Library, LibraryInfo
    from indexer.search import Searcher

    _fake_model(monkeypatch)
    cat_url, store_url = _urls(pg_server, milvus_server)
    folder = tmp_path / "Pictures"
    _pictures(folder, 0, 10)
    note(folder / "notes" / "harbour.txt", "red fishing boats in the harbour at dawn")
    lib = tmp_path / "indexer-lib"
    argv = ["index", str(folder), "--library", str(lib), "--model", "tiny-shapes",
            "--catalogue", cat_url, "--vector-store", store_url, "--quiet", "--workers", "1"]
    assert main(argv) == 0
    assert "11 added" in capsys.readouterr().out
    assert LibraryInfo.read(lib).catalogue == cat_url  # the folder remembers both URLs
    assert not (lib / "models" / _spec().fingerprint() / "catalogue.sqlite").exists()
    ids, got, count = _truth(cat_url, store_url)
    assert len(ids) == count == 11 and np.array_equal(ids, got)

    # a second machine: an empty folder and the two URLs
    other = tmp_path / "searcher-lib"
    assert main(["search", "harbour boats", "--library", str(other), "--model", "tiny-shapes",
                 "--catalogue", cat_url, "--vector-store", store_url, "--json", "--all",
                 "--mode", "keyword"]) == 0
    hits = _hits(capsys.readouterr().out)
    assert hits and hits[0]["path"].endswith("notes/harbour.txt")
    assert LibraryInfo.read(other).catalogue == cat_url
    assert sorted(p.name for p in other.iterdir()) == ["magpie-library.json"]
    # it searches; it never indexes (one writer): one clear line, nothing written
    assert main(["index", str(folder), "--library", str(other), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "searches a shared library" in err[0], err
    assert sorted(p.name for p in other.iterdir()) == ["magpie-library.json"]

    # a searcher that stays open while the indexer adds more
    searcher_lib = Library.open(other, _spec(), readonly=True)
    searcher = Searcher(searcher_lib, FakeEncoder(dim=_spec().embed_dim))
    try:
        before = searcher.search("lighthouse", k=20, mode="keyword")
        assert before == []
        note(folder / "notes" / "lighthouse.txt", "the lighthouse keeper's log")
        _pictures(folder, 10, 4, colour=(30, 40, 220), name="blue")
        assert main(argv) == 0
        assert "5 added" in capsys.readouterr().out
        after = searcher.search("lighthouse", k=20, mode="keyword")
        assert [Path(r.path).name for r in after] == ["lighthouse.txt"]
        assert searcher_lib.reader().counts()["images"] == 14
        blue = sorted(str(p) for p in folder.glob("*/blue_*.png"))[0]
        reader = searcher_lib.reader()
        vec = reader.file_vector(reader.file_id_for_path(blue))
        found = searcher.search(None, vector=vec, k=20, mode="vector")
        assert found[0].path == blue  # its vector reached Milvus too
        held = {r.path for r in found}
        assert held <= {str(p) for p in folder.rglob("*") if p.is_file()}
    finally:
        searcher_lib.close()


def test_reopening_reads_only_the_journal_never_every_id(pg_server, milvus_server, tmp_path,  # noqa: F811
                                                          monkeypatch):  # noqa: F811
    from indexer.indexing import Indexer
    from indexer.library import ACK_KEY, Library
    from indexer.milvus_store import MilvusStore

    cat_url, store_url = _urls(pg_server, milvus_server)
    folder = tmp_path / "Pictures"
    _pictures(folder, 0, 6)
    enc = FakeEncoder(dim=_spec().embed_dim)
    lib = Library.open(tmp_path / "lib", _spec(), catalogue=cat_url, store=store_url)
    try:
        Indexer(lib, enc, workers=0).run([str(folder)])
    finally:
        lib.close()

    def no_listing(self):
        raise AssertionError("reconcile listed every id in the collection")

    monkeypatch.setattr(MilvusStore, "ids", no_listing)
    lib = Library.open(tmp_path / "lib", _spec())
    try:
        head = lib.catalogue.journal_head()
        assert int(lib.catalogue.get_meta(ACK_KEY)) == head > 0
        assert lib.reconcile() == (0, 0)
        # an indexer killed after the catalogue committed, before Milvus got the batch
        _pictures(folder, 6, 3, colour=(30, 40, 220), name="blue")
        real_add = MilvusStore.add
        monkeypatch.setattr(MilvusStore, "add", lambda self, ids, vecs, meta: None)
        monkeypatch.setattr(Library, "_acknowledge", lambda self, point=None: None)
        Indexer(lib, enc, workers=0).run([str(folder)])
        assert lib.vectors.count() == 6 and lib.catalogue.counts()["chunks"] == 9
    finally:
        lib.close()
    monkeypatch.setattr(MilvusStore, "add", real_add)
    monkeypatch.undo()
    monkeypatch.setattr(MilvusStore, "ids", no_listing)
    lib = Library.open(tmp_path / "lib", _spec())  # replays the 3 from the journal
    try:
        assert lib.vectors.count() == 9
        assert int(lib.catalogue.get_meta(ACK_KEY)) == lib.catalogue.journal_head()
        assert lib.catalogue.changes_since(0)[1].size == 0  # acknowledged: pruned
    finally:
        lib.close()


# The least-privilege recipe of docs/scaling.md, word for word (names made unique per test).
ROLES_SQL = """
CREATE ROLE {indexer} LOGIN;
CREATE ROLE {searcher} LOGIN;
ALTER ROLE {searcher} SET default_transaction_read_only = on;
CREATE DATABASE {db} OWNER {indexer};
"""
ROLES_IN_DB_SQL = """
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE {indexer} GRANT USAGE ON SCHEMAS TO {searcher};
ALTER DEFAULT PRIVILEGES FOR ROLE {indexer} GRANT SELECT ON TABLES TO {searcher};
"""


def test_least_privilege_roles_from_the_docs(pg_server, milvus_server, tmp_path,  # noqa: F811
                                             monkeypatch, capsys):  # noqa: F811
    """The indexer owns one database and nothing else; the searcher can only read it (and
    new model schemas too, through default privileges); neither is a superuser."""
    from app.cli import main

    _fake_model(monkeypatch)
    tag = uuid.uuid4().hex[:6]
    names = {"indexer": f"idx_{tag}", "searcher": f"srch_{tag}", "db": f"photos_{tag}"}
    for stmt in ROLES_SQL.format(**names).strip().splitlines():
        pg_server.admin_sql(stmt, database="postgres")
    pg_server.admin_sql(ROLES_IN_DB_SQL.format(**names), database=names["db"])
    base = f"postgresql://{{}}@{pg_server.address}/{names['db']}?schema=family"
    indexer_url, searcher_url = base.format(names["indexer"]), base.format(names["searcher"])
    store_url = milvus_server.url(f"roles{tag}")
    folder = tmp_path / "Pictures"
    _pictures(folder, 0, 3)
    note(folder / "harbour.txt", "boats in the harbour")
    assert main(["index", str(folder), "--library", str(tmp_path / "lib"), "--model",
                 "tiny-shapes", "--catalogue", indexer_url, "--vector-store", store_url,
                 "--quiet"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["search", "harb", "--library", str(tmp_path / "far"), "--model", "tiny-shapes",
                 "--catalogue", searcher_url, "--vector-store", store_url, "--json",
                 "--all", "--mode", "keyword"]) == 0, capsys.readouterr().err
    hits = _hits(capsys.readouterr().out)
    assert [Path(h["path"]).name for h in hits] == ["harbour.txt"]  # pg_trgm, made by the owner
    # the searcher's role cannot index: one clear line, nothing changed
    rogue = tmp_path / "rogue"
    rogue.mkdir()
    (rogue / "magpie-library.json").write_text(
        (tmp_path / "lib" / "magpie-library.json").read_text().replace(
            f"{names['indexer']}@", f"{names['searcher']}@"))
    milvus_json = Path("models") / _spec().fingerprint() / "milvus.json"
    (rogue / milvus_json).parent.mkdir(parents=True)
    (rogue / milvus_json).write_text((tmp_path / "lib" / milvus_json).read_text())
    assert main(["index", str(folder), "--library", str(rogue), "--model",
                 "tiny-shapes", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no permission to write" in err[0], err


def test_another_model_is_refused(pg_server, milvus_server, tmp_path, monkeypatch,  # noqa: F811
                                  capsys):  # noqa: F811
    from app.cli import main

    _fake_model(monkeypatch)
    cat_url, store_url = _urls(pg_server, milvus_server)
    folder = tmp_path / "Pictures"
    _pictures(folder, 0, 2)
    assert main(["index", str(folder), "--library", str(tmp_path / "lib"), "--model",
                 "tiny-shapes", "--catalogue", cat_url, "--vector-store", store_url,
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["search", "red", "--library", str(tmp_path / "lib"), "--model",
                 "tiny-digits"]) == 2
    err = capsys.readouterr().err
    assert "never mixed" in err and "migrate" in err
    # a searcher folder asking for a model the shared library has no catalogue of
    assert main(["search", "red", "--library", str(tmp_path / "far"), "--model",
                 "tiny-digits", "--catalogue", cat_url, "--vector-store", store_url]) == 2
    assert "run `magpie index` first" in capsys.readouterr().err
    assert not (tmp_path / "far" / "magpie-library.json").exists()  # a failed join: nothing


@pytest.mark.parametrize("victim", ["postgresql", "milvus"])
def test_a_server_killed_mid_index_then_the_next_run_completes(
        victim, own_pg_server, own_milvus_server, tmp_path, monkeypatch, capsys):  # noqa: F811
    """Kill a server after the second batch: one clear line; after a restart the same command
    completes, and Milvus holds exactly the catalogue's chunks, none lost or twice."""
    from app.cli import main
    from indexer.milvus_store import MilvusStore

    _fake_model(monkeypatch)
    cat_url, store_url = own_pg_server.url("crash"), own_milvus_server.url("crash")
    folder = tmp_path / "Pictures"
    _pictures(folder, 0, 30)
    real_add = MilvusStore.add
    calls = {"n": 0}

    def add_then_die(self, ids, vectors, meta):
        calls["n"] += 1
        if calls["n"] == 3:
            (own_pg_server if victim == "postgresql" else own_milvus_server).stop(kill=True)
        return real_add(self, ids, vectors, meta)

    monkeypatch.setattr(MilvusStore, "add", add_then_die)
    argv = ["index", str(folder), "--library", str(tmp_path / "lib"), "--model", "tiny-shapes",
            "--catalogue", cat_url, "--vector-store", store_url, "--quiet", "--workers", "1",
            "--batch-size", "8"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    want = "PostgreSQL server" if victim == "postgresql" else "cannot reach Milvus"
    assert want in err[0], err
    (own_pg_server if victim == "postgresql" else own_milvus_server).start()
    monkeypatch.setattr(MilvusStore, "add", real_add)
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    ids, got, count = _truth(cat_url, store_url)
    assert len(ids) == 30, "files lost"
    assert np.array_equal(ids, got), "Milvus and the catalogue disagree"
    assert count == len(got) == len(set(got.tolist())), "duplicated vectors"
    from indexer.pg_catalogue import PgCatalogue

    cat = PgCatalogue(cat_url, _spec().fingerprint(), readonly=True)
    try:
        paths = [r[0] for r in cat._rows("SELECT path FROM files")]
        assert len(paths) == len(set(paths)) == 30
        assert cat.counts()["pending"] == 0
    finally:
        cat.close()


def test_a_model_migration_fills_a_second_schema_beside_the_first(
        pg_server, milvus_server, tmp_path):  # noqa: F811
    """The pinning rule on the servers: a new model gets its own schema and collection; the
    old pair keeps answering until the switch, and then both still exist, each pinned."""
    from dataclasses import replace

    from indexer.indexing import Indexer
    from indexer.library import Library, LibraryInfo
    from indexer.migrate import migrate
    from indexer.pg_catalogue import PgCatalogue
    from indexer.search import Searcher
    from indexer.specs import TINY_SHAPES

    old_spec = replace(TINY_SHAPES, embed_dim=16)
    new_spec = replace(TINY_SHAPES, embed_dim=16, pretrained="magpie-shapes-v2")
    cat_url, store_url = _urls(pg_server, milvus_server)
    root = tmp_path / "Pictures"
    _pictures(root, 0, 6)
    note(root / "kite.md", "the red kite over the beach")
    old = Library.open(tmp_path / "lib", old_spec, catalogue=cat_url, store=store_url)
    Indexer(old, FakeEncoder(), workers=0).run([root])
    during: list[int] = []
    s = Searcher(old, FakeEncoder())
    result = migrate(old.root, new_spec, FakeEncoder(), workers=0, batch_size=3, source=old,
                     on_progress=lambda p: during.append(len(s.search("kite", k=5)))
                     if p.phase == "embedding" else None)
    old.close()
    assert result.switched and during and all(n > 0 for n in during)
    assert LibraryInfo.read(tmp_path / "lib").active == new_spec.fingerprint()
    with Library.open(tmp_path / "lib", new_spec) as new:
        assert new.vectors.count() == 7 and new.catalogue.counts()["chunks"] == 7
    for spec in (old_spec, new_spec):
        cat = PgCatalogue(cat_url, spec.fingerprint(), readonly=True)
        try:
            assert cat.get_meta("fingerprint") == spec.fingerprint()
            assert cat.counts()["images"] == 6
        finally:
            cat.close()


def test_a_searcher_outlives_a_restart_that_left_the_collection_released(
        milvus_server, tmp_path):  # noqa: F811
    """A restarted Milvus comes back with collections released; a searcher opened before must
    load it again, not fail every search with "call load() before search" (found by
    bench/pg_load.py with 16 searchers and Milvus killed)."""
    from indexer.milvus_store import MilvusStore
    from indexer.vectors import VectorMeta

    url = milvus_server.url(f"rel{uuid.uuid4().hex[:8]}")
    writer = MilvusStore.from_url(url, dim=8, fingerprint="0123456789abcdef",
                                  folder=tmp_path / "w")
    vecs = np.eye(8, dtype=np.float32)[:3]
    writer.add(np.array([1, 2, 3]), vecs, [VectorMeta(i, "image", f"/p/{i}.jpg", 0.0)
                                           for i in (1, 2, 3)])
    writer.flush()
    searcher = MilvusStore.from_url(url, dim=8, fingerprint="0123456789abcdef", readonly=True)
    try:
        client = milvus_server.client()
        client.release_collection(searcher.collection)  # what a restart leaves behind
        client.close()
        ids, _scores = searcher.knn(vecs[1], 1)
        assert ids.tolist() == [2]
    finally:
        searcher.close()
        writer.drop()
        writer.close()
