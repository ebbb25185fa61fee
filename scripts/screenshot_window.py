"""What the screenshot scripts share: a window on a fresh library in a temporary directory,
its generated folder indexed with the bundled tiny model, ready to be searched and grabbed.

Writes only under that temporary directory (removed afterwards).
"""
from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass
class Shot:
    app: Any  # QApplication
    window: Any  # ui.mainwindow.MainWindow
    ctl: Any  # app.gui.Controller

    def wait(self, cond: Callable[[], object], seconds: float) -> None:
        """Run the event loop until cond() holds, or raise TimeoutError."""
        end = time.monotonic() + seconds
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError("the window did not get there in time")
            self.app.processEvents()
            time.sleep(0.01)

    def settle(self) -> None:
        """A second of events, so the last paints (thumbnails, marks) are in the grab."""
        for _ in range(50):
            self.app.processEvents()
            time.sleep(0.02)


@contextmanager
def indexed_window(make_folder: Callable[[Path], object], **window_kw: Any) -> Iterator[Shot]:
    """`make_folder(path)` fills the folder; the window indexes it as a person would (added
    as a folder, waited for) and is shut down on the way out."""
    from PySide6.QtWidgets import QApplication

    from app.gui import make_window
    from app.wiring import load_model
    from indexer.specs import TINY_SHAPES
    from ui import theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    theme.apply(app)
    with tempfile.TemporaryDirectory() as tmp:
        pictures = Path(tmp) / "Pictures"
        make_folder(pictures)
        enc = load_model(TINY_SHAPES, allow_download=False)
        window, ctl = make_window(str(Path(tmp) / "lib"), spec=TINY_SHAPES,
                                  load_encoder=lambda s, w: enc, **window_kw)
        window.resize(1280, 800)
        window.show()
        ctl.start()
        shot = Shot(app, window, ctl)
        try:
            shot.wait(lambda: ctl.searcher is not None, 60)
            ctl.add_paths([str(pictures)])
            shot.wait(lambda: ctl.runner.busy, 10)
            shot.wait(lambda: not ctl.runner.busy and not ctl.runner.pending, 600)
            yield shot
        finally:
            ctl.shutdown()
