"""Everything a pinned model needs on disk before it loads: its weights and, for a model with
its own Hugging Face tokenizer, the tokenizer files.

Why a module of its own: the tokenizer files reuse the weights' download and checking
(indexer/weights.py), so the step that resolves both sits above the two instead of in either.
"""
from __future__ import annotations

from pathlib import Path

from .specs import ModelSpec
from .tokenizer_files import resolve_tokenizer
from .weights import Progress, resolve_weights


def resolve_model_files(
    spec: ModelSpec,
    *,
    local_file: Path | None = None,
    cache_dir: Path,
    allow_download: bool = True,
    endpoint: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """The verified weights file (indexer/weights.py's `resolve_weights`), after making sure a
    model with its own tokenizer has its files in the cache, fetched at the pinned revision and
    checked (indexer/tokenizer_files.py)."""
    path = resolve_weights(spec, local_file=local_file, cache_dir=cache_dir,
                           allow_download=allow_download, endpoint=endpoint, progress=progress)
    if spec.tokenizer is not None:
        resolve_tokenizer(spec, cache_dir=Path(cache_dir).expanduser(),
                          allow_download=allow_download, endpoint=endpoint)
    return path
