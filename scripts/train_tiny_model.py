"""Train the bundled tiny-shapes CLIP from scratch on CPU, save it, and measure it.

    python scripts/train_tiny_model.py                 # train (2400 steps x 64), save, evaluate
    python scripts/train_tiny_model.py --steps 300 --out /tmp/t.safetensors   # quick check
    python scripts/train_tiny_model.py --eval-only     # load the saved file, print accuracy

Pictures come from ``magpie_demo.shapes.render_shape(style="plain")`` at 64 px, generated on the
fly; captions from ``magpie_demo.shapes.caption``. The loss is CLIP's symmetric cross-entropy with
the model's learned ``logit_scale``, except that every pair in the batch with the same
(colour, shape) counts as a positive (with 66 classes a batch holds many duplicates, and
treating them as negatives only adds noise). Augmentations: shape size/position/rotation and
shade come from the renderer; JPEG re-encoding at random quality, and random unrelated words
inserted into a share of captions (so unseen words in a query do not throw the text tower),
and whole-picture Gaussian "sensor" noise on a share of pictures (see ``sensor_noise``).

Evaluation is zero-shot over all colour x shape classes: in-distribution pictures, held-out
picture sizes (rendered at 200/256 px and preprocessed down), held-out backgrounds
(gradient, noise), and held-out prompt phrasings that never occur in training.
The eval loads the saved file exactly the way Magpie does (register_bundled_arch,
open_clip.create_model, safetensors, cast to fp32).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import math
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from magpie_demo.shapes import COLORS, SHAPES, caption, render_shape  # noqa: E402
from indexer.specs import ASSETS_DIR, OPENAI_MEAN, OPENAI_STD, TINY_SHAPES  # noqa: E402
from indexer.model import register_bundled_arch  # noqa: E402

SEED = 1234
TINY_ARCH = TINY_SHAPES.arch
TINY_WEIGHTS_PATH = ASSETS_DIR / "tiny-shapes" / "tiny-shapes.safetensors"
IMAGE_SIZE = TINY_SHAPES.preprocess.image_size
CLASSES = [(c, s) for c in COLORS for s in SHAPES]

# Prompt phrasings used only for evaluation; none of them (nor their extra words) is ever
# seen in training.
HELDOUT_TEMPLATES = (
    "a drawing of a {c} {s}",
    "{s} that is {c}",
    "a {c} {s} drawn by a child",
    "an illustration of the {c} {s}",
    "find the {c} {s}",
)
_HELDOUT_WORDS = {"drawing", "that", "is", "drawn", "by", "child", "illustration", "find"}
_FORBIDDEN_FILLER = set(COLORS) | set(SHAPES) | _HELDOUT_WORDS | {
    "grey", "violet", "magenta", "crimson", "scarlet", "navy", "cyan", "teal", "lime", "gold",
    "golden", "silver", "maroon", "beige", "tan", "olive", "indigo", "turquoise", "aqua",
    "lavender", "rose", "ruby", "amber", "ivory", "charcoal", "colour", "color", "colored",
    "coloured", "round", "ring", "oval", "disc", "disk", "dot", "rectangle", "box", "block",
    "cube", "pyramid", "starry", "stars", "hearts", "squares", "circles", "triangles",
    "crosses", "plus", "diamond", "hexagon", "pentagon", "shape", "shapes", "love", "sun",
    "moon", "sky", "grass", "blood", "snow", "coal", "ink", "fire", "sea", "ocean", "banana",
    "lemon", "cherry", "tomato", "orange", "apple", "chocolate", "coffee", "rust", "ash",
    "x", "t", "o", "a", "an", "the",
}


# --------------------------------------------------------------------------- preprocessing

_MEAN = np.array(OPENAI_MEAN, dtype=np.float32)
_STD = np.array(OPENAI_STD, dtype=np.float32)


def preprocess(img: Image.Image, size: int = IMAGE_SIZE) -> torch.Tensor:
    """Magpie's inference preprocessing: shortest side -> size (bicubic), centre-crop,
    [0, 1], OpenAI mean/std. Returns a (3, size, size) float tensor."""
    img = img.convert("RGB")
    w, h = img.size
    if (w, h) != (size, size):
        if w <= h:
            nw, nh = size, int(size * h / w)
        else:
            nw, nh = int(size * w / h), size
        img = img.resize((nw, nh), Image.BICUBIC)
        left = int(round((nw - size) / 2.0))
        top = int(round((nh - size) / 2.0))
        img = img.crop((left, top, left + size, top + size))
    arr = (np.asarray(img, dtype=np.float32) / 255.0 - _MEAN) / _STD
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


# --------------------------------------------------------------------------- data

SENSOR_NOISE_P = 0.4


def sensor_noise(img: Image.Image, std: float, rng: random.Random) -> Image.Image:
    """Photometric augmentation: i.i.d. Gaussian noise over the *whole* picture (shape and
    background alike), like camera grain. Not the held-out "noise" background style, which
    leaves the shape clean and adds low-frequency blotches to the background only."""
    nrng = np.random.default_rng(rng.getrandbits(32))
    arr = np.asarray(img, dtype=np.float32) + nrng.normal(0.0, std, size=(img.height, img.width, 3))
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")


class Filler:
    """Random whole words from the tokenizer's vocabulary, for caption augmentation."""

    def __init__(self, tokenizer):
        words = []
        for tok in tokenizer.encoder:
            if tok.endswith("</w>"):
                w = tok[:-4]
                if w.isascii() and w.isalpha() and 3 <= len(w) <= 10 and w not in _FORBIDDEN_FILLER:
                    words.append(w)
        self.words = sorted(set(words))

    def __call__(self, text: str, rng: random.Random) -> str:
        parts = text.split(" ")
        for _ in range(rng.randint(1, 3)):
            parts.insert(rng.randint(0, len(parts)), rng.choice(self.words))
        return " ".join(parts)


def make_batch(rng: random.Random, batch: int, tokenizer, filler: Filler):
    labels = [rng.randrange(len(CLASSES)) for _ in range(batch)]
    images, texts = [], []
    for k in labels:
        c, s = CLASSES[k]
        img = render_shape(c, s, rng, size=IMAGE_SIZE, style="plain")
        if rng.random() < SENSOR_NOISE_P:
            img = sensor_noise(img, rng.uniform(3.0, 24.0), rng)
        if rng.random() < 0.3:
            img = jpeg(img, rng.randint(50, 95))
        images.append(preprocess(img))
        t = caption(c, s, rng)
        if rng.random() < 0.35:
            t = filler(t, rng)
        texts.append(t)
    return torch.stack(images), tokenizer(texts), torch.tensor(labels)


_EOT_ID = 49407  # SimpleTokenizer's <end_of_text>, the largest id, where the text tower pools
TRAIN_TEXT_LEN = 24  # training captions are far shorter; see encode_text_short


def encode_text_short(model, toks: torch.Tensor, length: int = TRAIN_TEXT_LEN) -> torch.Tensor:
    """``model.encode_text`` on the first ``length`` token positions only.

    The text tower is causal and pools at the end-of-text token, so for captions shorter than
    ``length`` this equals ``model.encode_text(toks)`` exactly (checked in ``check_text_path``)
    while skipping the padding positions, about 4x less text compute in training.
    """
    toks = toks[:, :length]
    if not bool((toks == _EOT_ID).any(dim=1).all()):
        raise ValueError("caption longer than the training text length")
    x = model.token_embedding(toks) + model.positional_embedding[:length]
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0]), toks.argmax(dim=-1)]
    return x @ model.text_projection


def multi_positive_clip_loss(img_f, txt_f, logit_scale, labels):
    logits = logit_scale * img_f @ txt_f.t()
    same = (labels[:, None] == labels[None, :]).float()
    target = same / same.sum(dim=1, keepdim=True)
    loss_i = torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean()
    loss_t = torch.sum(-target * F.log_softmax(logits.t(), dim=1), dim=1).mean()
    return (loss_i + loss_t) / 2


# --------------------------------------------------------------------------- evaluation

def eval_images(condition: str, n_per_class: int, seed: int):
    """Pictures for one evaluation condition: (tensor batch, class labels)."""
    rng = random.Random(f"tiny-eval-{condition}-{seed}")
    xs, ys = [], []
    for k, (c, s) in enumerate(CLASSES):
        for _ in range(n_per_class):
            if condition == "in-distribution":
                img = render_shape(c, s, rng, size=IMAGE_SIZE, style="plain")
            elif condition == "size 200px":
                img = render_shape(c, s, rng, size=200, style="plain")
            elif condition == "demo 256px jpeg":
                img = jpeg(render_shape(c, s, rng, size=256, style="plain"), 90)
            elif condition == "gradient bg":
                img = render_shape(c, s, rng, size=IMAGE_SIZE, style="gradient")
            elif condition == "noise bg":
                img = render_shape(c, s, rng, size=IMAGE_SIZE, style="noise")
            elif condition == "noise bg 200px":
                img = render_shape(c, s, rng, size=200, style="noise")
            else:
                raise ValueError(condition)
            xs.append(preprocess(img))
            ys.append(k)
    return torch.stack(xs), torch.tensor(ys)


CONDITIONS = ("in-distribution", "size 200px", "demo 256px jpeg", "gradient bg", "noise bg",
              "noise bg 200px")


@torch.no_grad()
def text_features(model, tokenizer, template: str) -> torch.Tensor:
    toks = tokenizer([template.format(c=c, s=s) for c, s in CLASSES])
    return F.normalize(model.encode_text(toks), dim=-1)


@torch.no_grad()
def image_features(model, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([F.normalize(model.encode_image(x[i:i + 512]), dim=-1)
                      for i in range(0, len(x), 512)])


def accuracy(img_f, txt_f, ys) -> tuple[float, float, float]:
    pred = (img_f @ txt_f.t()).argmax(dim=1)
    ns = len(SHAPES)
    full = (pred == ys).float().mean().item()
    col = (pred // ns == ys // ns).float().mean().item()
    shp = (pred % ns == ys % ns).float().mean().item()
    return full, col, shp


@torch.no_grad()
def evaluate(model, tokenizer, n_per_class: int = 10, seed: int = 0, verbose: bool = True):
    model.eval()
    train_prompt = "a {c} {s}"
    txt_train = text_features(model, tokenizer, train_prompt)
    txt_held = [text_features(model, tokenizer, t) for t in HELDOUT_TEMPLATES]
    rows = []
    for cond in CONDITIONS:
        x, ys = eval_images(cond, n_per_class, seed)
        img_f = image_features(model, x)
        acc_train = accuracy(img_f, txt_train, ys)
        acc_held = [accuracy(img_f, t, ys)[0] for t in txt_held]
        rows.append((cond, acc_train, acc_held))
    if verbose:
        n = n_per_class * len(CLASSES)
        print(f"\nzero-shot accuracy over {len(CLASSES)} classes "
              f"({len(COLORS)} colours x {len(SHAPES)} shapes), {n} pictures per condition")
        print(f"prompt A = training phrasing {train_prompt!r}; "
              f"prompts B = {len(HELDOUT_TEMPLATES)} held-out phrasings (mean / worst)")
        print(f"{'condition':<18} {'A: class':>9} {'colour':>7} {'shape':>7} "
              f"{'B: mean':>8} {'B: worst':>9}")
        for cond, (full, col, shp), held in rows:
            print(f"{cond:<18} {full:9.1%} {col:7.1%} {shp:7.1%} "
                  f"{sum(held) / len(held):8.1%} {min(held):9.1%}")
        print("held-out phrasings:")
        for i, t in enumerate(HELDOUT_TEMPLATES):
            per = " ".join(f"{r[2][i]:.1%}" for r in rows)
            print(f"  {t!r:<36} {per}")
    return rows


# --------------------------------------------------------------------------- main

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_like_magpie(path: Path):
    import open_clip
    import safetensors.torch

    register_bundled_arch(TINY_ARCH)
    model = open_clip.create_model(TINY_ARCH, pretrained=None)
    sd = safetensors.torch.load_file(str(path))
    model.load_state_dict({k: v.float() for k, v in sd.items()})
    model.eval()
    return model, open_clip.get_tokenizer(TINY_ARCH)


def check_preprocess() -> float:
    """Max abs difference between our preprocess and open_clip's eval transform."""
    import open_clip

    tf = open_clip.image_transform(IMAGE_SIZE, is_train=False, mean=OPENAI_MEAN, std=OPENAI_STD,
                                   interpolation="bicubic", resize_mode="shortest")
    rng = random.Random(7)
    worst = 0.0
    for size in (64, 200, 256):
        img = render_shape("red", "star", rng, size=size)
        worst = max(worst, (tf(img) - preprocess(img)).abs().max().item())
    return worst


@torch.no_grad()
def check_text_path(model, tokenizer) -> float:
    """Max abs difference between encode_text_short and the model's own encode_text."""
    was = model.training
    model.eval()
    rng = random.Random(3)
    filler = Filler(tokenizer)
    texts = [filler(caption(c, s, rng), rng) for c, s in CLASSES[:16]]
    toks = tokenizer(texts)
    diff = (encode_text_short(model, toks) - model.encode_text(toks)).abs().max().item()
    model.train(was)
    return diff


def quick_eval(model, tokenizer) -> str:
    was = model.training
    model.eval()
    parts = []
    with torch.no_grad():
        txt = text_features(model, tokenizer, "a {c} {s}")
        for cond in ("in-distribution", "gradient bg", "noise bg"):
            x, ys = eval_images(cond, 2, 99)
            full, col, shp = accuracy(image_features(model, x), txt, ys)
            parts.append(f"{cond} {full:.0%} (c {col:.0%} s {shp:.0%})")
    model.train(was)
    return " | ".join(parts)


def train(steps: int, batch: int, lr: float, out: Path, log_every: int, eval_every: int) -> None:
    import open_clip
    from safetensors.torch import save_file

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    rng = random.Random(SEED)

    register_bundled_arch(TINY_ARCH)
    model = open_clip.create_model(TINY_ARCH, pretrained=None)
    tokenizer = open_clip.get_tokenizer(TINY_ARCH)
    filler = Filler(tokenizer)
    model.train()

    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "ln" in n or "bias" in n or "logit_scale" in n else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.98), eps=1e-6)
    warmup = max(1, min(200, steps // 10))

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return lr * 0.5 * (1 + math.cos(math.pi * t))

    print(f"text fast path vs encode_text: max abs diff {check_text_path(model, tokenizer):.2e}")
    print(f"training {TINY_ARCH}: {sum(p.numel() for p in model.parameters()):,} params, "
          f"{steps} steps x batch {batch}, lr {lr}, seed {SEED}, threads {torch.get_num_threads()}")
    t0 = time.time()
    t_data = 0.0
    run_loss = None
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        td = time.time()
        x, toks, labels = make_batch(rng, batch, tokenizer, filler)
        t_data += time.time() - td
        img_f = F.normalize(model.encode_image(x), dim=-1)
        txt_f = F.normalize(encode_text_short(model, toks), dim=-1)
        loss = multi_positive_clip_loss(img_f, txt_f, model.logit_scale.exp(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        run_loss = loss.item() if run_loss is None else 0.95 * run_loss + 0.05 * loss.item()
        if (step + 1) % log_every == 0 or step == 0 or step + 1 == steps:
            el = time.time() - t0
            print(f"step {step + 1:5d}/{steps}  loss {run_loss:.4f}  scale "
                  f"{model.logit_scale.exp().item():6.2f}  lr {lr_at(step):.2e}  "
                  f"{el / (step + 1):.3f}s/step (data {t_data / (step + 1):.3f})  "
                  f"elapsed {el / 60:.1f} min", flush=True)
        if eval_every and (step + 1) % eval_every == 0 and step + 1 < steps:
            te = time.time()
            print(f"  quick eval @ {step + 1}: {quick_eval(model, tokenizer)}", flush=True)
            t0 += time.time() - te  # evaluation does not count as training time
    train_s = time.time() - t0
    print(f"training time: {train_s:.0f} s ({train_s / 60:.1f} min) for {steps} steps")

    out.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: (v.detach().to(torch.float16) if v.is_floating_point() else v.detach()).contiguous()
          for k, v in model.state_dict().items()}
    save_file(sd, str(out), metadata={
        "arch": TINY_ARCH, "pretrained": TINY_SHAPES.pretrained, "seed": str(SEED),
        "steps": str(steps), "batch": str(batch), "lr": str(lr),
        "train_seconds": f"{train_s:.0f}", "dtype": "float16",
    })
    print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--out", type=Path, default=TINY_WEIGHTS_PATH)
    ap.add_argument("--eval-only", action="store_true",
                    help="load --out the way Magpie does and print the accuracy table")
    ap.add_argument("--eval-per-class", type=int, default=10,
                    help="pictures per class per evaluation condition")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=250,
                    help="quick progress evaluation every N steps (0: never)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    if not args.eval_only:
        train(args.steps, args.batch, args.lr, args.out, args.log_every, args.eval_every)
    if not args.out.is_file():
        print(f"no weights at {args.out}; train first", file=sys.stderr)
        return 1
    print(f"sha256 {sha256_file(args.out)}  {args.out}")
    print(f"preprocess vs open_clip.image_transform: max abs diff {check_preprocess():.2e}")
    model, tokenizer = load_like_magpie(args.out)
    print(f"text fast path vs encode_text: max abs diff {check_text_path(model, tokenizer):.2e}")
    t = time.time()
    evaluate(model, tokenizer, n_per_class=args.eval_per_class)
    print(f"(evaluation took {time.time() - t:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
