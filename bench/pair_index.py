"""Index one folder with two commands in turn (A B A B …), whole processes: issue 12's rate rows.

    python bench/pair_index.py web                        # Magpie ViT-B-32 --no-ocr vs rclip
    python bench/pair_index.py png --a vit-b-32-int8:no-ocr
    python bench/pair_index.py web --a vit-b-32 --b vit-b-32:no-ocr   # what reading text costs
    python bench/pair_index.py DIR --pairs 5 --a vit-b-32:plan=1,1 --b vit-b-32:plan=2,2
    python bench/pair_index.py web --smoke                # CI: 8 pictures, 1 pair, no rclip

FOLDER is a directory, or `web` (200 web JPEGs 864×576), `png` (100 UI screenshots 1080p),
`camera` (40 camera JPEGs 4000×3000), made once under bench/.cache/data by bench/_common.py's
generators. A side is `rclip` (rclip 3.x from bench/.venv-rclip at 224 px on our weights
exported to ONNX, `python bench/vs_rclip.py --setup` first) or `MODEL[:opt…]` for Magpie's CLI
(`magpie index FOLDER --library FRESH --quiet`) with options `no-ocr`, `plan=W,T` (W decode
processes, T model threads instead of indexer/cpu_budget.py's plan), `spin=0|1` (ONNX Runtime
threads spin-wait or sleep), `root=PATH` (another Magpie source tree, e.g. the commit before).

Both tools get the same random-weight ViT-B-32 checkpoint (bench/_common.py; Magpie's pin is
replaced by its sha256, everything else is the real CLI). Every run starts from an empty
library / database; Magpie's ONNX exports are cached once beforehand (bench/.cache/pair-cache),
as after any first index. Each figure comes from GNU time (wall, user+sys, peak RSS of the
largest process); one warm-up run of each side is not counted; the ratio is taken pair by pair
and its median quoted, with the 1-minute load average before and after.
"""
from __future__ import annotations

import argparse
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

MAGPIE_WRAPPER = """
import dataclasses, os, sys
sys.path.insert(0, os.environ["BENCH_MAGPIE_ROOT"])
import indexer.specs as specs
sha = os.environ["BENCH_VIT_SHA"]
for name in ("vit-b-32", "vit-b-32-int8"):
    if name in specs.SPECS:
        specs.SPECS[name] = dataclasses.replace(specs.SPECS[name], sha256=sha)
specs.VIT_B_32 = specs.SPECS["vit-b-32"]
plan = os.environ.get("BENCH_PLAN")
if plan:
    import indexer.cpu_budget as cb
    w, t = map(int, plan.split(","))
    fixed = cb.CpuPlan(cb.usable_cores(), w + t, w, t)
    cb.current_plan = lambda *a, **k: fixed
if os.environ.get("BENCH_SPIN"):
    import indexer.image_runtime as ir
    ir.SPIN_WAIT = os.environ["BENCH_SPIN"] == "1"
if __name__ == "__main__":  # decode workers import this file again
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


def folder_for(name: str, smoke: bool) -> Path:
    if Path(name).is_dir():
        return Path(name)
    from _common import make_jpegs, make_screenshots

    n = {"web": 200, "png": 100, "camera": 40}[name]
    n = min(n, 8) if smoke else n
    folder = CACHE / "data" / f"pair-{name}-{n}"
    if name == "web":
        make_jpegs(folder, n, 864, 576, quality=85, noise=4.0, seed=1)
    elif name == "png":
        make_screenshots(folder, n)
    else:
        make_jpegs(folder, n, 4000, 3000, quality=92, noise=3.0, seed=4)
    return folder


class Side:
    """One command of the pair: builds a fresh run each time it is called."""

    def __init__(self, spec: str, work: Path, folder: Path, sha: str, ckpt: Path) -> None:
        self.spec, self.work, self.folder = spec, work, folder
        work.mkdir(parents=True, exist_ok=True)
        name, *opts = spec.split(":")
        self.rclip = name == "rclip"
        self.model = name
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        self.extra: list[str] = []
        root = ROOT
        for opt in opts:
            key, _, value = opt.partition("=")
            if key == "no-ocr":
                self.extra.append("--no-ocr")
            elif key == "plan":
                self.env["BENCH_PLAN"] = value
            elif key == "spin":
                self.env["BENCH_SPIN"] = value
            elif key == "root":
                root = Path(value).resolve()
            else:
                raise SystemExit(f"unknown option {opt!r} in {spec!r}")
        if self.rclip:
            self.data = work / "rclip-data"
            self.wrapper = work / "rclip_wrapper.py"
            self.wrapper.write_text(RCLIP_WRAPPER)
            self.env["RCLIP_DATADIR"] = str(self.data)
        else:
            self.wrapper = work / "magpie_wrapper.py"
            self.wrapper.write_text(MAGPIE_WRAPPER)
            self.env.update(BENCH_MAGPIE_ROOT=str(root), PYTHONPATH=str(root),
                            BENCH_VIT_SHA=sha, MAGPIE_WEIGHTS=str(ckpt), MAGPIE_DEVICE="cpu",
                            MAGPIE_CACHE_DIR=str(CACHE / "pair-cache"),
                            MAGPIE_DATA_DIR=str(work / "data"))
        self.lib = work / f"lib-{abs(hash(spec))}"

    def command(self) -> tuple[list[str], Path]:
        if self.rclip:
            (self.data / "db.sqlite3").unlink(missing_ok=True)
            return [str(RCLIP_PY), str(self.wrapper), "-t", "1", "a dog"], self.folder
        shutil.rmtree(self.lib, ignore_errors=True)
        return [sys.executable, str(self.wrapper), "index", str(self.folder), "--library",
                str(self.lib), "--quiet", "--model", self.model, *self.extra], ROOT


def timed(side: Side) -> tuple[float, float, float]:
    """(wall s, CPU s, peak MB) of one whole run of `side`."""
    cmd, cwd = side.command()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        out = subprocess.run(["/usr/bin/time", "-o", tf.name, "-f", "%e %U %S %M", *cmd],
                             env=side.env, cwd=cwd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, timeout=3600)
        if out.returncode != 0:
            raise SystemExit(f"{side.spec} failed ({out.returncode}): {out.stderr[-2000:]}")
        wall, user, system, rss_kb = tf.read().split()[-4:]
    return float(wall), float(user) + float(system), float(rss_kb) / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--a", default="vit-b-32:no-ocr")
    ap.add_argument("--b", default="rclip")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="CI: 8 pictures, 1 pair, no warm-up")
    args = ap.parse_args(argv)
    if args.smoke:
        args.pairs = 1
        if args.b == "rclip" and not RCLIP_PY.exists():
            args.b = "vit-b-32"  # CI has no rclip venv: Magpie with text reading against without
    folder = folder_for(args.folder, args.smoke)
    print_machine(f"bench/pair_index.py {args.folder}: A = {args.a}, B = {args.b}, "
                  f"{args.pairs} pairs")
    ckpt, sha = vit_b32_checkpoint()
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        work = Path(tmp)
        sides = [Side(s, work / str(i), folder, sha, ckpt) for i, s in enumerate((args.a, args.b))]
        for side in sides:
            if side.rclip:
                if not RCLIP_PY.exists():
                    raise SystemExit("rclip venv missing: run `python bench/vs_rclip.py --setup`")
                import vs_rclip

                vs_rclip.DATADIR.mkdir(parents=True, exist_ok=True)
                vs_rclip.export_onnx()
                shutil.copytree(vs_rclip.DATADIR, side.data)
        load_before = os.getloadavg()[0]
        if not args.smoke:
            for side in sides:  # warm-up (and, the first time, Magpie's exports)
                timed(side)
        runs: list[list[tuple[float, float, float]]] = [[], []]
        for _ in range(args.pairs):
            for i, side in enumerate(sides):
                runs[i].append(timed(side))
        load_after = os.getloadavg()[0]
    med = [[statistics.median(r[k] for r in rs) for k in range(3)] for rs in runs]
    wall_ratios = [a[0] / b[0] for a, b in zip(*runs)]
    cpu_ratios = [a[1] / b[1] for a, b in zip(*runs)]
    n = len(list(folder.iterdir()))
    rows = [[f"A {args.a}", f"{med[0][0]:.1f}", f"{med[0][1]:.1f}", f"{med[0][2]:.0f}",
             f"{n / med[0][0]:.1f}"],
            [f"B {args.b}", f"{med[1][0]:.1f}", f"{med[1][1]:.1f}", f"{med[1][2]:.0f}",
             f"{n / med[1][0]:.1f}"]]
    table(["side", "wall s", "CPU s", "peak MB", "files/s"], rows,
          title=f"{n} files in {folder}, medians of {args.pairs}")
    print(f"A/B wall {statistics.median(wall_ratios):.2f} ({min(wall_ratios):.2f}-"
          f"{max(wall_ratios):.2f}) -> A's rate {1 / statistics.median(wall_ratios):.2f}x B's; "
          f"A/B CPU {statistics.median(cpu_ratios):.2f}; load {load_before:.1f} -> "
          f"{load_after:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
