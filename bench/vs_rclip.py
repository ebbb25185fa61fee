"""Magpie side by side with rclip (PyPI), same folder, same machine, same model, one run.

    python bench/vs_rclip.py --setup    # once: bench/.venv-rclip with rclip from PyPI
    python bench/vs_rclip.py            # full: 200 web JPEGs + 24 12 MP JPEGs; queries at the
                                        # folder's size and at 100k items
    python bench/vs_rclip.py --smoke    # CI: a few files, 2k items (skips if no rclip venv)

How the comparison is made fair (rclip's model can't be downloaded here):
  * rclip 3.x runs CLIP with ONNX Runtime on models it downloads. We export *our* random-weight
    ViT-B-32 checkpoint (the same file Magpie loads) to ONNX with rclip's I/O names into the
    folder rclip loads from ($RCLIP_DATADIR), copy open_clip's BPE vocabulary next to it, and
    check ONNX Runtime reproduces torch's output. Same architecture, same weights, each tool on
    its own runtime (ONNX Runtime vs PyTorch) with its own defaults.
  * rclip's preprocessing targets 256 px (its default model is ViT-B-32-256); the driver sets
    that one constant to 224 so both tools run ViT-B-32 at 224 (rclip at 256 would be ~30% slower).
  * Indexing: rclip's own `RClip.ensure_index` (thread-pool decode, batch 8 by default) against
    Magpie's `Indexer.run` with `tuning_for("cpu")`; both with the model already loaded, both on
    an empty database.
  * Queries: rclip's own `RClip.search` (reads every vector of the folder from SQLite, encodes
    the text, sorts all similarities in Python) against Magpie's `Searcher.search` (default
    hybrid mode, k=10), both with the model warm; at the folder's size and with the same 100k
    synthetic vectors added to both.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    BENCH, CACHE, Timer, datasets, load_vit_b32, percentile, print_machine, table,
    vit_b32_checkpoint,
)

VENV = BENCH / ".venv-rclip"
PY = VENV / "bin" / "python"
DRIVER = BENCH / "rclip_driver.py"
DATADIR = CACHE / "rclip-data"


def setup() -> None:
    if not PY.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "rclip"], check=True)


def driver(*args: str, timeout: int = 1800) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", RCLIP_DATADIR=str(DATADIR))
    out = subprocess.run([str(PY), str(DRIVER), *args], capture_output=True, text=True,
                         timeout=timeout, env=env)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"rclip driver {args[0]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")


def export_onnx() -> dict:
    """Our ViT-B-32 checkpoint -> the ONNX files rclip loads (cached by checkpoint sha)."""
    ckpt, sha = vit_b32_checkpoint()
    where = driver("paths", str(DATADIR))
    stamp = DATADIR / "exported-from.txt"
    if stamp.exists() and stamp.read_text() == sha and Path(where["visual"]).exists():
        return {"cached": True}
    onnx_pkgs = CACHE / "onnx-pkgs"
    try:
        import onnx  # noqa: F401
    except ImportError:
        if not onnx_pkgs.exists():
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(onnx_pkgs),
                            "--no-deps", "onnx", "protobuf", "ml_dtypes"], check=True)
        sys.path.append(str(onnx_pkgs))
    import open_clip
    import torch
    from safetensors.torch import load_file

    model = open_clip.create_model("ViT-B-32", pretrained=None)
    model.load_state_dict(load_file(str(ckpt)), strict=True)
    model.eval()

    class Visual(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m.encode_image(x)

    class Textual(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, t):
            return self.m.encode_text(t)

    Path(where["visual"]).parent.mkdir(parents=True, exist_ok=True)
    dyn = {"input": {0: "n"}, "output": {0: "n"}}
    torch.backends.mha.set_fastpath_enabled(False)  # the fused MHA kernel has no ONNX form
    with torch.no_grad():
        torch.onnx.export(Visual(model), (torch.randn(2, 3, 224, 224),), where["visual"],
                          input_names=["input"], output_names=["output"], dynamic_axes=dyn,
                          opset_version=17, dynamo=False)
        tok = open_clip.get_tokenizer("ViT-B-32")(["a photo of a dog", "two"])
        torch.onnx.export(Textual(model), (tok,), where["textual"], input_names=["input"],
                          output_names=["output"], dynamic_axes=dyn, opset_version=17,
                          dynamo=False)
        x = torch.randn(2, 3, 224, 224)
        ref_in, ref_out = CACHE / "onnx-ref-in.npy", CACHE / "onnx-ref-out.npy"
        np.save(ref_in, x.numpy())
        np.save(ref_out, model.encode_image(x).numpy())
    vocab = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    Path(where["vocab"]).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(vocab, where["vocab"])
    check = driver("verify", str(DATADIR), str(ref_in), str(ref_out))
    if check["max_abs_diff_visual"] > 1e-3:
        raise RuntimeError(f"ONNX export differs from torch: {check}")
    stamp.write_text(sha)
    return check


def mixed_folder(smoke: bool) -> Path:
    sets = datasets(smoke)
    web = sets["web 0.5 MP JPEG"][1]
    cam = sets["camera 12 MP JPEG"][1]
    n_web, n_cam = (16, 2) if smoke else (200, 24)
    folder = CACHE / "data" / ("smoke" if smoke else "full") / "rclip-mix"
    folder.mkdir(parents=True, exist_ok=True)
    for p in web[:n_web] + cam[:n_cam]:
        dst = folder / f"{p.parent.name}-{p.name}"
        if not dst.exists():
            os.link(p, dst)
    return folder


def ours_index(enc, spec, folder: Path) -> tuple[float, int, Path]:
    from app.settings import Settings
    from app.wiring import tuning_for
    from indexer.indexing import Indexer
    from indexer.library import Library

    tune = tuning_for("cpu", Settings())
    libdir = Path(tempfile.mkdtemp(prefix="vs-rclip-lib-", dir=CACHE))
    with Library.open(libdir, spec) as lib:
        rep = Indexer(lib, enc, workers=tune.workers, batch_size=tune.batch_size).run([folder])
    return rep.embedded_files / rep.seconds, rep.embedded_files, libdir


def ours_query(enc, spec, libdir: Path, n: int) -> tuple[list[float], int]:
    import time

    from indexer.library import Library
    from indexer.search import Searcher

    texts = ["a dog running on the beach", "sunset over the mountains", "birthday cake",
             "my passport photo", "whiteboard with meeting notes", "a red bicycle"]
    with Library.open(libdir, spec) as lib:
        s = Searcher(lib, enc)
        s.search(texts[0], k=10)
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            s.search(texts[i % len(texts)], k=10)
            times.append((time.perf_counter() - t0) * 1000)
        return times, lib.vectors.count()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--setup", action="store_true", help="create bench/.venv-rclip and exit")
    ap.add_argument("--rounds", type=int, default=None, help="index runs per tool (best kept)")
    ap.add_argument("--big", type=int, default=None, help="items for the large query table")
    args = ap.parse_args(argv)
    if args.setup:
        setup()
        return 0
    if not PY.exists():
        msg = "rclip venv missing: run `python bench/vs_rclip.py --setup` first"
        if args.smoke:
            print(f"# vs_rclip --smoke skipped: {msg}")
            return 0
        raise SystemExit(msg)

    print_machine("Magpie vs rclip (bench/vs_rclip.py" + (" --smoke)" if args.smoke else ")"))
    rounds = args.rounds or (1 if args.smoke else 2)
    big = args.big or (2000 if args.smoke else 100_000)
    n_q = 10 if args.smoke else 60
    DATADIR.mkdir(parents=True, exist_ok=True)
    with Timer() as t:
        info = export_onnx()
    print(f"# rclip model: our ViT-B-32 random weights exported to ONNX ({info}, {t.s:.1f} s)")
    rclip_version = subprocess.run([str(PY), "-c", "import importlib.metadata as m;"
                                    "print(m.version('rclip'), m.version('onnxruntime'))"],
                                   capture_output=True, text=True).stdout.split()
    print(f"# rclip {rclip_version[0]} (onnxruntime {rclip_version[1]})")
    folder = mixed_folder(args.smoke)
    n_files = len(list(folder.iterdir()))
    enc, spec = load_vit_b32("cpu")

    ours, theirs, libdirs = [], [], []
    for r in range(rounds):  # alternate so drifting load hits both alike
        rate, n, libdir = ours_index(enc, spec, folder)
        ours.append(rate)
        libdirs.append(libdir)
        res = driver("index", str(folder), str(DATADIR))
        theirs.append(res["rate"])
        print(f"  round {r + 1}: magpie {rate:.2f} files/s ({n} files), "
              f"rclip {res['rate']:.2f} files/s ({res['files']} files)", flush=True)
    rows = [[f"{n_files} files (web 0.5 MP + 12 MP JPEG)", max(ours), max(theirs),
             max(ours) / max(theirs)]]
    table(["folder", "Magpie files/s", "rclip files/s", "ratio (Magpie / rclip)"], rows,
          f"Index rate, best of {rounds} alternating runs")

    # queries at the folder's size
    q_rows = []
    our_t, our_n = ours_query(enc, spec, libdirs[-1], n_q)
    their = driver("query", str(folder), str(DATADIR), str(n_q))
    q_rows.append([our_n, percentile(our_t, 50), percentile(our_t, 99),
                   percentile(their["times_ms"], 50), percentile(their["times_ms"], 99),
                   percentile(their["times_ms"], 50) / percentile(our_t, 50),
                   percentile(their["encode_ms"], 50)])
    # and at `big` items: the same synthetic vectors in both
    from query_latency import build_library

    dest = CACHE / ("query-smoke" if args.smoke else f"query-{big}")
    build_library(dest, big, spec, reuse=True)
    our_t, our_n = ours_query(enc, spec, dest / "lib", n_q)
    their = driver("query", str(folder), str(DATADIR), str(max(5, n_q // 3)),
                   str(dest / "vectors.npy"), "/photos")
    q_rows.append([our_n, percentile(our_t, 50), percentile(our_t, 99),
                   percentile(their["times_ms"], 50), percentile(their["times_ms"], 99),
                   percentile(their["times_ms"], 50) / percentile(our_t, 50),
                   percentile(their["encode_ms"], 50)])
    table(["items", "Magpie p50 ms", "Magpie p99 ms", "rclip p50 ms", "rclip p99 ms",
           "ratio (rclip / Magpie p50)", "rclip text encode alone ms"], q_rows,
          "Text query latency, warm model (Magpie: Searcher.search hybrid k=10; "
          "rclip: RClip.search top 10)")
    for d in libdirs:
        shutil.rmtree(d, ignore_errors=True)
    enc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
