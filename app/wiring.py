"""Build the model, the library and the jobs once, and hand them to the core.

The core never looks up settings or paths itself; everything it needs arrives through its
constructors, so tests can pass fakes and small libraries.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.settings import Settings, cache_dir
from indexer.specs import ModelSpec, get_spec


def choose_spec(library: Path, requested: str | None, settings: Settings | None = None) -> ModelSpec:
    """An explicit --model wins; else the library's own model; else the user's default."""
    if requested:
        return get_spec(requested)
    if library.exists():
        from indexer.library import spec_for_library  # numpy, SQLite, hnswlib: not on import

        spec = spec_for_library(library)
        if spec is not None:
            return spec
    return get_spec((settings or Settings.load()).model)


def weights_path(
    spec: ModelSpec,
    weights: str | None = None,
    *,
    allow_download: bool = True,
    progress: Callable[[int, int], None] | None = None,
    settings: Settings | None = None,
) -> Path:
    from indexer.model_files import resolve_model_files

    settings = settings or Settings.load()
    local = weights or settings.weights.get(spec.name)
    return resolve_model_files(
        spec,
        local_file=Path(local).expanduser() if local else None,
        cache_dir=cache_dir(),
        allow_download=allow_download,
        progress=progress,
    )


def load_model(spec: ModelSpec, weights: str | None = None, **kw):
    """Resolve (verify) the pinned weights now; raises WeightsUnavailable/Mismatch.

    The model itself loads when work arrives (indexer/lazy_encoder.py): text queries on the
    cached ONNX export of the text tower when there is one, torch for images. A rescan with
    nothing to embed and a text search therefore never import torch."""
    from indexer.lazy_encoder import LazyEncoder

    settings = kw.get("settings") or Settings.load()
    device = settings.device if settings.device != "auto" else None
    return LazyEncoder(spec, weights_path(spec, weights, **kw), cache_dir=cache_dir(),
                       device=device)


@dataclass(frozen=True)
class Tuning:
    workers: int | None  # None: sized by indexer/cpu_budget.py when a job has pictures to decode
    batch_size: int


def tuning_for(device: str, settings: Settings | None = None) -> Tuning:
    """Decode workers and batch size (bench/index_rate.py and bench/RESULTS.md chose them).

    GPU: every usable core decodes (the GPU runs the model), big batches. CPU: workers None,
    so the split of indexer/cpu_budget.py is made when a job has pictures to decode, from the
    cores free at that moment (a rescan with nothing to embed never samples): on an idle box
    one decode process per core with the model on every core too (the decoders fill the gaps
    the model leaves between and inside its batches); on a box other work keeps busy, the
    free cores are split between decoding and the model (the model's thread count comes from
    the same reading when it loads). Batch 32: 16 and 64 were no faster, and small batches
    keep progress smooth. Settings override both."""
    from indexer.cpu_budget import usable_cores

    settings = settings or Settings.load()
    workers: int | None
    if device == "cuda":
        workers, batch = usable_cores(), 256
    else:
        workers, batch = None, 32
    return Tuning(settings.workers or workers, settings.batch_size or batch)
