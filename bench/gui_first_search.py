"""GUI: launch to the first search answered, as a whole process (issue 12, item 4).

    python bench/gui_first_search.py --library DIR [--query TEXT] [--runs 5]

Each run spawns a fresh `magpie gui`-equivalent process (the real window, offscreen Qt: the
same `make_window` + `controller.start()` as `run_gui`), which types the query the moment the
window is shown — as a person who starts typing at once — and records when the first result
page is put on screen (`MainWindow.show_results` returned and the event loop turned), then
quits. Figures: seconds from spawning the process to the window shown and to the results
shown, whether torch / open_clip were imported by then, and the peak RSS of the process.
The library's model must have its text export cached (any first index makes it).

With BENCH_VIT_SHA set, the pinned ViT-B-32 is replaced by a random-weight checkpoint of that
sha256 (as in bench/cold_start.py), with MAGPIE_WEIGHTS pointing at it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, os, sys, time
t0 = float(os.environ["BENCH_T0"])
sys.path.insert(0, os.environ["BENCH_MAGPIE_ROOT"])
if os.environ.get("BENCH_VIT_SHA"):
    import dataclasses
    import indexer.specs as specs
    spec = dataclasses.replace(specs.VIT_B_32, sha256=os.environ["BENCH_VIT_SHA"])
    specs.VIT_B_32 = spec
    specs.SPECS[spec.name] = spec
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from app import gui
from ui import theme
marks = {}
app = QApplication(sys.argv[:1])
theme.apply(app)
window, controller = gui.make_window(os.environ["BENCH_LIBRARY"])
shown = window.show_results

def on_results(*a, **kw):
    out = shown(*a, **kw)
    if "results" not in marks:
        def done():
            marks["results"] = time.time() - t0
            marks["torch"] = "torch" in sys.modules
            marks["open_clip"] = "open_clip" in sys.modules
            marks["n"] = len(a[0])
            app.quit()
        QTimer.singleShot(0, done)
    return out

window.show_results = on_results
window.resize(1280, 820)
window.show()
app.processEvents()
marks["window"] = time.time() - t0
QTimer.singleShot(0, controller.start)
QTimer.singleShot(0, lambda: controller.search.run_query(os.environ["BENCH_QUERY"]))
QTimer.singleShot(int(float(os.environ.get("BENCH_TIMEOUT", "120")) * 1000), app.quit)
app.exec()
controller.shutdown()
import resource
marks["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("BENCH " + json.dumps(marks), flush=True)
os._exit(0)
"""


def one_run(library: Path, query: str, tree: Path, timeout: float) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "BENCH_LIBRARY": str(library),
           "BENCH_QUERY": query, "BENCH_MAGPIE_ROOT": str(tree), "BENCH_TIMEOUT": str(timeout)}
    env["BENCH_T0"] = repr(time.time())
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         timeout=timeout + 60, cwd=tree)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")]
    if not line:
        raise RuntimeError(f"the probe failed ({out.returncode}): {out.stderr[-2000:]}")
    marks = json.loads(line[-1][6:])
    if "results" not in marks:
        raise RuntimeError(f"no results page within {timeout} s: {out.stderr[-2000:]}")
    return marks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--library", type=Path, required=True)
    ap.add_argument("--query", default=os.environ.get("BENCH_QUERY", "a dog on the beach"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tree", type=Path, default=ROOT, help="the Magpie source tree to run")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--before", type=Path,
                    help="another Magpie tree, run in turn with --tree (A B A B ...)")
    args = ap.parse_args(argv)
    trees = {"this": args.tree, **({"before": args.before} if args.before else {})}
    for tree in trees.values():
        one_run(args.library, args.query, tree, args.timeout)  # warm-up: page cache
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(args.runs):
        for name, tree in trees.items():
            load = os.getloadavg()[0]
            m = one_run(args.library, args.query, tree, args.timeout)
            runs[name].append(m)
            print(f"{name}: window {m['window']:.2f} s, first results {m['results']:.2f} s "
                  f"({m['n']} shown), torch imported: {m['torch']}, open_clip: "
                  f"{m['open_clip']}, peak {m['peak_mb']:.0f} MB, load {load:.1f}", flush=True)
    for name, rs in runs.items():
        def med(k: str, rs: list = rs) -> float:
            return statistics.median(r[k] for r in rs)
        print(f"{name}: median of {len(rs)}: window {med('window'):.2f} s, first search "
              f"answered {med('results'):.2f} s, peak {med('peak_mb'):.0f} MB; torch imported "
              f"in {sum(r['torch'] for r in rs)} of {len(rs)} runs; load "
              f"{os.getloadavg()[0]:.1f}")
    if args.before:
        ratio = statistics.median(a["results"] / b["results"]
                                  for a, b in zip(runs["this"], runs["before"]))
        print(f"first results, this / before: {ratio:.2f} (median of pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
