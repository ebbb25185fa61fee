"""Narrow windows: at 1000 px wide and at the minimum size no label, button or combo box is
cut (each fits its text, or elides it with the full text in its tooltip), and the errors
panel never takes more than about a third of the results area."""
from __future__ import annotations

import pytest
from helpers import note, solid
from layout_check import cut_text
from PySide6.QtCore import Qt
from test_gui import make_gui, wait_idle  # noqa: F401 - fixtures

from ui import theme

LONG_STATUS = ("12,682 items  ·  11,500 pictures  ·  1,182 notes",
               "Model: vit-b-32 (ViT-B-32 / laion2b_s34b_b79k, ac4f8c4b)",
               "GPU · NVIDIA GeForce RTX 4090 Laptop GPU")


@pytest.fixture
def themed(qapp):
    theme.apply(qapp, dark=False)
    yield
    qapp.setStyleSheet("")


@pytest.fixture
def busy_window(qtbot, make_gui, tmp_path, themed):  # noqa: F811
    """A window with everything on screen at once: long folder names, results, a preview,
    indexing progress, an error, a long status line."""
    root = tmp_path / "Holiday photos from the summer of 2024 at the seaside"
    for i in range(8):
        solid(root / f"beach-{i}-a-rather-long-file-name.png", (200, 100 + i * 10, 50))
    note(root / "notes" / "shopping.txt", "buy a ladder and blue paint at the hardware store")
    window, ctl = make_gui()
    ctl.add_paths([str(root)])
    wait_idle(qtbot, ctl)
    window.search.setText("beach")
    window.queryCommitted.emit("beach")
    qtbot.waitUntil(lambda: window.page() == "results" and window.visible_results() > 0,
                    timeout=10_000)
    window.results.setCurrentIndex(window.results_model.index(0))
    window.errors_model.add([(str(root / f"broken-{i}.png"), "cannot decode: truncated file")
                             for i in range(40)])
    window.job_started("Indexing Holiday photos from the summer of 2024 at the seaside")
    window.show_progress("Indexing Holiday photos from the summer of 2024 at the seaside",
                         120, 1682, 12.5, 130, str(root / "beach-3.png"), 1, 2)
    window.set_status(*LONG_STATUS)
    window.set_summary("2 stand out  ·  8 of 102 shown  ·  59 ms  ·  text on onnxruntime")
    window.offer_load_more(94)
    window.notify("Indexed: 13 added, 0 changed, 0 moved, 0 removed, 0 unchanged, 0 errors in "
                  "4.2 s", 60_000)
    return window, ctl


def sizes(window):
    return [(1000, 700), (window.minimumWidth(), window.minimumHeight())]


def settle(qtbot, window, size) -> None:
    window.resize(*size)
    qtbot.wait(30)  # the resize, then the panes' rebalancing and the errors cap (next turn)
    qtbot.wait(30)


@pytest.mark.parametrize("page", ["results", "hint", "message", "empty"])
def test_nothing_is_cut_at_1000px_and_at_the_minimum_size(qtbot, busy_window, page):
    window, ctl = busy_window
    if page == "hint":
        ctl.lib.show_idle_page()
        assert window.page() == "hint"
    elif page == "message":
        window.show_message("No strong matches for “a purple elephant on roller skates”",
                            "Nothing in your library stands out for this query; the closest "
                            "items are listed below.")
    elif page == "empty":
        window.show_page("empty")
    for size in sizes(window):
        settle(qtbot, window, size)
        assert window.width() == size[0]
        assert cut_text(window) == [], f"{page} at {size}"
        # the long status lines elide, their whole text in the tooltip
        for lbl, text in zip((window.items_label, window.model_label, window.device_label),
                             LONG_STATUS):
            assert lbl.text() == text
            if lbl.is_elided():
                assert text in lbl.toolTip()


def test_the_side_panes_shrink_before_the_results(qtbot, busy_window):
    window, _ = busy_window
    settle(qtbot, window, sizes(window)[1])
    roots, results, preview = window.splitter.sizes()
    assert roots == window.roots_panel.minimumSizeHint().width()
    assert preview == window.preview.minimumSizeHint().width()
    assert results >= 250
    # each pane keeps its buttons whole: Rescan / Remove, Open / Show in folder
    for b in (window.roots_panel.rescan_button, window.roots_panel.remove_button,
              window.preview.open_button, window.preview.reveal_button):
        assert b.width() >= b.sizeHint().width(), b.text()


def test_the_errors_panel_takes_at_most_a_third_of_the_results_area(qtbot, busy_window):
    window, _ = busy_window
    qtbot.mouseClick(window.errors.toggle, Qt.MouseButton.LeftButton)
    assert window.errors.view.isVisible()
    for size in sizes(window):
        settle(qtbot, window, size)
        assert window.errors.height() <= window.body.height() / 3 + 2, size
        assert window.errors.view.height() >= window.errors.view.sizeHintForRow(0)  # a row
    assert cut_text(window) == []


def test_the_dialogs_fit_their_text_at_their_minimum_size(qtbot, busy_window):
    window, ctl = busy_window
    dialogs = [ctl.prefs.make_dialog()]
    from ui.widgets.about import AboutDialog

    dialogs.append(AboutDialog(ctl.about_info(), window))
    for d in dialogs:
        qtbot.addWidget(d)
        d.show()
        d.resize(d.minimumSizeHint())
        qtbot.wait(20)
        assert cut_text(d) == [], d.windowTitle()
    # each model's description and note are shown whole, whichever is chosen
    prefs = dialogs[0]
    prefs.model.setCurrentIndex(prefs.model.findData("tiny-shapes"))  # the shortest text
    qtbot.wait(30)
    prefs.resize(prefs.minimumWidth(), prefs.layout().totalHeightForWidth(prefs.minimumWidth()))
    qtbot.wait(30)
    for i in range(prefs.model.count()):
        if prefs.model.itemData(i):
            prefs.model.setCurrentIndex(i)
            qtbot.wait(30)
            assert cut_text(prefs) == [], prefs.model.itemData(i)
