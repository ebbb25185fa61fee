"""Regenerate docs/screenshot-search.png: the demo library (6,000 pictures + notes) indexed with
the bundled tiny model, searched for "a yellow star"; with --cases, the four searches of issue
13 on a 600-picture demo library ("blue triangle", "red circle", the gibberish "qwzx florp
blarg" showing "No strong matches", "shopping list"), one docs/screenshot-case-*.png each, at
1000 px wide, scrolled to the "Other results" divider (after "Show more" when every result
shown stands out); with --minimum as
well, the gibberish search again at the window's minimum size (written to the temporary
directory, its path printed: for checking, not for the docs).

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python scripts/screenshot_search.py
    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshot_search.py --cases

Writes only under a temporary directory and docs/.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from screenshot_window import ROOT, Shot, indexed_window


CASES = {"blue triangle": "blue-triangle", "red circle": "red-circle",
         "qwzx florp blarg": "gibberish", "shopping list": "shopping-list"}


def main() -> int:
    cases = "--cases" in sys.argv[1:]
    from magpie_demo.shapes import make_demo_folder

    def make_folder(folder: Path) -> None:
        make_demo_folder(folder, n_images=600 if cases else 6000)

    with indexed_window(make_folder) as shot:
        shot.window.resize(*((1000, 760) if cases else (1280, 800)))
        queries = CASES if cases else {"a yellow star": None}
        for query, slug in queries.items():
            page = search_and_grab(shot, query, ROOT / "docs" / (
                f"screenshot-case-{slug}.png" if slug else "screenshot-search.png"), not cases)
            print(f"{query!r}: {page.cutoff} of {len(page.results)} results stand out"
                  + (" (No strong matches)" if page.cutoff == 0 else ""))
        if "--minimum" in sys.argv[1:]:
            shot.window.resize(shot.window.minimumSize())
            small = Path(tempfile.gettempdir()) / "magpie-screenshot-minimum.png"
            search_and_grab(shot, "qwzx florp blarg", small, False)
            print(f"minimum size {shot.window.width()}x{shot.window.height()}: {small}")
    return 0


def search_and_grab(shot: Shot, query: str, out: Path, select_second: bool):
    """Type the query as a user would, wait for the thumbnails, save the window's grab."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QAbstractItemView

    from ui.models import Roles

    window, ctl, wait = shot.window, shot.ctl, shot.wait

    ctl.last_page = None
    if select_second:
        QTest.keyClicks(window.search, query)  # as typed: search as you type
        QTest.keyClick(window.search, Qt.Key.Key_Return)
    else:
        ctl.search.run_query(query)  # one search: no half-typed query's page can land last
    wait(lambda: ctl.last_page is not None and window.results_model.rowCount() > 0, 30)
    model = window.results_model
    rows = range(min(9, model.rowCount()))
    if not select_second:  # the cases: show where the results stop standing out
        if model.divider_row() is None and window.hidden_results():
            window.show_more_button.click()  # the rest come under the divider
        split = model.divider_row()
        if split is not None:
            for _ in range(20):
                shot.app.processEvents()
            window.results.scrollTo(model.index(split),
                                    QAbstractItemView.ScrollHint.PositionAtCenter)
            rows = range(max(0, split - 4), min(split + 5, model.rowCount()))
    wait(lambda: all(model.index(row).data(Qt.ItemDataRole.DecorationRole) is not None
                     for row in rows if model.index(row).data(Roles.Kind) == "image"), 30)
    if select_second:
        window.results.setCurrentIndex(model.index(model.row_of(model.results()[1].file_id)))
    shot.settle()
    window.grab().save(str(out))
    return ctl.last_page


if __name__ == "__main__":
    sys.exit(main())
