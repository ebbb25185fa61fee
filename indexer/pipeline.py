"""The embedding pipeline: decode in worker processes while the model runs in this one.

Images are decoded by a process pool a bounded window ahead of the model, so every core
decodes while inference runs. A worker that dies (a decoder segfault) costs one file: the
pool is rebuilt and the files that were in flight are retried one at a time to find it. Each
new pool first shows that its workers started (indexer/decode_worker.py): workers that cannot
start stop the run with one message and blame no file.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from indexer.catalogue import NewChunk
from indexer.chunking import chunk_text
from indexer.decode import (
    DECODE_BUDGET_BYTES,
    DecodeError,
    decode_image_job,
    read_text,
)
from indexer.decode_worker import init_decode_worker, start_worker, worker_ready
from indexer.errors import MagpieError
from indexer.jobs import JobControl

CRASH_REASON = "the image decoder crashed on this file (worker process died)"


class DecodeWorkersFailed(MagpieError):
    """The decode processes could not start: no file is to blame, so none is marked failed."""

    def __init__(self, why: str) -> None:
        super().__init__(
            f"the image decoder processes could not start ({why}). No picture was marked as "
            "failed: the next run tries them again. If you start Magpie from a Python script "
            "of your own, put the call under `if __name__ == \"__main__\":` (each decoder "
            "process imports that script again); otherwise run the index again, and report "
            "it if this keeps happening.")


#: a note that takes longer than this to read and split is recorded as an error (paused time
#: not counted), so no single file can hold up its batch or every later run
TEXT_BUDGET_S = 60.0
_clock = time.monotonic  # tests replace it to make the budget deterministic


def too_slow_reason(budget_s: float) -> str:
    return (f"took longer than {budget_s:g} s to read (too long or unusual a note to split "
            f"in time; shorten it or split it into several files)")


class EncoderLike(Protocol):
    """What the pipeline needs from a model; tests can pass a small fake."""

    dim: int

    @property
    def image_size(self) -> int: ...

    @property
    def max_text_tokens(self) -> int: ...

    def encode_images(self, pixels: np.ndarray) -> np.ndarray: ...

    def encode_texts(self, texts: list[str]) -> np.ndarray: ...

    def token_count(self, text: str) -> int: ...


Stamp = tuple[int, int, int]  # (size, mtime_ns, inode) of a file when it was hashed


def stamp_of(st: os.stat_result) -> Stamp:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass(frozen=True)
class WorkItem:
    file_id: int
    path: str
    kind: str  # "image" | "text"
    stamp: Stamp | None = None  # as hashed: a file that differs after decoding is re-queued


@dataclass(frozen=True)
class Embedded:
    item: WorkItem
    chunks: list[NewChunk]
    taken_at: float | None = None
    body: str | None = None  # note text for keyword search
    error: str | None = None
    changed: bool = False  # edited since it was hashed: not stored, hash it again and retry


def changed_since_hashed(item: WorkItem) -> bool:
    """True when the file on disk is no longer the one that was hashed (checked after its
    bytes were decoded, so a vector is never stored under the hash of other bytes)."""
    if item.stamp is None:
        return False
    try:
        return stamp_of(os.stat(item.path)) != item.stamp
    except OSError:
        return False  # gone: the decode's own result (usually "vanished") stands


def planned_workers() -> int:
    """Decode processes for a job starting now: indexer/cpu_budget.py's split of the cores
    free at this moment (sampled afresh; the model's threads, sized when it loads a moment
    later, reuse the same reading)."""
    from indexer.cpu_budget import current_plan

    return current_plan(fresh=True).decode_workers


def _pool_context() -> mp.context.BaseContext:
    if sys.platform.startswith("linux"):
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["indexer.decode"])
        return ctx
    return mp.get_context("spawn")


class Embedder:
    def __init__(
        self,
        encoder: EncoderLike,
        *,
        workers: int | None = None,
        batch_size: int = 32,
        control: JobControl | None = None,
        decode_job: Callable[[str, int], tuple] = decode_image_job,
        gpu_decode: bool | None = None,
        gpu_device: str | None = None,
        text_budget_s: float | None = None,
        decode_budget_bytes: int = DECODE_BUDGET_BYTES,
        worker_init: Callable[[int, int], None] | None = None,
    ) -> None:
        self.encoder = encoder
        self.decode_job = decode_job  # module-level function (picklable); tests inject crashes
        # None: planned when the first picture is to be decoded (a job of notes, or nothing
        # new, never samples the system)
        self.workers = workers
        self.batch_size = batch_size
        self.control = control or JobControl()
        # JPEGs decoded in batches on the model's GPU (nvJPEG); None = when the model is on CUDA.
        # `gpu_device` overrides where that path runs ("cpu" in tests: same code, no GPU).
        self.gpu_decode = gpu_decode
        self.gpu_device = gpu_device
        self.text_budget_s = TEXT_BUDGET_S if text_budget_s is None else text_budget_s
        # each decode worker's memory: pictures that would need more are refused before
        # decoding, and the worker's data segment is capped a little above it
        self.decode_budget_bytes = decode_budget_bytes
        # the workers' initializer, module-level (picklable); tests inject a failing one
        self.worker_init = worker_init or init_decode_worker
        self._pool: ProcessPoolExecutor | None = None

    # -- public -----------------------------------------------------------------------------
    def run(self, items: Iterable[WorkItem]) -> Iterator[list[Embedded]]:
        """Yield lists of finished files (a batch each) as soon as they are embedded."""
        items = list(items)
        texts = [i for i in items if i.kind == "text"]
        images = [i for i in items if i.kind == "image"]
        try:
            for start in range(0, len(texts), self.batch_size):
                self.control.checkpoint()
                yield self._embed_texts(texts[start : start + self.batch_size])
            if images:
                yield from self._embed_images(images)
        finally:
            self._shutdown_pool()

    # -- text -------------------------------------------------------------------------------
    def _embed_texts(self, items: list[WorkItem]) -> list[Embedded]:
        out: list[Embedded] = []
        pieces: list[tuple[WorkItem, list[str], str]] = []
        token_ends = getattr(self.encoder, "token_ends", None)
        for item in items:
            try:
                check = self._note_budget()
                body = read_text(item.path, check=check)
                chunks = chunk_text(body, self.encoder.token_count, self.encoder.max_text_tokens,
                                    token_ends=token_ends, check=check)
                if changed_since_hashed(item):
                    out.append(Embedded(item, [], changed=True))
                    continue
                if not chunks:
                    raise DecodeError("empty note (no text)")
                pieces.append((item, chunks, body))
            except DecodeError as exc:
                if changed_since_hashed(item):
                    out.append(Embedded(item, [], changed=True))
                else:
                    out.append(Embedded(item, [], error=str(exc)))
        flat = [c for _, chunks, _ in pieces for c in chunks]
        vectors = self._encode_texts_batched(flat)
        pos = 0
        for item, chunks, body in pieces:
            vecs = vectors[pos : pos + len(chunks)]
            pos += len(chunks)
            out.append(
                Embedded(
                    item,
                    [NewChunk(i, text, v) for i, (text, v) in enumerate(zip(chunks, vecs))],
                    body=body,
                )
            )
        return out

    def _note_budget(self) -> Callable[[], None]:
        """A check for one note: honours pause/cancel, and raises DecodeError once the note
        has taken longer than the budget (time spent paused does not count)."""
        control, budget = self.control, self.text_budget_s
        deadline = _clock() + budget

        def check() -> None:
            nonlocal deadline
            paused_before = control.paused_seconds
            control.checkpoint()
            deadline += control.paused_seconds - paused_before
            if _clock() > deadline:
                raise DecodeError(too_slow_reason(budget))

        return check

    def _encode_texts_batched(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.encoder.dim), np.float32)
        parts = []
        for s in range(0, len(texts), 64):  # a long note is many batches: pause/cancel between
            self.control.checkpoint()
            parts.append(self.encoder.encode_texts(texts[s : s + 64]))
        return np.concatenate(parts)

    # -- images -----------------------------------------------------------------------------
    def _interpolation(self) -> str:
        return getattr(self.encoder, "interpolation", "bicubic")

    def _resize_mode(self) -> str:
        return getattr(self.encoder, "resize_mode", "shortest")

    def _decode_args(self, item: WorkItem) -> tuple:
        """(path, size), plus the resize filter and mode when the model's aren't the defaults
        (bicubic, shortest side)."""
        interp, mode = self._interpolation(), self._resize_mode()
        if mode != "shortest":
            return (item.path, self.encoder.image_size, interp, mode)
        if interp == "bicubic":
            return (item.path, self.encoder.image_size)
        return (item.path, self.encoder.image_size, interp)

    def _decode_inline(self, item: WorkItem) -> tuple[np.ndarray | None, float | None, str | None]:
        return self.decode_job(*self._decode_args(item))

    def _planned_workers(self) -> int:
        if self.workers is None:
            self.workers = planned_workers()
        return self.workers

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=_pool_context(),
                initializer=start_worker,
                initargs=(self.worker_init, self.decode_budget_bytes, os.getpid()))
            self._check_started(self._pool)
        return self._pool

    def _check_started(self, pool: ProcessPoolExecutor) -> None:
        """Send a new pool one no-op job before any file, so workers that cannot start are
        told apart from a decoder crashing on a file (which would be blamed on every file
        they were given). Raises DecodeWorkersFailed; pause and cancel still apply."""
        ready = pool.submit(worker_ready)
        while not wait([ready], timeout=0.25).done:
            self.control.checkpoint()
        try:
            failure = ready.result()
            why = f"one failed as it started: {failure}"
        except BrokenProcessPool:
            failure = why = "each one ended before it could decode anything"
        if failure is not None:
            self._shutdown_pool()
            raise DecodeWorkersFailed(why)

    def _shutdown_pool(self) -> None:
        """Stop the pool and its worker processes before returning. shutdown(wait=False)
        alone leaves them to exit later, when the pool's thread gets to tell them; but a CLI
        command ends with os._exit (app/main.py), and workers not yet told live on for ever
        (they hold their task queue's write end themselves, so never see EOF), keeping the
        forkserver and the command's stdout/stderr open: `out=$(magpie index …)`, or a test's
        subprocess.run, then waited for ever (seen under load, about one run in five)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        workers = list((getattr(pool, "_processes", None) or {}).values())  # pid -> Process
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in workers:  # idle, or decoding a file nobody will read: stop them now
            if proc.is_alive():
                proc.terminate()
        for proc in workers:
            proc.join(timeout=5)

    def _device_decode_target(self) -> str | None:
        """Where JPEGs are decoded in batches instead of the CPU pool, or None (CPU pool)."""
        if (self.gpu_decode is False or self._interpolation() != "bicubic"
                or self._resize_mode() != "shortest"):
            return None  # the device resize is bicubic, shortest side, only
        device = self.gpu_device or str(getattr(self.encoder, "device", "cpu"))
        if self.gpu_decode is None:
            from indexer.gpu_decode import gpu_decode_available

            return device if gpu_decode_available(device) else None
        return device

    def _embed_jpegs_on_device(
        self, items: list[WorkItem], device: str, fallback: list[WorkItem]
    ) -> Iterator[list[Embedded]]:
        """JPEGs: threads read files and headers one batch ahead, the device decodes, resizes
        and the model embeds; anything the device path can't take is left for the CPU pool."""
        from concurrent.futures import ThreadPoolExecutor

        from indexer import gpu_decode

        size = self.encoder.image_size
        batches = [items[s : s + self.batch_size] for s in range(0, len(items), self.batch_size)]
        with ThreadPoolExecutor(max_workers=max(2, min(8, self.workers or 2))) as io_pool:
            pending = [io_pool.submit(gpu_decode.read_jpeg, it.path) for it in batches[0]]
            for n, batch in enumerate(batches):
                self.control.checkpoint()
                files = [f.result() for f in pending]
                if n + 1 < len(batches):
                    pending = [io_pool.submit(gpu_decode.read_jpeg, it.path)
                               for it in batches[n + 1]]
                pixels = gpu_decode.decode_batch(files, size, device)
                ok = [(it, px, f.taken_at) for it, f, px in zip(batch, files, pixels)
                      if px is not None and f is not None]
                fallback += [it for it, px in zip(batch, pixels) if px is None]
                changed = [Embedded(it, [], changed=True) for it, _, _ in ok
                           if changed_since_hashed(it)]
                ok = [o for o in ok if not changed_since_hashed(o[0])] if changed else ok
                if ok:
                    vecs = self.encoder.encode_images(np.stack([px for _, px, _ in ok]))
                    yield changed + [
                        Embedded(it, [NewChunk(0, None, v)], taken_at=taken)
                        for (it, _, taken), v in zip(ok, vecs)
                    ]
                elif changed:
                    yield changed

    def _embed_images(self, items: list[WorkItem]) -> Iterator[list[Embedded]]:
        device = self._device_decode_target()
        if device is not None:
            from indexer.gpu_decode import is_jpeg_name

            jpegs = [i for i in items if is_jpeg_name(i.path)]
            if jpegs:
                fallback: list[WorkItem] = []
                yield from self._embed_jpegs_on_device(jpegs, device, fallback)
                items = [i for i in items if not is_jpeg_name(i.path)] + fallback
                if not items:
                    return
        ready: list[tuple[WorkItem, np.ndarray, float | None]] = []
        failed: list[Embedded] = []

        def flush(force: bool) -> Iterator[list[Embedded]]:
            nonlocal ready, failed
            while len(ready) >= self.batch_size or (force and (ready or failed)):
                take, ready = ready[: self.batch_size], ready[self.batch_size :]
                batch = list(failed)
                failed = []
                if take:
                    vecs = self.encoder.encode_images(np.stack([px for _, px, _ in take]))
                    batch += [
                        Embedded(item, [NewChunk(0, None, v)], taken_at=taken)
                        for (item, _, taken), v in zip(take, vecs)
                    ]
                yield batch

        def accept(item: WorkItem, result: tuple) -> None:
            pixels, taken, error = result
            if changed_since_hashed(item):
                failed.append(Embedded(item, [], changed=True))
            elif error is not None:
                failed.append(Embedded(item, [], error=error))
            else:
                ready.append((item, pixels, taken))

        workers = self._planned_workers()
        if workers == 0:
            for item in items:
                self.control.checkpoint()
                accept(item, self._decode_inline(item))
                yield from flush(False)
            yield from flush(True)
            return

        window = self.batch_size * 2 + workers * 2
        todo = iter(items)
        pending: dict[Future, WorkItem] = {}
        suspects: list[WorkItem] = []
        exhausted = False
        while True:
            self.control.checkpoint()
            while not exhausted and len(pending) < window:
                queued = next(todo, None)
                if queued is None:
                    exhausted = True
                    break
                pending[self._submit(queued)] = queued
            if not pending:
                break
            done, _ = wait(list(pending), timeout=0.25, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                item = pending.pop(fut)
                try:
                    accept(item, fut.result())
                except BrokenProcessPool:
                    suspects.append(item)
                    broken = True
            if broken:
                suspects += list(pending.values())
                pending.clear()
                self._shutdown_pool()
                for item in suspects:
                    self.control.checkpoint()
                    accept(item, self._isolated(item))
                suspects = []
            yield from flush(False)
        yield from flush(True)

    def _submit(self, item: WorkItem) -> Future:
        try:
            return self._get_pool().submit(self.decode_job, *self._decode_args(item))
        except BrokenProcessPool:
            self._shutdown_pool()
            return self._get_pool().submit(self.decode_job, *self._decode_args(item))

    def _isolated(self, item: WorkItem) -> tuple[np.ndarray | None, float | None, str | None]:
        """Decode one file alone, so a crash can be pinned on it."""
        try:
            return self._submit(item).result()
        except BrokenProcessPool:
            self._shutdown_pool()
            return None, None, CRASH_REASON
