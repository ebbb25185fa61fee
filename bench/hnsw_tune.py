"""hnsw parameter sweep behind indexer/vectors.py's HNSW_* values: recall@10 vs exact search.

    python bench/hnsw_tune.py                  # 100k items (reuses query_latency's cached vectors)
    python bench/hnsw_tune.py --n 20000 --ms 16,32

Builds raw hnswlib indexes (space="cosine", as HnswStore does) over the synthetic vectors of
bench/query_latency.py and reports recall@10 for text-like queries at several ef values.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, print_machine, table  # noqa: E402
from query_latency import SyntheticClip, exact_topk  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    import hnswlib

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--ms", default="16,32,48")
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--efs", default="96,128,200,300,400")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    n = 3000 if args.smoke else args.n
    print_machine("hnsw tuning (bench/hnsw_tune.py)")
    src = CACHE / f"query-{n}" / "vectors.npy"
    synth = SyntheticClip(n_clusters=max(64, n // 400), seed=0)
    vecs = np.load(src) if src.exists() else synth.images(n, seed=100)
    queries = synth.queries(300, seed=999)
    truth = exact_topk(vecs, queries, 10)
    rows = []
    for m in [int(x) for x in args.ms.split(",")]:
        idx = hnswlib.Index(space="cosine", dim=vecs.shape[1])
        idx.init_index(max_elements=n, M=m, ef_construction=args.efc)
        t0 = time.perf_counter()
        idx.add_items(vecs, np.arange(1, n + 1))
        build = time.perf_counter() - t0
        for ef in [int(x) for x in args.efs.split(",")]:
            idx.set_ef(ef)
            t0 = time.perf_counter()
            hits = 0
            for q, t in zip(queries, truth):
                labels, _ = idx.knn_query(q[None], k=10)
                hits += len(set(labels[0].tolist()) & set(t.tolist()))
            ms = (time.perf_counter() - t0) / len(queries) * 1000
            rows.append([f"{n:,}", m, args.efc, ef, hits / (10 * len(queries)), ms,
                         n / build])
            print(f"  M={m} ef={ef}: recall@10 {rows[-1][4]:.3f}, {ms:.2f} ms/query", flush=True)
    table(["items", "M", "ef_construction", "ef", "recall@10", "ms/query", "inserts/s"], rows,
          "hnswlib recall@10 vs exact (text-like queries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
