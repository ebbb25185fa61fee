"""Index roots into a library: scan, work out what changed, embed only that, keep it durable.

Per run: scan every root; a file whose size and mtime are unchanged is skipped without
reading it; a new path whose content hash matches a vanished file is a move (vectors kept);
identical content already indexed elsewhere has its vectors copied; the rest is embedded in
batches, each committed to SQLite in one transaction before the vector store sees it.
A root that cannot be reached (an unplugged drive) keeps its entries: absence is not deletion.
"""
from __future__ import annotations

import hashlib
import os
import time
from typing import cast
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from indexer.catalogue import Catalogue, FileRow
from indexer.decode import CHANGED, MAX_TEXT_BYTES, READ_BLOCK, is_transient, read_note_bytes
from indexer.errors import NotIndexed
from indexer.jobs import Cancelled, FileError, IndexReport, JobControl, Progress
from indexer.library import Library
from indexer.ocr import OcrUnavailable
from indexer.catalogue_api import supports_ocr
from indexer.ocr_pass import OcrPass, OcrReport
from indexer.pipeline import Embedded, Embedder, EncoderLike, Stamp, WorkItem, stamp_of
from indexer.scan import Entry, ScanProblem, scan, scan_within
from indexer.stores import vector_meta

SAVE_EVERY_S = 30.0


CHANGED_REASON = CHANGED
REQUEUE_ROUNDS = 2  # a file edited between hashing and decoding is hashed and embedded again


def content_hash(path: str, kind: str = "image", check: Callable[[], None] | None = None) -> str:
    """The hash that names what is embedded. Pictures: every byte. Notes: the bytes a note is
    ever read to (the first MAX_TEXT_BYTES) plus, past that cap, the size, so a sparse 50 GB
    .txt costs 4 MB, not 50 GB (notes within the cap hash exactly as before). `check` runs
    between 1 MiB blocks: pause and cancel take effect inside a huge file."""
    h = hashlib.blake2b(digest_size=16)
    if kind == "text":
        data = read_note_bytes(path, check)
        h.update(data)
        if len(data) >= MAX_TEXT_BYTES:
            size = os.path.getsize(path)
            if size > len(data):
                h.update(b"\0size:%d" % size)
        return h.hexdigest()
    with open(path, "rb") as fh:
        while True:
            if check is not None:
                check()
            chunk = fh.read(READ_BLOCK)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


def hash_file(path: str, kind: str, check: Callable[[], None] | None = None) -> tuple[str, Stamp]:
    """(content hash, the file's stamp taken before hashing); a file whose stamp differs after
    decoding was edited in between and is re-queued."""
    before = stamp_of(os.stat(path))
    return content_hash(path, kind, check), before


def normalise_root(path: str | os.PathLike) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


@dataclass
class _Plan:
    to_embed: list[WorkItem] = field(default_factory=list)
    unchanged: int = 0
    moved: int = 0
    copied: int = 0
    removed: int = 0
    added: int = 0
    updated: int = 0
    errors: int = 0
    embedded: int = 0  # committed so far: what a cancelled run reports as done


@dataclass
class _RootDiff:
    """One root's scan against its catalogue entries."""

    known: dict[bytes, FileRow]  # the catalogue's entries for the scanned paths, by raw path
    fresh: list[Entry] = field(default_factory=list)  # new or possibly changed: to hash
    vanished: dict[bytes, FileRow] = field(default_factory=dict)  # known, not seen on disk
    vanished_by_hash: dict[str, FileRow] = field(default_factory=dict)  # indexed ones: moves


def _settled(row: FileRow, entry: Entry) -> bool:
    """Same size and mtime as recorded, and nothing left to do for it (not pending, not a
    transient error to retry): skipped without reading it."""
    return (row.size == entry.size and row.mtime_ns == entry.mtime_ns
            and row.state != "pending"
            and not (row.state == "error" and is_transient(row.error)))


class Indexer:
    """Runs one indexing job. Built once in app/ with the library and encoder it should use."""

    def __init__(
        self,
        library: Library,
        encoder: EncoderLike,
        *,
        control: JobControl | None = None,
        workers: int | None = None,
        batch_size: int = 32,
        on_progress: Callable[[Progress], None] | None = None,
        on_error: Callable[[FileError], None] | None = None,
        ocr: bool = False,
    ) -> None:
        self.library = library
        self.encoder = encoder
        self.control = control or JobControl()
        self.workers = workers
        self.batch_size = batch_size
        self.on_progress = on_progress or (lambda p: None)
        self.on_error = on_error or (lambda e: None)
        self.ocr = ocr  # read the words in pictures after embedding (indexer/ocr_pass.py)

    # -- roots ------------------------------------------------------------------------------
    def add_roots(self, roots: list[str | os.PathLike]) -> list[str]:
        out = []
        for r in roots:
            path = normalise_root(r)
            if not os.path.isdir(path):
                raise NotADirectoryError(f"not a folder: {path}")
            self.library.catalogue.add_root(path)
            out.append(path)
        return out

    def remove_root(self, root: str | os.PathLike) -> int:
        """Forget a root: its vectors leave the index; the user's files are never touched."""
        path = normalise_root(root)
        for rid, rpath in self.library.catalogue.roots():
            if rpath == path:
                chunk_ids = self.library.catalogue.remove_root(rid)
                self.library.vectors.delete(chunk_ids)
                self.library.vectors.flush()
                return len(chunk_ids)
        raise NotIndexed(f"{path} is not an indexed folder")

    # -- the job ----------------------------------------------------------------------------
    def run(self, roots: list[str | os.PathLike] | None = None) -> IndexReport:
        """Index the given roots (added if new) or, with None, every root of the library."""
        cat = self.library.catalogue
        if roots:
            self.add_roots(roots)
            wanted = {normalise_root(r) for r in roots}
            targets = [(rid, p) for rid, p in cat.roots() if p in wanted]
        else:
            targets = cat.roots()
        return self._run(targets)

    def _run(self, targets: list[tuple[int, str]],
             scopes: dict[tuple[int, str], list[str]] | None = None,
             finish_pending: bool = True) -> IndexReport:
        started = time.monotonic()
        cat = self.library.catalogue
        plan = _Plan()
        embedded = 0
        cancelled = False
        text: OcrReport | None = None
        text_note = ""
        try:
            for rid, rpath in targets:
                within = scopes.get((rid, rpath)) if scopes is not None else None
                self._plan_root(rid, rpath, plan, within)
            # Files left pending by an interrupted run are finished too.
            queued = {w.file_id for w in plan.to_embed}
            for row in cat.pending_files() if finish_pending else ():
                if row.id not in queued:
                    plan.to_embed.append(WorkItem(row.id, os.fsdecode(row.path_raw), row.kind))
            embedded = self._embed(plan)
            if self.ocr and supports_ocr(self.library.catalogue):  # after the vectors, so search
                # works while text is read; a server catalogue keeps no OCR text yet
                self.library.vectors.flush()
                try:
                    text = OcrPass(cast(Catalogue, self.library.catalogue), control=self.control,
                                   on_progress=self.on_progress, on_error=self.on_error).run()
                except OcrUnavailable as exc:
                    text_note = str(exc)
        except Cancelled:
            cancelled = True
            embedded = plan.embedded
        finally:
            self.library.vectors.flush()
        report = IndexReport(
            added=plan.added,
            updated=plan.updated,
            moved=plan.moved,
            copied=plan.copied,
            removed=plan.removed,
            unchanged=plan.unchanged,
            errors=plan.errors,
            embedded_files=embedded,
            to_embed=len(plan.to_embed),
            seconds=time.monotonic() - started,
            cancelled=cancelled,
            text_looked=text.looked if text else 0,
            text_found=text.with_text if text else 0,
            text_errors=text.errors if text else 0,
            text_note=text_note,
        )
        self.on_progress(Progress("done", embedded, len(plan.to_embed), errors=plan.errors))
        return report

    def update(self, paths: list[str | os.PathLike], *,
               finish_pending: bool = True) -> IndexReport:
        """Bring the library up to date for these changed paths only (a watcher's batch):
        files and folders at or under them are rescanned; the rest of each root is not
        walked. Paths outside every root are ignored; an unreachable root keeps its entries.
        finish_pending=False leaves files an interrupted run left elsewhere for a run the
        person can see (the window resumes them visibly; a watcher's batch stays small)."""
        cat = self.library.catalogue
        roots = cat.roots()
        scoped: dict[tuple[int, str], list[str]] = {}
        for p in paths:
            path = normalise_root(p)
            for rid, rpath in roots:
                if path == rpath or path.startswith(rpath.rstrip(os.sep) + os.sep):
                    scoped.setdefault((rid, rpath), []).append(path)
                    break
        return self._run(list(scoped), scopes=scoped, finish_pending=finish_pending)

    def _plan_root(self, root_id: int, root: str, plan: _Plan,
                   within: list[str] | None = None) -> None:
        """Bring one root's catalogue entries in line with the disk, except the embedding:
        scan, keep what is unchanged, hash the rest, then each new or changed file is a move,
        a copy of content already indexed, or queued in `plan.to_embed`; vanished files go.
        With `within`, only those paths under the root are looked at (a watcher's batch)."""
        if self._unreachable(root_id, root, plan, "folder not reachable (unplugged or removed?)"):
            return
        seen, problems = self._scan_root(root, within)
        # vanished during the scan: keep what we had
        if self._unreachable(root_id, root, plan, "folder disappeared during the scan"):
            return
        self._record_problems(root_id, within, problems, plan)
        diff = self._diff(root_id, within, seen, plan)
        hashes = self._hash_all(diff.fresh)
        for entry in diff.fresh:
            self.control.checkpoint()
            self._place(root_id, entry, hashes.get(entry.path), diff, plan)
        self._forget(diff.vanished, plan)

    def _unreachable(self, root_id: int, root: str, plan: _Plan, reason: str) -> bool:
        """True (and the reason recorded) when the root is not a folder now; its entries stay:
        an unplugged drive is not a deletion."""
        if os.path.isdir(root):
            return False
        self.library.catalogue.set_scan_errors(root_id, [(root, reason)])
        self.on_error(FileError(root, reason))
        plan.errors += 1
        return True

    def _scan_root(self, root: str, within: list[str] | None
                   ) -> tuple[list[Entry], list[ScanProblem]]:
        """Every file under the root (or under `within`), reporting progress while it walks."""
        problems: list[ScanProblem] = []
        seen: list[Entry] = []
        last = 0.0
        skip = (str(self.library.root),)
        entries = (scan(root, skip=skip, on_problem=problems.append) if within is None
                   else scan_within(root, within, skip=skip, on_problem=problems.append))
        for entry in entries:
            seen.append(entry)
            now = time.monotonic()
            if now - last > 0.1:
                self.control.checkpoint()
                self.on_progress(Progress("scanning", len(seen), 0, current=entry.path))
                last = now
        return seen, problems

    def _record_problems(self, root_id: int, within: list[str] | None,
                         problems: list[ScanProblem], plan: _Plan) -> None:
        """The scan's problems replace the root's (or those paths') previous ones."""
        cat = self.library.catalogue
        rows = [(p.path, p.reason) for p in problems]
        if within is None:
            cat.set_scan_errors(root_id, rows)
        else:
            cat.set_scan_errors_within(root_id, within, rows)
        for p in problems:
            self.on_error(FileError(p.path, p.reason))
        plan.errors += len(problems)

    def _diff(self, root_id: int, within: list[str] | None, seen: list[Entry],
              plan: _Plan) -> _RootDiff:
        """Split the scan against the catalogue: unchanged files (same size and mtime, settled)
        are counted and left; the rest are `fresh`; known paths not seen have vanished."""
        cat = self.library.catalogue
        known = (cat.files_under(root_id) if within is None
                 else cat.files_within(root_id, within))
        present: dict[bytes, Entry] = {os.fsencode(e.path): e for e in seen}
        diff = _RootDiff(known, vanished={k: v for k, v in known.items() if k not in present})
        for raw, entry in present.items():
            row = known.get(raw)
            if row is not None and _settled(row, entry):
                plan.unchanged += 1
            else:
                diff.fresh.append(entry)
        for row in diff.vanished.values():
            if row.content_hash and row.state == "indexed":
                diff.vanished_by_hash.setdefault(row.content_hash, row)
        return diff

    def _place(self, root_id: int, entry: Entry, hashed: tuple[str, Stamp] | None,
               diff: _RootDiff, plan: _Plan) -> None:
        """One new or changed file: unreadable, the same content after all, a move, a copy of
        content indexed elsewhere, or queued to embed."""
        cat = self.library.catalogue
        row = diff.known.get(os.fsencode(entry.path))
        if hashed is None:  # unreadable now: record the error, go on
            self._unreadable(root_id, entry, plan)
            return
        digest, stamp = hashed
        size, mtime_ns = stamp[0], stamp[1]  # as hashed (the scan's stat may be older)
        if row is not None and row.content_hash == digest and row.state == "indexed":
            cat.touch(row.id, size, mtime_ns)
            plan.unchanged += 1
            return
        if row is None and digest in diff.vanished_by_hash:
            self._move(diff.vanished_by_hash.pop(digest), root_id, entry, stamp, diff)
            plan.moved += 1
            return
        fid = cat.upsert_pending(root_id, entry.path, entry.kind, size, mtime_ns, digest)
        if self._copy_twin(fid, entry, digest):
            plan.copied += 1
        else:
            plan.to_embed.append(WorkItem(fid, entry.path, entry.kind, stamp))
        if row is None:
            plan.added += 1
        else:
            plan.updated += 1

    def _unreadable(self, root_id: int, entry: Entry, plan: _Plan) -> None:
        cat = self.library.catalogue
        fid = cat.upsert_pending(root_id, entry.path, entry.kind, entry.size, entry.mtime_ns,
                                 None)
        reason = "cannot read file (vanished or permission denied)"
        cat.commit_embedded([], [(fid, reason)])
        self.on_error(FileError(entry.path, reason))
        plan.errors += 1

    def _move(self, old: FileRow, root_id: int, entry: Entry, stamp: Stamp,
              diff: _RootDiff) -> None:
        """A vanished file's content at a new path: same row, same vectors, new path."""
        self.library.catalogue.move_file(old.id, root_id, entry.path, stamp[0], stamp[1])
        # same vectors, new path: stores that filter by folder need the new one
        self._add_vectors(self.library.catalogue.chunk_ids_of(old.id))
        diff.vanished.pop(old.path_raw, None)

    def _copy_twin(self, fid: int, entry: Entry, digest: str) -> bool:
        """Identical content already indexed elsewhere (same kind): copy its chunks and
        vectors instead of embedding again. False when there is none."""
        cat = self.library.catalogue
        twin = cat.indexed_file_with_hash(digest, exclude=fid)
        if twin is None or twin.kind != entry.kind:
            return False
        new_ids, replaced = cat.copy_chunks(twin.id, fid)
        self.library.vectors.delete(replaced)
        self._add_vectors(new_ids)
        return True

    def _forget(self, vanished: dict[bytes, FileRow], plan: _Plan) -> None:
        """Files gone from disk (and not moved) leave the catalogue and the vector store."""
        if vanished:
            chunk_ids = self.library.catalogue.delete_files([r.id for r in vanished.values()])
            self.library.vectors.delete(chunk_ids)
            plan.removed += len(vanished)

    def _hash_all(self, entries: list[Entry]) -> dict[str, tuple[str, Stamp]]:
        """Hash in a few threads; each checks pause/cancel between 1 MiB blocks, and a cancel
        drops the files not yet started, so it takes effect within about a block's read."""
        check = self.control.checkpoint

        def one(e: Entry) -> tuple[str, tuple[str, Stamp] | None]:
            check()
            try:
                return e.path, hash_file(e.path, e.kind, check)
            except OSError:
                return e.path, None

        out: dict[str, tuple[str, Stamp]] = {}
        total = len(entries)
        pool = ThreadPoolExecutor(max_workers=4)
        try:
            for i, (path, found) in enumerate(pool.map(one, entries), 1):
                if found is not None:
                    out[path] = found
                if i % 64 == 0 or i == total:
                    check()
                    self.on_progress(Progress("hashing", i, total, current=path))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return out

    def _add_vectors(self, chunk_ids: list[int]) -> None:
        """Send committed chunks to the vector store, with the attributes filters use."""
        if chunk_ids:
            cat = self.library.catalogue
            vecs = cat.vectors_for(chunk_ids, self.library.spec.embed_dim)
            self.library.vectors.add(chunk_ids, vecs, vector_meta(cat, chunk_ids))

    def _embed(self, plan: _Plan) -> int:
        total = len(plan.to_embed)
        if total == 0:
            return 0
        self.library.check_tokenizer(getattr(self.encoder, "tokenizer_sha256", None))
        embedder = Embedder(
            self.encoder, workers=self.workers, batch_size=self.batch_size, control=self.control
        )
        done = 0
        started = time.monotonic()
        paused_before = self.control.paused_seconds
        last_save = started
        self.on_progress(Progress("embedding", 0, total))
        todo = plan.to_embed
        for round_ in range(REQUEUE_ROUNDS + 1):
            changed: list[WorkItem] = []
            for batch in embedder.run(todo):
                changed += [e.item for e in batch if e.changed]
                batch = [e for e in batch if not e.changed]
                if batch:
                    done = self._store(batch, plan, done, total, started, paused_before)
                if time.monotonic() - last_save > SAVE_EVERY_S:
                    self.library.vectors.flush()
                    last_save = time.monotonic()
            if not changed:
                break
            if round_ == REQUEUE_ROUNDS:  # still changing: an error that the next run retries
                self._store([Embedded(i, [], error=CHANGED_REASON) for i in changed], plan, done,
                            total, started, paused_before)
                break
            todo = self._rehash(changed)
        if any(item.kind == "image" for item in plan.to_embed):
            self._record_runtime()
        return done

    def _record_runtime(self) -> None:
        """Which runtime made the pictures' vectors (e.g. "onnxruntime 1.32.0 int8 76cf25b8…"),
        in the library's meta: the fingerprint says which model, this says on what, so a
        library's vectors can be traced to the exact graph that made them."""
        runtime = getattr(self.encoder, "image_runtime", None)
        if isinstance(runtime, str):
            self.library.catalogue.set_meta("image_runtime", runtime)

    def _rehash(self, items: list[WorkItem]) -> list[WorkItem]:
        """Files edited after they were hashed: hash them again and record what was hashed."""
        cat = self.library.catalogue
        out = []
        for item in items:
            row = cat.file_by_id(item.file_id)
            if row is None:
                continue
            try:
                digest, stamp = hash_file(item.path, item.kind, self.control.checkpoint)
            except OSError:  # gone since: decoding it again will say so
                out.append(WorkItem(item.file_id, item.path, item.kind))
                continue
            cat.upsert_pending(row.root_id, item.path, item.kind, stamp[0], stamp[1], digest)
            out.append(WorkItem(item.file_id, item.path, item.kind, stamp))
        return out

    def _store(self, batch: list[Embedded], plan: _Plan, done: int, total: int, started: float,
               paused_before: float) -> int:
        """Commit one embedded batch (one transaction), then tell the vector store."""
        cat = self.library.catalogue
        ok = [(e.item.file_id, e.chunks, e.taken_at, e.body) for e in batch if e.error is None]
        bad = [(e.item.file_id, e.error or "") for e in batch if e.error is not None]
        new_ids, old_ids = cat.commit_embedded(ok, bad)
        self.library.vectors.delete(old_ids)
        self._add_vectors(new_ids)
        for e in batch:
            if e.error is not None:
                plan.errors += 1
                self.on_error(FileError(e.item.path, e.error))
        done += len(batch)
        plan.embedded = done
        now = time.monotonic()
        paused = self.control.paused_seconds - paused_before
        elapsed = max(now - started - paused, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else None
        self.on_progress(
            Progress("embedding", done, total, rate, eta, batch[-1].item.path, plan.errors,
                     self.control.paused)
        )
        return done
