"""Runs the core's jobs off the UI thread and relays their plain dataclasses as Qt signals.

* `JobRunner`: one writer job at a time (index, rescan, remove a folder, switch library) on a
  worker QThread, further jobs queued. Progress and FileError objects from the core are
  collected by the worker and delivered to the UI thread by a 10 Hz timer, so a fast job can
  never flood the event loop; pause/resume/cancel go to the job's JobControl.
* `SearchService`: searches on a one-thread pool with a generation counter; a result that
  arrives after a newer query was submitted is dropped.
* `Task`: a one-off background call (load a model, verify or download weights) with a result,
  an error message and byte progress, on a daemon thread so an unreachable network can never
  keep the app from quitting.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, QThreadPool, QTimer, Signal, Slot

from indexer.errors import user_message
from indexer.jobs import FileError, JobControl, Progress

log = logging.getLogger(__name__)

TICK_MS = 100  # progress delivery: at most 10 UI updates per second
# Background jobs run "nicer" than the UI thread, so the kernel hands the UI a core first
# when every core is busy decoding and embedding (processes and threads a job starts
# inherit it). 0 turns it off.
JOB_NICENESS = int(os.environ.get("MAGPIE_JOB_NICENESS", "5"))

JobFn = Callable[[JobControl, Callable[[Progress], None], Callable[[FileError], None]], Any]


def describe(exc: BaseException) -> str:
    """A message for a person: a MagpieError's own text (or a full disk's), else the error
    type, so an unexpected bug is never dressed up as advice."""
    msg = user_message(exc)
    if msg is not None:
        return msg
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}"
    return f"{type(exc).__name__}: {exc}"


JobHandler = Callable[["Job"], None]


@dataclass
class Job:
    """A writer job and what the window does at each step of it: whoever submits a job says
    how its progress is shown and what its end means, so nothing branches on `kind`."""

    kind: str  # "index" | "remove" | "switch" | … (a label: cancel_all(kinds) selects by it)
    title: str  # shown in the progress panel
    fn: JobFn
    needs_model: bool = False
    roots: tuple[str, ...] = ()
    quiet: bool = False  # no progress panel (opening a library takes a blink)
    # runs nicer than the UI (JOB_NICENESS); False for a short job a person is waiting on
    # (opening a library: the first search waits for it)
    background: bool = True
    on_started: JobHandler | None = None
    on_progress: Callable[[Job, Progress], None] | None = None
    on_finished: JobHandler | None = None  # result or error/message set
    control: JobControl = field(default_factory=JobControl)
    result: Any = None
    error: BaseException | None = None
    message: str = ""


def lower_thread_priority(step: int) -> None:
    """Raise this thread's nice value by `step` (Linux: per thread; elsewhere QThread's
    priority does it). Never fails: responsiveness is a nicety, not a requirement."""
    try:
        if sys.platform.startswith("linux"):
            tid = threading.get_native_id()
            current = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, min(19, current + step))
        else:
            QThread.currentThread().setPriority(QThread.Priority.LowPriority)
    except (OSError, AttributeError):
        pass


class _JobThread(QThread):
    def __init__(self, job: Job, relay: _Relay) -> None:
        super().__init__()
        self.job = job
        self.relay = relay

    def run(self) -> None:
        job = self.job
        if JOB_NICENESS and job.background:
            lower_thread_priority(JOB_NICENESS)
        try:
            job.result = job.fn(job.control, self.relay.on_progress, self.relay.on_error)
        except BaseException as exc:  # noqa: BLE001 - reported to the UI, never a crash
            job.error = exc
            job.message = describe(exc)
            log.debug("job %s failed:\n%s", job.kind, traceback.format_exc())


class _Relay:
    """Thread-safe mailbox between a job and the UI timer: latest progress + new errors."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._fresh = False
        self._errors: list[FileError] = []

    def on_progress(self, p: Progress) -> None:
        with self._lock:
            self._progress = p
            self._fresh = True

    def on_error(self, e: FileError) -> None:
        with self._lock:
            self._errors.append(e)

    def drain(self) -> tuple[Progress | None, list[FileError]]:
        with self._lock:
            p = self._progress if self._fresh else None
            self._fresh = False
            errors, self._errors = self._errors, []
        return p, errors


class JobRunner(QObject):
    started = Signal(object)  # Job
    progress = Signal(object, object)  # Job, Progress
    fileErrors = Signal(object, list)  # Job, [FileError]
    finished = Signal(object)  # Job (result or error/message set)
    queueChanged = Signal(int)  # jobs waiting
    pausedChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: deque[Job] = deque()
        self._current: Job | None = None
        self._thread: _JobThread | None = None
        self._relay = _Relay()
        self._model_ready = False
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self.progress_events = 0  # delivered to the UI (tests check the throttle)

    # -- queue ------------------------------------------------------------------------------
    def submit(self, job: Job) -> Job:
        self._queue.append(job)
        self.queueChanged.emit(len(self._queue))
        self._maybe_start()
        return job

    def set_model_ready(self, ready: bool) -> None:
        self._model_ready = ready
        self._maybe_start()

    @property
    def current(self) -> Job | None:
        return self._current

    @property
    def busy(self) -> bool:
        return self._current is not None

    @property
    def pending(self) -> list[Job]:
        return list(self._queue)

    def waiting_for_model(self) -> bool:
        return self._current is None and bool(self._queue) and self._queue[0].needs_model \
            and not self._model_ready

    def _maybe_start(self) -> None:
        if self._current is not None or not self._queue:
            return
        if self._queue[0].needs_model and not self._model_ready:
            return
        job = self._queue.popleft()
        self.queueChanged.emit(len(self._queue))
        self._current = job
        self._relay = _Relay()
        self._thread = _JobThread(job, self._relay)
        self._thread.finished.connect(self._on_thread_finished)
        self.started.emit(job)
        self._timer.start()
        self._thread.start()

    @Slot()
    def _on_thread_finished(self) -> None:
        job, thread = self._current, self._thread
        self._tick()
        self._timer.stop()
        self._current = None
        self._thread = None
        if thread is not None:
            thread.deleteLater()
        if job is not None:
            if job.control.paused:
                self.pausedChanged.emit(False)
            self.finished.emit(job)
        self._maybe_start()

    def _tick(self) -> None:
        job = self._current
        if job is None:
            return
        p, errors = self._relay.drain()
        if errors:
            self.fileErrors.emit(job, errors)
        if p is not None:
            self.progress_events += 1
            self.progress.emit(job, p)

    # -- control ----------------------------------------------------------------------------
    def pause(self) -> None:
        if self._current is not None and not self._current.control.paused:
            self._current.control.pause()
            self.pausedChanged.emit(True)

    def resume(self) -> None:
        if self._current is not None and self._current.control.paused:
            self._current.control.resume()
            self.pausedChanged.emit(False)

    @property
    def paused(self) -> bool:
        return self._current is not None and self._current.control.paused

    def cancel(self) -> None:
        """Stop the running job at its next checkpoint (what it committed is kept)."""
        if self._current is not None:
            self._current.control.cancel()

    def cancel_all(self, kinds: tuple[str, ...] | None = None) -> list[Job]:
        """Drop queued jobs (of these kinds) and cancel the running one; returns the dropped."""
        dropped = [j for j in self._queue if kinds is None or j.kind in kinds]
        self._queue = deque(j for j in self._queue if j not in dropped)
        self.queueChanged.emit(len(self._queue))
        if self._current is not None and (kinds is None or self._current.kind in kinds):
            self._current.control.cancel()
        return dropped

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until the running job's thread ends (used at shutdown)."""
        thread = self._thread
        if thread is None:
            return True
        ok = thread.wait(msecs)
        if ok:
            self._on_thread_finished()
        return ok


# ---------------------------------------------------------------------------------------------
class SearchService(QObject):
    """Searches on a single background thread; only the newest query's answer is delivered."""

    done = Signal(int, object)  # generation, page
    failed = Signal(int, str)  # generation, message
    _answer = Signal(int, bool, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._pool.setExpiryTimeout(-1)  # keep the thread: its SQLite reader stays open
        self._generation = 0
        self._answer.connect(self._deliver)
        self.dropped = 0  # stale answers dropped (tests)

    @property
    def generation(self) -> int:
        return self._generation

    def submit(self, fn: Callable[[], Any]) -> int:
        self._generation += 1
        gen = self._generation
        self._pool.clear()  # a queued older query will never be wanted

        def work() -> None:
            if gen != self._generation:
                return
            try:
                page = fn()
            except BaseException as exc:  # noqa: BLE001
                log.debug("search failed:\n%s", traceback.format_exc())
                self._emit(gen, False, describe(exc))
            else:
                self._emit(gen, True, page)

        self._pool.start(work)
        return gen

    def invalidate(self) -> None:
        """Forget every query in flight (the query was cleared or the library changed)."""
        self._generation += 1
        self._pool.clear()

    def wait(self, msecs: int = 10_000) -> bool:
        return self._pool.waitForDone(msecs)

    def _emit(self, gen: int, ok: bool, payload: Any) -> None:
        try:
            self._answer.emit(gen, ok, payload)
        except RuntimeError:  # service deleted during shutdown
            pass

    @Slot(int, bool, object)
    def _deliver(self, gen: int, ok: bool, payload: Any) -> None:
        if gen != self._generation:
            self.dropped += 1
            return
        if ok:
            self.done.emit(gen, payload)
        else:
            self.failed.emit(gen, str(payload))


# ---------------------------------------------------------------------------------------------
class Task(QObject):
    """One background call. `progress(done, total)` may be called from the worker; it reaches
    the UI at most 10 times a second. `done(result)` or `failed(message, exception)` ends it."""

    done = Signal(object)
    failed = Signal(str, object)
    progressed = Signal(int, int)
    _finish = Signal(bool, object)

    def __init__(self, fn: Callable[..., Any], *, with_progress: bool = False,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._with_progress = with_progress
        self._lock = threading.Lock()
        self._last: tuple[int, int] | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._finish.connect(self._on_finish)
        self.abandoned = False
        self.running = False

    def start(self) -> Task:
        self.running = True
        if self._with_progress:
            self._timer.start()
        threading.Thread(target=self._run, name="magpie-task", daemon=True).start()
        return self

    def abandon(self) -> None:
        """Ignore whatever the call returns (it can't be interrupted; it runs on unseen)."""
        self.abandoned = True
        self._timer.stop()
        self.running = False

    def _report(self, done: int, total: int) -> None:
        with self._lock:
            self._last = (int(done), int(total))

    def _run(self) -> None:
        try:
            result = self._fn(self._report) if self._with_progress else self._fn()
        except BaseException as exc:  # noqa: BLE001
            log.debug("task failed:\n%s", traceback.format_exc())
            self._safe_emit(False, exc)
        else:
            self._safe_emit(True, result)

    def _safe_emit(self, ok: bool, payload: Any) -> None:
        try:
            self._finish.emit(ok, payload)
        except RuntimeError:
            pass

    def _tick(self) -> None:
        with self._lock:
            last, self._last = self._last, None
        if last is not None and not self.abandoned:
            self.progressed.emit(*last)

    @Slot(bool, object)
    def _on_finish(self, ok: bool, payload: Any) -> None:
        self._tick()
        self._timer.stop()
        self.running = False
        if self.abandoned:
            return
        if ok:
            self.done.emit(payload)
        else:
            self.failed.emit(describe(payload), payload)


class Stopwatch:
    """Measures the longest gap between ticks of a UI timer (event-loop responsiveness)."""

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None) -> None:
        self.timer = QTimer(parent)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self._last = 0.0

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now

    @property
    def longest_ms(self) -> float:
        return max(self.gaps, default=0.0) * 1000
