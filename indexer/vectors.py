"""Vector stores: the protocol the indexer and search use, and the default hnswlib store.

Nothing above this protocol knows which store it has. Scores are cosine similarities in
[-1, 1], highest first. Filters arrive as a `FileFilter`; each store turns it into its own form
(the hnsw store asks the catalogue for the allowed ids; a server store pushes an expression).
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeAlias, runtime_checkable

import numpy as np

from indexer.atomic import atomic_write_many, expect_size
from indexer.catalogue import FileFilter, VectorMeta  # VectorMeta: defined beside the rows
from indexer.errors import MagpieError


class StoreMismatch(MagpieError, RuntimeError):
    """The store on disk (or server) holds vectors from another model."""


# Chunk ids as callers have them: a numpy array, or a list from the catalogue; every store
# converts with np.asarray(ids, dtype=np.int64).
ChunkIds: TypeAlias = "np.ndarray | Sequence[int]"


@runtime_checkable
class VectorStore(Protocol):
    dim: int
    fingerprint: str

    def add(self, ids: ChunkIds, vectors: np.ndarray, meta: list[VectorMeta]) -> None: ...

    def delete(self, ids: ChunkIds) -> None: ...

    def knn(
        self, query: np.ndarray, k: int, flt: FileFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def count(self) -> int: ...

    def ids(self) -> np.ndarray: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


# Chosen by bench/hnsw_tune.py (bench/RESULTS.md): recall@10 against exact search at 100k
# CLIP-like items with text-like queries: M=16 plateaus at 0.96 (ef 200); M=32 reaches 0.985 at
# ef 300 for ~1 ms per query. Hybrid search asks for k=240 neighbours, so it runs at ef >= 240.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 300
# Past 100k items the same ef finds less of the true top 10 (text-like queries at 1M items:
# recall@10 0.90 at ef 300, 0.96 at 948, 0.98 at 2000 for ~8 ms): ef grows in proportion to
# the size from 100k on, up to HNSW_EF_MAX (bench/query_latency.py, bench/RESULTS.md).
HNSW_EF_REF_ITEMS = 100_000
HNSW_EF_MAX = 2000


def matvec(mat: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """mat @ vec without BLAS. numpy's BLAS runs a matrix-vector product on its own thread
    pool, whose threads then spin for a while and take the cores from torch's: measured, the
    next query's text encoding took twice as long (bench/RESULTS.md). A search-sized product
    (a few thousand rows) is as fast on one core."""
    return np.einsum("ij,j->i", mat, vec)


def ef_for(n_items: int, k: int = 0) -> int:
    """Search breadth for an index of n_items (never below k, which hnswlib needs)."""
    scale = max(1.0, n_items / HNSW_EF_REF_ITEMS)
    return max(k, min(HNSW_EF_MAX, int(HNSW_EF_SEARCH * scale)))


EXACT_BELOW = 4096  # a filtered candidate set this small is scanned exactly (fast, recall 1.0)
# A filtered query first looks at this many times k unfiltered neighbours (at least the minimum):
# a filter that keeps a quarter of the library or more then never lists the allowed ids.
POST_FILTER_OVERSAMPLE = 4
POST_FILTER_MIN = 256


def _mark_deleted(index, label: int) -> None:
    """mark_deleted that accepts a label hnswlib already holds as deleted (an index renamed
    into place after a delete whose sidecar was not, by a crash between the renames: the set
    is then made whole again by reconcile)."""
    try:
        index.mark_deleted(label)
    except RuntimeError as exc:
        if "already deleted" not in str(exc):
            raise


def _set_is_whole(meta: dict, index_bytes: int, n_deleted: int) -> bool:
    """Do index file and deleted list match what the sidecar recorded when they were saved?
    (Sidecars written before these fields existed are taken as they are.)"""
    if "index_bytes" in meta and meta["index_bytes"] != index_bytes:
        return False
    return "deleted" not in meta or meta["deleted"] == n_deleted


class HnswStore:
    """hnswlib index + sidecar (fingerprint, deleted labels), saved atomically.

    One lock guards every call: hnswlib's add-with-resize and mark_deleted race with queries.
    """

    def __init__(
        self,
        folder: Path,
        dim: int,
        fingerprint: str,
        allowed_ids: Callable[[FileFilter, np.ndarray | None], np.ndarray] | None = None,
        readonly: bool = False,
        stored_vectors: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        """allowed_ids(flt, among): the chunk ids that pass a filter (among those given).
        stored_vectors(ids): (ids, vectors) from the catalogue, for exact scans of small filtered
        sets: reading them from SQLite is ~5x faster than hnswlib's get_items."""
        import hnswlib

        self.readonly = readonly
        self.folder = folder
        self.dim = dim
        self.fingerprint = fingerprint
        self._allowed_ids = allowed_ids
        self._stored_vectors = stored_vectors
        self.ef: int | None = None  # a fixed search breadth (benchmarks); None: ef_for(size)
        self._lock = threading.Lock()
        self._index_path = folder / "vectors.hnsw"
        self._meta_path = folder / "vectors.json"
        self._deleted_path = folder / "vectors.deleted.npy"
        self._live: set[int] = set()
        self._deleted: set[int] = set()
        self.dirty = False
        self.loaded_from_disk = False
        self._index = hnswlib.Index(space="cosine", dim=dim)
        if not self._try_load():
            self._index.init_index(max_elements=1024, M=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION)
        self._index.set_ef(HNSW_EF_SEARCH)

    # -- persistence ------------------------------------------------------------------------
    def _try_load(self) -> bool:
        if not (self._index_path.exists() and self._meta_path.exists()):
            return False
        try:
            meta = json.loads(self._meta_path.read_text())
            if meta.get("fingerprint") != self.fingerprint or meta.get("dim") != self.dim:
                raise StoreMismatch(
                    f"{self._index_path} holds vectors of model {meta.get('fingerprint')}, "
                    f"not {self.fingerprint}"
                )
            deleted = (
                set(np.load(self._deleted_path).tolist()) if self._deleted_path.exists() else set()
            )
            if not _set_is_whole(meta, self._index_path.stat().st_size, len(deleted)):
                return False  # a save torn by a crash between its renames: rebuilt from SQLite
            self._index.load_index(str(self._index_path), max_elements=0)
            self._deleted = deleted
            self._live = set(self._index.get_ids_list()) - deleted
            self.loaded_from_disk = True
            return True
        except StoreMismatch:
            raise
        except Exception:  # truncated / corrupt file: rebuilt from SQLite by reconcile()
            import hnswlib

            self._index = hnswlib.Index(space="cosine", dim=self.dim)
            self._live, self._deleted = set(), set()
            return False

    def flush(self) -> None:
        """Save index, deleted labels and sidecar together, each checked before any rename.

        hnswlib's save does not report a short write (a full disk): the file's size is checked
        against what hnswlib says it must be, so a cut-short index raises `IncompleteWrite` and
        the previous index, its deleted list and vectors.json all stay as they were. The sidecar
        (renamed last) records the index's size and the deleted count, so a crash between the
        renames is recognised on the next load and the index rebuilt from SQLite.
        """
        if self.readonly:
            return
        with self._lock:
            if not self.dirty and self._index_path.exists():
                return
            import io

            buf = io.BytesIO()
            np.save(buf, np.fromiter(self._deleted, dtype=np.int64))
            deleted = buf.getvalue()
            index_bytes = int(self._index.index_file_size())
            meta = json.dumps({
                "fingerprint": self.fingerprint, "dim": self.dim, "count": len(self._live),
                "index_bytes": index_bytes, "deleted": len(self._deleted),
            }).encode()
            atomic_write_many([
                (self._index_path, self._save_index, expect_size(index_bytes)),
                (self._deleted_path, lambda tmp: tmp.write_bytes(deleted),
                 expect_size(len(deleted))),
                (self._meta_path, lambda tmp: tmp.write_bytes(meta), expect_size(len(meta))),
            ])
            self.dirty = False

    def _save_index(self, tmp: Path) -> None:
        self._index.save_index(str(tmp))

    def close(self) -> None:
        self.flush()

    # -- writes -----------------------------------------------------------------------------
    def add(self, ids: ChunkIds, vectors: np.ndarray, meta: list[VectorMeta] | None = None
            ) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        with self._lock:
            needed = self._index.get_current_count() + len(ids)
            if needed > self._index.get_max_elements():
                self._index.resize_index(max(needed, 2 * self._index.get_max_elements()))
            # hnswlib un-deletes a label that is added again (0.8: add_items unmarks it); the
            # deleted list must follow, or the saved index would call the re-used id deleted.
            self._index.add_items(np.asarray(vectors, dtype=np.float32), ids)
            self._live.update(ids.tolist())
            self._deleted.difference_update(ids.tolist())
            self.dirty = True

    def delete(self, ids: ChunkIds) -> None:
        with self._lock:
            for i in ids:
                i = int(i)
                if i in self._live:
                    _mark_deleted(self._index, i)
                    self._live.discard(i)
                    self._deleted.add(i)
                    self.dirty = True

    # -- reads ------------------------------------------------------------------------------
    def count(self) -> int:
        return len(self._live)

    def ids(self) -> np.ndarray:
        with self._lock:
            return np.fromiter(self._live, dtype=np.int64, count=len(self._live))

    def knn(
        self, query: np.ndarray, k: int, flt: FileFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest live vectors, best first; with `flt`, the k nearest that pass it.

        A filter is applied in the cheapest way that stays exact: first to an unfiltered
        oversampled result (a broad filter, "images only", keeps enough of it: no need to list
        90% of the library), else through the list of allowed ids (a narrow one: scanned exactly
        when small, else a filtered graph search).
        """
        q = np.asarray(query, dtype=np.float32).reshape(1, -1)
        with self._lock:
            n = len(self._live)
            if n == 0 or k <= 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            if flt is None or flt.is_empty() or self._allowed_ids is None:
                return self._graph(q, min(k, n))
            want = min(n, max(k * POST_FILTER_OVERSAMPLE, POST_FILTER_MIN))
            ids, scores = self._graph(q, want)
            keep = np.isin(ids, self._allowed_ids(flt, ids))
            if keep.sum() >= k or want == n:
                return ids[keep][:k], scores[keep][:k]
            # (a second, deeper look sized by the share that passed was tried and dropped: at
            # 1M items checking 5-16k candidates in SQLite cost more than listing the filter)
            allowed = self._allowed_ids(flt, None)
            allowed = allowed[np.isin(allowed, np.fromiter(self._live, np.int64, n))]
            if len(allowed) == 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            if len(allowed) <= EXACT_BELOW:
                return self._exact(q, allowed, k)
            return self._graph(q, min(k, len(allowed)), allowed)

    def _graph(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """hnsw search (caller holds the lock); exact search if the graph can't yield k."""
        self._index.set_ef(max(k, self.ef) if self.ef is not None else ef_for(len(self._live), k))
        try:
            if allowed is not None:
                labels, dist = self._index.knn_query(
                    q, k=k, filter=set(allowed.tolist()).__contains__
                )
            else:
                labels, dist = self._index.knn_query(q, k=k)
        except RuntimeError:  # graph could not yield k results: fall back to exact search
            pool = allowed if allowed is not None else np.fromiter(self._live, np.int64)
            return self._exact(q, pool, k)
        return labels[0].astype(np.int64), (1.0 - dist[0]).astype(np.float32)

    def _exact(self, q: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._stored_vectors is not None:
            ids, vecs = self._stored_vectors(ids)
        else:
            vecs = np.asarray(self._index.get_items(ids.tolist(), return_type="numpy"),
                              dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-12
        qn = q[0] / (np.linalg.norm(q[0]) + 1e-12)
        scores = matvec(vecs, qn)
        order = np.argsort(-scores)[:k]
        return ids[order].astype(np.int64), scores[order].astype(np.float32)
