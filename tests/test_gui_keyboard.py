"""Keyboard and focus: every shortcut is sent as a key event, focus is visible on every
control Tab reaches, and Tab goes through the window in reading order."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QApplication
from test_gui import drop, make_gui, photos, search, wait_idle  # noqa: F401 - fixtures

from ui import theme


@pytest.fixture(params=[False, True], ids=["light", "dark"])
def themed(qapp, request):
    """The real style sheet, light and dark (run_gui applies it; most tests don't need it)."""
    theme.apply(qapp, dark=request.param)
    yield
    theme.apply(qapp, dark=False)
    qapp.setStyleSheet("")


def focused() -> object:
    return QApplication.focusWidget()


def with_results(qtbot, make_gui, photos, text="hardware"):  # noqa: F811
    window, ctl = make_gui()
    drop(window, [photos])
    wait_idle(qtbot, ctl)
    results = search(qtbot, window, ctl, text)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)
    return window, ctl, results


def test_standard_shortcuts(qtbot, make_gui, photos):  # noqa: F811
    window, ctl, results = with_results(qtbot, make_gui, photos)
    ctrl = Qt.KeyboardModifier.ControlModifier

    # Ctrl+F: the search box, its text selected
    window.results.setFocus()
    qtbot.keyClick(window.results, Qt.Key.Key_F, ctrl)
    assert focused() is window.search and window.search.selectedText() == "hardware"

    # Down, then Enter opens the selected result
    qtbot.keyClick(window.search, Qt.Key.Key_Down)
    assert focused() is window.results
    qtbot.keyClick(window.results, Qt.Key.Key_Return)
    assert make_gui.opened == [results[0].open_path]

    # Ctrl+C copies the selected result's full path, not its name
    QGuiApplication.clipboard().clear()
    qtbot.keyClick(window.results, Qt.Key.Key_C, ctrl)
    assert QGuiApplication.clipboard().text() == results[0].path
    assert "/" in results[0].path and results[0].path.endswith("shopping.txt")

    # Shift+F10 and the Menu key open the result's context menu (at the item)
    shown = []

    class Menu:
        def exec(self, pos):
            shown.append(pos)

    window.result_menu = lambda r: shown.append(r) or Menu()
    qtbot.keyClick(window.results, Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(window.results, Qt.Key.Key_Menu)
    assert shown[0] == results[0] and shown[2] == results[0] and len(shown) == 4
    rect = window.results.visualRect(window.results.currentIndex())
    assert window.results.viewport().mapFromGlobal(shown[1]) == rect.center()

    # Esc in the grid returns to the search box; Esc there clears the query
    qtbot.keyClick(window.results, Qt.Key.Key_Escape)
    assert focused() is window.search
    with qtbot.waitSignal(window.queryEdited, timeout=1000) as edited:
        qtbot.keyClick(window.search, Qt.Key.Key_Escape)
    assert edited.args == [""] and window.search.text() == ""

    # Ctrl+O: add a folder; F5: rescan every folder; Ctrl+,: preferences
    asked = []
    ctl.choose_folder = lambda: asked.append("folder") or None
    qtbot.keyClick(window.search, Qt.Key.Key_O, ctrl)
    assert asked == ["folder"]
    with qtbot.waitSignal(window.rescanRequested, timeout=1000) as rescan:
        qtbot.keyClick(window.search, Qt.Key.Key_F5)
    assert rescan.args == [""]
    wait_idle(qtbot, ctl)
    ctl.prefs.run_dialog = lambda d: asked.append("prefs") or False
    qtbot.keyClick(window.search, Qt.Key.Key_Comma, ctrl)
    assert asked == ["folder", "prefs"]

    # Ctrl+Q quits
    with qtbot.waitSignal(window.closing, timeout=5000):
        qtbot.keyClick(window.search, Qt.Key.Key_Q, ctrl)
    assert not window.isVisible()


def test_tab_goes_through_the_window_in_reading_order(qtbot, make_gui, photos):  # noqa: F811
    window, ctl, results = with_results(qtbot, make_gui, photos)
    window.results.setCurrentIndex(window.results_model.index(0))  # the preview shows
    window.search.setFocus()
    visited = [focused()]
    for _ in range(40):
        qtbot.keyClick(focused(), Qt.Key.Key_Tab)
        if focused() is window.search:
            break
        visited.append(focused())
    assert focused() is window.search  # Tab comes round
    chain = window.tab_chain()
    where = [chain.index(w) for w in visited if w in chain]
    assert len(where) == len(visited)  # no control outside the planned order
    assert where == sorted(where)
    f, pv = window.filters, window.preview
    for w in (window.menu_button, f.kind, f.folder, f.date, f.sort, window.roots_panel.view,
              window.results, pv.open_button, pv.reveal_button, pv.similar_button):
        assert w in visited, w


def test_every_control_on_the_tab_path_has_a_name_and_shows_focus(qtbot, make_gui, photos,  # noqa: F811
                                                                   themed):
    window, ctl, results = with_results(qtbot, make_gui, photos)
    window.results.setCurrentIndex(window.results_model.index(0))
    window.errors_model.add([("/x/broken.png", "cannot decode")])
    window.job_started("Indexing photos")
    qtbot.wait(50)
    checked = 0
    for w in window.tab_chain():
        if not (w.isVisible() and w.isEnabled() and w.focusPolicy() & Qt.FocusPolicy.TabFocus):
            continue
        name = w.accessibleName() or (w.text() if hasattr(w, "text") else "")
        assert name.strip(), f"{w!r} has no accessible name"
        other = window.results if w is window.search else window.search
        other.setFocus()
        qtbot.waitUntil(lambda other=other: focused() is other, timeout=1000)
        before: QImage = w.grab().toImage()
        w.setFocus(Qt.FocusReason.TabFocusReason)
        qtbot.waitUntil(lambda w=w: focused() is w, timeout=1000)
        after: QImage = w.grab().toImage()
        assert before != after, f"focus on {w.objectName() or w!r} ({name}) shows nothing"
        checked += 1
    assert checked >= 15


def test_tab_reaches_the_example_queries_on_the_idle_page(qtbot, make_gui, photos):  # noqa: F811
    window, ctl, _ = with_results(qtbot, make_gui, photos)
    window.search.clear()
    ctl.lib.show_idle_page()
    assert window.page() == "hint"
    examples = window.hint.example_buttons()
    assert examples and all(b.accessibleName().startswith("Search for ") for b in examples)
    window.search.setFocus()
    visited = []
    for _ in range(40):
        qtbot.keyClick(focused(), Qt.Key.Key_Tab)
        if focused() is window.search:
            break
        visited.append(focused())
    chain = window.tab_chain()
    assert all(b in visited for b in examples)
    where = [chain.index(w) for w in visited]
    assert where == sorted(where)
