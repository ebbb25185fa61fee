"""Words in pictures, in the window: indexing reads them (its own progress phase, off the UI
thread), a search finds the receipt by a word in it, its card shows the line read and the
preview marks where the words are; the setting turns reading off."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import solid
from test_gui import drop, make_gui, search, wait_idle  # noqa: F401

from app.settings import Settings
from indexer import ocr
from indexer.text_pictures import draw_lines, find_fonts
from ui.models import Roles

RECEIPT = ["HARDWARE STORE", "Claw hammer 12.99", "Wood screws 4.50", "TOTAL 17.49"]


@pytest.fixture
def receipts(tmp_path: Path) -> Path:
    root = tmp_path / "scans"
    root.mkdir()
    draw_lines(RECEIPT, find_fonts().get("DejaVuSans"), 22).image.save(root / "scan_0001.png")
    solid(root / "red.png", (250, 10, 10))
    solid(root / "green.jpg", (10, 240, 10))
    return root


def test_a_receipt_is_found_by_a_word_in_it_and_the_preview_marks_it(
        qtbot, make_gui, receipts, monkeypatch):  # noqa: F811
    looked_on = []

    def first_look(pixels, real=ocr.has_text):
        looked_on.append(threading.current_thread() is threading.main_thread())
        return real(pixels)

    monkeypatch.setattr(ocr, "has_text", first_look)
    window, ctl = make_gui(settings=Settings(ocr=True))
    titles: list[str] = []
    show = window.show_progress
    window.show_progress = lambda title, *a, **k: (titles.append(title), show(title, *a, **k))
    drop(window, [receipts])
    wait_idle(qtbot, ctl, timeout=120_000)
    assert "Reading text in pictures" in titles, titles  # its own phase, after indexing
    reading = titles.index("Reading text in pictures")
    assert not any(t.startswith("Indexing") for t in titles[reading:])  # after the vectors
    assert "words read in 1" in ctl.last_report.summary()
    assert looked_on and not any(looked_on)  # never on the UI thread
    results = search(qtbot, window, ctl, "hammer")
    assert Path(results[0].path).name == "scan_0001.png"
    idx = window.results_model.index(0)
    line = idx.data(Roles.Snippet)
    assert "hammer" in line.lower()  # the card shows the line read
    assert idx.data(Roles.Highlights)  # … with the word marked
    window.grab()  # the card paints its band
    window.results.setCurrentIndex(idx)
    qtbot.waitUntil(lambda: window.preview.current is not None, timeout=10_000)
    marks = window.preview.image.marks()
    assert len(marks) == 1 and all(0 <= v <= 1 for p in marks[0] for v in p)
    ys = [p[1] for p in marks[0]]
    assert 0.2 < min(ys) < max(ys) < 0.5  # the second of four lines
    assert "Read in the picture" in window.preview.meta.text()
    assert "words read in the picture" in window.preview.score.text()
    window.preview.grab()  # the marks paint
    # a picture found by its look only carries no marks
    results = search(qtbot, window, ctl, "red")
    other = next(i for i, r in enumerate(results) if Path(r.path).name == "red.png")
    window.results.setCurrentIndex(window.results_model.index(other))
    qtbot.waitUntil(lambda: window.preview.current.file_id == results[other].file_id,
                    timeout=10_000)
    assert window.preview.image.marks() == []


def test_the_setting_turns_reading_off(qtbot, make_gui, receipts):  # noqa: F811
    window, ctl = make_gui(settings=Settings(ocr=False))
    drop(window, [receipts])
    wait_idle(qtbot, ctl, timeout=120_000)
    counts = ctl.library.reader().ocr_counts()
    assert counts["pending"] == 3 and counts["with_text"] == 0
