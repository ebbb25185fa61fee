"""GUI: launch to the first search answered, as a whole process (issue 12, item 4).

    python bench/gui_first_search.py --library DIR [--query TEXT] [--runs 5]
        [--mode typed|argv|both] [--before OTHER_TREE] [--trace]

Each run spawns a fresh process that runs `magpie gui --library DIR` exactly as the console
script does (app.main → app.cli → warm start → run_gui; offscreen Qt) and times, from the
spawn, the window's first paint and the first result page put on screen
(`MainWindow.show_results` returned and the event loop turned), then exits. Two ways a person
asks the first query:

* typed: the query is typed and Enter pressed the moment the window is first painted;
* argv: `magpie gui --query TEXT` (the window searches as soon as it can).

Figures: seconds from spawning the process to the window painted and to the results shown,
the process's CPU seconds by then (all threads: what a busy box makes wait), whether torch /
open_clip were imported by then, and the peak RSS of the process. `--before`
runs another Magpie tree in turn (A B A B …; argv mode only where that tree has --query).
`--trace` prints one run's timeline per tree and mode (wall and process CPU seconds at each
step, and the thread it ran on) instead of timing runs.

The library's model must have its text export cached (any first index makes it). With
BENCH_VIT_SHA set, the pinned ViT-B-32 is replaced by a random-weight checkpoint of that
sha256 (as in bench/cold_start.py), with MAGPIE_WEIGHTS pointing at it. MAGPIE_DATA_DIR /
MAGPIE_CACHE_DIR are passed through (point them at a scratch settings dir and the cache that
holds the export).
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
import json, os, sys, threading, time
t0 = float(os.environ["BENCH_T0"])
sys.path.insert(0, os.environ["BENCH_MAGPIE_ROOT"])
TRACE = bool(os.environ.get("BENCH_TRACE"))
QUERY = os.environ["BENCH_QUERY"]
marks, timeline = {}, []

def note(what):
    if TRACE:
        timeline.append((time.time() - t0, time.process_time(),
                         threading.current_thread().name, what))

def finish(code=0):
    import resource
    marks["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    marks["timeline"] = timeline
    print("BENCH " + json.dumps(marks), flush=True)
    os._exit(code)

note("python started")
if os.environ.get("BENCH_VIT_SHA"):
    import dataclasses
    import indexer.specs as specs
    spec = dataclasses.replace(specs.VIT_B_32, sha256=os.environ["BENCH_VIT_SHA"])
    specs.VIT_B_32 = spec
    specs.SPECS[spec.name] = spec

# Patch what we time when its module is first imported, on whichever thread imports it.
import importlib.abc
import importlib.machinery
PATCHES = {}

class Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module
        def exec_module(module, run=run, patch=PATCHES.pop(name)):
            note("import " + name + " >")
            run(module)
            patch(module)
            note("import " + name + " <")
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, Hook())

def wrap(owner, attr, label):
    fn = getattr(owner, attr)
    def wrapper(*a, **kw):
        note(label + " >")
        try:
            return fn(*a, **kw)
        finally:
            note(label + " <")
    setattr(owner, attr, wrapper)

def patch_window(mod):
    from PySide6.QtCore import QEvent, QObject, QTimer
    W = mod.MainWindow
    init, show_results = W.__init__, W.show_results

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint and "window" not in marks:
                marks["window"] = time.time() - t0
                marks["window_cpu"] = time.process_time()
                note("window painted")
                if os.environ["BENCH_MODE"] == "typed":
                    def type_query():
                        note("query typed")
                        obj.set_query(QUERY)
                        obj.queryCommitted.emit(QUERY)  # Enter
                    QTimer.singleShot(0, type_query)
            return False

    def __init__(self, *a, **kw):
        init(self, *a, **kw)
        self._bench_filter = FirstPaint(self)
        self.installEventFilter(self._bench_filter)

    def on_results(self, *a, **kw):
        out = show_results(self, *a, **kw)
        if "results" not in marks:
            def done():
                marks["results"] = time.time() - t0
                marks["cpu"] = time.process_time()  # all of the process's threads
                note("results on screen")
                marks["torch"] = "torch" in sys.modules
                marks["open_clip"] = "open_clip" in sys.modules
                marks["n"] = len(a[0])
                finish()
            QTimer.singleShot(0, done)
        return out

    W.__init__, W.show_results = __init__, on_results

PATCHES["ui.mainwindow"] = patch_window
if TRACE:
    def t_library(m): wrap(m.Library, "open", "Library.open")
    def t_text(m):
        wrap(m.OnnxTextEncoder, "__init__", "text session start")
        wrap(m.OnnxTextEncoder, "encode_texts", "encode_texts")
    def t_warm(m):
        wrap(m.WarmStart, "_run", "warm start")
        wrap(m.WarmStart, "take", "warm start taken")
    def t_lib(m):
        for a in ("open_library", "_opened", "load_encoder", "_model_ready"):
            wrap(m.LibraryController, a, "LibraryController." + a)
    def t_page(m): wrap(m, "run_search", "run_search")
    def t_search(m):
        wrap(m.SearchController, "search_now", "search_now")
        wrap(m.SearchController, "_on_done", "search answered")
    def t_gui(m):
        wrap(m, "make_window", "make_window")
        wrap(m.Controller, "start", "Controller.start")
    PATCHES.update({"indexer.library": t_library, "indexer.text_runtime": t_text,
                    "app.warm_start": t_warm, "app.library_controller": t_lib,
                    "app.search_page": t_page, "app.search_controller": t_search,
                    "app.gui": t_gui})

threading.Timer(float(os.environ.get("BENCH_TIMEOUT", "120")), finish, (3,)).start()
from app.main import main
argv = ["gui", "--library", os.environ["BENCH_LIBRARY"]]
if os.environ["BENCH_MODE"] == "argv":
    argv += ["--query", QUERY]
main(argv)
finish(4)  # the window closed before any results
"""


def one_run(library: Path, query: str, tree: Path, mode: str, timeout: float,
            trace: bool = False) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "BENCH_LIBRARY": str(library),
           "BENCH_QUERY": query, "BENCH_MAGPIE_ROOT": str(tree), "BENCH_TIMEOUT": str(timeout),
           "BENCH_MODE": mode, "BENCH_TRACE": "1" if trace else ""}
    env["BENCH_T0"] = repr(time.time())
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         timeout=timeout + 60, cwd=tree)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")]
    if not line:
        raise RuntimeError(f"the probe failed ({out.returncode}): {out.stderr[-2000:]}")
    marks = json.loads(line[-1][6:])
    if "results" not in marks:
        raise RuntimeError(f"no results page within {timeout} s ({out.returncode}): "
                           f"{out.stderr[-2000:]}")
    return marks


def has_query_option(tree: Path) -> bool:
    return '"--query"' in (tree / "app" / "cli.py").read_text("utf-8")


def print_timeline(name: str, mode: str, marks: dict) -> None:
    print(f"--- {name}, {mode}: wall s, process CPU s, thread, step")
    for wall, cpu, thread, what in marks["timeline"]:
        print(f"{wall:7.3f} {cpu:6.3f}  {thread[:18]:18s} {what}")
    print(f"window painted {marks['window']:.3f} s, results on screen {marks['results']:.3f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--library", type=Path, required=True)
    ap.add_argument("--query", default=os.environ.get("BENCH_QUERY", "a dog on the beach"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mode", choices=("typed", "argv", "both"), default="both")
    ap.add_argument("--tree", type=Path, default=ROOT, help="the Magpie source tree to run")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--before", type=Path,
                    help="another Magpie tree, run in turn with --tree (A B A B ...)")
    ap.add_argument("--trace", action="store_true", help="print one run's timeline and stop")
    args = ap.parse_args(argv)
    trees = {"this": args.tree, **({"before": args.before} if args.before else {})}
    modes = ("typed", "argv") if args.mode == "both" else (args.mode,)
    cases = [(name, tree, mode) for mode in modes for name, tree in trees.items()
             if mode == "typed" or has_query_option(tree)]
    if args.trace:
        for name, tree, mode in cases:
            one_run(args.library, args.query, tree, mode, args.timeout)  # warm-up
            print_timeline(name, mode, one_run(args.library, args.query, tree, mode,
                                               args.timeout, trace=True))
        return 0
    for _, tree, mode in cases:
        one_run(args.library, args.query, tree, mode, args.timeout)  # warm-up: page cache
    runs: dict[tuple[str, str], list[dict]] = {(n, m): [] for n, _, m in cases}
    loads: list[float] = []
    for _ in range(args.runs):
        for name, tree, mode in cases:
            load = os.getloadavg()[0]
            loads.append(load)
            m = one_run(args.library, args.query, tree, mode, args.timeout)
            runs[name, mode].append(m)
            print(f"{name} {mode}: window {m['window']:.2f} s, first results {m['results']:.2f}"
                  f" s, {m['cpu']:.2f} CPU-s ({m['n']} shown), torch imported: {m['torch']}, open_clip: "
                  f"{m['open_clip']}, peak {m['peak_mb']:.0f} MB, load {load:.1f}", flush=True)
    for (name, mode), rs in runs.items():
        def med(k: str, rs: list = rs) -> float:
            return statistics.median(r[k] for r in rs)
        print(f"{name} {mode}: median of {len(rs)}: window {med('window'):.2f} s, first search "
              f"answered {med('results'):.2f} s (range {min(r['results'] for r in rs):.2f}–"
              f"{max(r['results'] for r in rs):.2f}), {med('cpu'):.2f} CPU-s, peak "
              f"{med('peak_mb'):.0f} MB; torch "
              f"imported in {sum(r['torch'] for r in rs)} of {len(rs)} runs")
    print(f"load average (1 min) during the runs: {min(loads):.1f}–{max(loads):.1f}, "
          f"median {statistics.median(loads):.1f}")
    for mode in modes:
        if ("before", mode) in runs and runs["before", mode]:
            pairs = zip(runs["this", mode], runs["before", mode])
            ratio = statistics.median(a["results"] / b["results"] for a, b in pairs)
            print(f"{mode}: first results, this / before: {ratio:.2f} (median of pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
