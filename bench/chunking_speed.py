"""How long chunking takes on the notes that used to stall a run (issue 10, item 1).

    python bench/chunking_speed.py                 # 40k / 400k / 4M chars without spaces, 4 MB prose
    python bench/chunking_speed.py --timeout 60    # per-case limit (a case past it prints "> N s")

Each case runs in its own process under a wall-clock limit (CPU seconds are printed too:
on a shared machine they are the fairer figure), with ViT-B-32's real tokenizer
(open_clip's SimpleTokenizer, the one the default model uses) measuring tokens the way the
pipeline does. Inputs are generated: base64 of seeded random bytes (a data-URI image pasted in
Markdown) and seeded English-like prose in paragraphs of a few sentences.
"""
from __future__ import annotations

import argparse
import base64
import multiprocessing as mp
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORDS = ("the a garden shed fence river bank quick brown fox jumps over lazy dog kite beach "
         "sled snow red blue yellow invoice plumber mortgage zucchini morning evening letter "
         "wrote said about near under between because although market bread window").split()


def no_spaces(n: int) -> str:
    rng = random.Random(1)
    raw = bytes(rng.getrandbits(8) for _ in range(n * 3 // 4 + 3))
    return base64.b64encode(raw).decode()[:n]


def prose(n: int, per_paragraph: int = 5) -> str:
    """Sentences of 6-18 words, `per_paragraph` to a paragraph, cut to n characters."""
    rng = random.Random(2)
    paragraphs: list[str] = []
    sentences: list[str] = []
    size = 0
    while size < n:
        s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))).capitalize() + "."
        sentences.append(s)
        size += len(s) + 1
        if len(sentences) == per_paragraph:
            paragraphs.append(" ".join(sentences))
            sentences = []
    paragraphs.append(" ".join(sentences))
    return "\n\n".join(p for p in paragraphs if p)[:n]


def _run(kind: str, n: int, q: mp.Queue) -> None:
    import open_clip

    from indexer.chunking import chunk_text

    tok = open_clip.get_tokenizer("ViT-B-32")
    text = {"no-spaces": no_spaces, "prose": prose, "prose-one-paragraph": lambda k: prose(k, 10**9)}[kind](n)
    kwargs = {}
    try:  # the pipeline's fast path when this version of the chunker has one
        from indexer.token_ends import clip_token_ends

        ends = clip_token_ends(tok)
        if ends is not None:
            kwargs["token_ends"] = ends
    except ImportError:
        pass
    started, cpu = time.perf_counter(), time.process_time()
    chunks = chunk_text(text, lambda t: len(tok.encode(t)), 75, **kwargs)
    q.put((time.perf_counter() - started, time.process_time() - cpu, len(chunks)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--cases", default="no-spaces:40000,no-spaces:400000,no-spaces:4000000,"
                                       "prose:4000000,prose-one-paragraph:4000000")
    args = ap.parse_args()
    print("| case | characters | wall s | CPU s | chunks |\n|---|---|---|---|---|")
    for case in args.cases.split(","):
        kind, n = case.split(":")
        q: mp.Queue = mp.Queue()
        p = mp.Process(target=_run, args=(kind, int(n), q))
        p.start()
        p.join(args.timeout)
        if p.is_alive():
            p.kill()
            p.join()
            print(f"| {kind} | {int(n):,} | > {args.timeout:.0f} (stopped) | – | – |", flush=True)
        else:
            secs, cpu, count = q.get()
            print(f"| {kind} | {int(n):,} | {secs:.2f} | {cpu:.2f} | {count} |", flush=True)


if __name__ == "__main__":
    main()
