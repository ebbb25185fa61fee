"""The SQLite catalogue: the library's source of truth.

Files, chunks (with their vectors), roots, errors and the model identity live here. The hnsw
index is a derived cache that can always be rebuilt from the `chunks.vector` column.
Chunk ids are AUTOINCREMENT, so an id is not reused while the database keeps its commits; after
SQLite loses its newest ones (a power cut, a restored backup) it hands out the lost ids again,
and the vector store takes them back (`Library.reconcile`, `HnswStore.add`).
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from indexer.errors import LibraryDamaged, LibraryError, MagpieError

# up to this many chunks of a kind, sample_vectors lists their ids once instead of a lookup each
SAMPLE_BY_LISTING = 50_000

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS roots(
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS files(
    id INTEGER PRIMARY KEY,
    root_id INTEGER NOT NULL REFERENCES roots(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    path_raw BLOB NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    content_hash TEXT,
    state TEXT NOT NULL,
    error TEXT,
    taken_at REAL,
    indexed_at REAL
);
CREATE INDEX IF NOT EXISTS files_hash ON files(content_hash);
CREATE INDEX IF NOT EXISTS files_root ON files(root_id);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    text TEXT,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
CREATE TABLE IF NOT EXISTS scan_errors(
    id INTEGER PRIMARY KEY,
    root_id INTEGER NOT NULL REFERENCES roots(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(name, folder, body, tokenize='unicode61');
"""

# Version 2: folder and date filters read an index instead of scanning every file (a folder
# filter at 100k files: a range over `path` instead of comparing each path's prefix).
_SCHEMA_V2 = """
CREATE INDEX IF NOT EXISTS files_path ON files(path, state);
CREATE INDEX IF NOT EXISTS files_taken ON files(taken_at, state);
"""


# Version 3: words read in pictures (OCR). One row per picture that was looked at, keyed by
# file and tied to the content it was read from; the lines live in a trigram full-text table
# (rowid = file_id * OCR_LINES_PER_FILE + line) so parts of words and codes match ("RE16" in
# "RE16 TGK") and a file's lines leave with one rowid range.
OCR_LINES_PER_FILE = 1024
_SCHEMA_V3 = f"""
CREATE TABLE IF NOT EXISTS ocr(
    file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    content_hash TEXT,
    state TEXT NOT NULL,          -- 'text' | 'none' (no text seen) | 'error'
    error TEXT,
    lines TEXT NOT NULL DEFAULT '[]',  -- JSON [[text, score, [[x, y] x4]], ...], x and y as
                                       -- fractions of the upright picture's width, height
    read_at REAL NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS ocr_lines USING fts5(folded, text UNINDEXED,
    tokenize='trigram');
CREATE TRIGGER IF NOT EXISTS ocr_lines_gone AFTER DELETE ON ocr BEGIN
    DELETE FROM ocr_lines WHERE rowid >= old.file_id * {OCR_LINES_PER_FILE}
        AND rowid < (old.file_id + 1) * {OCR_LINES_PER_FILE};
END;
"""


@dataclass(frozen=True)
class OcrHit:
    """A picture whose read text matched: the best line is its snippet."""

    file_id: int
    matched: int  # query words found (exactly, or nearly: see ocr_search)
    exact: int  # of those, found exactly
    line: str


class LibraryTooNew(MagpieError, RuntimeError):
    """The catalogue was written by a newer Magpie."""


@dataclass(frozen=True)
class FileRow:
    id: int
    root_id: int
    path: str
    path_raw: bytes
    kind: str
    size: int
    mtime_ns: int
    content_hash: str | None
    state: str
    error: str | None
    taken_at: float | None


@dataclass(frozen=True)
class ChunkHit:
    chunk_id: int
    file_id: int
    path: str
    kind: str
    text: str | None
    taken_at: float | None
    root_id: int
    path_raw: bytes = b""


@dataclass(frozen=True)
class VectorMeta:
    """Per-vector attributes a store may keep so filters can be pushed down to it (the
    catalogue makes them; indexer.vectors re-exports it)."""

    file_id: int
    kind: str
    path: str
    taken_at: float


@dataclass(frozen=True)
class NewChunk:
    ordinal: int
    text: str | None
    vector: np.ndarray


@dataclass(frozen=True)
class FileFilter:
    """Restrictions a search can apply; every store turns these into its own filter form."""

    kinds: tuple[str, ...] | None = None
    folders: tuple[str, ...] | None = None  # absolute path prefixes
    after: float | None = None  # unix seconds, inclusive
    before: float | None = None  # unix seconds, exclusive

    def is_empty(self) -> bool:
        return not (self.kinds or self.folders or self.after is not None or self.before is not None)


def raw_path(path: str | os.PathLike) -> bytes:
    """Exact bytes of a path; survives names that are not valid UTF-8."""
    return os.fsencode(path)


def display_path(path: str | os.PathLike) -> str:
    """A printable path: undecodable bytes become U+FFFD instead of crashing SQLite/Qt."""
    return os.fsencode(path).decode("utf-8", "replace")


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")


def name_terms(name: str) -> str:
    """Split a file name into search words: IMG_2023-07_beach.jpg -> 'IMG 2023 07 beach jpg'."""
    spaced = _CAMEL.sub(" ", name)
    return " ".join(t for t in re.split(r"[\W_]+", spaced) if t)


# Host parameters per statement: SQLite builds before 3.32 stop at 999 (and a build may set a
# lower SQLITE_MAX_VARIABLE_NUMBER), so an `IN (?, ?, …)` over many ids is cut into slices.
SQL_MAX_VARS = 900


def select_in(db: sqlite3.Connection, sql: str, ids: Iterable[int],
              size: int = SQL_MAX_VARS) -> Iterator[Any]:
    """Rows of `sql` for every id in `ids`: `sql` holds ``{ids}`` once, inside ``IN (…)``;
    each slice of at most `size` ids runs as one statement. No other parameters: the ids are
    the statement's only ``?``s."""
    if sql.count("{ids}") != 1:
        raise ValueError("the statement must hold {ids} exactly once")
    ids = [int(i) for i in ids]
    for start in range(0, len(ids), size):
        part = ids[start : start + size]
        yield from db.execute(sql.replace("{ids}", ",".join("?" * len(part))), part)


def vector_to_blob(v: np.ndarray) -> bytes:
    return np.ascontiguousarray(v, dtype="<f4").tobytes()


def blob_to_vector(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<f4")


# Durability (bench/sqlite_sync.py, bench/RESULTS.md). In WAL mode NORMAL syncs the log only at
# checkpoints, so a power cut can undo the commits since the last one (the file itself stays
# sound); FULL syncs at every commit. The scan commits once per new or changed file, where FULL
# costs several ms each (minutes over a large first scan); an embedded batch is one commit per
# 32-256 files and seconds of model time, where a sync costs nothing noticeable. So: NORMAL, and
# every embedded batch committed with FULL, which also makes the scan's earlier commits durable.
# A power cut then loses no finished batch, only the batch in flight and the scan bookkeeping
# since the last batch, which the next run redoes.
SYNCHRONOUS = "NORMAL"
SYNCHRONOUS_BATCH = "FULL"


def _check_exists(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise LibraryDamaged(path, "is missing") from None
    if not stat.S_ISREG(st.st_mode):
        raise LibraryDamaged(path, "is not a regular file")
    if st.st_size == 0:
        wal = path.with_name(path.name + "-wal")
        if not (wal.exists() and wal.stat().st_size > 0):
            raise LibraryDamaged(path, "is empty (0 bytes)")


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection. On a read-only disk or folder SQLite cannot make the WAL's
    shared-memory file, so the database is opened as immutable there (nobody can write it)."""
    uri = f"file:{quote(str(path))}?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)
    try:
        db.execute("PRAGMA user_version").fetchone()
        return db
    except sqlite3.OperationalError:
        db.close()
        if os.access(path.parent, os.W_OK) and not _read_only_fs(path.parent):
            raise
    return sqlite3.connect(f"file:{quote(str(path))}?mode=ro&immutable=1", uri=True, timeout=30,
                           check_same_thread=False)


def _read_only_fs(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _damaged_or_unreadable(path: Path, exc: sqlite3.DatabaseError) -> Exception:
    text = str(exc)
    if type(exc) is sqlite3.DatabaseError or "malformed" in text or "not a database" in text:
        return LibraryDamaged(path, f"is not a readable SQLite database ({text})")
    if "readonly" in text or "read-only" in text:
        return LibraryError(f"cannot write {path} ({text})")
    return LibraryError(f"cannot open {path} ({text}); check the library folder's permissions")


class Catalogue:
    """One SQLite database in WAL mode. Not shared across threads: each thread opens its own."""

    def __init__(self, path: Path, *, readonly: bool = False, create: bool = True) -> None:
        """create=False: the catalogue must already exist and be a Magpie catalogue; anything
        else (missing, empty, garbage, another database) is LibraryDamaged, found before a
        single byte is written."""
        self.path = path
        if not create or readonly:
            _check_exists(path)
        try:
            if readonly:
                self.db = _connect_readonly(path)
            else:
                self.db = sqlite3.connect(path, timeout=30, check_same_thread=False)
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            if type(exc) is sqlite3.OperationalError and "locked" in str(exc):
                raise
            raise _damaged_or_unreadable(path, exc) from None
        if version == 0 and (not create or readonly) and path.stat().st_size > 0:
            self.db.close()
            raise LibraryDamaged(path, "is not a Magpie catalogue (it has no Magpie schema)")
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA foreign_keys=ON")
        if not readonly:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
            self._migrate()

    # -- schema -----------------------------------------------------------------------------
    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LibraryTooNew(
                f"{self.path} was written by a newer Magpie (schema {version}, this build "
                f"understands up to {SCHEMA_VERSION}); update Magpie to open it"
            )
        if version < SCHEMA_VERSION:
            with self.db:
                if version < 1:
                    self.db.executescript(_SCHEMA)
                if version < 2:
                    self.db.executescript(_SCHEMA_V2)
                if version < 3:
                    self.db.executescript(_SCHEMA_V3)
                self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    def check_integrity(self) -> None:
        """SQLite's quick_check over every page: O(size), so only for commands that read the
        whole catalogue anyway (a migration), to refuse before they start rather than midway."""
        try:
            rows = [r[0] for r in self.db.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as exc:
            raise _damaged_or_unreadable(self.path, exc) from None
        if rows != ["ok"]:
            raise LibraryDamaged(self.path, f"failed SQLite's integrity check ({'; '.join(rows)})")

    # -- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    # -- roots ------------------------------------------------------------------------------
    def add_root(self, path: str) -> int:
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO roots(path, added_at) VALUES(?, ?)", (path, time.time())
            )
        return self.db.execute("SELECT id FROM roots WHERE path=?", (path,)).fetchone()[0]

    def roots(self) -> list[tuple[int, str]]:
        return [(r[0], r[1]) for r in self.db.execute("SELECT id, path FROM roots ORDER BY path")]

    def root_counts(self) -> dict[int, int]:
        rows = self.db.execute(
            "SELECT root_id, COUNT(*) FROM files WHERE state='indexed' GROUP BY root_id"
        )
        return {r[0]: r[1] for r in rows}

    def root_pending_counts(self) -> dict[int, int]:
        """Files per root still waiting to be embedded: an interrupted run left them, and a
        folder with any is shown as incomplete until the resumed run finishes it."""
        rows = self.db.execute(
            "SELECT root_id, COUNT(*) FROM files WHERE state='pending' GROUP BY root_id"
        )
        return {r[0]: r[1] for r in rows}

    def remove_root(self, root_id: int) -> list[int]:
        """Forget a root and everything under it; returns the chunk ids to drop from vectors."""
        chunk_ids = [
            r[0]
            for r in self.db.execute(
                "SELECT c.id FROM chunks c JOIN files f ON f.id=c.file_id WHERE f.root_id=?",
                (root_id,),
            )
        ]
        with self.db:
            self.db.execute(
                "DELETE FROM fts WHERE rowid IN (SELECT id FROM files WHERE root_id=?)", (root_id,)
            )
            self.db.execute("DELETE FROM roots WHERE id=?", (root_id,))
        return chunk_ids

    # -- files ------------------------------------------------------------------------------
    def files_under(self, root_id: int) -> dict[bytes, FileRow]:
        rows = self.db.execute("SELECT * FROM files WHERE root_id=?", (root_id,))
        return {bytes(r["path_raw"]): _file_row(r) for r in rows}

    def files_within(self, root_id: int, paths: Sequence[str]) -> dict[bytes, FileRow]:
        """Files of a root at or under any of `paths` (a watcher's scope), by raw path."""
        out: dict[bytes, FileRow] = {}
        for path in paths:
            raw = raw_path(path)
            lo, hi = raw + b"/", raw + b"0"  # b"0" sorts right after b"/": the subtree's range
            rows = self.db.execute(
                "SELECT * FROM files WHERE root_id=? AND (path_raw=? OR "
                "(path_raw>=? AND path_raw<?))", (root_id, raw, lo, hi))
            out.update((bytes(r["path_raw"]), _file_row(r)) for r in rows)
        return out

    def file_by_id(self, file_id: int) -> FileRow | None:
        r = self.db.execute("SELECT * FROM files WHERE id=?", (file_id,)).fetchone()
        return _file_row(r) if r else None

    def indexed_file_with_hash(self, content_hash: str, exclude: int | None = None) -> FileRow | None:
        r = self.db.execute(
            "SELECT * FROM files WHERE content_hash=? AND state='indexed' AND id IS NOT ? LIMIT 1",
            (content_hash, exclude),
        ).fetchone()
        return _file_row(r) if r else None

    def upsert_pending(
        self, root_id: int, path: str, kind: str, size: int, mtime_ns: int, content_hash: str | None
    ) -> int:
        """Record a file that must be (re)embedded; its old chunks stay until replaced."""
        raw = raw_path(path)
        disp = display_path(path)
        with self.db:
            self.db.execute(
                """INSERT INTO files(root_id, path, path_raw, kind, size, mtime_ns, content_hash,
                                     state)
                   VALUES(?, ?, ?, ?, ?, ?, ?, 'pending')
                   ON CONFLICT(path_raw) DO UPDATE SET root_id=excluded.root_id,
                       kind=excluded.kind, size=excluded.size, mtime_ns=excluded.mtime_ns,
                       content_hash=excluded.content_hash, state='pending', error=NULL""",
                (root_id, disp, raw, kind, size, mtime_ns, content_hash),
            )
        return self.db.execute("SELECT id FROM files WHERE path_raw=?", (raw,)).fetchone()[0]

    def touch(self, file_id: int, size: int, mtime_ns: int) -> None:
        """Same content, new mtime: remember the stat so the next scan skips the hash."""
        with self.db:
            self.db.execute(
                "UPDATE files SET size=?, mtime_ns=? WHERE id=?", (size, mtime_ns, file_id)
            )

    def move_file(self, file_id: int, root_id: int, new_path: str, size: int, mtime_ns: int) -> None:
        """A renamed/moved file keeps its id, chunks and vectors."""
        name, folder = _name_folder(new_path)
        with self.db:
            self.db.execute(
                "UPDATE files SET root_id=?, path=?, path_raw=?, size=?, mtime_ns=? WHERE id=?",
                (root_id, display_path(new_path), raw_path(new_path), size, mtime_ns, file_id),
            )
            self.db.execute(
                "UPDATE fts SET name=?, folder=? WHERE rowid=?", (name, folder, file_id)
            )

    def delete_files(self, file_ids: Sequence[int]) -> list[int]:
        """Forget files; returns their chunk ids so the vector store can drop them."""
        chunk_ids: list[int] = []
        with self.db:
            for fid in file_ids:
                chunk_ids += [
                    r[0] for r in self.db.execute("SELECT id FROM chunks WHERE file_id=?", (fid,))
                ]
                self.db.execute("DELETE FROM fts WHERE rowid=?", (fid,))
                self.db.execute("DELETE FROM files WHERE id=?", (fid,))
        return chunk_ids

    def pending_files(self) -> list[FileRow]:
        rows = self.db.execute("SELECT * FROM files WHERE state='pending' ORDER BY id")
        return [_file_row(r) for r in rows]

    def commit_embedded(
        self,
        done: Sequence[tuple[int, list[NewChunk], float | None, str | None]],
        failed: Sequence[tuple[int, str]],
    ) -> tuple[list[int], list[int]]:
        """Store one batch atomically: new chunks replace old ones, failures are recorded.

        `done` items are (file_id, chunks, taken_at, body_text). Returns (new chunk ids,
        replaced chunk ids) so the caller can update the vector store *after* the commit.
        """
        new_ids: list[int] = []
        old_ids: list[int] = []
        now = time.time()
        with self._synchronous(SYNCHRONOUS_BATCH), self.db:
            for file_id, chunks, taken_at, body in done:
                old_ids += [
                    r[0] for r in self.db.execute("SELECT id FROM chunks WHERE file_id=?", (file_id,))
                ]
                self.db.execute("DELETE FROM chunks WHERE file_id=?", (file_id,))
                for ch in chunks:
                    cur = self.db.execute(
                        "INSERT INTO chunks(file_id, ordinal, text, vector) VALUES(?, ?, ?, ?)",
                        (file_id, ch.ordinal, ch.text, vector_to_blob(ch.vector)),
                    )
                    if cur.lastrowid is None:  # not after an INSERT that succeeded
                        raise sqlite3.InterfaceError("no row id for a new chunk")
                    new_ids.append(cur.lastrowid)
                row = self.db.execute(
                    "SELECT path, mtime_ns FROM files WHERE id=?", (file_id,)
                ).fetchone()
                self.db.execute(
                    "UPDATE files SET state='indexed', error=NULL, taken_at=?, indexed_at=? "
                    "WHERE id=?",
                    (taken_at if taken_at is not None else row[1] / 1e9, now, file_id),
                )
                name, folder = _name_folder(row[0])
                self.db.execute("DELETE FROM fts WHERE rowid=?", (file_id,))
                self.db.execute(
                    "INSERT INTO fts(rowid, name, folder, body) VALUES(?, ?, ?, ?)",
                    (file_id, name, folder, body or ""),
                )
            for file_id, reason in failed:
                old_ids += [
                    r[0] for r in self.db.execute("SELECT id FROM chunks WHERE file_id=?", (file_id,))
                ]
                self.db.execute("DELETE FROM chunks WHERE file_id=?", (file_id,))
                self.db.execute("DELETE FROM fts WHERE rowid=?", (file_id,))
                self.db.execute(
                    "UPDATE files SET state='error', error=?, indexed_at=? WHERE id=?",
                    (reason, now, file_id),
                )
        return new_ids, old_ids

    @contextmanager
    def _synchronous(self, mode: str) -> Iterator[None]:
        """Commit the enclosed transaction with another `synchronous` level (set outside it)."""
        self.db.execute(f"PRAGMA synchronous={mode}")
        try:
            yield
        finally:
            self.db.execute(f"PRAGMA synchronous={SYNCHRONOUS}")

    def chunk_ids_of(self, file_id: int) -> list[int]:
        return [r[0] for r in self.db.execute(
            "SELECT id FROM chunks WHERE file_id=? ORDER BY ordinal", (file_id,))]

    def copy_chunks(self, src_file_id: int, dst_file_id: int) -> tuple[list[int], list[int]]:
        """Identical content elsewhere: reuse its vectors instead of embedding again.
        Returns (new chunk ids, chunk ids of dst that were replaced)."""
        src = self.file_by_id(src_file_id)
        chunks = [
            NewChunk(r[0], r[1], blob_to_vector(r[2]))
            for r in self.db.execute(
                "SELECT ordinal, text, vector FROM chunks WHERE file_id=? ORDER BY ordinal",
                (src_file_id,),
            )
        ]
        body_row = self.db.execute("SELECT body FROM fts WHERE rowid=?", (src_file_id,)).fetchone()
        return self.commit_embedded(
            [(dst_file_id, chunks, src.taken_at if src else None, body_row[0] if body_row else "")],
            [],
        )

    # -- scan errors ------------------------------------------------------------------------
    def set_scan_errors(self, root_id: int, errors: Iterable[tuple[str, str]]) -> None:
        with self.db:
            self.db.execute("DELETE FROM scan_errors WHERE root_id=?", (root_id,))
            self.db.executemany(
                "INSERT INTO scan_errors(root_id, path, reason) VALUES(?, ?, ?)",
                [(root_id, p, r) for p, r in errors],
            )

    def set_scan_errors_within(self, root_id: int, paths: Sequence[str],
                               errors: Iterable[tuple[str, str]]) -> None:
        """Replace the scan errors at or under `paths` only; the rest of the root's stay."""
        with self.db:
            for path in paths:
                self.db.execute(
                    "DELETE FROM scan_errors WHERE root_id=? AND (path=? OR (path>=? AND path<?))",
                    (root_id, path, path + "/", path + "0"),
                )
            self.db.executemany(
                "INSERT INTO scan_errors(root_id, path, reason) VALUES(?, ?, ?)",
                [(root_id, p, r) for p, r in errors],
            )

    def errors(self) -> list[tuple[str, str]]:
        rows = list(self.db.execute("SELECT path, error FROM files WHERE state='error' ORDER BY path"))
        rows += list(self.db.execute("SELECT path, reason FROM scan_errors ORDER BY path"))
        return [(r[0], r[1]) for r in rows]

    # -- chunks / vectors -------------------------------------------------------------------
    def chunk_ids(self) -> np.ndarray:
        return np.fromiter((r[0] for r in self.db.execute("SELECT id FROM chunks")), dtype=np.int64)

    def vectors_for(self, ids: Sequence[int], dim: int) -> np.ndarray:
        """Vectors of `ids`, in that order; every id must be stored (KeyError otherwise)."""
        found, vecs = self.stored_vectors(np.asarray(ids, dtype=np.int64), dim)
        row = {int(c): j for j, c in enumerate(found)}
        return vecs[[row[int(c)] for c in ids]].reshape(len(ids), dim)

    def stored_vectors(self, ids: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of those `ids` that are still stored; a chunk deleted in the meantime
        is left out rather than failing the search that asked."""
        rows = self.db.execute(
            "SELECT c.id, c.vector FROM json_each(?) j CROSS JOIN chunks c ON c.id = j.value",
            [json.dumps([int(i) for i in ids])],
        ).fetchall()
        found = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.empty((len(rows), dim), dtype=np.float32)
        for j, r in enumerate(rows):
            vecs[j] = blob_to_vector(r[1])
        return found, vecs

    def chunk_hits(self, chunk_ids: Sequence[int]) -> dict[int, ChunkHit]:
        out: dict[int, ChunkHit] = {}
        for r in select_in(
            self.db,
            """SELECT c.id, c.file_id, f.path, f.kind, c.text, f.taken_at, f.root_id, f.path_raw
               FROM chunks c JOIN files f ON f.id=c.file_id
               WHERE c.id IN ({ids}) AND f.state='indexed'""",
            chunk_ids,
        ):
            out[r[0]] = ChunkHit(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bytes(r[7]))
        return out

    def chunk_ids_matching(self, flt: FileFilter, among: np.ndarray | None = None) -> np.ndarray:
        """Chunk ids whose file passes `flt`; only those in `among` when given (how a vector
        store checks a few hundred candidates without listing the whole library)."""
        where, args = filter_sql(flt)
        if among is None:
            rows = self.db.execute(
                f"SELECT c.id FROM chunks c JOIN files f ON f.id=c.file_id WHERE {where}", args
            )
        else:
            # CROSS JOIN fixes the order: look up each candidate, never scan the filter's range
            # (at 1M items the planner's own choice took 160-290 ms for 960 candidates, this 7)
            rows = self.db.execute(
                f"""SELECT c.id FROM json_each(?) j CROSS JOIN chunks c ON c.id = j.value
                    CROSS JOIN files f ON f.id = c.file_id WHERE {where}""",
                [json.dumps([int(i) for i in among]), *args],
            )
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    # -- keyword search ---------------------------------------------------------------------
    def keyword_search(
        self, fts_query: str, flt: FileFilter, limit: int
    ) -> list[tuple[int, float, str]]:
        """BM25 over name (weight 5), folder (2) and note text (1): (file_id, bm25, snippet).

        A common word matches thousands of files and scoring them is the whole cost, so the
        full-text index ranks alone (oversampled), the filter is checked on those candidates
        only, and snippets are made for the rows returned only; a filter that leaves too few
        candidates gets the ranking redone among the files it allows.
        """
        where, args = filter_sql(flt)
        want = limit * 4
        ranked = self.db.execute(
            "SELECT rowid, bm25(fts, 5.0, 2.0, 1.0) AS rank FROM fts WHERE fts MATCH ? "
            "ORDER BY rank LIMIT ?", [fts_query, want],
        ).fetchall()
        allowed = {r[0] for r in self.db.execute(
            f"SELECT f.id FROM json_each(?) j CROSS JOIN files f ON f.id = j.value WHERE {where}",
            [json.dumps([r[0] for r in ranked]), *args],
        )}
        hits = [(r[0], r[1]) for r in ranked if r[0] in allowed][:limit]
        if len(hits) < limit and len(ranked) == want:
            hits = [(r[0], r[1]) for r in self.db.execute(
                f"""SELECT fts.rowid, bm25(fts, 5.0, 2.0, 1.0) AS rank
                    FROM fts JOIN files f ON f.id = fts.rowid
                    WHERE fts MATCH ? AND {where} ORDER BY rank LIMIT ?""",
                [fts_query, *args, limit],
            )]
        snippets = dict(self.db.execute(
            "SELECT rowid, snippet(fts, 2, '', '', '…', 16) FROM fts "
            "WHERE fts MATCH ? AND rowid IN (SELECT value FROM json_each(?))",
            [fts_query, json.dumps([h[0] for h in hits])],
        ).fetchall())
        return [(rid, -float(rank), snippets.get(rid, "")) for rid, rank in hits]

    def keyword_evidence(self, words: Sequence[str], ids: Sequence[int], near: int
                         ) -> dict[int, int]:
        """How strongly each of `ids` holds the query `words` (lower-case \\w+ tokens, in
        query order): 4 the words as a phrase in the file name, 3 as a phrase anywhere
        (name, folder or text), 2 all of them within `near` tokens of each other, 1 all of
        them but scattered, 0 only some. Files holding none of the words (found only by the
        words read in them, say) are left out. Each level is one FTS5 query over `ids` only."""
        if not words or not ids:
            return {}
        phrase = '"' + " ".join(words) + '"'
        levels = [(4, f"name : {phrase}"), (3, phrase)]
        if len(words) > 1:
            levels.append((2, f"NEAR({' '.join(chr(34) + w + chr(34) for w in words)}, {near})"))
            levels.append((1, " AND ".join(f'"{w}"' for w in words)))
        levels.append((0, " OR ".join(f'"{w}"' for w in words)))
        out: dict[int, int] = {}
        todo = json.dumps(sorted({int(i) for i in ids}))
        for level, query in levels:
            for (rid,) in self.db.execute(
                "SELECT rowid FROM fts WHERE fts MATCH ? AND rowid IN "
                "(SELECT value FROM json_each(?))", [query, todo],
            ):
                out[rid] = max(out.get(rid, 0), level)
        return out

    def files_by_ids(self, ids: Sequence[int]) -> dict[int, FileRow]:
        out: dict[int, FileRow] = {}
        for r in select_in(self.db, "SELECT * FROM files WHERE id IN ({ids})", ids):
            out[r["id"]] = _file_row(r)
        return out

    def file_id_for_path(self, path: str) -> int | None:
        r = self.db.execute(
            "SELECT id FROM files WHERE path_raw=? AND state='indexed'", (raw_path(path),)
        ).fetchone()
        return r[0] if r else None

    def file_vector(self, file_id: int) -> np.ndarray | None:
        """Mean of a file's chunk vectors, normalised: the file as a query (find similar)."""
        vecs = [blob_to_vector(r[0]) for r in self.db.execute(
            "SELECT vector FROM chunks WHERE file_id=?", (file_id,))]
        if not vecs:
            return None
        v = np.mean(vecs, axis=0)
        return (v / (np.linalg.norm(v) + 1e-12)).astype(np.float32)

    def sample_vectors(self, n: int, seed: int = 0, kind: str | None = None) -> np.ndarray:
        """Up to n chunk vectors picked at random by id (point lookups: fast on any size);
        only chunks of files of `kind` ("image" / "text") when given."""
        join = "JOIN files f ON f.id = c.file_id AND f.kind = ?" if kind else ""
        args: list = [kind] if kind else []
        row = self.db.execute(
            f"SELECT MIN(c.id), MAX(c.id), COUNT(*) FROM chunks c {join}", args
        ).fetchone()
        if not row or not row[2]:
            return np.empty((0, 0), np.float32)
        lo, hi, count = row
        if count <= n:
            return np.stack([blob_to_vector(r[0]) for r in self.db.execute(
                f"SELECT c.vector FROM chunks c {join}", args)])
        rng = np.random.default_rng(seed)
        targets = rng.integers(lo, hi + 1, size=n * 2)
        if count <= SAMPLE_BY_LISTING:
            return self._sample_listed(targets, n, join, args)
        picks: dict[int, np.ndarray] = {}
        for target in targets:
            r = self.db.execute(
                f"SELECT c.id, c.vector FROM chunks c {join} WHERE c.id >= ? "
                "ORDER BY c.id LIMIT 1", [*args, int(target)],
            ).fetchone()
            if r is not None:
                picks[r[0]] = blob_to_vector(r[1])
            if len(picks) >= n:
                break
        return np.stack(list(picks.values()))

    def _sample_listed(self, targets: np.ndarray, n: int, join: str, args: list) -> np.ndarray:
        """`sample_vectors`' picks (the first chunk at or after each target id) found in one
        sorted list of ids and read in one query, instead of a lookup per target: the same
        vectors in the same order, ~10x faster on a small library (a search computes three
        samples, which took a third of a one-query process on 2,000 items)."""
        import bisect

        ids = [r[0] for r in self.db.execute(f"SELECT c.id FROM chunks c {join} ORDER BY c.id",
                                              args)]
        picked: dict[int, None] = {}
        for target in targets:
            j = bisect.bisect_left(ids, int(target))
            if j < len(ids):
                picked[ids[j]] = None
            if len(picked) >= n:
                break
        rows = dict(self.db.execute(
            "SELECT c.id, c.vector FROM json_each(?) j CROSS JOIN chunks c ON c.id = j.value",
            [json.dumps(list(picked))]))
        return np.stack([blob_to_vector(rows[i]) for i in picked])

    def vector_meta(self, chunk_ids: Sequence[int] | np.ndarray) -> list[VectorMeta]:
        """One VectorMeta per chunk id, in order, whatever the file's state (a pending file
        keeps its old chunks until they are replaced): what a store that filters on the
        server needs with every `add`."""
        ids = [int(i) for i in chunk_ids]
        found: dict[int, VectorMeta] = {}
        for start in range(0, len(ids), 900):
            part = ids[start : start + 900]
            marks = ",".join("?" * len(part))
            for cid, fid, kind, path, taken_at in self.db.execute(
                f"SELECT c.id, f.id, f.kind, f.path, f.taken_at FROM chunks c "
                f"JOIN files f ON f.id = c.file_id WHERE c.id IN ({marks})",
                part,
            ):
                found[cid] = VectorMeta(fid, kind, path, taken_at or 0.0)
        missing = [i for i in ids if i not in found]
        if missing:
            raise RuntimeError(f"chunks {missing[:5]} are not in the catalogue")
        return [found[i] for i in ids]

    # -- words read in pictures (OCR) -------------------------------------------------------
    # Kept apart from the name/note keyword search above: its own tables, its own search.
    def ocr_reset_if_engine_changed(self, identity: str) -> bool:
        """A different OCR engine or model means every picture is read again: the old text
        goes at once (never a mix of two engines' readings). True when something was reset."""
        have = self.get_meta("ocr_engine")
        if have == identity:
            return False
        with self.db:
            self.db.execute("DELETE FROM ocr_lines")
            self.db.execute("DELETE FROM ocr")
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('ocr_engine', ?)",
                            (identity,))
        return have is not None

    def ocr_pending(self) -> list[tuple[int, bytes, str | None]]:
        """(file_id, path_raw, content_hash) of indexed pictures not yet read in their current
        content; an earlier failure on the same content is not retried unless transient."""
        rows = self.db.execute(
            """SELECT f.id, f.path_raw, f.content_hash, o.state, o.error FROM files f
               LEFT JOIN ocr o ON o.file_id = f.id
               WHERE f.kind = 'image' AND f.state = 'indexed'
                 AND (o.file_id IS NULL OR o.content_hash IS NOT f.content_hash
                      OR o.state = 'error')
               ORDER BY f.id""")
        from indexer.decode import is_transient

        return [(r[0], bytes(r[1]), r[2]) for r in rows
                if r[3] != "error" or is_transient(r[4])]

    def ocr_twin(self, content_hash: str | None, exclude: int) -> tuple[str, str] | None:
        """(state, lines JSON) read earlier from identical content: a copy needs no read."""
        if not content_hash:
            return None
        r = self.db.execute(
            "SELECT state, lines FROM ocr WHERE content_hash = ? AND file_id != ? "
            "AND state != 'error' LIMIT 1", (content_hash, exclude)).fetchone()
        return (r[0], r[1]) if r else None

    def commit_ocr(
        self, results: Sequence[tuple[int, str | None, str, str | None, list[tuple[str, float, list]]]]
    ) -> None:
        """Store readings atomically: (file_id, content_hash, state, error, lines) each; lines
        are (text, score, box). A file that left the catalogue meanwhile is skipped."""
        from indexer.ocr import fold

        now = time.time()
        with self.db:
            for file_id, digest, state, error, lines in results:
                if self.db.execute("SELECT 1 FROM files WHERE id=?", (file_id,)).fetchone() is None:
                    continue
                self.db.execute("DELETE FROM ocr WHERE file_id=?", (file_id,))  # trigger: lines
                kept = lines[:OCR_LINES_PER_FILE]
                self.db.execute(
                    "INSERT INTO ocr(file_id, content_hash, state, error, lines, read_at) "
                    "VALUES(?, ?, ?, ?, ?, ?)",
                    (file_id, digest, state, error, json.dumps(kept), now))
                self.db.executemany(
                    "INSERT INTO ocr_lines(rowid, folded, text) VALUES(?, ?, ?)",
                    [(file_id * OCR_LINES_PER_FILE + i, fold(text), text)
                     for i, (text, _score, _box) in enumerate(kept)])

    def ocr_lines_of(self, file_id: int) -> list[tuple[str, float, list]]:
        """The lines read in a picture (text, score, four corners), for previews."""
        r = self.db.execute(
            "SELECT o.lines FROM ocr o JOIN files f ON f.id = o.file_id "
            "WHERE o.file_id = ? AND o.content_hash IS f.content_hash", (file_id,)).fetchone()
        return [tuple(x) for x in json.loads(r[0])] if r else []

    def ocr_texts(self, file_ids: Sequence[int]) -> dict[int, list[tuple[str, float, list]]]:
        """The lines read in these pictures (text, score, corners) from their current content;
        pictures without text are left out. For grading a match and marking the words."""
        if not file_ids or not self.has_ocr_tables():
            return {}
        rows = self.db.execute(
            """SELECT o.file_id, o.lines FROM json_each(?) j
               CROSS JOIN ocr o ON o.file_id = j.value
               JOIN files f ON f.id = o.file_id
               WHERE o.state = 'text' AND o.content_hash IS f.content_hash""",
            [json.dumps([int(i) for i in file_ids])])
        return {r[0]: [tuple(x) for x in json.loads(r[1])] for r in rows}

    def has_ocr_tables(self) -> bool:
        """False for a library of an older schema opened read-only (not yet upgraded)."""
        return self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE name='ocr_lines'").fetchone() is not None

    def ocr_counts(self) -> dict[str, int]:
        q = self.db.execute
        if not self.has_ocr_tables():
            n = q("SELECT COUNT(*) FROM files WHERE state='indexed' AND kind='image'").fetchone()[0]
            return {"images": n, "with_text": 0, "without_text": 0, "errors": 0, "pending": n}
        images = q("SELECT COUNT(*) FROM files WHERE state='indexed' AND kind='image'").fetchone()[0]
        row = q("""SELECT COALESCE(SUM(o.state='text'), 0), COALESCE(SUM(o.state='none'), 0),
                          COALESCE(SUM(o.state='error'), 0)
                   FROM ocr o JOIN files f ON f.id = o.file_id
                   WHERE f.state='indexed' AND f.kind='image'
                     AND o.content_hash IS f.content_hash""").fetchone()
        return {"images": images, "with_text": row[0], "without_text": row[1], "errors": row[2],
                "pending": images - row[0] - row[1] - row[2]}

    def ocr_errors(self) -> list[tuple[str, str]]:
        if not self.has_ocr_tables():
            return []
        rows = self.db.execute(
            "SELECT f.path, o.error FROM ocr o JOIN files f ON f.id = o.file_id "
            "WHERE o.state = 'error' ORDER BY f.path")
        return [(r[0], f"reading text failed: {r[1]}") for r in rows]

    def ocr_search(self, words: Sequence[str], flt: FileFilter, limit: int,
                   scan: int = 4000) -> list[OcrHit]:
        """Pictures whose read text holds the query words, best first.

        `words` are already folded (indexer.ocr.fold). A word of 4+ characters matches
        anywhere in a line, spaces ignored (the trigram index: "hammer" in "Clawhammer",
        "re16" in "RE16 TGK"); a 3-character word must be a whole word of the line. Words of
        5+ characters also match with one wrong, missing or extra character (9+: two), found
        among the lines that share a trigram with them. Files holding every word come first,
        then those holding more of them; exact matches rank above near ones.
        """
        from indexer.ocr import fold, near_substring

        words = [w for w in dict.fromkeys(words) if len(w) >= 3]
        if not words or not self.has_ocr_tables():
            return []
        per_file: dict[int, dict[str, tuple[bool, int, str]]] = {}
        for w in words:
            found: dict[int, tuple[bool, int, str]] = {}
            rows = self.db.execute(
                "SELECT rowid, folded, text FROM ocr_lines WHERE ocr_lines MATCH ? LIMIT ?",
                ['"' + w + '"', scan]).fetchall()
            for rowid, _folded, text in rows:
                if len(w) == 3 and w not in {fold(t) for t in text.split()}:
                    continue
                fid = rowid // OCR_LINES_PER_FILE
                found.setdefault(fid, (True, rowid, text))
            if len(w) >= 5:
                grams = {w[i:i + 3] for i in range(len(w) - 2)}
                query = " OR ".join('"' + g + '"' for g in sorted(grams))
                allowed = 1 if len(w) < 9 else 2
                for rowid, folded, text in self.db.execute(
                        "SELECT rowid, folded, text FROM ocr_lines WHERE ocr_lines MATCH ? "
                        "ORDER BY rank LIMIT ?", [query, scan]):
                    fid = rowid // OCR_LINES_PER_FILE
                    if fid not in found and near_substring(w, folded, allowed):
                        found[fid] = (False, rowid, text)
            for fid, hit in found.items():
                per_file.setdefault(fid, {})[w] = hit
        if not per_file:
            return []
        where, args = filter_sql(flt)
        allowed_ids = {r[0] for r in self.db.execute(
            f"""SELECT f.id FROM json_each(?) j CROSS JOIN files f ON f.id = j.value
                JOIN ocr o ON o.file_id = f.id AND o.content_hash IS f.content_hash
                WHERE {where}""",
            [json.dumps(list(per_file)), *args])}
        hits = []
        for fid, matches in per_file.items():
            if fid not in allowed_ids:
                continue
            # the snippet: the line that holds most of the words (exact ones first)
            by_line: dict[int, list[bool]] = {}
            texts: dict[int, str] = {}
            for exact, rowid, text in matches.values():
                by_line.setdefault(rowid, []).append(exact)
                texts[rowid] = text
            best = max(by_line, key=lambda r: (len(by_line[r]), sum(by_line[r]), -r))
            hits.append(OcrHit(fid, len(matches), sum(m[0] for m in matches.values()),
                               texts[best]))
        hits.sort(key=lambda h: (-h.matched, -h.exact, h.file_id))
        return hits[:limit]

    # -- counts -----------------------------------------------------------------------------
    def data_version(self) -> int:
        """Moves whenever another connection commits (SQLite's data_version: free to read)."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def count_files(self, flt: FileFilter) -> int:
        """Indexed files the filter allows (a scan: callers cache it on data_version)."""
        where, args = filter_sql(flt)
        return int(self.db.execute(f"SELECT COUNT(*) FROM files f WHERE {where}",
                                   args).fetchone()[0])

    def counts(self) -> dict[str, int]:
        q = self.db.execute
        return {
            "images": q("SELECT COUNT(*) FROM files WHERE state='indexed' AND kind='image'").fetchone()[0],
            "notes": q("SELECT COUNT(*) FROM files WHERE state='indexed' AND kind='text'").fetchone()[0],
            "pending": q("SELECT COUNT(*) FROM files WHERE state='pending'").fetchone()[0],
            "errors": q("SELECT COUNT(*) FROM files WHERE state='error'").fetchone()[0]
            + q("SELECT COUNT(*) FROM scan_errors").fetchone()[0],
            "chunks": q("SELECT COUNT(*) FROM chunks").fetchone()[0],
            "roots": q("SELECT COUNT(*) FROM roots").fetchone()[0],
        }


def filter_sql(flt: FileFilter, mark: str = "?") -> tuple[str, list]:
    """SQL over `files f` for a FileFilter (shared by vector and keyword search, and by the
    PostgreSQL catalogue). `mark` is the driver's placeholder: "?" for sqlite3, "%s" for
    psycopg (there, path is COLLATE "C", so the folder range below is byte order too)."""
    clauses = ["f.state='indexed'"]
    args: list = []
    if flt.kinds:
        clauses.append(f"f.kind IN ({','.join([mark] * len(flt.kinds))})")
        args += list(flt.kinds)
    if flt.folders:
        ors = []
        for folder in flt.folders:
            # paths under `folder/` sort between "folder/" and "folder0" ('0' follows '/'):
            # a range the path index answers, where a prefix test would read every row
            base = folder.rstrip("/")
            ors.append(f"(f.path >= {mark} AND f.path < {mark})")
            args += [base + "/", base + "0"]
        clauses.append("(" + " OR ".join(ors) + ")")
    if flt.after is not None:
        clauses.append(f"f.taken_at >= {mark}")
        args.append(flt.after)
    if flt.before is not None:
        clauses.append(f"f.taken_at < {mark}")
        args.append(flt.before)
    return " AND ".join(clauses), args


def _name_folder(path: str) -> tuple[str, str]:
    p = Path(path)
    return name_terms(p.name), name_terms(p.parent.name)


def _file_row(r: sqlite3.Row) -> FileRow:
    return FileRow(
        id=r["id"],
        root_id=r["root_id"],
        path=r["path"],
        path_raw=bytes(r["path_raw"]),
        kind=r["kind"],
        size=r["size"],
        mtime_ns=r["mtime_ns"],
        content_hash=r["content_hash"],
        state=r["state"],
        error=r["error"],
        taken_at=r["taken_at"],
    )
