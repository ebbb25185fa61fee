"""Words in pictures (OCR): reading with real fonts at every quarter turn, the first look,
the per-picture state in the catalogue, the resumable pass, and search by what was read."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer import ocr
from indexer.catalogue import OCR_LINES_PER_FILE, Catalogue, FileFilter, NewChunk
from indexer.decode import DecodeError
from indexer.indexing import Indexer
from indexer.jobs import Cancelled, JobControl
from indexer.library import Library
from indexer.ocr_pass import PHASE, OcrPass
from indexer.search import SearchRequest, Searcher
from indexer.specs import TINY_SHAPES
from indexer.text_pictures import draw_lines, find_fonts, word_found

ROOT = Path(__file__).resolve().parent.parent
FONTS = find_fonts()
RECEIPT = ["HARDWARE STORE", "Claw hammer 12.99", "Plate RE16 TGK", "TOTAL 42.50"]
RECEIPT_WORDS = ("HARDWARE", "STORE", "hammer", "12.99", "RE16", "TGK", "TOTAL", "42.50")


def font(name: str) -> str | None:
    """A Debian font when installed, else Pillow's bundled one (always there)."""
    return FONTS.get(name)


def read(image: Image.Image) -> list[str]:
    return [ln.text for ln in ocr.read_words(np.asarray(image.convert("RGB")))]


def missing(words, lines) -> list[str]:
    return [w for w in words if not word_found(w, lines)]


# -- reading ---------------------------------------------------------------------------------
@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_receipt_is_read_at_every_quarter_turn(rotation):
    pic = draw_lines(RECEIPT, font("DejaVuSans"), 22, rotation=rotation)
    lines = read(pic.image)
    assert missing(RECEIPT_WORDS, lines) == [], lines


def test_light_text_on_dark_ground_small_type():
    pic = draw_lines(["Error 404: File not found", "Retry in 30 seconds"],
                     font("LiberationSans-Regular"), 16, dark=True)
    lines = read(pic.image)
    assert missing(["Error", "404", "File", "found", "Retry", "seconds"], lines) == [], lines


def test_large_type_with_pillows_own_font():
    pic = draw_lines(["PLATFORM 4", "STATION ROAD"], None, 64)
    lines = read(pic.image)
    assert missing(["PLATFORM", "STATION", "ROAD"], lines) == [], lines


def test_boxes_are_in_the_upright_pictures_pixels():
    pic = draw_lines(["TOTAL 42.50"], font("DejaVuSans"), 28, rotation=90)
    w, h = pic.image.size
    got = ocr.read_words(np.asarray(pic.image))
    assert got, "nothing read"
    for ln in got:
        xs, ys = [p[0] for p in ln.box], [p[1] for p in ln.box]
        assert 0 <= min(xs) <= max(xs) <= w and 0 <= min(ys) <= max(ys) <= h
        assert max(ys) - min(ys) > max(xs) - min(xs)  # the line runs up the turned picture


def test_exif_turned_photo_is_read_upright(tmp_path):
    upright = draw_lines(RECEIPT, font("FreeSans"), 24).image
    stored = upright.rotate(90, expand=True)  # what the camera wrote
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to view"
    path = tmp_path / "turned.jpg"
    stored.save(path, exif=exif.tobytes(), quality=95)
    pixels = ocr.load_for_ocr(str(path))
    assert pixels.shape[:2] == (upright.size[1], upright.size[0])
    lines = [ln.text for ln in ocr.read_words(pixels)]
    assert missing(RECEIPT_WORDS, lines) == [], lines


def test_first_look_skips_a_picture_without_text_and_sees_a_receipt():
    yy, xx = np.mgrid[0:900, 0:1200]
    photo = np.stack([(xx / 1200 * 200 + 30), (yy / 900 * 150 + 60),
                      np.full_like(xx, 120.0)], axis=-1)
    photo += np.random.default_rng(1).normal(0, 8, photo.shape)
    assert not ocr.has_text(np.clip(photo, 0, 255).astype(np.uint8))
    assert ocr.has_text(np.asarray(draw_lines(RECEIPT, font("DejaVuSerif"), 22).image))


def _blobby_photo(w: int, h: int, seed: int) -> Image.Image:
    """Soft shapes and texture with sensor noise: the kind of ground the detector can mistake
    for text."""
    from PIL import ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(
        (w, h), Image.Resampling.BICUBIC)
    d = ImageDraw.Draw(im)
    for _ in range(20):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        box = (x, y, x + int(rng.integers(w // 30, w // 4)), y + int(rng.integers(h // 30, h // 4)))
        d.ellipse(box, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    arr = np.asarray(im.filter(ImageFilter.GaussianBlur(1.2)), dtype=np.float32)
    arr += rng.normal(0, 4, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def test_camera_photos_get_a_smaller_first_look_and_still_show_a_sign(tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "Phone maker"  # Make: a camera wrote it
    photo = _blobby_photo(2400, 1800, 3)
    sign = draw_lines(["MARKET STREET", "OPEN DAILY"], font("DejaVuSans"), 30, dark=True).image
    photo.paste(sign, (700, 600))  # type 30 px: 1.7% of the photo's height
    photo.save(tmp_path / "street.jpg", exif=exif.tobytes())
    photo.save(tmp_path / "street.png")  # same pixels, no camera: a screenshot's first look
    first = ocr.load_for_ocr(str(tmp_path / "street.jpg"), ocr.GATE_SIDE, ocr.PHOTO_GATE_SIDE)
    assert max(first.shape[:2]) == ocr.PHOTO_GATE_SIDE
    other = ocr.load_for_ocr(str(tmp_path / "street.png"), ocr.GATE_SIDE, ocr.PHOTO_GATE_SIDE)
    assert max(other.shape[:2]) == ocr.GATE_SIDE
    assert ocr.has_text(first)
    # …and are read at a smaller size too (the text the first look passes is large enough)
    full = ocr.load_for_ocr(str(tmp_path / "street.jpg"), ocr.READ_SIDE, ocr.PHOTO_READ_SIDE)
    assert max(full.shape[:2]) == ocr.PHOTO_READ_SIDE
    assert max(ocr.load_for_ocr(str(tmp_path / "street.png"), ocr.READ_SIDE,
                                ocr.PHOTO_READ_SIDE).shape[:2]) == ocr.READ_SIDE
    assert {"MARKET", "STREET"} <= {w for ln in ocr.read_words(full) for w in ln.text.split()}


def test_first_look_sees_the_small_ui_text_of_1080p_screenshots(tmp_path):
    """11 px UI text on a 1920x1080 screenshot (bench/ocr_cost.py's screens): a 640 px first
    look saw it on only 3 of 6 (one box or none), so their words were never read."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from _common import make_screenshots
    finally:
        sys.path.remove(str(ROOT / "bench"))
    for p in make_screenshots(tmp_path, 3):  # the bench's first three (the 2nd, 3rd were missed)
        pixels = ocr.load_for_ocr(str(p), ocr.GATE_SIDE, ocr.PHOTO_GATE_SIDE)
        assert ocr.has_text(pixels), p.name


def test_only_line_shaped_boxes_count_as_text():
    line = [[0, 0], [90, 0], [90, 14], [0, 14]]
    turned = [[0, 0], [14, 0], [14, 90], [0, 90]]  # a line at 90 degrees
    blob = [[0, 0], [108, 0], [108, 94], [0, 94]]  # photo texture the detector fired on
    assert ocr._line_shaped(line) and ocr._line_shaped(turned) and not ocr._line_shaped(blob)


def test_engine_pins_are_checked(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ocr.MODEL_SHA256:
        (folder / name).write_bytes(b"not the pinned model")
    with pytest.raises(ocr.OcrUnavailable, match="sha256"):
        ocr._check_pins(folder)


def test_fold_and_near_match():
    assert ocr.fold("T0TAL 42,50") == ocr.fold("total") + ocr.fold("42.50")
    assert ocr.near_substring("hammer", "clawhamner16oz", 1)
    assert not ocr.near_substring("hammer", "clawhxmnxr16oz", 1)


# -- the catalogue ---------------------------------------------------------------------------
def _picture(cat: Catalogue, root: int, name: str, digest: str) -> int:
    fid = cat.upsert_pending(root, f"/pics/{name}", "image", 10, 1, digest)
    cat.commit_embedded([(fid, [NewChunk(0, None, np.ones(4, np.float32))], None, "")], [])
    return fid


def _lines(*texts: str) -> list:
    return [(t, 0.99, [[0, 0], [10, 0], [10, 5], [0, 5]]) for t in texts]


@pytest.fixture
def cat(tmp_path):
    c = Catalogue(tmp_path / "c.sqlite")
    yield c
    c.close()


def test_schema_2_library_upgrades_and_keeps_its_files(tmp_path):
    from indexer import catalogue as C

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(C._SCHEMA + C._SCHEMA_V2)
    db.execute("INSERT INTO roots(id, path, added_at) VALUES(1, '/pics', 0)")
    db.execute("INSERT INTO files(root_id, path, path_raw, kind, size, mtime_ns, content_hash,"
               " state) VALUES(1, '/pics/a.png', x'2f706963732f612e706e67', 'image', 1, 1, 'h',"
               " 'indexed')")
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()
    ro = Catalogue(path, readonly=True)  # not yet upgraded: OCR search answers nothing
    assert ro.ocr_search(["hammer"], FileFilter(), 5) == []
    assert ro.ocr_counts()["pending"] == 1
    ro.close()
    c = Catalogue(path)
    assert c.db.execute("PRAGMA user_version").fetchone()[0] == 3
    assert [r[1] for r in c.ocr_pending()] == [b"/pics/a.png"]
    c.close()


def test_search_whole_words_numbers_parts_codes_and_misreadings(cat):
    root = cat.add_root("/pics")
    a = _picture(cat, root, "a.png", "ha")
    b = _picture(cat, root, "b.png", "hb")
    cat.commit_ocr([(a, "ha", "text", None, _lines("HARDWARESTORE", "Clawhammer16oz 12.99",
                                                   "TOTAL42.50")),
                    (b, "hb", "text", None, _lines("Plate RE16 TGK", "the red car"))])
    f = ocr.fold

    def ids(*words):
        return [h.file_id for h in cat.ocr_search([f(w) for w in words], FileFilter(), 10)]

    assert ids("hammer") == [a]  # part of a word the reader ran together
    assert ids("42.50") == [a] and ids("42,50") == [a]
    assert ids("RE16") == [b] and ids("re16tgk") == [b]
    assert ids("hamner") == [a]  # one character misread
    assert ids("red") == [b]  # 3 letters: only as a whole word ("the red car")
    assert ids("are") == []  # ... never inside "HARDWARESTORE"
    hit = cat.ocr_search([f("TOTAL"), f("42.50")], FileFilter(), 5)[0]
    assert (hit.file_id, hit.matched, hit.exact, hit.line) == (a, 2, 2, "TOTAL42.50")
    both = cat.ocr_search([f("hammer"), f("plate")], FileFilter(), 5)
    assert sorted(h.file_id for h in both) == [a, b] and {h.matched for h in both} == {1}


def test_read_text_follows_the_files_content_and_leaves_with_the_file(cat):
    root = cat.add_root("/pics")
    a = _picture(cat, root, "a.png", "h1")
    cat.commit_ocr([(a, "h1", "text", None, _lines("Claw hammer"))])
    assert cat.ocr_pending() == []
    cat.upsert_pending(root, "/pics/a.png", "image", 11, 2, "h2")  # the file changed
    cat.commit_embedded([(a, [NewChunk(0, None, np.ones(4, np.float32))], None, "")], [])
    assert [r[0] for r in cat.ocr_pending()] == [a]
    assert cat.ocr_search([ocr.fold("hammer")], FileFilter(), 5) == []  # stale text not shown
    cat.delete_files([a])
    left = cat.db.execute("SELECT COUNT(*) FROM ocr_lines WHERE rowid >= ? AND rowid < ?",
                          (a * OCR_LINES_PER_FILE, (a + 1) * OCR_LINES_PER_FILE)).fetchone()[0]
    assert left == 0


def test_engine_change_means_every_picture_is_read_again(cat):
    root = cat.add_root("/pics")
    a = _picture(cat, root, "a.png", "h1")
    assert cat.ocr_reset_if_engine_changed("engine-1") is False  # first time: nothing to reset
    cat.commit_ocr([(a, "h1", "text", None, _lines("Claw hammer"))])
    assert cat.ocr_reset_if_engine_changed("engine-1") is False
    assert cat.ocr_pending() == []
    assert cat.ocr_reset_if_engine_changed("engine-2") is True
    assert [r[0] for r in cat.ocr_pending()] == [a]
    assert cat.db.execute("SELECT COUNT(*) FROM ocr_lines").fetchone()[0] == 0


# -- the pass --------------------------------------------------------------------------------
class Calls:
    """Fake gate/reader/loader: records which pictures were decoded and read."""

    def __init__(self, fail: set[str] = frozenset(), stop_after: int | None = None,
                 control: JobControl | None = None) -> None:
        self.loaded: list[str] = []
        self.read = 0
        self.fail = fail
        self.stop_after = stop_after
        self.control = control

    def loader(self, path: str) -> np.ndarray:
        self.loaded.append(path)
        if os.path.basename(path) in self.fail:
            raise DecodeError("truncated or corrupt image data")
        return np.zeros((4, 4, 3), np.uint8)

    def gate(self, pixels) -> bool:
        return True

    def reader(self, pixels) -> list[ocr.OcrLine]:
        self.read += 1
        if self.stop_after is not None and self.read == self.stop_after and self.control:
            self.control.cancel()  # as if the user pressed cancel during this picture
        return [ocr.OcrLine(f"word{self.read}", ((0, 0), (1, 0), (1, 1), (0, 1)), 0.9)]


def _pass(cat, calls, control=None, **kw) -> OcrPass:
    return OcrPass(cat, control=control, gate=calls.gate, reader=calls.reader,
                   loader=calls.loader, full_loader=calls.loader, identity="test-engine", **kw)


def test_pass_is_cancellable_and_resumes_where_it_stopped(cat):
    root = cat.add_root("/pics")
    ids = [_picture(cat, root, f"{i}.png", f"h{i}") for i in range(12)]
    control = JobControl()
    first = Calls(stop_after=5, control=control)
    events = []
    with pytest.raises(Cancelled):
        _pass(cat, first, control, on_progress=events.append).run()
    assert first.read == 5
    assert len(cat.ocr_pending()) == 12 - 5  # what was read before the cancel is kept
    assert events[0].phase == PHASE and events[0].total == 12
    second = Calls()
    report = _pass(cat, second).run()
    assert second.read == 7 and report.looked == 7
    assert cat.ocr_pending() == [] and cat.ocr_counts()["with_text"] == 12
    assert sorted(h.file_id for h in cat.ocr_search(["word"], FileFilter(), 50)) == sorted(ids)


def test_a_picture_that_cannot_be_read_is_recorded_and_the_rest_go_on(cat):
    root = cat.add_root("/pics")
    for name in ("a.png", "bad.png", "c.png"):
        _picture(cat, root, name, name)
    errors = []
    report = _pass(cat, Calls(fail={"bad.png"}), on_error=errors.append).run()
    assert report.errors == 1 and report.with_text == 2
    assert [(e.path, e.reason) for e in errors] == [
        ("/pics/bad.png", "reading text failed: truncated or corrupt image data")]
    assert cat.ocr_errors() == [("/pics/bad.png",
                                 "reading text failed: truncated or corrupt image data")]
    again = Calls()
    _pass(cat, again).run()  # the same broken content is not retried every run
    assert again.loaded == []


def test_identical_content_is_read_once(cat):
    root = cat.add_root("/pics")
    _picture(cat, root, "a.png", "same")
    _pass(cat, Calls()).run()
    _picture(cat, root, "copy.png", "same")
    calls = Calls()
    report = _pass(cat, calls).run()
    assert calls.loaded == [] and report.reused == 1
    assert len(cat.ocr_search(["word1"], FileFilter(), 5)) == 2


# -- end to end ------------------------------------------------------------------------------
def test_index_then_search_finds_a_receipt_by_a_word_in_it(tmp_path, fake_encoder):
    pics = tmp_path / "pics"
    pics.mkdir()
    draw_lines(RECEIPT, font("DejaVuSans"), 22).image.save(pics / "scan_0001.png")
    draw_lines(["Quarterly results", "Revenue grew"], font("LiberationSerif-Regular"), 30,
               rotation=270).image.save(pics / "slide.png")
    Image.new("RGB", (300, 200), (40, 120, 200)).save(pics / "sky.jpg")
    spec = replace(TINY_SHAPES, embed_dim=fake_encoder.dim)
    with Library.open(tmp_path / "lib", spec) as lib:
        events = []
        report = Indexer(lib, fake_encoder, workers=0, ocr=True, on_progress=events.append).run(
            [pics])
        assert report.text_looked == 3 and report.text_found == 2, report
        phases = [e.phase for e in events]
        assert phases.index("reading text") > max(i for i, p in enumerate(phases)
                                                  if p == "embedding")
        s = Searcher(lib, fake_encoder)
        for word in ("hammer", "42.50", "RE16", "hamner"):
            hits = s.search(word, mode="keyword")
            assert [Path(h.path).name for h in hits] == ["scan_0001.png"], word
        top = s.search("hammer", mode="keyword")[0]
        assert "hammer" in top.snippet.lower()
        page = s.run(SearchRequest(text="revenue"))
        assert Path(page.results[0].path).name == "slide.png"
        assert page.cutoff >= 1 and "revenue" in page.results[0].snippet.lower()
        _words_read_are_evidence_and_marked(s, pics / "scan_0001.png")


def _words_read_are_evidence_and_marked(s: Searcher, receipt: Path) -> None:
    """A phrase read in a picture counts like a phrase in a note (the picture itself holds it,
    so it is not discounted like a name), a misreading counts less; the marks cover the word
    where it was drawn (RECEIPT's second line, DejaVuSans 22 px, as draw_lines lays it out)."""
    from PIL import ImageFont

    from indexer.search import KEYWORD_RELEVANCE

    page = s.run(SearchRequest(text="claw hammer"))
    top = page.results[0]
    assert Path(top.path).name == receipt.name
    assert (top.text_level, top.keyword_level) == (3, -1)  # read in it; its name holds nothing
    assert top.stands_out and top.relevance >= KEYWORD_RELEVANCE[3]
    assert "words read in it hold the words exactly" in top.explain()
    near = s.run(SearchRequest(text="hamner")).results[0]
    assert Path(near.path).name == receipt.name and near.text_level == 2
    boxes = s.text_marks([top.file_id], page.text_words)[top.file_id]
    assert len(boxes) == 2  # "claw" and "hammer"
    f = ImageFont.truetype(font("DejaVuSans"), 22) if font("DejaVuSans") else None
    if f is None:
        return
    w, h = Image.open(receipt).size
    pad, step = 22, int(22 * 1.7)
    x0, x1 = pad + f.getlength("Claw "), pad + f.getlength("Claw hammer")
    y0, y1 = pad + step, pad + step + 22
    cx = sum(p[0] for p in boxes[1]) / 4 * w
    cy = sum(p[1] for p in boxes[1]) / 4 * h
    assert x0 - 11 <= cx <= x1 + 11 and y0 - 11 <= cy <= y1 + 11, (boxes[1], (x0, x1, y0, y1))


def test_without_ocr_nothing_is_read(tmp_path, fake_encoder):
    pics = tmp_path / "pics"
    pics.mkdir()
    draw_lines(RECEIPT, font("DejaVuSans"), 22).image.save(pics / "receipt.png")
    spec = replace(TINY_SHAPES, embed_dim=fake_encoder.dim)
    with Library.open(tmp_path / "lib", spec) as lib:
        report = Indexer(lib, fake_encoder, workers=0).run([pics])
        assert report.text_looked == 0
        assert lib.catalogue.ocr_counts()["pending"] == 1
        assert Searcher(lib, fake_encoder).search("hammer", mode="keyword") == []


def magpie(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_cli_search_status_and_no_ocr(tmp_path):
    pics = tmp_path / "pics"
    pics.mkdir()
    draw_lines(RECEIPT, font("DejaVuSans"), 22).image.save(pics / "receipt.png")
    Image.new("RGB", (64, 64), (200, 30, 30)).save(pics / "red.png")
    env = {**os.environ, "MAGPIE_DATA_DIR": str(tmp_path / "data"),
           "PYTHONPATH": str(ROOT)}
    lib, off = str(tmp_path / "lib"), str(tmp_path / "lib-off")
    out = magpie("index", str(pics), "--library", lib, "--model", "tiny-shapes", "--quiet",
                 env=env)
    assert out.returncode == 0, out.stderr
    assert "words read in 1" in out.stdout
    out = magpie("search", "hammer", "--library", lib, env=env)
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()
    assert first[0].endswith("receipt.png") and "hammer" in first[1].lower(), out.stdout
    out = magpie("search", "claw hammer", "--json", "--library", lib, env=env)
    first = json.loads(out.stdout.splitlines()[0])
    assert first["path"].endswith("receipt.png") and first["in_text"], first
    assert "hammer" in first["snippet"].lower() and len(first["text_marks"]) == 2
    assert all(0 <= v <= 1 for box in first["text_marks"] for p in box for v in p)
    out = magpie("status", "--library", lib, env=env)
    assert "text      read 2 of 2 pictures (100%): words in 1, none in 1" in out.stdout
    out = magpie("status", "--json", "--library", lib, env=env)
    text = [json.loads(x) for x in out.stdout.splitlines() if '"text"' in x][0]
    assert (text["pictures"], text["read"], text["with_text"], text["pending"]) == (2, 2, 1, 0)
    out = magpie("index", str(pics), "--library", off, "--model", "tiny-shapes", "--quiet",
                 "--no-ocr", env=env)
    assert out.returncode == 0 and "text" not in out.stdout, out.stdout
