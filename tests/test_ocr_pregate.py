"""The glance before the OCR first look (indexer/text_pregate.py, ocr.load_first_look): text
pictures get past it at every quarter turn, light on dark, small type and large; ordinary
photos are shut out without the detector, the engine or a second decode."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from indexer import ocr
from indexer.catalogue import Catalogue, NewChunk
from indexer.ocr_pass import OcrPass
from indexer.text_pictures import KINDS, draw, draw_lines, find_fonts
from indexer.text_pregate import looks_like_text

FONTS = find_fonts()
LINES = ["HARDWARE STORE", "Claw hammer 12.99", "Plate RE16 TGK", "TOTAL 42.50"]


def gray(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("L"))


def photo(w: int, h: int, seed: int, noise: float = 5.0) -> Image.Image:
    """Photo-like ground: soft colour field, shapes with sharp outlines, blotchy texture and
    sensor noise (bench/_common's kind of photo, which the detector sometimes fired on)."""
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(
        (w, h), Image.Resampling.BICUBIC)
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(12, 30))):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        box = (x, y, x + int(rng.integers(w // 30, w // 4)), y + int(rng.integers(h // 30, h // 4)))
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)(box, fill=fill)
    tex = Image.fromarray(rng.integers(0, 256, (h // 16, w // 16), dtype=np.uint8)).resize(
        (w, h), Image.Resampling.BILINEAR)
    arr = np.asarray(im.filter(ImageFilter.GaussianBlur(1.2)), dtype=np.float32)
    arr += (np.asarray(tex, dtype=np.float32)[..., None] - 128) / 6
    arr += rng.normal(0, noise, (h, w, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
@pytest.mark.parametrize("dark", [False, True])
def test_text_gets_past_the_glance_at_every_quarter_turn(rotation, dark):
    for size in (20, 40, 64):
        pic = draw_lines(LINES, FONTS.get("DejaVuSans"), size, rotation=rotation, dark=dark)
        assert looks_like_text(gray(pic.image)), (size, rotation, dark)


def test_every_font_and_kind_at_20px_and_up_gets_past_the_glance():
    shut = []
    for k, (name, path) in enumerate(FONTS.items()):
        for size in (20, 28, 40):
            for rot in (0, 90, 180, 270):
                kind = KINDS[(k + size + rot // 90) % len(KINDS)]
                pic = draw(kind, path, size, rotation=rot, seed=k)
                if not looks_like_text(gray(pic.image)):
                    shut.append((name, size, rot, kind))
    assert shut == []


def test_low_contrast_text_gets_past_the_glance():
    for size in (20, 60):
        ink = np.asarray(draw_lines(LINES, FONTS.get("DejaVuSerif"), size).image.convert("L"),
                         dtype=np.float32)
        faint = (150 + (ink - 20) * 80 / 230).clip(0, 255).astype(np.uint8)  # 80 grey levels
        assert looks_like_text(faint), size


def _camera_jpeg(im: Image.Image, path) -> str:
    exif = Image.Exif()
    exif[0x010F] = "Phone maker"
    im.save(path, "JPEG", quality=88, exif=exif.tobytes())
    return str(path)


def test_a_sign_in_a_photo_gets_past_the_glance(tmp_path):
    """Type 2% of the photo's height, seen through the pass's own cheap decode (1/2-1/8 JPEG
    scale, gray): small, but the detector sees it (tests/test_ocr.py), so the glance must."""
    for k, (w, h) in enumerate(((864, 576), (2400, 1800))):
        base = photo(w, h, 40 + k)
        sign = draw_lines(["MARKET STREET", "OPEN DAILY"], FONTS.get("DejaVuSans"),
                          int(h * 0.02), dark=True, blur=0.8).image
        base.paste(sign, (w // 5, h // 3))
        path = _camera_jpeg(base, tmp_path / f"street{k}.jpg")
        glance = ocr.load_glance(path)
        assert max(glance.shape) <= ocr.PHOTO_GATE_SIDE and glance.ndim == 2
        assert looks_like_text(glance), (w, h)


def test_ordinary_photos_are_shut_out(tmp_path):
    for seed in range(12):
        w, h = ((864, 576), (1600, 1200), (600, 800))[seed % 3]
        path = _camera_jpeg(photo(w, h, seed, noise=2.0 + seed % 4 * 2), tmp_path / f"{seed}.jpg")
        assert not looks_like_text(ocr.load_glance(path)), seed
    yy, xx = np.mgrid[0:900, 0:1200]  # a smooth gradient with noise, as a PNG
    sky = np.stack([(xx / 1200 * 200 + 30), (yy / 900 * 150 + 60), np.full_like(xx, 120.0)], -1)
    sky += np.random.default_rng(1).normal(0, 8, sky.shape)
    assert not looks_like_text(np.clip(sky, 0, 255).astype(np.uint8))
    assert not looks_like_text(np.full((4, 4), 200, np.uint8))  # too small to hold a word


def test_photos_without_text_cost_no_detector_engine_or_second_decode(tmp_path, monkeypatch):
    """The pass on photos without text: one cheap gray decode each; the engine is never built
    (before the glance every photo got the detector, ~30 CPU ms, and some a full read)."""
    cat = Catalogue(tmp_path / "cat.sqlite")
    root = cat.add_root(str(tmp_path))
    for i in range(4):
        path = _camera_jpeg(photo(864, 576, 60 + i), tmp_path / f"IMG_{i}.jpg")
        fid = cat.upsert_pending(root, path, "image", 10, 1, f"h{i}")
        cat.commit_embedded([(fid, [NewChunk(0, None, np.ones(4, np.float32))], None, "")], [])

    def no_engine():
        raise AssertionError("the engine was built for a photo without text")

    looks: list[str] = []
    real_look = ocr.load_for_ocr
    monkeypatch.setattr(ocr, "engine", no_engine)
    monkeypatch.setattr(ocr, "load_for_ocr", lambda p, *a: looks.append(p) or real_look(p, *a))
    errors = []
    report = OcrPass(cat, on_error=errors.append).run()
    assert errors == [] and report.errors == 0
    assert report.looked == 4 and report.with_text == 0
    assert looks == []  # no second decode at the detector's size
    assert cat.ocr_pending() == []  # settled: the next run does not look again
    cat.close()


def test_a_picture_with_text_still_goes_on_to_the_detector(tmp_path):
    path = tmp_path / "receipt.png"
    draw_lines(LINES, FONTS.get("DejaVuSans"), 22).image.save(path)
    look = ocr.load_first_look(str(path))
    assert look is not None and look.ndim == 3  # the detector's RGB copy, not the glance


def test_text_on_a_transparent_ground_and_in_16_bit_gets_past_the_glance(tmp_path):
    """The glance converts as the read does: alpha over white (black text on a transparent
    ground, as many exported PNGs are), 16-bit scaled to 8."""
    ink = gray(draw_lines(LINES, FONTS.get("DejaVuSans"), 24, noise=0, blur=0).image)
    rgba = np.zeros(ink.shape + (4,), np.uint8)
    rgba[..., 3] = 255 - ink  # black ink, alpha = coverage; the ground is (0, 0, 0, 0)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "label.png")
    assert looks_like_text(ocr.load_glance(str(tmp_path / "label.png")))
    Image.fromarray(ink.astype(np.uint16) * 257).save(tmp_path / "scan16.png")
    assert Image.open(tmp_path / "scan16.png").mode.startswith("I")
    assert looks_like_text(ocr.load_glance(str(tmp_path / "scan16.png")))


def test_the_engine_is_let_go_after_a_pass_that_built_it(tmp_path, monkeypatch):
    """A GUI or `watch` process does not keep the OCR sessions between passes."""
    cat = Catalogue(tmp_path / "cat.sqlite")
    root = cat.add_root(str(tmp_path))
    path = tmp_path / "receipt.png"
    draw_lines(LINES, FONTS.get("DejaVuSans"), 22).image.save(path)
    fid = cat.upsert_pending(root, str(path), "image", 10, 1, "r")
    cat.commit_embedded([(fid, [NewChunk(0, None, np.ones(4, np.float32))], None, "")], [])
    built = []
    real = ocr.engine

    def counted():
        built.append(1)
        return real()

    monkeypatch.setattr(ocr, "engine", counted)
    report = OcrPass(cat).run()
    assert report.with_text == 1 and built
    assert ocr._engine is None
    cat.close()


def test_the_read_detects_a_large_picture_at_its_size_and_scales_a_small_one_up(monkeypatch):
    """A 864x576 photo with a sign: detected at 864x576 (0.21 CPU s), not scaled up to a 736 px
    short side (0.34 s, the same words); a small receipt is still scaled up for its small type."""
    det = ocr.engine().text_det
    shapes: list[tuple[int, ...]] = []
    real = det.infer
    monkeypatch.setattr(det, "infer", lambda x: shapes.append(x.shape) or real(x))
    base = photo(864, 576, 7)
    base.paste(draw_lines(["MARKET STREET", "OPEN DAILY"], FONTS.get("DejaVuSans"), 20,
                          dark=True).image, (150, 140))
    words = {w for ln in ocr.read_words(np.asarray(base)) for w in ln.text.split()}
    assert {"OPEN", "DAILY"} <= words, words
    assert shapes[0][2:] == (576, 864)
    assert det.limit_type == "min"  # the engine's own rule is back for the next picture
    shapes.clear()
    small = draw_lines(LINES, FONTS.get("DejaVuSans"), 14).image  # short side < 480
    ocr.read_words(np.asarray(small))
    assert min(shapes[0][2:]) >= 736
