"""Encoding speed of every pinned model, on this machine, with random weights.

    python bench/model_speed.py                  # every model in indexer/specs.py (~3 min, 2 cores)
    python bench/model_speed.py --models vit-l-14,mobileclip-s2
    python bench/model_speed.py --smoke          # CI: tiny-shapes only, a few seconds

Real weights can't be downloaded on the bench machines, so each model is built by open_clip in
its real architecture with random weights (`create_model(arch, pretrained=None)`): speed does not
depend on the weights' values. The model then runs through Magpie's own `Encoder`, the object the
indexer and search use, so the figures include Magpie's normalisation and its trimmed text path:

- images/s: image embeddings per second, batches of 16 uint8 images at the model's input size
  (already decoded and cropped, as the worker processes hand them over);
- query ms: latency of encoding one short text query, the cost a search pays.

Models are timed in interleaved rounds; "best" is each model's fastest round (the least disturbed
by other work on a shared machine), "median" is shown beside it.

The table is printed; `--json FILE` also writes the figures. `indexer/specs.py` records the
full run's figures in each spec's `speed`, so `magpie models` and the app can show them.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median, print_machine, table  # noqa: E402

BATCH = 16
QUERY = "a red bicycle leaning against a wall"


def build_random_encoder(spec, device: str = "cpu"):
    """Magpie's Encoder around `spec.arch` with random weights (nothing is downloaded)."""
    import open_clip
    import torch

    from indexer.model import Encoder, _prepare_arch, _quiet_random_init_warning

    _prepare_arch(spec)
    torch.manual_seed(0)
    with _quiet_random_init_warning():
        model = open_clip.create_model(spec.arch, pretrained=None, precision="fp32", device="cpu")
    model.eval().requires_grad_(False)
    model = model.to(device)
    tokenizer = open_clip.get_tokenizer(spec.arch, context_length=spec.context_length)
    params = sum(p.numel() for p in model.parameters())
    return Encoder(spec, model, tokenizer, device), params


def measure(specs, *, rounds: int, queries: int, device: str = "cpu") -> list[dict]:
    """Time every model in interleaved rounds and keep each one's fastest round.

    On a shared machine other work steals the CPU at random moments; the fastest of several
    rounds is the best estimate of what the model costs on its own, and interleaving the models
    round by round keeps a busy minute from penalising only one of them. Medians are kept too.
    """
    rng = np.random.default_rng(0)
    encs = []
    for spec in specs:
        enc, params = build_random_encoder(spec, device)
        size = spec.preprocess.image_size
        pixels = rng.integers(0, 256, size=(BATCH, size, size, 3), dtype=np.uint8)
        out = enc.encode_images(pixels)  # warm-up: the first call allocates
        assert out.shape == (BATCH, spec.embed_dim)
        for _ in range(3):
            enc.encode_texts([QUERY])
        encs.append((spec, enc, params, pixels, [], []))
    try:
        for _ in range(rounds):
            for spec, enc, _, pixels, batch_s, query_s in encs:
                t0 = time.perf_counter()
                enc.encode_images(pixels)
                batch_s.append(time.perf_counter() - t0)
                for _ in range(queries):
                    t0 = time.perf_counter()
                    enc.encode_texts([QUERY])
                    query_s.append(time.perf_counter() - t0)
    finally:
        for _, enc, *_ in encs:
            enc.close()
    rows = []
    for spec, _, params, _, batch_s, query_s in encs:
        rows.append({
            "model": spec.name,
            "arch": spec.arch,
            "image_size": spec.preprocess.image_size,
            "params_m": params / 1e6,
            "weights_mb": spec.size_mb,
            "images_per_s": round(BATCH / min(batch_s)),
            "query_ms": round(1000 * min(query_s)),
            "images_per_s_median": round(BATCH / median(batch_s)),
            "query_ms_median": round(1000 * median(query_s)),
            "imagenet_top1": spec.quality.imagenet_top1 if spec.quality else None,
        })
    return rows


def main() -> int:
    from indexer.specs import SPECS

    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--models", help="comma-separated spec names (default: all)")
    ap.add_argument("--smoke", action="store_true", help="tiny-shapes only, few repeats")
    ap.add_argument("--rounds", type=int, default=6, help="interleaved rounds (one image batch "
                    "per model per round)")
    ap.add_argument("--queries", type=int, default=5, help="timed text queries per model per round")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    if args.smoke:
        names, args.rounds, args.queries = ["tiny-shapes"], 2, 3
    elif args.models:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
    else:
        names = list(SPECS)
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        print(f"unknown model(s): {', '.join(unknown)}; choose from {', '.join(SPECS)}",
              file=sys.stderr)
        return 2

    import torch

    print_machine(f"model speed, random weights, {args.device}, torch threads "
                  f"{torch.get_num_threads()}")
    rows = measure([SPECS[n] for n in names], rounds=args.rounds, queries=args.queries,
                   device=args.device)
    table(
        ["model", "architecture", "input px", "params (M)", "weights MB",
         f"images/s (batch {BATCH}, best)", "images/s (median)", "query ms (best)",
         "query ms (median)", "ImageNet zero-shot (published)"],
        [[r["model"], r["arch"], r["image_size"], round(r["params_m"]), round(r["weights_mb"]),
          r["images_per_s"], r["images_per_s_median"], r["query_ms"], r["query_ms_median"],
          f"{100 * r['imagenet_top1']:.1f} %" if r["imagenet_top1"] else "–"] for r in rows],
    )
    print(f"# loadavg at end {machine()['load']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
