"""Job state that crosses threads: plain frozen dataclasses plus a cancel/pause control.

The GUI (or the CLI) only ever sees these; it never reaches into the indexer's internals.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass


class Cancelled(Exception):
    """Raised inside a job at a checkpoint after cancel() was called."""


class JobControl:
    """Cancel and pause for a running job; safe to call from any thread."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.paused_seconds = 0.0  # time spent waiting in checkpoint(): excluded from rates

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # wake a paused job so it can notice the cancel

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def checkpoint(self) -> None:
        """Block while paused; raise Cancelled once cancelled. Call between units of work."""
        if not self._running.is_set():
            started = time.monotonic()
            while not self._running.wait(0.1):
                pass
            self.paused_seconds += time.monotonic() - started
        if self._cancel.is_set():
            raise Cancelled()


@dataclass(frozen=True)
class Progress:
    phase: str  # "scanning" | "hashing" | "embedding" | "reading text" | "saving" | "done"
    done: int
    total: int
    files_per_s: float = 0.0
    eta_s: float | None = None
    current: str = ""
    errors: int = 0
    paused: bool = False


@dataclass(frozen=True)
class FileError:
    path: str
    reason: str


def plural(n: int, word: str) -> str:
    """ "1 error", "3 errors": counts read as sentences."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(frozen=True)
class IndexReport:
    added: int = 0
    updated: int = 0
    moved: int = 0
    copied: int = 0  # duplicates whose vectors were copied from identical content
    removed: int = 0
    unchanged: int = 0
    errors: int = 0
    embedded_files: int = 0
    to_embed: int = 0  # files this run set out to embed (a cancelled run did part of them)
    seconds: float = 0.0
    cancelled: bool = False
    text_looked: int = 0  # pictures given a first look for text (the OCR pass)
    text_found: int = 0  # of those (and of copies), pictures whose words were read
    text_errors: int = 0  # pictures whose text could not be read (recorded per file)
    text_note: str = ""  # why text was not read at all (engine missing), else ""

    def text_summary(self) -> str:
        if self.text_note:
            return f"; text not read: {self.text_note}"
        if not (self.text_looked or self.text_found or self.text_errors):
            return ""
        tail = f", {self.text_errors} could not be read" if self.text_errors else ""
        return (f"; looked for text in {plural(self.text_looked, 'picture')}, words read in "
                f"{self.text_found}{tail}")

    def summary(self) -> str:
        if self.embedded_files == 0 and not (self.moved or self.removed or self.errors):
            return f"nothing to embed: {plural(self.unchanged, 'file')} unchanged" + self.text_summary()
        parts = [
            f"{self.added} added",
            f"{self.updated} changed",
            f"{self.moved} moved",
            f"{self.removed} removed",
            f"{self.unchanged} unchanged",
            plural(self.errors, "error"),
        ]
        if self.copied:
            parts.insert(3, f"{self.copied} duplicates reused")
        rate = self.embedded_files / self.seconds if self.seconds > 0 else 0.0
        tail = " (cancelled)" if self.cancelled else ""
        return (", ".join(parts) + f" in {self.seconds:.1f}s ({rate:.1f} files/s){tail}"
                + self.text_summary())
