"""How close vit-b-32-int8 is to vit-b-32, and how much faster per CPU core (issue #12, item 5).

Measures, on the same generated pictures and queries:
  * cosine between the int8 and the fp32 image vector of each picture (mean, lowest);
  * cosine between the two models' text vectors (the int8 variant keeps the fp32 text tower,
    so this must be exactly 1: a check that the wiring shares it);
  * top-10 overlap of text->image search over those pictures (mean share of fp32's top 10 that
    int8 also returns). With random weights (real ViT-B-32 weights can't be downloaded here)
    text-picture scores are close together and the ranking is noise-like, so this is a rough,
    pessimistic proxy; the bundled tiny-shapes model, where ranking means something, is
    measured the same way;
  * images per CPU-second on one ONNX Runtime thread, batches of 16 (fp32 and int8 graphs).

Both graphs come from the real code path (LazyEncoder: fp32 export checked against open_clip,
then the spec's int8 recipe). Usage:
    python bench/int8_agreement.py [--cache DIR] [--pictures 300]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import _photo_like, print_machine, vit_b32_checkpoint  # noqa: E402

QUERIES = [f"a photo of {w}" for w in (
    "a dog", "a cat", "the sea", "a red car", "mountains at sunset", "a birthday cake",
    "a city street at night", "a green field", "a receipt", "a screenshot of a chat", "snow",
    "a white kitchen", "a bicycle", "two people smiling", "a blue door", "an old book",
    "a forest path", "a plate of pasta", "fireworks", "a bridge", "a beach with palm trees",
    "a yellow flower", "a train station", "a laptop on a desk", "a horse", "rain on a window",
    "a map", "a guitar", "a lighthouse", "a crowd at a concert", "a bowl of fruit",
    "a sleeping baby", "a skyscraper", "a boat", "an airport", "a painting", "a chess board",
    "a coffee cup", "a bookshelf", "autumn leaves")]


def pictures(n: int, size: int, seed: int = 31) -> np.ndarray:
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        w, h = int(rng.integers(size, 2 * size)), int(rng.integers(size, 2 * size))
        im = Image.fromarray(_photo_like(rng, w, h, 3.0)).resize((size, size), Image.BICUBIC)
        out[i] = np.asarray(im)
    return out


def agreement(fp32_enc, int8_enc, px: np.ndarray, queries: list[str]) -> dict:
    a, b = fp32_enc.encode_images(px), int8_enc.encode_images(px)
    cos = (a * b).sum(axis=1)
    ta, tb = fp32_enc.encode_texts(queries), int8_enc.encode_texts(queries)
    tcos = (ta * tb).sum(axis=1)
    top_a = np.argsort(-(ta @ a.T), axis=1)[:, :10]
    top_b = np.argsort(-(tb @ b.T), axis=1)[:, :10]
    overlap = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(top_a, top_b)])
    return {"image_cos_mean": float(cos.mean()), "image_cos_min": float(cos.min()),
            "text_cos_min": float(tcos.min()), "top10_overlap": float(overlap),
            "pictures": len(px), "queries": len(queries)}


def per_core_rate(enc, px: np.ndarray, rounds: int = 3) -> float:
    batch = px[:16]
    enc.encode_images(batch)
    c = time.process_time()
    for _ in range(rounds):
        enc.encode_images(batch)
    return 16 * rounds / (time.process_time() - c)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=None, help="Magpie cache (exports reused)")
    ap.add_argument("--pictures", type=int, default=300)
    ap.add_argument("--skip-tiny", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("MAGPIE_DEVICE", "cpu")
    from indexer.lazy_encoder import LazyEncoder
    from indexer.specs import TINY_SHAPES, VIT_B_32, int8_variant

    print_machine("vit-b-32-int8 against vit-b-32")
    cache = args.cache or Path(tempfile.mkdtemp(prefix="int8-bench-"))
    ckpt, sha = vit_b32_checkpoint()
    fp32_spec = dataclasses.replace(VIT_B_32, sha256=sha)
    int8_spec = int8_variant(fp32_spec, "vit-b-32-int8")
    rows = []
    for label, base, weights, n in (("ViT-B-32 (random weights)", fp32_spec, ckpt, args.pictures),
                                    ("tiny-shapes (bundled)", TINY_SHAPES,
                                     TINY_SHAPES.bundled_path(), args.pictures)):
        if args.skip_tiny and base is TINY_SHAPES:
            continue
        q = int8_variant(base, base.name + "-int8") if base is TINY_SHAPES else int8_spec
        fp32 = LazyEncoder(base, weights, cache_dir=cache, model_threads=1)
        int8 = LazyEncoder(q, weights, cache_dir=cache, model_threads=1)
        px = pictures(n, base.preprocess.image_size)
        queries = QUERIES if base is not TINY_SHAPES else [
            f"a {c} {s}" for c in ("red", "green", "blue", "yellow", "white", "black")
            for s in ("circle", "square", "triangle", "star")]
        res = agreement(fp32, int8, px, queries)
        res["fp32_img_per_cpu_s"] = per_core_rate(fp32, px)
        res["int8_img_per_cpu_s"] = per_core_rate(int8, px)
        res["runtime"] = int8.image_runtime
        rows.append((label, res))
        fp32.close()
        int8.close()
    for label, res in rows:
        print(f"\n{label}:")
        for k, v in res.items():
            print(f"  {k:22s} {v:.5f}" if isinstance(v, float) else f"  {k:22s} {v}")
    print(f"\nload average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
