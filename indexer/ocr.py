"""Reading the words in a picture (OCR), with a pinned engine: RapidOCR's PP-OCRv4 models.

The detector, angle classifier and recogniser are ONNX files inside the rapidocr-onnxruntime
wheel, so reading works offline. Like the CLIP model they are pinned: `ENGINE` names the
package version and each model file's sha256, the library records that identity, and a
different one means every picture is read again (never a mix of two engines' text).

Three steps keep pictures without text cheap: `load_first_look` glances at a small grayscale
copy (a JPEG decoded at 1/2 to 1/8 scale) and shuts out pictures with nothing text-like in
them (indexer/text_pregate.py, ~3 CPU ms); `has_text` runs the detector alone on a small copy
(a 1280 px side, 480 for camera photos) and only when it finds line-shaped text does
`read_words` run the full read. The engine is imported lazily and built once per process, on
the first picture that gets past the glance.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from indexer.decode import MAX_PIXELS, DecodeError, _enable_heif, _to_rgb

ENGINE_PACKAGE = "rapidocr_onnxruntime"
ENGINE_VERSION = "1.4.4"
# sha256 of the model files shipped in that wheel: checked before the engine is built
MODEL_SHA256 = {
    "ch_PP-OCRv4_det_infer.onnx": "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
    "ch_ppocr_mobile_v2.0_cls_infer.onnx":
        "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
    "ch_PP-OCRv4_rec_infer.onnx": "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
}
# The first look: detector only, longest side this many pixels. 640 saw the 11 px UI text of
# only 3 of 6 1080p screenshots (one box or none: bench/ocr_cost.py's screens), 960 of 1 in 3,
# 1280 of all: 0.35-0.54 CPU s each, against 2-4 s to read one. Camera photos: below.
GATE_SIDE = 1280
# Camera photos (a JPEG or HEIF with a camera's EXIF) get the first look at this side instead:
# 0.071 CPU s against 0.105 at 640 for a 12 MP photo (embedding it costs 0.52), and it still
# sees type 1.5% of the photo's height (a street sign, a receipt held up); 640 sees 1%
# (bench/ocr_gate.py). Screenshots need the larger look above for their small UI text.
PHOTO_GATE_SIDE = 480
# A detected box counts as text only when it is line-shaped (long side this many times the
# short one): the detector also fires on blobs of photo texture (2 of 4 text-free photos at
# 640 px), and each such false alarm costs a full read.
LINE_ASPECT = 1.5
READ_SIDE = 2000  # the full read: longest side capped here (RapidOCR's own default)
# …and for camera photos: their first look passes text 1.5% of the height or more, which is
# 19 px here; read at 2000 a 12 MP photo costs 2.4 CPU s, at 1280 0.9 s, the same words found
# (bench/ocr_gate.py --read).
PHOTO_READ_SIDE = 1280
# The read's detector scales a picture's *short* side up to 736 px (RapidOCR's default), which
# small receipts and crops need; a picture whose short side is at least this is detected at the
# size it was loaded (already capped above): a 864x576 photo with a sign read the same words at
# 0.21 CPU s instead of 0.34 (bench/ocr_cost.py signs: 40 of 40 words either way).
NATIVE_SHORT_SIDE = 480
MIN_SCORE = 0.5  # recogniser confidence below this is dropped as noise
# Bump when the reading procedure changes in a way that changes the text (rotation tries…):
# 2: boxes stored as fractions of the picture; 3: the glance before the first look, and no
# upscaling of pictures with a short side >= NATIVE_SHORT_SIDE
PROCEDURE = 3


class OcrUnavailable(RuntimeError):
    """The engine is not installed or its model files are not the pinned ones."""


@dataclass(frozen=True)
class OcrLine:
    text: str
    box: tuple[tuple[int, int], ...]  # four corners (x, y) in the upright picture's pixels
    score: float


def engine_identity() -> str:
    """What the library records: changing any part means a re-read."""
    return json.dumps({"engine": ENGINE_PACKAGE, "version": ENGINE_VERSION,
                       "models": MODEL_SHA256, "procedure": PROCEDURE}, sort_keys=True)


def engine_label() -> str:
    return f"RapidOCR {ENGINE_VERSION} (PP-OCRv4 det+rec, mobile v2 angle classifier)"


# -- loading the engine --------------------------------------------------------------------
_engine = None
_engine_lock = threading.Lock()


def _model_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec(ENGINE_PACKAGE)
    if spec is None or not spec.origin:
        raise OcrUnavailable(
            f"reading text in pictures needs {ENGINE_PACKAGE.replace('_', '-')}=={ENGINE_VERSION}"
            " (pip install it, or index with --no-ocr)")
    return Path(spec.origin).parent / "models"


def _check_pins(folder: Path) -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        have = version(ENGINE_PACKAGE.replace("_", "-"))
    except PackageNotFoundError:
        have = "unknown"
    if have != ENGINE_VERSION:
        raise OcrUnavailable(f"OCR engine {ENGINE_PACKAGE} is {have}, Magpie is pinned to "
                             f"{ENGINE_VERSION}; install that version or index with --no-ocr")
    for name, want in MODEL_SHA256.items():
        path = folder / name
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            raise OcrUnavailable(f"OCR model {path} is missing; reinstall "
                                 f"{ENGINE_PACKAGE}=={ENGINE_VERSION}") from None
        if digest != want:
            raise OcrUnavailable(f"OCR model {path} does not match its pinned sha256; "
                                 f"reinstall {ENGINE_PACKAGE}=={ENGINE_VERSION}")


_checked: Path | None = None


def check_installed() -> Path:
    """The pinned engine's model folder, once its version and model files are checked; cheap
    (no model is loaded), so a run learns at its start that it cannot read text."""
    global _checked
    if _checked is None:
        folder = _model_dir()
        _check_pins(folder)
        _checked = folder
    return _checked


def engine():
    """The engine, built once per process after its model files are checked."""
    global _engine
    with _engine_lock:
        if _engine is None:
            folder = check_installed()
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:
                raise OcrUnavailable(f"the OCR engine cannot load: {exc}") from None
            # one inference thread per two cores: onnxruntime's spinning threads cost more CPU
            # than they save on a small box, and the pass decodes the next picture meanwhile
            threads = max(1, (os.cpu_count() or 2) // 2)
            _engine = RapidOCR(
                intra_op_num_threads=threads, inter_op_num_threads=1,
                det_model_path=str(folder / "ch_PP-OCRv4_det_infer.onnx"),
                cls_model_path=str(folder / "ch_ppocr_mobile_v2.0_cls_infer.onnx"),
                rec_model_path=str(folder / "ch_PP-OCRv4_rec_infer.onnx"),
                print_verbose=False,
            )
        return _engine


def release_engine() -> None:
    """Let the engine's sessions go (~100-300 MB in a GUI or `watch` process between passes);
    the next picture with text builds it again (~0.3 CPU s)."""
    global _engine
    with _engine_lock:
        _engine = None


def available() -> str | None:
    """None when OCR can run here, else the reason it cannot."""
    try:
        engine()
        return None
    except OcrUnavailable as exc:
        return str(exc)


# -- pictures ------------------------------------------------------------------------------
_CAMERA_TAGS = (0x010F, 0x0110, 0x0132)  # Make, Model, DateTime
_CAMERA_FORMATS = ("JPEG", "MPO", "HEIF", "AVIF")


def is_camera_photo(im: Image.Image) -> bool:
    """A camera's picture (its EXIF names a camera or a time taken), not a screenshot or a
    drawing: only the header is read."""
    if im.format not in _CAMERA_FORMATS:
        return False
    try:
        exif = im.getexif()
        return any(tag in exif for tag in _CAMERA_TAGS) or 0x9003 in exif.get_ifd(0x8769)
    except Exception:  # a damaged EXIF block: not worth a decision
        return False


@contextmanager
def _opened_for_text(path: str, side: int, photo_side: int | None) -> Iterator[tuple[Any, int]]:
    """The picture opened for reading text, with the side to decode it at (`photo_side` for a
    camera photo, when given): the embedding decoder's safety rules (pixel cap, first frame
    only), and any decoder failure turned into a DecodeError that costs this file's text only."""
    _enable_heif()
    try:
        with Image.open(path) as im:
            if photo_side is not None and is_camera_photo(im):
                side = photo_side
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise DecodeError(f"image too large ({w}×{h}) to read text from")
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
            yield im, side
    except DecodeError:
        raise
    except FileNotFoundError:
        raise DecodeError("file vanished before it could be read") from None
    except Exception as exc:  # any decoder failure costs this file's text, nothing more
        raise DecodeError(f"cannot read image for text: {type(exc).__name__}: {exc}") from None


def load_for_ocr(path: str, side: int = READ_SIDE, photo_side: int | None = None) -> np.ndarray:
    """Decode upright (EXIF orientation applied) RGB, longest side at most `side` (or
    `photo_side` for a camera photo, when given)."""
    with _opened_for_text(path, side, photo_side) as (im, side):
        if im.format == "JPEG":
            # decode at 1/2, 1/4 or 1/8 scale while the short side stays >= `side`: a
            # smaller draft (long side >= `side`) lost small type at the first look
            im.draft("RGB", (side, side))
        im.load()
        im = ImageOps.exif_transpose(im) or im
        rgb = _to_rgb(im)
        if max(rgb.size) > side:
            rgb.thumbnail((side, side), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8)


def load_glance(path: str, side: int = GATE_SIDE, photo_side: int | None = PHOTO_GATE_SIDE
                ) -> np.ndarray:
    """Grayscale, longest side at most `side` (`photo_side` for a camera photo), decoded as
    cheaply as possible: a JPEG at the smallest DCT scale whose longest side is still at least
    half of that (a 864x576 photo: 432x288, ~1.3 CPU ms instead of ~5.4 for the look at 480).
    Not turned upright: the glance looks both ways."""
    with _opened_for_text(path, side, photo_side) as (im, side):
        if im.format == "JPEG":
            im.draft("L", (side // 2, side // 2))
        im.load()
        # the same conversion as the read's (alpha over white, 16-bit scaled): black text
        # on a transparent ground must not turn black on black here
        gray = im if im.mode == "L" else _to_rgb(im).convert("L")
        if max(gray.size) > side:
            gray.thumbnail((side, side), Image.Resampling.BILINEAR)
        return np.asarray(gray, dtype=np.uint8)


def load_first_look(path: str) -> np.ndarray | None:
    """What the first look needs: None when a glance (`load_glance`) already shows no text,
    else the picture decoded for the detector (`load_for_ocr` at the first look's size)."""
    from indexer.text_pregate import looks_like_text

    if not looks_like_text(load_glance(path, GATE_SIDE, PHOTO_GATE_SIDE)):
        return None
    return load_for_ocr(path, GATE_SIDE, PHOTO_GATE_SIDE)


def _shrink(pixels: np.ndarray, side: int) -> np.ndarray:
    h, w = pixels.shape[:2]
    if max(h, w) <= side:
        return pixels
    scale = side / max(h, w)
    im = Image.fromarray(pixels).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                        Image.Resampling.BILINEAR)
    return np.asarray(im)


def has_text(pixels: np.ndarray, side: int = GATE_SIDE) -> bool:
    """The first look: on a copy at most `side` pixels long, the glance for anything text-like
    (indexer/text_pregate.py), then the detector alone. Pictures without text stop here."""
    from indexer.text_pregate import looks_like_text

    small = _shrink(pixels, side)
    if not looks_like_text(small):
        return False
    eng = engine()
    det = eng.text_det
    old = det.limit_side_len, det.limit_type
    # the detector's own rule scales the *short* side up to 736; for the gate use the long side
    det.limit_side_len, det.limit_type = side, "max"
    try:
        boxes, _ = det(small)
    finally:
        det.limit_side_len, det.limit_type = old
    return boxes is not None and any(_line_shaped(b) for b in boxes)


def _line_shaped(box) -> bool:
    corners = np.asarray(box, dtype=np.float32)
    w = float(np.linalg.norm(corners[1] - corners[0]))
    h = float(np.linalg.norm(corners[3] - corners[0]))
    return max(w, h) >= LINE_ASPECT * max(min(w, h), 1.0)


def _read_once(pixels: np.ndarray) -> list[OcrLine]:
    eng = engine()
    if min(pixels.shape[:2]) < NATIVE_SHORT_SIDE:
        result, _ = eng(pixels)
    else:
        det = eng.text_det
        old = det.limit_type
        det.limit_type = "max"  # never scale up; the loader has already capped the long side
        try:
            result, _ = eng(pixels)
        finally:
            det.limit_type = old
    lines = []
    for box, text, score in result or []:
        text = " ".join(str(text).split())
        if text and float(score) >= MIN_SCORE:
            corners = tuple((int(round(x)), int(round(y))) for x, y in box)
            lines.append(OcrLine(text, corners, float(score)))
    return lines


def _tall_share(lines: list[OcrLine]) -> float:
    if not lines:
        return 0.0
    tall = 0
    for ln in lines:
        xs = [p[0] for p in ln.box]
        ys = [p[1] for p in ln.box]
        tall += (max(ys) - min(ys)) > 1.2 * (max(xs) - min(xs))
    return tall / len(lines)


def _weight(lines: list[OcrLine]) -> float:
    return sum(len(ln.text.replace(" ", "")) * ln.score for ln in lines)


def _unrotate(lines: list[OcrLine], width: int) -> list[OcrLine]:
    """Boxes read on the picture turned 90° clockwise, mapped back to the upright picture."""
    # turned clockwise: (x, y) upright -> (H - 1 - y, x); inverse: (x', y') -> (y', W' - 1 - x')
    out = []
    for ln in lines:
        box = tuple((y, width - 1 - x) for x, y in ln.box)
        out.append(OcrLine(ln.text, box, ln.score))
    return out


def read_words(pixels: np.ndarray) -> list[OcrLine]:
    """Every line of text in an upright RGB picture, top to bottom.

    Text at 180° is turned by the angle classifier. Text at 90°/270° shows up as tall boxes:
    then the picture is also read turned a quarter (the classifier settles which way up) and
    the reading with more confident characters wins.
    """
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError("read_words needs an RGB picture (H, W, 3)")
    lines = _read_once(pixels)
    if _tall_share(lines) >= 0.5 or (not lines and min(pixels.shape[:2]) > 0):
        turned = np.ascontiguousarray(np.rot90(pixels, k=-1))  # 90° clockwise
        other = _read_once(turned)
        if _weight(other) > _weight(lines):
            lines = _unrotate(other, turned.shape[1])
    return lines


# -- search text ---------------------------------------------------------------------------
# Characters OCR confuses often, folded to one form on both sides (index and query), so that
# "T0TAL" is found by "total" and "RE16" by "re16" whichever way the engine read it.
_CONFUSABLE = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l", "!": "l", "5": "s"})


def fold(text: str) -> str:
    """Search form of OCR text or of a query word: lower case, accents off, letters and
    digits only (the recogniser often drops the spaces between words and reads "42.50" as
    "42,50"), confusable characters merged."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return "".join(c for c in text if c.isalnum()).translate(_CONFUSABLE)


def near_substring(word: str, text: str, allowed: int) -> bool:
    """Does `text` hold `word` with at most `allowed` wrong, missing or extra characters?
    (Sellers' approximate substring match: edit distance to the best-matching span.)"""
    if word in text:
        return True
    prev = [0] * (len(text) + 1)  # a match may start anywhere: row 0 is all zeros
    for i, wc in enumerate(word, 1):
        cur = [i] + [0] * len(text)
        for j, tc in enumerate(text, 1):
            cur[j] = min(prev[j - 1] + (wc != tc), prev[j] + 1, cur[j - 1] + 1)
        prev = cur
    return min(prev) <= allowed
