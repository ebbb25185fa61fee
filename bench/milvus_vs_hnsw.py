"""The same vectors and queries in the embedded hnswlib store and in the Milvus store.

    python bench/milvus_vs_hnsw.py                  # 20k x 512-d, 300 queries (~2 min on 2 cores)
    python bench/milvus_vs_hnsw.py --n 100000       # bigger
    python bench/milvus_vs_hnsw.py --smoke          # CI: 2k items, seconds
    python bench/milvus_vs_hnsw.py --url milvus://HOST:PORT/bench   # a real server / cluster
    python bench/milvus_vs_hnsw.py --write          # also put the table in bench/RESULTS.md

Both stores are driven through the `VectorStore` protocol the indexer and search use
(`HnswStore` and `MilvusStore`, same HNSW parameters: M=16, efConstruction=200, ef=96, cosine).
Without --url a milvus-lite server is started on a free loopback port and pymilvus talks gRPC to
it exactly as it would to a cluster, so its latency includes a network round trip, protobuf
encoding and a Python server; hnswlib's is an in-process call.

Vectors are CLIP-like synthetic unit vectors (bench/query_latency.py `SyntheticClip`: clustered,
anisotropic, text queries in another cone), so recall is not flattered by isotropic noise.
Recall@10 is measured against exact numpy search on the same vectors; latency is per single
query (k=10), p50 and p99 over all queries after a warm-up. The filtered rows restrict to one
folder holding ~5% of the vectors (pushed down as an expression in Milvus; an allowed-id set
in hnswlib, as the catalogue would give it).
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))
from _common import Timer, median, percentile, print_machine, table  # noqa: E402
from query_latency import SyntheticClip  # noqa: E402

from indexer.catalogue import FileFilter  # noqa: E402
from indexer.milvus_store import FILTERED_EF  # noqa: E402
from indexer.vectors import HNSW_EF_SEARCH, HNSW_M, HnswStore, VectorMeta  # noqa: E402

DIM = 512
K = 10
FOLDERS = 20  # vectors spread over this many folders; the filter picks one (~5%)
SECTION = "## Milvus store vs hnswlib store (bench/milvus_vs_hnsw.py)"
FINGERPRINT = "bench0000000000a"


def data(n: int, n_queries: int, seed: int = 0):
    synth = SyntheticClip(n_clusters=max(64, n // 400), seed=seed)
    vecs = synth.images(n, seed=seed + 1)
    queries = synth.queries(n_queries, seed=seed + 2)
    ids = np.arange(1, n + 1, dtype=np.int64)
    folder_of = (np.arange(n) * 7919) % FOLDERS
    meta = [VectorMeta(int(i), "image", f"/photos/f{folder_of[j]:02d}/IMG_{i:07d}.jpg",
                       1.1e9 + j) for j, i in enumerate(ids)]
    return ids, vecs, queries, folder_of, meta


def exact(vecs: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> list[set[int]]:
    out = []
    for q in queries:
        s = vecs @ q
        top = np.argpartition(-s, k)[:k]
        out.append(set(ids[top].tolist()))
    return out


def measure(store, queries: np.ndarray, truth: list[set[int]], flt: FileFilter | None):
    for q in queries[:10]:  # warm-up
        store.knn(q, K, flt)
    lat, hits = [], 0
    for q, want in zip(queries, truth, strict=True):
        t0 = time.perf_counter()
        got, _ = store.knn(q, K, flt)
        lat.append((time.perf_counter() - t0) * 1000)
        hits += len(set(got.tolist()) & want)
    return hits / (K * len(queries)), median(lat), percentile(lat, 99)


def fill(store, ids, vecs, meta, batch: int = 2048) -> float:
    with Timer() as t:
        for s in range(0, len(ids), batch):
            store.add(ids[s : s + batch], vecs[s : s + batch], meta[s : s + batch])
        store.flush()
    return t.s


def index_ready(store, timeout: float = 1800.0) -> float:
    """Seconds until the server's HNSW index covers every row. A Milvus server builds indexes
    in the background after a flush (milvus-lite in one Python thread); searches meanwhile scan
    raw segments. Cluster: poll describe_index until indexed_rows == total_rows. milvus-lite
    always reports "Finished", so there: release + load, which builds every segment's index
    synchronously (it waits for the background builder)."""
    c, name = store._client, store.collection
    with Timer() as t:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = c.describe_index(name, "vector") or {}
            if int(info.get("indexed_rows", 0)) >= int(info.get("total_rows", 0)) and \
                    info.get("state", "Finished") in ("Finished", 3):
                break
            time.sleep(1.0)
        if "lite" in str(c.get_server_version()).lower():
            c.release_collection(name)
            c.load_collection(name)
    return t.s


def run(n: int, n_queries: int, url: str | None) -> tuple[list[list], str]:
    ids, vecs, queries, folder_of, meta = data(n, n_queries)
    flt = FileFilter(folders=("/photos/f03",))
    in_folder = folder_of == 3
    truth = exact(vecs, ids, queries, K)
    truth_f = exact(vecs[in_folder], ids[in_folder], queries, K)
    rows: list[list] = []
    tmp = Path(tempfile.mkdtemp(prefix="magpie-bench-"))

    # hnswlib: the allowed ids a filter gives come from the catalogue in the app; here, the same
    # set straight from the generated folders.
    allowed = ids[in_folder]
    (tmp / "hnsw").mkdir()
    hnsw = HnswStore(tmp / "hnsw", DIM, FINGERPRINT,
                     allowed_ids=lambda f, among=None: (allowed if among is None
                                                        else allowed[np.isin(allowed, among)]))
    build = fill(hnsw, ids, vecs, meta)
    r, p50, p99 = measure(hnsw, queries, truth, None)
    rf, fp50, fp99 = measure(hnsw, queries, truth_f, flt)
    rows.append(["hnswlib (in process)", n, build, float("nan"), r, p50, p99, rf, fp50, fp99])
    hnsw.close()

    from indexer.milvus_store import MilvusStore

    server = None
    where = url
    if url is None:
        from milvus_server import MilvusServer

        server = MilvusServer(tmp / "milvus-data").start()
        where = server.url("bench")
    store = MilvusStore.from_url(where, dim=DIM, fingerprint=FINGERPRINT)
    try:
        if store.count():
            store.drop()
            store.close()
            store = MilvusStore.from_url(where, dim=DIM, fingerprint=FINGERPRINT)
        build = fill(store, ids, vecs, meta)
        ready = index_ready(store)
        r, p50, p99 = measure(store, queries, truth, None)
        rf, fp50, fp99 = measure(store, queries, truth_f, flt)
        label = "Milvus (milvus-lite, gRPC loopback)" if server else f"Milvus ({where})"
        rows.append([label, n, build, ready, r, p50, p99, rf, fp50, fp99])
        store.drop()
    finally:
        store.close()
        if server is not None:
            server.stop()
    return rows, where or ""


HEADERS = ["store", "vectors", "fill+flush s", "index ready s", "recall@10", "p50 ms", "p99 ms",
           "filtered recall@10", "filtered p50 ms", "filtered p99 ms"]


def write_results(text: str, title: str) -> None:
    """Replace (or add) this benchmark's own section of bench/RESULTS.md; leave the rest."""
    path = BENCH / "RESULTS.md"
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    body = f"{SECTION}\n\n{title}\n{text.strip()}\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda m: body + "\n", old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + body
    path.write_text(new.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="vectors (default 20000)")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--url", help="milvus://HOST:PORT/COLLECTION of a running server "
                    "(default: start milvus-lite on loopback)")
    ap.add_argument("--smoke", action="store_true", help="2k vectors, 50 queries")
    ap.add_argument("--write", action="store_true", help="record the table in bench/RESULTS.md")
    args = ap.parse_args(argv)
    n, nq = (2000, 50) if args.smoke else (args.n, args.queries)
    print_machine(f"Milvus store vs hnswlib store: {n} x {DIM}-d, {nq} queries, k={K}, "
                  f"M={HNSW_M}, ef={HNSW_EF_SEARCH} (Milvus filtered: {FILTERED_EF})")
    rows, _ = run(n, nq, args.url)
    text = table(HEADERS, rows)
    if args.write:
        import datetime as dt

        from _common import machine

        m = machine()
        title = (f"{dt.date.today().isoformat()}, {m['cpu']}, {m['cores']} cores, {n} CLIP-like "
                 f"synthetic {DIM}-d vectors, {nq} queries, k={K}, HNSW M={HNSW_M} "
                 f"efConstruction=200 ef={HNSW_EF_SEARCH} (Milvus filtered: ef={FILTERED_EF}); "
                 f"filtered = one folder of {FOLDERS} (~{100 // FOLDERS}%; hnswlib scans such a "
                 f"small allowed set exactly). Load average at start {m['load']} (shared "
                 f"machine). `python bench/milvus_vs_hnsw.py --n {n} --write`\n")
        write_results(text, title)
        print(f"written to {BENCH / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
