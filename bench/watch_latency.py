"""How soon a new picture is searchable while `magpie watch` runs, and what watching costs idle.

Whole processes, as a user runs them: `magpie index` builds a small tiny-shapes library, then
`magpie watch` follows its folder. Idle CPU is the watch process's own CPU time (utime+stime
from /proc) over a quiet spell. Latency is from the moment a new picture is written (copied
in, as a file manager does) until its row is committed as indexed in the catalogue, which is
when another process's `magpie search` can find it.

    .venv/bin/python bench/watch_latency.py            # 10 pictures, 20 s idle
    .venv/bin/python bench/watch_latency.py --smoke    # 2 pictures, 3 s idle (CI)
"""
from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from magpie_demo.shapes import make_demo_folder  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def indexed(catalogue: Path, path: str) -> bool:
    db = sqlite3.connect(f"file:{catalogue}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT state FROM files WHERE path=?", (path,)).fetchone()
    finally:
        db.close()
    return row is not None and row[0] == "indexed"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--pictures", type=int, default=10)
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of quiet to measure CPU")
    args = ap.parse_args()
    n, idle_s = (2, 3.0) if args.smoke else (args.pictures, args.idle)

    work = Path(tempfile.mkdtemp(prefix="magpie-watch-bench-"))
    env = dict(os.environ, MAGPIE_DATA_DIR=str(work / "data"), MAGPIE_CACHE_DIR=str(work / "cache"),
               XDG_CONFIG_HOME=str(work / "config"), HF_HUB_OFFLINE="1")
    cli = [sys.executable, "-m", "app.main"]
    try:
        folder, spare = work / "Pictures", work / "spare"
        make_demo_folder(folder, n_images=32, seed=1)
        spares = [i.path for i in make_demo_folder(spare, n_images=n, seed=2) if i.shape][:n]
        lib = work / "library"
        subprocess.run([*cli, "index", str(folder), "--library", str(lib), "--model",
                        "tiny-shapes", "--quiet"], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        catalogue = next(lib.glob("models/*/catalogue.sqlite"))
        proc = subprocess.Popen([*cli, "watch", "--library", str(lib)], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        ready = threading.Event()

        def reader() -> None:
            for line in proc.stdout:  # type: ignore[union-attr]
                lines.append(line.rstrip())
                if line.startswith("watching"):
                    ready.set()

        threading.Thread(target=reader, daemon=True).start()
        if not ready.wait(120):
            raise SystemExit("magpie watch did not start:\n" + "\n".join(lines))
        time.sleep(1.0)  # let start-up work settle before measuring quiet
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(idle_s)
        idle_cpu = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0)

        latencies = []
        for i, src in enumerate(spares):
            dest = folder / "New" / f"new-{i:03d}{Path(src).suffix}"
            dest.parent.mkdir(exist_ok=True)
            start = time.monotonic()
            shutil.copyfile(src, dest)
            while not indexed(catalogue, str(dest)):
                if time.monotonic() - start > 60:
                    raise SystemExit(f"{dest} not indexed after 60 s:\n" + "\n".join(lines))
                time.sleep(0.02)
            latencies.append(time.monotonic() - start)
            time.sleep(0.5)
        proc.terminate()
        proc.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"magpie watch, tiny-shapes, {n} new pictures one at a time (load avg {load:.2f})")
    print("| figure | value |")
    print("|---|---|")
    print(f"| new picture -> searchable, median | {statistics.median(latencies):.2f} s |")
    print(f"| new picture -> searchable, max | {max(latencies):.2f} s |")
    print(f"| CPU while idle ({idle_s:.0f} s quiet) | {idle_cpu * 100:.2f} % of one core |")
    print("(latency includes the 1 s quiet period before a batch is indexed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
