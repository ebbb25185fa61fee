"""Train the bundled tiny-digits CLIP from scratch on CPU: the second test model, different
from tiny-shapes in architecture (a small ViT, patch 4 at 32 px, 32-d embedding, one text
layer; tiny-shapes is a ResNet at 64 px, 64-d) and in data (real handwritten scans from
scikit-learn's `load_digits`, not generated shapes).

    python scripts/train_digits_model.py                  # train, save in assets/, evaluate
    python scripts/train_digits_model.py --eval-only      # load the saved file, print accuracy

Only the training split (magpie_demo.digits.split(train=True)) is seen; the eval and the search
tests use the held-out scans. Captions: magpie_demo.digits.CAPTION_TEMPLATES, 1-3 random unrelated
vocabulary words inserted into 35% of them (as for tiny-shapes, so unknown query words do not
throw the text tower). Loss: CLIP's symmetric cross-entropy, same-digit pairs all positive.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from magpie_demo.digits import DIGIT_WORDS, caption, load_scans, render_digit, split  # noqa: E402
from indexer.model import register_bundled_arch  # noqa: E402
from indexer.specs import ASSETS_DIR  # noqa: E402
from train_tiny_model import (  # noqa: E402
    Filler, encode_text_short, multi_positive_clip_loss, preprocess, sha256_file,
)

ARCH = "tiny-digits"
SEED = 4321
IMAGE_SIZE = 32
OUT = ASSETS_DIR / ARCH / f"{ARCH}.safetensors"
HELDOUT_PROMPTS = ("a picture of the number {w}", "someone wrote a {w}", "{w} written by hand")


def batch(rng, images, labels, idx, n, tok, filler):
    pick = [rng.choice(idx) for _ in range(n)]
    xs = torch.stack([preprocess(render_digit(images[i], rng, size=rng.choice((32, 48, 64))),
                                 IMAGE_SIZE) for i in pick])
    texts = []
    for i in pick:
        t = caption(int(labels[i]), rng)
        texts.append(filler(t, rng) if rng.random() < 0.35 else t)
    return xs, tok(texts), torch.tensor([int(labels[i]) for i in pick])


@torch.no_grad()
def evaluate(model, tok) -> None:
    model.eval()
    images, labels = load_scans()
    idx = split(train=False)
    x = torch.stack([preprocess(render_digit(images[i], size=64), IMAGE_SIZE) for i in idx])
    y = torch.tensor([int(labels[i]) for i in idx])
    img = F.normalize(model.encode_image(x), dim=-1)
    for prompt in ("a handwritten {w}",) + HELDOUT_PROMPTS:
        txt = F.normalize(model.encode_text(tok([prompt.format(w=w) for w in DIGIT_WORDS])), -1)
        acc = ((img @ txt.t()).argmax(1) == y).float().mean().item()
        print(f"  held-out scans ({len(idx)}), prompt {prompt!r}: zero-shot accuracy {acc:.1%}")


def load(path: Path):
    import open_clip
    import safetensors.torch

    register_bundled_arch(ARCH)
    model = open_clip.create_model(ARCH, pretrained=None)
    sd = safetensors.torch.load_file(str(path))
    model.load_state_dict({k: v.float() for k, v in sd.items()})
    return model.eval(), open_clip.get_tokenizer(ARCH)


def train(steps: int, n: int, lr: float, out: Path) -> None:
    import open_clip
    from safetensors.torch import save_file

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    register_bundled_arch(ARCH)
    model = open_clip.create_model(ARCH, pretrained=None)
    tok = open_clip.get_tokenizer(ARCH)
    filler = Filler(tok)
    images, labels = load_scans()
    idx = split(train=True)
    decay = [p for nm, p in model.named_parameters() if p.ndim >= 2 and "logit" not in nm]
    rest = [p for nm, p in model.named_parameters() if not (p.ndim >= 2 and "logit" not in nm)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": rest, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98))
    warm = max(1, steps // 10)
    print(f"training {ARCH}: {sum(p.numel() for p in model.parameters()):,} params, "
          f"{steps} x {n}, {len(idx)} training scans")
    t0 = time.time()
    run = None
    model.train()
    for step in range(steps):
        cur = lr * (step + 1) / warm if step < warm else \
            lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))
        for g in opt.param_groups:
            g["lr"] = cur
        x, t, y = batch(rng, images, labels, idx, n, tok, filler)
        loss = multi_positive_clip_loss(F.normalize(model.encode_image(x), dim=-1),
                                        F.normalize(encode_text_short(model, t), dim=-1),
                                        model.logit_scale.exp(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        run = loss.item() if run is None else 0.95 * run + 0.05 * loss.item()
        if (step + 1) % 100 == 0 or step + 1 == steps:
            print(f"step {step + 1}/{steps} loss {run:.3f} {time.time() - t0:.0f}s", flush=True)
    secs = time.time() - t0
    sd = {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous()
          for k, v in model.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(out), metadata={"arch": ARCH, "seed": str(SEED), "steps": str(steps),
                                      "batch": str(n), "lr": str(lr), "train_seconds": f"{secs:.0f}",
                                      "dtype": "float16"})
    print(f"trained in {secs:.0f} s; saved {out} ({out.stat().st_size / 1e6:.2f} MB)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=96)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--eval-only", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.eval_only:
        train(args.steps, args.batch, args.lr, args.out)
    print(f"sha256 {sha256_file(args.out)}  {args.out}")
    evaluate(*load(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
