"""A library directory: one active model's catalogue + vector store, a lock, and migrations.

Layout (every file lives inside the library directory the user chose):

    magpie-library.json      which model is active, which models exist, a migration target
    lock                     held (flock) while a process uses the library; freed on crash
    models/<fingerprint>/    catalogue.sqlite (+ WAL) and vectors.* for that model only

Vectors of two models never share a catalogue or an index: the folder name is the model's
fingerprint, and a library opened with another model is refused, naming both.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from indexer.atomic import atomic_write_bytes
from indexer.catalogue import Catalogue
from indexer.catalogue_api import CatalogueLike, JournalledCatalogue
from indexer.errors import (
    ConfigError,
    LibraryDamaged,
    LibraryError,
    MagpieError,
    cannot_write_library,
)
from indexer.specs import SPECS, ModelSpec
from indexer.stores import WatchedStore, make_store, vector_meta
from indexer.vectors import VectorStore

POINTER = "magpie-library.json"
FORMAT = 1
ACK_KEY = "vectors_acked"  # a server catalogue: journal point the vector store holds up to


class LibraryInUse(LibraryError):
    pass


class NotALibrary(LibraryError):
    """The folder holds other things: Magpie writes its files there only when asked to."""


# What a folder may hold and still count as empty for a new library: its own leftovers from
# a first open that stopped before the pointer file was written.
_OWN_NAMES = {"lock", "models", POINTER}


def is_library(root: Path) -> bool:
    return (root / POINTER).exists()


def foreign_entries(root: Path) -> list[str]:
    """Names in `root` that are not Magpie's own (sorted); [] for a missing or empty folder."""
    try:
        return sorted(n for n in os.listdir(root) if n not in _OWN_NAMES
                      and not n.startswith(POINTER + "."))
    except FileNotFoundError:
        return []


TOKENIZER_META = "tokenizer_sha256"


class TokenizerDiffers(LibraryError):
    """The model's tokenizer files are not those the library's vectors were made with."""


class ModelMismatch(LibraryError):
    def __init__(self, message: str, library_model: str, requested_model: str) -> None:
        super().__init__(message)
        self.library_model = library_model
        self.requested_model = requested_model


# -- process-wide lock registry (flock is per open file, so share one fd per library) -------
_locks: dict[str, tuple[int, int]] = {}
_locks_guard = threading.Lock()


def _acquire(root: Path) -> None:
    key = os.path.realpath(root)
    with _locks_guard:
        if key in _locks:
            fd, n = _locks[key]
            _locks[key] = (fd, n + 1)
            return
        lock = root / "lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except IsADirectoryError:
            raise LibraryDamaged(lock, "is a folder, not Magpie's lock file",
                                 "Move that folder away (or delete it if it is empty) and run "
                                 "the command again") from None
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise cannot_write_library(root, exc) from None
            if exc.errno == errno.ELOOP:
                raise LibraryDamaged(lock, "is a symbolic link, not Magpie's lock file") from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise LibraryDamaged(lock, "is not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 32, 0).decode().strip() or "unknown"
            except OSError:
                holder = "unknown"
            os.close(fd)
            raise LibraryInUse(
                f"library {root} is in use by another Magpie process (pid {holder}); "
                "close that window or wait for its job to finish"
            ) from None
        _locks[key] = (fd, 1)


def check_writable(root: Path) -> None:
    """Raise the LibraryError an open for writing would raise about the lock (in use, a
    folder, a read-only disk) without opening anything else: lets a long command (a
    migration) refuse before it loads a model."""
    root = Path(root).expanduser().absolute()
    _acquire(root)
    _release(root)


def _stamp(root: Path) -> None:
    """Write our pid into the held lock, once the open succeeded: a refused open leaves the
    library byte-for-byte as it was."""
    key = os.path.realpath(root)
    with _locks_guard:
        fd, _n = _locks[key]
        if os.pread(fd, 32, 0) != str(os.getpid()).encode():
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)


def _release(root: Path) -> None:
    key = os.path.realpath(root)
    with _locks_guard:
        if key not in _locks:
            return
        fd, n = _locks[key]
        if n > 1:
            _locks[key] = (fd, n - 1)
            return
        del _locks[key]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@dataclass
class LibraryInfo:
    """What the pointer file says, readable without taking the lock."""

    active: str | None
    models: dict[str, dict]
    migration: str | None
    store: str | None = None  # vector store URL; None = embedded hnswlib
    catalogue: str | None = None  # catalogue URL; None = the embedded SQLite file
    searcher: bool = False  # joined a shared library to search it; its indexer is elsewhere

    @classmethod
    def read(cls, root: Path) -> LibraryInfo:
        path = root / POINTER
        if not path.exists():
            return cls(None, {}, None)
        try:
            data = json.loads(path.read_text("utf-8"))
        except IsADirectoryError:
            raise LibraryDamaged(path, "is a folder, not the library's description") from None
        except OSError as exc:
            raise LibraryError(f"cannot read {path} ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise LibraryDamaged(path, f"is not valid JSON ({exc})") from None
        problem = _pointer_problem(data)
        if problem:
            raise LibraryDamaged(path, problem)
        if data.get("format", 0) > FORMAT:
            raise LibraryError(f"{root} was made by a newer Magpie; update Magpie to open it")
        return cls(data.get("active"), data.get("models", {}), data.get("migration"),
                   data.get("store"), data.get("catalogue"), data.get("searcher", False))

    def write(self, root: Path) -> None:
        data = {"format": FORMAT, "active": self.active, "models": self.models,
                "migration": self.migration, "store": self.store}
        if self.catalogue is not None:  # older builds read a pointer without it unchanged
            data["catalogue"] = self.catalogue
        if self.searcher:
            data["searcher"] = True
        atomic_write_bytes(root / POINTER, json.dumps(data, indent=2).encode())

    def active_name(self) -> str | None:
        return self.models.get(self.active or "", {}).get("name")


def _pointer_problem(data: object) -> str | None:
    """What is wrong with the pointer file's content, or None (each field has one type)."""
    if not isinstance(data, dict):
        return f"does not hold a JSON object (it holds {type(data).__name__})"
    fields: dict[str, type | tuple[type, ...]] = {
        "format": int, "active": (str, type(None)), "models": dict,
        "migration": (str, type(None)), "store": (str, type(None)),
        "catalogue": (str, type(None)), "searcher": bool}
    for name, kind in fields.items():
        if name in data and (not isinstance(data[name], kind)
                             or (isinstance(data[name], bool) and kind is not bool)):
            return f"has a malformed {name!r} field ({data[name]!r})"
    models = data.get("models", {})
    if not all(isinstance(k, str) and isinstance(v, dict) for k, v in models.items()):
        return "has a malformed 'models' field"
    for name in ("active", "migration"):
        if data.get(name) is not None and data[name] not in models:
            return f"names a {name} model {data[name]!r} it does not describe"
    return None


def check_shared(url: str | None, store: str | None) -> None:
    """A server catalogue is for a library many machines search, so its vectors must be on a
    server too (an hnswlib index lives in one library folder)."""
    if url is None:
        return
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"unknown catalogue {url!r}; use postgresql://USER@HOST:PORT/DB "
                          "(or leave it out for the embedded SQLite catalogue)")
    if not store or store == "hnsw":
        raise ConfigError("a postgresql:// catalogue is shared by several machines, so the "
                          "vectors must be shared too: add --vector-store "
                          "milvus://HOST:PORT/COLLECTION")


def open_catalogue(url: str | None, folder: Path, fingerprint: str, store: str | None, *,
                   readonly: bool, create: bool) -> CatalogueLike:
    """The SQLite file in the model's folder, or the model's schema in a PostgreSQL server."""
    if url is None:
        return Catalogue(folder / "catalogue.sqlite", readonly=readonly, create=create)
    check_shared(url, store)
    from indexer.pg_catalogue import PgCatalogue  # optional dependency

    return PgCatalogue(url, fingerprint, readonly=readonly, create=create and not readonly)


def _join_shared(root: Path, spec: ModelSpec, catalogue: str, store: str | None) -> LibraryInfo:
    """What makes an empty folder a searcher of a shared library: the pointer names the model
    and the two URLs; every answer comes from the servers. Written by the caller once the
    servers answered."""
    check_shared(catalogue, store)
    if root.exists() and not root.is_dir():
        raise LibraryError(f"{root} is not a folder; choose a library folder with --library")
    others = foreign_entries(root)
    if others:
        raise NotALibrary(f"{root} is not a Magpie library and already holds other files; "
                          "choose an empty folder for a searcher of a shared library")
    fp = spec.fingerprint()
    return LibraryInfo(fp, {fp: model_record(spec)}, None, store, catalogue, searcher=True)


def model_record(spec: ModelSpec) -> dict:
    return {"name": spec.name, "label": spec.label(), "identity": spec.identity()}


def spec_for_library(root: Path) -> ModelSpec | None:
    """The spec this build knows that matches the library's active model, if any."""
    info = LibraryInfo.read(root)
    if info.active is None:
        return None
    for spec in SPECS.values():
        if spec.fingerprint() == info.active:
            return spec
    return None


def _mismatch(root: Path, info: LibraryInfo, spec: ModelSpec) -> ModelMismatch:
    have = info.models.get(info.active or "", {}).get("label", info.active)
    return ModelMismatch(
        f"library {root} was built with {have}; you asked for {spec.label()}. "
        f"Vectors of different models are never mixed: search with "
        f"--model {info.active_name()}, or switch the library with "
        f"`magpie migrate --model {spec.name}`",
        library_model=info.active_name() or str(info.active),
        requested_model=spec.name,
    )


class Library:
    """An open library for one model. Close it (or use `with`) to flush and release the lock."""

    def __init__(
        self,
        root: Path,
        spec: ModelSpec,
        *,
        target: bool = False,
        store: str | None = None,
        readonly: bool = False,
        create: bool = False,
        catalogue: str | None = None,
    ) -> None:
        """create: this model is new to the library, so its catalogue may be made here; else
        a missing or empty catalogue is damage, named and never silently replaced.
        catalogue: a postgresql:// URL keeps the catalogue in a server (shared by searchers on
        other machines; needs a server vector store too); None is the SQLite file."""
        self.root = root
        self.spec = spec
        self.readonly = readonly
        self.fingerprint = spec.fingerprint()
        self.folder = root / "models" / self.fingerprint
        if create and not readonly:
            self.folder.mkdir(parents=True, exist_ok=True)
        self.is_migration_target = target
        self.catalogue_url = catalogue
        self.catalogue: CatalogueLike = open_catalogue(
            catalogue, self.folder, self.fingerprint, store, readonly=readonly, create=create)
        recorded = self.catalogue.get_meta("fingerprint")
        if recorded is None and (readonly or not create):
            self.catalogue.close()
            raise LibraryDamaged(self.catalogue.path, "does not record which model made it")
        if recorded is None:
            self.catalogue.set_meta("fingerprint", self.fingerprint)
            self.catalogue.set_meta("model", json.dumps(model_record(spec)))
        elif recorded != self.fingerprint:
            self.catalogue.close()
            raise LibraryError(f"{self.folder} holds another model's catalogue ({recorded})")
        self._readers = threading.local()
        self._reader_list: list[Catalogue] = []
        self.store_url = store
        try:
            self.vectors: VectorStore = make_store(
                store, self.folder, spec.embed_dim, self.fingerprint, self._allowed_ids,
                readonly=readonly, stored_vectors=self._stored_vectors,
            )
        except BaseException:
            self.catalogue.close()
            raise
        if catalogue is not None and not readonly:
            self.vectors = WatchedStore(self.vectors)
        try:
            self.reconcile()
        except BaseException:
            self.vectors.close()
            self.catalogue.close()
            raise

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        root: Path | str,
        spec: ModelSpec | None = None,
        *,
        create: bool = True,
        store: str | None = None,
        readonly: bool = False,
        allow_non_empty: bool = False,
        catalogue: str | None = None,
    ) -> Library:
        """Open (or create) a library. `store` and `catalogue` are only used when creating
        it; an existing library always uses the vector store and catalogue it was created with.
        A readonly open of a folder that is no library yet, given both URLs, makes it a
        searcher of that shared library (the folder remembers the URLs, nothing else).

        readonly: no lock, nothing written (the vector store catches up in memory only), so
        a search can run while another process indexes (SQLite WAL readers see committed
        batches; the index file is replaced atomically).
        """
        root = Path(root).expanduser().absolute()
        if readonly:
            return cls._open_readonly(root, spec, catalogue, store)
        if not root.exists():
            if not create:
                raise LibraryError(f"no library at {root}")
            try:
                root.mkdir(parents=True)
            except OSError as exc:
                raise LibraryError(f"cannot create the library {root} ({exc.strerror})") from None
        elif not root.is_dir():
            raise LibraryError(f"{root} is not a folder; choose a library folder with --library")
        elif not is_library(root):
            others = foreign_entries(root)
            if not create:
                raise LibraryError(f"no library at {root}")
            if others and not allow_non_empty:
                shown = ", ".join(others[:3]) + (", …" if len(others) > 3 else "")
                raise NotALibrary(
                    f"{root} is not a Magpie library and already holds other files ({shown}); "
                    "choose an empty folder for a new library (nothing was written there)"
                )
        if LibraryInfo.read(root).searcher:  # (a damaged pointer is named here, too)
            raise LibraryError(
                f"{root} searches a shared library whose catalogue and vectors are on servers; "
                f"search it with `magpie search --library {root}`, and index from the "
                "indexer's own library folder (nothing was changed)")
        _acquire(root)
        try:
            info = LibraryInfo.read(root)
            if spec is None:
                spec = spec_for_library(root)
                if spec is None:
                    if info.active is None:
                        raise LibraryError(f"{root} has no model yet; choose one with --model")
                    raise LibraryError(
                        f"{root} was built with model {info.active_name()!r}, which this build "
                        "of Magpie does not know"
                    )
            fp = spec.fingerprint()
            new = info.active is None
            if new:
                info.active = fp
                info.models[fp] = model_record(spec)
                info.store = store
                info.catalogue = catalogue
                check_shared(catalogue, store)
                info.write(root)
            elif store is not None and store != info.store:
                raise LibraryError(
                    f"library {root} keeps its vectors in {info.store or 'hnsw'}; "
                    f"it cannot be switched to {store}"
                )
            elif catalogue is not None and catalogue != info.catalogue:
                raise LibraryError(
                    f"library {root} keeps its catalogue in {info.catalogue or 'SQLite'}; "
                    f"it cannot be switched to {catalogue}"
                )
            elif info.active != fp:
                raise _mismatch(root, info, spec)
            library = cls(root, spec, store=info.store, create=new, catalogue=info.catalogue)
            _stamp(root)
            return library
        except BaseException:
            _release(root)
            raise

    @classmethod
    def _open_readonly(cls, root: Path, spec: ModelSpec | None, catalogue: str | None = None,
                       store: str | None = None) -> Library:
        info = LibraryInfo.read(root)
        joining = info.active is None and catalogue is not None and spec is not None
        if joining and spec is not None and catalogue is not None:
            info = _join_shared(root, spec, catalogue, store)
        if info.active is None:
            raise LibraryError(f"no library at {root} yet; run `magpie index FOLDER` first")
        if catalogue is not None and catalogue != info.catalogue:
            raise LibraryError(f"library {root} keeps its catalogue in "
                               f"{info.catalogue or 'SQLite'}, not {catalogue}")
        spec = spec or spec_for_library(root)
        if spec is None:
            raise LibraryError(
                f"{root} was built with model {info.active_name()!r}, which this build of "
                "Magpie does not know"
            )
        if spec.fingerprint() != info.active:
            raise _mismatch(root, info, spec)
        library = cls(root, spec, store=info.store, readonly=True, catalogue=info.catalogue)
        if joining:  # written once the servers answered: a failed join leaves nothing
            try:
                root.mkdir(parents=True, exist_ok=True)
                info.write(root)
            except OSError as exc:
                library.close()
                raise cannot_write_library(root, exc) from None
        return library

    @classmethod
    def open_migration_target(cls, root: Path, spec: ModelSpec) -> Library:
        """The side-by-side library a migration fills; the active one keeps answering."""
        root = Path(root).expanduser().absolute()
        LibraryInfo.read(root)
        _acquire(root)
        try:
            info = LibraryInfo.read(root)
            fp = spec.fingerprint()
            if info.active == fp:
                raise LibraryError(f"{root} already uses {spec.label()}")
            started = info.migration == fp
            if not started:
                info.migration = fp
                info.models[fp] = model_record(spec)
                info.write(root)
            library = cls(root, spec, target=True, store=info.store, catalogue=info.catalogue,
                          create=not (started and (root / "models" / fp).is_dir()))
            _stamp(root)
            return library
        except BaseException:
            _release(root)
            raise

    def activate(self) -> None:
        """Make this (migration target) library the active one, atomically."""
        info = LibraryInfo.read(self.root)
        info.active = self.fingerprint
        info.migration = None
        info.models[self.fingerprint] = model_record(self.spec)
        self.vectors.flush()
        info.write(self.root)
        self.is_migration_target = False

    def check_tokenizer(self, files: dict[str, str] | None) -> None:
        """A model with its own tokenizer (SigLIP i18n) makes vectors that depend on its files,
        whose hashes are not pinned in the build but recorded at their first download
        (indexer/tokenizer_files.py). The first use with this library records them in its
        catalogue beside the model record; any other set of files is refused afterwards."""
        if not files:
            return
        got = json.dumps(files, sort_keys=True)
        have = self.catalogue.get_meta(TOKENIZER_META)
        if have is None:
            if not self.readonly:
                self.catalogue.set_meta(TOKENIZER_META, got)
            return
        if have != got:
            raise TokenizerDiffers(
                f"The tokenizer files of {self.spec.name} on this computer are not the ones "
                f"{self.root} was built with (their sha256 differ), so its vectors and new ones "
                "would not agree. Re-download the model's files, or index into a new library.")

    def close(self) -> None:
        try:
            if isinstance(self.vectors, WatchedStore):
                try:
                    self._acknowledge()
                except MagpieError:  # a server is down: the next open replays from the last
                    pass             # acknowledged point instead
            self.vectors.close()
            self.catalogue.close()
            for cat in self._reader_list:
                cat.close()
        finally:
            if not self.readonly:
                _release(self.root)

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- consistency ------------------------------------------------------------------------
    def reconcile(self) -> tuple[int, int]:
        """Make the vector store agree with SQLite (the truth): add missing, drop extra."""
        if self.catalogue_url is not None:
            return self._reconcile_journal()
        sql_ids = self.catalogue.chunk_ids()
        live = self.vectors.ids()
        # both are id sets (a primary key, a store's labels): assume_unique skips np.unique,
        # which imports numpy.ma (~50 ms of every process that opens a library)
        missing = np.setdiff1d(sql_ids, live, assume_unique=True)
        extra = np.setdiff1d(live, sql_ids, assume_unique=True)
        if len(extra):
            self.vectors.delete(extra)
        for start in range(0, len(missing), 8192):
            part = missing[start : start + 8192]
            self.vectors.add(part, self.catalogue.vectors_for(part.tolist(), self.spec.embed_dim),
                             vector_meta(self.catalogue, part))
        if (len(missing) or len(extra)) and not self.readonly:
            self.vectors.flush()
        return len(missing), len(extra)

    def _reconcile_journal(self) -> tuple[int, int]:
        """A server catalogue: replay only the changes after the point the vector store last
        acknowledged (a journal range, never a listing of every id). Searchers replay
        nothing: the one indexer keeps the shared store complete, and a chunk the store still
        lacks is simply not found until it does."""
        if self.readonly:
            return 0, 0
        cat = cast(JournalledCatalogue, self.catalogue)
        point = int(cat.get_meta(ACK_KEY) or 0)
        if point and self.vectors.count() == 0 and cat.counts()["chunks"]:
            return self._resend_everything()  # an emptied or replaced collection
        added = removed = 0
        while True:
            upto, new, gone = cat.changes_since(point)
            if upto == point:
                break
            if len(gone):
                self.vectors.delete(gone)
            for start in range(0, len(new), 8192):
                part = new[start : start + 8192]
                self.vectors.add(part, cat.vectors_for(part.tolist(), self.spec.embed_dim),
                                 vector_meta(cat, part))
            added, removed, point = added + len(new), removed + len(gone), upto
        self.vectors.flush()
        self._acknowledge(point)
        return added, removed

    def _resend_everything(self) -> tuple[int, int]:
        cat = cast(JournalledCatalogue, self.catalogue)
        head = cat.journal_head()
        n = 0
        for ids, vecs in cat.iter_vectors(8192):
            self.vectors.add(ids, vecs, vector_meta(self.catalogue, ids))
            n += len(ids)
        self.vectors.flush()
        self._acknowledge(head)
        return n, 0

    def _acknowledge(self, point: int | None = None) -> None:
        """Record that the vector store holds every change up to `point` (default: all so
        far), and forget the journal before it. Nothing is acknowledged after a store
        failure in this session: the next open replays from the last good point."""
        store = self.vectors
        if isinstance(store, WatchedStore) and store.failed:
            return
        cat = cast(JournalledCatalogue, self.catalogue)
        if point is None:
            point = cat.journal_head()
            try:
                store.flush()
            except Exception:  # noqa: BLE001 - closing: the next open replays instead
                return
            if isinstance(store, WatchedStore) and store.failed:
                return
        if point > int(cat.get_meta(ACK_KEY) or 0):
            cat.set_meta(ACK_KEY, str(point))
            cat.prune_journal(point)

    def _allowed_ids(self, flt, among: np.ndarray | None = None) -> np.ndarray:
        return self.reader().chunk_ids_matching(flt, among)

    def _stored_vectors(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.reader().stored_vectors(ids, self.spec.embed_dim)

    def reader(self) -> CatalogueLike:
        """A per-thread read connection: searches see committed batches only, never half.
        A server catalogue is thread-safe itself (a pool of read-only connections)."""
        if self.catalogue_url is not None:
            return self.catalogue
        cat = getattr(self._readers, "cat", None)
        if cat is None:
            cat = Catalogue(self.folder / "catalogue.sqlite", readonly=True)
            self._readers.cat = cat
            self._reader_list.append(cat)
        return cat
