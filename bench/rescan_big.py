"""A no-change rescan of a big folder, whole processes, Magpie against rclip (issue 12).

    python bench/rescan_big.py [--files 50000] [--runs 5] [--dir /tmp/magpie-rescan-50000]

Setup (not timed): N small distinct JPEGs (48×32 px, ~1 KB) in 100 sub-folders; Magpie's
library of them built by `magpie index` with the bundled tiny-shapes model (a rescan with
nothing changed loads no model, so which model built the library does not matter); rclip's
database filled directly with one row per file — path, size and mtime as rclip records them,
a random 512-d vector — since indexing 50,000 files with ViT-B-32 would take hours here.

Timed, in turn A B A B …: `magpie index --library LIB` (a rescan: walk, stat, compare with the
catalogue, nothing to embed) against `rclip -t 1 QUERY` run in the folder (rclip has no
index-only command: its rescan, then a search over the vectors). Each is one process from
start to exit under `/usr/bin/time` (wall, peak RSS); medians and the median of the per-pair
ratios are printed with the load average.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH, ROOT  # noqa: E402
from cold_start import RCLIP_PY, RCLIP_WRAPPER, loadavg, timed  # noqa: E402

QUERY = "a dog running on the beach"


def make_files(folder: Path, n: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    done = folder / ".complete"
    if done.exists() and done.read_text() == str(n):
        return sorted(folder.rglob("*.jpg"))
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        sub = folder / f"d{i % 100:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        px = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
        p = sub / f"IMG_{i:06d}.jpg"
        Image.fromarray(px).resize((48, 32)).save(p, quality=80)
        paths.append(p)
    done.write_text(str(n))
    return sorted(paths)


def fill_rclip_db(datadir: Path, folder: Path, paths: list[Path]) -> None:
    """rclip's own schema (made by running it once on an empty folder), then a row per file."""
    import numpy as np

    db = datadir / "db.sqlite3"
    if db.exists():
        return
    empty = datadir / "empty"
    empty.mkdir(exist_ok=True)
    env = {**os.environ, "RCLIP_DATADIR": str(datadir), "HF_HUB_OFFLINE": "1"}
    subprocess.run([str(RCLIP_PY), "-c", RCLIP_WRAPPER, "-t", "1", "x"], cwd=empty, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rng = np.random.default_rng(1)
    con = sqlite3.connect(db)
    rows = []
    for p in paths:
        st = p.stat()
        v = rng.standard_normal(512).astype(np.float32)
        rows.append((str(p), st.st_mtime, st.st_size, (v / np.linalg.norm(v)).tobytes(),
                     f"h{st.st_ino}"))
    with con:
        con.executemany("INSERT INTO images(deleted, indexing, filepath, modified_at, size, "
                        "vector, hash) VALUES (NULL, NULL, ?, ?, ?, ?, ?)", rows)
    con.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", type=Path, help="work folder (default /tmp/magpie-rescan-N)")
    args = ap.parse_args(argv)
    if not RCLIP_PY.exists():
        raise SystemExit("rclip venv missing: run `python bench/vs_rclip.py --setup` first")
    work = args.dir or Path(f"/tmp/magpie-rescan-{args.files}")
    folder = work / "photos"
    paths = make_files(folder, args.files)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MAGPIE_DATA_DIR": str(work / "data"),
           "MAGPIE_CACHE_DIR": str(work / "cache")}
    lib = work / "lib"
    if not (lib / "magpie-library.json").exists():
        subprocess.run([sys.executable, "-m", "app.main", "index", str(folder), "--library",
                        str(lib), "--model", "tiny-shapes", "--quiet"], env=env, cwd=ROOT,
                       check=True, timeout=7200)
    datadir = work / "rclip-data"
    if not (datadir / "db.sqlite3").exists():
        src = BENCH / ".cache" / "rclip-data"
        shutil.copytree(src, datadir, ignore=shutil.ignore_patterns("db.sqlite3*"),
                        dirs_exist_ok=True)
        fill_rclip_db(datadir, folder, paths)
    magpie = ([sys.executable, "-m", "app.main", "index", "--library", str(lib), "--quiet"],
              env, ROOT)
    rclip = ([str(RCLIP_PY), "-c", RCLIP_WRAPPER, "-t", "1", QUERY],
             {**env, "RCLIP_DATADIR": str(datadir)}, folder)
    la = loadavg()
    timed(*magpie), timed(*rclip)  # warm-up: page cache, as a user's second run
    ta, tb = [], []
    for _ in range(args.runs):
        ta.append(timed(*magpie))
        tb.append(timed(*rclip))
    med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
    ratio = statistics.median(a[0] / b[0] for a, b in zip(ta, tb))
    print(f"no-change rescan, {args.files} files: Magpie {med(ta, 0):.2f} s / "
          f"{med(ta, 1):.0f} MB, rclip (rescan + search) {med(tb, 0):.2f} s / {med(tb, 1):.0f} MB,"
          f" Magpie/rclip wall {ratio:.2f} (median of {args.runs} pairs), load {la} -> {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
