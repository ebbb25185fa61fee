"""Synthetic pictures of coloured shapes, for the bundled tiny-shapes model and the demo folder.

Pure Python + Pillow + numpy (no torch, no Qt). Everything is driven by an explicit
``random.Random`` so that a seed reproduces the same pictures on every machine.

* ``render_shape(color, shape, rng, size, style)`` draws one picture: a single shape of one of
  ``COLORS`` on a background. ``style="plain"`` (a flat background) is what the model is trained
  on; ``"gradient"`` and ``"noise"`` are held out for evaluation.
* ``caption(color, shape, rng)`` gives a training caption such as "a photo of a red circle".
* ``make_demo_folder(dest, ...)`` writes a small, deterministic sample library (pictures in a
  couple of subfolders plus a few notes) that a newcomer can search; it returns the labels.
"""
from __future__ import annotations

import math
import random
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (250, 220, 30),
    "orange": (250, 130, 20),
    "purple": (130, 40, 170),
    "pink": (250, 120, 190),
    "brown": (120, 70, 30),
    "black": (15, 15, 15),
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "heart", "cross")

STYLES: tuple[str, ...] = ("plain", "gradient", "noise")

_SUPERSAMPLE = 4
_COLOR_JITTER = 10  # +- per channel around the nominal colour
_MIN_BG_DIST = 120.0  # minimum RGB distance between shape colour and background colour


# --------------------------------------------------------------------------- geometry

def _rotate(points: list[tuple[float, float]], angle: float) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    return [(x * c - y * s, x * s + y * c) for x, y in points]


def _outline(shape: str) -> list[tuple[float, float]]:
    """Polygon of a shape in a unit frame (roughly inside the unit circle), y pointing down."""
    if shape == "circle":
        n = 64
        return [(math.cos(2 * math.pi * i / n), math.sin(2 * math.pi * i / n)) for i in range(n)]
    if shape == "square":
        h = 0.8
        return [(-h, -h), (h, -h), (h, h), (-h, h)]
    if shape == "triangle":
        # equilateral, apex up, centred on its bounding box rather than its centroid
        pts = [(math.cos(a), math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
        return [(x, y + 0.25) for x, y in pts]
    if shape == "star":
        pts = []
        for i in range(10):
            r = 1.0 if i % 2 == 0 else 0.42
            a = -math.pi / 2 + i * math.pi / 5
            pts.append((r * math.cos(a), r * math.sin(a) + 0.1))
        return pts
    if shape == "heart":
        pts = []
        n = 72
        for i in range(n):
            t = 2 * math.pi * i / n
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            pts.append((x / 17.0, -y / 17.0 + 0.05))
        return pts
    if shape == "cross":
        a, b = 0.3, 0.9  # half arm width, half length
        return [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a),
                (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)]
    raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")


# --------------------------------------------------------------------------- colours

def _dist(a, b) -> float:
    return float(math.dist(a, b))


def _seg_dist(p, a, b) -> float:
    """Distance from point p to the segment a-b in RGB space."""
    pa, ba = np.subtract(p, a, dtype=float), np.subtract(b, a, dtype=float)
    denom = float(ba @ ba)
    t = 0.0 if denom == 0 else min(1.0, max(0.0, float(pa @ ba) / denom))
    return float(np.linalg.norm(pa - t * ba))


def _random_bg(rng: random.Random, fg, min_dist: float = _MIN_BG_DIST) -> tuple[int, int, int]:
    while True:
        c = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if _dist(c, fg) >= min_dist:
            return c


def _background(style: str, fg, rng: random.Random, size: int) -> np.ndarray:
    """An (size, size, 3) float array in 0..255."""
    if style == "plain":
        return np.broadcast_to(np.array(_random_bg(rng, fg), dtype=np.float32), (size, size, 3)).copy()
    if style == "gradient":
        while True:
            a, b = _random_bg(rng, fg), _random_bg(rng, fg)
            if _seg_dist(fg, a, b) >= _MIN_BG_DIST * 0.85 and _dist(a, b) >= 80:
                break
        ang = rng.uniform(0, 2 * math.pi)
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1) - 0.5
        t = xs * math.cos(ang) + ys * math.sin(ang)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        return (np.array(a, np.float32) * (1 - t[..., None]) + np.array(b, np.float32) * t[..., None])
    if style == "noise":
        base = np.array(_random_bg(rng, fg, min_dist=_MIN_BG_DIST * 1.25), dtype=np.float32)
        nrng = np.random.default_rng(rng.getrandbits(32))
        # low-frequency blotches plus per-pixel grain
        coarse = nrng.normal(0.0, 25.0, size=(max(size // 8, 2), max(size // 8, 2), 3)).astype(np.float32)
        coarse_img = np.stack([
            np.asarray(Image.fromarray(coarse[..., i]).resize((size, size), Image.Resampling.BILINEAR))
            for i in range(3)
        ], axis=-1)
        grain = nrng.normal(0.0, 18.0, size=(size, size, 3)).astype(np.float32)
        return np.clip(base + coarse_img + grain, 0, 255)
    raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")


# --------------------------------------------------------------------------- rendering

def render_shape(color: str, shape: str, rng: random.Random, size: int = 64,
                 style: str = "plain") -> Image.Image:
    """One RGB picture of a ``color`` ``shape`` on a background of the given ``style``.

    The shape's size (about 45-85% of the picture), position, small rotation (+-20 degrees)
    and exact shade are random; the background never comes close to the shape's colour.
    """
    if color not in COLORS:
        raise ValueError(f"unknown color {color!r}; choose one of {', '.join(COLORS)}")
    outline = _outline(shape)
    base = COLORS[color]
    fg = tuple(min(255, max(0, c + rng.randint(-_COLOR_JITTER, _COLOR_JITTER))) for c in base)

    radius = rng.uniform(0.22, 0.42) * size
    margin = radius * 1.02
    cx = rng.uniform(margin, size - margin)
    cy = rng.uniform(margin, size - margin)
    angle = math.radians(rng.uniform(-20.0, 20.0))

    ss = _SUPERSAMPLE
    big = size * ss
    pts = [((cx + x * radius) * ss, (cy + y * radius) * ss) for x, y in _rotate(outline, angle)]
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).polygon(pts, fill=255)
    alpha = np.asarray(mask.resize((size, size), Image.Resampling.BOX), dtype=np.float32)[..., None] / 255.0

    bg = _background(style, fg, rng, size)
    out = bg * (1.0 - alpha) + np.array(fg, dtype=np.float32) * alpha
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")


CAPTION_TEMPLATES: tuple[str, ...] = (
    "a {c} {s}",
    "{c} {s}",
    "a photo of a {c} {s}",
    "a picture of a {c} {s}",
    "an image of a {c} {s}",
    "a {c} {s} on a plain background",
    "the {c} {s}",
    "a big {c} {s}",
    "a small {c} {s}",
    "one {c} {s}",
    "a {s}, {c}",
    "a {s} in {c}",
    "a {s} colored {c}",
    "{c} colored {s}",
    "a {c} shape: {s}",
)


def caption(color: str, shape: str, rng: random.Random) -> str:
    """A training caption for one picture, e.g. "a photo of a red circle"."""
    if color not in COLORS or shape not in SHAPES:
        raise ValueError(f"unknown class {color!r} {shape!r}")
    c = "grey" if color == "gray" and rng.random() < 0.3 else color
    return rng.choice(CAPTION_TEMPLATES).format(c=c, s=shape)


# --------------------------------------------------------------------------- demo folder

class DemoItem(NamedTuple):
    """One file written by ``make_demo_folder``: its path and, for pictures, what it shows.

    Notes have ``color`` and ``shape`` set to None.
    """

    path: Path
    color: str | None
    shape: str | None


_SUBFOLDERS = ("Camera", "Downloads", "Holiday 2023")

_NOTES: dict[str, str] = {
    "Notes/shopping list.txt": (
        "Shopping list\n"
        "- milk, eggs, bread\n"
        "- green apples\n"
        "- a yellow star sticker for Mia's chart\n"
        "- batteries for the kitchen clock\n"
    ),
    "Notes/hardware store.md": (
        "# Hardware store\n\n"
        "Turn left at the blue triangle sign at the hardware store, then the paint aisle is "
        "past the orange cones. Buy white paint and a brush.\n"
    ),
    "Notes/quilt ideas.md": (
        "# Quilt ideas\n\n"
        "Red hearts on a white background for Grandma's quilt. Maybe a border of small "
        "purple squares.\n"
    ),
    "Notes/first aid.txt": (
        "The first aid kit is the box with the white cross, on the top shelf in the hallway.\n"
    ),
    "Notes/garden.txt": (
        "Garden plan: a round bed of pink flowers in the middle, green hedge along the fence, "
        "brown mulch under the tree.\n"
    ),
    "Notes/board game.md": (
        "# Board game night\n\n"
        "Missing pieces: one black circle counter and a gray square tile. Bring snacks.\n"
    ),
}


def _demo_plan(n_images: int, seed: int) -> list[tuple[str, str, str]]:
    """(relative path, color, shape) for every picture; cheap, no rendering."""
    rng = random.Random(f"magpie-demo-plan-{seed}")
    classes = [(c, s) for c in COLORS for s in SHAPES]
    labels: list[tuple[str, str]] = []
    while len(labels) < n_images:  # every class once before any repeats
        batch = classes[:]
        rng.shuffle(batch)
        labels.extend(batch)
    labels = labels[:n_images]
    plan = []
    for i, (c, s) in enumerate(labels, start=1):
        folder = _SUBFOLDERS[rng.randrange(len(_SUBFOLDERS))]
        ext = "png" if rng.random() < 0.25 else "jpg"
        plan.append((f"{folder}/IMG_{i:04d}.{ext}", c, s))
    return plan


def _inside(path: Path, root: Path) -> Path:
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise ValueError(f"refusing to write {path} outside {root}")
    return resolved


def make_demo_folder(dest: Path, n_images: int = 96, seed: int = 0,
                     image_size: int = 256) -> list[DemoItem]:
    """Write a sample library into ``dest`` and return what each file shows.

    Pictures are named neutrally (``Camera/IMG_0001.jpg``, some ``.png``) and spread over a
    few subfolders; every colour x shape class appears once before any repeats. A few short
    notes (``Notes/*.txt``, ``Notes/*.md``) mention shapes and everyday things. Nothing else is
    written (no label file) and nothing is written outside ``dest``. The result is
    deterministic for a given ``seed``; ``demo_labels`` recomputes the labels without writing.

    Returns one ``DemoItem(path, color, shape)`` per file written, pictures first; notes have
    ``color=shape=None``. Paths are absolute (``dest`` resolved).
    """
    if n_images < 0:
        raise ValueError("n_images must be >= 0")
    root = Path(dest).resolve()
    root.mkdir(parents=True, exist_ok=True)
    items: list[DemoItem] = []
    for i, (rel, color, shape) in enumerate(_demo_plan(n_images, seed)):
        path = _inside(root / rel, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        _inside(path.parent, root)
        rng = random.Random(f"magpie-demo-image-{seed}-{i}")
        img = render_shape(color, shape, rng, size=image_size, style="plain")
        if path.suffix == ".jpg":
            img.save(path, format="JPEG", quality=90)
        else:
            img.save(path, format="PNG")
        items.append(DemoItem(path, color, shape))
    for rel, text in _NOTES.items():
        path = _inside(root / rel, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        _inside(path.parent, root)
        path.write_text(text, encoding="utf-8")
        items.append(DemoItem(path, None, None))
    return items


def demo_labels(dest: Path, n_images: int = 96, seed: int = 0) -> dict[Path, tuple[str, str]]:
    """``{absolute picture path: (color, shape)}`` for ``make_demo_folder(dest, n_images, seed)``.

    Pure computation: reads and writes nothing.
    """
    root = Path(dest).resolve()
    return {root / rel: (c, s) for rel, c, s in _demo_plan(n_images, seed)}
