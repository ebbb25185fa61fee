"""OCR word recall on generated receipts, screenshots, signs and slides (indexer/text_pictures.py).

    python bench/ocr_recall.py            # every installed font x sizes x rotations
    python bench/ocr_recall.py --smoke    # CI: two fonts, one size, 0 and 90 degrees (seconds)
    python bench/ocr_recall.py --gate-only  # only the first look: which pictures it passes

Each picture is drawn with a real font at a stated type size (px per em; headings 1.5x), with
Gaussian blur (0.6 px) and noise (sigma 6), dark-on-light or light-on-dark (signs always, other
kinds 30%), then turned 0/90/180/270 degrees and read through the same code the indexer uses
(`ocr.has_text` first look, then `ocr.read_words`). A word counts as found when a search for
it would find the picture (`text_pictures.word_found`: folded, inside one line read);
"exact" is stricter: the word as drawn, space-separated. Words: tokens with 3+ letters/digits.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer import ocr  # noqa: E402
from indexer.text_pictures import (  # noqa: E402
    KINDS, draw, find_fonts, word_exact, word_found,
)


def run(fonts: dict[str, str | None], sizes: list[int], rotations: list[int],
        seeds: int, gate_only: bool = False) -> list[dict]:
    rows = []
    ocr.engine()
    for fname, fpath in fonts.items():
        for size in sizes:
            for rot in rotations:
                for seed in range(seeds):
                    # one kind per cell, cycling, so every kind meets every font and rotation
                    kind = KINDS[(hash_cell(fname, size, rot) + seed) % len(KINDS)]
                    pic = draw(kind, fpath, size, rotation=rot, seed=seed)
                    pixels = np.asarray(pic.image.convert("RGB"))
                    t = time.perf_counter()
                    gate = ocr.has_text(pixels)
                    read = gate and not gate_only
                    lines = [ln.text for ln in ocr.read_words(pixels)] if read else []
                    dt = time.perf_counter() - t
                    words = pic.words
                    rows.append({
                        "font": fname, "size": size, "rot": rot, "kind": kind,
                        "words": len(words), "gate": gate, "seconds": dt,
                        "found": sum(word_found(w, lines) for w in words),
                        "exact": sum(word_exact(w, lines) for w in words),
                        "missed": [w for w in words if not word_found(w, lines)],
                    })
    return rows


def hash_cell(*parts: object) -> int:
    return sum(ord(c) for c in "-".join(map(str, parts)))


def table(rows: list[dict], key: str, title: str) -> None:
    groups: dict = defaultdict(lambda: [0, 0, 0, 0])
    for r in rows:
        g = groups[r[key]]
        g[0] += r["words"]
        g[1] += r["found"]
        g[2] += r["exact"]
        g[3] += 1
    print(f"\n{title}")
    print(f"{key:<28} {'pictures':>8} {'words':>6} {'found':>7} {'exact':>7}")
    for k in sorted(groups, key=str):
        w, f, e, n = groups[k]
        print(f"{str(k):<28} {n:>8} {w:>6} {100 * f / max(w, 1):>6.1f}% {100 * e / max(w, 1):>6.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="two fonts, one size, 0/90 degrees")
    ap.add_argument("--sizes", default="12,16,20,28,40")
    ap.add_argument("--rotations", default="0,90,180,270")
    ap.add_argument("--seeds", type=int, default=1, help="pictures per font/size/rotation")
    ap.add_argument("--fonts", default="", help="comma-separated font names (default: all)")
    ap.add_argument("--gate-only", action="store_true",
                    help="only the first look: which pictures it would pass on to be read")
    args = ap.parse_args()
    fonts = find_fonts()
    if args.fonts:
        fonts = {k: v for k, v in fonts.items() if k in args.fonts.split(",")}
    sizes = [int(s) for s in args.sizes.split(",")]
    rotations = [int(r) for r in args.rotations.split(",")]
    if args.smoke:
        fonts = dict(list(fonts.items())[:1] + [("pillow", None)])
        sizes, rotations = [24], [0, 90]
    started = time.perf_counter()
    rows = run(fonts, sizes, rotations, args.seeds, args.gate_only)
    if args.gate_only:
        for size in sizes:
            cells = [r for r in rows if r["size"] == size]
            shut = [(r["font"], r["rot"], r["kind"]) for r in cells if not r["gate"]]
            print(f"{size:>3} px: the first look passed {len(cells) - len(shut)} of {len(cells)}"
                  + (f"; shut out {shut}" if shut else ""))
        return
    for r in rows:
        r["size_rot"] = f"{r['size']:>3}px {r['rot']:>3}deg"
        r["font_size"] = f"{r['font']} {r['size']:>3}px"
        r["font_rot"] = f"{r['font']} {r['rot']:>3}deg"
    table(rows, "font_size", "word recall per font and type size (all rotations)")
    table(rows, "size_rot", "word recall per type size and rotation (all fonts)")
    table(rows, "font_rot", "word recall per font and rotation (all sizes)")
    table(rows, "kind", "word recall per kind of picture")
    big = [r for r in rows if r["size"] >= 20]
    words = sum(r["words"] for r in big)
    found = sum(r["found"] for r in big)
    secs = [r["seconds"] for r in rows]
    print(f"\n>= 20 px: {found}/{words} words found ({100 * found / max(words, 1):.1f}%); "
          f"gate said 'no text' on {sum(not r['gate'] for r in rows)} of {len(rows)} pictures; "
          f"read time median {np.median(secs):.2f} s, max {max(secs):.2f} s per picture; "
          f"total {time.perf_counter() - started:.0f} s")
    missed = [(r["font"], r["size"], r["rot"], m) for r in big for m in r["missed"]]
    if missed:
        print("missed at >= 20 px (first 30):", missed[:30])


if __name__ == "__main__":
    main()
