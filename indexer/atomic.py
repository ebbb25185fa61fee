"""Atomic file replacement: write to a temp file in the same folder, check it, fsync, rename,
fsync the folder.

A reader (or a crash) therefore sees either the old file or the new one, never a half-written
one. A writer that cannot report its own failures (hnswlib's save ignores a short write on a
full disk) is checked by `verify` before the rename: a file that fails the check is an error
and never replaces the good one.
"""
from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

Writer = Callable[[Path], object]  # what it returns (bytes written, say) is ignored
Check = Callable[[Path], None]


class IncompleteWrite(OSError):
    """A writer returned, but the file it wrote is not whole (a full disk, a failing device)."""


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def expect_size(size: int) -> Check:
    """A check that the written file has exactly `size` bytes."""

    def check(tmp: Path) -> None:
        got = tmp.stat().st_size
        if got != size:
            free = shutil.disk_usage(tmp.parent).free
            code = errno.ENOSPC if free < size - got + (1 << 20) else errno.EIO
            reason = "the disk is full" if code == errno.ENOSPC else "the write was cut short"
            raise IncompleteWrite(
                code, f"only {got} of {size} bytes could be written ({reason}); "
                "the previous file is kept", str(tmp)
            )

    return check


def _tmp_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write_many(items: Sequence[tuple[Path, Writer, Check | None]]) -> None:
    """Write every file to its temp, check and fsync each, and only then rename them all.

    A failure while writing or checking any of them changes none of the targets. (The renames
    themselves run in order, so a crash between two of them can leave the first new and the
    rest old; a reader that needs the set whole checks it, as `HnswStore` does.)
    """
    tmps = [_tmp_for(path) for path, _, _ in items]
    try:
        for (_path, write, check), tmp in zip(items, tmps):
            write(tmp)
            if check is not None:
                check(tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        for (path, _, _), tmp in zip(items, tmps):
            os.replace(tmp, path)
        for folder in {path.parent for path, _, _ in items}:
            fsync_dir(folder)
    finally:
        for tmp in tmps:
            if tmp.exists():
                tmp.unlink()


def atomic_write(path: Path, write: Writer, check: Check | None = None) -> None:
    """Call `write(tmp_path)`, check it, then move tmp over `path` durably; on error leave
    `path` alone."""
    atomic_write_many([(path, write, check)])


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data), expect_size(len(data)))
