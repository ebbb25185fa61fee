"""What reading text (OCR) costs an indexing run, end to end, as a whole process.

    python bench/ocr_cost.py make [--smoke]          # the folders, under bench/.cache/data/ocr
    python bench/ocr_cost.py index photos [--ocr]     # one run: fresh library, then exit
    python bench/ocr_cost.py index screens [--ocr]
    python bench/ocr_cost.py index plain [--ocr]
    python bench/ocr_cost.py signs SRC DST            # SRC's photos, a sign in one in ten

`index` builds a fresh library in a temporary folder, loads ViT-B-32 (random weights in the
published layout, through the real loader; speed does not depend on weight values) and runs
`Indexer.run` with the CLI's tuning, with or without the OCR pass. Time pairs of runs with a
whole-process timer, with and without --ocr interleaved (A B A B ...), e.g. `/usr/bin/time -v`.

Folders: `photos` = 12 MP camera-like JPEGs without text (bench/_common.make_jpegs) plus one in
ten with a shop sign pasted in; `plain` = the same kind of photos, none with text; `screens` =
1080p UI screenshots with text (bench/_common.make_screenshots).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, load_vit_b32, make_jpegs, make_screenshots  # noqa: E402

DATA = CACHE / "data" / "ocr"


def make(smoke: bool) -> dict[str, Path]:
    from PIL import Image

    from indexer.text_pictures import draw_lines, find_fonts

    n_photos, n_screens = (4, 2) if smoke else (20, 6)
    tag = "smoke" if smoke else "full"
    photos = DATA / tag / "photos"
    paths = make_jpegs(photos, n_photos, 4000, 3000, quality=90, noise=4.0, seed=11)
    font = find_fonts().get("DejaVuSans")
    for i, p in enumerate(paths):
        if i % 10 == 5:  # a sign in the picture, as in a street photo
            marker = p.with_suffix(".sign")
            if marker.exists():
                continue
            im = Image.open(p).convert("RGB")
            sign = draw_lines(["MARKET STREET", "OPEN DAILY"], font, 90, dark=True).image
            im.paste(sign, (600, 500))
            im.save(p, "JPEG", quality=90, exif=Image.open(p).getexif().tobytes())
            marker.write_text("")
    make_screenshots(DATA / tag / "screens", n_screens)
    plain = DATA / tag / "plain"
    make_jpegs(plain, n_photos, 4000, 3000, quality=90, noise=4.0, seed=23)
    return {"photos": photos, "screens": DATA / tag / "screens", "plain": plain}


def signs(src: Path, dst: Path) -> None:
    """Copy a folder of JPEG photos, pasting a street sign (type 3.5% of the height, light on
    dark) into every tenth: a folder where some photos hold a few words."""
    from PIL import Image

    from indexer.text_pictures import draw_lines, find_fonts

    dst.mkdir(parents=True, exist_ok=True)
    font = find_fonts().get("DejaVuSans")
    files = sorted(p for p in src.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    for i, p in enumerate(files):
        out = dst / p.name
        if i % 10 != 5:
            shutil.copyfile(p, out)
            continue
        with Image.open(p) as im:
            exif = im.getexif().tobytes()
            pic = im.convert("RGB")
        sign = draw_lines(["MARKET STREET", "OPEN DAILY"], font, max(8, int(pic.height * 0.035)),
                          dark=True).image
        pic.paste(sign, (pic.width // 6, pic.height // 4))
        pic.save(out, "JPEG", quality=90, exif=exif)
    print(f"{len(files)} photos in {dst}, {len(files[5::10])} with a sign")


def index(folder: Path, ocr: bool) -> None:
    from app.wiring import tuning_for
    from indexer.indexing import Indexer
    from indexer.library import Library

    enc, spec = load_vit_b32()
    tune = tuning_for("cpu")
    tmp = Path(tempfile.mkdtemp(prefix="magpie-ocr-cost-"))
    try:
        started = time.perf_counter()
        with Library.open(tmp / "lib", spec) as lib:
            report = Indexer(lib, enc, workers=tune.workers, batch_size=tune.batch_size,
                             ocr=ocr).run([folder])
        print(f"{folder.name} ocr={ocr}: {report.summary()} "
              f"[{time.perf_counter() - started:.1f} s in Indexer]")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["make", "index", "signs"])
    ap.add_argument("folder", nargs="*", help="photos, screens or plain; for signs: SRC DST")
    ap.add_argument("--ocr", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.what == "signs":
        signs(Path(args.folder[0]), Path(args.folder[1]))
        return
    folders = make(args.smoke)
    if args.what == "make":
        print({k: str(v) for k, v in folders.items()})
        return
    index(folders[args.folder[0]], args.ocr)


if __name__ == "__main__":
    main()
