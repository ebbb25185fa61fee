"""Resident memory while indexing and idle with a 1M-item library; startup times.

    python bench/memory_startup.py           # full: 2.5k/5k/10k-file indexing runs, 1M idle
                                             # (uses query_latency's cached 1M library; builds
                                             # it if missing, ~15 min), startup timings
    python bench/memory_startup.py --smoke   # CI: 1k files, 2k-item library, startup (< 1 min)

Memory is VmRSS from /proc (the main process, plus every decode worker for "total"), sampled
every 20 ms in a thread. Indexing runs use a fake encoder with 512-d output (the memory the
indexer itself needs per file, which is what grows with the folder) on generated 96x64 JPEGs;
the resident size of the ViT-B-32 model itself is measured separately and added, since it is a
constant. The per-file slope from the 2.5k/5k/10k runs extrapolates to 100k files.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH, CACHE, ROOT, Timer, median, print_machine, table  # noqa: E402


def rss_mb(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    kids = [int(x) for x in fh.read().split()]
                out += kids
                todo += kids
        except OSError:
            continue
    return out


class Sampler:
    def __init__(self) -> None:
        self.peak_main = self.peak_total = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            main = rss_mb()
            total = main + sum(rss_mb(k) for k in descendants(me))
            self.peak_main = max(self.peak_main, main)
            self.peak_total = max(self.peak_total, total)
            time.sleep(0.02)

    def __enter__(self) -> "Sampler":
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


class Fake512:
    """Free encoder with ViT-B-32's output size, so the catalogue and index grow as for real."""

    device = "cpu"
    dim = 512
    image_size = 64
    max_text_tokens = 75

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        v = np.random.default_rng(len(pixels)).normal(size=(len(pixels), 512)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def encode_texts(self, texts):
        return self.encode_images(np.zeros((len(texts), 1)))

    def token_count(self, text: str) -> int:
        return len(text.split())


def tiny_jpegs(folder: Path, n: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.iterdir()))
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, size=(64, 96, 3), dtype=np.uint8)
    for i in range(have, n):
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        arr = base.copy()
        arr[0, :, 0] = i % 256
        arr[1, :, 0] = (i // 256) % 256
        Image.fromarray(arr).save(sub / f"t{i:06d}.jpg", quality=80)
    return folder


def index_memory(n: int, smoke: bool) -> dict:
    """One fresh process per run so peaks don't mix: returns peak RSS figures."""
    code = f"""
import json, sys, tempfile, shutil
sys.path.insert(0, {str(BENCH)!r}); sys.path.insert(0, {str(ROOT)!r})
from memory_startup import Fake512, Sampler, rss_mb, tiny_jpegs
from _common import vit_b32_spec
from pathlib import Path
from app.settings import Settings
from app.wiring import tuning_for
from indexer.indexing import Indexer
from indexer.library import Library
spec, _ = vit_b32_spec()
folder = tiny_jpegs(Path({str(CACHE)!r}) / "data" / "tiny-jpegs", {n})
sub = Path(tempfile.mkdtemp(dir={str(CACHE)!r}))
# a folder of exactly n files (hard links into the shared pool)
k = 0
for d in sorted(folder.iterdir()):
    for f in sorted(d.iterdir()):
        if k >= {n}: break
        (sub / "in" / d.name).mkdir(parents=True, exist_ok=True)
        (sub / "in" / d.name / f.name).hardlink_to(f); k += 1
tune = tuning_for("cpu", Settings())
before = rss_mb()
with Sampler() as s:
    with Library.open(sub / "lib", spec) as lib:
        rep = Indexer(lib, Fake512(), workers=tune.workers, batch_size=tune.batch_size).run([sub / "in"])
print("RESULT " + json.dumps(dict(files=rep.embedded_files, seconds=rep.seconds, before=before,
      peak_main=s.peak_main, peak_total=s.peak_total)))
shutil.rmtree(sub, ignore_errors=True)
"""
    return _run_py(code)


def _run_py(code: str, env: dict | None = None, timeout: int = 3600) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=timeout, cwd=ROOT, env=env)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(out.stdout[-2000:] + out.stderr[-4000:])


def model_memory() -> dict:
    code = f"""
import json, sys
sys.path.insert(0, {str(BENCH)!r}); sys.path.insert(0, {str(ROOT)!r})
from memory_startup import rss_mb
import torch, open_clip
base = rss_mb()
from _common import load_vit_b32
enc, spec = load_vit_b32("cpu")
loaded = rss_mb()
enc.encode_texts(["warm up the text tower"])
import numpy as np
enc.encode_images(np.zeros((32, 224, 224, 3), np.uint8))
print("RESULT " + json.dumps(dict(base=base, loaded=loaded, after_batch=rss_mb())))
"""
    return _run_py(code)


def idle_library(n: int, smoke: bool) -> dict:
    from query_latency import build_library

    from _common import vit_b32_spec

    spec, _ = vit_b32_spec()
    dest = CACHE / ("query-smoke" if smoke else f"query-{n}")
    build_library(dest, n, spec, reuse=True)
    code = f"""
import json, sys, time
sys.path.insert(0, {str(BENCH)!r}); sys.path.insert(0, {str(ROOT)!r})
from memory_startup import rss_mb
from _common import vit_b32_spec
from indexer.library import Library
import numpy as np
spec, _ = vit_b32_spec()
base = rss_mb()
t0 = time.perf_counter()
lib = Library.open({str(dest / 'lib')!r}, spec)
opened = time.perf_counter() - t0
after_open = rss_mb()
q = np.random.default_rng(0).normal(size=512).astype(np.float32)
for _ in range(20):
    lib.vectors.knn(q / np.linalg.norm(q), 240)
after_queries = rss_mb()
from _common import load_vit_b32
enc, _ = load_vit_b32("cpu")
enc.encode_texts(["warm"])
print("RESULT " + json.dumps(dict(base=base, open_s=opened, after_open=after_open,
      after_queries=after_queries, with_model=rss_mb(), count=lib.vectors.count())))
"""
    return _run_py(code)


def startup(runs: int) -> dict:
    env = dict(os.environ, MAGPIE_DATA_DIR=tempfile.mkdtemp(dir=CACHE),
               MAGPIE_CACHE_DIR=tempfile.mkdtemp(dir=CACHE), HF_HUB_OFFLINE="1",
               QT_QPA_PLATFORM="offscreen")
    exe = shutil.which("magpie", path=str(Path(sys.executable).parent)) or "magpie"
    help_s = []
    for _ in range(runs):
        with Timer() as t:
            subprocess.run([exe, "--help"], capture_output=True, env=env, check=True)
        help_s.append(t.s)
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys\nfrom app.main import main\ntry:\n    main(['--help'])\n"
         "except SystemExit:\n    pass\n"
         "print('HEAVY', [m for m in ('torch', 'open_clip', 'PySide6', 'hnswlib') "
         "if m in sys.modules])"],
        capture_output=True, text=True, env=env, cwd=ROOT)
    heavy = [ln for ln in probe.stdout.splitlines() if ln.startswith("HEAVY")]
    imp = []
    for _ in range(runs):
        with Timer() as t:
            subprocess.run([sys.executable, "-c", "import app.cli"], env=env, check=True, cwd=ROOT)
        imp.append(t.s)
    out = {"help_s": median(help_s), "help_heavy": heavy[0][6:] if heavy else probe.stderr[-300:],
           "import_cli_s": median(imp)}
    if (ROOT / "app" / "gui.py").exists():
        gui = []
        for _ in range(runs):
            gui.append(_gui_once(env))
        ok = [g for g in gui if g.get("shown_s")]
        out["gui_shown_s"] = median([g["shown_s"] for g in ok]) if ok else None
        out["gui_torch_at_show"] = ok[0]["torch_loaded"] if ok else None
        out["gui_error"] = None if ok else gui[0].get("error")
    return out


GUI_PROBE = """
import os, sys, time
from PySide6.QtCore import QTimer
import ui.mainwindow as mw
orig = mw.MainWindow.show
def show(self):
    orig(self)
    def done():
        print("SHOWN", "torch" in sys.modules, flush=True)
        os._exit(0)
    QTimer.singleShot(0, done)  # the event loop has run: the window is painted and usable
mw.MainWindow.show = show
from app.main import main
main(["gui", "--library", sys.argv[1]])
"""


def _gui_once(env: dict) -> dict:
    lib = tempfile.mkdtemp(dir=CACHE)
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-c", GUI_PROBE, lib], capture_output=True, text=True,
                           env=env, cwd=ROOT, timeout=120)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 120 s"}
    finally:
        shutil.rmtree(lib, ignore_errors=True)
    dt = time.perf_counter() - t0
    for line in p.stdout.splitlines():
        if line.startswith("SHOWN"):
            return {"shown_s": dt, "torch_loaded": line.split()[1] == "True"}
    return {"error": (p.stderr or p.stdout)[-500:]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--big", type=int, default=None, help="items in the idle library")
    args = ap.parse_args(argv)
    print_machine("memory and startup (bench/memory_startup.py" +
                  (" --smoke)" if args.smoke else ")"))
    CACHE.mkdir(parents=True, exist_ok=True)

    sizes = [1000] if args.smoke else [2500, 5000, 10000]
    rows, pts = [], []
    for n in sizes:
        r = index_memory(n, args.smoke)
        rows.append([f"{n:,}", r["files"], r["seconds"], r["before"], r["peak_main"],
                     r["peak_total"]])
        pts.append((n, r["peak_main"], r["peak_total"]))
        print(f"  indexing {n:,}: peak main {r['peak_main']:.0f} MB, total {r['peak_total']:.0f} MB",
              flush=True)
    m = model_memory()
    model_mb = m["after_batch"] - m["base"]
    if len(pts) >= 2:
        ns = np.array([p[0] for p in pts], float)
        slope_main, icpt_main = np.polyfit(ns, [p[1] for p in pts], 1)
        slope_tot, icpt_tot = np.polyfit(ns, [p[2] for p in pts], 1)
        x100 = 100_000
        rows.append(["100,000 (extrapolated)", "", "", "", slope_main * x100 + icpt_main,
                     slope_tot * x100 + icpt_tot])
        rows.append(["100,000 + ViT-B-32 model (extrapolated)", "", "", "",
                     slope_main * x100 + icpt_main + model_mb,
                     slope_tot * x100 + icpt_tot + model_mb])
        slope_note = (f"slope {slope_main * 1024:.1f} KB per file in the main process "
                      f"({slope_tot * 1024:.1f} KB with the workers)")
    else:
        slope_note = "(smoke: one point, no slope)"
    table(["files indexed", "embedded", "seconds", "RSS before MB", "peak RSS main MB",
           "peak RSS main+workers MB"], rows,
          f"Resident memory while indexing (fake 512-d encoder; {slope_note})")
    table(["what", "MB"], [["python + torch + open_clip imported", m["base"]],
                           ["+ ViT-B-32 loaded (fp32)", m["loaded"]],
                           ["+ after a 32-image batch and a text query", m["after_batch"]],
                           ["model's own share", model_mb]],
          "ViT-B-32 model resident size (CPU)")

    big = args.big or (2000 if args.smoke else 1_000_000)
    r = idle_library(big, args.smoke)
    table(["items", "Library.open s", "RSS before open MB", "RSS idle after open MB",
           "after 20 knn MB", "+ ViT-B-32 loaded, warm (idle app) MB"],
          [[f"{r['count']:,}", r["open_s"], r["base"], r["after_open"], r["after_queries"],
            r["with_model"]]],
          "Idle with a library loaded (hnsw in RAM)")

    s = startup(3 if args.smoke else 5)
    rows = [["magpie --help (process start to exit)", s["help_s"], s["help_heavy"]],
            ["python -c 'import app.cli'", s["import_cli_s"], ""]]
    if "gui_shown_s" in s:
        if s["gui_shown_s"]:
            rows.append(["magpie gui: process start to window shown (offscreen)", s["gui_shown_s"],
                         f"torch imported at show: {s['gui_torch_at_show']}"])
        else:
            rows.append(["magpie gui", float("nan"), f"failed: {s['gui_error']}"])
    else:
        rows.append(["magpie gui", float("nan"), "app/gui.py not there yet"])
    table(["startup", "seconds (median)", "heavy modules imported"], rows, "Startup")
    return 0


if __name__ == "__main__":
    sys.exit(main())
