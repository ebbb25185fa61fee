"""Reproduce the cutoff and fusion constants of indexer/search.py on the tuning set only.

    python bench/sweep_cutoff.py                  # shapes-tune (tiny-shapes), every grid below
    python bench/sweep_cutoff.py --smoke          # a smaller collection

The library is indexed once; each setting is evaluated with bench/eval_search.evaluate and
printed as one row (visual nDCG@10 / standout precision / recall, note-phrase precision,
nonsense false-standout rate). The shipped values are marked with *. Held-out sets
(shapes-heldout, digits-heldout, null) are never used here.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import eval_search as E  # noqa: E402
from indexer import search as S  # noqa: E402
from indexer.indexing import Indexer  # noqa: E402
from indexer.library import Library  # noqa: E402
from indexer.search import Searcher  # noqa: E402

GRIDS = {
    "STANDOUT_Z": [2.0, 2.25, 2.5, 2.75, 3.0],
    "BREAK_RATIO": [4.0, 6.0, 8.0],
    "REL_SCALE": [0.25, 0.5, 1.0],
    "NAME_TRUST": [0.0, 0.25, 0.5, 0.75, 1.0],
    "NEAR_PER_WORD": [1, 2, 3, 5],
}


def row(name: str, value, rows: dict[str, E.Row], shipped: bool) -> str:
    v, p, n = rows.get("visual"), rows.get("note-phrase"), rows.get("nonsense")
    cells = [f"{E._mean(v.ndcg):.3f}", f"{E._mean(v.prec):.3f}", f"{E._mean(v.rec):.3f}",
             f"{E._mean(p.prec):.3f}" if p else "–", f"{E._mean(n.false_standout):.0%}" if n else "–"]
    return f"| {name} = {value}{' *' if shipped else ''} | " + " | ".join(cells) + " |"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    enc = E.tiny_encoder(E.TINY_SHAPES)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "files"
        queries = E.build_shapes(folder, False, *((96, 12) if args.smoke else (320, 36)))
        with Library.open(Path(tmp) / "lib", E.TINY_SHAPES) as lib:
            Indexer(lib, enc, workers=1).run([folder])
            print("| setting | visual nDCG@10 | visual precision | visual recall | "
                  "note-phrase precision | nonsense false-standout |")
            print("|---|---|---|---|---|---|")
            for name, values in GRIDS.items():
                shipped = getattr(S, name)
                for value in values:
                    setattr(S, name, value)
                    print(row(name, value, E.evaluate(Searcher(lib, enc), queries),
                              value == shipped), flush=True)
                setattr(S, name, shipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
