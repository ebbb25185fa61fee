"""The catalogue in a PostgreSQL server: one library shared by one indexer and many searchers.

URL: ``postgresql://USER@HOST:PORT/DATABASE?schema=NAME`` (other query options, e.g.
``sslmode=require``, go to libpq as they are). A password never goes in the URL (the URL is
written into the library's pointer file): libpq reads ``PGPASSWORD`` or ``~/.pgpass``.

One schema per library and model: ``NAME_<fingerprint>``, so a migration to another model fills
a second schema beside the first while the first keeps answering; the schema's `meta` table
records the fingerprint, and `Library` refuses a catalogue made by another model exactly as it
does for SQLite.

Who writes: exactly one indexer. Its dedicated connection holds a session advisory lock on the
schema for as long as it is open; a second indexer is refused. Every other connection (the
indexer's own readers and every searcher) comes from a pool of connections opened with
``default_transaction_read_only=on``, so a searcher cannot write even when its role could (and
docs/scaling.md gives searchers a role that can only SELECT).

Change journal: a statement trigger on `chunks` appends (seq, chunk id, added?) to
`chunk_journal` for every insert and delete, cascades included. `changes_since(seq)` reads only
what changed after an acknowledged point, so `Library.reconcile()` brings the vector store up to
date without listing every id (minutes at 100M ids).

Keyword search is PostgreSQL's own full-text search over the same three fields as SQLite's
FTS5 table (name weight A, folder B, note text C; ranked by ts_rank with weights 1.0 : 0.4 :
0.2, the 5 : 2 : 1 of SQLite's bm25 weights), with the `simple` configuration (no stemming,
like FTS5's unicode61). Where pg_trgm is installed, a query word that is only part of a file
name ("harb" in "red_harbour_boats") still finds it, ranked after every whole-word match.

Every failure to reach the server becomes `CatalogueUnavailable` with one line that says what
to do; a batch is one transaction, so a server that dies mid-batch loses that batch only, and
the next `magpie index` redoes it.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from indexer.catalogue import (
    ChunkHit,
    FileFilter,
    FileRow,
    LibraryTooNew,
    NewChunk,
    VectorMeta,
    blob_to_vector,
    display_path,
    filter_sql,
    name_terms,
    raw_path,
    vector_to_blob,
)
from indexer.errors import CatalogueUnavailable, ConfigError, LibraryError

SCHEMA_VERSION = 1
POOL_MAX = 4  # per process: 16 searcher processes hold at most 64 connections
CONNECT_TIMEOUT_S = 10
BODY_MAX = 200_000  # characters of note text indexed (a tsvector holds at most 1 MB)
RANK_WEIGHTS = "{0.0, 0.2, 0.4, 1.0}"  # D, C (text), B (folder), A (name)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")
_WORD = re.compile(r'"([^"]*)"')

T = TypeVar("T")
# The pool logs each failed reconnection as a warning; the one message a person reads is
# CatalogueUnavailable's, so the pool's own stay out of the terminal.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

_TABLES = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE version(id INT PRIMARY KEY, v BIGINT NOT NULL);
INSERT INTO version VALUES (1, 0);
CREATE TABLE roots(
    id BIGSERIAL PRIMARY KEY,
    path TEXT COLLATE "C" NOT NULL UNIQUE,
    added_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE files(
    id BIGSERIAL PRIMARY KEY,
    root_id BIGINT NOT NULL REFERENCES roots(id) ON DELETE CASCADE,
    path TEXT COLLATE "C" NOT NULL,
    path_raw BYTEA NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    content_hash TEXT,
    state TEXT NOT NULL,
    error TEXT,
    taken_at DOUBLE PRECISION,
    indexed_at DOUBLE PRECISION
);
CREATE INDEX files_hash ON files(content_hash);
CREATE INDEX files_root ON files(root_id);
CREATE INDEX files_path ON files(path, state);
CREATE INDEX files_taken ON files(taken_at, state);
CREATE INDEX files_state ON files(state, kind);
CREATE TABLE chunks(
    id BIGSERIAL PRIMARY KEY,
    file_id BIGINT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    ordinal INT NOT NULL,
    text TEXT,
    vector BYTEA NOT NULL
);
CREATE INDEX chunks_file ON chunks(file_id);
ALTER TABLE chunks ALTER COLUMN vector SET STORAGE EXTERNAL;  -- float32 does not compress
CREATE TABLE scan_errors(
    id BIGSERIAL PRIMARY KEY,
    root_id BIGINT NOT NULL REFERENCES roots(id) ON DELETE CASCADE,
    path TEXT COLLATE "C" NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE fts(
    file_id BIGINT PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    folder TEXT NOT NULL,
    body TEXT NOT NULL,
    tsv TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', name), 'A') ||
        setweight(to_tsvector('simple', folder), 'B') ||
        setweight(to_tsvector('simple', body), 'C')) STORED
);
CREATE INDEX fts_tsv ON fts USING GIN (tsv);
CREATE TABLE chunk_journal(
    seq BIGSERIAL PRIMARY KEY,
    chunk_id BIGINT NOT NULL,
    added BOOLEAN NOT NULL
);
CREATE FUNCTION journal_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO chunk_journal(chunk_id, added) SELECT id, true FROM new_rows ORDER BY id;
    RETURN NULL;
END $$;
CREATE FUNCTION journal_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO chunk_journal(chunk_id, added) SELECT id, false FROM old_rows ORDER BY id;
    RETURN NULL;
END $$;
CREATE TRIGGER chunks_added AFTER INSERT ON chunks REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION journal_added();
CREATE TRIGGER chunks_deleted AFTER DELETE ON chunks REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION journal_deleted();
"""

_FILE_COLS = ("id, root_id, path, path_raw, kind, size, mtime_ns, content_hash, state, error, "
              "taken_at")


def _psycopg():
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:
        raise ConfigError(
            f"a postgresql:// catalogue needs PostgreSQL support ({exc}); install it with "
            "pip install 'magpie[postgres]'"
        ) from None
    return psycopg, psycopg_pool


def parse_url(url: str) -> tuple[str, str, str]:
    """(libpq conninfo URL without `schema`, schema base name, host:port for messages)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"not a PostgreSQL URL: {url!r}; use postgresql://USER@HOST:PORT/DB")
    if parts.password:
        raise ConfigError("put the PostgreSQL password in PGPASSWORD or ~/.pgpass, not in the "
                          "catalogue URL (the URL is written into the library folder)")
    if not parts.hostname or not parts.path.strip("/"):
        raise ConfigError(f"the catalogue URL {url!r} needs a host and a database: "
                          "postgresql://USER@HOST:PORT/DB")
    query = parse_qsl(parts.query)
    base = dict(query).get("schema", "magpie")
    if not _NAME.fullmatch(base):
        raise ConfigError(f"schema must be letters, digits and _ (at most 41), not {base!r}")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))
    return conninfo, base, f"{parts.hostname}:{parts.port or 5432}"


def schema_name(base: str, fingerprint: str) -> str:
    return f"{base}_{''.join(ch for ch in fingerprint if ch.isalnum())}".lower()


class PgCatalogue:
    """A catalogue in one PostgreSQL schema. Thread-safe: reads take a pooled connection each,
    writes go through the one writer connection under a lock."""

    def __init__(self, url: str, fingerprint: str, *, readonly: bool = False,
                 create: bool = True) -> None:
        psycopg, psycopg_pool = _psycopg()
        self._errors = (psycopg.OperationalError, psycopg_pool.PoolTimeout,
                        psycopg.errors.AdminShutdown)
        self.url = url
        self.readonly = readonly
        conninfo, base, self.address = parse_url(url)
        self.schema = schema_name(base, fingerprint)
        self.path = Path(f"{self.address}/{self.schema}")  # for messages, like SQLite's path
        self._wlock = threading.Lock()
        self._writer = None
        self._version_cache: tuple[int, dict[str, int]] | None = None
        options = f"-c search_path={self.schema} -c default_transaction_read_only=on"
        try:
            if not readonly:
                self._writer = psycopg.connect(conninfo, autocommit=True,
                                               connect_timeout=CONNECT_TIMEOUT_S,
                                               options=f"-c search_path={self.schema}")
                self._take_writer_lock()
                self._migrate(create)
            self._pool = psycopg_pool.ConnectionPool(
                conninfo, min_size=1, max_size=POOL_MAX, open=False, timeout=CONNECT_TIMEOUT_S,
                kwargs={"autocommit": True, "options": options,
                        "connect_timeout": CONNECT_TIMEOUT_S},
                name=f"magpie-{self.schema}")
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
            if readonly:
                self._check_exists()
        except self._errors as exc:
            self._close_quietly()
            raise self._unavailable(exc) from None
        except BaseException:
            self._close_quietly()
            raise
        self.trigram = self._has_trigram()

    # -- connections ----------------------------------------------------------------------
    def _unavailable(self, exc: BaseException) -> CatalogueUnavailable:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return CatalogueUnavailable(
            f"cannot reach the catalogue's PostgreSQL server at {self.address} ({first}); "
            "start the server or check the catalogue URL, then run the same command again "
            "(every batch committed before this point is kept)")

    def _read(self, fn: Callable[[Any], T]) -> T:
        """fn(cursor) on a pooled read connection; one retry on a fresh connection, so a
        server restart between two searches costs a searcher nothing."""
        for attempt in (0, 1):
            try:
                with self._pool.connection() as conn:
                    return fn(conn.cursor())
            except self._errors as exc:
                if attempt:
                    raise self._unavailable(exc) from None
                self._pool.check()
        raise AssertionError("unreachable")

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        return self._read(lambda cur: cur.execute(sql, args).fetchall())

    def _one(self, sql: str, args: Sequence[Any] = ()) -> tuple | None:
        return self._read(lambda cur: cur.execute(sql, args).fetchone())

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """One transaction on the writer connection; it moves `data_version` too."""
        if self._writer is None:
            raise LibraryError(f"the catalogue {self.path} was opened read-only")
        with self._wlock:
            try:
                with self._writer.transaction():
                    cur = self._writer.cursor()
                    yield cur
                    cur.execute("UPDATE version SET v = v + 1 WHERE id = 1")
            except self._errors as exc:
                raise self._unavailable(exc) from None

    def _take_writer_lock(self) -> None:
        got = self._writer.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                                   [self.schema]).fetchone()[0]
        if not got:
            raise LibraryError(
                f"another indexer is writing the catalogue {self.schema} at {self.address}; "
                "a shared library has one indexer at a time (searchers are not affected): "
                "wait for it to finish, or search instead")

    def _migrate(self, create: bool) -> None:
        w = self._writer
        exists = w.execute("SELECT 1 FROM pg_namespace WHERE nspname=%s",
                           [self.schema]).fetchone()
        if exists:
            row = w.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise LibraryTooNew(
                    f"{self.path} was written by a newer Magpie (schema {version}, this build "
                    f"understands up to {SCHEMA_VERSION}); update Magpie to open it")
            may_write = w.execute("SELECT has_table_privilege('chunks', 'INSERT') AND "
                                  "has_table_privilege('files', 'UPDATE')").fetchone()[0]
            if not may_write:
                raise LibraryError(
                    f"the PostgreSQL role {w.info.user!r} has no permission to write the "
                    f"catalogue {self.schema} (a searcher's role); index with the indexer's "
                    "role, or search with this one")
            return
        if not create:
            raise LibraryError(f"PostgreSQL at {self.address} has no catalogue {self.schema} "
                               "for this library; run `magpie index` first")
        with w.transaction():
            w.execute(f'CREATE SCHEMA "{self.schema}"')
            w.execute(_TABLES)
            w.execute("INSERT INTO meta VALUES ('schema_version', %s)", [str(SCHEMA_VERSION)])
            try:
                with w.transaction():  # a savepoint: the extension is optional
                    w.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
            except Exception:  # noqa: BLE001 - not installed, or no right to create it
                pass
            if self._trigram_available(w):
                w.execute("CREATE INDEX fts_name_trgm ON fts USING GIN "
                          "(name public.gin_trgm_ops)")

    @staticmethod
    def _trigram_available(conn) -> bool:
        return conn.execute("SELECT 1 FROM pg_extension WHERE extname='pg_trgm'").fetchone() \
            is not None

    def _has_trigram(self) -> bool:
        return self._one("SELECT 1 FROM pg_indexes WHERE schemaname=%s AND "
                         "indexname='fts_name_trgm'", [self.schema]) is not None

    def _check_exists(self) -> None:
        if self._one("SELECT 1 FROM pg_namespace WHERE nspname=%s", [self.schema]) is None:
            raise LibraryError(f"PostgreSQL at {self.address} has no catalogue {self.schema} "
                               "for this library and model; run `magpie index` first")

    def _close_quietly(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - closing after a failed open
            pass

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()
        if self._writer is not None:
            try:  # at once: the server ends a closed session's backend (and lock) a bit later
                self._writer.execute("SELECT pg_advisory_unlock_all()")
            except Exception:  # noqa: BLE001 - a dead connection holds no lock anymore
                pass
            self._writer.close()
            self._writer = None

    def check_integrity(self) -> None:
        """The server checks its own pages; here: the schema answers."""
        self._one("SELECT count(*) FROM meta")

    def data_version(self) -> int:
        return int(self._one("SELECT v FROM version WHERE id=1")[0])

    # -- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key=%s", [key])
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as cur:
            cur.execute("INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
                        "SET value=excluded.value", [key, value])

    # -- roots ------------------------------------------------------------------------------
    def add_root(self, path: str) -> int:
        with self._write() as cur:
            cur.execute("INSERT INTO roots(path, added_at) VALUES (%s, %s) "
                        "ON CONFLICT (path) DO NOTHING", [path, time.time()])
            return cur.execute("SELECT id FROM roots WHERE path=%s", [path]).fetchone()[0]

    def roots(self) -> list[tuple[int, str]]:
        return [(r[0], r[1]) for r in self._rows("SELECT id, path FROM roots ORDER BY path")]

    def root_counts(self) -> dict[int, int]:
        return dict(self._rows("SELECT root_id, count(*) FROM files WHERE state='indexed' "
                               "GROUP BY root_id"))

    def root_pending_counts(self) -> dict[int, int]:
        return dict(self._rows("SELECT root_id, count(*) FROM files WHERE state='pending' "
                               "GROUP BY root_id"))

    def remove_root(self, root_id: int) -> list[int]:
        with self._write() as cur:
            ids = [r[0] for r in cur.execute(
                "SELECT c.id FROM chunks c JOIN files f ON f.id=c.file_id WHERE f.root_id=%s",
                [root_id]).fetchall()]
            cur.execute("DELETE FROM roots WHERE id=%s", [root_id])  # cascades
        return ids

    # -- files ------------------------------------------------------------------------------
    def files_under(self, root_id: int) -> dict[bytes, FileRow]:
        rows = self._rows(f"SELECT {_FILE_COLS} FROM files WHERE root_id=%s", [root_id])
        return {bytes(r[3]): _file_row(r) for r in rows}

    def files_within(self, root_id: int, paths: Sequence[str]) -> dict[bytes, FileRow]:
        out: dict[bytes, FileRow] = {}
        for path in paths:
            raw = raw_path(path)
            rows = self._rows(
                f"SELECT {_FILE_COLS} FROM files WHERE root_id=%s AND (path_raw=%s OR "
                "(path_raw>=%s AND path_raw<%s))", [root_id, raw, raw + b"/", raw + b"0"])
            out.update((bytes(r[3]), _file_row(r)) for r in rows)
        return out

    def file_by_id(self, file_id: int) -> FileRow | None:
        r = self._one(f"SELECT {_FILE_COLS} FROM files WHERE id=%s", [file_id])
        return _file_row(r) if r else None

    def indexed_file_with_hash(self, content_hash: str, exclude: int | None = None
                               ) -> FileRow | None:
        r = self._one(f"SELECT {_FILE_COLS} FROM files WHERE content_hash=%s AND "
                      "state='indexed' AND id IS DISTINCT FROM %s LIMIT 1", [content_hash, exclude])
        return _file_row(r) if r else None

    def upsert_pending(self, root_id: int, path: str, kind: str, size: int, mtime_ns: int,
                       content_hash: str | None) -> int:
        with self._write() as cur:
            return cur.execute(
                """INSERT INTO files(root_id, path, path_raw, kind, size, mtime_ns, content_hash,
                                     state)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending')
                   ON CONFLICT (path_raw) DO UPDATE SET root_id=excluded.root_id,
                       kind=excluded.kind, size=excluded.size, mtime_ns=excluded.mtime_ns,
                       content_hash=excluded.content_hash, state='pending', error=NULL
                   RETURNING id""",
                [root_id, display_path(path), raw_path(path), kind, size, mtime_ns,
                 content_hash]).fetchone()[0]

    def touch(self, file_id: int, size: int, mtime_ns: int) -> None:
        with self._write() as cur:
            cur.execute("UPDATE files SET size=%s, mtime_ns=%s WHERE id=%s",
                        [size, mtime_ns, file_id])

    def move_file(self, file_id: int, root_id: int, new_path: str, size: int,
                  mtime_ns: int) -> None:
        name, folder = _name_folder(new_path)
        with self._write() as cur:
            cur.execute("UPDATE files SET root_id=%s, path=%s, path_raw=%s, size=%s, mtime_ns=%s "
                        "WHERE id=%s", [root_id, display_path(new_path), raw_path(new_path),
                                        size, mtime_ns, file_id])
            cur.execute("UPDATE fts SET name=%s, folder=%s WHERE file_id=%s",
                        [name, folder, file_id])

    def delete_files(self, file_ids: Sequence[int]) -> list[int]:
        ids = [int(i) for i in file_ids]
        with self._write() as cur:
            chunk_ids = [r[0] for r in cur.execute(
                "SELECT c.id FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(fid, n) "
                "JOIN chunks c ON c.file_id = t.fid ORDER BY t.n, c.id", [ids]).fetchall()]
            cur.execute("DELETE FROM files WHERE id = ANY(%s)", [ids])  # cascades
        return chunk_ids

    def pending_files(self) -> list[FileRow]:
        return [_file_row(r) for r in self._rows(
            f"SELECT {_FILE_COLS} FROM files WHERE state='pending' ORDER BY id")]

    def commit_embedded(
        self,
        done: Sequence[tuple[int, list[NewChunk], float | None, str | None]],
        failed: Sequence[tuple[int, str]],
    ) -> tuple[list[int], list[int]]:
        """One transaction per batch (see Catalogue.commit_embedded)."""
        new_ids: list[int] = []
        old_ids: list[int] = []
        now = time.time()
        with self._write() as cur:
            for file_id, chunks, taken_at, body in done:
                old_ids += [r[0] for r in cur.execute(
                    "DELETE FROM chunks WHERE file_id=%s RETURNING id", [file_id]).fetchall()]
                if chunks:
                    rows = cur.execute(
                        "INSERT INTO chunks(file_id, ordinal, text, vector) "
                        "SELECT %s, o, t, v FROM unnest(%s::int[], %s::text[], %s::bytea[]) "
                        "WITH ORDINALITY AS x(o, t, v, n) ORDER BY n RETURNING id",
                        [file_id, [c.ordinal for c in chunks], [c.text for c in chunks],
                         [vector_to_blob(c.vector) for c in chunks]]).fetchall()
                    new_ids += sorted(r[0] for r in rows)
                path, _mtime_ns = cur.execute(
                    "UPDATE files SET state='indexed', error=NULL, "
                    "taken_at=COALESCE(%s, mtime_ns / 1e9), indexed_at=%s WHERE id=%s "
                    "RETURNING path, mtime_ns", [taken_at, now, file_id]).fetchone()
                name, folder = _name_folder(path)
                cur.execute(
                    "INSERT INTO fts(file_id, name, folder, body) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (file_id) DO UPDATE SET name=excluded.name, "
                    "folder=excluded.folder, body=excluded.body",
                    [file_id, name, folder, (body or "")[:BODY_MAX]])
            for file_id, reason in failed:
                old_ids += [r[0] for r in cur.execute(
                    "DELETE FROM chunks WHERE file_id=%s RETURNING id", [file_id]).fetchall()]
                cur.execute("DELETE FROM fts WHERE file_id=%s", [file_id])
                cur.execute("UPDATE files SET state='error', error=%s, indexed_at=%s WHERE id=%s",
                            [reason, now, file_id])
        return new_ids, old_ids

    def chunk_ids_of(self, file_id: int) -> list[int]:
        return [r[0] for r in self._rows(
            "SELECT id FROM chunks WHERE file_id=%s ORDER BY ordinal", [file_id])]

    def copy_chunks(self, src_file_id: int, dst_file_id: int) -> tuple[list[int], list[int]]:
        src = self.file_by_id(src_file_id)
        chunks = [NewChunk(r[0], r[1], blob_to_vector(r[2])) for r in self._rows(
            "SELECT ordinal, text, vector FROM chunks WHERE file_id=%s ORDER BY ordinal",
            [src_file_id])]
        body = self._one("SELECT body FROM fts WHERE file_id=%s", [src_file_id])
        return self.commit_embedded(
            [(dst_file_id, chunks, src.taken_at if src else None, body[0] if body else "")], [])

    # -- scan errors ------------------------------------------------------------------------
    def set_scan_errors(self, root_id: int, errors: Iterable[tuple[str, str]]) -> None:
        rows = [(root_id, p, r) for p, r in errors]
        with self._write() as cur:
            cur.execute("DELETE FROM scan_errors WHERE root_id=%s", [root_id])
            cur.executemany("INSERT INTO scan_errors(root_id, path, reason) VALUES (%s, %s, %s)",
                            rows)

    def set_scan_errors_within(self, root_id: int, paths: Sequence[str],
                               errors: Iterable[tuple[str, str]]) -> None:
        rows = [(root_id, p, r) for p, r in errors]
        with self._write() as cur:
            for path in paths:
                cur.execute("DELETE FROM scan_errors WHERE root_id=%s AND "
                            "(path=%s OR (path>=%s AND path<%s))",
                            [root_id, path, path + "/", path + "0"])
            cur.executemany("INSERT INTO scan_errors(root_id, path, reason) VALUES (%s, %s, %s)",
                            rows)

    def errors(self) -> list[tuple[str, str]]:
        rows = self._rows("SELECT path, error FROM files WHERE state='error' ORDER BY path")
        rows += self._rows("SELECT path, reason FROM scan_errors ORDER BY path")
        return [(r[0], r[1]) for r in rows]

    # -- chunks / vectors -------------------------------------------------------------------
    def chunk_ids(self) -> np.ndarray:
        return np.array([r[0] for r in self._rows("SELECT id FROM chunks")], dtype=np.int64)

    def vectors_for(self, ids: Sequence[int], dim: int) -> np.ndarray:
        found, vecs = self.stored_vectors(np.asarray(ids, dtype=np.int64), dim)
        row = {int(c): j for j, c in enumerate(found)}
        return vecs[[row[int(c)] for c in ids]].reshape(len(ids), dim)

    def stored_vectors(self, ids: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._rows("SELECT id, vector FROM chunks WHERE id = ANY(%s)",
                          [[int(i) for i in ids]])
        return _vectors(rows, dim)

    def iter_vectors(self, batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        after = -1
        while True:  # keyset pages: no server cursor held open between batches
            rows = self._rows("SELECT id, vector FROM chunks WHERE id > %s ORDER BY id LIMIT %s",
                              [after, batch])
            if not rows:
                return
            after = rows[-1][0]
            yield np.array([r[0] for r in rows], dtype=np.int64), \
                np.stack([blob_to_vector(r[1]) for r in rows])

    def vector_meta(self, chunk_ids: Sequence[int] | np.ndarray) -> list[VectorMeta]:
        ids = [int(i) for i in chunk_ids]
        found = {r[0]: VectorMeta(r[1], r[2], r[3], r[4] or 0.0) for r in self._rows(
            "SELECT c.id, f.id, f.kind, f.path, f.taken_at FROM chunks c "
            "JOIN files f ON f.id = c.file_id WHERE c.id = ANY(%s)", [ids])}
        missing = [i for i in ids if i not in found]
        if missing:
            raise RuntimeError(f"chunks {missing[:5]} are not in the catalogue")
        return [found[i] for i in ids]

    # -- change journal -------------------------------------------------------------------
    def journal_head(self) -> int:
        """The newest change's number (0: none yet)."""
        return int(self._one("SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
                             "FROM chunk_journal_seq_seq")[0])  # kept when the journal is pruned

    def changes_since(self, seq: int, limit: int = 65536
                      ) -> tuple[int, np.ndarray, np.ndarray]:
        """(up to, chunk ids added and still stored, chunk ids deleted) for the changes after
        `seq`, at most `limit` journal rows: call again from `up to` until it stops moving.
        Reads the journal's index range only, never every id."""
        rows = self._rows("SELECT seq, chunk_id, added FROM chunk_journal WHERE seq > %s "
                          "ORDER BY seq LIMIT %s", [seq, limit])
        if not rows:
            return seq, np.empty(0, np.int64), np.empty(0, np.int64)
        last: dict[int, bool] = {}
        for _s, cid, added in rows:
            last[cid] = added  # the newest word on each id wins
        added_ids = [c for c, a in last.items() if a]
        stored = {r[0] for r in self._rows("SELECT id FROM chunks WHERE id = ANY(%s)",
                                           [added_ids])} if added_ids else set()
        gone = [c for c, a in last.items() if not a or c not in stored]
        return (int(rows[-1][0]), np.array(sorted(stored), np.int64),
                np.array(sorted(gone), np.int64))

    def prune_journal(self, upto: int) -> None:
        """Forget changes every consumer has acknowledged (the indexer's store is the only one:
        searchers read the shared vector store and need no journal)."""
        with self._write() as cur:
            cur.execute("DELETE FROM chunk_journal WHERE seq <= %s", [upto])

    # -- search ---------------------------------------------------------------------------
    def chunk_hits(self, chunk_ids: Sequence[int]) -> dict[int, ChunkHit]:
        rows = self._rows(
            "SELECT c.id, c.file_id, f.path, f.kind, c.text, f.taken_at, f.root_id, f.path_raw "
            "FROM chunks c JOIN files f ON f.id=c.file_id "
            "WHERE c.id = ANY(%s) AND f.state='indexed'", [[int(i) for i in chunk_ids]])
        return {r[0]: ChunkHit(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bytes(r[7]))
                for r in rows}

    def chunk_ids_matching(self, flt: FileFilter, among: np.ndarray | None = None) -> np.ndarray:
        where, args = filter_sql(flt, "%s")  # psycopg's placeholder
        if among is None:
            rows = self._rows(f"SELECT c.id FROM chunks c JOIN files f ON f.id=c.file_id "
                              f"WHERE {where}", args)
        else:
            rows = self._rows(f"SELECT c.id FROM chunks c JOIN files f ON f.id=c.file_id "
                              f"WHERE c.id = ANY(%s) AND {where}",
                              [[int(i) for i in among], *args])
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def keyword_search(self, fts_query: str, flt: FileFilter, limit: int
                       ) -> list[tuple[int, float, str]]:
        """ts_rank over name, folder and note text; `fts_query` is keyword_query's form."""
        words = _WORD.findall(fts_query)
        if not words:
            return []
        join = " && " if " AND " in fts_query else " || "
        tsq = join.join(["phraseto_tsquery('simple', %s)"] * len(words))
        where, args = filter_sql(flt, "%s")  # psycopg's placeholder

        def run(cur) -> list[tuple[int, float, str]]:
            # snippets only for the rows returned: ranked in the inner query, headlined outside
            hits = cur.execute(
                "SELECT h.file_id, h.rank, ts_headline('simple', fts.body, h.q, "
                "'StartSel=\"\", StopSel=\"\", MaxWords=16, MinWords=4, ShortWord=1, "
                "MaxFragments=1, FragmentDelimiter=…') "
                f"FROM (SELECT fts.file_id, ts_rank('{RANK_WEIGHTS}', fts.tsv, qq.q) AS rank, "
                f"qq.q FROM fts JOIN files f ON f.id = fts.file_id, (SELECT {tsq} AS q) AS qq "
                f"WHERE fts.tsv @@ qq.q AND {where} ORDER BY rank DESC, fts.file_id LIMIT %s) h "
                "JOIN fts ON fts.file_id = h.file_id ORDER BY h.rank DESC, h.file_id",
                [*words, *args, limit]).fetchall()
            out = [(r[0], float(r[1]), r[2] or "") for r in hits]
            parts = [w for w in words if len(w) >= 3]
            if len(out) < limit and self.trigram and parts and join == " || ":
                seen = [r[0] for r in out]
                likes = " OR ".join(["fts.name ILIKE %s"] * len(parts))
                extra = cur.execute(
                    f"SELECT fts.file_id, max(public.word_similarity(w, fts.name)) "
                    f"FROM fts JOIN files f ON f.id = fts.file_id, unnest(%s::text[]) AS w "
                    f"WHERE ({likes}) AND NOT fts.file_id = ANY(%s) AND {where} "
                    f"GROUP BY fts.file_id ORDER BY 2 DESC, 1 LIMIT %s",
                    [parts, *[f"%{_like(w)}%" for w in parts], seen, *args,
                     limit - len(out)]).fetchall()
                floor = min((r[1] for r in out), default=1.0)
                out += [(r[0], floor * 0.01 * float(r[1]), "") for r in extra]
            return out

        return self._read(run)

    def keyword_evidence(self, words: Sequence[str], ids: Sequence[int], near: int
                         ) -> dict[int, int]:
        """The levels of Catalogue.keyword_evidence: 4 phrase in the name, 3 phrase in one
        field, 2 all words within `near` tokens in one field, 1 all words, 0 some."""
        if not words or not ids:
            return {}
        out = {int(i): 0 for i in ids}
        phrase = " ".join(words)
        all_q = " && ".join(["phraseto_tsquery('simple', %s)"] * len(words))

        def run(cur) -> None:
            rows = cur.execute(
                "WITH p AS (SELECT phraseto_tsquery('simple', %s) AS q) "
                "SELECT fts.file_id, "
                "  to_tsvector('simple', fts.name) @@ p.q, "
                "  to_tsvector('simple', fts.folder) @@ p.q OR "
                "  to_tsvector('simple', fts.body) @@ p.q, "
                f"  fts.tsv @@ ({all_q}) "
                "FROM fts, p WHERE fts.file_id = ANY(%s)",
                [phrase, *words, list(out)]).fetchall()
            maybe_near = []
            for fid, in_name, elsewhere, every in rows:
                if in_name:
                    out[fid] = 4
                elif elsewhere:
                    out[fid] = 3
                elif every:
                    out[fid] = 1
                    if len(words) > 1:
                        maybe_near.append(fid)
            if not maybe_near:
                return
            positions = cur.execute(
                "SELECT fts.file_id, col, lex.lexeme, lex.positions FROM fts, "
                "LATERAL (VALUES (1, fts.name), (2, fts.folder), (3, fts.body)) AS c(col, txt), "
                "LATERAL unnest(to_tsvector('simple', c.txt)) AS lex "
                "WHERE fts.file_id = ANY(%s) AND lex.lexeme = ANY(%s)",
                [maybe_near, list(words)]).fetchall()
            found: dict[tuple[int, int], dict[str, list[int]]] = {}
            for fid, col, lexeme, pos in positions:
                found.setdefault((fid, col), {})[lexeme] = list(pos)
            for (fid, _col), by_word in found.items():
                if out[fid] < 2 and _within(by_word, list(words), near):
                    out[fid] = 2

        self._read(run)
        return out

    def files_by_ids(self, ids: Sequence[int]) -> dict[int, FileRow]:
        rows = self._rows(f"SELECT {_FILE_COLS} FROM files WHERE id = ANY(%s)",
                          [[int(i) for i in ids]])
        return {r[0]: _file_row(r) for r in rows}

    def file_id_for_path(self, path: str) -> int | None:
        r = self._one("SELECT id FROM files WHERE path_raw=%s AND state='indexed'",
                      [raw_path(path)])
        return r[0] if r else None

    def file_vector(self, file_id: int) -> np.ndarray | None:
        vecs = [blob_to_vector(r[0]) for r in self._rows(
            "SELECT vector FROM chunks WHERE file_id=%s", [file_id])]
        if not vecs:
            return None
        v = np.mean(vecs, axis=0)
        return (v / (np.linalg.norm(v) + 1e-12)).astype(np.float32)

    def sample_vectors(self, n: int, seed: int = 0, kind: str | None = None) -> np.ndarray:
        """Up to n chunk vectors picked at random by id: one round trip of index probes."""
        join = "JOIN files f ON f.id = c.file_id AND f.kind = %s" if kind else ""
        args: list = [kind] if kind else []

        def run(cur) -> np.ndarray:
            lo, hi = cur.execute(f"SELECT min(c.id), max(c.id) FROM chunks c {join}",
                                 args).fetchone()
            if lo is None:
                return np.empty((0, 0), np.float32)
            few = cur.execute(f"SELECT count(*) FROM (SELECT 1 FROM chunks c {join} "
                              "LIMIT %s) t", [*args, n + 1]).fetchone()[0]
            if few <= n:
                return np.stack([blob_to_vector(r[0]) for r in cur.execute(
                    f"SELECT c.vector FROM chunks c {join}", args).fetchall()])
            targets = np.random.default_rng(seed).integers(lo, hi + 1, size=n * 2).tolist()
            rows = cur.execute(
                "SELECT x.id, x.vector FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(v, k) "
                f"CROSS JOIN LATERAL (SELECT c.id, c.vector FROM chunks c {join} "
                "WHERE c.id >= t.v ORDER BY c.id LIMIT 1) x ORDER BY t.k",
                [targets, *args]).fetchall()
            picks: dict[int, np.ndarray] = {}
            for cid, blob in rows:
                picks.setdefault(cid, blob_to_vector(blob))
                if len(picks) >= n:
                    break
            return np.stack(list(picks.values()))

        return self._read(run)

    # -- counts -----------------------------------------------------------------------------
    def count_files(self, flt: FileFilter) -> int:
        where, args = filter_sql(flt, "%s")  # psycopg's placeholder
        return int(self._one(f"SELECT count(*) FROM files f WHERE {where}", args)[0])

    def counts(self) -> dict[str, int]:
        """Kept until the catalogue changes: a searcher asks on every search."""
        version = self.data_version()
        cached = self._version_cache
        if cached is not None and cached[0] == version:
            return dict(cached[1])
        row = self._one(
            "SELECT (SELECT count(*) FROM files WHERE state='indexed' AND kind='image'), "
            "(SELECT count(*) FROM files WHERE state='indexed' AND kind='text'), "
            "(SELECT count(*) FROM files WHERE state='pending'), "
            "(SELECT count(*) FROM files WHERE state='error') "
            "  + (SELECT count(*) FROM scan_errors), "
            "(SELECT count(*) FROM chunks), (SELECT count(*) FROM roots)")
        counts = dict(zip(("images", "notes", "pending", "errors", "chunks", "roots"),
                          (int(x) for x in row)))
        self._version_cache = (version, counts)
        return dict(counts)


def _within(by_word: dict[str, list[int]], words: list[str], near: int) -> bool:
    """Whether one field holds every word with at most `near` other tokens between the first
    and the last (FTS5's NEAR for one-word phrases)."""
    if any(w not in by_word for w in words):
        return False
    events = sorted((p, w) for w in words for p in by_word[w])
    need, left = len(words), 0
    have: dict[str, int] = {}
    for pos, word in events:
        have[word] = have.get(word, 0) + 1
        while len(have) == need:
            start = events[left][0]
            if pos - start + 1 - need <= near:
                return True
            lw = events[left][1]
            have[lw] -= 1
            if not have[lw]:
                del have[lw]
            left += 1
    return False


def _like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _name_folder(path: str) -> tuple[str, str]:
    p = Path(path)
    return name_terms(p.name), name_terms(p.parent.name)


def _vectors(rows: list[tuple], dim: int) -> tuple[np.ndarray, np.ndarray]:
    found = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vecs = np.empty((len(rows), dim), dtype=np.float32)
    for j, r in enumerate(rows):
        vecs[j] = blob_to_vector(r[1])
    return found, vecs


def _file_row(r: tuple) -> FileRow:
    return FileRow(id=r[0], root_id=r[1], path=r[2], path_raw=bytes(r[3]), kind=r[4], size=r[5],
                   mtime_ns=r[6], content_hash=r[7], state=r[8], error=r[9], taken_at=r[10])
