"""Writer jobs in the window: indexing folders, rescans, removals, and the progress panel with
pause / resume / cancel. Library and migration jobs run on the same queue (one writer at a
time); whoever submits a job gives it its own progress and completion handlers.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal

from app.qt_bridge import Job, JobRunner
from indexer.jobs import FileError, IndexReport, Progress

log = logging.getLogger(__name__)

LIVE_COUNTS_S = 1.0  # while indexing: refresh counts at most this often
LIVE_SEARCH_S = 2.0  # …and re-run the visible search at most this often
RATE_SETTLE_S = 2.0  # the first seconds' rate is noise (notes embed in a blink)
# phases with a count, a rate and an ETA; new items (or their words) become searchable in them
COUNTED_PHASES = ("embedding", "reading text")

PHASES = {
    "scanning": "Looking for files",
    "hashing": "Checking what changed",
    "embedding": "Indexing",
    "reading text": "Reading text in pictures",
    "saving": "Saving",
    "done": "Finishing",
}


class IndexTarget(Protocol):
    """What an index job writes to and with (the library controller provides it)."""

    library: Any
    encoder: Any
    library_path: Path
    model_error: str | None
    settings: Any  # app.settings.Settings: `ocr` says whether pictures' words are read

    def tuning(self) -> Any: ...


class IndexingController(QObject):
    itemsChanged = Signal(bool)  # the library's contents moved (True: reread its errors too)
    resultsStale = Signal()  # new items are searchable: refresh the visible results

    def __init__(self, window, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.window = window
        self.target: IndexTarget | None = None  # set by the composition (app/gui.py)
        self.runner = JobRunner(self)
        self.last_report: IndexReport | None = None
        self.confirm: Callable[[str, str], bool] = window.confirm_removal
        self.choose_folder: Callable[[], str | None] = window.choose_folder
        self.closing = False
        self._embed_started: float | None = None
        self._rate_phase = ""
        self._last_counts = 0.0
        self._last_live_search = 0.0
        r = self.runner
        r.started.connect(self._on_started)
        r.progress.connect(self._on_progress)
        r.fileErrors.connect(self._on_file_errors)
        r.finished.connect(self._on_finished)
        r.pausedChanged.connect(window.set_paused)
        r.queueChanged.connect(self._on_queue_changed)
        window.pathsDropped.connect(self.add_paths)
        window.addFolderRequested.connect(self._on_add_folder)
        window.rescanRequested.connect(self.rescan)
        window.removeRootRequested.connect(self._on_remove_root)
        window.pauseRequested.connect(r.pause)
        window.resumeRequested.connect(r.resume)
        window.cancelRequested.connect(self.cancel_jobs)

    # -- the queue --------------------------------------------------------------------------
    def submit(self, job: Job) -> Job:
        return self.runner.submit(job)

    def roots(self) -> list[str]:
        return self.window.root_paths()

    def _on_started(self, job: Job) -> None:
        if job.quiet:
            return
        self.window.job_started(job.title)
        if job.on_started is not None:
            job.on_started(job)

    def _on_progress(self, job: Job, p: Progress) -> None:
        (job.on_progress or self.show_progress)(job, p)

    def _on_file_errors(self, job: Job, errors: list[FileError]) -> None:
        self.window.add_errors([(e.path, e.reason) for e in errors])

    def _on_finished(self, job: Job) -> None:
        self._embed_started = None
        self._rate_phase = ""
        if job.on_finished is not None:
            job.on_finished(job)

    def show_progress(self, job: Job, p: Progress) -> None:
        """The progress panel for a job that indexes: phase, counts, a settled rate and ETA;
        the library's counts and the visible results follow, throttled."""
        title = job.title if p.phase == "embedding" else PHASES.get(p.phase, job.title)
        now = time.monotonic()
        counted = p.phase in COUNTED_PHASES
        if not counted or p.phase != self._rate_phase:
            self._embed_started = now if counted else None
            self._rate_phase = p.phase
        settled = self._embed_started is not None and now - self._embed_started >= RATE_SETTLE_S
        self.window.show_progress(
            title, p.done, p.total, p.files_per_s if settled else 0.0,
            p.eta_s if settled else None, p.current, p.errors, len(self.runner.pending))
        if now - self._last_counts >= LIVE_COUNTS_S:
            self._last_counts = now
            self.itemsChanged.emit(False)
        if counted and p.done > 0 and \
                now - self._last_live_search >= LIVE_SEARCH_S:
            self._last_live_search = now
            self.resultsStale.emit()

    def show_waiting(self) -> None:
        """A job waits for the model: say so instead of showing a stalled bar."""
        target = self.target
        error = target.model_error if target is not None else None
        self.window.show_waiting(
            "Waiting for the model",
            "Indexing starts as soon as the model is ready." if error is None
            else "Indexing starts once the model's weights are available.")

    def sync_waiting(self) -> None:
        if self.runner.waiting_for_model():
            self.show_waiting()

    def _on_queue_changed(self, n: int) -> None:
        if not self.runner.busy:
            if self.runner.waiting_for_model():
                self.show_waiting()
            elif n == 0:
                self.window.job_finished()

    def cancel_jobs(self) -> None:
        dropped = self.runner.cancel_all()
        if self.runner.busy:
            self.window.progress_stopping()
        elif dropped:
            self.window.job_finished("Cancelled")

    # -- indexing ---------------------------------------------------------------------------
    def _on_add_folder(self) -> None:
        path = self.choose_folder()
        if path:
            self.add_paths([path])

    def add_paths(self, paths: list[str]) -> None:
        """Dropped or chosen paths: folders are indexed; a file means its folder."""
        folders: list[str] = []
        skipped: list[str] = []
        lib = os.path.abspath(self.target.library_path) if self.target is not None else None
        for p in paths:
            p = os.path.abspath(os.path.expanduser(p))
            folder = p if os.path.isdir(p) else os.path.dirname(p)
            if not os.path.isdir(folder):
                skipped.append(p)
                continue
            if lib is not None and (folder == lib or folder.startswith(lib + os.sep)):
                skipped.append(p)
                continue
            # a folder inside one that is already indexed: rescan that one instead
            owner = next((r for r in self.roots()
                          if folder == r or folder.startswith(r.rstrip(os.sep) + os.sep)), None)
            target = owner or folder
            if target not in folders:
                folders.append(target)
        if skipped:
            self.window.notify(
                f"Skipped {len(skipped)} item(s) that are not folders on this computer", 6000)
        if not folders:
            return
        names = ", ".join(os.path.basename(f.rstrip(os.sep)) or f for f in folders[:3])
        more = f" and {len(folders) - 3} more" if len(folders) > 3 else ""
        self.index(folders, f"Indexing {names}{more}")

    def rescan(self, path: str = "") -> None:
        if path:
            self.index([path], f"Rescanning {os.path.basename(path.rstrip(os.sep))}")
        elif self.roots():
            self.index(None, "Rescanning all folders")

    def index(self, roots: list[str] | None, title: str, *, ocr: bool | None = None) -> Job:
        """`ocr`: read the words in pictures too (None: as the settings say)."""
        target = self.target
        read_text = target.settings.ocr if ocr is None else ocr

        def fn(control, on_progress, on_error):
            from indexer.indexing import Indexer  # imported here: off the UI thread

            tune = target.tuning()
            indexer = Indexer(target.library, target.encoder, control=control,
                              workers=tune.workers, batch_size=tune.batch_size,
                              on_progress=on_progress, on_error=on_error,
                              ocr=read_text)
            return indexer.run(roots)

        job = self.submit(Job("index", title, fn, needs_model=True, roots=tuple(roots or ()),
                              on_started=self._mark_busy, on_finished=self._index_finished))
        if self.runner.waiting_for_model() and job in self.runner.pending:
            self.show_waiting()
        return job

    def _mark_busy(self, job: Job) -> None:
        self.window.set_busy_roots(list(job.roots) or self.roots())

    def _index_finished(self, job: Job) -> None:
        if not self._writer_finished(job):
            return
        report = job.result
        if isinstance(report, IndexReport):
            self.last_report = report
            self.window.notify(("Indexing cancelled; what was done is kept. " if report.cancelled
                                else "Indexed: ") + report.summary(), 10000)
        self.itemsChanged.emit(True)
        self.resultsStale.emit()

    def _writer_finished(self, job: Job) -> bool:
        """What every index or removal job does at its end; False when it failed (said in
        the banner) or the window is closing."""
        if self.closing:
            return False
        if not self.runner.busy and not self.runner.pending:
            self.window.job_finished()
        if job.error is not None:
            self.window.job_finished()
            self.window.show_banner("Indexing stopped", job.message, actions=[], tone="error")
            self.itemsChanged.emit(True)
            return False
        return True

    # -- removing a folder ------------------------------------------------------------------
    def _on_remove_root(self, path: str) -> None:
        if not self.confirm(
            f"Remove “{os.path.basename(path.rstrip(os.sep))}” from Magpie?",
            f"{path}\n\nIts pictures and notes leave the search index. Your files are not "
            "touched.",
        ):
            return
        self.remove_root(path)

    def remove_root(self, path: str) -> Job:
        target = self.target

        def fn(control, on_progress, on_error):
            from indexer.indexing import Indexer

            return Indexer(target.library, None).remove_root(path)  # type: ignore[arg-type]

        return self.submit(Job("remove", f"Removing {os.path.basename(path)}", fn,
                               roots=(path,), on_finished=self._removal_finished))

    def _removal_finished(self, job: Job) -> None:
        if not self._writer_finished(job):
            return
        self.window.notify(f"Removed {os.path.basename(job.roots[0])} ({job.result} vectors); "
                           "your files were not touched", 10000)
        self.itemsChanged.emit(True)
        self.resultsStale.emit()
