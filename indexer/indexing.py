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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from indexer.catalogue import FileRow
from indexer.decode import is_transient
from indexer.jobs import Cancelled, FileError, IndexReport, JobControl, Progress
from indexer.library import Library
from indexer.ocr import OcrUnavailable
from indexer.ocr_pass import OcrPass, OcrReport
from indexer.pipeline import Embedder, EncoderLike, WorkItem
from indexer.scan import Entry, ScanProblem, scan
from indexer.stores import vector_meta

SAVE_EVERY_S = 30.0


def content_hash(path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


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
        raise KeyError(f"{path} is not an indexed folder")

    # -- the job ----------------------------------------------------------------------------
    def run(self, roots: list[str | os.PathLike] | None = None) -> IndexReport:
        """Index the given roots (added if new) or, with None, every root of the library."""
        started = time.monotonic()
        cat = self.library.catalogue
        if roots:
            self.add_roots(roots)
            wanted = {normalise_root(r) for r in roots}
            targets = [(rid, p) for rid, p in cat.roots() if p in wanted]
        else:
            targets = cat.roots()
        plan = _Plan()
        embedded = 0
        cancelled = False
        text: OcrReport | None = None
        text_note = ""
        try:
            for rid, rpath in targets:
                self._plan_root(rid, rpath, plan)
            # Files left pending by an interrupted run are finished too.
            queued = {w.file_id for w in plan.to_embed}
            for row in cat.pending_files():
                if row.id not in queued:
                    plan.to_embed.append(WorkItem(row.id, os.fsdecode(row.path_raw), row.kind))
            embedded = self._embed(plan)
            if self.ocr:  # after the vectors, so search works while text is read
                self.library.vectors.flush()
                try:
                    text = OcrPass(self.library.catalogue, control=self.control,
                                   on_progress=self.on_progress, on_error=self.on_error).run()
                except OcrUnavailable as exc:
                    text_note = str(exc)
        except Cancelled:
            cancelled = True
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
            seconds=time.monotonic() - started,
            cancelled=cancelled,
            text_looked=text.looked if text else 0,
            text_found=text.with_text if text else 0,
            text_errors=text.errors if text else 0,
            text_note=text_note,
        )
        self.on_progress(Progress("done", embedded, len(plan.to_embed), errors=plan.errors))
        return report

    def _plan_root(self, root_id: int, root: str, plan: _Plan) -> None:
        cat = self.library.catalogue
        if not os.path.isdir(root):
            cat.set_scan_errors(root_id, [(root, "folder not reachable (unplugged or removed?)")])
            self.on_error(FileError(root, "folder not reachable (unplugged or removed?)"))
            plan.errors += 1
            return
        problems: list[ScanProblem] = []
        seen: list[Entry] = []
        last = 0.0
        for entry in scan(root, skip=(str(self.library.root),), on_problem=problems.append):
            seen.append(entry)
            now = time.monotonic()
            if now - last > 0.1:
                self.control.checkpoint()
                self.on_progress(Progress("scanning", len(seen), 0, current=entry.path))
                last = now
        if not os.path.isdir(root):  # vanished during the scan: keep what we had
            cat.set_scan_errors(root_id, [(root, "folder disappeared during the scan")])
            plan.errors += 1
            return
        cat.set_scan_errors(root_id, [(p.path, p.reason) for p in problems])
        for p in problems:
            self.on_error(FileError(p.path, p.reason))
        plan.errors += len(problems)

        known = cat.files_under(root_id)
        present: dict[bytes, Entry] = {os.fsencode(e.path): e for e in seen}
        vanished: dict[bytes, FileRow] = {k: v for k, v in known.items() if k not in present}
        fresh: list[Entry] = []
        for raw, entry in present.items():
            row = known.get(raw)
            if row is None:
                fresh.append(entry)
            elif (row.size == entry.size and row.mtime_ns == entry.mtime_ns
                  and row.state != "pending"
                  and not (row.state == "error" and is_transient(row.error))):
                plan.unchanged += 1
            else:
                fresh.append(entry)
        hashes = self._hash_all(fresh)
        vanished_by_hash: dict[str, FileRow] = {}
        for row in vanished.values():
            if row.content_hash and row.state == "indexed":
                vanished_by_hash.setdefault(row.content_hash, row)
        for entry in fresh:
            self.control.checkpoint()
            digest = hashes.get(entry.path)
            raw = os.fsencode(entry.path)
            row = known.get(raw)
            if digest is None:  # unreadable now: record it as an error, keep going
                fid = cat.upsert_pending(root_id, entry.path, entry.kind, entry.size,
                                         entry.mtime_ns, None)
                cat.commit_embedded([], [(fid, "cannot read file (vanished or permission denied)")])
                plan.errors += 1
                continue
            if row is not None and row.content_hash == digest and row.state == "indexed":
                cat.touch(row.id, entry.size, entry.mtime_ns)
                plan.unchanged += 1
                continue
            if row is None and digest in vanished_by_hash:
                old = vanished_by_hash.pop(digest)
                cat.move_file(old.id, root_id, entry.path, entry.size, entry.mtime_ns)
                # same vectors, new path: stores that filter by folder need the new one
                self._add_vectors(cat.chunk_ids_of(old.id))
                vanished.pop(old.path_raw, None)
                plan.moved += 1
                continue
            fid = cat.upsert_pending(root_id, entry.path, entry.kind, entry.size, entry.mtime_ns,
                                     digest)
            twin = cat.indexed_file_with_hash(digest, exclude=fid)
            if twin is not None and twin.kind == entry.kind:
                new_ids, replaced = cat.copy_chunks(twin.id, fid)
                self.library.vectors.delete(replaced)
                self._add_vectors(new_ids)
                plan.copied += 1
                plan.added += row is None
                plan.updated += row is not None
                continue
            plan.to_embed.append(WorkItem(fid, entry.path, entry.kind))
            if row is None:
                plan.added += 1
            else:
                plan.updated += 1
        if vanished:
            chunk_ids = cat.delete_files([r.id for r in vanished.values()])
            self.library.vectors.delete(chunk_ids)
            plan.removed += len(vanished)

    def _hash_all(self, entries: list[Entry]) -> dict[str, str]:
        def one(e: Entry) -> tuple[str, str | None]:
            try:
                return e.path, content_hash(e.path)
            except OSError:
                return e.path, None

        out: dict[str, str] = {}
        total = len(entries)
        with ThreadPoolExecutor(max_workers=4) as pool:
            for i, (path, digest) in enumerate(pool.map(one, entries), 1):
                if digest is not None:
                    out[path] = digest
                if i % 64 == 0:
                    self.control.checkpoint()
                    self.on_progress(Progress("hashing", i, total, current=path))
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
        cat = self.library.catalogue
        embedder = Embedder(
            self.encoder, workers=self.workers, batch_size=self.batch_size, control=self.control
        )
        done = 0
        started = time.monotonic()
        paused_before = self.control.paused_seconds
        last_save = started
        self.on_progress(Progress("embedding", 0, total))
        for batch in embedder.run(plan.to_embed):
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
            now = time.monotonic()
            if now - last_save > SAVE_EVERY_S:
                self.library.vectors.flush()
                last_save = now
            paused = self.control.paused_seconds - paused_before
            elapsed = max(now - started - paused, 1e-6)
            rate = done / elapsed
            eta = (total - done) / rate if rate > 0 else None
            self.on_progress(
                Progress("embedding", done, total, rate, eta, batch[-1].item.path, plan.errors,
                         self.control.paused)
            )
        return done
