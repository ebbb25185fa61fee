"""The screenshot scripts' shared set-up (scripts/screenshot_window.py): a window on a fresh
library with its generated folder indexed, ready to search, and nothing left behind after."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys
sys.path.insert(0, "scripts")
from magpie_demo.shapes import make_demo_folder
from screenshot_window import indexed_window

with indexed_window(lambda folder: make_demo_folder(folder, n_images=8, seed=1)) as shot:
    counts = shot.ctl.library.catalogue.counts()
    where = shot.ctl.library_path
    searchable = shot.ctl.searcher is not None
    shot.settle()
print(counts["images"], counts["notes"], counts["pending"], searchable)
print(where)
"""


def test_indexed_window_indexes_the_folder_and_cleans_up() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                         text=True, timeout=600,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen",
                              "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    counts, library = out.stdout.splitlines()
    images, notes, pending, searchable = counts.split()
    assert (int(images), int(pending), searchable) == (8, 0, "True")
    assert int(notes) > 0
    assert not Path(library).exists()  # its temporary directory is gone
