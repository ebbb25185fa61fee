"""How soon a picture dropped into a watched folder shows up in the window's results, and what
following the folders costs while nothing happens — the real window (offscreen Qt), the real
folder watcher and the bundled tiny-shapes model.

Latency: the search box holds the new picture's name before it is copied in (as a file manager
does); the clock stops when the window's visible results include it, with no user action (the
watcher's batch is indexed on the writer queue, then the visible search refreshes). Idle CPU:
this process's CPU time (utime + stime, all threads: UI, watcher, checker) over a quiet spell
with the event loop running.

    PYTHONPATH=. QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui_watch_latency.py
    ... --pictures 3 --idle 5     # a quick look
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pictures", type=int, default=7)
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of quiet to measure CPU")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="magpie-gui-watch-"))
    os.environ.update(MAGPIE_DATA_DIR=str(work / "data"), MAGPIE_CACHE_DIR=str(work / "cache"),
                      HF_HUB_OFFLINE="1")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui import make_window
    from magpie_demo.shapes import make_demo_folder
    from indexer.specs import TINY_SHAPES

    app = QApplication.instance() or QApplication([])  # noqa: F841 - kept alive for the run

    def pump_until(cond, limit: float) -> float:
        start = time.monotonic()
        while not cond():
            if time.monotonic() - start > limit:
                raise SystemExit(f"timed out at line {sys._getframe(1).f_lineno}")
            QCoreApplication.processEvents()
            time.sleep(0.005)
        return time.monotonic() - start

    try:
        folder, spare = work / "Pictures", work / "spare"
        make_demo_folder(folder, n_images=32, seed=1)
        spares = [i.path for i in make_demo_folder(spare, n_images=args.pictures, seed=2)
                  if i.shape][: args.pictures]
        window, ctl = make_window(str(work / "library"), spec=TINY_SHAPES)
        window.resize(1100, 760)
        window.show()
        ctl.start()
        pump_until(lambda: ctl.searcher is not None, 120)
        ctl.add_paths([str(folder)])
        pump_until(lambda: not ctl.runner.busy and not ctl.runner.pending, 300)
        pump_until(lambda: ctl.follower.watching == [str(folder)], 60)

        latencies = []
        for i, src in enumerate(spares):
            name = f"zebra{i:03d}"
            ctl.last_page = None
            window.search.setText(name)
            window.queryCommitted.emit(name)
            pump_until(lambda: ctl.last_page is not None, 30)
            dest = folder / "New" / f"{name}{Path(src).suffix}"
            dest.parent.mkdir(exist_ok=True)
            start = time.monotonic()
            shutil.copyfile(src, dest)
            # fetched by the refreshed search (a made-up name may rank under "Show more")
            pump_until(lambda d=str(dest): any(r.path == d for r in window.results_model._all),
                       60)
            latencies.append(time.monotonic() - start)
            pump_until(lambda: not ctl.runner.busy and not ctl.runner.pending, 60)

        window.search.clear()
        window.queryEdited.emit("")
        settle_end = time.monotonic() + 2.0
        pump_until(lambda: time.monotonic() > settle_end, 10)
        loop = QEventLoop()
        QTimer.singleShot(int(args.idle * 1000), loop.quit)
        c0, t0 = cpu_seconds(), time.monotonic()
        loop.exec()  # the app's own event loop, as when it sits open on a desk
        idle = (cpu_seconds() - c0) / (time.monotonic() - t0)
        window.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"the window following its folder, tiny-shapes, {len(latencies)} new pictures one at "
          f"a time (load avg {load:.2f})")
    print("| figure | value |")
    print("|---|---|")
    print(f"| new picture -> found by the window's search, median | "
          f"{statistics.median(latencies):.2f} s |")
    print(f"| new picture -> found by the window's search, max | {max(latencies):.2f} s |")
    print(f"| CPU while idle and watching ({args.idle:.0f} s) | {idle * 100:.2f} % of one core |")
    print("(latency includes the watcher's 1 s quiet period before a batch is indexed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
