"""Query latency and hnsw recall at 10k, 100k and 1M items.

    python bench/query_latency.py                       # full: 10k, 100k, 1M (1M builds once,
                                                        # ~15 min on 2 cores, cached in bench/.cache)
    python bench/query_latency.py --sizes 10000,100000  # in a hurry
    python bench/query_latency.py --smoke               # CI: 2k items, a few queries, < 1 minute

The library is a real one (`Library.open`: SQLite catalogue + FTS5 + `HnswStore`), filled with
synthetic 512-d unit vectors (see `SyntheticClip`) and synthetic file rows; rows go in with plain
`executemany` on the catalogue's own tables (the per-file API would take an hour at 1M) and the
vectors through `HnswStore.add`, the same call the indexer makes. Queries are real: the text is
encoded by the ViT-B-32 text tower (random weights, real loader, warm), then `Searcher.search` runs
knn with oversampling, groups chunks by file, keyword BM25, reciprocal-rank fusion and filters.

Recall@10 compares `HnswStore.knn` with exact numpy search on the same vectors, for queries drawn
like text queries (another cone than the images: CLIP's modality gap), at several ef values.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, Timer, load_vit_b32, percentile, print_machine, table  # noqa: E402

DIM = 512
QUERIES = [
    "a dog running on the beach", "sunset over the mountains", "birthday cake with candles",
    "my passport photo", "whiteboard with meeting notes", "a red bicycle", "snow in the city",
    "grandma in the kitchen", "receipt from the hardware store", "cat sleeping on a sofa",
    "screenshot of an error message", "the eiffel tower at night", "children playing football",
    "a bowl of ramen", "wedding dress", "car keys", "tax documents 2021", "a green tractor",
    "fireworks", "hiking trail in the forest", "notes about the garden project",
    "flight booking confirmation", "a boat on a lake", "christmas tree", "old family photo",
]


class SyntheticClip:
    """Unit vectors with CLIP-like structure: a shared mean direction (image embeddings are all
    ~0.4-0.5 cosine apart, not orthogonal), a few thousand clusters of power-law size, anisotropic
    spread (decaying spectrum). Text-like queries sit in another cone (the modality gap) and match
    images at cosine ~0.3, as CLIP text/image pairs do."""

    def __init__(self, n_clusters: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.spectrum = (1.0 / np.sqrt(np.arange(1, DIM + 1))).astype(np.float32)
        q, _ = np.linalg.qr(rng.normal(size=(DIM, DIM)))
        self.basis = q.astype(np.float32)
        self.mu = self._unit(rng.normal(size=DIM)) * 0.75
        self.mu_text = self._unit(rng.normal(size=DIM)) * 0.9
        self.centres = self._shaped(rng.normal(size=(n_clusters, DIM))) * 0.9
        w = 1.0 / np.arange(1, n_clusters + 1) ** 0.8
        self.weights = w / w.sum()

    @staticmethod
    def _unit(v: np.ndarray) -> np.ndarray:
        return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)

    def _shaped(self, z: np.ndarray) -> np.ndarray:
        x = (z * self.spectrum) @ self.basis.T
        return self._unit(x)

    def images(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        c = rng.choice(len(self.centres), size=n, p=self.weights)
        noise = self._shaped(rng.normal(size=(n, DIM))) * 0.55
        return self._unit(self.mu + self.centres[c] + noise)

    def queries(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        c = rng.choice(len(self.centres), size=n, p=self.weights)
        noise = self._shaped(rng.normal(size=(n, DIM))) * 0.6
        return self._unit(self.mu_text + 0.5 * self.centres[c] + noise)


_FOLDER_WORDS = ("beach trip garden family birthday holiday paris snow hike work receipts "
                 "wedding school kitchen car bike concert museum lake christmas").split()


def build_library(dest: Path, n: int, spec, *, seed: int = 0, reuse: bool = False) -> dict:
    """A library of n files (90% images, 10% notes with text) and their vectors; cached.
    `reuse`: accept a cached one built with other hnsw parameters (memory/rclip benches)."""
    from indexer import vectors as V
    from indexer.catalogue import raw_path, vector_to_blob
    from indexer.library import Library

    params = {"n": n, "M": V.HNSW_M, "efc": V.HNSW_EF_CONSTRUCTION, "seed": seed,
              "fingerprint": spec.fingerprint(), "v": 3}
    stamp = dest / "bench-params.json"
    vec_file = dest / "vectors.npy"
    if stamp.exists() and vec_file.exists():
        old = json.loads(stamp.read_text())
        same = {k: v for k, v in old.items() if k not in ("M", "efc")} == {
            k: v for k, v in params.items() if k not in ("M", "efc")}
        if old == params or (reuse and same):
            return {**json.loads((dest / "bench-build.json").read_text()),
                    "M": old["M"], "efc": old["efc"]}
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    synth = SyntheticClip(n_clusters=max(64, n // 400), seed=seed)
    all_vecs = np.lib.format.open_memmap(vec_file, mode="w+", dtype=np.float32, shape=(n, DIM))
    rng = np.random.default_rng(seed + 1)
    sql_s = hnsw_s = 0.0
    step = 25_000
    with Library.open(dest / "lib", spec) as lib:
        db = lib.catalogue.db
        with db:
            db.execute("INSERT INTO roots(id, path, added_at) VALUES(1, '/photos', 0)")
        for start in range(0, n, step):
            stop = min(n, start + step)
            vecs = synth.images(stop - start, seed=seed + 100 + start)
            all_vecs[start:stop] = vecs
            files, chunks, fts = [], [], []
            for i in range(start, stop):
                fid = i + 1
                year = 2005 + i % 20
                words = _FOLDER_WORDS[i % len(_FOLDER_WORDS)], _FOLDER_WORDS[(i // 7) % 20]
                folder = f"/photos/{year}/{words[0]} {words[1]}"
                note = i % 10 == 9
                name = f"note {i}.md" if note else f"IMG_{i:07d}.jpg"
                path = f"{folder}/{name}"
                taken = 1.1e9 + (i * 7919 % 630_000_000)
                files.append((fid, 1, path, raw_path(path), "text" if note else "image",
                              1000 + i, i, f"h{i}", "indexed", None, taken, 0.0))
                body = (" ".join(_FOLDER_WORDS[j] for j in rng.integers(0, 20, 30))
                        if note else "")
                chunks.append((fid, fid, 0, body or None, vector_to_blob(vecs[i - start])))
                fts.append((fid, name, folder, body))
            t0 = time.perf_counter()
            with db:
                db.executemany("INSERT INTO files VALUES(?,?,?,?,?,?,?,?,?,?,?,?)", files)
                db.executemany("INSERT INTO chunks(id, file_id, ordinal, text, vector) "
                               "VALUES(?,?,?,?,?)", chunks)
                db.executemany("INSERT INTO fts(rowid, name, folder, body) VALUES(?,?,?,?)", fts)
            t1 = time.perf_counter()
            lib.vectors.add(np.arange(start + 1, stop + 1), vecs, None)
            t2 = time.perf_counter()
            sql_s += t1 - t0
            hnsw_s += t2 - t1
            if n >= 200_000 and (stop // step) % 4 == 0:
                print(f"  build {n:,}: {stop:,} items, hnsw {stop / hnsw_s:,.0f} inserts/s",
                      flush=True)
    all_vecs.flush()
    del all_vecs
    info = {"n": n, "sql_s": sql_s, "hnsw_s": hnsw_s,
            "inserts_per_s": n / hnsw_s if hnsw_s else 0.0,
            "index_mb": sum(p.stat().st_size for p in (dest / "lib").rglob("vectors.hnsw")) / 1e6,
            "sqlite_mb": sum(p.stat().st_size for p in (dest / "lib").rglob("catalogue.sqlite*"))
            / 1e6}
    (dest / "bench-build.json").write_text(json.dumps(info))
    stamp.write_text(json.dumps(params))
    return info


def exact_topk(vecs: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k ids (1-based, as in the library) by brute-force dot products."""
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    for start in range(0, len(vecs), 200_000):
        block = np.asarray(vecs[start : start + 200_000])
        s = queries @ block.T
        idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
        cand_s = np.take_along_axis(s, idx, 1)
        all_s = np.concatenate([best_s, cand_s], 1)
        all_i = np.concatenate([best_i, idx + start + 1], 1)
        order = np.argsort(-all_s, axis=1)[:, :k]
        best_s = np.take_along_axis(all_s, order, 1)
        best_i = np.take_along_axis(all_i, order, 1)
    return best_i


def recall_at(lib, queries: np.ndarray, truth: np.ndarray, ef: int, k: int = 10) -> tuple[float, float]:
    """(recall@k, median knn ms) of the store at a given ef."""
    old = lib.vectors.ef
    lib.vectors.ef = ef
    try:
        hits, times = 0, []
        for q, t in zip(queries, truth):
            t0 = time.perf_counter()
            ids, _ = lib.vectors.knn(q, k)
            times.append((time.perf_counter() - t0) * 1000)
            hits += len(set(ids.tolist()) & set(t[:k].tolist()))
        return hits / (k * len(queries)), float(np.median(times))
    finally:
        lib.vectors.ef = old


def full_window_text_encoder(enc):
    """The baseline: open_clip's own encode_text over the padded 77-token window (what
    `Encoder.encode_texts` did before it ran over the used tokens only)."""
    import torch
    import torch.nn.functional as F

    model, tok = enc._model, enc._tokenizer

    def encode(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            t = tok(texts, context_length=enc.spec.context_length)
            return F.normalize(model.encode_text(t), dim=-1).numpy()

    return encode


def latency_rows(lib, enc, n: int, n_queries: int) -> list[list]:
    from indexer.catalogue import FileFilter
    from indexer.search import Searcher

    searcher = Searcher(lib, enc)
    texts = [QUERIES[i % len(QUERIES)] for i in range(n_queries)]
    for t in texts[:3]:  # warm: model, sqlite page cache, hnsw pages
        searcher.search(t, k=20)
    year = 2015
    import datetime as dt

    after = dt.datetime(year, 1, 1).timestamp()
    full = full_window_text_encoder(enc)
    blas = np.random.default_rng(0).standard_normal((1024, 512)).astype(np.float32)
    warm = enc.encode_texts(["warm"])[0]
    cases = [
        ("encode text only", lambda t: enc.encode_texts([t])),
        ("encode text, full 77 window (baseline)", lambda t: full([t])),
        ("encode text after a numpy BLAS matvec (1024x512)",
         lambda t: (blas @ blas[0], enc.encode_texts([t]))),
        ("knn only (k=240, as hybrid k=20 asks)", lambda t: lib.vectors.knn(warm, 240)),
        ("search vector k=20", lambda t: searcher.search(t, k=20, mode="vector")),
        ("search hybrid k=20 (default)", lambda t: searcher.search(t, k=20)),
        ("hybrid + kind=image (90%)",
         lambda t: searcher.search(t, k=20, flt=FileFilter(kinds=("image",)))),
        ("hybrid + folder (1 of 20 folders)",
         lambda t: searcher.search(t, k=20, flt=FileFilter(folders=("/photos/2010",)))),
        ("hybrid + date after 2015 (~half)",
         lambda t: searcher.search(t, k=20, flt=FileFilter(after=after))),
    ]
    rows = []
    for i, (name, fn) in enumerate(cases):
        times = []
        # filtered searches go through hnswlib's Python filter callback: slow at scale, so fewer
        for t in (texts if i < 7 else texts[: max(5, n_queries // 6)]):
            t0 = time.perf_counter()
            fn(t)
            times.append((time.perf_counter() - t0) * 1000)
        rows.append([f"{n:,}", name, len(times), percentile(times, 50), percentile(times, 99)])
        print(f"  {n:>9,} {name:40s} p50 {rows[-1][3]:7.1f} ms  p99 {rows[-1][4]:7.1f} ms",
              flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=None, help="timed queries per case")
    ap.add_argument("--efs", default="32,64,96,128,200", help="ef values for the recall table")
    args = ap.parse_args(argv)

    from indexer import vectors as V
    from indexer.library import Library

    sizes = [2000] if args.smoke else [int(s) for s in args.sizes.split(",")]
    n_queries = args.queries or (8 if args.smoke else 200)
    n_recall = 50 if args.smoke else 300
    efs = [96] if args.smoke else [int(e) for e in args.efs.split(",")]
    print_machine("query latency (bench/query_latency.py" + (" --smoke)" if args.smoke else ")"))
    enc, spec = load_vit_b32("cpu")
    print(f"# hnsw M={V.HNSW_M} ef_construction={V.HNSW_EF_CONSTRUCTION} "
          f"ef_search={V.HNSW_EF_SEARCH}; torch threads {__import__('torch').get_num_threads()}",
          flush=True)

    build_rows, lat_rows, rec_rows = [], [], []
    for n in sizes:
        dest = CACHE / ("query-smoke" if args.smoke else f"query-{n}")
        info = build_library(dest, n, spec)
        with Timer() as t_open:
            lib = Library.open(dest / "lib", spec)
        try:
            build_rows.append([f"{n:,}", info["sql_s"], info["hnsw_s"], info["inserts_per_s"],
                               info["index_mb"], info["sqlite_mb"], t_open.s])
            vecs = np.load(dest / "vectors.npy", mmap_mode="r")
            synth = SyntheticClip(n_clusters=max(64, n // 400), seed=0)
            queries = synth.queries(n_recall, seed=999)
            truth = exact_topk(vecs, queries, 10)
            img = synth.images(2000, seed=7)
            sims = img[:1000] @ img[1000:].T
            q_top = float(np.mean(np.max(queries @ np.asarray(vecs[:20000]).T, axis=1)))
            print(f"  data stats: mean image-image cos {sims.mean():.2f}, "
                  f"query best match cos (first 20k) {q_top:.2f}", flush=True)
            exact_ms = []
            for q in queries[:20]:
                t0 = time.perf_counter()
                s = np.asarray(vecs) @ q
                np.argpartition(-s, 10)[:10]
                exact_ms.append((time.perf_counter() - t0) * 1000)
            for ef in efs:
                r, ms = recall_at(lib, queries, truth, ef)
                rec_rows.append([f"{n:,}", V.HNSW_M, V.HNSW_EF_CONSTRUCTION, ef, r, ms,
                                 float(np.median(exact_ms))])
                print(f"  {n:>9,} ef={ef:4d}: recall@10 {r:.3f}, knn {ms:.2f} ms "
                      f"(exact numpy {np.median(exact_ms):.1f} ms)", flush=True)
            lat_rows += latency_rows(lib, enc, n, n_queries)
        finally:
            lib.close()
    table(["items", "SQLite fill s", "hnsw insert s", "inserts/s", "hnsw file MB",
           "SQLite MB", "Library.open s"], build_rows, "Building the synthetic libraries")
    table(["items", "M", "ef_construction", "ef", "recall@10", "knn p50 ms", "exact numpy ms"],
          rec_rows, "hnsw recall@10 vs exact search (text-like queries)")
    table(["items", "query path", "n", "p50 ms", "p99 ms"], lat_rows,
          "Query latency (ViT-B-32 text tower warm, CPU)")
    enc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
