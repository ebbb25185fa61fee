"""The one error hierarchy: every condition a person should read about is a `MagpieError`.

Why one base: the CLI and the GUI turn exactly these into a message (``str(err)`` says what is
wrong and what to do) and treat anything else as a bug, whose traceback is kept for the
developer instead of being hidden behind a one-line message. Subclasses live next to the code
that raises them (LibraryError in library.py, WeightsError in weights.py, QueryError in
query.py, …); the few shared by several modules live here. Stdlib only: this module must stay
importable from everywhere, including the fast CLI path, without creating import cycles.
"""
from __future__ import annotations

import errno
import sqlite3


class MagpieError(Exception):
    """A problem the user can act on; str() is the whole message (no traceback is shown)."""


class ConfigError(MagpieError, ValueError):
    """A setting, URL or argument that cannot be used as given."""


class StoreUnavailable(MagpieError, RuntimeError):
    """The vector store cannot be reached; str() says what to do."""


class NotIndexed(MagpieError, KeyError):
    """A folder or file the library does not hold (KeyError for the callers that expect it)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def storage_full_message(exc: BaseException) -> str | None:
    """The message for a full disk or a too-large file, wherever in the stack it happened."""
    full = (
        isinstance(exc, sqlite3.OperationalError)
        and any(w in str(exc).lower() for w in ("full", "disk i/o"))
    ) or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT))
    if not full:
        return None
    return (f"cannot write the library: the disk is full or the file is too large ({exc}); "
            "everything committed before this point is kept, free some space and run the "
            "same command again to continue")


def database_message(exc: BaseException) -> str | None:
    """SQLite's words for a catalogue damaged past its first page (found mid-command) or held
    by another writer too long: conditions of the library, not bugs of Magpie."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    text = str(exc)
    if type(exc) is sqlite3.DatabaseError or "malformed" in text or "not a database" in text:
        return (f"the library's catalogue is damaged ({text}); Magpie stopped. Restore the "
                "library folder from a backup, or start over: move it away and run "
                "`magpie index FOLDER…` again (your pictures and notes are never touched)")
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return ("the library is busy: another Magpie process kept it locked for too long; "
                "try again when that process has finished")
    return None


def user_message(exc: BaseException) -> str | None:
    """The message for an error a person can act on; None for a bug (keep its traceback)."""
    if isinstance(exc, MagpieError):
        return str(exc)
    return storage_full_message(exc) or database_message(exc)


class LibraryError(MagpieError, RuntimeError):
    """A problem with the library the user can act on; str() is the message to show."""


class LibraryDamaged(LibraryError):
    """A file of the library is missing, empty, malformed or of the wrong kind. Nothing is
    repaired or overwritten behind the user's back: the message names the file and the way out."""

    def __init__(self, thing: object, what: str, fix: str | None = None) -> None:
        self.thing = str(thing)
        super().__init__(
            f"the library is damaged: {thing} {what}. Magpie changed nothing. " + (fix or (
                "Restore the library folder from a backup, or start over: move the library "
                "folder away and run `magpie index FOLDER…` again (your pictures and notes are "
                "never touched)"))
        )


def cannot_write_library(root: object, exc: OSError) -> LibraryError:
    """A library Magpie may read but not change (read-only disk or folder, wrong owner)."""
    return LibraryError(
        f"cannot write to the library {root} ({exc.strerror or exc}); nothing was changed. "
        "`magpie search` and `magpie status` still work; to index or change it, make the folder "
        "writable or choose another library with --library"
    )
