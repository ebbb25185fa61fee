"""Reproduce the cutoff and fusion constants of indexer/search.py on the tuning set only, then
check the shipped values, untouched, on tiny-digits held-out.

    python bench/sweep_cutoff.py                  # shapes-tune (tiny-shapes), every grid below
    python bench/sweep_cutoff.py --smoke          # a smaller collection
    python bench/sweep_cutoff.py --only NAME_TRUST,REL_SCALE

The library is indexed once; each constant is varied alone around the shipped values (the
others stay shipped), evaluated with bench/eval_search.evaluate and printed as one row. The
score is the mean of: visual nDCG@10, visual standout F1, name and file-name nDCG@10,
note-phrase standout precision, 1 - the nonsense false-standout rate, and the standout recall
of a small library (the demo folder at 96 pictures: one or two pictures per colour x shape,
the lone matches a large collection never has). The shipped value is
marked *, the best of each grid <-; a shipped value within 0.005 of the best is kept (the
grid is flat there). Held-out sets are never used to choose: digits-heldout is evaluated once,
with the shipped constants, at the end (and null is measured by bench/eval_search.py).
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

GRIDS: dict[str, list] = {  # the shipped value and one step either side
    "STANDOUT_Z": [2.25, 2.5, 2.75],
    "BREAK_FLOOR_Z": [2.0, 2.25, 2.5],
    "BREAK_LOW_Z": [1.0, 1.5, 2.0],
    "BREAK_RATIO": [4.0, 6.0, 8.0],
    "STRONG_BREAK_RATIO": [10.0, 30.0, 60.0],
    "BREAK_MIN_Z": [0.05, 0.1, 0.2],
    "CHANCE_GROUP_P": [0.2, 0.5, 0.8],
    "NONSENSE_COS": [0.8, 0.9, 0.95, 1.01],  # 1.01: never
    "REL_SCALE": [0.25, 0.5, 1.0],
    "NAME_TRUST": [0.25, 0.5, 0.75],
    "NAME_CONFIRM_SHARE": [0.25, 0.5, 0.75],
    "NEAR_PER_WORD": [2, 3, 5],
    "NOTE_VECTOR_WEIGHT": [0.75, 1.0],
    "KEYWORD_RELEVANCE[1]": [0.1, 0.3, 0.5],  # all the words, but scattered
}
HEADER = ("| setting | visual nDCG@10 | visual precision | visual recall | name nDCG@10 | "
          "file-name nDCG@10 | note-phrase precision | nonsense false-standout | "
          "small-library recall | score |")
RULE = "|---|---|---|---|---|---|---|---|---|---|"


def _get(name: str):
    if name.endswith("]"):
        base, key = name[:-1].split("[")
        return getattr(S, base)[int(key)]
    return getattr(S, name)


def _set(name: str, value) -> None:
    if name.endswith("]"):
        base, key = name[:-1].split("[")
        getattr(S, base)[int(key)] = value
    else:
        setattr(S, name, value)


def score(rows: dict[str, E.Row], small: E.Row | None = None) -> float:
    v = rows["visual"]
    p, r = E._mean(v.prec), E._mean(v.rec)
    parts = [E._mean(v.ndcg), 2 * p * r / (p + r) if p + r else 0.0]
    for kind in ("name", "file-name"):
        if kind in rows:
            parts.append(E._mean(rows[kind].ndcg))
    if "note-phrase" in rows:
        parts.append(E._mean(rows["note-phrase"].prec))
    if "nonsense" in rows:
        parts.append(1 - E._mean(rows["nonsense"].false_standout))
    if small is not None:
        parts.append(E._mean(small.rec))
    return sum(parts) / len(parts)


def cells(rows: dict[str, E.Row], small: E.Row | None = None) -> list[str]:
    def m(kind, attr, fmt="{:.3f}"):
        r = rows.get(kind)
        return fmt.format(E._mean(getattr(r, attr))) if r else "–"
    return [m("visual", "ndcg"), m("visual", "prec"), m("visual", "rec"), m("name", "ndcg"),
            m("file-name", "ndcg"), m("note-phrase", "prec"),
            m("nonsense", "false_standout", "{:.0%}"),
            f"{E._mean(small.rec):.3f}" if small else "–", f"{score(rows, small):.3f}"]


def small_library(tmp: Path):
    """The demo folder at 96 pictures (tests/conftest.py's shapes_folder) and one visual
    query per colour x shape, graded by what each picture shows."""
    from magpie_demo.shapes import COLORS, SHAPES, make_demo_folder

    items = make_demo_folder(tmp / "small" / "files", n_images=96, seed=7)
    queries = [E.Query(f"a {c} {s}", "visual", {i.path.name: 3 for i in items
                                                 if (i.color, i.shape) == (c, s)})
               for c in COLORS for s in SHAPES]
    enc = E.tiny_encoder(E.TINY_SHAPES)
    lib = Library.open(tmp / "small" / "lib", E.TINY_SHAPES)
    Indexer(lib, enc, workers=1).run([tmp / "small" / "files"])
    return lib, enc, [q for q in queries if q.grades]


def index(tmp: Path, name: str, smoke: bool):
    folder = tmp / name / "files"
    if name == "shapes-tune":
        spec = E.TINY_SHAPES
        queries = E.build_shapes(folder, False, *((96, 12) if smoke else (320, 36)))
    else:
        from indexer.specs import TINY_DIGITS

        spec = TINY_DIGITS
        queries = E.build_digits(folder, 10 if smoke else 30)
    enc = E.tiny_encoder(spec)
    lib = Library.open(tmp / name / "lib", spec)
    Indexer(lib, enc, workers=1).run([folder])
    return lib, enc, queries


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--only", help="comma-separated constants (default: every grid)")
    args = ap.parse_args()
    grids = {k: v for k, v in GRIDS.items() if not args.only or k in args.only.split(",")}
    with tempfile.TemporaryDirectory() as tmp:
        lib, enc, queries = index(Path(tmp), "shapes-tune", args.smoke)
        slib, senc, squeries = small_library(Path(tmp))
        print("shapes-tune (tuning set) and the 96-picture demo library:\n")
        print(HEADER)
        print(RULE)
        changed = []
        for name, values in grids.items():
            shipped = _get(name)
            results = []
            for value in values:
                _set(name, value)
                rows = E.evaluate(Searcher(lib, enc), queries)
                small = E.evaluate(Searcher(slib, senc), squeries)["visual"]
                results.append((value, rows, small))
            _set(name, shipped)
            best = max(score(r, sm) for _, r, sm in results)
            kept = next((score(r, sm) for v, r, sm in results if v == shipped), None)
            for value, rows, small in results:
                mark = ((" *" if value == shipped else "")
                        + (" <-" if score(rows, small) == best else ""))
                print(f"| {name} = {value}{mark} | " + " | ".join(cells(rows, small)) + " |",
                      flush=True)
            if kept is None or kept < best - 0.005:
                changed.append(name)
        lib.close()
        slib.close()
        print()
        print("every shipped value is the best of its grid (within 0.005)" if not changed else
              f"NOT reproduced (a better value exists): {', '.join(changed)}")
        lib, enc, queries = index(Path(tmp), "digits-heldout", args.smoke)
        print("\ndigits-heldout (tiny-digits, never tuned on), shipped constants:\n")
        print(HEADER)
        print(RULE)
        print("| shipped | " + " | ".join(cells(E.evaluate(Searcher(lib, enc), queries))) + " |")
        lib.close()
    return 0 if not changed else 1


if __name__ == "__main__":
    sys.exit(main())
