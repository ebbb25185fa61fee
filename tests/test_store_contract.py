"""One contract for every VectorStore: the embedded hnswlib store and the Milvus store.

Each contract test runs against both (parametrised by `store_kind`). Milvus runs against a real
milvus-lite gRPC server on a loopback port (tests/milvus_server.py), the same protocol pymilvus
speaks to a cluster. Filters are checked against the SQLite catalogue's own answer
(`chunk_ids_matching`), so both stores must mean exactly what the catalogue means.

Then the Milvus path end to end: `magpie index` / `magpie search` with a milvus:// store, and a
server that dies in the middle of an index run (clear message; the next run completes with no
vector lost or duplicated).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEncoder
from helpers import note, solid
from milvus_server import (  # noqa: F401 - fixtures
    CALL_TIMEOUT_S,
    MilvusServer,
    StallingProxy,
    milvus_missing,
    milvus_server,
    own_milvus_server,
)

from indexer.catalogue import Catalogue, FileFilter, NewChunk
from indexer.specs import TINY_SHAPES
from indexer.stores import StoreUnavailable, make_store, vector_meta
from indexer.vectors import HnswStore, StoreMismatch, VectorMeta

ROOT = Path(__file__).resolve().parent.parent
DIM = 32
FP = "0123456789abcdef"
OTHER_FP = "fedcba9876543210"
DAY = 86400.0
T0 = 1_600_000_000.0  # 2020-09-13

# Folders chosen to break naive filters: `_` and `%` are LIKE wildcards, my_trip must not match
# myXtrip nor my_trip2, and quotes/backslashes/newlines must survive expression quoting.
FOLDERS = [
    "/lib/photos/my_trip",
    "/lib/photos/myXtrip",
    "/lib/photos/my_trip2",
    "/lib/photos/100%",
    '/lib/notes/q"uo\'te\\s',
    "/lib/notes/日本",
    "/lib/notes/new\nline",
    '/lib/notes/it\'s "quoted"',
]


@dataclass
class Corpus:
    catalogue: Catalogue
    ids: np.ndarray
    vecs: np.ndarray
    meta: list[VectorMeta]

    def allowed(self, flt: FileFilter, among: np.ndarray | None = None) -> np.ndarray:
        return self.catalogue.chunk_ids_matching(flt, among)

    def stored(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.catalogue.stored_vectors(ids, DIM)

    def exact(self, q: np.ndarray, k: int, pool: np.ndarray | None = None) -> tuple[np.ndarray,
                                                                                    np.ndarray]:
        mask = np.ones(len(self.ids), bool) if pool is None else np.isin(self.ids, pool)
        ids, vecs = self.ids[mask], self.vecs[mask]
        scores = vecs @ (q / np.linalg.norm(q))
        order = np.argsort(-scores)[:k]
        return ids[order], scores[order]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    """A real catalogue: files in tricky folders, images and multi-chunk notes, dates."""
    rng = np.random.default_rng(42)
    cat = Catalogue(tmp_path / "catalogue.sqlite")
    root = cat.add_root("/lib")
    n = 0
    for fi, folder in enumerate(FOLDERS):
        for j in range(40):
            kind = "text" if folder.startswith("/lib/notes") or j % 5 == 0 else "image"
            path = f"{folder}/f{j:03d}.{'txt' if kind == 'text' else 'jpg'}"
            fid = cat.upsert_pending(root, path, kind, 10, 1, f"h{fi}-{j}")
            chunks = [NewChunk(o, f"chunk {o}" if kind == "text" else None,
                               unit(rng.normal(size=DIM)))
                      for o in range(2 if kind == "text" else 1)]
            cat.commit_embedded([(fid, chunks, T0 + (n % 30) * DAY, "body")], [])
            n += 1
    ids = cat.chunk_ids()
    vecs = cat.vectors_for(ids.tolist(), DIM)
    meta = vector_meta(cat, ids)
    yield Corpus(cat, ids, vecs, meta)
    cat.close()


STORE_KINDS = ["hnsw", "milvus"]


@pytest.fixture(params=STORE_KINDS)
def store_kind(request) -> str:
    return request.param


@pytest.fixture
def make(store_kind: str, request, tmp_path: Path, corpus: Corpus):
    """make(fingerprint=FP, folder=..., dim=DIM) -> a store through the real factory."""
    url = None
    if store_kind == "milvus":
        server = request.getfixturevalue("milvus_server")
        url = server.url(f"c{uuid.uuid4().hex[:12]}")
    opened = []

    def factory(fingerprint: str = FP, folder: Path | None = None, dim: int = DIM):
        folder = folder or tmp_path / "store"
        folder.mkdir(parents=True, exist_ok=True)
        s = make_store(url, folder, dim, fingerprint, corpus.allowed, stored_vectors=corpus.stored)
        opened.append(s)
        return s

    factory.url = url
    yield factory
    for s in opened:
        s.close()
    if store_kind == "milvus":  # keep the shared server small
        client = server.client()
        try:
            for name in {getattr(s, "collection", None) for s in opened} - {None}:
                client.drop_collection(name, timeout=CALL_TIMEOUT_S)
        finally:
            client.close()


@pytest.fixture
def full(make, corpus: Corpus):
    s = make()
    s.add(corpus.ids, corpus.vecs, corpus.meta)
    s.flush()
    return s


def check_knn(store, corpus: Corpus, q: np.ndarray, k: int, flt: FileFilter | None = None):
    ids, scores = store.knn(q, k, flt)
    pool = None if flt is None else corpus.allowed(flt)
    want_ids, _ = corpus.exact(q, k, pool)
    assert len(ids) == len(scores) == len(want_ids), "the result list was cut short"
    assert len(set(ids.tolist())) == len(ids), "duplicate ids in a result"
    if pool is not None:
        assert set(ids.tolist()) <= set(pool.tolist()), "a result outside the filter"
    assert np.all(np.diff(scores) <= 1e-6), "scores must be in descending order"
    exact_scores = corpus.vecs[np.searchsorted(corpus.ids, ids)] @ unit(q)
    np.testing.assert_allclose(scores, exact_scores, atol=2e-4)
    if len(want_ids) == 0:
        return ids, scores
    recall = len(set(ids.tolist()) & set(want_ids.tolist())) / len(want_ids)
    assert recall >= 0.9, f"recall@{k} {recall:.2f}"
    return ids, scores


# -- the contract -----------------------------------------------------------------------------
def test_empty_store_answers_nothing(make):
    s = make()
    assert s.count() == 0
    assert len(s.ids()) == 0
    ids, scores = s.knn(unit(np.ones(DIM)), 10)
    assert len(ids) == 0 and len(scores) == 0
    assert s.dim == DIM and s.fingerprint == FP


def test_knn_matches_exact_cosine(full, corpus: Corpus):
    rng = np.random.default_rng(1)
    for i in range(8):
        q = corpus.vecs[i * 37] + 0.05 * rng.normal(size=DIM).astype(np.float32)
        ids, scores = check_knn(full, corpus, q, 10)
        assert ids[0] == corpus.ids[i * 37]
    # a stored vector finds itself with cosine 1
    ids, scores = full.knn(corpus.vecs[5], 1)
    assert ids[0] == corpus.ids[5] and scores[0] == pytest.approx(1.0, abs=1e-4)


def test_k_larger_than_the_store(full, corpus: Corpus):
    ids, _ = full.knn(corpus.vecs[0], len(corpus.ids) + 50)
    assert sorted(ids.tolist()) == sorted(corpus.ids.tolist())


def test_count_and_ids(full, corpus: Corpus):
    assert full.count() == len(corpus.ids)
    got = full.ids()
    assert got.dtype == np.int64
    assert sorted(got.tolist()) == sorted(corpus.ids.tolist())


def test_delete(full, corpus: Corpus):
    gone = corpus.ids[::3]
    full.delete(gone)
    full.delete(gone[:5])  # deleting twice is harmless
    full.delete([10**12])  # so is an id never added
    assert full.count() == len(corpus.ids) - len(gone)
    assert not set(full.ids().tolist()) & set(gone.tolist())
    for cid in gone[:10]:
        q = corpus.vecs[np.searchsorted(corpus.ids, cid)]
        ids, _ = full.knn(q, 20)
        assert cid not in ids.tolist()


def test_re_adding_the_same_ids_replaces_never_duplicates(full, corpus: Corpus):
    part = slice(0, 50)
    # a retried batch (same vectors) and then an update (new vectors) for the same ids
    full.add(corpus.ids[part], corpus.vecs[part], corpus.meta[part])
    new = unit(np.random.default_rng(9).normal(size=(50, DIM)))
    full.add(corpus.ids[part], new, corpus.meta[part])
    full.flush()
    assert full.count() == len(corpus.ids)
    got = full.ids().tolist()
    assert len(got) == len(set(got)) == len(corpus.ids)
    ids, scores = full.knn(new[7], 3)
    assert ids[0] == corpus.ids[7] and scores[0] == pytest.approx(1.0, abs=1e-4)
    assert ids.tolist().count(corpus.ids[7]) == 1


FILTERS = {
    "images": FileFilter(kinds=("image",)),
    "notes": FileFilter(kinds=("text",)),
    "folder with _": FileFilter(folders=("/lib/photos/my_trip",)),
    "folder with trailing /": FileFilter(folders=("/lib/photos/my_trip/",)),
    "folder with %": FileFilter(folders=("/lib/photos/100%",)),
    "folder with quotes": FileFilter(folders=('/lib/notes/it\'s "quoted"',)),
    "folder with quotes and \\": FileFilter(folders=('/lib/notes/q"uo\'te\\s',)),
    "unicode folder": FileFilter(folders=("/lib/notes/日本",)),
    "folder with newline": FileFilter(folders=("/lib/notes/new\nline",)),
    "parent folder": FileFilter(folders=("/lib/photos",)),
    "two folders": FileFilter(folders=("/lib/photos/myXtrip", "/lib/notes/日本")),
    "no such folder": FileFilter(folders=("/elsewhere",)),
    "after": FileFilter(after=T0 + 20 * DAY),
    "before": FileFilter(before=T0 + 3 * DAY),
    "date range": FileFilter(after=T0 + 5 * DAY, before=T0 + 9 * DAY),
    "everything combined": FileFilter(kinds=("image",), folders=("/lib/photos",),
                                      after=T0 + 2 * DAY, before=T0 + 25 * DAY),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_filters_mean_what_the_catalogue_means(full, corpus: Corpus, name: str):
    flt = FILTERS[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for _ in range(3):
        check_knn(full, corpus, rng.normal(size=DIM).astype(np.float32), 15, flt)


def test_selective_filter_is_not_cut_short(full, corpus: Corpus):
    """The nearest vectors are all outside the filter: a store that filters after the search
    would return too few. Both must return k matching results."""
    flt = FileFilter(folders=("/lib/photos/myXtrip",), kinds=("image",))
    inside = set(corpus.allowed(flt).tolist())
    assert 20 < len(inside) < 60
    outside = [i for i, c in enumerate(corpus.ids) if c not in inside]
    q = corpus.vecs[outside[0]]
    ids, _ = check_knn(full, corpus, q, 20, flt)
    assert len(ids) == 20 and set(ids.tolist()) <= inside


def test_hnsw_lists_allowed_ids_only_for_narrow_filters(tmp_path: Path):
    """A broad filter is applied to an oversampled unfiltered result (listing 90% of a big
    library costs more than the search); only a narrower one
    lists the ids it allows. Both ways stay exact."""
    dim, n, k = 32, 20_000, 40
    rng = np.random.default_rng(11)
    ids = np.arange(1, n + 1, dtype=np.int64)
    vecs = unit(rng.normal(size=(n, dim)))
    shares = {"broad": 2, "medium": 10, "narrow": 200}  # every 2nd, 10th, 200th id passes
    calls: list[str] = []

    def allowed(flt, among=None):
        calls.append("all" if among is None else "among")
        step = shares[flt.folders[0]]
        pool = ids if among is None else np.asarray(among, dtype=np.int64)
        return pool[pool % step == 0]

    (tmp_path / "h").mkdir()
    s = HnswStore(tmp_path / "h", dim, FP, allowed_ids=allowed)
    s.add(ids, vecs, [VectorMeta(file_id=int(i), kind="image", path="/x", taken_at=0.0) for i in ids])
    expect = {"broad": ["among"], "medium": ["among", "all"], "narrow": ["among", "all"]}
    for name, step in shares.items():
        for _ in range(3):
            q = unit(rng.normal(size=dim))
            calls.clear()
            got, scores = s.knn(q, k, FileFilter(folders=(name,)))
            assert calls == expect[name], name
            pool = ids[ids % step == 0]
            exact = pool[np.argsort(-(vecs[pool - 1] @ q))[:k]]
            assert len(got) == k and set(got.tolist()) <= set(pool.tolist())
            assert len(set(got.tolist()) & set(exact.tolist())) >= 0.9 * k, name
    s.close()


def test_flush_and_reopen_persists(make, corpus: Corpus, tmp_path: Path):
    s = make()
    s.add(corpus.ids, corpus.vecs, corpus.meta)
    s.delete(corpus.ids[:10])
    s.flush()
    s.close()
    again = make()
    assert again.count() == len(corpus.ids) - 10
    assert sorted(again.ids().tolist()) == sorted(corpus.ids[10:].tolist())
    check_knn(again, corpus, corpus.vecs[20], 10)
    check_knn(again, corpus, corpus.vecs[20], 10, FILTERS["folder with quotes"])


def test_another_models_vectors_are_refused(store_kind, make, corpus: Corpus, milvus_or_none):
    if store_kind == "hnsw":
        s = make()
        s.add(corpus.ids[:10], corpus.vecs[:10], corpus.meta[:10])
        s.close()
        with pytest.raises(StoreMismatch) as err:
            make(fingerprint=OTHER_FP)
    else:  # same collection name, another model: what the pinning rule must refuse
        from indexer.milvus_store import MilvusStore

        name = f"pin_{uuid.uuid4().hex[:8]}"
        s = MilvusStore(milvus_or_none.uri, name, dim=DIM, fingerprint=FP)
        s.add(corpus.ids[:10], corpus.vecs[:10], corpus.meta[:10])
        s.close()
        with pytest.raises(StoreMismatch) as err:
            MilvusStore(milvus_or_none.uri, name, dim=DIM, fingerprint=OTHER_FP)
        with pytest.raises(StoreMismatch):
            MilvusStore(milvus_or_none.uri, name, dim=DIM * 2, fingerprint=FP)
        MilvusStore(milvus_or_none.uri, name, dim=DIM, fingerprint=FP).drop()
    assert FP in str(err.value) and OTHER_FP in str(err.value)


@pytest.fixture
def milvus_or_none(store_kind, request):
    return request.getfixturevalue("milvus_server") if store_kind == "milvus" else None


# -- Milvus specifics -------------------------------------------------------------------------
pytest_milvus = pytest.mark.skipif(milvus_missing() is not None and
                                   os.environ.get("MAGPIE_REQUIRE_MILVUS") != "1",
                                   reason=milvus_missing() or "")


@pytest_milvus
def test_filter_expressions():
    from indexer.milvus_store import filter_expr, folder_key, folder_keys, quote

    assert filter_expr(None) == "" and filter_expr(FileFilter()) == ""
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    e = filter_expr(FileFilter(kinds=("image",), folders=("/a/b",), after=1.5, before=2.0))
    assert e == ('(kind in ["image"]) and (path like "/a/b/%") and (taken_at >= 1.5) and '
                 "(taken_at < 2.0)")
    # LIKE only where it is exact: _ % and \ go through the hashed folder prefixes
    e = filter_expr(FileFilter(folders=('/x/"q"', "/a/my_trip/", "/b/100%", "/c/d\\e")))
    keys = ", ".join(str(folder_key(f)) for f in ("/a/my_trip", "/b/100%", "/c/d\\e"))
    assert e == f'(path like "/x/\\"q\\"/%" or array_contains_any(folders, [{keys}]))'

    assert folder_keys("/a/b/c.jpg") == [folder_key("/"), folder_key("/a"), folder_key("/a/b/")]
    assert folder_key("/a/b") != folder_key("/a/b2")
    with pytest.raises(ValueError):
        filter_expr(FileFilter(after=float("nan")))


@pytest_milvus
def test_quoted_strings_reach_the_server_intact(milvus_server, corpus: Corpus):  # noqa: F811
    """`quote` is the only way text enters an expression: every tricky path round-trips."""
    from indexer.milvus_store import MilvusStore, quote

    s = MilvusStore(milvus_server.uri, f"q_{uuid.uuid4().hex[:8]}", dim=DIM, fingerprint=FP)
    try:
        s.add(corpus.ids, corpus.vecs, corpus.meta)
        for m in corpus.meta[::7]:
            rows = s._client.query(s.collection, filter=f"path == {quote(m.path)}",
                                   output_fields=["path", "file_id"])
            assert rows and {r["path"] for r in rows} == {m.path}
    finally:
        s.drop()
        s.close()


@pytest_milvus
def test_url_parsing_and_collection_per_model(milvus_server, tmp_path: Path, corpus):  # noqa: F811
    from indexer.milvus_store import MilvusStore, collection_name, parse_url

    assert parse_url("milvus://h:1234/lib?consistency=bounded") == (
        "h", 1234, "lib", {"consistency": "Bounded"})
    assert parse_url("milvus://h/lib")[1] == 19530
    assert parse_url("milvus://h:1/lib?tls=1&timeout=5")[3] == {"tls": "1", "timeout": "5"}
    for bad in ["milvus://h:1/", "milvus://h:1/bad-name", "milvus://h:1/x?colour=red",
                "milvus://h:1/x?consistency=maybe", "http://h:1/x", "milvus://h:1/x?tls=yes",
                "milvus://h:1/x?timeout=-1", "milvus://h:x/c"]:
        with pytest.raises(ValueError):
            parse_url(bad)
    base = f"m{uuid.uuid4().hex[:8]}"
    url = milvus_server.url(base)
    a = MilvusStore.from_url(url, dim=DIM, fingerprint=FP, folder=tmp_path / "lib" / FP)
    b = MilvusStore.from_url(url, dim=DIM, fingerprint=OTHER_FP,
                             folder=tmp_path / "lib" / OTHER_FP)
    try:  # a migration to another model fills a second collection beside the first
        assert {a.collection, b.collection} == {collection_name(base, FP),
                                                collection_name(base, OTHER_FP)}
        a.add(corpus.ids[:5], corpus.vecs[:5], corpus.meta[:5])
        assert a.count() == 5 and b.count() == 0
        # another library must not take over this library's collection (reconcile would
        # delete every vector it does not know)
        with pytest.raises(StoreMismatch, match="another Magpie library"):
            MilvusStore.from_url(url, dim=DIM, fingerprint=FP, folder=tmp_path / "other" / FP)
        # the same library opens it again (its id is kept beside its catalogue)
        MilvusStore.from_url(url, dim=DIM, fingerprint=FP, folder=tmp_path / "lib" / FP).close()
    finally:
        a.drop(), b.drop(), a.close(), b.close()


@pytest_milvus
def test_add_without_attributes_is_refused(milvus_server, corpus):  # noqa: F811
    from indexer.milvus_store import MilvusStore

    s = MilvusStore(milvus_server.uri, f"m_{uuid.uuid4().hex[:8]}", dim=DIM, fingerprint=FP)
    try:
        with pytest.raises(TypeError, match="VectorMeta"):
            s.add(corpus.ids[:3], corpus.vecs[:3], [])
    finally:
        s.drop()
        s.close()


# A stock gRPC server (milvus-lite's) allows a keepalive ping once per 5 minutes while a call
# is open and none on an idle connection; the third early ping gets GOAWAY "too_many_pings".
STOCK_GRPC_MIN_PING_MS = 300_000


@pytest_milvus
def test_the_client_pings_no_more_than_a_stock_grpc_server_allows(milvus_server):  # noqa: F811
    """pymilvus's defaults (a ping every 10 s, idle included) made milvus-lite drop the
    connection under load, failing a call in flight: the store's client must use its own
    connection with keepalive settings the server accepts, even when another client with
    pymilvus's defaults already talks to the same address."""
    from pymilvus import MilvusClient

    from indexer.milvus_store import MilvusStore

    default_client = MilvusClient(uri=milvus_server.uri)  # shared connection, default pings
    store = MilvusStore(milvus_server.uri, f"ka{uuid.uuid4().hex[:8]}", dim=DIM, fingerprint=FP)
    try:
        handler = store._client._handler
        assert handler is not default_client._handler, "the store inherited a shared channel"
        opts = handler._grpc_options
        assert opts["grpc.keepalive_time_ms"] >= STOCK_GRPC_MIN_PING_MS
        assert not opts["grpc.keepalive_permit_without_calls"]
        assert store.count() == 0
    finally:
        store.drop()
        store.close()
        default_client.close()


@pytest_milvus
@pytest.mark.timeout(240)  # a hang guard only: each call below must end at its own deadline
def test_a_server_that_stops_answering_costs_a_deadline_never_a_hang(milvus_server,  # noqa: F811
                                                                    corpus):
    """Every call the store makes carries its deadline, pymilvus's own inner calls included:
    when the server stops answering (wedged, or a connection that went half-open), each
    method, and opening the store, ends in one StoreUnavailable within about its timeout. The
    ids listing used pymilvus's query_iterator, whose first call has no deadline: it waited
    for ever (a reconcile in `Library.open()` would hang the run)."""
    from indexer.milvus_store import MilvusStore

    proxy = StallingProxy(milvus_server.address).start()
    name = f"st_{uuid.uuid4().hex[:8]}"
    try:
        s = MilvusStore(proxy.uri, name, dim=DIM, fingerprint=FP, timeout=2)
        s.add(corpus.ids[:40], corpus.vecs[:40], corpus.meta[:40])
        s.flush()
        assert sorted(s.ids().tolist()) == sorted(corpus.ids[:40].tolist())  # passes through
        proxy.stall()
        calls = {
            "ids": s.ids,
            "count": s.count,
            "knn": lambda: s.knn(corpus.vecs[0], 5),
            "add": lambda: s.add(corpus.ids[40:42], corpus.vecs[40:42], corpus.meta[40:42]),
            "delete": lambda: s.delete(corpus.ids[:2]),
            "flush": lambda: (setattr(s, "dirty", True), s.flush()),  # as after a write
            "open": lambda: MilvusStore(proxy.uri, name, dim=DIM, fingerprint=FP, timeout=2),
        }
        for what, call in calls.items():
            with pytest.raises(StoreUnavailable, match="cannot reach Milvus"):
                call()
                pytest.fail(f"{what} did not fail")
            assert proxy.held, f"{what} never reached the stalled server"
            proxy.held.clear()
        s.close()  # flushing fails quietly: what the server acknowledged is in its log
    finally:
        proxy.stop()
        client = milvus_server.client()
        try:
            client.drop_collection(name, timeout=CALL_TIMEOUT_S)
        finally:
            client.close()


@pytest_milvus
def test_ids_are_all_listed_however_sparse(milvus_server, monkeypatch):  # noqa: F811
    """The id listing walks windows of the primary key: dense runs, windows cut off by the
    query limit (asked again narrower), huge gaps and the ends of INT64 are all listed once.
    Limits scaled down (8 rows a query) so a few dozen ids exercise every branch."""
    from indexer import milvus_store
    from indexer.milvus_store import INT64_MAX, MilvusStore

    monkeypatch.setattr(milvus_store, "MAX_TOPK", 8)
    monkeypatch.setattr(milvus_store, "ID_PAGE", 4)
    ids = np.array([*range(1, 40), 1000, 1001, 10**6, 2**40, 2**40 + 1, 2**62, INT64_MAX,
                    -5, -INT64_MAX - 1], dtype=np.int64)
    rng = np.random.default_rng(7)
    meta = [VectorMeta(int(i) % 97, "image", f"/p/{i}.jpg", 0.0) for i in ids]
    s = MilvusStore(milvus_server.uri, f"sp_{uuid.uuid4().hex[:8]}", dim=DIM, fingerprint=FP)
    try:
        s.add(ids, unit(rng.normal(size=(len(ids), DIM))), meta)
        s.flush()
        got = s.ids()
        assert got.tolist() == sorted(ids.tolist())
        s.delete(ids[ids < 1])  # no ids below 1: the walk starts at 1
        assert s.ids().tolist() == sorted(ids[ids >= 1].tolist())
    finally:
        s.drop()
        s.close()


@pytest_milvus
def test_the_wait_for_a_new_index_has_an_end():
    """pymilvus ends its wait for a new collection's index only when the timeout is an int;
    the store's are floats (`?timeout=2.5`), so it must hand over whole seconds."""
    from indexer.milvus_store import MilvusStore

    seen = {}

    class Recorder:
        def prepare_index_params(self):
            from pymilvus import MilvusClient

            return MilvusClient.prepare_index_params()

        def create_collection(self, *args, **kwargs):
            seen.update(kwargs)

        def create_index(self, *args, **kwargs):
            pass

    s = MilvusStore.__new__(MilvusStore)
    s.collection, s.dim, s.fingerprint, s.library_id = "c", DIM, FP, None
    s.timeout, s.consistency, s.address, s._client = 2.5, "Strong", "here", Recorder()
    s._create()
    assert seen["timeout"] == 3 and isinstance(seen["timeout"], int)


@pytest_milvus
def test_unreachable_server_is_one_clear_line(tmp_path: Path):
    from app.cli import user_message
    from indexer.milvus_store import MilvusStore

    port = MilvusServer(tmp_path).port  # a free port nobody listens on
    with pytest.raises(StoreUnavailable) as err:
        MilvusStore.from_url(f"milvus://127.0.0.1:{port}/lib", dim=DIM, fingerprint=FP,
                             folder=tmp_path / "lib")
    msg = user_message(err.value)
    assert msg is not None and "\n" not in msg
    assert f"cannot reach Milvus at 127.0.0.1:{port}" in msg and "magpie index" in msg


# -- end to end -------------------------------------------------------------------------------
def _fake_model(monkeypatch):
    """The CLI with a FakeEncoder of the pinned model's width (the tiny model may not exist)."""
    import app.wiring

    monkeypatch.setattr(app.wiring, "load_model",
                        lambda spec, *a, **k: FakeEncoder(dim=spec.embed_dim))


def _picture_folder(base: Path) -> Path:
    folder = base / "Pictures"
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
    for i in range(36):
        name = list(colours)[i % 3]
        shade = tuple(c + i for c in colours[name])  # distinct files: no identical copies to fold
        solid(folder / ("holiday_2021" if i % 2 else "work") / f"{name}_{i:02d}.png", shade)
    note(folder / "notes" / "shopping.txt", "milk, bread and a hammer from the hardware store")
    return folder


def _hits(stdout: str) -> list[dict]:
    """`magpie search --json`: one JSON object per result line."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _store_ids_vs_sqlite(lib: Path, url: str):
    """(SQLite chunk ids, Milvus ids, Milvus count), read without opening the library (which
    would reconcile, hiding exactly what these tests look for)."""
    from indexer.library import LibraryInfo
    from indexer.milvus_store import MilvusStore
    from indexer.specs import get_spec

    spec = get_spec("tiny-shapes")
    assert LibraryInfo.read(lib).store == url
    cat = Catalogue(lib / "models" / spec.fingerprint() / "catalogue.sqlite", readonly=True)
    try:
        sql = cat.chunk_ids()
    finally:
        cat.close()
    store = MilvusStore.from_url(url, dim=spec.embed_dim, fingerprint=spec.fingerprint(),
                                 readonly=True)
    try:
        got = store.ids()
        return np.sort(sql), np.sort(got), store.count()
    finally:
        store.close()


@pytest_milvus
def test_cli_index_and_search_on_milvus(milvus_server, tmp_path, monkeypatch,  # noqa: F811
                                       capsys):
    from app.cli import main

    _fake_model(monkeypatch)
    folder = _picture_folder(tmp_path)
    lib = tmp_path / "lib"
    url = milvus_server.url(f"cli_{uuid.uuid4().hex[:8]}")
    assert main(["index", str(folder), "--library", str(lib), "--model", "tiny-shapes",
                 "--vector-store", url, "--quiet", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "37 added" in out
    sql, got, count = _store_ids_vs_sqlite(lib, url)
    assert count == len(sql) == 37 and np.array_equal(sql, got)
    # a later run needs no --vector-store: the library remembers where its vectors live
    assert main(["search", "--image", str(next(folder.glob("work/red_*.png"))),
                 "--library", str(lib), "--mode", "vector", "-k", "5", "--json", "--all"]) == 0
    hits = _hits(capsys.readouterr().out)
    assert len(hits) == 5 and all("/red_" in h["path"] for h in hits)
    # folder filter pushed down to Milvus: only the holiday_2021 folder
    assert main(["search", "--image", str(next(folder.glob("work/blue_*.png"))),
                 "--in", str(folder / "holiday_2021"), "--library", str(lib), "--mode",
                 "vector", "-k", "8", "--json", "--all"]) == 0
    hits = _hits(capsys.readouterr().out)
    assert len(hits) == 8
    assert all(h["path"].startswith(str(folder / "holiday_2021") + "/") for h in hits)
    assert all("/blue_" in h["path"] for h in hits[:6])


@pytest_milvus
def test_server_dies_mid_index_then_the_next_run_completes(
        own_milvus_server, tmp_path, monkeypatch, capsys):  # noqa: F811
    """Kill -9 the server after the first batch reached it: the run ends with one clear line;
    after a restart the same command completes, and Milvus holds exactly SQLite's chunks."""
    from app.cli import main
    from indexer.milvus_store import MilvusStore

    _fake_model(monkeypatch)
    server = own_milvus_server
    folder = _picture_folder(tmp_path)
    lib = tmp_path / "lib"
    url = server.url("crash")
    real_add = MilvusStore.add
    calls = {"n": 0}

    def add_then_die(self, ids, vectors, meta):
        calls["n"] += 1
        if calls["n"] == 3:  # two batches are in Milvus, the third finds it dead
            server.stop(kill=True)
        return real_add(self, ids, vectors, meta)

    monkeypatch.setattr(MilvusStore, "add", add_then_die)
    argv = ["index", str(folder), "--library", str(lib), "--model", "tiny-shapes",
            "--vector-store", url, "--quiet", "--workers", "1", "--batch-size", "8"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"magpie: cannot reach Milvus at {server.address}")
    assert "your progress is saved, run `magpie index` again" in err[0]

    # while it is down, search says the same kind of thing instead of a traceback
    assert main(["search", "red", "--library", str(lib)]) == 2
    assert "cannot reach Milvus" in capsys.readouterr().err

    server.start()  # same data directory, same port
    monkeypatch.setattr(MilvusStore, "add", real_add)
    sql, got, _ = _store_ids_vs_sqlite(lib, url)
    assert 0 < len(got) < len(sql) and set(got.tolist()) <= set(sql.tolist()), \
        "SQLite should hold committed batches the dead server never received"
    assert main(argv) == 0
    capsys.readouterr()
    sql, got, count = _store_ids_vs_sqlite(lib, url)
    assert len(sql) == 37
    assert np.array_equal(sql, got), "Milvus and SQLite disagree: vectors lost or left over"
    assert count == len(got) == len(set(got.tolist())), "duplicated vectors"


@pytest_milvus
@pytest.mark.timeout(4 * 600 + 120)  # four `magpie` runs, each with its own 600 s bound
def test_cli_with_the_tiny_model_on_milvus(milvus_server, tmp_path):  # noqa: F811
    """The real thing, in subprocesses: the tiny model through a Milvus library ranks exactly
    as through the default hnswlib library, and finds red things for "a red circle"."""
    from magpie_demo.shapes import make_demo_folder

    folder = tmp_path / "Pictures"
    items = make_demo_folder(folder, n_images=32, seed=5)
    labels = {str(i.path): (i.color, i.shape) for i in items}
    env = {**os.environ, "MAGPIE_DATA_DIR": str(tmp_path / "data")}

    def magpie(*args):
        """One `magpie` run, output read to its end (as a shell's $(…) reads it); one that
        outlasts 600 s fails with every thread's stack (SIGABRT makes faulthandler print
        them), or says that it exited but left a process holding its output open."""
        proc = subprocess.Popen([sys.executable, "-m", "app.main", *args], cwd=ROOT,
                                env={**env, "PYTHONFAULTHANDLER": "1"}, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            if proc.poll() is None:
                proc.send_signal(signal.SIGABRT)
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:  # exited, but something it left holds its pipes
                proc.kill()
                err = "(no end of output: a process it started still holds its stdout/stderr)"
            pytest.fail(f"`magpie {args[0]}` did not finish in 600 s (exit status "
                        f"{proc.poll()}):\n{err[-12000:]}")
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    found = {}
    for name, store in [("hnsw", []),
                        ("milvus", ["--vector-store",
                                    milvus_server.url(f"tiny_{uuid.uuid4().hex[:8]}")])]:
        lib = tmp_path / f"lib-{name}"
        out = magpie("index", str(folder), "--library", str(lib), "--model", "tiny-shapes",
                     "--quiet", *store)
        assert out.returncode == 0, out.stderr
        assert f"{len(items)} added" in out.stdout
        out = magpie("search", "a red circle", "--library", str(lib), "--kind", "image",
                     "--mode", "vector", "-k", "5", "--json", "--all")
        assert out.returncode == 0, out.stderr
        found[name] = [(h["path"], round(h["score"], 3)) for h in _hits(out.stdout)]
    assert found["milvus"] == found["hnsw"]
    assert labels[found["milvus"][0][0]][0] == "red"


# -- the indexer keeps the store's attributes current -----------------------------------------
@pytest.mark.parametrize("kind", ["hnsw", "milvus"])
def test_a_moved_file_is_found_under_its_new_folder(kind, request, tmp_path):
    from dataclasses import replace

    from indexer.indexing import Indexer
    from indexer.library import Library
    from indexer.search import Searcher

    enc = FakeEncoder()
    spec = replace(TINY_SHAPES, embed_dim=enc.dim)
    url = None
    if kind == "milvus":  # the fixture skips without Milvus, fails under MAGPIE_REQUIRE_MILVUS
        url = request.getfixturevalue("milvus_server").url(f"mv_{uuid.uuid4().hex[:8]}")
    photos = tmp_path / "photos"
    solid(photos / "red.png", (250, 10, 10))
    solid(photos / "sub" / "blue.png", (10, 10, 250))
    with Library.open(tmp_path / "lib", spec, store=url) as lib:
        Indexer(lib, enc, workers=0, batch_size=2).run([photos])
        (photos / "archive").mkdir()
        os.rename(photos / "sub" / "blue.png", photos / "archive" / "blue.png")
        assert Indexer(lib, enc, workers=0, batch_size=2).run([photos]).moved == 1
        flt = FileFilter(folders=(str(photos / "archive"),))
        res = Searcher(lib, enc).search(None, vector=enc.encode_images(
            np.full((1, 8, 8, 3), (10, 10, 250), np.uint8))[0], k=5, flt=flt, mode="vector")
    assert [Path(r.path).name for r in res] == ["blue.png"]


def test_search_breadth_grows_with_the_library():
    from indexer.vectors import HNSW_EF_MAX, HNSW_EF_SEARCH, ef_for

    assert ef_for(500) == ef_for(100_000) == HNSW_EF_SEARCH
    assert HNSW_EF_SEARCH < ef_for(300_000) < ef_for(600_000) <= HNSW_EF_MAX
    assert ef_for(10_000_000) == HNSW_EF_MAX
    assert ef_for(500, k=800) == 800  # hnswlib needs ef >= k


def test_matvec_is_the_matrix_vector_product():
    from indexer.vectors import matvec

    rng = np.random.default_rng(5)
    m, v = rng.normal(size=(300, 64)).astype(np.float32), rng.normal(size=64).astype(np.float32)
    np.testing.assert_allclose(matvec(m, v), m @ v, rtol=1e-5, atol=1e-5)
    assert matvec(m[:0], v).shape == (0,)
