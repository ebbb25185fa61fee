"""Search quality on a generated, labelled collection: vector vs keyword vs hybrid, and the
adaptive cutoff vs a fixed top-10.

The collection: pictures of coloured shapes (the bundled tiny-shapes model knows them) whose
file names are neutral (IMG_0042.jpg), helpful ("red circle 3.png") or misleading (a red
circle named "blue-square.jpg"); pictures of random shapes with document-like names
("invoice_2023_04.png"); and notes — some describe shapes, most are about everyday things with
rare words the model never saw. Queries have known answers.

    python bench/eval_search.py            # full: 320 pictures, 60 notes
    python bench/eval_search.py --smoke    # small and fast, for CI
    python bench/eval_search.py --demo 2000,6000   # the cutoff on demo libraries: many
                                                   # matches per query (30 / 90 per class)
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.indexing import Indexer  # noqa: E402
from indexer.library import Library  # noqa: E402
from indexer.model import load_encoder  # noqa: E402
from indexer import search as search_module  # noqa: E402
from indexer.search import SearchRequest, Searcher  # noqa: E402
from indexer.shapes import COLORS, SHAPES, render_shape  # noqa: E402
from indexer.specs import TINY_SHAPES  # noqa: E402
from indexer.weights import verify_file  # noqa: E402

DOC_WORDS = ["invoice", "receipt", "passport", "warranty", "boarding pass", "lease",
             "payslip", "prescription"]
TOPICS = {
    "zucchini": "Grandma's zucchini bread: two cups of grated zucchini, flour, sugar, walnuts.",
    "plumber": "The plumber fixed the leaking pipe under the sink on Tuesday; he charged 90.",
    "marathon": "Training plan for the spring marathon: long run on Sundays, tempo on Wednesday.",
    "telescope": "Saw Saturn's rings through the new telescope from the balcony last night.",
    "sourdough": "Feed the sourdough starter twice a day; it smells of apples when it is happy.",
    "mortgage": "Call the bank about the mortgage rate before the fixed term ends in March.",
    "origami": "Folded an origami crane for Lily; the paper was too thick for the wings.",
    "glacier": "Hike to the glacier viewpoint takes three hours from the car park.",
    "saxophone": "Saxophone lesson moved to Thursday; practise the scales in B flat.",
    "allergy": "Tom's allergy list: peanuts, penicillin, cat hair. Keep the EpiPen in the bag.",
    "vaccine": "The dog's rabies vaccine is due again in August, book the vet.",
    "chandelier": "The chandelier in the hall needs six new bulbs, the small candle kind.",
}


@dataclass
class Query:
    text: str
    relevant: set[str]
    kind: str  # "shape" | "document" | "note"


def build(folder: Path, n_pictures: int, n_docs: int, seed: int = 0) -> list[Query]:
    rng = random.Random(seed)
    classes = [(c, s) for c in COLORS for s in SHAPES]
    labels: dict[str, tuple[str, str]] = {}
    folder.mkdir(parents=True)
    for i in range(n_pictures):
        c, s = classes[i % len(classes)]
        roll = rng.random()
        if roll < 0.5:
            name = f"IMG_{i:04d}.jpg"
        elif roll < 0.85:
            name = f"{c} {s} {i}.jpg"
        else:  # misleading: named after another class
            c2, s2 = rng.choice([k for k in classes if k != (c, s)])
            name = f"{c2}-{s2}-{i}.jpg"
        render_shape(c, s, random.Random(f"eval-{seed}-{i}"), size=160).save(folder / name)
        labels[name] = (c, s)
    docs: dict[str, str] = {}
    for i in range(n_docs):
        word = DOC_WORDS[i % len(DOC_WORDS)]
        name = f"{word.replace(' ', '_')}_{2020 + i % 5}_{i:02d}.png"
        c, s = rng.choice(classes)
        render_shape(c, s, random.Random(f"doc-{seed}-{i}"), size=160).save(folder / name)
        docs[name] = word
        labels[name] = (c, s)
    notes = folder / "notes"
    notes.mkdir()
    topic_files: dict[str, str] = {}
    for word, text in TOPICS.items():
        (notes / f"note-{len(topic_files):02d}.txt").write_text(text)
        topic_files[word] = f"note-{len(topic_files):02d}.txt"
    shape_notes: dict[tuple[str, str], str] = {}
    for j, (c, s) in enumerate(rng.sample(classes, 8)):
        name = f"drawing-{j}.md"
        (notes / name).write_text(f"Today Mia drew a {c} {s} on the fridge door.")
        shape_notes[(c, s)] = name
    queries: list[Query] = []
    for c, s in classes:
        rel = {n for n, lab in labels.items() if lab == (c, s) and n not in docs}
        if (c, s) in shape_notes:
            rel.add(shape_notes[(c, s)])
        queries.append(Query(f"a {c} {s}", rel, "shape"))
    for word in DOC_WORDS:
        queries.append(Query(word, {n for n, w in docs.items() if w == word}, "document"))
    for word, fname in topic_files.items():
        queries.append(Query(word, {fname}, "note"))
    return queries


def metrics(ranked: list[str], relevant: set[str], k: int = 10) -> tuple[float, float]:
    top = ranked[:k]
    recall = len(set(top) & relevant) / min(len(relevant), k)
    rr = next((1.0 / (i + 1) for i, n in enumerate(ranked) if n in relevant), 0.0)
    return recall, rr


def demo_cutoff(sizes: list[int], k: int = 200) -> None:
    """Cutoff precision/recall on demo libraries, one query per colour x shape class."""
    from indexer.shapes import demo_labels, make_demo_folder

    enc = load_encoder(TINY_SHAPES, verify_file(TINY_SHAPES, TINY_SHAPES.bundled_path()))
    print("| demo library | matches per query | cutoff precision | cutoff recall | F1 | "
          "mean shown |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            make_demo_folder(Path(tmp) / "Pictures", n_images=n)
            labels = {str(p): v for p, v in demo_labels(Path(tmp) / "Pictures", n).items()}
            with Library.open(Path(tmp) / "lib", TINY_SHAPES) as lib:
                Indexer(lib, enc, workers=1).run([Path(tmp) / "Pictures"])
                s = Searcher(lib, enc)
                ps, rs, sizes_shown, per_class = [], [], [], []
                for c in COLORS:
                    for sh in SHAPES:
                        relevant = {p for p, v in labels.items() if v == (c, sh)}
                        page = s.run(SearchRequest(f"a {c} {sh}", k=k, mode="vector"))
                        cut = {r.open_path for r in page.results[: page.cutoff]}
                        ps.append(len(cut & relevant) / max(len(cut), 1))
                        rs.append(len(cut & relevant) / len(relevant))
                        if rs[-1] < 0.9:
                            print(f"  (a {c} {sh}: {len(cut & relevant)} of {len(relevant)} matches above the cut, {len(cut)} shown)")
                        sizes_shown.append(len(cut))
                        per_class.append(len(relevant))
        p, r = sum(ps) / len(ps), sum(rs) / len(rs)
        print(f"| {n:,} pictures | {sum(per_class) / len(per_class):.0f} | {p:.3f} | {r:.3f} | "
              f"{2 * p * r / (p + r):.3f} | {sum(sizes_shown) / len(sizes_shown):.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--sweep", action="store_true", help="try several standout thresholds")
    ap.add_argument("--demo", help="comma-separated demo library sizes: cutoff quality only")
    ap.add_argument("--no-break", action="store_true",
                    help="baseline: the fixed z threshold alone, no profile break")
    args = ap.parse_args()
    if args.no_break:
        search_module.BREAK_RATIO = float("inf")
    if args.demo:
        demo_cutoff([int(x) for x in args.demo.split(",")])
        return 0
    n_pictures, n_docs = (96, 16) if args.smoke else (320, 48)
    enc = load_encoder(TINY_SHAPES, verify_file(TINY_SHAPES, TINY_SHAPES.bundled_path()))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "collection"
        queries = build(folder, n_pictures, n_docs)
        t0 = time.perf_counter()
        with Library.open(Path(tmp) / "lib", TINY_SHAPES) as lib:
            Indexer(lib, enc, workers=1).run([folder])
            built = time.perf_counter() - t0
            s = Searcher(lib, enc)
            rows = {}
            for mode in ("vector", "keyword", "hybrid"):
                per_kind: dict[str, list[tuple[float, float]]] = {}
                for q in queries:
                    res = s.search(q.text, k=50, mode=mode)
                    names = [Path(r.path).name for r in res]
                    per_kind.setdefault(q.kind, []).append(metrics(names, q.relevant))
                    per_kind.setdefault("all", []).append(metrics(names, q.relevant))
                rows[mode] = per_kind
            sweep = {}
            for z in ([1.5, 2.0, 2.5] if args.sweep else [search_module.STANDOUT_Z]):
                search_module.STANDOUT_Z = z
                cut_p, cut_r, top_p, top_r, sizes = [], [], [], [], []
                for q in queries:
                    page = s.run(SearchRequest(q.text, k=50))
                    names = [Path(r.path).name for r in page.results]
                    cut = set(names[: page.cutoff])
                    top = set(names[:10])
                    sizes.append(len(cut))
                    cut_p.append(len(cut & q.relevant) / max(len(cut), 1))
                    cut_r.append(len(cut & q.relevant) / len(q.relevant))
                    top_p.append(len(top & q.relevant) / max(len(top), 1))
                    top_r.append(len(top & q.relevant) / len(q.relevant))
                sweep[z] = (cut_p, cut_r, sizes)
    kinds = ["shape", "document", "note", "all"]
    counts = {k: sum(1 for q in queries if q.kind == k) for k in kinds[:-1]}
    counts["all"] = len(queries)
    print(f"collection: {n_pictures + n_docs} pictures, {len(TOPICS) + 8} notes, "
          f"{len(queries)} queries; indexed in {built:.1f}s with tiny-shapes")
    print()
    print("| mode | " + " | ".join(f"{k} R@10 | {k} MRR" for k in kinds) + " |")
    print("|---|" + "---|---|" * len(kinds))
    for mode, per_kind in rows.items():
        cells = []
        for k in kinds:
            vals = per_kind.get(k, [])
            r = sum(v[0] for v in vals) / max(len(vals), 1)
            m = sum(v[1] for v in vals) / max(len(vals), 1)
            cells.append(f"{r:.3f} | {m:.3f}")
        print(f"| {mode} | " + " | ".join(cells) + " |")
    print(f"\n(queries per kind: {counts})\n")
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    print("| result set | precision | recall | F1 | mean size |")
    print("|---|---|---|---|---|")
    for z, (cp, cr, sz) in sweep.items():
        f1 = 2 * mean(cp) * mean(cr) / (mean(cp) + mean(cr))
        rule = ("z ≥ {z:g} only" if search_module.BREAK_RATIO == float("inf")
                else "profile break, else z ≥ {z:g}").format(z=z)
        print(f"| adaptive cutoff ({rule}) | {mean(cp):.3f} | {mean(cr):.3f} | {f1:.3f} | "
              f"{mean(sz):.1f} |")
    f1 = 2 * mean(top_p) * mean(top_r) / (mean(top_p) + mean(top_r))
    print(f"| fixed top-10 | {mean(top_p):.3f} | {mean(top_r):.3f} | {f1:.3f} | 10 |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
