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
from app.library_controller import LibraryController, device_label
from app.preferences import PreferencesController
from app.reveal import Revealer
from app.search_controller import SearchController
from app.search_page import Page, run_search
from app.settings import Settings, cache_dir, data_dir
from app.warm_start import WarmStart
from app.watching import FolderFollower
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
        warm: WarmStart | None = None,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.jobs = IndexingController(window, self)
        self.search = SearchController(window, self)
        self.lib = LibraryController(
            window, self.jobs, library, spec=spec, load_encoder=load_encoder, tuning=tuning,
            settings=settings, demo_images=demo_images, drain_searches=self.search.searches.wait,
            query_active=lambda: not self.search.state.empty(), warm=warm, parent=self)
        self.jobs.target = self.lib
        self.prefs = PreferencesController(window, self.lib, parent=self)
        self.search.show_idle = self.lib.show_idle_page
        self.search.model_error = lambda: self.lib.model_error
        self.opener: Callable[[str], bool] = open_path
        self.reveal = Revealer(self)
        self.reveal.failed.connect(lambda p: window.notify(f"Could not show {p}", 6000))
        self.revealer: Callable[[str], bool] = self.reveal
        # asked when the window closes while indexing: True quits (the rest resumes next time)
        self.ask_quit: Callable[[str], bool] = window.ask_quit_while_indexing
        self._shutting_down = False
        # the library's folders are followed while the window is open (Settings.watch)
        self.follower = FolderFollower(self.jobs.update, enabled=self.lib.settings.watch,
                                       parent=self)
        window.close_guard = self._may_close  # type: ignore[attr-defined]
        self.prefs.watchChanged.connect(self.set_watching)

        lib, jobs, search = self.lib, self.jobs, self.search
        lib.searcherChanged.connect(search.set_searcher)
        lib.modelFailed.connect(search.on_model_failed)
        lib.switching.connect(search.clear_query)
        lib.demoStarted.connect(lambda: search.run_when_results(DEMO_QUERY))
        lib.rootsListed.connect(self._follow)
        self.follower.reachChanged.connect(lambda _gone: lib.refresh_library_view())
        jobs.itemsChanged.connect(lib.refresh_library_view)
        jobs.resultsStale.connect(search.refresh)
        window.openRequested.connect(self.open_result)
        window.revealRequested.connect(self.reveal_result)
        window.closing.connect(self.shutdown)
        window.aboutRequested.connect(self.show_about)

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

    def open_folder_as_library(self, path, spec: ModelSpec | None = None) -> bool:
        """Any way of opening a library by folder goes through here: a folder that holds
        other things becomes a library only after the person agrees."""
        return self.lib.open_folder_as_library(path, spec)

    # -- following the folders --------------------------------------------------------------
    def _follow(self, roots: list[str]) -> None:
        # never follow Magpie's own writes (a library or cache inside an indexed folder)
        self.follower.follow(roots, ignore=[str(self.lib.library_path), str(data_dir()),
                                            str(cache_dir())])

    @property
    def watching(self) -> bool:
        return self.follower.enabled

    def set_watching(self, on: bool) -> None:
        """Follow the folders (or stop) from now on, and remember it (Settings.watch). Turned
        on, what changed meanwhile is picked up at once."""
        settings = self.lib.settings
        if settings.watch != on:
            settings.watch = on
            self.lib.save_settings()
        was = self.follower.enabled
        self.follower.set_enabled(on)
        if on and not was and self.library is not None and self.roots():
            self.jobs.catch_up(self.roots(), "Indexing what changed while not following")

    # -- opening ----------------------------------------------------------------------------
    def open_result(self, r) -> None:
        if not self.opener(r.open_path):
            self.window.notify(f"Could not open {r.path}", 6000)

    def reveal_result(self, r) -> None:
        if not self.revealer(r.open_path):
            self.window.notify(f"Could not show {r.path}", 6000)

    def about_info(self):
        from app.about import about_info

        enc = self.lib.encoder
        return about_info(self.lib.spec, enc,
                          device_label(getattr(enc, "device", None)) if enc is not None else "")

    def show_about(self) -> None:
        from ui.widgets.about import AboutDialog

        dialog = AboutDialog(self.about_info(), self.window)
        self.show_dialog(dialog)
        dialog.deleteLater()

    def show_dialog(self, dialog) -> None:
        """Runs a modal dialog (tests replace it)."""
        dialog.exec()

    # -- shutdown ---------------------------------------------------------------------------
    def _may_close(self) -> bool:
        """Quitting while indexing asks; either answer loses nothing (batches are committed
        as they are done, and what is left resumes at the next start)."""
        if self._shutting_down or not self.jobs.indexing_visibly():
            return True
        current = self.runner.current
        what = current.title if current is not None else "Folders are waiting to be indexed."
        if not what.endswith((".", "…")):
            what += "."
        return bool(self.ask_quit(what))

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
        self.follower.close()
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


def configure_app(app: QApplication) -> None:
    """Names for the desktop. No application display name: Qt appends it to every window
    title on X11 and Windows, and the title already starts with "Magpie" ("Magpie — lib")."""
    app.setApplicationName("Magpie")
    app.setOrganizationName("Magpie")
    app.setDesktopFileName("magpie")


def run_gui(library: str | None, query: str | None = None,
            warm: WarmStart | None = None) -> int:
    """Open the window; returns the exit status. `query`: searched for as soon as the library
    and model are ready (the window says so meanwhile). `warm`: the model's load, begun before
    this module was imported (app/cli.py), so it runs while the window is built."""
    logging.basicConfig(level=os.environ.get("MAGPIE_LOG", "WARNING"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    configure_app(app)
    theme.apply(app)
    window, controller = make_window(library, warm=warm)
    restored = window.restore_state(window_settings())
    if not restored:
        window.resize(1280, 820)
    window.show()
    QTimer.singleShot(0, controller.start)
    if query:
        QTimer.singleShot(0, lambda: controller.search.run_query(query))
    # Ctrl+C in the terminal quits cleanly: Python only sees signals while it runs code
    signal.signal(signal.SIGINT, lambda *_: window.close())
    heartbeat = QTimer()
    heartbeat.start(250)
    heartbeat.timeout.connect(lambda: None)
    return int(app.exec())


__all__ = ["Controller", "make_window", "run_gui", "run_search"]
