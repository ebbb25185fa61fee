"""A `VectorStore` kept in a Milvus server (a cluster, a standalone, or the milvus-lite server).

URL: ``milvus://HOST:PORT/COLLECTION``, optionally with ``?consistency=Strong`` (the default;
or Bounded, Session, Eventually), ``timeout=SECONDS`` (30) and ``tls=1``. An access token, if
the server wants one, comes from the ``MAGPIE_MILVUS_TOKEN`` environment variable
("user:password" or an API key), never from the URL, which is written into the library's
pointer file. ``MAGPIE_MILVUS_CONSISTENCY`` overrides the URL's consistency level for
one process (e.g. Bounded for a busy searcher) without touching the library.

One collection per library and model: the real collection name is ``COLLECTION_<fingerprint>``,
so a migration to another model fills a second collection beside the first while the first
keeps answering. The collection's properties record the model fingerprint, the dimension and
the library's id (kept in ``milvus.json`` in the library's model folder); opening a collection
made by another model or another library raises `StoreMismatch` naming both. The second
check matters because `Library.reconcile()` deletes vectors SQLite does not know: two
libraries sharing a collection would delete each other's vectors.

Schema (one row per chunk):
    id        INT64 primary key = the SQLite chunk id (not auto ids: SQLite is the truth)
    vector    FLOAT_VECTOR(dim), HNSW index, COSINE metric
    file_id   INT64
    kind      VARCHAR  ("image" / "text")
    path      VARCHAR  (display path; for people reading the collection and for tools)
    taken_at  DOUBLE   (unix seconds)
    folders   ARRAY<INT64>: a 64-bit hash of every ancestor folder prefix of `path`

A folder filter is ``path like "/prefix/%"`` (the prefix quoted as a string literal: quotes,
backslashes and newlines escaped) when the prefix holds no ``%``, ``_`` or backslash. Those are
LIKE's wildcards (and escape), which not every Milvus version lets a pattern escape, and ``_``
is common in folder names: ``/photos/my_trip/%`` would also match ``/photos/myXtrip/``. Such a
prefix is matched instead by ``array_contains_any(folders, [hash])``: exact, no escaping, and
fast on a cluster with the inverted index (milvus-lite scans it in Python, ~10x slower than
LIKE there, hence LIKE wherever it is exact).

Writes are upserts, so a batch retried after a crash, or re-sent by `reconcile()`, never
duplicates a vector. Every failure to reach the server becomes `StoreUnavailable` with one
line that says what to do; SQLite already holds every committed batch, and the next
`Library.open()` re-sends whatever the server lacks.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import numpy as np

from indexer.atomic import atomic_write_bytes
from indexer.catalogue import FileFilter, display_path
from indexer.errors import ConfigError, StoreUnavailable
from indexer.vectors import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    ChunkIds,
    StoreMismatch,
    VectorMeta,
)

FORMAT = "1"
PROP_FINGERPRINT = "magpie.fingerprint"
PROP_DIM = "magpie.dim"
PROP_LIBRARY = "magpie.library"
PROP_FORMAT = "magpie.format"
SIDECAR = "milvus.json"

WRITE_BATCH = 1024  # rows per upsert: 512-d float32 ≈ 2 MiB per request
DELETE_BATCH = 4096  # ids per delete expression
MAX_TOPK = 16384  # Milvus's limit on limit
#: ids are listed in windows of the primary key this wide at first: a window of at most
#: ID_PAGE consecutive ids can never hold more rows than one query returns
ID_PAGE = MAX_TOPK
INT64_MAX = (1 << 63) - 1
# A filtered graph search steps over vectors the filter rejects, so it needs a wider beam for the
# same recall: measured on milvus-lite, 20k CLIP-like vectors, one folder of 20 (5%): recall@10
# 0.90 at ef=96, 0.99 at 200, 0.996 at 400, at the same latency (bench/milvus_vs_hnsw.py).
FILTERED_EF = 400
KIND_MAX = 16
PATH_MAX = 65535  # VARCHAR's limit
FOLDERS_MAX = 2048  # a path of PATH_MAX (4096) bytes has at most 2048 folder levels
DEFAULT_TIMEOUT = 30.0
CONSISTENCY = ("Strong", "Bounded", "Session", "Eventually")
# gRPC keepalive every server accepts. pymilvus's defaults ping every 10 s, idle connections
# included; a stock gRPC server (the milvus-lite server is one) takes at most one ping per
# 5 minutes while a call is open and none on an idle connection, counts each early ping as a
# strike and after the third answers GOAWAY "too_many_pings", failing the calls in flight
# (seen under load, when a call or a pause between calls outlasts a few pings). Milvus itself
# allows pings every 5 s, so this is stricter than it needs and costs it nothing: every call
# carries its own deadline (`timeout`), which is what finds a dead server.
KEEPALIVE_MS = 330_000  # over the 300 s a stock gRPC server requires between pings
GRPC_OPTIONS: dict[str, int] = {
    "grpc.keepalive_time_ms": KEEPALIVE_MS,
    "grpc.keepalive_timeout_ms": 20_000,
    "grpc.keepalive_permit_without_calls": 0,
    # After a failed connection gRPC waits 1 s, then 1.6× longer each time, up to 120 s,
    # before it tries again: a searcher would keep failing for a minute or more after the
    # server is back (bench/pg_load.py, Milvus killed under 16 searchers). Retry every 0.5-2 s.
    "grpc.initial_reconnect_backoff_ms": 500,
    "grpc.min_reconnect_backoff_ms": 500,
    "grpc.max_reconnect_backoff_ms": 2_000,
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")

T = TypeVar("T")


# -- expressions ------------------------------------------------------------------------------
def quote(text: str) -> str:
    """A Milvus filter-expression string literal for any text (quotes, backslashes, newlines)."""
    body = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{body}"'


def folder_key(folder: str) -> int:
    """64-bit key of a folder prefix, as stored in `folders` ("/a/b" and "/a/b/" are one)."""
    prefix = folder.rstrip("/") + "/"
    digest = hashlib.blake2b(prefix.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def folder_keys(path: str) -> list[int]:
    """Keys of every folder prefix that contains `path`: "/a/b/c.jpg" -> "/", "/a/", "/a/b/"."""
    prefixes = [path[: i + 1] for i, ch in enumerate(path) if ch == "/"]
    return [folder_key(p) for p in prefixes[:FOLDERS_MAX]]


LIKE_SPECIAL = frozenset("%_\\")


def folder_clause(folders: Iterable[str]) -> str:
    """Paths under any of these folders: LIKE where that is exact, hashed prefixes elsewhere."""
    likes: list[str] = []
    keys: list[str] = []
    for folder in dict.fromkeys(folders):
        prefix = display_path(folder).rstrip("/") + "/"  # paths are stored as display paths
        if LIKE_SPECIAL.isdisjoint(prefix):
            likes.append(f"path like {quote(prefix + '%')}")
        else:
            keys.append(str(folder_key(prefix)))
    if keys:
        likes.append(f"array_contains_any(folders, [{', '.join(keys)}])")
    return " or ".join(likes)


def filter_expr(flt: FileFilter | None) -> str:
    """A FileFilter as a Milvus boolean expression (the same meaning as catalogue.filter_sql)."""
    if flt is None or flt.is_empty():
        return ""
    parts: list[str] = []
    if flt.kinds:
        parts.append(f"kind in [{', '.join(quote(k) for k in flt.kinds)}]")
    if flt.folders:
        parts.append(folder_clause(flt.folders))
    if flt.after is not None:
        parts.append(f"taken_at >= {_number(flt.after)}")
    if flt.before is not None:
        parts.append(f"taken_at < {_number(flt.before)}")
    return " and ".join(f"({p})" for p in parts)


def _number(x: float) -> str:
    x = float(x)
    if not np.isfinite(x):
        raise ValueError(f"date bound must be a finite number, not {x}")
    return repr(x)


# -- the store --------------------------------------------------------------------------------
_quiet = False


def _pymilvus() -> Any:
    global _quiet
    try:
        import pymilvus
    except ImportError:  # pragma: no cover - depends on the installation
        raise StoreUnavailable(
            "this Magpie has no Milvus support installed; install it with "
            "`pip install 'magpie[milvus]'`"
        ) from None
    if not _quiet:
        # pymilvus installs its own stderr handlers (at import) and logs every failed RPC with
        # a traceback; this store turns those failures into exceptions with one clear line.
        for name in ("pymilvus", "pymilvus.milvus_client"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        _quiet = True
    return pymilvus


def connect(uri: str, token: str = "", timeout: float = DEFAULT_TIMEOUT) -> Any:
    """A MilvusClient on its own connection, with keepalive every server accepts.

    Dedicated: pymilvus otherwise shares one connection per address, made with the options of
    whichever client came first (its defaults, for another library's client), so ours would
    not apply."""
    return _pymilvus().MilvusClient(uri=uri, token=token, timeout=timeout, dedicated=True,
                                    grpc_options=dict(GRPC_OPTIONS))


def _is_released(exc: BaseException) -> bool:
    """Milvus's answer for a collection that exists but is not loaded (code 101)."""
    text = str(exc).lower()
    return getattr(exc, "code", None) == 101 or "state 'released'" in text \
        or "not loaded" in text


def _is_unreachable(exc: BaseException) -> bool:
    """Did the call fail because the server could not be reached (vs. refusing the request)?"""
    pm = _pymilvus()
    try:
        import grpc
    except ImportError:  # pragma: no cover
        grpc = None
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (pm.exceptions.MilvusUnavailableException, ConnectionError,
                            TimeoutError)):
            return True
        if grpc is not None and isinstance(exc, grpc.RpcError):
            code = exc.code() if callable(getattr(exc, "code", None)) else None
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return True
        if isinstance(exc, pm.MilvusException):
            text = str(getattr(exc, "message", "") or exc).lower()
            if exc.code == 2 or any(s in text for s in (
                "server unavailable", "service unavailable", "fail connecting", "retry timeout",
                "deadline exceeded", "connection refused", "not connected",
            )):
                return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def _reason(exc: BaseException) -> str:
    pm = _pymilvus()
    if isinstance(exc, pm.MilvusException):
        msg = str(getattr(exc, "message", "") or exc)
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(msg.split())[:200]


class MilvusStore:
    """Vectors in one Milvus collection. Thread-safe: pymilvus clients are."""

    def __init__(
        self,
        uri: str,
        collection: str,
        *,
        dim: int,
        fingerprint: str,
        library_id: str | None = None,
        address: str | None = None,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        consistency: str = "Strong",
        readonly: bool = False,
    ) -> None:
        if consistency not in CONSISTENCY:
            raise ConfigError(f"consistency must be one of {', '.join(CONSISTENCY)}")
        self.uri = uri
        self.collection = collection
        self.dim = int(dim)
        self.fingerprint = fingerprint
        self.library_id = library_id
        self.address = address or uri
        self.timeout = float(timeout)
        self.consistency = consistency
        self.readonly = readonly  # a searcher that must not change a shared collection
        self.dirty = False
        self._client = self._call(lambda: connect(uri, token or "", self.timeout))
        try:
            self._open_or_create()
        except BaseException:
            self._client.close()
            raise

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        dim: int,
        fingerprint: str,
        folder: Path | None = None,
        readonly: bool = False,
    ) -> MilvusStore:
        """``milvus://HOST:PORT/COLLECTION``; `folder` (the library's model folder) keeps the
        library's id so that no other library can take over this collection. `readonly`: never
        write to the server (searchers of a shared library; the indexer keeps it complete)."""
        host, port, base, options = parse_url(url)
        library_id = _library_id(folder, url, create=not readonly) if folder is not None else None
        env = os.environ.get("MAGPIE_MILVUS_CONSISTENCY")
        if env:
            options["consistency"] = _consistency(env)
        scheme = "https" if options.get("tls") else "http"
        return cls(
            f"{scheme}://{host}:{port}",
            collection_name(base, fingerprint),
            dim=dim,
            fingerprint=fingerprint,
            library_id=library_id,
            address=f"{host}:{port}",
            token=os.environ.get("MAGPIE_MILVUS_TOKEN") or None,
            timeout=float(options.get("timeout", DEFAULT_TIMEOUT)),
            consistency=options.get("consistency", "Strong"),
            readonly=readonly,
        )

    def _open_or_create(self) -> None:
        c = self._client
        if self._call(lambda: c.has_collection(self.collection, timeout=self.timeout)):
            self._check_identity()
        elif self.readonly:
            raise StoreUnavailable(
                f"Milvus at {self.address} has no collection {self.collection} for this "
                "library yet; run `magpie index` first"
            )
        else:
            self._create()
        self._call(lambda: c.load_collection(self.collection, timeout=self.timeout))

    def _properties(self) -> dict[str, str]:
        props = {PROP_FINGERPRINT: self.fingerprint, PROP_DIM: str(self.dim), PROP_FORMAT: FORMAT}
        if self.library_id:
            props[PROP_LIBRARY] = self.library_id
        return props

    def _create(self) -> None:
        pm = _pymilvus()
        DataType = pm.DataType
        schema = pm.MilvusClient.create_schema(
            auto_id=False,
            enable_dynamic_field=False,
            description=f"Magpie vectors, model {self.fingerprint}",
        )
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("file_id", DataType.INT64)
        schema.add_field("kind", DataType.VARCHAR, max_length=KIND_MAX)
        schema.add_field("path", DataType.VARCHAR, max_length=PATH_MAX)
        schema.add_field("taken_at", DataType.DOUBLE)
        schema.add_field("folders", DataType.ARRAY, element_type=DataType.INT64,
                         max_capacity=FOLDERS_MAX)
        index = self._client.prepare_index_params()
        # The same graph parameters as the embedded hnswlib store (see vectors.py): M=16 keeps
        # the graph at ~128 bytes per vector next to its 2 KiB of floats; efConstruction=200
        # buys recall@10 >= 0.98 at ef=96 in bench/query_latency.py and bench/milvus_vs_hnsw.py.
        index.add_index(field_name="vector", index_type="HNSW", metric_type="COSINE",
                        params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION})
        c = self._client
        # A whole number of seconds: pymilvus waits for the index to be built polling twice a
        # second and ends that wait only for an int timeout (`isinstance(timeout, int)`), so
        # with a float one a cluster whose index nodes are down held `magpie index` for ever.
        whole_seconds = max(1, math.ceil(self.timeout))
        self._call(lambda: c.create_collection(
            self.collection, schema=schema, index_params=index,
            consistency_level=self.consistency, properties=self._properties(),
            timeout=whole_seconds,
        ))
        # Filter acceleration on a cluster. Optional: a server without scalar indexes on some
        # type (milvus-lite has none on ARRAY) filters by scanning, with the same answers.
        for field in ("kind", "taken_at", "folders"):
            params = c.prepare_index_params()
            params.add_index(field_name=field, index_type="INVERTED",
                             index_name=f"{field}_inverted")
            try:
                self._call(partial(c.create_index, self.collection, params, sync=False,
                                   timeout=self.timeout))
            except StoreUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - an optional index the server refuses
                logging.getLogger(__name__).info("no %s index on %s: %s", field,
                                                 self.collection, exc)

    def _check_identity(self) -> None:
        c = self._client
        info = self._call(lambda: c.describe_collection(self.collection, timeout=self.timeout))
        props = {str(k): str(v) for k, v in (info.get("properties") or {}).items()}
        where = f"Milvus collection {self.collection} at {self.address}"
        theirs = props.get(PROP_FINGERPRINT)
        if theirs is None:
            raise StoreMismatch(
                f"{where} was not made by Magpie (it has no model fingerprint); "
                "choose another COLLECTION name in --vector-store"
            )
        if theirs != self.fingerprint or props.get(PROP_DIM) != str(self.dim):
            raise StoreMismatch(
                f"{where} holds vectors of model {theirs} ({props.get(PROP_DIM)}-d), "
                f"not {self.fingerprint} ({self.dim}-d); vectors of different models are "
                "never mixed"
            )
        owner = props.get(PROP_LIBRARY)
        if self.library_id and owner and owner != self.library_id:
            raise StoreMismatch(
                f"{where} belongs to another Magpie library (id {owner}, this one is "
                f"{self.library_id}); give this library its own COLLECTION name in "
                "--vector-store"
            )

    # -- error handling ---------------------------------------------------------------------
    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (StoreUnavailable, StoreMismatch):
            raise
        except Exception as exc:
            if _is_released(exc):
                # A restarted server (milvus-lite, a standalone) comes back with collections
                # released: load it again and retry once, as the open did, so a searcher that
                # outlives a restart keeps working instead of failing every search.
                return self._reload_then(fn)
            if _is_unreachable(exc):
                raise StoreUnavailable(
                    f"cannot reach Milvus at {self.address}: {_reason(exc)}; your progress is "
                    "saved, run `magpie index` again when it is back"
                ) from exc
            raise

    def _reload_then(self, fn: Callable[[], T]) -> T:
        try:
            self._client.load_collection(self.collection, timeout=self.timeout)
            return fn()
        except (StoreUnavailable, StoreMismatch):
            raise
        except Exception as exc:
            if _is_unreachable(exc) or _is_released(exc):
                raise StoreUnavailable(
                    f"cannot reach Milvus at {self.address}: {_reason(exc)}; your progress is "
                    "saved, run `magpie index` again when it is back"
                ) from exc
            raise

    # -- writes -----------------------------------------------------------------------------
    def add(self, ids: ChunkIds, vectors: np.ndarray, meta: list[VectorMeta]) -> None:
        """Upsert: a chunk id already present is replaced, never duplicated."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) == 0 or self.readonly:
            return
        vecs = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1)
        if vecs.shape[1] != self.dim:
            raise ValueError(f"vectors are {vecs.shape[1]}-d, this store holds {self.dim}-d")
        if meta is None or len(meta) != len(ids):
            # Filters run on the server, so a vector without its attributes could never be
            # found by a filtered search: refuse loudly (a caller bug, not a user error).
            raise TypeError(
                f"MilvusStore.add needs one VectorMeta per id ({len(ids)} ids, "
                f"{0 if meta is None else len(meta)} meta); see indexer.stores.vector_meta"
            )
        c = self._client
        for start in range(0, len(ids), WRITE_BATCH):
            rows = [
                {
                    "id": int(i),
                    "vector": v.tolist(),
                    "file_id": int(m.file_id),
                    "kind": m.kind[:KIND_MAX],
                    "path": m.path[:PATH_MAX // 4],
                    "taken_at": float(m.taken_at or 0.0),
                    "folders": folder_keys(m.path),
                }
                for i, v, m in zip(ids[start : start + WRITE_BATCH],
                                   vecs[start : start + WRITE_BATCH],
                                   meta[start : start + WRITE_BATCH], strict=True)
            ]
            self._call(partial(c.upsert, self.collection, rows, timeout=self.timeout))
            self.dirty = True

    def delete(self, ids: ChunkIds) -> None:
        if self.readonly:
            return
        ids = [int(i) for i in np.asarray(ids, dtype=np.int64).reshape(-1)]
        c = self._client
        for start in range(0, len(ids), DELETE_BATCH):
            part = ids[start : start + DELETE_BATCH]
            self._call(partial(c.delete, self.collection, ids=part, timeout=self.timeout))
            self.dirty = True

    def flush(self) -> None:
        """Seal what was written into persistent segments. (Each acknowledged write is already
        in the server's write-ahead log; flush makes it part of the stored, indexed data.)"""
        if not self.dirty:
            return
        c = self._client
        self._call(lambda: c.flush(self.collection, timeout=self.timeout))
        self.dirty = False

    def close(self) -> None:
        """Flush and disconnect. An unreachable server is not an error here: what it
        acknowledged is in its log, and `Library.reconcile()` re-sends the rest next time."""
        try:
            self.flush()
        except StoreUnavailable:
            pass
        finally:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - closing a dead channel
                pass

    # -- reads ------------------------------------------------------------------------------
    def count(self) -> int:
        c = self._client
        rows = self._call(lambda: c.query(
            self.collection, filter="", output_fields=["count(*)"],
            consistency_level="Strong", timeout=self.timeout,
        ))
        return int(rows[0]["count(*)"]) if rows else 0

    def ids(self) -> np.ndarray:
        """Every id in the collection (for reconcile), window by window of the primary key."""
        parts = list(self._iter_ids())
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)

    def _ids_where(self, expr: str, limit: int) -> np.ndarray:
        c = self._client
        rows = self._call(lambda: c.query(
            self.collection, filter=expr, output_fields=["id"], limit=limit,
            consistency_level="Strong", timeout=self.timeout,
        ))
        return np.fromiter((r["id"] for r in rows), dtype=np.int64, count=len(rows))

    def _iter_ids(self) -> Iterator[np.ndarray]:
        """Plain range queries, each with this store's deadline. (pymilvus's query_iterator
        makes its first call, describe_collection, with no deadline at all: a server that
        stops answering held `Library.open()` for ever, and UNAVAILABLE was retried 75 times
        with a reconnect each.) A window of width w holds at most w ids, so while w <= one
        query's limit nothing is cut off; sparse stretches double the width, a full wide
        window is asked again narrower, and an empty one checks whether any id lies beyond."""
        if len(self._ids_where("id < 1", 1)):  # Magpie writes SQLite's ids (>= 1) only
            lo = -INT64_MAX - 1
        else:
            lo = 1
        width = ID_PAGE
        while lo <= INT64_MAX:
            hi = min(lo + width, INT64_MAX)  # the last window: id <= INT64_MAX
            last = hi == INT64_MAX
            page = self._ids_where(f"id >= {lo} and id {'<=' if last else '<'} {hi}", MAX_TOPK)
            if len(page) >= MAX_TOPK and width > ID_PAGE:
                width = max(ID_PAGE, width // 4)  # maybe cut off: the same window, narrower
                continue
            if len(page):
                yield page
            if last:
                return
            lo = hi
            if not len(page) and not len(self._ids_where(f"id >= {lo}", 1)):
                return
            if len(page) < MAX_TOPK // 4:
                width = min(width * 2, 1 << 62)

    def knn(
        self, query: np.ndarray, k: int, flt: FileFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar vectors that pass the filter, pushed down as an expression, so a
        selective filter still yields k results when enough vectors match."""
        if k <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        k = min(int(k), MAX_TOPK)
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        expr = filter_expr(flt)
        ef = max(FILTERED_EF if expr else HNSW_EF_SEARCH, k)
        c = self._client
        hits = self._call(lambda: c.search(
            self.collection,
            data=[q.tolist()],
            anns_field="vector",
            limit=k,
            filter=expr,
            output_fields=["file_id"],
            search_params={"metric_type": "COSINE", "params": {"ef": ef}},
            consistency_level=self.consistency,
            timeout=self.timeout,
        ))
        row = hits[0] if hits else []
        ids = np.fromiter((h["id"] for h in row), dtype=np.int64, count=len(row))
        scores = np.fromiter((h["distance"] for h in row), dtype=np.float32, count=len(row))
        order = np.argsort(-scores, kind="stable")
        return ids[order], scores[order]

    def drop(self) -> None:
        """Delete the collection (tests, and `magpie` commands that retire a migration)."""
        c = self._client
        self._call(lambda: c.drop_collection(self.collection, timeout=self.timeout))


# -- URL and naming ---------------------------------------------------------------------------
def parse_url(url: str) -> tuple[str, int, str, dict[str, str]]:
    """(host, port, collection, options) from ``milvus://HOST:PORT/COLLECTION?k=v``."""
    parts = urlsplit(url)
    if parts.scheme != "milvus" or not parts.hostname or not parts.path.strip("/"):
        raise ConfigError(f"bad vector store URL {url!r}; expected milvus://HOST:PORT/COLLECTION")
    try:
        port = parts.port or 19530
    except ValueError:
        raise ConfigError(f"bad port in vector store URL {url!r}") from None
    base = parts.path.strip("/")
    if not _NAME.fullmatch(base):
        raise ConfigError(
            f"bad collection name {base!r} in {url!r}: use letters, digits and _ "
            "(starting with a letter or _), at most 200 characters"
        )
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(options) - {"consistency", "timeout", "tls"}
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))} in {url!r}; "
                         "known: consistency, timeout, tls")
    if "consistency" in options:
        options["consistency"] = _consistency(options["consistency"])
    if "tls" in options:
        if options["tls"] not in ("0", "1"):
            raise ConfigError(f"tls must be 0 or 1 in {url!r}")
        if options["tls"] == "0":
            del options["tls"]
    if "timeout" in options:
        try:
            if float(options["timeout"]) <= 0:
                raise ValueError  # caught below
        except ValueError:
            raise ConfigError(f"timeout must be a positive number of seconds in {url!r}") from None
    return parts.hostname, port, base, options


def _consistency(text: str) -> str:
    level = text.strip().capitalize()
    if level not in CONSISTENCY:
        raise ConfigError(f"Milvus consistency must be one of {', '.join(CONSISTENCY)}, "
                         f"not {text!r}")
    return level


def collection_name(base: str, fingerprint: str) -> str:
    """One collection per library and model: COLLECTION_<fingerprint>."""
    return f"{base}_{''.join(ch for ch in fingerprint if ch.isalnum())}"


def _library_id(folder: Path, url: str, *, create: bool = True) -> str | None:
    """This library's id for its Milvus collection, made once and kept beside its catalogue."""
    path = Path(folder) / SIDECAR
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("library_id"), str):
            return data["library_id"]
    except (OSError, ValueError):
        pass
    if not create:
        return None
    lid = uuid.uuid4().hex
    Path(folder).mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps({"library_id": lid, "url": url}, indent=2).encode())
    return lid
