"""One indexer, N searchers, a PostgreSQL catalogue and a Milvus vector store, on loopback.

    python bench/pg_load.py --searchers 4,16 --seconds 60 --kill none,postgresql,milvus
    python bench/pg_load.py --smoke      # 2 searchers, a few seconds, PostgreSQL killed once (CI)

Per scenario: a throwaway PostgreSQL cluster and a milvus-lite server are started (the same
helpers the tests use: tests/pg_server.py, tests/milvus_server.py); a library is indexed from a
folder; then for `--seconds` one indexer process keeps adding files to that folder and indexing
them while N searcher processes, each in its own empty library folder given only the two URLs
(a second machine), run hybrid searches back to back. With --kill, the named server is killed
(PostgreSQL: immediate shutdown, no checkpoint; milvus-lite: SIGKILL) half way and restarted
`--outage` seconds later; the indexer reopens and resumes by itself.

Reported: searches, throughput, p50/p99 latency, errors outside the outage (goal 0) and inside
it (each must be one clear MagpieError line; any other exception is counted as a bug), and the
checks after the indexer's last run: every path a searcher got is a file the catalogue holds,
no file lost (every file on disk is indexed), none duplicated, and Milvus holds exactly the
catalogue's chunk ids. The encoder is the tests' FakeEncoder (mean colour / hashed words), so
the figures are the catalogue's and the vector store's, not a model's.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for p in (str(ROOT), str(ROOT / "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)

MODEL = "tiny-shapes"
WORDS = ["red", "harbour", "boats", "lighthouse", "dawn", "blue", "green", "keeper", "log",
         "fishing", "storm", "island", "market", "bread", "note"]
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def _spec():
    from indexer.specs import get_spec

    return get_spec(MODEL)


def write_files(folder: Path, start: int, n: int) -> None:
    """n new files: images of three colours in two folders, and a note every fifth."""
    from helpers import note, solid

    for i in range(start, start + n):
        name = list(COLOURS)[i % 3]
        sub = folder / f"batch_{i // 50:03d}"
        if i % 5 == 4:
            rng = random.Random(i)
            words = " ".join(rng.choice(WORDS) for _ in range(12))
            note(sub / f"note_{i:05d}.txt", f"note {i}: {words}")
        else:
            shade = tuple((c + i * 7) % 256 for c in COLOURS[name])
            solid(sub / f"{name}_{i:05d}.png", shade)


# -- the processes ----------------------------------------------------------------------------
def _ready_then_deadline(ready, go) -> float:
    """Say this process is ready, wait for the common start; the deadline is then known."""
    with ready.get_lock():
        ready.value += 1
    while go.value == 0.0:
        time.sleep(0.02)
    return go.value


def indexer_main(lib: str, folder: str, cat_url: str, store_url: str, start: int,
                 ready, go, per_round: int, out: str) -> None:
    """Add `per_round` files, index, repeat until the deadline; reopen after any failure."""
    from fakes import FakeEncoder

    from indexer.errors import MagpieError
    from indexer.indexing import Indexer
    from indexer.library import Library

    spec = _spec()
    enc = FakeEncoder(dim=spec.embed_dim)
    report: dict = {"rounds": 0, "written": start, "errors": [], "bugs": [], "resumed": 0}
    library = Library.open(lib, spec)
    deadline = _ready_then_deadline(ready, go)
    n = start
    finishing = False
    while True:
        try:
            if library is None:
                library = Library.open(lib, spec)
            if not finishing and time.time() < deadline:
                write_files(Path(folder), n, per_round)
                n += per_round
            Indexer(library, enc, workers=0, batch_size=16).run([folder])
            report["rounds"] += 1
            if finishing or time.time() >= deadline:
                if finishing:
                    break
                finishing = True  # one more full run after the deadline: catch up
        except MagpieError as exc:
            report["errors"].append([time.time(), str(exc)])
            report["resumed"] += 1
            if library is not None:
                try:
                    library.close()
                except Exception:  # noqa: BLE001 - the server is down; the lock is ours
                    pass
                library = None
            time.sleep(0.5)
            if time.time() > deadline + 120:
                break
        except Exception:  # noqa: BLE001 - a bug: recorded, reported, the run goes on
            report["bugs"].append(traceback.format_exc())
            break
    if library is not None:
        library.close()
    report["written"] = n
    Path(out).write_text(json.dumps(report))


def searcher_main(lib: str, cat_url: str, store_url: str, ready, go, seed: int,
                  out: str) -> None:
    """Join the shared library from an empty folder, then search back to back."""
    from fakes import FakeEncoder

    from indexer.errors import MagpieError
    from indexer.library import Library
    from indexer.search import Searcher

    spec = _spec()
    rng = random.Random(seed)
    lat: list[float] = []
    paths: set[str] = set()
    errors: list = []
    bugs: list[str] = []
    library = Library.open(lib, spec, readonly=True, catalogue=cat_url, store=store_url)
    searcher = Searcher(library, FakeEncoder(dim=spec.embed_dim))
    searcher.search("warm up", k=20)
    deadline = _ready_then_deadline(ready, go)
    while time.time() < deadline:
        try:
            if library is None:
                library = Library.open(lib, spec, readonly=True, catalogue=cat_url,
                                       store=store_url)
                searcher = Searcher(library, FakeEncoder(dim=spec.embed_dim))
            text = " ".join(rng.sample(WORDS, rng.choice((1, 2))))
            t0 = time.perf_counter()
            results = searcher.search(text, k=20)
            lat.append((time.perf_counter() - t0) * 1000)
            paths.update(r.path for r in results)
        except MagpieError as exc:
            errors.append([time.time(), str(exc)])
            time.sleep(0.2)
        except Exception:  # noqa: BLE001 - a bug: counted apart from the clear messages
            bugs.append(traceback.format_exc())
            time.sleep(0.2)
    if library is not None:
        try:
            library.close()
        except Exception:  # noqa: BLE001
            pass
    Path(out).write_text(json.dumps({"lat": lat, "paths": sorted(paths), "errors": errors,
                                     "bugs": bugs}))


# -- one scenario -----------------------------------------------------------------------------
def scenario(n_searchers: int, seconds: float, kill: str, outage: float, initial: int,
             per_round: int, work: Path) -> dict:
    from milvus_server import MilvusServer
    from pg_server import PgServer

    from indexer.indexing import Indexer
    from indexer.library import Library

    pg = PgServer().start()
    milvus = MilvusServer(work / "milvus-data").start()
    try:
        cat_url, store_url = pg.url("bench"), milvus.url("bench")
        folder, lib = work / "Pictures", work / "indexer-lib"
        write_files(folder, 0, initial)
        from fakes import FakeEncoder

        spec = _spec()
        with Library.open(lib, spec, catalogue=cat_url, store=store_url) as library:
            Indexer(library, FakeEncoder(dim=spec.embed_dim), workers=0, batch_size=16).run(
                [str(folder)])
        ctx = mp.get_context("spawn")
        ready, go = ctx.Value("i", 0), ctx.Value("d", 0.0)
        procs = [ctx.Process(target=indexer_main, args=(
            str(lib), str(folder), cat_url, store_url, initial, ready, go, per_round,
            str(work / "indexer.json")))]
        for i in range(n_searchers):
            procs.append(ctx.Process(target=searcher_main, args=(
                str(work / f"searcher-{i}"), cat_url, store_url, ready, go, i,
                str(work / f"searcher-{i}.json"))))
        for p in procs:
            p.start()
        while ready.value < len(procs):  # startup (imports, joining) is not measured
            if any(p.exitcode not in (None, 0) for p in procs):
                raise RuntimeError("a worker died while starting")
            time.sleep(0.05)
        start_at = time.time()
        go.value = start_at + seconds
        window = None
        if kill != "none":
            victim = pg if kill == "postgresql" else milvus
            time.sleep(max(0.0, start_at + seconds / 2 - time.time()))
            k0 = time.time()
            victim.stop(kill=True)
            time.sleep(outage)
            victim.start()
            window = (k0, time.time() + 2.0)  # in-flight calls time out just after
        for p in procs:
            p.join(timeout=seconds + 600)
        return _verify(work, n_searchers, seconds, window, cat_url, store_url, folder)
    finally:
        milvus.stop()
        pg.destroy()


def _verify(work: Path, n: int, seconds: float, window, cat_url: str, store_url: str,
            folder: Path) -> dict:
    import numpy as np

    from indexer.milvus_store import MilvusStore
    from indexer.pg_catalogue import PgCatalogue

    spec = _spec()
    idx = json.loads((work / "indexer.json").read_text())
    runs = [json.loads((work / f"searcher-{i}.json").read_text()) for i in range(n)]
    lat = sorted(x for r in runs for x in r["lat"])
    result_paths = {p for r in runs for p in r["paths"]}

    def outside(t: float) -> bool:
        return window is None or not (window[0] <= t <= window[1])

    errs = [e for r in runs for e in r["errors"]]
    cat = PgCatalogue(cat_url, spec.fingerprint(), readonly=True)
    try:
        rows = cat._rows("SELECT path, state FROM files")
        chunk_ids = np.sort(cat.chunk_ids())
        sizes = dict(cat._rows(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r'", [cat.schema]))
    finally:
        cat.close()
    store = MilvusStore.from_url(store_url, dim=spec.embed_dim, fingerprint=spec.fingerprint(),
                                 readonly=True)
    try:
        ids, count = np.sort(store.ids()), store.count()
    finally:
        store.close()
    on_disk = {str(p) for p in folder.rglob("*") if p.is_file()}
    held = [p for p, _s in rows]
    indexed = {p for p, s in rows if s == "indexed"}
    return {
        "searchers": n, "seconds": seconds,
        "searches": len(lat), "per_s": len(lat) / seconds,
        "p50_ms": statistics.median(lat) if lat else float("nan"),
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
        "errors": sum(1 for e in errs if outside(e[0])),
        "outage_errors": sum(1 for e in errs if not outside(e[0])),
        "messages": sorted({e[1][:240] for e in errs} | {e[1][:240] for e in idx["errors"]}),
        "bugs": [b for r in runs for b in r["bugs"]] + idx["bugs"],
        "results": len(result_paths),
        "results_not_held": len(result_paths - set(held)),
        "files": len(on_disk), "indexer_rounds": idx["rounds"], "resumed": idx["resumed"],
        "lost": len(on_disk - indexed),
        "duplicated": len(held) - len(set(held)),
        "chunks": len(chunk_ids),
        "store_matches": bool(np.array_equal(chunk_ids, ids) and count == len(ids)),
        "bytes_per_file": sum(sizes.values()) / max(1, len(held)),
        "table_bytes": sizes,
    }


def catalogue_size(n: int, notes_every: int = 10, dim: int = 512) -> dict:
    """Bytes on disk per file of a PostgreSQL catalogue holding n synthetic files (ViT-B-32
    width, camera-like paths, a note every `notes_every` with ~60 words), tables + indexes."""
    import numpy as np
    from pg_server import PgServer

    from indexer.catalogue import NewChunk
    from indexer.pg_catalogue import PgCatalogue

    pg = PgServer().start()
    try:
        cat = PgCatalogue(pg.url("size"), "0123456789abcdef")
        rng = np.random.default_rng(0)
        root = cat.add_root("/nas/photos")
        batch: list = []
        for i in range(n):
            day = 1 + i % 28
            text = i % notes_every == notes_every - 1
            path = (f"/nas/photos/20{10 + i % 15}/{1 + i % 12:02d}/"
                    + (f"notes_{i:08d}.txt" if text else f"IMG_2019{day:02d}_{i:08d}.jpg"))
            fid = cat.upsert_pending(root, path, "text" if text else "image", 3_000_000,
                                     i, f"{i:064x}")
            v = rng.normal(size=dim).astype(np.float32)
            body = " ".join(rng.choice(WORDS, 60)) if text else None
            batch.append((fid, [NewChunk(0, body[:200] if body else None, v / np.linalg.norm(v))],
                          1.5e9 + i, body))
            if len(batch) == 256:
                cat.commit_embedded(batch, [])
                batch = []
        if batch:
            cat.commit_embedded(batch, [])
        cat.prune_journal(cat.journal_head())  # what the indexer does at close
        sizes = dict(cat._rows(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r'", [cat.schema]))
        cat.close()
        return {"files": n, "bytes_per_file": sum(sizes.values()) / n,
                "per_table": {k: v / n for k, v in sizes.items()}}
    finally:
        pg.destroy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--searchers", default="4,16")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--kill", default="none,postgresql,milvus")
    ap.add_argument("--outage", type=float, default=3.0)
    ap.add_argument("--initial", type=int, default=200)
    ap.add_argument("--per-round", type=int, default=20)
    ap.add_argument("--json", metavar="FILE", help="also write every row here")
    ap.add_argument("--size", type=int, metavar="FILES",
                    help="instead: bytes on disk per file of a catalogue of FILES files")
    args = ap.parse_args()
    if args.size:
        r = catalogue_size(args.size)
        print(f"{r['files']} files (512-d, a note every 10th): {r['bytes_per_file']:.0f} "
              "bytes per file, tables and indexes: " + ", ".join(
                  f"{k} {v:.0f}" for k, v in sorted(r["per_table"].items(),
                                                    key=lambda kv: -kv[1])))
        return 0
    from milvus_server import milvus_missing
    from pg_server import pg_missing

    missing = pg_missing() or milvus_missing()
    if missing:  # CI requires both servers; elsewhere say why and leave
        print(f"pg_load: skipped: {missing}")
        return 1 if os.environ.get("MAGPIE_REQUIRE_POSTGRES") == "1" else 0
    if args.smoke:
        plans = [(2, 6.0, "postgresql")]
        args.initial, args.per_round = 20, 5
    else:
        plans = [(int(n), args.seconds, k) for n in args.searchers.split(",")
                 for k in args.kill.split(",")]
    print(f"load average {os.getloadavg()[0]:.1f} at start; {os.cpu_count()} cores")
    print("| searchers | kill | s | searches | /s | p50 ms | p99 ms | errors | errors in outage "
          "| bugs | result paths (not held) | files (lost, duplicated) | chunks = Milvus |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows, failed = [], False
    for n, seconds, kill in plans:
        with tempfile.TemporaryDirectory(prefix="magpie-pgload-") as tmp:
            r = scenario(n, seconds, kill, args.outage, args.initial, args.per_round, Path(tmp))
        r["kill"] = kill
        r["load"] = os.getloadavg()[0]
        rows.append(r)
        print(f"| {n} | {kill} | {seconds:.0f} | {r['searches']} | {r['per_s']:.1f} | "
              f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['errors']} | {r['outage_errors']} | "
              f"{len(r['bugs'])} | {r['results']} ({r['results_not_held']}) | "
              f"{r['files']} ({r['lost']}, {r['duplicated']}) | "
              f"{r['chunks']} {'yes' if r['store_matches'] else 'NO'} |", flush=True)
        for m in r["messages"]:
            print(f"    message: {m}")
        for b in r["bugs"][:3]:
            print("    BUG:", b.strip().splitlines()[-1])
        failed |= bool(r["bugs"] or r["lost"] or r["duplicated"] or r["results_not_held"]
                       or not r["store_matches"] or r["errors"])
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    last = rows[-1]
    print(f"catalogue on disk: {last['bytes_per_file']:.0f} bytes per file, all tables and "
          f"indexes ({last['files']} files, {last['chunks']} chunks; small tables carry "
          f"fixed overhead): " + ", ".join(f"{k} {v // 1024} KiB"
                                          for k, v in sorted(last["table_bytes"].items())))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
