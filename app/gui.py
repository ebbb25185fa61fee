"""The desktop window's controller: wires the core (library, model, indexer, searcher) to the
widgets in `ui/`. `run_gui()` is what `magpie` (no subcommand) and `magpie gui` call.

Threads: the UI thread only displays and reads small things through `library.reader()`.
Writer jobs (index, rescan, remove a folder, switch library) run one at a time on the
JobRunner's worker thread, the only user of the library's writer connection while they run.
Searches run on the SearchService's thread; the model loads on a background Task, so the
window is up before torch is even imported.
"""
from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QSettings, QTimer, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from app.qt_bridge import Job, JobRunner, SearchService, Task
from app.settings import Settings, data_dir, default_library, demo_folder, demo_library
from indexer.catalogue import FileFilter
from indexer.jobs import FileError, IndexReport, Progress
from indexer.specs import TINY_SHAPES, ModelSpec
from ui import theme
from ui.mainwindow import MainWindow

log = logging.getLogger(__name__)

DEBOUNCE_MS = 250
PAGE_K = 60  # results fetched per search (the cutoff decides how many show first)
MIN_VISIBLE = 8  # show at least this many even when fewer stand out (they keep a grey badge)
LIVE_COUNTS_S = 1.0  # while indexing: refresh counts at most this often
LIVE_SEARCH_S = 2.0  # …and re-run the visible search at most this often
DEMO_IMAGES = 96
DEMO_QUERY = "a red circle"

PHASES = {
    "scanning": "Looking for files",
    "hashing": "Checking what changed",
    "embedding": "Indexing",
    "reading text": "Reading text in pictures",
    "saving": "Saving",
    "done": "Finishing",
}


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


def result_active_fingerprint(library: Path) -> str | None:
    from indexer.library import LibraryInfo

    return LibraryInfo.read(library).active


def device_label(device: str | None) -> str:
    if not device:
        return ""
    if device.startswith("cuda"):
        try:
            import torch

            return f"GPU · {torch.cuda.get_device_name(torch.device(device))}"
        except Exception:  # noqa: BLE001
            return "GPU (CUDA)"
    if device == "mps":
        return "GPU (Apple)"
    return "CPU"


@dataclass
class QueryState:
    text: str = ""
    image: str | None = None  # an image file as the query (dropped on the search box)
    similar_to: int | None = None  # "find similar": this file is the query
    similar_path: str | None = None
    similar_label: str = ""
    positives: set[int] = field(default_factory=set)
    negatives: set[int] = field(default_factory=set)
    k: int = PAGE_K

    def empty(self) -> bool:
        return not self.text.strip() and self.image is None and self.similar_to is None

    def describe(self) -> str:
        if self.similar_to is not None:
            return f"similar to {self.similar_label}"
        if self.image and self.text.strip():
            return f"“{self.text.strip()}” + {os.path.basename(self.image)}"
        if self.image:
            return f"like {os.path.basename(self.image)}"
        return f"“{self.text.strip()}”"


@dataclass(frozen=True)
class Page:
    """What the window shows for one search (adapts the core's SearchPage)."""

    results: list
    cutoff: int
    elapsed_ms: float


def run_search(searcher, state: QueryState, flt: FileFilter, sort: str) -> Page:
    """Runs on the search thread: the window's query state as the core's SearchRequest."""
    from indexer.search import SearchRequest

    req = SearchRequest(
        text=state.text.strip(), image=state.image, k=state.k, flt=flt,
        positives=tuple(sorted(state.positives)), negatives=tuple(sorted(state.negatives)),
        similar_to=state.similar_to, sort=sort,
    )
    page = searcher.run(req)
    return Page(list(page.results), int(page.cutoff), float(page.elapsed_ms))


class Controller(QObject):
    """Owns the library, the encoder, the jobs and the search state for one window."""

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
        self.settings = settings or Settings.load()
        self.library_path = Path(library).expanduser() if library else self.settings.library_path()
        self._spec_override = spec
        self._migrate_target: ModelSpec | None = None
        self._load_encoder_fn = load_encoder
        self._owns_encoder = load_encoder is None
        self._tuning = tuning
        self.demo_images = demo_images
        self.library = None
        self.spec: ModelSpec | None = None
        self.encoder = None
        self.searcher = None
        self.model_error: str | None = None
        self.query = QueryState()
        self.runner = JobRunner(self)
        self.searches = SearchService(self)
        self.model_task: Task | None = None
        self.weights_task: Task | None = None
        self.last_report: IndexReport | None = None
        self.last_page: Page | None = None
        self.confirm: Callable[[str, str], bool] = self._confirm
        self.choose_folder: Callable[[], str | None] = self._choose_folder
        self.choose_file: Callable[[], str | None] = self._choose_weights_file
        self.opener: Callable[[str], bool] = open_path
        self.revealer: Callable[[str], bool] = reveal_path
        self.counts: dict[str, int] = {}
        self._live = False
        self._embed_started: float | None = None
        self._last_counts = 0.0
        self._last_live_search = 0.0
        self._shutting_down = False
        self._pending_demo_query = False

        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(DEBOUNCE_MS)
        self.debounce.timeout.connect(self.search_now)
        self._wire()

    # -- wiring -----------------------------------------------------------------------------
    def _wire(self) -> None:
        w = self.window
        w.queryEdited.connect(self._on_query_edited)
        w.queryCommitted.connect(self._on_query_committed)
        w.imageQuery.connect(self._on_image_query)
        w.imageQueryCleared.connect(self._on_image_cleared)
        w.filtersChanged.connect(self._on_filters)
        w.pathsDropped.connect(self.add_paths)
        w.addFolderRequested.connect(self._on_add_folder)
        w.rescanRequested.connect(self.rescan)
        w.removeRootRequested.connect(self._on_remove_root)
        w.openRequested.connect(self.open_result)
        w.revealRequested.connect(self.reveal_result)
        w.findSimilarRequested.connect(self.find_similar)
        w.markRequested.connect(self.mark)
        w.showMoreRequested.connect(self.show_more)
        w.pauseRequested.connect(self.runner.pause)
        w.resumeRequested.connect(self.runner.resume)
        w.cancelRequested.connect(self.cancel_jobs)
        w.bannerAction.connect(self._on_banner_action)
        w.demoRequested.connect(self.start_demo)
        w.chooseWeightsRequested.connect(self.choose_weights)
        w.downloadWeightsRequested.connect(self.download_weights)
        w.openLibraryRequested.connect(self._on_open_library)
        w.defaultLibraryRequested.connect(lambda: self.switch_library(default_library()))
        w.closing.connect(self.shutdown)
        r = self.runner
        r.started.connect(self._on_job_started)
        r.progress.connect(self._on_job_progress)
        r.fileErrors.connect(self._on_file_errors)
        r.finished.connect(self._on_job_finished)
        r.pausedChanged.connect(w.progress.set_paused)
        r.queueChanged.connect(self._on_queue_changed)
        self.searches.done.connect(self._on_search_done)
        self.searches.failed.connect(self._on_search_failed)

    # -- library and model ------------------------------------------------------------------
    def start(self) -> None:
        """Open the library and load its model, both in the background."""
        self._open_library(self.library_path, self._spec_override)

    def _open_library(self, path: Path, spec: ModelSpec | None, *,
                      prepare: Callable[[Callable[[Progress], None]], None] | None = None) -> None:
        from app.wiring import choose_spec
        from indexer.library import Library

        old, self.library, self.searcher = self.library, None, None
        self.searches.invalidate()
        self.runner.set_model_ready(False)
        self.library_path = Path(path)
        self.window.setWindowTitle(f"Magpie — {self.library_path.name}")
        self.window.set_status("Opening library…", "", "")
        searches = self.searches

        def fn(control, on_progress, on_error):
            searches.wait()
            if old is not None:
                old.close()
            if prepare is not None:
                prepare(on_progress)
            chosen = spec or choose_spec(path, None, self.settings)
            return Library.open(path, chosen)

        self.runner.submit(Job("switch", "Preparing the demo" if prepare else "Opening library",
                               fn, quiet=prepare is None))

    def _library_opened(self, library) -> None:
        self.library = library
        self.spec = library.spec
        self.window.hide_banner()
        self.refresh_library_view(errors=True)
        if self.encoder is not None and getattr(self.encoder, "spec", self.spec) == self.spec \
                and not self._spec_mismatch():
            self._model_ready()
        else:
            self._drop_encoder()
            self.load_model()

    def _spec_mismatch(self) -> bool:
        dim = getattr(self.encoder, "dim", None)
        return dim is not None and self.spec is not None and dim != self.spec.embed_dim

    def _drop_encoder(self) -> None:
        enc, self.encoder, self.searcher = self.encoder, None, None
        if enc is not None and self._owns_encoder:
            try:
                enc.close()
            except Exception:  # noqa: BLE001
                pass

    def _load(self, spec: ModelSpec, weights: str | None, allow_download: bool = False):
        """Runs on a background thread. Also imports the core's heavier modules there, so
        the first search or drop never pays for an import on the UI thread."""
        import indexer.indexing  # noqa: F401
        import indexer.search  # noqa: F401

        if self._load_encoder_fn is not None:
            return self._load_encoder_fn(spec, weights)
        from app.wiring import load_model

        return load_model(spec, weights, allow_download=allow_download, settings=self.settings)

    def load_model(self, weights: str | None = None) -> None:
        spec = self.spec
        if spec is None:
            return
        self.model_error = None
        self.window.set_status(self._items_text(), f"Model: {spec.label()}", "Loading model…")
        if weights:
            self.window.banner.set_busy("Checking the weights file (this takes a few seconds "
                                        "for large models)…")
        task = Task(lambda: self._load(spec, weights), parent=self)
        task.done.connect(lambda enc: self._on_model_loaded(spec, enc, weights))
        task.failed.connect(lambda msg, exc: self._on_model_failed(spec, msg, exc, weights))
        self.model_task = task
        task.start()

    def _on_model_loaded(self, spec: ModelSpec, encoder, weights: str | None) -> None:
        if self._shutting_down or spec != self.spec:
            if self._owns_encoder:
                encoder.close()
            return
        self.encoder = encoder
        if weights:
            self.settings.weights[spec.name] = weights
            self._save_settings()
        self.window.hide_banner()
        self._model_ready()

    def _model_ready(self) -> None:
        from indexer.search import Searcher

        # torch, open_clip and friends leave millions of long-lived objects on the heap; a
        # full garbage collection walks them all (~0.25 s here) with the GIL held, freezing
        # the window whenever indexing allocates enough to trigger one. Frozen objects are
        # never scanned again, so collections stay in the millisecond range.
        gc.freeze()

        self.model_error = None
        self.searcher = Searcher(self.library, self.encoder)
        self.window.results.delegate.marks_enabled = True
        self.runner.set_model_ready(True)
        self.refresh_status()
        if not self.query.empty():
            self.search_now()

    def _on_model_failed(self, spec: ModelSpec, message: str, exc, weights: str | None) -> None:
        if self._shutting_down or spec != self.spec:
            return
        from indexer.weights import WeightsMismatch, WeightsUnavailable

        self.model_error = message
        self.refresh_status()
        size = f" ({spec.size_mb:.0f} MB)" if spec.size_mb else ""
        actions = [("download", f"Download{size}", "primary"),
                   ("choose", "Choose weights file…", None)]
        if spec.name != TINY_SHAPES.name:
            actions.append(("demo", "Try the demo", None))
        if isinstance(exc, WeightsMismatch):
            title = f"That file is not the {spec.name} model"
            body = ("Magpie checks every weights file against the exact version it was built "
                    "for, so your library never mixes vectors from different models. Choose the "
                    "right file, or download it.")
        elif isinstance(exc, WeightsUnavailable):
            title = f"The {spec.name} model isn't on this computer yet"
            body = (f"Magpie needs its weights file{size} to understand pictures and text. "
                    "Download it once, choose a copy you already have, or try the offline demo "
                    "with a small bundled model right now.")
        else:
            title = f"The {spec.name} model could not be loaded"
            body = "Choose another weights file, or try the offline demo."
            actions = [a for a in actions if a[0] != "download"]
        if spec.bundled:
            actions = [a for a in actions if a[0] != "download"]
        self.window.show_banner(title, body, details=message, actions=actions)
        if weights:
            self.window.banner.set_status(message.splitlines()[0], error=True)
        if not self.query.empty():
            self._show_model_needed()

    def _show_model_needed(self) -> None:
        self.window.show_message("Search needs the model",
                                 "Download or choose the model's weights above, or try the demo.",
                                 "alert")

    # -- weights ----------------------------------------------------------------------------
    def _on_banner_action(self, key: str) -> None:
        if key == "download":
            self.download_weights()
        elif key == "choose":
            self.choose_weights()
        elif key == "demo":
            self.start_demo()
        elif key == "retry":
            self._open_library(self.library_path, self._spec_override)
        elif key == "open-library":
            self._on_open_library()
        elif key == "default-library":
            self.switch_library(default_library())
        elif key == "migrate" and self._migrate_target is not None:
            self.migrate_library(self._migrate_target)
        elif key == "cancel-download":
            if self.weights_task is not None:
                self.weights_task.abandon()
                self.weights_task = None
            self.window.banner.set_status("Download cancelled.")

    def choose_weights(self) -> None:
        if self.spec is None:
            return
        path = self.choose_file()
        if path:
            self.load_model(weights=path)

    def download_weights(self) -> None:
        spec = self.spec
        if spec is None or spec.bundled:
            return
        from app.wiring import weights_path

        settings = self.settings

        def fn(progress):
            path = weights_path(spec, progress=progress, settings=settings)
            return self._load(spec, str(path))

        task = Task(fn, with_progress=True, parent=self)
        self.weights_task = task
        banner = self.window.banner
        banner.set_busy(f"Connecting to download {spec.name}…")
        task.progressed.connect(lambda done, total: banner.set_busy(
            f"Downloading {spec.name}: {done / 1e6:,.0f} of {total / 1e6:,.0f} MB" if total
            else f"Downloading {spec.name}: {done / 1e6:,.0f} MB", done, total or None))
        task.done.connect(lambda enc: self._on_model_loaded(spec, enc, None))
        task.failed.connect(lambda msg, exc: banner.set_status(msg, error=True))
        task.start()

    def _choose_weights_file(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(
            self.window, f"Choose the {self.spec.name if self.spec else ''} weights file",
            str(Path.home()), "Model weights (*.safetensors *.bin *.pt *.pth);;All files (*)")
        return path or None

    # -- the demo ---------------------------------------------------------------------------
    def start_demo(self) -> None:
        """Make the sample folder, switch to the demo library with the bundled tiny model,
        index it in the background and show a query's results as they come in."""
        folder = demo_folder()
        n = self.demo_images

        def prepare(on_progress):
            if not folder.exists():
                from indexer.shapes import make_demo_folder

                on_progress(Progress("scanning", 0, 0, current=str(folder)))
                make_demo_folder(folder, n_images=n)

        self.runner.cancel_all()
        self._reset_query(clear_text=True)
        self.settings.library = str(demo_library())
        self._save_settings()
        self._spec_override = TINY_SHAPES
        self._open_library(demo_library(), TINY_SHAPES, prepare=prepare)
        self._submit_index([str(folder)], "Indexing the demo pictures")
        self._pending_demo_query = True

    def switch_library(self, path: Path | str, spec: ModelSpec | None = None) -> None:
        path = Path(path)
        self.runner.cancel_all()
        self._reset_query(clear_text=True)
        self.settings.library = "" if path == default_library() else str(path)
        self._save_settings()
        self._spec_override = spec
        self._open_library(path, spec)

    def _on_open_library(self) -> None:
        path = QFileDialog.getExistingDirectory(self.window, "Open a Magpie library",
                                                str(self.library_path.parent))
        if path:
            self.switch_library(path)

    # -- indexing ---------------------------------------------------------------------------
    def _on_add_folder(self) -> None:
        path = self.choose_folder()
        if path:
            self.add_paths([path])

    def _choose_folder(self) -> str | None:
        return QFileDialog.getExistingDirectory(self.window, "Choose a folder to index",
                                                str(Path.home())) or None

    def roots(self) -> list[str]:
        return self.window.roots_model.paths()

    def add_paths(self, paths: list[str]) -> None:
        """Dropped or chosen paths: folders are indexed; a file means its folder."""
        folders: list[str] = []
        skipped: list[str] = []
        lib = os.path.abspath(self.library_path)
        for p in paths:
            p = os.path.abspath(os.path.expanduser(p))
            folder = p if os.path.isdir(p) else os.path.dirname(p)
            if not os.path.isdir(folder):
                skipped.append(p)
                continue
            if folder == lib or folder.startswith(lib + os.sep):
                skipped.append(p)
                continue
            # a folder inside one that is already indexed: rescan that one instead
            owner = next((r for r in self.roots()
                          if folder == r or folder.startswith(r.rstrip(os.sep) + os.sep)), None)
            target = owner or folder
            if target not in folders:
                folders.append(target)
        if skipped:
            self.window.statusBar().showMessage(
                f"Skipped {len(skipped)} item(s) that are not folders on this computer", 6000)
        if not folders:
            return
        names = ", ".join(os.path.basename(f.rstrip(os.sep)) or f for f in folders[:3])
        more = f" and {len(folders) - 3} more" if len(folders) > 3 else ""
        self._submit_index(folders, f"Indexing {names}{more}")

    def rescan(self, path: str = "") -> None:
        if path:
            self._submit_index([path], f"Rescanning {os.path.basename(path.rstrip(os.sep))}")
        elif self.roots():
            self._submit_index(None, "Rescanning all folders")

    def _submit_index(self, roots: list[str] | None, title: str) -> Job:
        def fn(control, on_progress, on_error):
            from app.wiring import tuning_for
            from indexer.indexing import Indexer  # imported here: off the UI thread

            tune = self._tuning or tuning_for(getattr(self.encoder, "device", "cpu"),
                                              self.settings)
            indexer = Indexer(self.library, self.encoder, control=control, workers=tune.workers,
                              batch_size=tune.batch_size, on_progress=on_progress,
                              on_error=on_error, ocr=self.settings.ocr)
            return indexer.run(roots)

        job = self.runner.submit(Job("index", title, fn, needs_model=True,
                                     roots=tuple(roots or ())))
        if self.runner.waiting_for_model() and job in self.runner.pending:
            self._show_waiting()
        return job

    def _show_waiting(self) -> None:
        p = self.window.progress
        p.start("Waiting for the model")
        p.detail.setText("Indexing starts as soon as the model is ready." if self.model_error
                         is None else "Indexing starts once the model's weights are available.")
        p.pause_button.setEnabled(False)
        self.window._sync_bottom()

    def _on_queue_changed(self, n: int) -> None:
        if not self.runner.busy:
            if self.runner.waiting_for_model():
                self._show_waiting()
            elif n == 0:
                self.window.job_finished()

    def cancel_jobs(self) -> None:
        dropped = self.runner.cancel_all()
        if self.runner.busy:
            self.window.progress.stopping()
        elif dropped:
            self.window.job_finished("Cancelled")

    def _on_remove_root(self, path: str) -> None:
        if not self.confirm(
            f"Remove “{os.path.basename(path.rstrip(os.sep))}” from Magpie?",
            f"{path}\n\nIts pictures and notes leave the search index. Your files are not "
            "touched.",
        ):
            return
        self.remove_root(path)

    def remove_root(self, path: str) -> Job:
        def fn(control, on_progress, on_error):
            from indexer.indexing import Indexer

            return Indexer(self.library, None).remove_root(path)  # type: ignore[arg-type]

        return self.runner.submit(Job("remove", f"Removing {os.path.basename(path)}", fn,
                                      roots=(path,)))

    def _confirm(self, title: str, text: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, "Magpie", title,
                          QMessageBox.StandardButton.Cancel, self.window)
        box.setInformativeText(text)
        remove = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        box.exec()
        return box.clickedButton() is remove

    # -- job events -------------------------------------------------------------------------
    def _on_job_started(self, job: Job) -> None:
        if job.quiet:
            return
        if job.kind == "switch":
            self.window.job_started(job.title)
            return
        self.window.job_started(job.title)
        if job.kind == "index":
            self.window.roots_model.set_busy(list(job.roots) or self.roots())

    def _on_job_progress(self, job: Job, p: Progress) -> None:
        if job.kind == "switch":
            if not job.quiet:
                self.window.progress.update_progress(job.title, p.done, p.total, 0, None,
                                                     p.current, 0)
            return
        title = job.title if p.phase == "embedding" else PHASES.get(p.phase, job.title)
        now = time.monotonic()
        if p.phase != "embedding":
            self._embed_started = None
        elif self._embed_started is None:
            self._embed_started = now
        # the first seconds' rate is noise (notes embed in a blink): show it once it settles
        settled = self._embed_started is not None and now - self._embed_started >= 2.0
        self.window.progress.update_progress(
            title, p.done, p.total, p.files_per_s if settled else 0.0,
            p.eta_s if settled else None, p.current, p.errors, len(self.runner.pending))
        if now - self._last_counts >= LIVE_COUNTS_S:
            self._last_counts = now
            self.refresh_library_view()
        if p.phase == "embedding" and now - self._last_live_search >= LIVE_SEARCH_S:
            self._last_live_search = now
            if self._pending_demo_query and p.done > 0:
                self._run_demo_query()
            elif not self.query.empty() and self.searcher is not None:
                self.search_now(live=True)

    def _on_file_errors(self, job: Job, errors: list[FileError]) -> None:
        self.window.errors_model.add([(e.path, e.reason) for e in errors])

    def _on_job_finished(self, job: Job) -> None:
        if self._shutting_down:
            if job.kind == "switch" and job.result is not None:
                self.library = job.result  # closed by shutdown()
            return
        self._embed_started = None
        if job.kind == "migrate":
            self._migration_finished(job)
            return
        if job.kind == "switch":
            if not job.quiet:
                self.window.job_finished()
            if job.error is not None:
                self._library_failed(job)
            else:
                self._library_opened(job.result)
                if self.runner.waiting_for_model():
                    self._show_waiting()
            return
        if not self.runner.busy and not self.runner.pending:
            self.window.job_finished()
        if job.error is not None:
            self.window.job_finished()
            self.window.show_banner("Indexing stopped", job.message, actions=[], tone="error")
            self.refresh_library_view(errors=True)
            return
        msg = ""
        if job.kind == "index" and isinstance(job.result, IndexReport):
            self.last_report = job.result
            msg = ("Indexing cancelled; what was done is kept. " if job.result.cancelled
                   else "Indexed: ") + job.result.summary()
        elif job.kind == "remove":
            msg = f"Removed {os.path.basename(job.roots[0])} ({job.result} vectors); your files " \
                  "were not touched"
        self.window.statusBar().showMessage(msg, 10000)
        self.refresh_library_view(errors=True)
        if self._pending_demo_query and job.kind == "index":
            self._run_demo_query()
        elif not self.query.empty():
            self.search_now(live=True)

    def _library_failed(self, job: Job) -> None:
        from indexer.library import LibraryInUse, ModelMismatch
        from indexer.specs import SPECS

        self.runner.cancel_all()
        self.window.job_finished()
        in_use = isinstance(job.error, LibraryInUse)
        self.window.set_status("No library open", "", "")
        actions = [("retry", "Try again", "primary"),
                   ("open-library", "Open another library…", None),
                   ("default-library", "Use my default library", None)]
        title = ("This library is open in another Magpie window" if in_use
                 else "The library could not be opened")
        self._migrate_target = None
        if isinstance(job.error, ModelMismatch):
            # Offer the migration: re-embed side by side, switch when complete.
            self._migrate_target = self._spec_override or SPECS.get(job.error.requested_model)
            title = f"This library was built with {job.error.library_model}"
            actions = [("migrate", f"Re-index with {job.error.requested_model}", "primary"),
                       *actions[1:]]
        self.window.show_banner(title, job.message, actions=actions, tone="error")

    def migrate_library(self, spec: ModelSpec) -> Job:
        """Changing model is a migration job: the new index is built beside the old one
        (which keeps answering if it is open) and the window switches when it is complete."""
        path, source = self.library_path, self.library
        self.window.hide_banner()

        def fn(control, on_progress, on_error):
            from app.wiring import tuning_for
            from indexer.migrate import migrate

            encoder = self._load(spec, self.settings.weights.get(spec.name))
            tune = self._tuning or tuning_for(getattr(encoder, "device", "cpu"), self.settings)
            return migrate(path, spec, encoder, control=control, workers=tune.workers,
                           batch_size=tune.batch_size, on_progress=on_progress,
                           on_error=on_error, source=source)

        return self.runner.submit(Job("migrate", f"Re-indexing with {spec.name}", fn,
                                      roots=(str(path),)))

    def _migration_finished(self, job: Job) -> None:
        self.window.job_finished()
        if job.error is not None:
            self.window.show_banner("Re-indexing stopped", job.message, actions=[], tone="error")
            return
        result = job.result
        if result.switched:
            spec = self._migrate_target or next(
                (s for s in self._known_specs() if s.fingerprint() ==
                 result_active_fingerprint(self.library_path)), None)
            self.window.statusBar().showMessage(
                "Re-indexed: " + result.report.summary() + "; now using the new model", 10000)
            self._spec_override = spec
            self._drop_encoder()
            self._open_library(self.library_path, spec)
        else:
            self.window.show_banner(
                "Re-indexing paused",
                "The library keeps using its current model until re-indexing completes; "
                "start it again to continue where it stopped.",
                actions=[("migrate", "Continue re-indexing", "primary")], tone="info")

    @staticmethod
    def _known_specs():
        from indexer.specs import SPECS

        return list(SPECS.values())

    def _run_demo_query(self) -> None:
        self._pending_demo_query = False
        self.window.set_query(DEMO_QUERY)
        self._reset_query()
        self.query.text = DEMO_QUERY
        self.search_now()

    # -- views ------------------------------------------------------------------------------
    def refresh_library_view(self, errors: bool = False) -> None:
        if self.library is None:
            return
        try:
            reader = self.library.reader()
            counts_by_root = reader.root_counts()
            rows = [(p, counts_by_root.get(rid, 0)) for rid, p in reader.roots()]
            self.counts = reader.counts()
            if errors:
                self.window.errors_model.set_errors(reader.errors())
        except Exception as exc:  # noqa: BLE001 - a busy database must not break the window
            log.debug("refresh failed: %s", exc)
            return
        self.window.set_roots(rows)
        self.refresh_status()
        if self.query.empty():
            self._show_idle_page()

    def _show_idle_page(self) -> None:
        if not self.window.roots_model.rowCount():
            self.window.show_page("empty")
            self.window.set_summary("")
            return
        n = self._item_count()
        demo = self.spec is not None and self.spec.name == TINY_SHAPES.name
        examples = (["a red circle", "a blue triangle", "green square", "shopping list"] if demo
                    else ["a dog on the beach", "sunset over water", "receipt", "birthday cake"])
        self.window.show_hint(
            f"{n:,} pictures and notes are indexed. Describe what you're looking for, drop an "
            "image on the search box, or try one of these:", examples)

    def _item_count(self) -> int:
        c = self.counts
        return int(c.get("images", 0) + c.get("notes", 0))

    def _items_text(self) -> str:
        if self.library is None:
            return "No library open"
        c = self.counts
        n = self._item_count()
        if not n:
            return "No items yet"
        return (f"{n:,} items  ·  {c.get('images', 0):,} pictures  ·  {c.get('notes', 0):,} notes")

    def refresh_status(self) -> None:
        model = f"Model: {self.spec.label()}" if self.spec else ""
        if self.encoder is not None:
            device = device_label(getattr(self.encoder, "device", "cpu"))
        elif self.model_error:
            device = "Model not loaded"
        else:
            device = "Loading model…" if self.spec else ""
        self.window.set_status(self._items_text(), model, device)

    # -- searching --------------------------------------------------------------------------
    def _reset_query(self, clear_text: bool = False) -> None:
        self.query.positives.clear()
        self.query.negatives.clear()
        self.query.k = PAGE_K
        self.window.results_model.clear_marks()
        if clear_text:
            self.query = QueryState()
            self.window.set_query("")
            self.window.set_image_query(None)
            self.searches.invalidate()

    def _on_query_edited(self, text: str) -> None:
        if text != self.query.text:
            self._reset_query()
        self.query.text = text
        if self.query.similar_to is not None and text.strip():
            self.query.similar_to = None  # typing replaces "find similar"
            self.window.set_image_query(None)
        if self.query.empty():
            self.debounce.stop()
            self.searches.invalidate()
            self.window.results_model.clear()
            self._show_idle_page()
            return
        self.debounce.start()

    def _on_query_committed(self, text: str) -> None:
        self.query.text = text
        self.debounce.stop()
        self.search_now()

    def _on_image_query(self, path: str) -> None:
        self._reset_query()
        self.query.image = path
        self.query.similar_to = None
        self.search_now()

    def _on_image_cleared(self) -> None:
        self.query.image = None
        self.query.similar_to = None
        self.query.similar_path = None
        self._reset_query()
        self._on_query_edited(self.query.text)

    def _on_filters(self) -> None:
        self.query.k = PAGE_K
        if not self.query.empty():
            self.search_now()

    def filters(self) -> tuple[FileFilter, str]:
        v = self.window.filters.values()
        flt = FileFilter(
            kinds=(v["kind"],) if v["kind"] else None,
            folders=(v["folder"],) if v["folder"] else None,
            after=v["after"],
            before=v["before"],
        )
        return flt, v["sort"]

    def search_now(self, live: bool = False) -> int | None:
        """Submit the current query (debounce bypassed). Returns the search generation."""
        self.debounce.stop()
        if self.query.empty():
            return None
        if self.searcher is None:
            if self.model_error:
                self._show_model_needed()
            else:
                self.window.show_message("Loading the model…",
                                         "Your search runs as soon as it's ready.", "cpu")
            return None
        state = QueryState(self.query.text, self.query.image, self.query.similar_to,
                           self.query.similar_path, self.query.similar_label,
                           set(self.query.positives), set(self.query.negatives), self.query.k)
        flt, sort = self.filters()
        searcher = self.searcher
        self._live = live
        if not live:
            self.window.set_summary("Searching…")
        return self.searches.submit(lambda: run_search(searcher, state, flt, sort))

    def _on_search_done(self, gen: int, page: Page) -> None:
        self.last_page = page
        if not page.results and not self.window.roots_model.rowCount():
            self.window.show_page("empty")
            self.window.set_summary("")
            return
        if not page.results:
            self.window.show_message(f"No matches for {self.query.describe()}",
                                     "Try other words, fewer filters, or a broader description.")
            self.window.set_summary(f"No results  ·  {page.elapsed_ms:.0f} ms")
            return
        shown = page.cutoff if page.cutoff < len(page.results) else len(page.results)
        summary = (f"{shown} of {len(page.results)} results stand out" if shown < len(page.results)
                   else f"{len(page.results)} results")
        summary += f"  ·  {page.elapsed_ms:.0f} ms"
        show_all = self.query.k > PAGE_K
        self.window.show_results(page.results, page.cutoff, summary,
                                 keep_selection=self._live, show_all=show_all,
                                 min_visible=MIN_VISIBLE)
        for fid in self.query.positives:
            self.window.set_mark(fid, 1)
        for fid in self.query.negatives:
            self.window.set_mark(fid, -1)
        self._sync_more_button()

    def _sync_more_button(self) -> None:
        page = self.last_page
        w = self.window
        if page is None:
            return
        if w.results_model.hidden_count() == 0 and len(page.results) >= self.query.k:
            w.show_more_button.setText("Load more")
            w.show_more_button.show()

    def _on_search_failed(self, gen: int, message: str) -> None:
        self.window.show_message("Couldn't run that search", message, "alert", error=True)
        self.window.set_summary("")

    def show_more(self) -> None:
        if self.window.results_model.hidden_count() > 0:
            self.window.show_more()
            self._sync_more_button()
        else:
            self.query.k *= 2
            self.search_now(live=True)

    def find_similar(self, r) -> None:
        self._reset_query()
        self.query = QueryState(similar_to=r.file_id, similar_path=r.open_path,
                                similar_label=os.path.basename(r.path))
        self.window.set_query("")
        self.window.set_image_query(r.open_path if r.kind == "image" else None,
                                    f"Similar to {os.path.basename(r.path)}")
        if r.kind != "image":
            self.window.image_chip.set_image(f"Similar to {os.path.basename(r.path)}")
        self.search_now()

    def mark(self, r, mark: int) -> None:
        fid = r.file_id
        self.query.positives.discard(fid)
        self.query.negatives.discard(fid)
        if mark > 0:
            self.query.positives.add(fid)
        elif mark < 0:
            self.query.negatives.add(fid)
        self.window.set_mark(fid, mark)
        self.search_now(live=True)

    # -- opening ----------------------------------------------------------------------------
    def open_result(self, r) -> None:
        if not self.opener(r.open_path):
            self.window.statusBar().showMessage(f"Could not open {r.path}", 6000)

    def reveal_result(self, r) -> None:
        if not self.revealer(r.open_path):
            self.window.statusBar().showMessage(f"Could not show {r.path}", 6000)

    # -- shutdown ---------------------------------------------------------------------------
    def _save_settings(self) -> None:
        try:
            self.settings.save()
        except OSError as exc:
            log.warning("could not save settings: %s", exc)

    def shutdown(self) -> None:
        if self._shutting_down:
            return
        self._shutting_down = True
        self.debounce.stop()
        try:
            self.window.save_state(window_settings())
        except Exception:  # noqa: BLE001
            pass
        self.runner.cancel_all()
        self.runner.wait(60_000)
        self.searches.invalidate()
        self.searches.wait(10_000)
        self.window.thumbs.cancel_pending()
        self.window.thumbs.wait(5_000)
        if self.library is not None:
            try:
                self.library.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("closing the library failed: %s", exc)
            self.library = None
        self._drop_encoder()


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
