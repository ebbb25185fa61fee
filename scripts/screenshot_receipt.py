"""Regenerate docs/screenshot-receipt.png: a receipt found by a word printed on it.

A folder of generated pictures (a receipt, a screenshot, a sign, a slide, drawn with real fonts,
among shapes pictures without text) is indexed with the bundled tiny model and text reading on;
the search "hammer" finds the receipt by the words read in it, and its preview marks the word.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshot_receipt.py

Writes only under a temporary directory and docs/.
"""
from __future__ import annotations

import sys
from pathlib import Path

from screenshot_window import ROOT, indexed_window

RECEIPT = ["HARDWARE STORE", "12 Market Street", "Claw hammer 16oz   12.99",
           "Wood screws x40     4.50", "Sandpaper P120      2.80", "TOTAL              20.29",
           "Card **** 4417  ref RE16 TGK"]


def make_folder(folder: Path) -> None:
    from magpie_demo.shapes import make_demo_folder
    from indexer.text_pictures import draw, draw_lines, find_fonts

    make_demo_folder(folder, n_images=40, seed=5)
    fonts = find_fonts()
    scans = folder / "scans"
    scans.mkdir(parents=True, exist_ok=True)
    draw_lines(RECEIPT, fonts.get("DejaVuSansMono"), 26).image.save(scans / "IMG_2291.png")
    draw("screenshot", fonts.get("DejaVuSans"), 18, seed=3).image.save(scans / "Screenshot 1.png")
    draw("sign", fonts.get("LiberationSans-Regular"), 40, seed=2).image.save(scans / "IMG_2304.jpg")
    draw("slide", fonts.get("LiberationSerif-Regular"), 34, seed=4).image.save(scans / "slide 7.png")


def main() -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from app.settings import Settings

    out = ROOT / "docs" / "screenshot-receipt.png"
    with indexed_window(make_folder, settings=Settings(ocr=True)) as shot:
        window, ctl, wait = shot.window, shot.ctl, shot.wait
        ctl.last_page = None
        QTest.keyClicks(window.search, "hammer")
        QTest.keyClick(window.search, Qt.Key.Key_Return)
        wait(lambda: ctl.last_page is not None and window.results_model.rowCount() > 0, 30)
        model = window.results_model
        row = next(i for i, r in enumerate(model.results()) if r.path.endswith("IMG_2291.png"))
        wait(lambda: model.index(row).data(Qt.ItemDataRole.DecorationRole) is not None, 30)
        window.results.setCurrentIndex(model.index(row))
        wait(lambda: window.preview.current is not None and window.preview.image.marks(), 30)
        shot.settle()
        window.grab().save(str(out))
        r = model.results()[row]
        print(f"{out}: receipt at rank {row + 1}, relevance {r.relevance_pct}, "
              f"line {r.snippet!r}, {len(window.preview.image.marks())} mark(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
