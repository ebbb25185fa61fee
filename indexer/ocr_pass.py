"""The text-reading pass: after the pictures are embedded (so search works early), read the
words in those that have some.

Each picture gets a glance (a small grayscale copy, `ocr.load_first_look`: most photos stop
there), then a first look (the detector on a small copy, `ocr.has_text`); only when it finds
text is the picture read in full. Results are committed a few pictures at a time, tied
to the content they were read from, so a crash or cancel loses at most the pictures in flight
and the next run carries on where this one stopped. Identical content is read once.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from indexer import ocr
from indexer.catalogue import Catalogue
from indexer.decode import DecodeError
from indexer.jobs import FileError, JobControl, Progress

PHASE = "reading text"
COMMIT_EVERY = 8  # pictures per transaction
SLOW_NOTICE_S = 1.0  # progress at least this often
AHEAD = 2  # pictures glanced at / decoded ahead, each on its own thread


@dataclass
class OcrReport:
    looked: int = 0  # pictures given a first look
    with_text: int = 0  # of those, read in full and holding text
    reused: int = 0  # identical content read before
    errors: int = 0
    reset: bool = False  # the engine changed: every picture is read again
    cancelled: bool = False


Reader = Callable[[np.ndarray], list[ocr.OcrLine]]
Gate = Callable[[np.ndarray], bool]
Loader = Callable[[str], np.ndarray]
FirstLook = Callable[[str], "np.ndarray | None"]  # None: the glance saw there is no text


class OcrPass:
    """Reads the text of every picture that still needs it. Runs on the indexing thread."""

    def __init__(
        self,
        catalogue: Catalogue,
        *,
        control: JobControl | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_error: Callable[[FileError], None] | None = None,
        gate: Gate | None = None,
        reader: Reader | None = None,
        loader: FirstLook | None = None,
        full_loader: Loader | None = None,
        identity: str | None = None,
    ) -> None:
        self.cat = catalogue
        self.control = control or JobControl()
        self.on_progress = on_progress or (lambda p: None)
        self.on_error = on_error or (lambda e: None)
        self.gate = gate or ocr.has_text
        self.reader = reader or ocr.read_words
        # the glance decodes small and gray (a JPEG at 1/2 to 1/8 scale: cheap) and shuts out
        # most photos; only a picture the detector passes is decoded again at reading size
        self.loader: FirstLook = loader or ocr.load_first_look
        self._pinned_engine = gate is None or reader is None
        self.full_loader = full_loader or (
            lambda path: ocr.load_for_ocr(path, ocr.READ_SIDE, ocr.PHOTO_READ_SIDE))
        self.identity = identity or ocr.engine_identity()

    def run(self) -> OcrReport:
        report = OcrReport()
        report.reset = self.cat.ocr_reset_if_engine_changed(self.identity)
        todo = self.cat.ocr_pending()
        total = len(todo)
        if not total:
            return report
        if self._pinned_engine:
            # the engine itself is built on the first picture past the glance, maybe never:
            # learn now, not never, that it is missing
            ocr.check_installed()
        started = time.monotonic()
        paused_before = self.control.paused_seconds
        last = 0.0
        batch: list = []
        self.on_progress(Progress(PHASE, 0, total))
        # glance at / decode the next pictures while this one is looked at or read, on two
        # threads: most photos stop at the glance (a few ms of Pillow and OpenCV, which release
        # the GIL), so on a 2-core box both cores glance
        with ThreadPoolExecutor(max_workers=AHEAD) as pool:
            ahead: dict[int, Future] = {}
            try:
                for i, (file_id, raw, digest) in enumerate(todo):
                    self.control.checkpoint()
                    path = os.fsdecode(raw)
                    twin = self.cat.ocr_twin(digest, file_id)
                    if twin is not None:
                        job = ahead.pop(file_id, None)
                        if job is not None:
                            job.cancel()
                        batch.append((file_id, digest, twin[0], None,
                                      [tuple(x) for x in json.loads(twin[1])]))
                        report.reused += 1
                        report.with_text += twin[0] == "text"
                    else:
                        job = ahead.pop(file_id, None) or pool.submit(self.loader, path)
                        for next_id, next_raw, _ in todo[i + 1:i + 1 + AHEAD]:
                            if next_id not in ahead:
                                ahead[next_id] = pool.submit(self.loader, os.fsdecode(next_raw))
                        batch.append(self._one(file_id, path, digest, job, report))
                    if len(batch) >= COMMIT_EVERY:
                        self.cat.commit_ocr(batch)
                        batch = []
                    now = time.monotonic()
                    if now - last >= SLOW_NOTICE_S or i + 1 == total:
                        last = now
                        paused = self.control.paused_seconds - paused_before
                        rate = (i + 1) / max(now - started - paused, 1e-6)
                        self.on_progress(Progress(
                            PHASE, i + 1, total, rate, (total - i - 1) / rate, path,
                            report.errors, self.control.paused))
            except BaseException:
                report.cancelled = True
                for job in ahead.values():
                    job.cancel()
                raise
            finally:
                if batch:
                    self.cat.commit_ocr(batch)
                if self._pinned_engine:
                    ocr.release_engine()  # a long-lived process does not keep it between passes
        return report

    def _one(self, file_id: int, path: str, digest: str | None, job: Future,
             report: OcrReport) -> tuple:
        report.looked += 1
        try:
            pixels = job.result()
            if pixels is None or not self.gate(pixels):
                return (file_id, digest, "none", None, [])
            full = self.full_loader(path)
            lines = self.reader(full)
        except ocr.OcrUnavailable:
            raise
        except DecodeError as exc:
            return self._failed(file_id, path, digest, str(exc), report)
        except MemoryError:
            return self._failed(file_id, path, digest, "out of memory", report)
        except Exception as exc:  # an engine failure costs this picture's text, not the run
            return self._failed(file_id, path, digest, f"{type(exc).__name__}: {exc}", report)
        if not lines:
            return (file_id, digest, "none", None, [])
        report.with_text += 1
        # corners as fractions of the upright picture's width and height: the preview draws
        # them over a picture of any size
        h, w = full.shape[:2]
        return (file_id, digest, "text", None,
                [(ln.text, round(ln.score, 3),
                  [[round(x / max(w, 1), 4), round(y / max(h, 1), 4)] for x, y in ln.box])
                 for ln in lines])

    def _failed(self, file_id: int, path: str, digest: str | None, reason: str,
                report: OcrReport) -> tuple:
        report.errors += 1
        self.on_error(FileError(path, f"reading text failed: {reason}"))
        return (file_id, digest, "error", reason, [])
