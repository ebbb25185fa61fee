"""The window follows the library's folders while it is open.

`FolderFollower` keeps one `indexer.watch.FolderWatcher` in step with the library's roots and
hands each debounced batch of changed paths to the indexing controller, which updates the
library on its writer queue (one writer at a time, behind whatever job is running).

Threads: starting and stopping a watcher walks the folder tree (inotify watches one folder at
a time) and joins threads, so that happens on a helper thread, never the UI thread; batches
arrive on the watcher's own thread and reach the UI thread as a queued Qt signal. An idle
library costs next to no CPU: the watcher sleeps until the operating system reports a change,
and a helper looks every few seconds whether each folder is still there (the file system does
not report its watched folder itself going away: an unplugged drive, a renamed folder).
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

REACH_CHECK_S = 5.0  # how often the followed folders are looked for (a stat each)


def _ident(path: str) -> tuple[int, int] | None:
    """Which folder is at `path` now (device, inode); None when none is."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if os.path.isdir(path) else None


class FolderFollower(QObject):
    """Watches exactly the roots it is given, while it is enabled."""

    changed = Signal(list)  # changed paths, on the UI thread
    reachChanged = Signal(list)  # the followed folders that are not reachable now (UI thread)
    _arrived = Signal(list)  # emitted on the watcher's thread
    _reach = Signal(list, list)  # (unreachable, came back), from the checking thread

    def __init__(self, on_batch: Callable[[list[str]], None], *, enabled: bool = True,
                 quiet_s: float = DEFAULT_QUIET_S, recheck_s: float = MISSING_ROOT_RECHECK_S,
                 check_s: float = REACH_CHECK_S, parent: QObject | None = None) -> None:
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
        self._reach.connect(self._on_reach)
        self.check_s = check_s
        self._wake = threading.Event()
        self._idents: dict[str, tuple[int, int] | None] = {}  # root -> folder seen when watched
        self.offline: list[str] = []
        self._checker = threading.Thread(target=self._check_loop, name="magpie-follow-check",
                                         daemon=True)
        self._checker.start()

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
        self._wake.set()
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
        with self._lock:
            self._idents = {r: _ident(r) for r in roots}
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

    # -- are the folders still there? (the checking thread) -----------------------------------
    def _check_loop(self) -> None:
        while not self._wake.wait(self.check_s):
            with self._lock:
                seen = dict(self._idents)
            now = {r: _ident(r) for r in seen}
            gone = sorted(r for r, i in now.items() if i is None)
            # back, or another folder in its place (a drive mounted again): watch it afresh
            back = sorted(r for r, i in now.items() if i is not None and i != seen[r])
            if gone != self.offline or back:
                with self._lock:
                    for r in [*gone, *back]:
                        if r in self._idents:  # not re-rooted meanwhile
                            self._idents[r] = now[r]
                try:
                    self._reach.emit(gone, back)
                except RuntimeError:
                    return

    @Slot(list, list)
    def _on_reach(self, gone: list[str], back: list[str]) -> None:
        if self._closed:
            return
        self.offline = gone
        if back:
            self._applied = None  # a folder came back: watch it again, then catch it up
            self._apply()
            self._on_batch(back)
        self.reachChanged.emit(gone)
