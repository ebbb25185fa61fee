"""The search flow in the window (pytest-qt, offscreen, fake encoder): a new query starts at
the top, a dropped picture is an explicit mode, query words are highlighted, identical copies
are one result, counts say what the library holds, a query cut by the model says so."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import note, solid
from PySide6.QtCore import Qt
from test_gui import drop, make_gui, photos, search, wait_idle, wait_results  # noqa: F401

from app.search_state import PAGE_K
from ui.models import Roles

WAIT = 20_000  # ms: generous, the test box may be busy (a search takes ~10 ms here when idle)


@pytest.fixture
def many(tmp_path: Path) -> Path:
    """Enough pictures to fill more than one page of results, and a note."""
    root = tmp_path / "many"
    for i in range(150):
        solid(root / f"img{i:03d}.png", ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256),
              (16, 16))
    note(root / "notes" / "shopping.txt", "buy a ladder and blue paint at the hardware store")
    return root


def new_query(qtbot, window, ctl, text: str) -> None:
    ctl.last_page = None
    window.search.selectAll()
    qtbot.keyClicks(window.search, text)
    qtbot.waitUntil(lambda: ctl.last_page is not None and window.page() == "results",
                    timeout=WAIT)


def test_a_new_query_starts_at_the_top_a_refresh_keeps_the_place(
        qtbot, make_gui, many):  # noqa: F811
    window, ctl = make_gui()
    window.resize(1000, 700)
    drop(window, [many])
    wait_idle(qtbot, ctl)
    new_query(qtbot, window, ctl, "img")
    if window.hidden_results():
        window.show_more_button.click()
    bar = window.results.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=WAIT)
    bar.setValue(bar.maximum())
    assert bar.value() > 0
    # a live refresh (the ranking refined by "more like this") keeps the place …
    ctl.last_page = None
    first = window.results_model.results()[0]
    window.markRequested.emit(first, -1)
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=WAIT)
    assert bar.value() > 0
    # … a new query starts at the top
    new_query(qtbot, window, ctl, "paint")
    assert window.results_model.rowCount() > 0
    assert bar.value() == 0


def test_a_dropped_picture_is_its_own_mode_with_a_chip_and_words_only_on_request(
        qtbot, make_gui, photos, tmp_path):  # noqa: F811
    window, ctl = make_gui()
    drop(window, [photos])
    wait_idle(qtbot, ctl)
    search(qtbot, window, ctl, "hardware")
    query = solid(tmp_path / "elsewhere" / "query.png", (240, 15, 15))
    ctl.last_page = None
    drop(window.search, [query])
    wait_results(qtbot, window)
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=WAIT)
    # the picture alone: the words are set aside, not mixed in
    assert ctl.query.image == str(query) and ctl.query.text == "" and not ctl.query.mixed
    assert window.search.text() == ""
    assert window.image_chip.isVisible()
    assert "query.png" in window.image_chip.name.toolTip()
    assert "picture" in window.image_chip.name.toolTip().lower()
    assert "picture" in window.search.placeholderText().lower()
    ranked = [Path(r.path).name for r in ctl.last_page.results]
    assert set(ranked[:2]) == {"red.png", "crimson.jpg"}, ranked
    # words typed now are asked for: mixed with the picture
    ctl.last_page = None
    qtbot.keyClicks(window.search, "paint")
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=WAIT)
    assert ctl.query.mixed and ctl.query.image == str(query) and ctl.query.text == "paint"
    # clearing the chip keeps the words typed since the drop
    ctl.last_page = None
    window.image_chip.close_button.click()
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=WAIT)
    assert ctl.query.image is None and not window.image_chip.isVisible()
    assert window.search.text() == "paint" and ctl.query.text == "paint"
    # with no new words, clearing brings back the words the drop set aside
    window.search.clear()
    qtbot.keyClicks(window.search, "hardware")
    drop(window.search, [query])
    assert window.search.text() == ""
    ctl.last_page = None
    window.image_chip.close_button.click()
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=WAIT)
    assert window.search.text() == "hardware" and ctl.query.text == "hardware"
    assert Path(ctl.last_page.results[0].path).name == "shopping.txt"


def test_query_words_are_highlighted_in_note_cards_and_the_preview(
        qtbot, make_gui, photos):  # noqa: F811
    window, ctl = make_gui()
    drop(window, [photos])
    wait_idle(qtbot, ctl)
    search(qtbot, window, ctl, "blue paint")
    note = next(r for r in window.results_model.results() if r.kind == "text")
    idx = window.results_model.index(window.results_model.row_of(note.file_id))
    snippet = " ".join(idx.data(Roles.Snippet).split())
    marked = [snippet[a:b].lower() for a, b in idx.data(Roles.Highlights)]
    assert "blue" in marked and "paint" in marked
    assert set(marked) <= {"blue", "paint"}
    # pictures have no snippet: nothing to mark
    pic = next(r for r in window.results_model.results() if r.kind == "image")
    assert window.results_model.index(window.results_model.row_of(pic.file_id)).data(
        Roles.Highlights) == []
    window.grab()  # the cards paint with their marks
    window.results.setCurrentIndex(idx)
    qtbot.waitUntil(lambda: "ladder" in window.preview.text.toPlainText(), timeout=WAIT)
    assert sorted(w.lower() for w in window.preview.highlighted()) == ["blue", "paint"]
    # a query with other words marks those, and stopwords are never marked
    search(qtbot, window, ctl, "the hardware store")
    idx = window.results_model.index(0)
    snippet = " ".join(idx.data(Roles.Snippet).split())
    assert sorted(snippet[a:b] for a, b in idx.data(Roles.Highlights)) == ["hardware", "store"]


def test_identical_copies_are_one_result(qtbot, make_gui, photos, tmp_path):  # noqa: F811
    shutil.copy(photos / "red.png", photos / "sub" / "red copy.png")
    (photos / "backup").mkdir()
    shutil.copy(photos / "red.png", photos / "backup" / "red.png")
    window, ctl = make_gui()
    drop(window, [photos])
    wait_idle(qtbot, ctl)
    query = solid(tmp_path / "q.png", (250, 10, 10))
    ctl.last_page = None
    drop(window.search, [query])
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=WAIT)
    names = [Path(r.path).name for r in ctl.last_page.results]
    reds = [n for n in names if n in ("red.png", "red copy.png")]
    assert len(reds) == 1, names  # three identical files, one result
    fid = next(r.file_id for r in ctl.last_page.results if Path(r.path).name in reds)
    assert len(ctl.last_page.copies[fid]) == 2
    row = window.results_model.row_of(fid)
    idx = window.results_model.index(row)
    assert idx.data(Roles.Copies) == 3
    tip = idx.data(Qt.ItemDataRole.ToolTipRole)
    assert "Identical copies" in tip and tip.count("red") >= 3
    window.grab()
    window.results.setCurrentIndex(idx)
    assert "3 identical copies" in window.preview.meta.text()
    # a different picture is never folded in
    assert "crimson.jpg" in names


def test_counts_say_what_the_library_holds_and_show_more_fetches_the_rest(
        qtbot, make_gui, many):  # noqa: F811
    window, ctl = make_gui()
    drop(window, [many])
    wait_idle(qtbot, ctl)
    new_query(qtbot, window, ctl, "img")
    page = ctl.last_page
    assert page.total == 151 and page.fetched == PAGE_K  # the library holds more than a page
    if window.hidden_results():
        window.show_more_button.click()
    assert f"{window.visible_results()} of 151 shown" in window.summary.text()
    assert window.show_more_button.isVisible() and window.show_more_button.text() == "Show more"
    ctl.last_page = None
    window.show_more_button.click()  # fetch the next page
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=WAIT)
    assert ctl.query.k == 2 * PAGE_K and ctl.last_page.fetched == 2 * PAGE_K
    assert window.visible_results() == 2 * PAGE_K
    assert f"{2 * PAGE_K} of 151 shown" in window.summary.text()
    # a filter counts what it allows
    ctl.last_page = None
    window.filters.kind.setCurrentIndex(2)  # Notes
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=WAIT)
    assert ctl.last_page.total == 1
    assert "1 shown" in window.summary.text() and "of" not in window.summary.text()
    assert not window.show_more_button.isVisible()


def test_a_query_longer_than_the_model_reads_says_so(qtbot, make_gui, photos):  # noqa: F811
    window, ctl = make_gui()
    drop(window, [photos])
    wait_idle(qtbot, ctl)
    search(qtbot, window, ctl, "blue paint")
    assert not window.query_notice.isVisible()
    long = " ".join(["blue paint at the hardware store"] * 16)  # 96 words: over 75 tokens
    ctl.last_page = None
    window.search.setText(long)
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=WAIT)
    assert ctl.last_page.cut_terms == (long,)
    assert window.query_notice.isVisible()
    assert "77 tokens" in window.query_notice.text()
    search(qtbot, window, ctl, "blue")
    assert not window.query_notice.isVisible()
    # … and an emptied box takes the notice away with the results
    window.search.setText(long)
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    qtbot.waitUntil(window.query_notice.isVisible, timeout=WAIT)
    window.search.selectAll()
    qtbot.keyClick(window.search, Qt.Key.Key_Backspace)
    assert not window.query_notice.isVisible() and window.page() == "hint"


def test_the_badge_shows_the_calibrated_relevance_not_the_cosine(qtbot):
    from indexer.search import SearchResult
    from ui.models import ResultsModel, Roles, score_line, score_text

    r = SearchResult(1, "/p/a.png", "/p/a.png", "image", 0.94, z=3.1, relevance=0.873,
                     stands_out=True)
    model = ResultsModel()
    model.set_results([r], cutoff=1)
    assert model.index(0).data(Roles.Relevance) == 87
    assert score_text(r) == "87"
    assert score_line(r).startswith("Relevance 87 of 100") and "0.94" in score_line(r)
    assert "similarity 0.940" in model.index(0).data(Qt.ItemDataRole.ToolTipRole)
