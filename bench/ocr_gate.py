"""The first look (OCR gate) on camera photos: what each detector resolution costs, and whether
it still sees text in a photo, against what embedding the same photo costs.

    python bench/ocr_gate.py [--photos N] [--sides 640,480,416,352]
    python bench/ocr_gate.py --read 2000,1280 [--photos N] [--types 45,60,90]

CPU seconds per photo (time.process_time, this process, one inference thread as the pass uses
on 2 cores) of: decoding a 12 MP JPEG small (JPEG draft) and running the detector at each side;
decoding at 224 px and embedding with ViT-B-32 (random weights, batch of 8). Then detection:
photos (4000x3000, bench/_common's photo-like ground) with a receipt or a sign pasted in, its
type `h` px high at full resolution (1% to 3% of the photo's height, as a sign across a street
or a receipt held at arm's length), counted as seen when the detector finds any box.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import _photo_like, load_vit_b32  # noqa: E402

from indexer import ocr  # noqa: E402


def photo_bytes(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def with_text(rng: np.random.Generator, type_px: int, kind: str, seed: int) -> np.ndarray:
    from PIL import Image

    from indexer.text_pictures import draw, find_fonts

    base = Image.fromarray(_photo_like(rng, 4000, 3000, 4.0))
    pic = draw(kind, find_fonts().get("DejaVuSans"), type_px, seed=seed, noise=0, blur=0.8).image
    if pic.width > 3600:
        pic = pic.resize((3600, int(pic.height * 3600 / pic.width)))
    x = int(rng.integers(0, 4000 - pic.width))
    y = int(rng.integers(0, max(1, 3000 - pic.height)))
    base.paste(pic, (x, y))
    return np.asarray(base)


def gate_at(data: bytes, side: int) -> tuple[bool, float]:
    """(text seen, CPU seconds) for decode-small + detector at `side`."""
    from PIL import Image

    t = time.process_time()
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (side, side))
        im = im.convert("RGB")
        im.thumbnail((side, side), Image.Resampling.BILINEAR)
        pixels = np.asarray(im)
    seen = ocr.has_text(pixels, side)
    return seen, time.process_time() - t


def read_at(data: bytes, side: int) -> tuple[list[str], float]:
    """(lines read, CPU seconds) for decode at `side` + the full read."""
    from PIL import Image

    t = time.process_time()
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (side, side))
        im = im.convert("RGB")
        im.thumbnail((side, side), Image.Resampling.BILINEAR)
        pixels = np.asarray(im)
    lines = [ln.text for ln in ocr.read_words(pixels)]
    return lines, time.process_time() - t


def reading(rng: np.random.Generator, photos: int, types: list[int], sides: list[int]) -> None:
    """What the full read of a camera photo with text costs and finds, per reading side."""
    from indexer.text_pictures import draw, find_fonts, word_found

    print(f"\nfull read of photos with text: CPU s per photo / words found ({photos} per cell)")
    print(f"{'type px':>8} " + " ".join(f"{s:>16}" for s in sides))
    for tp in types:
        cost = {s: [] for s in sides}
        found = {s: 0 for s in sides}
        words = 0
        for i in range(photos):
            kind = ("receipt", "sign")[i % 2]
            local = np.random.default_rng(1000 + i)
            data = photo_bytes(with_text(local, tp, kind, i))
            drawn = draw(kind, find_fonts().get("DejaVuSans"), tp, seed=i, noise=0, blur=0.8)
            words += len(drawn.words)
            for s in sides:
                lines, c = read_at(data, s)
                cost[s].append(c)
                found[s] += sum(word_found(w, lines) for w in drawn.words)
        print(f"{tp:>8} " + " ".join(
            f"{np.median(cost[s]):>6.2f} s {100 * found[s] / max(words, 1):>5.0f}%" for s in sides))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--sides", default="640,480,416,352")
    ap.add_argument("--types", default="30,45,60,90")
    ap.add_argument("--read", default="", help="only the full read at these sides, e.g. 2000,1280")
    args = ap.parse_args()
    if args.read:
        ocr.engine()
        reading(np.random.default_rng(7), args.photos, [int(t) for t in args.types.split(",")],
                [int(s) for s in args.read.split(",")])
        return
    sides = [int(s) for s in args.sides.split(",")]
    rng = np.random.default_rng(5)
    eng = ocr.engine()  # built before timing
    del eng
    plain = [photo_bytes(_photo_like(rng, 4000, 3000, 4.0)) for _ in range(args.photos)]

    from indexer.decode import load_image

    enc, spec = load_vit_b32()
    tmp = Path("/tmp/magpie-ocr-gate")
    tmp.mkdir(exist_ok=True)
    paths = []
    for i, b in enumerate(plain):
        p = tmp / f"p{i}.jpg"
        p.write_bytes(b)
        paths.append(p)
    enc.encode_images(np.stack([load_image(str(paths[0]), spec.preprocess.image_size).pixels]))
    t = time.process_time()
    batch = np.stack([load_image(str(p), spec.preprocess.image_size).pixels for p in paths])
    enc.encode_images(batch)
    embed = (time.process_time() - t) / len(paths)
    print(f"\ndecode at 224 + embed ViT-B-32: {embed:.3f} CPU s per 12 MP photo")
    print(f"\n{'side':>5} {'CPU s/photo':>12} {'share of embed':>15}  photos without text "
          "the gate passed")
    for side in sides:
        gate_at(plain[0], side)
        costs, fp = [], 0
        for b in plain:
            seen, c = gate_at(b, side)
            costs.append(c)
            fp += seen
        print(f"{side:>5} {np.median(costs):>12.3f} {100 * np.median(costs) / embed:>14.0f}%  "
              f"{fp}/{len(plain)}")
    types = [int(s) for s in args.types.split(",")]
    print(f"\ntext seen in photos with a receipt or sign pasted in (type px at 3000 px high; "
          f"{args.photos} photos per cell)")
    print(f"{'type px':>8} " + " ".join(f"{s:>6}" for s in sides))
    for tp in types:
        seen = {s: 0 for s in sides}
        for i in range(args.photos):
            kind = ("receipt", "sign")[i % 2]
            data = photo_bytes(with_text(rng, tp, kind, i))
            for s in sides:
                seen[s] += gate_at(data, s)[0]
        print(f"{tp:>8} " + " ".join(f"{seen[s]:>3}/{args.photos:<2}" for s in sides))


if __name__ == "__main__":
    main()
