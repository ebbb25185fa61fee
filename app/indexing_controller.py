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

VISIBLE_UPDATE = 50  # a watcher's update with this many files to embed shows its progress
SMALL_UPDATE = 16  # a watcher batch of up to this many files decodes inline (no worker start-up)
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
        self._queued_update: Job | None = None  # the watcher's update waiting in the queue
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

    def indexing_visibly(self) -> bool:
        """Is a job the person sees (indexing, resuming, re-indexing) running or queued? Quitting
        then asks; the watcher's quiet updates and opening a library do not count."""
        jobs = [j for j in (self.runner.current, *self.runner.pending) if j is not None]
        return any(not j.quiet and j.kind in ("index", "migrate") for j in jobs)

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
            p.eta_s if settled else None, p.current, p.errors,
            sum(not j.quiet for j in self.runner.pending))  # the watcher's updates are quiet
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
        head = self.runner.pending[0] if self.runner.pending else None
        resuming = head is not None and head.title.startswith("Resuming")
        self.window.show_waiting(
            head.title if resuming else "Waiting for the model",
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
        """The Cancel button: the running job and the queued ones; the watcher's queued
        updates stay (dropping them would lose changes until the next start)."""
        self.runner.cancel()  # the running job, whatever it is: it is the one on screen
        kinds = tuple({j.kind for j in self.runner.pending} - {"update"})
        dropped = self.runner.cancel_all(kinds) if kinds else []
        if self.runner.busy:
            self.window.progress_stopping()
        elif dropped:
            self.window.job_finished("Cancelled; nothing had started yet")

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
            if report.cancelled:
                text = cancelled_text(report)
            elif job.kind == "index" and job.title.startswith("Resuming"):
                text = (f"Finished what was left from last time: {report.embedded_files:,} "
                        f"file{'s' * (report.embedded_files != 1)} indexed"
                        + (f", {report.errors:,} could not be read" if report.errors else ""))
            else:
                text = "Indexed: " + report.summary()
            self.window.notify(text, 10000)
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

    # -- following the folders and resuming -------------------------------------------------
    def update(self, paths: list[str]) -> Job:
        """Changed paths (a watcher's batch): a scoped update on the writer queue, behind the
        job that is running. Batches that arrive while one update waits join it, so a burst
        of changes never piles up jobs."""
        from indexer.watch import collapse

        queued = self._queued_update
        if queued is not None and queued in self.runner.pending:
            queued.roots = tuple(collapse([*queued.roots, *paths]))
            return queued
        target = self.target

        def fn(control, on_progress, on_error):
            from indexer.indexing import Indexer

            wanted = list(job.roots)  # read when it starts: later batches may have joined
            tune = target.tuning()
            small = len(wanted) <= SMALL_UPDATE and not any(os.path.isdir(p) for p in wanted)
            return Indexer(target.library, target.encoder, control=control,
                           workers=0 if small else tune.workers, batch_size=tune.batch_size,
                           on_progress=on_progress, on_error=on_error).update(
                               wanted, finish_pending=False)

        job = Job("update", "Indexing new and changed files", fn, needs_model=True, quiet=True,
                  roots=tuple(collapse(paths)), on_progress=self._quiet_progress,
                  on_finished=self._update_finished)
        self._queued_update = job
        return self.submit(job)

    def _quiet_progress(self, job: Job, p: Progress) -> None:
        """A watcher's update is quiet, unless it has many files to embed (a camera import):
        then it shows its progress, and can be paused or cancelled like any indexing."""
        if job.quiet and p.phase == "embedding" and p.total >= VISIBLE_UPDATE:
            job.quiet = False
            self.window.job_started(job.title)
        if not job.quiet:
            self.show_progress(job, p)
            return
        now = time.monotonic()
        if now - self._last_counts >= LIVE_COUNTS_S:
            self._last_counts = now
            self.itemsChanged.emit(False)

    def _update_finished(self, job: Job) -> None:
        if self._queued_update is job:
            self._queued_update = None
        if self.closing:
            return
        if not job.quiet and not self.runner.busy and not self.runner.pending:
            self.window.job_finished()
        report = job.result
        if job.error is not None:
            log.warning("updating changed files failed: %s", job.message)
            self.itemsChanged.emit(True)
            return
        if isinstance(report, IndexReport) and not report.cancelled and (
                report.added or report.updated or report.moved or report.removed):
            self.window.notify("Folders changed: " + changes_text(report), 8000)
        self.itemsChanged.emit(True)
        self.resultsStale.emit()

    def resume(self, pending: int, roots: list[str]) -> Job:
        """Finish the files an interrupted run left (each batch was committed, so only these
        are left): nothing is rescanned, the waiting files are embedded."""
        target = self.target

        def fn(control, on_progress, on_error):
            from indexer.indexing import Indexer

            tune = target.tuning()
            return Indexer(target.library, target.encoder, control=control,
                           workers=tune.workers, batch_size=tune.batch_size,
                           on_progress=on_progress, on_error=on_error).update([])

        title = f"Resuming: {pending:,} file{'s' * (pending != 1)} left from last time"
        self.window.notify(title, 8000)
        job = self.submit(Job("index", title, fn, needs_model=True, roots=tuple(roots),
                              on_started=self._mark_busy, on_finished=self._index_finished))
        if self.runner.waiting_for_model() and job in self.runner.pending:
            self.show_waiting()
        return job

    def catch_up(self, roots: list[str],
                 title: str = "Indexing what changed while Magpie was closed") -> Job:
        """What changed while Magpie was closed (or not following): each folder is rescanned
        on the writer queue, shown like any indexing (unchanged files cost a stat each)."""
        target = self.target

        def fn(control, on_progress, on_error):
            from indexer.indexing import Indexer

            tune = target.tuning()
            return Indexer(target.library, target.encoder, control=control,
                           workers=tune.workers, batch_size=tune.batch_size,
                           on_progress=on_progress, on_error=on_error).update(
                               list(roots), finish_pending=False)

        return self.submit(Job("index", title, fn,
                               needs_model=True, roots=tuple(roots),
                               on_started=self._mark_busy, on_finished=self._catch_up_finished))

    def _catch_up_finished(self, job: Job) -> None:
        if not self._writer_finished(job):
            return
        report = job.result
        if isinstance(report, IndexReport):
            self.last_report = report
            if report.cancelled:
                self.window.notify(cancelled_text(report), 10000)
            elif report.added or report.updated or report.moved or report.removed:
                self.window.notify("Caught up: " + changes_text(report), 10000)
        self.itemsChanged.emit(True)
        if not isinstance(report, IndexReport) or changed_results(report):
            # nothing changed (the usual start): the search on screen or in flight — often
            # the first query, typed while this ran — stands; running it again would drop it
            self.resultsStale.emit()

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


def changed_results(report: IndexReport) -> bool:
    """Whether an index run changed what a search can find (or may have: cancelled). Errors
    alone do not (an unplugged drive's entries stay; a file that fails keeps what was found in
    it until it is read again)."""
    return bool(report.cancelled or report.added or report.updated or report.moved
                or report.copied or report.removed or report.text_found)


def cancelled_text(report: IndexReport) -> str:
    """What a cancelled run did, in one sentence a person can act on."""
    if report.to_embed:
        return (f"Cancelled — {report.embedded_files:,} of {report.to_embed:,} done; "
                "the rest resumes next time")
    return "Cancelled before any file was indexed"


def changes_text(report: IndexReport) -> str:
    parts = [(report.added, "added"), (report.updated, "changed"), (report.moved, "moved"),
             (report.removed, "removed")]
    return ", ".join(f"{n:,} {word}" for n, word in parts if n)
