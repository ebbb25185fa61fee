"""The window follows the library's folders while it is open.

`FolderFollower` keeps one `indexer.watch.FolderWatcher` in step with the library's roots and
hands each debounced batch of changed paths to the indexing controller, which updates the
library on its writer queue (one writer at a time, behind whatever job is running).

Threads: starting and stopping a watcher walks the folder tree (inotify watches one folder at
a time) and joins threads, so that happens on a helper thread, never the UI thread; batches
arrive on the watcher's own thread and reach the UI thread as a queued Qt signal. An idle
library costs no CPU: the watcher sleeps until the operating system reports a change.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from PySide6.QtCore import QObject, Signal, Slot

from indexer.watch import DEFAULT_QUIET_S, MISSING_ROOT_RECHECK_S, FolderWatcher

log = logging.getLogger(__name__)


class FolderFollower(QObject):
    """Watches exactly the roots it is given, while it is enabled."""

    changed = Signal(list)  # changed paths, on the UI thread
    _arrived = Signal(list)  # emitted on the watcher's thread

    def __init__(self, on_batch: Callable[[list[str]], None], *, enabled: bool = True,
                 quiet_s: float = DEFAULT_QUIET_S, recheck_s: float = MISSING_ROOT_RECHECK_S,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.enabled = enabled
        self.quiet_s = quiet_s
        self.recheck_s = recheck_s
        self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="magpie-follow")
        self._watcher: FolderWatcher | None = None
        self._lock = threading.Lock()
        self._roots: tuple[str, ...] = ()
        self._ignore: tuple[str, ...] = ()
        self._applied: tuple | None = None  # (roots, ignore) the helper was last asked for
        self._closed = False
        self.batches = 0  # delivered to the UI thread (tests, measurements)
        self._on_batch = on_batch
        self._arrived.connect(self._on_arrived)  # a slot of this object: queued to its thread

    # -- what to watch (UI thread) -------------------------------------------------------------
    def follow(self, roots: Sequence[str], ignore: Sequence[str] = ()) -> Future | None:
        """Watch these roots from now on (none: stop). Cheap when nothing changed."""
        self._roots = tuple(sorted(os.path.abspath(r) for r in roots))
        self._ignore = tuple(os.path.abspath(i) for i in ignore)
        return self._apply()

    def set_enabled(self, on: bool) -> Future | None:
        self.enabled = on
        return self._apply()

    def _apply(self) -> Future | None:
        want = (self._roots, self._ignore) if self.enabled else ((), ())
        if want == self._applied or self._closed:
            return None
        self._applied = want
        return self._helper.submit(self._restart, *want)

    @property
    def watching(self) -> list[str]:
        """Roots watched now (a missing one is not; it is looked for again now and then)."""
        with self._lock:
            w = self._watcher
        return w.watching if w is not None else []

    def close(self, timeout: float = 10.0) -> None:
        """Stop watching and end the helper thread (at shutdown)."""
        if self._closed:
            return
        self._closed = True
        done = self._helper.submit(self._restart, (), ())
        try:
            done.result(timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - shutting down: say it, go on
            log.warning("stopping the folder watcher failed: %s", exc)
        self._helper.shutdown(wait=False)

    # -- the helper thread -----------------------------------------------------------------------
    def _restart(self, roots: tuple[str, ...], ignore: tuple[str, ...]) -> None:
        with self._lock:
            old, self._watcher = self._watcher, None
        if old is not None:
            old.stop()
        if not roots:
            return
        watcher = FolderWatcher(roots, self._deliver, ignore=ignore, quiet_s=self.quiet_s,
                                recheck_s=self.recheck_s)
        try:
            watcher.start()
        except Exception as exc:  # noqa: BLE001 - no watching is a degraded app, not a crash
            log.warning("watching the folders failed: %s", exc)
            watcher.stop()
            return
        with self._lock:
            self._watcher = watcher

    def _deliver(self, paths: list[str]) -> None:
        """On the watcher's thread: hand the batch to the UI thread (a queued signal)."""
        if self._closed:
            return
        try:
            self._arrived.emit(list(paths))
        except RuntimeError:  # the window is gone (shutdown)
            pass

    @Slot(list)
    def _on_arrived(self, paths: list[str]) -> None:
        if self._closed:
            return
        self.batches += 1
        self._on_batch(paths)
        self.changed.emit(paths)
