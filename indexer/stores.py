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
from indexer.catalogue_api import CatalogueLike
from indexer.errors import ConfigError
from indexer.errors import StoreUnavailable as StoreUnavailable  # re-exported: callers catch it here
from indexer.vectors import ChunkIds, HnswStore, VectorMeta, VectorStore


def make_store(
    url: str | None,
    folder: Path,
    dim: int,
    fingerprint: str,
    allowed_ids: Callable[[FileFilter, np.ndarray | None], np.ndarray],
    *,
    readonly: bool = False,
    stored_vectors: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
) -> VectorStore:
    """readonly: the store may catch up in memory but never writes its files.
    allowed_ids / stored_vectors: the catalogue's answers an in-process store filters with."""
    if not url or url == "hnsw":
        return HnswStore(folder, dim, fingerprint, allowed_ids=allowed_ids, readonly=readonly,
                         stored_vectors=stored_vectors)
    if url.startswith("milvus://"):
        from indexer.milvus_store import MilvusStore  # optional dependency

        return MilvusStore.from_url(
            url, dim=dim, fingerprint=fingerprint, folder=folder, readonly=readonly
        )
    raise ConfigError(f"unknown vector store {url!r}; use hnsw or milvus://HOST:PORT/COLLECTION")


def vector_meta(catalogue: CatalogueLike, chunk_ids: ChunkIds) -> list[VectorMeta]:
    """One VectorMeta per chunk id, in order, whatever the file's state (a pending file keeps
    its old chunks until they are replaced). A store that filters on the server needs these
    with every `add`, including the vectors `Library.reconcile()` re-sends."""
    return catalogue.vector_meta(chunk_ids)


class WatchedStore:
    """A vector store that remembers whether any write to it failed in this session.

    Only a library with a server catalogue uses it: there the catalogue's change journal is
    acknowledged at close ("the store holds every change up to here"), which is true only if
    no `add`, `delete` or `flush` failed since the open, even when the server answers again
    by then. Every other call goes straight to the store."""

    def __init__(self, store: VectorStore) -> None:
        self._store = store
        self.failed = False

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def _watch(self, fn: Callable, *args):
        try:
            return fn(*args)
        except BaseException:
            self.failed = True
            raise

    def add(self, ids, vectors, meta) -> None:
        self._watch(self._store.add, ids, vectors, meta)

    def delete(self, ids) -> None:
        self._watch(self._store.delete, ids)

    def flush(self) -> None:
        self._watch(self._store.flush)
