"""Peak memory of decoding one picture in a fresh process (issue #10 item 2).

Small files can claim huge pictures: a 12000×12000 semi-transparent RGBA PNG is ~0.6 MB on
disk and 144 MP in memory. This generates such files, then decodes each in its own fresh
Python process (`indexer.decode.decode_image_job`, as a decode worker runs it) and prints
that process's peak resident memory, read from the kernel's accounting of the finished child
(`os.wait4` → ru_maxrss), next to a tiny picture's for the interpreter + Pillow baseline.

    PYTHONPATH=$PWD python bench/decode_memory.py [--size 224] [--side 12000] [--worker]

`--worker` first applies the decode worker's memory cap (`decode.limit_worker_memory`, the
pool initializer) the way the pool does, to show that an overrun costs one file.
Run it niced on a shared machine; it needs about 1 GB free to write the files.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import sys, time
from indexer import decode
if sys.argv[3] == "1":
    decode.limit_worker_memory(decode.DECODE_BUDGET_BYTES)
t = time.perf_counter()
pixels, taken, error = decode.decode_image_job(sys.argv[1], int(sys.argv[2]))
print(f"{time.perf_counter() - t:.2f}|{error or 'ok'}")
"""


def make_rgba_png(path: Path, side: int) -> None:
    """Semi-transparent shapes on a half-transparent ground: compresses ~1000:1."""
    im = Image.new("RGBA", (side, side), (200, 40, 40, 128))
    draw = ImageDraw.Draw(im)
    step = max(side // 12, 1)
    for i in range(0, side // 2, step):
        draw.rectangle((i, i, i + step // 2, side - i - 1), fill=(20, 90, 220, 200))
        draw.ellipse((i, side // 3, i + step, side // 3 + step), fill=(250, 230, 30, 60))
    im.save(path, optimize=False, compress_level=9)


def make_16bit_png(path: Path, side: int) -> None:
    """A 16-bit greyscale ramp (a scan or a microscope frame): mode I;16 in Pillow."""
    row = (np.arange(side, dtype=np.uint32) * 65535 // max(side - 1, 1)).astype(np.uint16)
    arr = np.empty((side, side), np.uint16)
    arr[:] = row
    arr[side // 4 : side // 2, side // 4 : side // 2] = 40000
    Image.fromarray(arr).save(path, compress_level=9)
    del arr


def decode_in_fresh_process(path: Path, size: int, worker: bool) -> tuple[float, str, float]:
    """(peak RSS MB, result, decode seconds) of one child process that decodes `path`."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(size),
                             "1" if worker else "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    line = out.strip().splitlines()[-1] if out.strip() else f"exit {proc.returncode}"
    seconds, _, result = line.partition("|")
    try:
        secs = float(seconds)
    except ValueError:
        secs, result = float("nan"), line
    return usage.ru_maxrss / 1024, result, secs  # ru_maxrss is KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224, help="model input side (ViT-B-32: 224)")
    ap.add_argument("--side", type=int, default=12000, help="side of the generated pictures")
    ap.add_argument("--worker", action="store_true", help="apply the worker memory cap first")
    ap.add_argument("--make", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make:
        d = Path(args.make)
        Image.new("RGB", (64, 64), (10, 120, 200)).save(d / "tiny.png")
        make_rgba_png(d / "rgba.png", args.side)
        make_16bit_png(d / "grey16.png", args.side)
        return
    with tempfile.TemporaryDirectory(prefix="magpie-decode-mem-") as tmp:
        d = Path(tmp)
        files = [("tiny RGB PNG (baseline)", d / "tiny.png"),
                 (f"{args.side}² RGBA PNG, semi-transparent", d / "rgba.png"),
                 (f"{args.side}² 16-bit greyscale PNG", d / "grey16.png")]
        # made in a child: Linux carries a process's peak RSS across fork+exec, so this
        # process must stay small for its decode children's peaks to be their own
        subprocess.run([sys.executable, __file__, "--make", str(d), "--side", str(args.side)],
                       check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        print(f"load average {os.getloadavg()[0]:.2f}, model size {args.size}, "
              f"worker cap {'on' if args.worker else 'off'}")
        print("| file | on disk | peak RSS | decode s | result |")
        print("| --- | ---: | ---: | ---: | --- |")
        for label, path in files:
            rss, result, secs = decode_in_fresh_process(path, args.size, args.worker)
            kb = path.stat().st_size / 1024
            print(f"| {label} | {kb:,.0f} KB | {rss:,.0f} MB | {secs:.2f} | {result} |",
                  flush=True)


if __name__ == "__main__":
    main()
