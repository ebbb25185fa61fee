"""The desktop window: `run_gui()` is what `magpie` (no subcommand) and `magpie gui` call;
`Controller` composes the three controllers that drive one window:

* app/library_controller.py — the library and its model (open, switch, weights, demo,
  migration) and the status line;
* app/indexing_controller.py — writer jobs (index, rescan, remove) and their progress;
* app/search_controller.py — the query (a Qt-free SearchState), searches and result pages.

Threads: the UI thread only displays and reads small things through `library.reader()`.
Writer jobs run one at a time on the JobRunner's worker thread, the only user of the library's
writer connection while they run. Searches run on the SearchService's thread; the model loads
on a background Task, so the window is up before torch is even imported.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QSettings, QTimer, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication

from app.indexing_controller import IndexingController
from app.library_controller import LibraryController
from app.search_controller import SearchController
from app.search_page import Page, run_search
from app.settings import Settings, data_dir
from indexer.specs import ModelSpec
from ui import theme
from ui.mainwindow import MainWindow

log = logging.getLogger(__name__)

DEMO_IMAGES = 96
DEMO_QUERY = "a red circle"


def window_settings() -> QSettings:
    """Window geometry and splitter, next to settings.json in Magpie's data dir (so tests and
    MAGPIE_DATA_DIR isolate it like everything else)."""
    return QSettings(str(data_dir() / "window.ini"), QSettings.Format.IniFormat)


def open_path(path: str) -> bool:
    return QDesktopServices.openUrl(QUrl.fromLocalFile(path))


def reveal_path(path: str) -> bool:
    """Show a file selected in the system's file manager (its folder, where we can't select)."""
    if sys.platform == "darwin":
        from PySide6.QtCore import QProcess

        return QProcess.startDetached("open", ["-R", path])
    if sys.platform.startswith("win"):
        from PySide6.QtCore import QProcess

        return QProcess.startDetached("explorer", ["/select,", os.path.normpath(path)])
    try:
        from PySide6.QtDBus import QDBusConnection, QDBusInterface

        bus = QDBusConnection.sessionBus()
        if bus.isConnected():
            iface = QDBusInterface("org.freedesktop.FileManager1", "/org/freedesktop/FileManager1",
                                   "org.freedesktop.FileManager1", bus)
            if iface.isValid():
                iface.asyncCall("ShowItems", [QUrl.fromLocalFile(path).toString()], "")
                return True
    except Exception:  # noqa: BLE001 - fall back to opening the folder
        pass
    return open_path(os.path.dirname(path))


class Controller(QObject):
    """One window's composition: a library controller (library, model, weights, demo,
    migration), an indexing controller (writer jobs and their progress) and a search
    controller (query state, searches, pages), wired to each other by signals and to the
    window through its signals and methods only. The attributes below are read-only views of
    theirs, for tests and scripts that drive a window."""

    def __init__(
        self,
        window: MainWindow,
        library: str | os.PathLike | None = None,
        *,
        spec: ModelSpec | None = None,
        load_encoder: Callable[[ModelSpec, str | None], Any] | None = None,
        tuning=None,
        settings: Settings | None = None,
        demo_images: int = DEMO_IMAGES,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.jobs = IndexingController(window, self)
        self.search = SearchController(window, self)
        self.lib = LibraryController(
            window, self.jobs, library, spec=spec, load_encoder=load_encoder, tuning=tuning,
            settings=settings, demo_images=demo_images, drain_searches=self.search.searches.wait,
            query_active=lambda: not self.search.state.empty(), parent=self)
        self.jobs.target = self.lib
        self.search.show_idle = self.lib.show_idle_page
        self.search.model_error = lambda: self.lib.model_error
        self.opener: Callable[[str], bool] = open_path
        self.revealer: Callable[[str], bool] = reveal_path
        self._shutting_down = False

        lib, jobs, search = self.lib, self.jobs, self.search
        lib.searcherChanged.connect(search.set_searcher)
        lib.modelFailed.connect(search.on_model_failed)
        lib.switching.connect(search.clear_query)
        lib.demoStarted.connect(lambda: search.run_when_results(DEMO_QUERY))
        jobs.itemsChanged.connect(lib.refresh_library_view)
        jobs.resultsStale.connect(search.refresh)
        window.openRequested.connect(self.open_result)
        window.revealRequested.connect(self.reveal_result)
        window.closing.connect(self.shutdown)

    def start(self) -> None:
        """Open the library and load its model, both in the background."""
        self.lib.open_library(self.lib.library_path, self.lib.spec_override)

    # -- views of the parts (tests and scripts read these) ----------------------------------
    library = property(lambda self: self.lib.library)
    library_path = property(lambda self: self.lib.library_path)
    spec = property(lambda self: self.lib.spec)
    encoder = property(lambda self: self.lib.encoder)
    searcher = property(lambda self: self.lib.searcher)
    model_error = property(lambda self: self.lib.model_error)
    model_task = property(lambda self: self.lib.model_task)
    weights_task = property(lambda self: self.lib.weights_task)
    _migrate_target = property(lambda self: self.lib.migrate_target)
    runner = property(lambda self: self.jobs.runner)
    last_report = property(lambda self: self.jobs.last_report)
    searches = property(lambda self: self.search.searches)
    query = property(lambda self: self.search.state)

    @property
    def last_page(self) -> Page | None:
        return self.search.last_page

    @last_page.setter
    def last_page(self, page: Page | None) -> None:
        self.search.last_page = page

    @property
    def confirm(self) -> Callable[[str, str], bool]:
        return self.jobs.confirm

    @confirm.setter
    def confirm(self, fn: Callable[[str, str], bool]) -> None:
        self.jobs.confirm = fn

    @property
    def choose_folder(self) -> Callable[[], str | None]:
        return self.jobs.choose_folder

    @choose_folder.setter
    def choose_folder(self, fn: Callable[[], str | None]) -> None:
        self.jobs.choose_folder = fn

    @property
    def choose_file(self) -> Callable[[], str | None]:
        return self.lib.choose_file

    @choose_file.setter
    def choose_file(self, fn: Callable[[], str | None]) -> None:
        self.lib.choose_file = fn

    # -- the common verbs -------------------------------------------------------------------
    def add_paths(self, paths: list[str]) -> None:
        self.jobs.add_paths(paths)

    def roots(self) -> list[str]:
        return self.jobs.roots()

    def filters(self):
        return self.search.filters()

    def search_now(self, live: bool = False) -> int | None:
        return self.search.search_now(live)

    def switch_library(self, path, spec: ModelSpec | None = None) -> None:
        self.lib.switch_library(path, spec)

    def start_demo(self) -> None:
        self.lib.start_demo()

    # -- opening ----------------------------------------------------------------------------
    def open_result(self, r) -> None:
        if not self.opener(r.open_path):
            self.window.notify(f"Could not open {r.path}", 6000)

    def reveal_result(self, r) -> None:
        if not self.revealer(r.open_path):
            self.window.notify(f"Could not show {r.path}", 6000)

    # -- shutdown ---------------------------------------------------------------------------
    def shutdown(self) -> None:
        if self._shutting_down:
            return
        self._shutting_down = True
        self.jobs.closing = self.lib.closing = True
        self.search.debounce.stop()
        try:
            self.window.save_state(window_settings())
        except Exception:  # noqa: BLE001
            pass
        self.runner.cancel_all()
        self.runner.wait(60_000)
        self.searches.invalidate()
        self.searches.wait(10_000)
        self.window.stop_thumbnails(5_000)
        self.lib.close()


def make_window(library: str | None = None, **kw) -> tuple[MainWindow, Controller]:
    """The window and its controller, not yet started (tests call this)."""
    window = MainWindow()
    controller = Controller(window, library, **kw)
    window.controller = controller  # type: ignore[attr-defined]
    return window, controller


def run_gui(library: str | None) -> int:
    """Open the window; returns the exit status."""
    logging.basicConfig(level=os.environ.get("MAGPIE_LOG", "WARNING"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Magpie")
    app.setOrganizationName("Magpie")
    app.setApplicationDisplayName("Magpie")
    app.setDesktopFileName("magpie")
    theme.apply(app)
    window, controller = make_window(library)
    restored = window.restore_state(window_settings())
    if not restored:
        window.resize(1280, 820)
    window.show()
    QTimer.singleShot(0, controller.start)
    # Ctrl+C in the terminal quits cleanly: Python only sees signals while it runs code
    signal.signal(signal.SIGINT, lambda *_: window.close())
    heartbeat = QTimer()
    heartbeat.start(250)
    heartbeat.timeout.connect(lambda: None)
    return int(app.exec())


__all__ = ["Controller", "make_window", "run_gui", "run_search"]
