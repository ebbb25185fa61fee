"""One contract for every catalogue: SQLite (embedded) and PostgreSQL (a shared server).

Each test runs against both backends (parametrised by `backend`), the way
tests/test_store_contract.py runs one suite against hnswlib and Milvus. PostgreSQL is a real
throwaway cluster on a loopback port (tests/pg_server.py); no mocks.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from pg_server import pg_server  # noqa: F401 - fixture

from indexer.catalogue import Catalogue, FileFilter, NewChunk
from indexer.catalogue_api import CatalogueLike, JournalledCatalogue, OcrCatalogue

ROOT = Path(__file__).resolve().parent.parent
DIM = 8
FP = "0123456789abcdef"
T0 = 1_600_000_000.0
DAY = 86400.0

BACKENDS = ["sqlite", "postgresql"]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def open_cat(backend: str, request, tmp_path: Path):
    """open_cat(readonly=False) -> a catalogue of `backend`; the same one on every call."""
    opened: list = []
    if backend == "postgresql":
        server = request.getfixturevalue("pg_server")
        from indexer.pg_catalogue import PgCatalogue

        url = server.url(f"t{abs(hash(request.node.nodeid)) % 10**9}")

        def make(readonly: bool = False, fingerprint: str = FP):
            cat = PgCatalogue(url, fingerprint, readonly=readonly, create=not readonly)
            opened.append(cat)
            return cat
    else:
        path = tmp_path / "catalogue.sqlite"

        def make(readonly: bool = False, fingerprint: str = FP):
            cat = Catalogue(path, readonly=readonly)
            opened.append(cat)
            return cat
    yield make
    for cat in opened:
        cat.close()


@pytest.fixture
def cat(open_cat) -> CatalogueLike:
    return open_cat()


def add(cat: CatalogueLike, root: int, path: str, kind: str = "image", *, chunks: int = 1,
        taken_at: float | None = T0, body: str | None = None, content_hash: str | None = None,
        seed: int = 0) -> tuple[int, list[int]]:
    fid = cat.upsert_pending(root, path, kind, 10, 1_000_000_000, content_hash or "h-" + os.fsencode(path).hex())
    rng = np.random.default_rng(seed)
    new = [NewChunk(o, f"chunk {o}" if kind == "text" else None, unit(rng.normal(size=DIM)))
           for o in range(chunks)]
    ids, _old = cat.commit_embedded([(fid, new, taken_at, body)], [])
    return fid, ids


# -- the contract is the code's own use -----------------------------------------------------
def test_the_protocol_names_every_method_the_code_calls():
    """Every `catalogue.X(`, `reader().X(`, `cat.X(` call in app/, indexer/, ui/ is a method of
    CatalogueLike, so a backend that keeps the Protocol keeps everything Magpie uses."""
    pattern = re.compile(r"\b(?:catalogue|reader\(\)|cat|reader|source\.catalogue|"
                         r"target\.catalogue)\.([a-z_]+)\(")
    called: set[str] = set()
    for folder in ("app", "indexer", "ui"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name in ("catalogue.py", "pg_catalogue.py", "catalogue_api.py",
                             "thumbnails.py"):  # thumbnails: a QImageReader named `reader`
                continue
            called |= set(pattern.findall(path.read_text()))
    assert "commit_embedded" in called and "keyword_search" in called  # the grep works
    # the OCR methods are a contract of their own: a server catalogue keeps no OCR text yet
    missing = sorted(m for m in called
                     if not hasattr(JournalledCatalogue, m) and not hasattr(OcrCatalogue, m))
    assert missing == []


def test_both_backends_keep_the_protocol(cat, backend):
    assert isinstance(cat, CatalogueLike)
    assert isinstance(cat, JournalledCatalogue) == (backend == "postgresql")


# -- meta, roots, files -----------------------------------------------------------------------
def test_meta_roundtrip(cat):
    assert cat.get_meta("fingerprint") is None
    cat.set_meta("fingerprint", FP)
    cat.set_meta("fingerprint", FP)  # replace, not a second row
    assert cat.get_meta("fingerprint") == FP


def test_roots_are_unique_and_sorted(cat):
    b = cat.add_root("/b")
    a = cat.add_root("/a")
    assert cat.add_root("/b") == b
    assert cat.roots() == [(a, "/a"), (b, "/b")]


def test_pending_then_embedded_then_counted(cat):
    root = cat.add_root("/lib")
    fid = cat.upsert_pending(root, "/lib/a.jpg", "image", 5, 7, "ha")
    assert [r.id for r in cat.pending_files()] == [fid]
    assert cat.root_pending_counts() == {root: 1}
    assert cat.counts()["pending"] == 1
    new, old = cat.commit_embedded([(fid, [NewChunk(0, None, unit(np.ones(DIM)))], None, None)],
                                   [])
    assert len(new) == 1 and old == []
    row = cat.file_by_id(fid)
    assert row.state == "indexed" and row.size == 5 and row.mtime_ns == 7
    assert row.taken_at == pytest.approx(7 / 1e9)  # no date: the mtime
    assert cat.pending_files() == [] and cat.root_counts() == {root: 1}
    c = cat.counts()
    assert (c["images"], c["notes"], c["pending"], c["chunks"], c["roots"]) == (1, 0, 0, 1, 1)


def test_upsert_keeps_the_id_and_reembedding_replaces_chunks(cat):
    root = cat.add_root("/lib")
    fid, first = add(cat, root, "/lib/n.txt", "text", chunks=3)
    again = cat.upsert_pending(root, "/lib/n.txt", "text", 11, 2, "h2")
    assert again == fid and cat.file_by_id(fid).state == "pending"
    assert cat.chunk_ids_of(fid) == first  # old chunks stay until replaced
    new, old = cat.commit_embedded([(fid, [NewChunk(0, "x", unit(np.ones(DIM)))], T0, "b")], [])
    assert sorted(old) == sorted(first)
    assert not set(new) & set(first)  # a chunk id is never handed out twice
    assert cat.chunk_ids_of(fid) == new


def test_files_under_and_within_are_keyed_by_raw_bytes(cat):
    root = cat.add_root("/lib")
    weird = "/lib/a/caf\udce9.jpg"  # not UTF-8: survives as bytes
    paths = ["/lib/a/x.jpg", "/lib/a/deep/y.jpg", "/lib/a0/z.jpg", "/lib/b.jpg", weird]
    ids = {p: add(cat, root, p)[0] for p in paths}
    under = cat.files_under(root)
    assert set(under) == {p.encode("utf-8", "surrogateescape") for p in paths}
    assert under[b"/lib/a/caf\xe9.jpg"].path == "/lib/a/caf\ufffd.jpg"
    within = cat.files_within(root, ["/lib/a"])
    assert {r.id for r in within.values()} == {ids["/lib/a/x.jpg"], ids["/lib/a/deep/y.jpg"],
                                               ids[weird]}
    assert set(cat.files_within(root, ["/lib/b.jpg"])) == {b"/lib/b.jpg"}


def test_touch_move_delete(cat):
    root = cat.add_root("/lib")
    fid, chunks = add(cat, root, "/lib/old/sunset.jpg")
    cat.touch(fid, 99, 42)
    assert (cat.file_by_id(fid).size, cat.file_by_id(fid).mtime_ns) == (99, 42)
    cat.move_file(fid, root, "/lib/new/harbour.jpg", 99, 43)
    assert cat.file_by_id(fid).path == "/lib/new/harbour.jpg"
    assert cat.chunk_ids_of(fid) == chunks  # a move keeps the vectors
    assert cat.file_id_for_path("/lib/new/harbour.jpg") == fid
    assert cat.file_id_for_path("/lib/old/sunset.jpg") is None
    # the keyword index follows the new name
    assert [r[0] for r in cat.keyword_search('"harbour"', FileFilter(), 10)] == [fid]
    assert cat.keyword_search('"sunset"', FileFilter(), 10) == []
    assert cat.delete_files([fid]) == chunks
    assert cat.file_by_id(fid) is None and cat.chunk_ids().size == 0
    assert cat.keyword_search('"harbour"', FileFilter(), 10) == []


def test_remove_root_returns_its_chunks_and_forgets_everything_under_it(cat):
    a, b = cat.add_root("/a"), cat.add_root("/b")
    _fa, ca = add(cat, a, "/a/x.jpg", chunks=1)
    _fb, cb = add(cat, b, "/b/y.txt", "text", chunks=2, body="kept words")
    cat.set_scan_errors(a, [("/a/bad", "unreadable")])
    assert sorted(cat.remove_root(a)) == sorted(ca)
    assert cat.roots() == [(b, "/b")]
    assert sorted(cat.chunk_ids().tolist()) == sorted(cb)
    assert cat.errors() == []
    assert [r[0] for r in cat.keyword_search('"kept"', FileFilter(), 5)] == [_fb]


def test_identical_content_is_found_and_copied(cat):
    root = cat.add_root("/lib")
    src, src_chunks = add(cat, root, "/lib/a.txt", "text", chunks=2, content_hash="same",
                          body="tide tables")
    assert cat.indexed_file_with_hash("same").id == src
    assert cat.indexed_file_with_hash("same", exclude=src) is None
    dst = cat.upsert_pending(root, "/lib/copy.txt", "text", 10, 1, "same")
    new, old = cat.copy_chunks(src, dst)
    assert len(new) == 2 and old == []
    np.testing.assert_allclose(cat.vectors_for(new, DIM), cat.vectors_for(src_chunks, DIM))
    assert {r[0] for r in cat.keyword_search('"tide"', FileFilter(), 5)} == {src, dst}


def test_errors_file_and_scan_errors(cat):
    root = cat.add_root("/lib")
    fid = cat.upsert_pending(root, "/lib/broken.jpg", "image", 1, 1, None)
    cat.commit_embedded([], [(fid, "not an image")])
    cat.set_scan_errors(root, [("/lib/x", "permission denied"), ("/lib/sub/y", "gone")])
    cat.set_scan_errors_within(root, ["/lib/sub"], [("/lib/sub/z", "loop")])
    assert cat.errors() == [("/lib/broken.jpg", "not an image"), ("/lib/sub/z", "loop"),
                            ("/lib/x", "permission denied")]
    assert cat.counts()["errors"] == 3
    assert cat.file_by_id(fid).state == "error"


# -- vectors -------------------------------------------------------------------------------
def test_vectors_roundtrip_and_deleted_chunks_are_left_out(cat):
    root = cat.add_root("/lib")
    _a, ca = add(cat, root, "/lib/a.jpg", seed=1)
    fb, cb = add(cat, root, "/lib/b.txt", "text", chunks=2, seed=2)
    ids = ca + cb
    vecs = cat.vectors_for(ids[::-1], DIM)
    assert vecs.shape == (3, DIM) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    if isinstance(cat, JournalledCatalogue):  # re-sending every vector: server catalogues only
        got = {int(i): v for batch_ids, batch in cat.iter_vectors(batch=2)
               for i, v in zip(batch_ids, batch)}
        assert sorted(got) == sorted(ids)
        np.testing.assert_allclose(got[ids[0]], vecs[-1])
    cat.delete_files([fb])
    found, stored = cat.stored_vectors(np.array(ids + [10**9]), DIM)
    assert found.tolist() == ca and stored.shape == (1, DIM)
    with pytest.raises(KeyError):
        cat.vectors_for(cb, DIM)
    fv = cat.file_vector(_a)
    np.testing.assert_allclose(fv, vecs[-1], atol=1e-6)
    assert cat.file_vector(fb) is None


def test_vector_meta_in_order_and_missing_is_an_error(cat):
    root = cat.add_root("/lib")
    fa, ca = add(cat, root, "/lib/p/a.jpg", taken_at=T0)
    fb, cb = add(cat, root, "/lib/q/b.txt", "text", taken_at=T0 + DAY)
    meta = cat.vector_meta([cb[0], ca[0]])
    assert [(m.file_id, m.kind, m.path, m.taken_at) for m in meta] == [
        (fb, "text", "/lib/q/b.txt", T0 + DAY), (fa, "image", "/lib/p/a.jpg", T0)]
    with pytest.raises(RuntimeError):
        cat.vector_meta([10**9])


def test_sample_vectors_by_kind(cat):
    root = cat.add_root("/lib")
    for i in range(6):
        add(cat, root, f"/lib/{i}.jpg", seed=i)
    add(cat, root, "/lib/n.txt", "text", chunks=2, seed=9)
    assert cat.sample_vectors(100).shape == (8, DIM)
    assert cat.sample_vectors(3).shape == (3, DIM)
    assert cat.sample_vectors(100, kind="text").shape == (2, DIM)
    assert cat.sample_vectors(5, kind="nothing").size == 0


# -- filters ------------------------------------------------------------------------------
def test_filters_mean_the_same_on_every_backend(cat):
    root = cat.add_root("/lib")
    paths = ["/lib/a/x.jpg", "/lib/a/deep/y.jpg", "/lib/a0/z.jpg", "/lib/a.b/w.jpg",
             "/lib/ab/v.jpg", "/lib/a-/u.jpg", "/lib/A/t.jpg", "/lib/a/ü.jpg", "/lib/x.txt",
             "/lib/my_trip/1.jpg", "/lib/myXtrip/2.jpg", "/lib/100%/3.jpg"]
    ids = {}
    for i, p in enumerate(paths):
        kind = "text" if p.endswith(".txt") else "image"
        ids[p] = add(cat, root, p, kind, taken_at=T0 + i * DAY)[1][0]
    pending = cat.upsert_pending(root, "/lib/a/x.jpg", "image", 1, 2, "new")  # not searchable
    assert pending

    def match(**kw) -> set[int]:
        return set(cat.chunk_ids_matching(FileFilter(**kw)).tolist())

    def want(*ps) -> set[int]:
        return {ids[p] for p in ps}

    sub_a = want("/lib/a/deep/y.jpg", "/lib/a/ü.jpg")  # /lib/a/x.jpg is pending now
    assert match(folders=("/lib/a",)) == match(folders=("/lib/a/",)) == sub_a
    assert match(folders=("/lib/my_trip",)) == want("/lib/my_trip/1.jpg")
    assert match(folders=("/lib/100%",)) == want("/lib/100%/3.jpg")
    assert match(kinds=("text",)) == want("/lib/x.txt")
    assert match(after=T0 + 10 * DAY) == want("/lib/myXtrip/2.jpg", "/lib/100%/3.jpg")
    assert match(before=T0 + 2 * DAY, kinds=("image",)) == want("/lib/a/deep/y.jpg")
    among = np.array([ids["/lib/a/deep/y.jpg"], ids["/lib/a0/z.jpg"], 10**9])
    assert cat.chunk_ids_matching(FileFilter(folders=("/lib/a",)), among).tolist() == [
        ids["/lib/a/deep/y.jpg"]]
    assert cat.chunk_ids_matching(FileFilter(), np.array([], np.int64)).size == 0
    assert cat.count_files(FileFilter()) == len(paths) - 1
    assert cat.count_files(FileFilter(folders=("/lib/a",))) == 2
    hits = cat.chunk_hits([ids["/lib/a/deep/y.jpg"], ids["/lib/x.txt"], 10**9])
    assert set(hits) == {ids["/lib/a/deep/y.jpg"], ids["/lib/x.txt"]}
    h = hits[ids["/lib/x.txt"]]
    assert (h.path, h.kind, h.root_id, h.path_raw, h.text) == (
        "/lib/x.txt", "text", root, b"/lib/x.txt", "chunk 0")
    assert cat.chunk_hits([ids["/lib/a/x.jpg"]]) == {}  # pending: not a search result
    files = cat.files_by_ids([pending, 10**9])
    assert list(files) == [pending] and files[pending].state == "pending"


# -- keyword search -------------------------------------------------------------------------
@pytest.fixture
def notes(cat):
    root = cat.add_root("/lib")
    f = {}
    f["name"] = add(cat, root, "/lib/docs/red_harbour_boats.txt", "text",
                    body="nothing about it here")[0]
    f["body"] = add(cat, root, "/lib/docs/log.txt", "text",
                    body="we saw red harbour boats at dawn")[0]
    f["near"] = add(cat, root, "/lib/docs/trip.txt", "text",
                    body="the harbour had many red fishing boats")[0]
    f["far"] = add(cat, root, "/lib/docs/far.txt", "text",
                   body="red paint. " + "filler words go on and on " * 6 + "harbour and boats")[0]
    f["some"] = add(cat, root, "/lib/docs/some.txt", "text", body="a harbour at night")[0]
    f["folder"] = add(cat, root, "/lib/harbour/pic.jpg", "image")[0]
    f["none"] = add(cat, root, "/lib/docs/other.txt", "text", body="mountains and snow")[0]
    return f


def test_keyword_search_any_and_all_words(cat, notes):
    anyw = {r[0] for r in cat.keyword_search('"harbour" OR "boats"', FileFilter(), 20)}
    assert anyw == {notes[k] for k in ("name", "body", "near", "far", "some", "folder")}
    allw = {r[0] for r in cat.keyword_search('"red" AND "harbour" AND "boats"', FileFilter(), 20)}
    assert allw == {notes[k] for k in ("name", "body", "near", "far")}
    assert cat.keyword_search('"zebra"', FileFilter(), 5) == []


def test_keyword_search_ranks_the_name_above_the_text_and_makes_snippets(cat, notes):
    rows = cat.keyword_search('"harbour"', FileFilter(), 20)
    assert all(isinstance(r[1], float) for r in rows)
    scores = [r[1] for r in rows]
    assert scores == sorted(scores, reverse=True)  # higher is better
    ranked = [r[0] for r in rows]
    assert ranked.index(notes["name"]) < ranked.index(notes["some"])
    assert ranked.index(notes["folder"]) < ranked.index(notes["some"])
    snippet = dict((r[0], r[2]) for r in rows)[notes["body"]]
    assert "harbour" in snippet


def test_keyword_search_honours_the_filter_and_the_limit(cat, notes):
    rows = cat.keyword_search('"harbour"', FileFilter(kinds=("image",)), 20)
    assert [r[0] for r in rows] == [notes["folder"]]
    rows = cat.keyword_search('"harbour"', FileFilter(folders=("/lib/docs",)), 2)
    assert len(rows) == 2 and notes["folder"] not in {r[0] for r in rows}


def test_keyword_evidence_levels(cat, notes):
    ids = list(notes.values())
    levels = cat.keyword_evidence(["red", "harbour", "boats"], ids, near=4)
    # a file holding none of the words may be left out or graded 0 (the OCR side adds its own)
    assert levels.pop(notes["none"], 0) == 0
    assert levels == {notes["name"]: 4, notes["body"]: 3, notes["near"]: 2, notes["far"]: 1,
                      notes["some"]: 0, notes["folder"]: 0}
    one = cat.keyword_evidence(["harbour"], ids, near=1)
    assert one[notes["folder"]] == 3 and one[notes["some"]] == 3 and one.get(notes["none"], 0) == 0
    assert cat.keyword_evidence([], ids, 4) == {} and cat.keyword_evidence(["x"], [], 4) == {}


# -- readers and versions ---------------------------------------------------------------------
def test_a_reader_sees_commits_and_data_version_moves(open_cat):
    writer = open_cat()
    root = writer.add_root("/lib")
    add(writer, root, "/lib/a.jpg")
    reader = open_cat(readonly=True)
    before = reader.data_version()
    assert reader.counts()["images"] == 1
    add(writer, root, "/lib/b.jpg")
    assert reader.data_version() != before
    assert reader.counts()["images"] == 2
