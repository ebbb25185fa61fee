"""Whole processes as a user runs them, Magpie against rclip, interleaved: issue 12's table.

    python bench/cold_start.py                     # 2,000 items/files, 5 pairs per row
    python bench/cold_start.py --before DIR        # also time another Magpie tree (e.g. the
                                                   # commit before this work, `git worktree add`)
    python bench/cold_start.py --files 16 --runs 3    # on a busy box: small rescan folder

The searched library holds the same synthetic CLIP-like vectors in both tools (query_latency's
builder; rclip rows inserted into its own table, as bench/vs_rclip.py does), so it needs no
model run to build. The rescanned folder is N real small JPEGs indexed once by each tool.

Each figure is one process from start to exit, timed by `/usr/bin/time -f "%e %M"` (wall
seconds, peak RSS of the process), commands run in turn A B A B … so a drifting load hits both
alike; medians are quoted, with the load average before and after each row. Setup (not timed):
a folder of N small JPEGs, indexed once by each tool with the same random-weight ViT-B-32
(Magpie: bench/_common.py's checkpoint, pinned by its sha256 in a tiny wrapper that replaces
the real pin; rclip: the same weights exported to ONNX by bench/vs_rclip.py).

Rows: a text search over the library (rclip: `rclip -n`, no re-scan); a rescan with
nothing changed (Magpie `index`; rclip has no index-only command, so its row is a plain
`rclip QUERY`: re-scan + search). Magpie runs with its text export cached (made by the setup
index, as after any first index) and, as "torch text", with MAGPIE_TEXT_RUNTIME=torch.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH, CACHE, ROOT, print_machine, table, vit_b32_checkpoint  # noqa: E402

RCLIP_PY = BENCH / ".venv-rclip" / "bin" / "python"
QUERY = "a dog running on the beach"

# Magpie's CLI with the pinned ViT-B-32 replaced by the random-weight checkpoint (same
# architecture and sizes; real weights can't be downloaded here). Everything else is the CLI.
WRAPPER = """
import dataclasses, os, sys
sys.path.insert(0, os.environ["BENCH_MAGPIE_ROOT"])
import indexer.specs as specs
spec = dataclasses.replace(specs.VIT_B_32, sha256=os.environ["BENCH_VIT_SHA"])
specs.VIT_B_32 = spec
specs.SPECS[spec.name] = spec
sys.argv = ["magpie", *sys.argv[1:]]
from app.main import main
sys.exit(main())
"""
RCLIP_WRAPPER = """
import sys
import rclip.utils.preprocess as pp
pp.IMAGE_SIZE = 224  # the exported ViT-B-32 runs at 224 (rclip ships ViT-B-32-256)
from rclip.main import main
sys.argv = ["rclip", *sys.argv[1:]]
main()
"""


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg()[:1])


def timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    """(wall s, peak RSS MB) of one whole process."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        out = subprocess.run(["/usr/bin/time", "-o", tf.name, "-f", "%e %M", *cmd], env=env,
                             cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, timeout=900)
        if out.returncode != 0:
            raise RuntimeError(f"{cmd} failed ({out.returncode}): {out.stderr[-2000:]}")
        wall, rss_kb = tf.read().split()[-2:]
    return float(wall), float(rss_kb) / 1024


def make_folder(n: int) -> Path:
    from PIL import Image

    folder = CACHE / "data" / f"cold-{n}"
    if folder.exists() and len(list(folder.iterdir())) == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    import numpy as np

    rng = np.random.default_rng(0)
    for i in range(n):
        px = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
        img = Image.fromarray(px).resize((160, 120), Image.BICUBIC)
        img.save(folder / f"IMG_{i:05d}.jpg", quality=85)
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=2000, help="items in the searched library")
    ap.add_argument("--files", type=int, default=2000, help="real files for the rescan row")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--before", type=Path, help="another Magpie source tree to time as 'before'")
    args = ap.parse_args(argv)
    if not RCLIP_PY.exists():
        raise SystemExit("rclip venv missing: run `python bench/vs_rclip.py --setup` first")
    import vs_rclip
    from query_latency import build_library

    print_machine(f"Whole processes, Magpie vs rclip (bench/cold_start.py --items {args.items} "
                  f"--files {args.files})")
    ckpt, sha = vit_b32_checkpoint()
    vs_rclip.DATADIR.mkdir(parents=True, exist_ok=True)
    vs_rclip.export_onnx()
    from indexer.specs import VIT_B_32

    spec = dataclasses.replace(VIT_B_32, sha256=sha)
    work = CACHE / "cold"
    work.mkdir(parents=True, exist_ok=True)

    # the searched library: the same synthetic CLIP-like vectors in both tools
    syn = work / f"syn-{args.items}"
    build_library(syn, args.items, spec, reuse=True)
    photos = syn / "photos"  # rclip searches the folder it runs in: its rows live under it
    photos.mkdir(exist_ok=True)
    syn_data = work / f"rclip-syn-{args.items}"
    if not (syn_data / "db.sqlite3").exists():
        _copy_models(vs_rclip.DATADIR, syn_data)
        vs_rclip.driver("query", str(photos), str(syn_data), "1", str(syn / "vectors.npy"),
                        str(photos))
    # the rescanned folder: real files, indexed once by each tool
    folder = make_folder(args.files)
    real_data = work / f"rclip-real-{args.files}"
    if not (real_data / "db.sqlite3").exists():
        _copy_models(vs_rclip.DATADIR, real_data)
        vs_rclip.driver("index", str(folder), str(real_data), timeout=7200)
    real_lib = work / f"magpie-real-{args.files}"

    base_env = {**os.environ, "HF_HUB_OFFLINE": "1", "MAGPIE_WEIGHTS": str(ckpt),
                "BENCH_VIT_SHA": sha, "MAGPIE_DEVICE": "cpu"}
    base_env.pop("MAGPIE_TEXT_RUNTIME", None)
    rclip = [str(RCLIP_PY), "-c", RCLIP_WRAPPER]
    magpie = [sys.executable, "-c", WRAPPER]
    trees = {"after": ROOT}
    if args.before:
        trees["before"] = args.before.resolve()
    envs = {}
    for name, tree in trees.items():
        envs[name] = {**base_env, "BENCH_MAGPIE_ROOT": str(tree),
                      "MAGPIE_CACHE_DIR": str(work / f"cache-{name}"),
                      "MAGPIE_DATA_DIR": str(work / f"data-{name}")}
    if not (real_lib / "magpie-library.json").exists():  # (also makes the after tree's export)
        tmp = real_lib.with_name(real_lib.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(magpie + ["index", str(folder), "--library", str(tmp), "--quiet"],
                       env=envs["after"], check=True, cwd=ROOT, timeout=7200)
        tmp.rename(real_lib)

    rows = []
    heads = ["what", "Magpie wall s", "Magpie peak MB", "rclip wall s", "rclip peak MB",
             "wall ratio Magpie/rclip (median of pairs)", "load 1-min"]

    def row(label: str, a: tuple[list[str], dict, Path], b: tuple[list[str], dict, Path]) -> None:
        la = loadavg()
        ta, tb = [], []
        timed(*a), timed(*b)  # warm-up: page cache, as a user's second run
        for _ in range(args.runs):
            ta.append(timed(*a))
            tb.append(timed(*b))
        med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
        ratio = statistics.median(x[0] / y[0] for x, y in zip(ta, tb))
        rows.append([label, med(ta, 0), med(ta, 1), med(tb, 0), med(tb, 1), ratio,
                     f"{la} → {loadavg()}"])
        table(heads, rows[-1:])

    r_search = (rclip + ["-n", "-t", "10", QUERY], {**base_env, "RCLIP_DATADIR": str(syn_data)},
                photos)
    r_rescan = (rclip + ["-t", "10", QUERY], {**base_env, "RCLIP_DATADIR": str(real_data)},
                folder)
    for name, env in envs.items():
        tree = trees[name]
        search = magpie + ["search", QUERY, "--library", str(syn / "lib"), "-k", "10"]
        row(f"search, {args.items} items ({name})", (search, env, tree), r_search)
        if name == "after":
            row(f"search, {args.items} items (after, MAGPIE_TEXT_RUNTIME=torch)",
                (search, {**env, "MAGPIE_TEXT_RUNTIME": "torch"}, tree), r_search)
        rescan = magpie + ["index", "--library", str(real_lib), "--quiet"]
        row(f"no-change rescan, {args.files} files ({name})", (rescan, env, tree), r_rescan)
    table(heads, rows, f"Whole processes, median of {args.runs} interleaved pairs")
    return 0


def _copy_models(src: Path, dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("db.sqlite3*"))


if __name__ == "__main__":
    sys.exit(main())
