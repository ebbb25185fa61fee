"""Encoding speed of every pinned model, on this machine, with random weights.

    python bench/model_speed.py                  # every model in indexer/specs.py (~10 min, 2 cores)
    python bench/model_speed.py --models vit-l-14,mobileclip-s2
    python bench/model_speed.py --wall           # also wall-clock with torch's default threads
    python bench/model_speed.py --smoke          # CI: tiny-shapes only, a few seconds

Real weights can't be downloaded on the bench machines, so each model is built by open_clip in
its real architecture with random weights (`create_model(arch, pretrained=None)`): speed does not
depend on the weights' values. The model then runs through Magpie's own `Encoder`, the object the
indexer and search use, so the figures include Magpie's normalisation and its trimmed text path.

What is measured, per model:
- images/s per core: image embeddings per CPU-second, one torch thread, batches of 16 uint8
  images at the model's input size (already decoded and cropped, as the worker processes hand
  them over);
- query ms: CPU milliseconds to encode one short text query (one thread), the cost a search pays.

Why CPU time: the bench machines are shared (load average 20 on 2 cores while this was written),
and wall-clock figures there say more about the neighbours than about the model. CPU time of a
single thread hardly depends on them. A free 2-core machine indexes at up to ~2x the per-core
figure (torch uses both cores); `--wall` measures that directly, which is only meaningful on an
idle machine. Each model's fastest of several interleaved rounds is kept (medians are printed too).

The table is printed; `--json FILE` also writes the figures. `indexer/specs.py` records the full
run's figures in each spec's `speed`, so `magpie models` and the app can show them.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
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
    if spec.tokenizer is not None:
        tokenizer = _generated_hub_tokenizer(spec)
    else:
        tokenizer = open_clip.get_tokenizer(spec.arch, context_length=spec.context_length)
    params = sum(p.numel() for p in model.parameters())
    return Encoder(spec, model, tokenizer, device), params


def _generated_hub_tokenizer(spec):
    """A model with its own Hub tokenizer (SigLIP i18n) can't fetch it here: a small tokenizer
    of the same kind (tests/fake_tokenizer.py) stands in. Tokenizing is microseconds either way;
    the text tower always runs its whole 64-token window, so the query cost is the model's."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from indexer.hub_tokenizer import HubTokenizer
    from tests.fake_tokenizer import write_fake_tokenizer

    folder = write_fake_tokenizer(Path(tempfile.mkdtemp(prefix="magpie-bench-tok-")))
    return HubTokenizer(folder, spec.context_length, spec.tokenizer.clean)


def _sig(x: float) -> float | int:
    """Whole numbers from 10 up; one decimal below (ViT-L-14 embeds well under 1 image/s)."""
    return round(x) if x >= 10 else round(x, 1)


def _cpu(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def _wall(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(specs, *, rounds: int, queries: int, wall: bool, device: str = "cpu") -> list[dict]:
    """Time every model in interleaved rounds; keep each one's fastest round and the median.

    Interleaving the models round by round keeps a busy minute on a shared machine from
    penalising only one of them.
    """
    import torch

    default_threads = torch.get_num_threads()
    rng = np.random.default_rng(0)
    runs = []
    for spec in specs:
        enc, params = build_random_encoder(spec, device)
        size = spec.preprocess.image_size
        pixels = rng.integers(0, 256, size=(BATCH, size, size, 3), dtype=np.uint8)
        out = enc.encode_images(pixels)  # warm-up: the first call allocates
        assert out.shape == (BATCH, spec.embed_dim)
        for _ in range(3):
            enc.encode_texts([QUERY])
        runs.append({"spec": spec, "enc": enc, "params": params, "pixels": pixels,
                     "cpu_batch": [], "cpu_query": [], "wall_batch": [], "wall_query": []})
    try:
        for _ in range(rounds):
            for r in runs:
                enc, pixels = r["enc"], r["pixels"]
                torch.set_num_threads(1)
                batch, query = partial(enc.encode_images, pixels), partial(enc.encode_texts, [QUERY])
                r["cpu_batch"].append(_cpu(batch))
                for _ in range(queries):
                    r["cpu_query"].append(_cpu(query))
                if wall:
                    torch.set_num_threads(default_threads)
                    r["wall_batch"].append(_wall(batch))
                    for _ in range(queries):
                        r["wall_query"].append(_wall(query))
    finally:
        torch.set_num_threads(default_threads)
        for r in runs:
            r["enc"].close()
    rows = []
    for r in runs:
        spec = r["spec"]
        row = {
            "model": spec.name,
            "arch": spec.arch,
            "image_size": spec.preprocess.image_size,
            "params_m": r["params"] / 1e6,
            "weights_mb": spec.size_mb,
            "images_per_cpu_s": _sig(BATCH / min(r["cpu_batch"])),
            "images_per_cpu_s_median": _sig(BATCH / median(r["cpu_batch"])),
            "query_cpu_ms": round(1000 * min(r["cpu_query"])),
            "query_cpu_ms_median": round(1000 * median(r["cpu_query"])),
            "imagenet_top1": spec.quality.imagenet_top1 if spec.quality else None,
        }
        if wall:
            row.update({
                "threads": default_threads,
                "images_per_s_wall": round(BATCH / min(r["wall_batch"])),
                "images_per_s_wall_median": round(BATCH / median(r["wall_batch"])),
                "query_ms_wall": round(1000 * min(r["wall_query"])),
                "query_ms_wall_median": round(1000 * median(r["wall_query"])),
            })
        rows.append(row)
    return rows


def main() -> int:
    from indexer.specs import SPECS, _percent

    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--models", help="comma-separated spec names (default: all)")
    ap.add_argument("--smoke", action="store_true", help="tiny-shapes only, few repeats")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (one image batch "
                    "per model per round)")
    ap.add_argument("--wall", action="store_true", help="also wall-clock with torch's default "
                    "threads (meaningful on an idle machine only)")
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
                   wall=args.wall, device=args.device)
    headers = ["model", "architecture", "input px", "params (M)", "weights MB",
               f"images/s per core (batch {BATCH})", "query ms", "ImageNet zero-shot (published)"]
    body = [[r["model"], r["arch"], r["image_size"], round(r["params_m"]), round(r["weights_mb"]),
             f"{r['images_per_cpu_s']} (median {r['images_per_cpu_s_median']})",
             f"{r['query_cpu_ms']} (median {r['query_cpu_ms_median']})",
             _percent(r["imagenet_top1"]) if r["imagenet_top1"] else "–"] for r in rows]
    if args.wall:
        headers += [f"wall images/s ({rows[0]['threads']} threads)", "wall query ms"]
        for b, r in zip(body, rows):
            b += [f"{r['images_per_s_wall']} (median {r['images_per_s_wall_median']})",
                  f"{r['query_ms_wall']} (median {r['query_ms_wall_median']})"]
    table(headers, body)
    print(f"# CPU time, one torch thread, fastest of {args.rounds} rounds; "
          f"loadavg at end {machine()['load']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
