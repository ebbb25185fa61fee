"""Build the model, the library and the jobs once, and hand them to the core.

The core never looks up settings or paths itself; everything it needs arrives through its
constructors, so tests can pass fakes and small libraries.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.settings import Settings, cache_dir
from indexer.library import spec_for_library
from indexer.specs import ModelSpec, get_spec


def choose_spec(library: Path, requested: str | None, settings: Settings | None = None) -> ModelSpec:
    """An explicit --model wins; else the library's own model; else the user's default."""
    if requested:
        return get_spec(requested)
    if library.exists():
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
    from indexer.weights import resolve_weights

    settings = settings or Settings.load()
    local = weights or settings.weights.get(spec.name)
    return resolve_weights(
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

    return LazyEncoder(spec, weights_path(spec, weights, **kw), cache_dir=cache_dir())


@dataclass(frozen=True)
class Tuning:
    workers: int
    batch_size: int


def tuning_for(device: str, settings: Settings | None = None) -> Tuning:
    """Decode workers and batch size, chosen by bench/index_rate.py (see bench/RESULTS.md).

    GPU: every core decodes (the GPU runs the model), big batches. CPU: one decode process per
    core and torch left on every core too: on a quiet 2-core box that indexed 12 MP photos ~20%
    faster than 1 decoder and ~55% faster than splitting the cores (1 decoder + 1 torch thread),
    because the decoders fill the gaps torch leaves between and inside its batches. (On a box
    already busy with other work the split wins instead; Magpie assumes the desktop is idle.)
    Batch 32: 16 and 64 were no faster, and small batches keep progress smooth."""
    settings = settings or Settings.load()
    cores = os.cpu_count() or 2
    workers, batch = (cores, 256) if device == "cuda" else (cores, 32)
    return Tuning(settings.workers or workers, settings.batch_size or batch)
