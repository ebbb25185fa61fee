"""The glance before the OCR first look (indexer/text_pregate.py): which pictures it passes on
to the detector, and what it costs, on photos without text and on pictures with text.

    python bench/ocr_pregate.py [--photos 60] [--detector]

Every picture goes through the pass's own decode path (`ocr.load_glance`: JPEGs at 1/2-1/8
scale, gray). CPU ms per picture (time.process_time) = decode + glance. Sets, made under
bench/.cache/data/ocr/pregate:
  photos   photo-like JPEGs without text (bench/_common's ground: soft shapes, texture, noise),
           864x576 and 4000x3000, camera EXIF, a fresh seed each
  busy     dense small shapes and lines, some with fence-like bars (foliage, gravel, railings)
  signs    photo-like JPEGs with a sign or receipt pasted in, type 1.5% / 2% / 3% of the height
  corpus   indexer/text_pictures.draw: every font x 20/28/40 px x 0/90/180/270 degrees
  screens  1080p UI screenshots (bench/_common.make_screenshots), 11 px text
With --detector, also whether the detector alone (the first look without the glance) sees
text: the glance must pass every picture the detector passes.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, _photo_like, make_screenshots  # noqa: E402

from indexer import ocr  # noqa: E402
from indexer.text_pregate import looks_like_text  # noqa: E402

DATA = CACHE / "data" / "ocr" / "pregate"


def _save_photo(arr: np.ndarray, path: Path) -> Path:
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "Phone maker"
    Image.fromarray(arr).save(path, "JPEG", quality=88, exif=exif.tobytes())
    return path


def photos(n: int) -> list[Path]:
    folder = DATA / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"photo_{i:03d}.jpg"
        if not p.exists():
            rng = np.random.default_rng(100 + i)
            w, h = (4000, 3000) if i % 6 == 5 else (864, 576)
            _save_photo(_photo_like(rng, w, h, float(rng.uniform(2, 8))), p)
        out.append(p)
    return out


def busy(n: int) -> list[Path]:
    from PIL import Image, ImageDraw, ImageFilter

    folder = DATA / "busy"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"busy_{i:03d}.jpg"
        if not p.exists():
            rng = np.random.default_rng(300 + i)
            im = Image.new("RGB", (960, 720), tuple(int(c) for c in rng.integers(0, 256, 3)))
            d = ImageDraw.Draw(im)
            for _ in range(int(rng.integers(300, 3000))):
                x, y, r = int(rng.integers(0, 960)), int(rng.integers(0, 720)), int(rng.integers(2, 14))
                col = tuple(int(c) for c in rng.integers(0, 256, 3))
                if rng.random() < 0.5:
                    d.ellipse((x, y, x + r, y + int(r * rng.uniform(0.3, 2))), fill=col)
                else:
                    d.line((x, y, x + int(rng.integers(-15, 15)), y + int(rng.integers(-15, 15))),
                           fill=col, width=int(rng.integers(1, 3)))
            if i % 5 == 0:  # railings
                for x in range(0, 960, int(rng.integers(8, 30))):
                    d.rectangle((x, 0, x + 3, 720), fill=(240, 240, 240))
            im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.5))))
            _save_photo(np.asarray(im), p)
        out.append(p)
    return out


def signs() -> list[tuple[str, Path]]:
    from PIL import Image

    from indexer.text_pictures import draw, find_fonts

    folder = DATA / "signs"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    fonts = [f for f in (find_fonts().get("DejaVuSans"), find_fonts().get("FreeSerif")) if f] or [None]
    i = 0
    for w, h in ((864, 576), (4000, 3000)):
        for share in (0.015, 0.02, 0.03):
            for kind in ("sign", "receipt"):
                for dark in (True, False):
                    i += 1
                    label = f"{w}x{h} type {100 * share:.1f}% {kind} {'dark' if dark else 'light'}"
                    p = folder / f"sign_{i:03d}.jpg"
                    if not p.exists():
                        rng = np.random.default_rng(500 + i)
                        base = Image.fromarray(_photo_like(rng, w, h, 4.0))
                        pic = draw(kind, fonts[i % len(fonts)], max(6, int(h * share)), seed=i,
                                   dark=dark, noise=0, blur=0.8).image
                        if pic.width > w * 0.9:
                            pic = pic.resize((int(w * 0.9), int(pic.height * w * 0.9 / pic.width)))
                        x = int(rng.integers(0, max(1, w - pic.width)))
                        y = int(rng.integers(0, max(1, h - pic.height)))
                        base.paste(pic, (x, y))
                        _save_photo(np.asarray(base), p)
                    out.append((label, p))
    return out


def corpus() -> list[tuple[str, np.ndarray]]:
    from indexer.text_pictures import KINDS, draw, find_fonts

    out = []
    for k, (fname, fpath) in enumerate(find_fonts().items()):
        for size in (20, 28, 40):
            for rot in (0, 90, 180, 270):
                kind = KINDS[(k + size + rot // 90) % len(KINDS)]
                pic = draw(kind, fpath, size, rotation=rot, seed=k)
                out.append((f"{fname} {size}px {rot}deg {kind}",
                            np.asarray(pic.image.convert("RGB"))))
    return out


def glance_file(path: Path) -> tuple[bool, float]:
    t = time.process_time()
    seen = looks_like_text(ocr.load_glance(str(path)))
    return seen, time.process_time() - t


def detector_file(path: Path) -> bool:
    pixels = ocr.load_for_ocr(str(path), ocr.GATE_SIDE, ocr.PHOTO_GATE_SIDE)
    return _detector(pixels)


def _detector(pixels: np.ndarray) -> bool:
    """The first look as it was: the detector alone, no glance."""
    import indexer.text_pregate as tp

    real = tp.looks_like_text
    tp.looks_like_text = lambda gray: True
    try:
        return ocr.has_text(pixels)
    finally:
        tp.looks_like_text = real


def report(name: str, seen: list[bool], costs: list[float], labels: list[str],
           det: list[bool] | None, want_text: bool) -> None:
    n = len(seen)
    line = (f"{name:8} {n:>4} pictures  glance passed {sum(seen):>4}  "
            f"CPU ms/picture median {1000 * np.median(costs):5.1f}")
    if det is not None:
        line += f"  detector passed {sum(det):>4}"
        if want_text:  # the glance must not lose what the detector sees
            lost = [lb for lb, s, d in zip(labels, seen, det) if d and not s]
            line += f"  of those shut out by the glance: {len(lost)}"
        else:  # pictures without text the detector passed: each would cost a full read
            line += f" (false alarms; past both: {sum(s and d for s, d in zip(seen, det))})"
    print(line)
    if want_text:
        missed = [lb for lb, s in zip(labels, seen) if not s]
        if missed:
            print("   glance shut out:", missed[:12])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=60)
    ap.add_argument("--busy", type=int, default=30)
    ap.add_argument("--detector", action="store_true")
    args = ap.parse_args()
    if args.detector:
        ocr.engine()
    for name, files in (("photos", [(p.name, p) for p in photos(args.photos)]),
                        ("busy", [(p.name, p) for p in busy(args.busy)]),
                        ("signs", signs()),
                        ("screens", [(p.name, p) for p in make_screenshots(DATA / "screens", 6)])):
        res = [glance_file(p) for _, p in files]
        det = [detector_file(p) for _, p in files] if args.detector else None
        report(name, [s for s, _ in res], [c for _, c in res], [lb for lb, _ in files], det,
               name in ("signs", "screens"))
    pics = corpus()
    seen, costs = [], []
    for _, px in pics:
        t = time.process_time()
        seen.append(looks_like_text(ocr._shrink(px, ocr.GATE_SIDE)))
        costs.append(time.process_time() - t)
    det = [_detector(px) for _, px in pics] if args.detector else None
    report("corpus", seen, costs, [lb for lb, _ in pics], det, True)


if __name__ == "__main__":
    main()
