"""The "Other results" divider in the result grid: exactly where the page splits, never when
every result stands out, first (as "No strong matches") when none does; keyboard, mouse, copy
and the counts pass over it; the CLI draws the same split."""
from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from test_gui import fake_results, make_gui  # noqa: F401 - fixtures

from app.search_page import Page
from indexer.search_split import divider_at, divider_title
from ui.models import Roles


def results_for(n: int, cutoff: int) -> list:
    """`n` results whose first `cutoff` stand out (what the core's page holds)."""
    return [replace(r, stands_out=i < cutoff, relevance=0.9 if i < cutoff else 0.3)
            for i, r in enumerate(fake_results(n))]


@pytest.fixture
def window(make_gui, qtbot):  # noqa: F811
    w, _ctl = make_gui(start=False)
    w.resize(1400, 800)  # the grid gets three columns or more beside the side panes
    return w


def settle(qtbot, w) -> None:
    """Let the grid take its width and lay out its items (from the event loop)."""
    qtbot.waitUntil(lambda: w.results.columns() >= 3, timeout=3000)
    qtbot.wait(20)
    w.results.executeDelayedItemsLayout()


def test_the_split_rule():
    assert divider_at(3, 8) == 3  # before the first result that does not stand out
    assert divider_at(8, 8) is None and divider_at(5, 3) is None  # all shown stand out
    assert divider_at(0, 8) == 0  # none does: the divider first
    assert divider_at(0, 0) is None  # nothing shown, nothing to divide
    assert divider_title(0).startswith("No strong matches")
    assert divider_title(2) == "Other results"


def test_divider_sits_where_the_split_is_on_a_line_of_its_own(qtbot, window):
    w = window
    w.show_results(results_for(10, 2), cutoff=2, min_visible=8)
    settle(qtbot, w)
    m = w.results_model
    assert m.divider_row() == 2 and m.rowCount() == 9 and w.visible_results() == 8
    div = m.index(2)
    assert div.data(Roles.Divider) and div.data(Qt.ItemDataRole.DisplayRole) == "Other results"
    assert div.data(Roles.Result) is None and not div.flags() & Qt.ItemFlag.ItemIsSelectable
    assert [m.index(r).data(Roles.Standout) for r in (0, 1, 3, 4)] == [True, True, False, False]
    assert "other result" in m.index(3).data(Qt.ItemDataRole.AccessibleTextRole)
    assert "Other results" in div.data(Qt.ItemDataRole.AccessibleTextRole)
    # geometry: below the two standouts, above the rest, as wide as a line of cards
    view = w.results
    above = [view.visualRect(m.index(r)) for r in (0, 1)]
    line = view.visualRect(div)
    below = [view.visualRect(m.index(r)) for r in range(3, m.rowCount())]
    assert line.width() == view.row_width() == view.columns() * view.cell_size().width()
    assert line.top() >= max(r.bottom() for r in above)
    assert all(r.top() >= line.bottom() for r in below)
    assert below[0].left() == above[0].left()  # the rest start a fresh line
    w.grab()  # the divider paints


def test_no_divider_when_every_result_stands_out(qtbot, window):
    w = window
    w.show_results(results_for(6, 6), cutoff=6, min_visible=8)
    assert w.results_model.divider_row() is None
    assert w.results_model.rowCount() == w.visible_results() == 6
    assert not any(w.results_model.index(r).data(Roles.Divider) for r in range(6))
    # all shown stand out but more wait below the cutoff: the divider comes with them
    w.show_results(results_for(12, 9), cutoff=9, min_visible=8)
    assert w.results_model.divider_row() is None and w.hidden_results() == 3
    w.show_more_button.click()
    assert w.results_model.divider_row() == 9 and w.visible_results() == 12
    assert w.results_model.rowCount() == 13


def test_no_strong_matches_puts_the_divider_first(qtbot, window):
    w = window
    w.show_results(results_for(10, 0), cutoff=0, min_visible=8)
    settle(qtbot, w)
    m = w.results_model
    assert m.divider_row() == 0 and w.visible_results() == 8
    assert m.index(0).data(Qt.ItemDataRole.DisplayRole).startswith("No strong matches")
    # Down from the search box lands on the first result, not on the heading
    w.search.setFocus()
    qtbot.keyClick(w.search, Qt.Key.Key_Down)
    assert w.results.currentIndex().row() == 1
    assert w.current_result().file_id == 0
    # Home stays on a result; Up from the first result goes back to the search box
    qtbot.keyClick(w.results, Qt.Key.Key_End)
    qtbot.keyClick(w.results, Qt.Key.Key_Home)
    assert w.results.currentIndex().row() == 1
    with qtbot.waitSignal(w.results.upFromTop, timeout=1000):
        qtbot.keyClick(w.results, Qt.Key.Key_Up)


def test_keyboard_mouse_and_copy_pass_over_the_divider(qtbot, window):
    w = window
    w.show_results(results_for(10, 2), cutoff=2, min_visible=10)
    settle(qtbot, w)
    m, view = w.results_model, w.results
    cols = view.columns()
    view.setFocus()
    view.setCurrentIndex(m.index(1))  # the last result that stands out
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert view.currentIndex().row() == 3 and w.current_result().file_id == 2
    view.setCurrentIndex(m.index(0))
    qtbot.keyClick(view, Qt.Key.Key_Down)  # straight down, across the divider's line
    assert view.currentIndex().row() == 3 and w.current_result().file_id == 2
    qtbot.keyClick(view, Qt.Key.Key_Up)
    assert view.currentIndex().row() == 0
    for _ in range(cols + 2):  # walking right visits every result and never the divider
        qtbot.keyClick(view, Qt.Key.Key_Right)
        assert not view.currentIndex().data(Roles.Divider)
    # a click on the divider selects nothing and opens no menu
    view.setCurrentIndex(m.index(0))
    centre = view.visualRect(m.index(2)).center()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert view.currentIndex().row() == 0
    menus = []
    view.contextRequested.disconnect()  # the window's handler would open a modal menu
    view.contextRequested.connect(lambda idx, pos: menus.append(idx))
    view.customContextMenuRequested.emit(centre)
    assert menus == []
    view.customContextMenuRequested.emit(view.visualRect(m.index(3)).center())
    assert [i.row() for i in menus] == [3]
    # Ctrl+C copies the result's path
    view.setCurrentIndex(m.index(3))
    QGuiApplication.clipboard().clear()
    qtbot.keyClick(view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "/x/img2.png"


def test_counts_say_results_not_rows(qtbot, make_gui):  # noqa: F811
    w, ctl = make_gui(start=False)
    page = Page(results_for(30, 4), 4, 12.0, total=120, fetched=30)
    ctl.search._on_done(0, page)
    assert w.results_model.divider_row() == 4
    assert w.visible_results() == 8  # MIN_VISIBLE results, the divider not counted
    assert "4 stand out" in w.summary.text() and "8 of 120 shown" in w.summary.text()
    assert "Show 22 more" in w.show_more_button.text()
    w.show_more_button.click()
    assert "30 of 120 shown" in w.summary.text()
    ctl.search._on_done(0, Page(results_for(30, 0), 0, 12.0, total=120, fetched=30))
    assert w.results_model.divider_row() == 0
    assert "No strong matches" in w.summary.text() and "8 of 120 shown" in w.summary.text()


def test_resizing_keeps_the_divider_a_full_line(qtbot, window):
    w = window
    w.show_results(results_for(10, 1), cutoff=1, min_visible=10)
    for width in (1400, 1800, 1200):
        w.resize(width, 800)
        settle(qtbot, w)
        qtbot.waitUntil(lambda: w.results.visualRect(w.results_model.index(1)).width()
                        == w.results.row_width(), timeout=3000)
        first_other = w.results.visualRect(w.results_model.index(2))
        assert first_other.left() == w.results.visualRect(w.results_model.index(0)).left()
        assert w.results.viewport().rect().contains(QPoint(w.results.row_width() - 1, 1))


def test_at_the_minimum_window_size_the_divider_title_fits(qtbot, make_gui):  # noqa: F811
    from PySide6.QtGui import QFont, QFontMetrics

    w, _ctl = make_gui(start=False)
    w.resize(w.minimumSize())
    w.show_results(results_for(10, 0), cutoff=0, min_visible=8)
    qtbot.waitUntil(lambda: w.results.visualRect(w.results_model.index(0)).width()
                    == w.results.row_width(), timeout=3000)
    line = w.results.visualRect(w.results_model.index(0))
    font = QFont(w.results.font())
    font.setWeight(QFont.Weight.DemiBold)
    title = w.results_model.index(0).data(Qt.ItemDataRole.DisplayRole)
    assert QFontMetrics(font).horizontalAdvance(title) + 40 < line.width()
    assert w.results.viewport().rect().contains(line.adjusted(0, 0, -1, -1).topRight())
