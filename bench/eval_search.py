"""Search quality with graded relevance, on three labelled libraries and two trained models.

    python bench/eval_search.py              # every set: the before/after table's rows
    python bench/eval_search.py --smoke      # smaller collections, no null model (CI-sized)
    python bench/eval_search.py --sets shapes-tune     # one set (what bench/sweep_cutoff.py tunes on)
    python bench/eval_search.py --demo 2000,6000       # the cutoff on demo libraries

Sets (each a generated library and queries with known, graded answers):

* shapes-tune: tiny-shapes (a ResNet CLIP trained on generated shapes) on pictures of coloured
  shapes named neutrally (IMG_0042.jpg), helpfully ("red circle 3.jpg") or misleadingly (a red
  circle named "blue-square-7.jpg"), document-named pictures (invoice_2023_04.png) and notes.
  The ONLY set the constants in indexer/search.py were tuned on (bench/sweep_cutoff.py).
* shapes-heldout: another seed, other phrasings ("a drawing of a red circle"), other notes,
  other nonsense. Never tuned on.
* digits-heldout: tiny-digits (a ViT CLIP trained on real handwritten scans) on held-out
  scans and notes about numbers. Never tuned on.
* null: a random-weight ViT-B-32 (nothing truly matches a description) on generated pictures
  and notes; every standout there is false. Cached under $MAGPIE_EVAL_CACHE (default
  /tmp/magpie-eval-cache) because building the random model takes a minute.

Grades: 3 exact match (a picture showing the description; a note or name holding the query as
a phrase for word queries), 2 a note holding the description as a phrase, 1 a note holding the
query's words scattered over different sentences, 0 anything else. Query types: visual (a
description of a picture), name (a word only in file names), file-name (a file's exact name,
with or without its extension), note-word, note-phrase (two words
in one note, and the same two words scattered in another), nonsense (nothing is relevant).

Per type: nDCG@10 of the whole ranking (graded), precision and recall of the results shown as
standing out (relevant = grade >= 2), and for nonsense (and the null model) the share of
queries where anything stands out: the false-standout rate.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.indexing import Indexer  # noqa: E402
from indexer.library import Library  # noqa: E402
from indexer.model import load_encoder  # noqa: E402
from indexer.search import SearchRequest, Searcher  # noqa: E402
from magpie_demo.shapes import COLORS, SHAPES, render_shape  # noqa: E402
from indexer.specs import TINY_SHAPES  # noqa: E402
from indexer.weights import verify_file  # noqa: E402

K = 50
DOC_WORDS = ["invoice", "receipt", "passport", "warranty", "payslip", "prescription"]
TOPICS = {
    "zucchini": "Grandma's zucchini bread: two cups of grated zucchini, flour, sugar, walnuts.",
    "plumber": "The plumber fixed the leaking pipe under the sink on Tuesday; he charged 90.",
    "marathon": "Training plan for the spring marathon: long run on Sundays, tempo on Wednesday.",
    "telescope": "Saw Saturn's rings through the new telescope from the balcony last night.",
    "sourdough": "Feed the sourdough starter twice a day; it smells of apples when it is happy.",
    "mortgage": "Call the bank about the mortgage rate before the fixed term ends in March.",
}
TOPICS_HELDOUT = {
    "origami": "Folded an origami crane for Lily; the paper was too thick for the wings.",
    "glacier": "Hike to the glacier viewpoint takes three hours from the car park.",
    "saxophone": "Saxophone lesson moved to Thursday; practise the scales in B flat.",
    "allergy": "Tom's allergy list: peanuts, penicillin, cat hair. Keep the EpiPen in the bag.",
    "vaccine": "The dog's rabies vaccine is due again in August, book the vet.",
    "chandelier": "The chandelier in the hall needs six new bulbs, the small candle kind.",
}
# (phrase, note holding it, note holding its words scattered)
PHRASES = [
    ("shopping list", "Shopping list for Saturday: milk, eggs, bread.",
     "We went shopping in town. Then I made a list of the plants for the garden."),
    ("boarding pass", "Print the boarding pass before we leave for the airport.",
     "The boarding school sent a letter. We could not pass the exam date."),
    ("tax return", "The tax return is due at the end of January.",
     "The tax office was closed. We will return the form on Monday."),
]
PHRASES_HELDOUT = [
    ("parking ticket", "Pay the parking ticket from the station before Friday.",
     "Parking at the zoo was full. The train ticket cost twelve euros."),
    ("birthday cake", "Order the birthday cake with strawberries for Sam.",
     "Sam's birthday is in May. Bring a cake tin back to the neighbours."),
    ("wedding photos", "The wedding photos are on the blue USB stick.",
     "The wedding was in June. Mum asked for photos of the garden."),
]
NONSENSE = ["qwzx florp blarg", "vrumble snorkwhistle", "plinth garbanzo quux", "zzyzx moop",
            "blorft", "frobnicate the wibble"]
NONSENSE_HELDOUT = ["xkcd qrst plomb", "glorbnak tweedle", "snarf blibber wonk", "humdinger flux",
                    "a cat on a sofa", "the eiffel tower at night"]


@dataclass
class Query:
    text: str
    kind: str  # visual | name | note-word | note-phrase | nonsense
    grades: dict[str, int] = field(default_factory=dict)  # file name -> grade (absent: 0)


# --------------------------------------------------------------------------- collections

def _notes(folder: Path, texts: dict[str, str]) -> None:
    (folder / "notes").mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / "notes" / name).write_text(text)


def _word_queries(texts: dict[str, str], topics: dict[str, str], phrases) -> list[Query]:
    qs = []
    for i, (word, text) in enumerate(topics.items()):
        texts[f"topic-{i:02d}.txt"] = text
        qs.append(Query(word, "note-word", {f"topic-{i:02d}.txt": 3}))
    for i, (phrase, good, scattered) in enumerate(phrases):
        texts[f"memo-{i:02d}a.txt"] = good
        texts[f"memo-{i:02d}b.txt"] = scattered
        qs.append(Query(phrase, "note-phrase", {f"memo-{i:02d}a.txt": 3, f"memo-{i:02d}b.txt": 1}))
    return qs


def build_shapes(folder: Path, heldout: bool, n_pictures: int, n_docs: int) -> list[Query]:
    seed = 1 if heldout else 0
    rng = random.Random(f"eval-shapes-{seed}")
    classes = [(c, s) for c in COLORS for s in SHAPES]
    labels: dict[str, tuple[str, str]] = {}
    folder.mkdir(parents=True)
    for i in range(n_pictures):
        c, s = classes[(i * 7 + seed) % len(classes)]
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
        name = f"{word}_{2020 + i % 5}_{i:02d}.png"
        c, s = rng.choice(classes)
        render_shape(c, s, random.Random(f"doc-{seed}-{i}"), size=160).save(folder / name)
        docs[name] = word
    texts: dict[str, str] = {}
    queries = _word_queries(texts, TOPICS_HELDOUT if heldout else TOPICS,
                            PHRASES_HELDOUT if heldout else PHRASES)
    phrase_notes, scattered_notes = {}, {}
    for j, (c, s) in enumerate(rng.sample(classes, 12)):
        if j % 2 == 0:
            texts[f"drawing-{j}.md"] = (f"Mia coloured a {c} {s} for the fridge door."
                                        if heldout else f"Today Mia drew a {c} {s} on the fridge door.")
            phrase_notes[(c, s)] = f"drawing-{j}.md"
        else:  # the colour and the shape in different sentences
            texts[f"errand-{j}.md"] = (f"Buy {c} paint for the fence. The kids want a {s} on "
                                       "the cake." if heldout else
                                       f"The {c} bucket is in the shed. Cut a {s} from card.")
            scattered_notes[(c, s)] = f"errand-{j}.md"
    _notes(folder, texts)
    template = "a drawing of a {c} {s}" if heldout else "a {c} {s}"
    for c, s in classes:
        g = {n: 3 for n, lab in labels.items() if lab == (c, s)}
        if (c, s) in phrase_notes:
            g[phrase_notes[(c, s)]] = 2
        if (c, s) in scattered_notes:
            g[scattered_notes[(c, s)]] = 1
        if any(v == 3 for v in g.values()):
            queries.append(Query(template.format(c=c, s=s), "visual", g))
    for word in DOC_WORDS:
        queries.append(Query(word, "name", {n: 3 for n, w in docs.items() if w == word}))
    # a file's exact name, with and without its extension: neutral, misleading, document
    misleading = sorted(n for n in labels if "-" in n)
    for n in (sorted(labels)[0], misleading[0], sorted(docs)[0]):
        queries.append(Query(n, "file-name", {n: 3}))
        queries.append(Query(Path(n).stem, "file-name", {n: 3}))
    queries += [Query(t, "nonsense") for t in (NONSENSE_HELDOUT if heldout else NONSENSE)]
    return queries


def build_digits(folder: Path, per_class: int) -> list[Query]:
    from magpie_demo.digits import DIGIT_WORDS, write_digit_pictures

    labels = write_digit_pictures(folder, per_class=per_class)
    texts: dict[str, str] = {}
    queries = _word_queries(texts, TOPICS_HELDOUT, PHRASES_HELDOUT)
    for d, w in enumerate(DIGIT_WORDS):
        g = {n: 3 for n, y in labels.items() if y == d}
        if d % 3 == 0:
            texts[f"house-{d}.txt"] = f"Our new house number is a handwritten {w} on the gate."
            g[f"house-{d}.txt"] = 2
        elif d % 3 == 1:
            texts[f"class-{d}.txt"] = (f"The teacher handwritten notes were lost. Lily is {w} "
                                       "years old now.")
            g[f"class-{d}.txt"] = 1
        queries.append(Query(f"a handwritten {w}", "visual", g))
    _notes(folder, texts)
    queries += [Query(t, "nonsense") for t in NONSENSE_HELDOUT]
    return queries


NULL_WORDS = ("kettle lamp window chair pencil spoon garden river bottle curtain ladder bucket "
              "blanket candle mirror carpet basket wallet helmet tunnel").split()


def build_null(folder: Path, n_pictures: int = 240, n_notes: int = 60) -> list[Query]:
    """Pictures and notes a random-weight model cannot match to anything: every standout for
    the queries below is false. Note words are disjoint from the query words, so keyword
    matching has nothing to find either."""
    rng = random.Random("eval-null")
    folder.mkdir(parents=True)
    classes = [(c, s) for c in COLORS for s in SHAPES]
    for i in range(n_pictures):
        c, s = classes[i % len(classes)]
        render_shape(c, s, random.Random(f"null-{i}"), size=96).save(folder / f"IMG_{i:04d}.jpg")
    _notes(folder, {f"n{i:03d}.txt": " ".join(rng.choice(NULL_WORDS) for _ in range(12)) + "."
                    for i in range(n_notes)})
    texts = ([f"a {c} {s}" for c, s in rng.sample(classes, 20)]
             + ["a dog on the beach", "sunset over the sea", "birthday party", "my passport",
                "a bowl of fruit", "snow on the mountains", "a red sports car", "the old bridge"]
             + NONSENSE + NONSENSE_HELDOUT)
    return [Query(t, "nonsense") for t in texts]


# --------------------------------------------------------------------------- metrics

def standouts(page) -> int:
    """How many results the page presents as standing out (0 when it says none do)."""
    if getattr(page, "no_strong_matches", False):
        return 0
    return page.cutoff


def ndcg(names: list[str], grades: dict[str, int], k: int = 10) -> float:
    dcg = sum((2 ** grades.get(n, 0) - 1) / math.log2(i + 2) for i, n in enumerate(names[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


@dataclass
class Row:
    ndcg: list[float] = field(default_factory=list)
    prec: list[float] = field(default_factory=list)
    rec: list[float] = field(default_factory=list)
    false_standout: list[float] = field(default_factory=list)
    shown: list[int] = field(default_factory=list)


def evaluate(searcher: Searcher, queries: list[Query]) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    for q in queries:
        page = searcher.run(SearchRequest(q.text, k=K))
        names = [Path(r.path).name for r in page.results]
        n_out = standouts(page)
        row = rows.setdefault(q.kind, Row())
        row.shown.append(n_out)
        if q.kind == "nonsense":
            row.false_standout.append(1.0 if n_out else 0.0)
            continue
        relevant = {n for n, g in q.grades.items() if g >= 2}
        cut = set(names[:n_out])
        row.ndcg.append(ndcg(names, q.grades))
        row.prec.append(len(cut & relevant) / len(cut) if cut else (0.0 if relevant else 1.0))
        row.rec.append(len(cut & relevant) / len(relevant) if relevant else 1.0)
    return rows


def _mean(xs) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def print_rows(set_name: str, rows: dict[str, Row]) -> None:
    for kind in ("visual", "name", "file-name", "note-word", "note-phrase", "nonsense"):
        r = rows.get(kind)
        if r is None:
            continue
        if kind == "nonsense":
            print(f"| {set_name} | {kind} | {len(r.shown)} | – | – | – | "
                  f"{_mean(r.false_standout):.0%} | {_mean(r.shown):.1f} |")
        else:
            print(f"| {set_name} | {kind} | {len(r.shown)} | {_mean(r.ndcg):.3f} | "
                  f"{_mean(r.prec):.3f} | {_mean(r.rec):.3f} | – | {_mean(r.shown):.1f} |")


# --------------------------------------------------------------------------- models

def tiny_encoder(spec):
    return load_encoder(spec, verify_file(spec, spec.bundled_path()))


def null_model(cache: Path):
    """A random-weight ViT-B-32 in the published layout, built once and cached."""
    from indexer.specs import VIT_B_32
    from indexer.weights import sha256_file

    ckpt = cache / "vit-b-32-random.safetensors"
    if not ckpt.exists():
        import open_clip
        import torch
        from safetensors.torch import save_file

        cache.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(1234)
        model = open_clip.create_model("ViT-B-32", pretrained=None)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt) + ".tmp")
        os.replace(str(ckpt) + ".tmp", ckpt)
    spec = replace(VIT_B_32, sha256=sha256_file(ckpt))
    return spec, load_encoder(spec, ckpt)


def run_set(name: str, tmp: Path, smoke: bool, cache: Path) -> dict[str, Row]:
    folder = tmp / name / "files"
    if name.startswith("shapes"):
        spec = TINY_SHAPES
        queries = build_shapes(folder, name.endswith("heldout"), *((96, 12) if smoke else (320, 36)))
        enc = tiny_encoder(spec)
    elif name == "digits-heldout":
        from indexer import specs

        if not hasattr(specs, "TINY_DIGITS"):
            raise SystemExit("tiny-digits is not registered yet: train it with "
                             "scripts/train_digits_model.py and pin it in indexer/specs.py")
        spec = specs.TINY_DIGITS
        queries = build_digits(folder, 10 if smoke else 30)
        enc = tiny_encoder(spec)
    elif name == "null":
        spec, enc = null_model(cache)
        queries = build_null(folder)
    else:
        raise SystemExit(f"unknown set {name}")
    t0 = time.perf_counter()
    with Library.open(tmp / name / "lib", spec) as lib:
        Indexer(lib, enc, workers=1).run([folder])
        counts = lib.reader().counts()
        print(f"({name}: {counts['images']} pictures, {counts['notes']} notes, {len(queries)} "
              f"queries, {spec.name}, indexed in {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        return evaluate(Searcher(lib, enc), queries)


SETS = ("shapes-tune", "shapes-heldout", "digits-heldout", "null")


def demo_cutoff(sizes: list[int], k: int = 200) -> None:
    """Cutoff precision/recall on demo libraries, one query per colour x shape class."""
    from magpie_demo.shapes import demo_labels, make_demo_folder

    enc = tiny_encoder(TINY_SHAPES)
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
                ps, rs, shown, per_class = [], [], [], []
                for c in COLORS:
                    for sh in SHAPES:
                        relevant = {p for p, v in labels.items() if v == (c, sh)}
                        page = s.run(SearchRequest(f"a {c} {sh}", k=k, mode="vector"))
                        cut = {r.open_path for r in page.results[: standouts(page)]}
                        ps.append(len(cut & relevant) / max(len(cut), 1))
                        rs.append(len(cut & relevant) / len(relevant))
                        shown.append(len(cut))
                        per_class.append(len(relevant))
        p, r = _mean(ps), _mean(rs)
        print(f"| {n:,} pictures | {_mean(per_class):.0f} | {p:.3f} | {r:.3f} | "
              f"{2 * p * r / (p + r):.3f} | {_mean(shown):.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated: {', '.join(SETS)}")
    ap.add_argument("--demo", help="comma-separated demo library sizes: cutoff quality only")
    args = ap.parse_args()
    if args.demo:
        demo_cutoff([int(x) for x in args.demo.split(",")])
        return 0
    cache = Path(os.environ.get("MAGPIE_EVAL_CACHE", "/tmp/magpie-eval-cache"))
    print("| set | query type | queries | nDCG@10 | standout precision | standout recall | "
          "false-standout rate | mean shown as standing out |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            print_rows(name, run_set(name, Path(tmp), args.smoke, cache))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
