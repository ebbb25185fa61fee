"""The offline demo: a generated sample folder indexed with the bundled tiny model.

A newcomer without real CLIP weights still sees search working within a minute. Everything
lands in the app's data dir (or the library the caller names), never anywhere else.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.settings import demo_folder, demo_library
from indexer.jobs import IndexReport, JobControl, Progress
from indexer.specs import TINY_SHAPES


def build_demo(
    n_images: int = 96,
    *,
    library: Path | None = None,
    folder: Path | None = None,
    control: JobControl | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> tuple[Path, Path, IndexReport]:
    from app.wiring import load_model, tuning_for
    from indexer.indexing import Indexer
    from indexer.library import Library
    from magpie_demo.shapes import make_demo_folder

    folder = folder or demo_folder()
    library = library or demo_library()
    # The library first: a damaged one is named before the sample folder or the model is made.
    with Library.open(library, TINY_SHAPES) as lib:
        if not folder.exists():
            make_demo_folder(folder, n_images=n_images)
        encoder = load_model(TINY_SHAPES, allow_download=False)
        try:
            tune = tuning_for(encoder.device)
            report = Indexer(
                lib, encoder, control=control, workers=min(tune.workers or 2, 2),
                batch_size=tune.batch_size, on_progress=on_progress,
            ).run([folder])
        finally:
            encoder.close()
    return folder, library, report
