"""What SQLite's `synchronous` setting costs the indexer: FULL vs NORMAL (WAL mode).

    python bench/sqlite_sync.py                        # in bench/.cache (a real disk, not tmpfs)
    python bench/sqlite_sync.py --dir /mnt/usb --files 2000

With WAL, NORMAL syncs the log only at checkpoints (a power cut may undo the commits since the
last one, the file stays sound); FULL syncs it at every commit (a commit survives a power cut).
The indexer commits in two patterns, both measured through the real `Catalogue` calls:

* planning: one small transaction per new or changed file (`upsert_pending`);
* embedding: one transaction per batch (`commit_embedded`): 32 files on a CPU, 256 on a GPU;
  a picture is one 512-d vector, a note several chunks with their text.

Prints commits/s and ms per commit for each, then the commit time per 1000 new files
for three policies: NORMAL, FULL, and NORMAL with FULL for each embedded batch (chosen).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, print_machine, table  # noqa: E402

from indexer.catalogue import Catalogue, NewChunk  # noqa: E402

DIM = 512
NOTE_EVERY = 10  # one file in ten is a note of 4 chunks
NOTE_TEXT = "a paragraph of a note about the hardware store receipt and the red sled " * 4


def _open(folder: Path, mode: str) -> Catalogue:
    cat = Catalogue(folder / "catalogue.sqlite")
    cat.db.execute(f"PRAGMA synchronous={mode}")
    return cat


def plan_files(cat: Catalogue, root: int, n: int, offset: int) -> tuple[list[int], float]:
    """n planning commits, one per file, as the indexer's scan makes them; (ids, seconds)."""
    ids = []
    t0 = time.perf_counter()
    for i in range(offset, offset + n):
        kind = "text" if i % NOTE_EVERY == 0 else "image"
        ids.append(cat.upsert_pending(root, f"/photos/2024/{i:07d}.jpg", kind, 3_000_000,
                                      1_700_000_000_000_000_000 + i, f"{i:064x}"))
    return ids, time.perf_counter() - t0


def embed_batches(cat: Catalogue, ids: list[int], batch: int, rng) -> tuple[int, float]:
    """commit_embedded over ids in batches; (commits, seconds)."""
    commits, spent = 0, 0.0
    for s in range(0, len(ids), batch):
        done = []
        for fid in ids[s : s + batch]:
            n = 4 if fid % NOTE_EVERY == 0 else 1
            vecs = rng.normal(size=(n, DIM)).astype(np.float32)
            chunks = [NewChunk(o, NOTE_TEXT if n > 1 else None, v) for o, v in enumerate(vecs)]
            done.append((fid, chunks, None, NOTE_TEXT if n > 1 else None))
        t0 = time.perf_counter()
        cat.commit_embedded(done, [])
        spent += time.perf_counter() - t0
        commits += 1
    return commits, spent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=CACHE, help="where the databases are made")
    ap.add_argument("--files", type=int, default=2048, help="files per measurement")
    ap.add_argument("--batches", default="32,256", help="embedding batch sizes")
    ap.add_argument("--repeat", type=int, default=3, help="runs per cell (the median is shown)")
    args = ap.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    print_machine("SQLite synchronous FULL vs NORMAL (bench/sqlite_sync.py)")
    print(f"databases under {args.dir}; {args.files} files per run, median of {args.repeat}")
    batches = [int(b) for b in args.batches.split(",")]
    rng = np.random.default_rng(0)
    res: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for rep in range(args.repeat):
        modes = ("NORMAL", "FULL") if rep % 2 == 0 else ("FULL", "NORMAL")
        for mode in modes:  # alternated, so drift and warm-up hit both alike
            for b in batches:
                folder = Path(tempfile.mkdtemp(prefix=f"sync-{mode}-", dir=args.dir))
                try:
                    cat = _open(folder, mode)
                    root = cat.add_root("/photos")
                    ids, plan_s = plan_files(cat, root, args.files, rep * args.files)
                    res.setdefault((mode, "plan"), []).append((args.files, plan_s))
                    res.setdefault((mode, f"embed {b}"), []).append(embed_batches(cat, ids, b, rng))
                    cat.close()
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
    rows = []
    per_commit: dict[tuple[str, str], float] = {}
    for (mode, what), runs in res.items():
        commits = runs[0][0]
        secs = sorted(s for _, s in runs)[len(runs) // 2]
        per_commit[(mode, what)] = secs / commits
        rows.append([what if what == "plan" else f"{what} files/batch", mode, commits,
                     f"{commits / secs:,.0f}", f"{1000 * secs / commits:.2f}"])
    rows.sort(key=lambda r: (r[0], r[1]))
    table(["commit pattern", "synchronous", "commits", "commits/s", "ms/commit"], rows)
    rows = []
    for b in batches:
        for label, plan_mode, embed_mode in [("NORMAL", "NORMAL", "NORMAL"),
                                             ("FULL", "FULL", "FULL"),
                                             ("NORMAL, FULL per batch (chosen)", "NORMAL", "FULL")]:
            ms = 1000 * (1000 * per_commit[(plan_mode, "plan")]
                         + 1000 / b * per_commit[(embed_mode, f"embed {b}")])
            rows.append([b, label, f"{ms:,.0f}"])
    table(["files/batch", "policy", "commit time per 1000 new files (ms)"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
