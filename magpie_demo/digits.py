"""Real handwritten digits (scikit-learn's bundled `load_digits`, 1,797 scans of 8x8 px) as
pictures, for the second bundled test model (tiny-digits) and the search eval.

A different world from the synthetic shapes: real handwriting, grey ink on paper, ten classes
named by words ("a handwritten seven"). scikit-learn is only needed by the training script,
the eval and the tests (the `test` extra), never by the app; it is imported lazily.

Split: scans whose index is divisible by HELDOUT_EVERY never reach training; the eval and the
tests build their libraries from those alone.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
HELDOUT_EVERY = 4
CAPTION_TEMPLATES = (
    "a handwritten {w}",
    "the digit {w}",
    "the number {n}",
    "a {w}",
    "handwritten digit {n}",
    "a scanned {w}",
    "a photo of a handwritten {w}",
    "{w}",
)


def load_scans() -> tuple[np.ndarray, np.ndarray]:
    """(images (n, 8, 8) float in [0, 1], labels (n,)) from scikit-learn's digits."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise RuntimeError("the digits data needs scikit-learn (pip install '.[test]')") from None
    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


def split(train: bool) -> list[int]:
    """Indices of the training (or held-out) scans."""
    n = 1797
    return [i for i in range(n) if (i % HELDOUT_EVERY == 0) != train]


def render_digit(scan: np.ndarray, rng: random.Random | None = None, size: int = 64) -> Image.Image:
    """One scan as an RGB picture: dark ink on light paper, upscaled (bicubic); with `rng`, a
    random paper tint, ink colour, small shift and scale (training augmentation)."""
    paper = np.array([245, 242, 235], np.float32)
    ink = np.array([20, 20, 30], np.float32)
    pad, shift = 1, (0, 0)
    if rng is not None:
        paper = paper - np.array([rng.uniform(0, 40) for _ in range(3)], np.float32)
        ink = ink + np.array([rng.uniform(0, 80) for _ in range(3)], np.float32)
        pad = rng.choice((0, 1, 1, 2))
        shift = (rng.randint(-1, 1), rng.randint(-1, 1))
    a = np.pad(scan, pad)
    a = np.roll(a, shift, axis=(0, 1))
    rgb = paper[None, None] * (1 - a[..., None]) + ink[None, None] * a[..., None]
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    return img.resize((size, size), Image.Resampling.BICUBIC)


def caption(label: int, rng: random.Random) -> str:
    return rng.choice(CAPTION_TEMPLATES).format(w=DIGIT_WORDS[label], n=label)


def write_digit_pictures(dest: Path, per_class: int | None = None, seed: int = 0
                         ) -> dict[str, int]:
    """Held-out scans as neutral-named PNGs under `dest` ({file name: digit})."""
    images, labels = load_scans()
    rng = random.Random(f"digits-{seed}")
    idx = split(train=False)
    rng.shuffle(idx)
    taken: dict[int, int] = {}
    out: dict[str, int] = {}
    dest.mkdir(parents=True, exist_ok=True)
    for i in idx:
        y = int(labels[i])
        if per_class is not None and taken.get(y, 0) >= per_class:
            continue
        taken[y] = taken.get(y, 0) + 1
        name = f"SCAN_{i:04d}.png"
        render_digit(images[i]).save(dest / name)
        out[name] = y
    return out
