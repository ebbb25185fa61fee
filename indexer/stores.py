"""Pick the vector store for a library from its store URL.

None (the default) is the embedded hnswlib index inside the library folder; a
`milvus://HOST:PORT/COLLECTION` URL keeps the vectors in a Milvus server instead. SQLite stays
the local catalogue either way.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from indexer.catalogue import Catalogue, FileFilter, select_in
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


def vector_meta(catalogue: Catalogue, chunk_ids: ChunkIds) -> list[VectorMeta]:
    """One VectorMeta per chunk id, in order, whatever the file's state (a pending file keeps
    its old chunks until they are replaced). A store that filters on the server needs these
    with every `add`, including the vectors `Library.reconcile()` re-sends."""
    ids = [int(i) for i in chunk_ids]
    found: dict[int, VectorMeta] = {}
    for cid, fid, kind, path, taken_at in select_in(
        catalogue.db,
        "SELECT c.id, f.id, f.kind, f.path, f.taken_at FROM chunks c "
        "JOIN files f ON f.id = c.file_id WHERE c.id IN ({ids})",
        ids,
    ):
        found[cid] = VectorMeta(fid, kind, path, taken_at or 0.0)
    missing = [i for i in ids if i not in found]
    if missing:
        raise RuntimeError(f"chunks {missing[:5]} are not in the catalogue")
    return [found[i] for i in ids]
