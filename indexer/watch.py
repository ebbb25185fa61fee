"""Follow the library's folders while the app runs: file-system events in, debounced batches of
changed paths out.

The operating system tells us what changed (inotify, FSEvents, ReadDirectoryChangesW via
watchdog), so an idle library costs no CPU and a change costs a rescan of that path only, not
of the whole root. Events are gathered until the folder has been quiet for `quiet_s` (a
camera import or a large copy lands as one batch, not thousands), but never held longer than
`max_wait_s`, so a steady trickle of changes is still picked up. A root that is not there
(an unplugged drive) is not watched and keeps its entries; it is looked for again now and then
and, when it is back, handed over whole so the caller can catch up.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver, ObservedWatch

DEFAULT_QUIET_S = 1.0
DEFAULT_MAX_WAIT_S = 10.0
MISSING_ROOT_RECHECK_S = 15.0


def collapse(paths: Iterable[str]) -> list[str]:
    """Sorted paths with every path under another one dropped (the folder covers them)."""
    out: list[str] = []
    for p in sorted(set(paths)):
        if out and (p == out[-1] or p.startswith(out[-1].rstrip(os.sep) + os.sep)):
            continue
        out.append(p)
    return out


class ChangeBatcher:
    """Collects changed paths and says when a batch is due. Pure logic: tests drive the clock."""

    def __init__(self, quiet_s: float = DEFAULT_QUIET_S, max_wait_s: float = DEFAULT_MAX_WAIT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet_s = quiet_s
        self.max_wait_s = max_wait_s
        self.clock = clock
        self._paths: set[str] = set()
        self._first = 0.0
        self._last = 0.0

    def add(self, path: str) -> None:
        now = self.clock()
        if not self._paths:
            self._first = now
        self._last = now
        self._paths.add(path)

    def seconds_until_due(self) -> float | None:
        """None when nothing is waiting; 0 when a batch is due now."""
        if not self._paths:
            return None
        now = self.clock()
        due_at = min(self._last + self.quiet_s, self._first + self.max_wait_s)
        return max(0.0, due_at - now)

    def take(self) -> list[str]:
        """The waiting paths, collapsed; the batcher is empty afterwards."""
        out = collapse(self._paths)
        self._paths.clear()
        return out


class FolderWatcher:
    """Watches folders recursively and calls `on_batch(paths)` on its own thread.

    `ignore` holds folders whose events never count (the library's own directory, when it
    lies inside a watched folder). Hidden names are skipped, as the scan skips them.
    """

    def __init__(
        self,
        roots: Iterable[str],
        on_batch: Callable[[list[str]], None],
        *,
        ignore: Iterable[str] = (),
        quiet_s: float = DEFAULT_QUIET_S,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        recheck_s: float = MISSING_ROOT_RECHECK_S,
    ) -> None:
        self.on_batch = on_batch
        self.ignore = tuple(os.path.abspath(p) for p in ignore)
        self.recheck_s = recheck_s
        self._batcher = ChangeBatcher(quiet_s, max_wait_s)
        self._cond = threading.Condition()
        self._stopping = False
        # root -> its watch; None while it is missing (not watched, looked for again now and then)
        self._roots: dict[str, ObservedWatch | None] = {os.path.abspath(r): None for r in roots}
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None
        self._next_recheck = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        from watchdog.observers import Observer

        self._observer = observer = Observer()
        observer.start()
        for root in list(self._roots):
            self._schedule(root)
        self._thread = threading.Thread(target=self._loop, name="magpie-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FolderWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def watching(self) -> list[str]:
        """Roots being watched now (missing ones are not)."""
        return sorted(r for r, w in self._roots.items() if w is not None)

    def add_root(self, root: str) -> None:
        root = os.path.abspath(root)
        if root not in self._roots:
            self._roots[root] = None
            if self._observer is not None:
                self._schedule(root)

    def remove_root(self, root: str) -> None:
        watch = self._roots.pop(os.path.abspath(root), None)
        if watch is not None and self._observer is not None:
            self._observer.unschedule(watch)

    # -- events ------------------------------------------------------------------------------
    def _schedule(self, root: str) -> bool:
        from watchdog.events import FileSystemEventHandler

        observer = self._observer
        if observer is None or not os.path.isdir(root):
            return False
        watcher = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:  # noqa: ANN001 - watchdog's event type
                watcher._on_event(event)

        try:
            self._roots[root] = observer.schedule(_Handler(), root, recursive=True)
        except OSError:  # vanished between the check and the watch, or out of inotify watches
            return False
        return True

    def _on_event(self, event) -> None:  # noqa: ANN001
        kind = event.event_type
        if kind in ("opened", "closed_no_write"):
            return  # reads change nothing
        if event.is_directory and kind == "modified":
            return  # a folder's own mtime: its files' events say what changed
        paths = [event.src_path]
        if kind == "moved":
            paths.append(event.dest_path)
        with self._cond:
            for raw in paths:
                path = os.fsdecode(raw)
                if self._counts(path):
                    self._batcher.add(path)
            self._cond.notify_all()

    def _counts(self, path: str) -> bool:
        if os.path.basename(path).startswith("."):
            return False
        return not any(path == i or path.startswith(i + os.sep) for i in self.ignore)

    # -- the batching thread -------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    wait = self._batcher.seconds_until_due()
                    if wait == 0.0:
                        break
                    if self._missing_roots():
                        recheck = max(0.0, self._next_recheck - time.monotonic())
                        wait = recheck if wait is None else min(wait, recheck)
                        if recheck == 0.0:
                            break
                    self._cond.wait(wait)  # None: sleep until an event arrives (idle CPU 0)
                if self._stopping:
                    return
                batch = self._batcher.take() if self._batcher.seconds_until_due() == 0.0 else []
            self._forget_vanished_roots()
            batch = collapse(batch + self._recheck_missing())
            if batch:
                try:
                    self.on_batch(batch)
                except Exception:  # noqa: BLE001 - the caller reports; watching goes on
                    pass

    def _missing_roots(self) -> bool:
        return any(w is None for w in self._roots.values())

    def _forget_vanished_roots(self) -> None:
        """A watched root that went away (unplugged) is watched again when it is back."""
        observer = self._observer
        for root, watch in list(self._roots.items()):
            if watch is not None and observer is not None and not os.path.isdir(root):
                try:
                    observer.unschedule(watch)
                except (KeyError, OSError):
                    pass
                self._roots[root] = None
                self._next_recheck = time.monotonic() + self.recheck_s

    def _recheck_missing(self) -> list[str]:
        """Roots that came back (a drive plugged in again): watched again, rescanned whole."""
        now = time.monotonic()
        if now < self._next_recheck or not self._missing_roots():
            return []
        self._next_recheck = now + self.recheck_s
        back: list[str] = []
        for root, watch in list(self._roots.items()):
            if watch is None and self._observer is not None and self._schedule(root):
                back.append(root)
        return back
