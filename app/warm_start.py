"""The first query's groundwork, begun the moment `magpie gui` runs.

Why: a person types a query as soon as the window is up, and answering it needs the model's
text session (ONNX Runtime: a few hundred ms to start, its first run slower still). Started
only after the window is built and the library opened, that session was the longest step
between launch and the first answer (bench/RESULTS.md, issue 12). So `magpie gui` starts
it on a thread of its own *before* Qt and the window's modules are imported: ONNX Runtime
builds the session without holding the GIL, alongside the UI thread's imports and first paint.

Nothing here imports Qt or anything heavy at module level (the thread does). The library
controller takes the encoder when it would load one (`take`); a different model (another
library opened meanwhile, a weights file chosen) gets its own load and this one is closed.
A failure (no weights, a damaged export) is re-raised by `take` on the loading task, so it
reaches the person the usual way, once.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The UI thread builds and paints the window meanwhile: on a busy machine the kernel hands it
# a core first (measured, bench/RESULTS.md: at load 13 the window was painted at 1.75 s with
# the warm start's imports at normal priority, 1.36 s with them niced; first answer the same).
WARM_NICENESS = 5

POINTER = "magpie-library.json"  # indexer.library.POINTER (importing it is what is avoided)

ChooseSpec = Callable[[Path | None], Any]  # the library (None: the default one) -> its ModelSpec
LoadEncoder = Callable[[Any], Any]  # a ModelSpec -> an encoder ready for a text query, or None


def _lower_priority(step: int) -> None:
    """Raise this thread's nice value by `step` (Linux threads have their own); else nothing."""
    if not step or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + step))
    except OSError:
        pass


def library_spec(library: Path | None) -> Any:
    """The model of the library the window will open (as LibraryController chooses it)."""
    from app.settings import Settings
    from app.wiring import choose_spec

    settings = Settings.load()
    path = Path(library).expanduser() if library else settings.library_path()
    return active_spec(path) or choose_spec(path, None, settings)


def active_spec(library: Path) -> Any | None:
    """A quick look at the library's pointer file for its model, without importing the
    library's modules (numpy, SQLite, hnswlib: ~0.2 CPU-s the session would wait for). None
    when it says nothing this build knows; `choose_spec` decides then. A wrong guess costs
    only the head start: the controller takes the encoder only for the spec it chose."""
    from indexer.specs import SPECS

    try:
        data = json.loads((library / POINTER).read_text("utf-8"))
        active = data.get("active") if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None
    return next((s for s in SPECS.values() if s.fingerprint() == active), None)


def ready_for_text(spec: Any, query: str | None = None) -> Any | None:
    """The library's encoder with its light text runtime loaded and what the first search
    needs besides the query made ready (the "reads nothing" probes: read from the cache, or
    encoded and kept). None when the model has no text export cached yet: torch is then loaded
    the usual way, after the window is up, never alongside the window's own imports."""
    from app.settings import Settings
    from app.wiring import load_model

    encoder = load_model(spec, None, allow_download=False, settings=Settings.load())
    try:
        if encoder.warm(light_only=True) == "none":
            encoder.close()
            return None
        from indexer.search import nonsense_centre  # what the first search needs anyway

        nonsense_centre(encoder)
        if query and query.strip():  # `magpie gui --query`: its vector is ready too
            encoder.encode_texts([query])
        # and what it would import on the way (the search thread would wait for them)
        import indexer.counts  # noqa: F401
        import numpy.random  # noqa: F401  (the background samples)
    except BaseException:
        encoder.close()
        raise
    return encoder


class WarmStart:
    """One background load of the model the window is about to need."""

    def __init__(self, library: str | os.PathLike | None = None, *, query: str | None = None,
                 choose: ChooseSpec = library_spec, load: LoadEncoder | None = None) -> None:
        self.library = Path(library) if library else None
        self._choose = choose
        self._load: LoadEncoder = load or (lambda spec: ready_for_text(spec, query))
        self._load_fn_is_default = load is None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self.spec: Any = None  # known once chosen (None if choosing failed)
        self._encoder: Any = None
        self._error: BaseException | None = None
        self._claimed = False  # taken or discarded: whatever is left over is closed

    def start(self) -> WarmStart:
        threading.Thread(target=self._run, name="magpie-warm-start", daemon=True).start()
        return self

    def _run(self) -> None:
        try:
            # choosing the spec may import the library's modules (numpy, SQLite, hnswlib:
            # when the pointer file names nothing known), work that competes with the UI
            # thread's, so it runs on a nicer thread; the model loads here, at normal
            # priority, because ONNX Runtime's threads inherit it
            chooser = threading.Thread(target=self._choose_nicely, name="magpie-warm-spec",
                                       daemon=True)
            chooser.start()
            chooser.join()
            if self._error is not None:
                raise self._error
            encoder = self._load(self.spec)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever takes it
            log.debug("warm start failed: %s", exc)
            self._error = exc
        else:
            with self._lock:
                self._encoder = encoder
                if self._claimed:  # discarded while loading: nobody will take it
                    self._close_encoder()
        finally:
            self._done.set()

    def _choose_nicely(self) -> None:
        _lower_priority(WARM_NICENESS)
        try:
            self.spec = self._choose(self.library)
        except BaseException as exc:  # noqa: BLE001 - re-raised by _run
            self._error = exc
            return
        if self._load_fn_is_default:
            # the runtime's Python side too (numpy, ONNX Runtime's bindings): imports, GIL-bound
            # like the window's own (load 6.7, 7 runs: window 1.06 -> 0.73 s, first answer the
            # same); the session itself is made at normal priority
            try:
                import app.wiring  # noqa: F401
                import indexer.lazy_encoder  # noqa: F401
                import indexer.text_runtime  # noqa: F401
                import onnxruntime  # noqa: F401
            except ImportError:
                pass  # no ONNX Runtime: the load finds out and leaves it to torch

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def take(self, spec: Any, weights: str | None = None) -> Any | None:
        """The encoder for `spec`, once its load has finished (blocks: call it off the UI
        thread). None when it was loaded for another model, with a chosen weights file, not
        loaded (no light runtime), or already taken: the caller loads its own. Raises what the
        load raised for `spec`."""
        self._done.wait()
        with self._lock:
            if self._claimed:
                return None
            self._claimed = True
            if weights is not None or self.spec is None or self.spec != spec:
                self._close_encoder()
                return None
            if self._error is not None:
                raise self._error
            encoder, self._encoder = self._encoder, None
            return encoder

    def discard(self) -> None:
        """Not needed after all (the library failed to open, the window closed): the encoder
        is closed now or as soon as its load ends."""
        with self._lock:
            self._claimed = True
            self._close_encoder()

    def _close_encoder(self) -> None:
        encoder, self._encoder = self._encoder, None
        if encoder is not None:
            try:
                encoder.close()
            except Exception as exc:  # noqa: BLE001
                log.debug("closing the warm-start encoder failed: %s", exc)
