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

"Nothing" captions (v2): a share of each batch's captions name no digit at all (1-3 random
vocabulary words, or a template with such a word where the digit goes: "a handwritten
plorf"); their target is every picture of the batch alike, so text the model does not know
lands equally far from every digit. Without them the v1 model read any unknown text as "two"
(gibberish and "a handwritten two" had the same vector), which the search's nonsense gate
then rightly refused -- hiding every two.

    python scripts/train_digits_model.py --init assets/tiny-digits/tiny-digits.safetensors \
        --steps 250 --lr 5e-4 --nothing-share 0.15     # v2: v1 continued with "nothing"
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

from magpie_demo.digits import (  # noqa: E402
    CAPTION_TEMPLATES, DIGIT_WORDS, caption, load_scans, render_digit, split,
)
from indexer.model import register_bundled_arch  # noqa: E402
from indexer.specs import ASSETS_DIR  # noqa: E402
from train_tiny_model import (  # noqa: E402
    Filler, encode_text_short, preprocess, sha256_file,
)

ARCH = "tiny-digits"
SEED = 4321
IMAGE_SIZE = 32
OUT = ASSETS_DIR / ARCH / f"{ARCH}.safetensors"
HELDOUT_PROMPTS = ("a picture of the number {w}", "someone wrote a {w}", "{w} written by hand")


NOTHING = -1  # the label of a caption that names no digit


def nothing_caption(rng, filler) -> str:
    """Text that names no digit: random vocabulary words, or a caption template with such a
    word in the digit's place."""
    word = rng.choice(filler.words)
    if rng.random() < 0.5:
        return " ".join(rng.choice(filler.words) for _ in range(rng.randint(1, 3)))
    return rng.choice(CAPTION_TEMPLATES).format(w=word, n=word)


def batch(rng, images, labels, idx, n, tok, filler, nothing_share=0.0):
    pick = [rng.choice(idx) for _ in range(n)]
    xs = torch.stack([preprocess(render_digit(images[i], rng, size=rng.choice((32, 48, 64))),
                                 IMAGE_SIZE) for i in pick])
    texts, text_labels = [], []
    for i in pick:
        if rng.random() < nothing_share:
            texts.append(nothing_caption(rng, filler))
            text_labels.append(NOTHING)
            continue
        t = caption(int(labels[i]), rng)
        texts.append(filler(t, rng) if rng.random() < 0.35 else t)
        text_labels.append(int(labels[i]))
    return (xs, tok(texts), torch.tensor([int(labels[i]) for i in pick]),
            torch.tensor(text_labels))


def clip_loss_with_nothing(img_f, txt_f, logit_scale, img_y, txt_y):
    """CLIP's symmetric loss, same-digit pairs all positive; a "nothing" caption is no
    picture's positive, and its own target is every picture alike (uniform)."""
    logits = logit_scale * img_f @ txt_f.t()
    same = (img_y[:, None] == txt_y[None, :]).float()
    has = same.sum(dim=1) > 0
    t_img = same[has] / same[has].sum(dim=1, keepdim=True)
    loss_i = torch.sum(-t_img * F.log_softmax(logits[has], dim=1), dim=1).mean()
    t_txt = same.t().clone()
    t_txt[txt_y == NOTHING] = 1.0
    t_txt = t_txt / t_txt.sum(dim=1, keepdim=True).clamp_min(1e-9)
    keep = t_txt.sum(dim=1) > 0
    loss_t = torch.sum(-t_txt[keep] * F.log_softmax(logits.t()[keep], dim=1), dim=1).mean()
    return (loss_i + loss_t) / 2


@torch.no_grad()
def evaluate(model, tok) -> None:
    model.eval()
    images, labels = load_scans()
    idx = split(train=False)
    x = torch.stack([preprocess(render_digit(images[i], size=64), IMAGE_SIZE) for i in idx])
    y = torch.tensor([int(labels[i]) for i in idx])
    img = F.normalize(model.encode_image(x), dim=-1)
    for prompt in ("a handwritten {w}",) + HELDOUT_PROMPTS:
        txt = F.normalize(model.encode_text(tok([prompt.format(w=w) for w in DIGIT_WORDS])), dim=-1)
        acc = ((img @ txt.t()).argmax(1) == y).float().mean().item()
        print(f"  held-out scans ({len(idx)}), prompt {prompt!r}: zero-shot accuracy {acc:.1%}")
    # what the search's nonsense gate compares with (indexer.search.NONSENSE_PROBES)
    probes = F.normalize(model.encode_text(tok(["", "xq", "zzzz qqqq", "blim vort snee", "plorf"])), dim=-1)
    centre = F.normalize(probes.mean(0), dim=-1)
    txt = F.normalize(model.encode_text(tok([f"a handwritten {w}" for w in DIGIT_WORDS])), dim=-1)
    cos = txt @ centre
    print("  cosine of 'a handwritten {w}' to meaningless text: "
          + " ".join(f"{w} {c:.2f}" for w, c in zip(DIGIT_WORDS, cos.tolist())))


def load(path: Path):
    import open_clip
    import safetensors.torch

    register_bundled_arch(ARCH)
    model = open_clip.create_model(ARCH, pretrained=None)
    sd = safetensors.torch.load_file(str(path))
    model.load_state_dict({k: v.float() for k, v in sd.items()})
    return model.eval(), open_clip.get_tokenizer(ARCH)


def train(steps: int, n: int, lr: float, out: Path, init: Path | None = None,
          nothing_share: float = 0.0) -> None:
    import open_clip
    from safetensors.torch import save_file

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    register_bundled_arch(ARCH)
    model = open_clip.create_model(ARCH, pretrained=None)
    if init is not None:  # continue from saved weights (v2 continues v1)
        import safetensors.torch

        model.load_state_dict({k: v.float() for k, v in
                               safetensors.torch.load_file(str(init)).items()})
    tok = open_clip.get_tokenizer(ARCH)
    filler = Filler(tok)
    digit_words = set(DIGIT_WORDS) | {str(d) for d in range(10)}
    filler.words = [w for w in filler.words if w not in digit_words]
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
        x, t, y, ty = batch(rng, images, labels, idx, n, tok, filler, nothing_share)
        loss = clip_loss_with_nothing(F.normalize(model.encode_image(x), dim=-1),
                                      F.normalize(encode_text_short(model, t), dim=-1),
                                      model.logit_scale.exp(), y, ty)
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
                                      "nothing_share": str(nothing_share),
                                      "init": init.name if init else "",
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
    ap.add_argument("--init", type=Path, default=None,
                    help="continue from these weights instead of starting from scratch")
    ap.add_argument("--nothing-share", type=float, default=0.15,
                    help="share of captions that name no digit (target: every picture alike)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.eval_only:
        train(args.steps, args.batch, args.lr, args.out, args.init, args.nothing_share)
    print(f"sha256 {sha256_file(args.out)}  {args.out}")
    evaluate(*load(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
