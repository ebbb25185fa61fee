"""Changing model is a migration: re-embed side by side, then switch atomically.

The new model's catalogue and index are built in their own folder of the library while the
active model keeps answering searches. Only when every file is embedded does the library's
pointer file switch (one atomic rename). An interrupted migration resumes incrementally,
like any index run, because the target is an ordinary library folder.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from indexer.indexing import Indexer
from indexer.jobs import FileError, IndexReport, JobControl, Progress
from indexer.library import Library, LibraryError, LibraryInfo, spec_for_library
from indexer.pipeline import EncoderLike
from indexer.specs import ModelSpec


@dataclass(frozen=True)
class MigrationResult:
    report: IndexReport
    switched: bool
    old_folder: Path | None


def migrate(
    root: Path,
    spec: ModelSpec,
    encoder: EncoderLike,
    *,
    control: JobControl | None = None,
    workers: int | None = None,
    batch_size: int = 32,
    on_progress: Callable[[Progress], None] | None = None,
    on_error: Callable[[FileError], None] | None = None,
    source: Library | None = None,
) -> MigrationResult:
    """Re-embed every root of the library at `root` with `spec`, then make it active.

    `source` is the open active library when the caller already holds it (the GUI keeps
    searching it meanwhile); otherwise it is opened here.
    """
    root = Path(root).expanduser().absolute()
    info = LibraryInfo.read(root)
    if info.active == spec.fingerprint():
        raise LibraryError(f"{root} already uses {spec.label()}; nothing to migrate")
    own_source = source is None
    if source is None:
        old_spec = spec_for_library(root)
        if old_spec is None:
            raise LibraryError(f"{root}: the current model is unknown to this build")
        source = Library.open(root, old_spec)
    try:
        roots = [path for _, path in source.catalogue.roots()]
        old_folder = source.folder
        target = Library.open_migration_target(root, spec)
        try:
            indexer = Indexer(target, encoder, control=control, workers=workers,
                              batch_size=batch_size, on_progress=on_progress, on_error=on_error)
            for r in roots:  # unplugged roots too, so nothing is forgotten
                target.catalogue.add_root(r)
            report = indexer.run(None)
            unreachable = [r for r in roots if not Path(r).is_dir()]
            # never switch while a root is missing: its files would silently drop out
            complete = (not report.cancelled and not unreachable
                        and target.catalogue.counts()["pending"] == 0)
            if complete:
                target.activate()
        finally:
            target.close()
    finally:
        if own_source:
            source.close()
    return MigrationResult(report, complete, old_folder if complete else None)
