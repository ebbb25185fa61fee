"""Pick the vector store for a library from its store URL.

None (the default) is the embedded hnswlib index inside the library folder; a
`milvus://HOST:PORT/COLLECTION` URL keeps the vectors in a Milvus server instead. SQLite stays
the local catalogue either way.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from indexer.catalogue import FileFilter
from indexer.vectors import HnswStore, VectorStore


class StoreUnavailable(RuntimeError):
    """The vector store cannot be reached; str() says what to do."""


def make_store(
    url: str | None,
    folder: Path,
    dim: int,
    fingerprint: str,
    allowed_ids: Callable[[FileFilter], np.ndarray],
    *,
    readonly: bool = False,
) -> VectorStore:
    """readonly: the store may catch up in memory but never writes its files."""
    if not url or url == "hnsw":
        return HnswStore(folder, dim, fingerprint, allowed_ids=allowed_ids, readonly=readonly)
    if url.startswith("milvus://"):
        from indexer.milvus_store import MilvusStore  # optional dependency

        return MilvusStore.from_url(url, dim=dim, fingerprint=fingerprint)
    raise ValueError(f"unknown vector store {url!r}; use hnsw or milvus://HOST:PORT/COLLECTION")
