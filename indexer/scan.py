"""Walk roots and classify files. A plain generator: no database, no model.

Hidden entries and the library folder are skipped; symlinked folders are followed once
(by device+inode), so loops end; unreadable folders are reported, not fatal.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
HEIF_EXTS = frozenset({".heic", ".heif"})
TEXT_EXTS = frozenset({".txt", ".md", ".markdown", ".rst", ".org", ".text", ".note"})


def heif_available() -> bool:
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        return False
    return True


def classify(name: str, *, heif: bool = False) -> str | None:
    """'image', 'text' or None (not ours) from the extension; content is checked at decode."""
    ext = os.path.splitext(name)[1].lower()
    if ext in IMAGE_EXTS or (heif and ext in HEIF_EXTS):
        return "image"
    if ext in TEXT_EXTS:
        return "text"
    return None


@dataclass(frozen=True)
class Entry:
    path: str  # str from os.fsdecode: undecodable bytes survive as surrogates
    kind: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ScanProblem:
    path: str
    reason: str


def scan(
    root: str | os.PathLike,
    *,
    skip: tuple[str, ...] = (),
    on_problem: Callable[[ScanProblem], None] | None = None,
    follow_symlinks: bool = True,
) -> Iterator[Entry]:
    """Yield every image/text file under `root` (depth-first, sorted for stable order)."""
    heif = heif_available()
    skip_real = {os.path.realpath(s) for s in skip}
    seen_dirs: set[tuple[int, int]] = set()
    report = on_problem or (lambda p: None)
    stack = [os.fspath(root)]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
        except OSError as exc:
            report(ScanProblem(folder, _reason(exc)))
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            continue  # symlink loop or a folder reachable twice
        seen_dirs.add(key)
        if os.path.realpath(folder) in skip_real:
            continue
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            report(ScanProblem(folder, _reason(exc)))
            continue
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                is_dir = e.is_dir(follow_symlinks=follow_symlinks)
                if is_dir:
                    subdirs.append(e.path)
                    continue
                kind = classify(e.name, heif=heif)
                if not e.is_file(follow_symlinks=follow_symlinks):
                    if kind is not None and e.is_symlink() and not os.path.exists(e.path):
                        report(ScanProblem(e.path, "dangling link (its target is missing)"))
                    continue
                if kind is None:
                    continue
                fst = e.stat(follow_symlinks=follow_symlinks)
            except OSError as exc:  # dangling symlink, vanished file, permission
                report(ScanProblem(e.path, _reason(exc)))
                continue
            if not stat.S_ISREG(fst.st_mode):
                continue
            yield Entry(e.path, kind, fst.st_size, fst.st_mtime_ns)
        stack.extend(reversed(subdirs))


def scan_within(
    root: str | os.PathLike,
    paths: list[str],
    *,
    skip: tuple[str, ...] = (),
    on_problem: Callable[[ScanProblem], None] | None = None,
) -> Iterator[Entry]:
    """Yield the files at or under each of `paths` (all inside `root`): what a watcher's
    batch of changed paths needs, without walking the rest of the root."""
    report = on_problem or (lambda p: None)
    heif = heif_available()
    root = os.fspath(root)
    for path in paths:
        rel = os.path.relpath(path, root)
        if any(part.startswith(".") for part in rel.split(os.sep) if part not in (".", "..")):
            continue  # hidden, as the full scan skips it
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue  # gone: the caller treats what it knew there as vanished
        except OSError as exc:
            report(ScanProblem(path, _reason(exc)))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from scan(path, skip=skip, on_problem=on_problem)
        elif stat.S_ISREG(st.st_mode):
            kind = classify(os.path.basename(path), heif=heif)
            if kind is not None:
                yield Entry(path, kind, st.st_size, st.st_mtime_ns)


def _reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "vanished or dangling link"
    return exc.strerror or str(exc)
