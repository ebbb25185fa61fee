"""The library and its model in the window: opening and switching libraries, loading the model
(or its weights: download, choose a file), the demo, migrating to another model, and the
status line that says what is open.

Opening a library and migrating are writer jobs on the indexing queue; each carries its own
completion handler. The model loads on a background Task, so the window is up before torch is
even imported.
"""
from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.indexing_controller import IndexingController
from app.qt_bridge import Job, Task
from app.settings import Settings, default_library, demo_folder, demo_library
from app.warm_start import WarmStart
from indexer.jobs import Progress
from indexer.specs import TINY_SHAPES, ModelSpec

log = logging.getLogger(__name__)

DEMO_EXAMPLES = ("a red circle", "a blue triangle", "green square", "shopping list")
EXAMPLES = ("a dog on the beach", "sunset over water", "receipt", "birthday cake")


def result_active_fingerprint(library: Path) -> str | None:
    from indexer.library import LibraryInfo

    return LibraryInfo.read(library).active


def device_label(device: str | None) -> str:
    if not device:
        return ""
    if device.startswith("cuda"):
        try:
            import torch

            return f"GPU · {torch.cuda.get_device_name(torch.device(device))}"
        except Exception:  # noqa: BLE001
            return "GPU (CUDA)"
    if device == "mps":
        return "GPU (Apple)"
    return "CPU"


class LibraryController(QObject):
    searcherChanged = Signal(object)  # a Searcher when the model is ready, None when not
    modelFailed = Signal(str)  # the model could not be loaded: its message
    switching = Signal()  # another library (or the demo) replaces this one: forget the query
    demoStarted = Signal()  # the demo is being indexed: show its query once results exist
    rootsListed = Signal(list)  # the open library's folders (none while switching): watch them

    def __init__(
        self,
        window,
        jobs: IndexingController,
        library: str | Path | None = None,
        *,
        spec: ModelSpec | None = None,
        load_encoder: Callable[[ModelSpec, str | None], Any] | None = None,
        tuning=None,
        settings: Settings | None = None,
        demo_images: int = 96,
        drain_searches: Callable[[], Any] = lambda: None,
        query_active: Callable[[], bool] = lambda: False,
        warm: WarmStart | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.window = window
        self.jobs = jobs
        self.settings = settings or Settings.load()
        self.library_path = Path(library).expanduser() if library else \
            self.settings.library_path()
        self.spec_override = spec
        self.migrate_target: ModelSpec | None = None
        self._load_encoder_fn = load_encoder
        self._owns_encoder = load_encoder is None
        self._tuning = tuning
        self.demo_images = demo_images
        self._drain_searches = drain_searches
        self._query_active = query_active
        self._warm = warm  # the model loading since launch (app/warm_start.py), not yet taken
        self.library = None
        self.spec: ModelSpec | None = None
        self.encoder = None
        self.searcher = None
        self.model_error: str | None = None
        self.model_task: Task | None = None
        self.weights_task: Task | None = None
        self.counts: dict[str, int] = {}
        self.choose_file: Callable[[], str | None] = self._choose_weights_file
        # asked before a library is made in a folder that already holds other things
        self.confirm_create: Callable[[Path, list[str]], bool] = window.confirm_new_library
        self.closing = False
        self._demo_starting = False  # the demo is being made: its page, not the drop zone
        self._actions: dict[str, Callable[[], Any]] = {
            "download": self.download_weights,
            "choose": self.choose_weights,
            "demo": self.start_demo,
            "retry": lambda: self.open_library(self.library_path, self.spec_override),
            "open-library": self._on_open_library,
            "default-library": lambda: self.switch_library(default_library()),
            "migrate": self._migrate_if_offered,
            "cancel-download": self.cancel_download,
            "create-here": self._create_here,
        }
        w = window
        w.bannerAction.connect(self.on_banner_action)
        w.demoRequested.connect(self.start_demo)
        w.chooseWeightsRequested.connect(self.choose_weights)
        w.downloadWeightsRequested.connect(self.download_weights)
        w.openLibraryRequested.connect(self._on_open_library)
        w.defaultLibraryRequested.connect(lambda: self.switch_library(default_library()))

    def tuning(self):
        """Decode workers and batch size for this machine (or what the caller injected)."""
        from app.wiring import tuning_for

        return self._tuning or tuning_for(getattr(self.encoder, "device", "cpu"), self.settings)

    # -- opening a library ------------------------------------------------------------------
    def open_library(self, path: Path, spec: ModelSpec | None, *,
                     prepare: Callable[[Callable[[Progress], None]], None] | None = None,
                     allow_non_empty: bool = False) -> None:
        """Open (or create) the library at `path` on the writer queue; the previous one is
        closed there once the searches running on it have finished. A folder that holds
        other things becomes a library only with `allow_non_empty` (the person said yes)."""
        old, self.library = self.library, None
        self._set_searcher(None)
        self.jobs.runner.set_model_ready(False)
        self.rootsListed.emit([])  # stop following the old library's folders
        self.library_path = Path(path)
        self._demo_starting = prepare is not None
        if old is not None:  # the old library's folders and errors are not this one's
            self.window.set_roots([])
            self.window.set_root_states({}, set())
            self.window.set_errors([])
            if not self._query_active():
                self.show_idle_page()
        self.window.setWindowTitle(f"Magpie — {self.library_path.name}")
        self.window.set_status("Opening library…", "", "")
        drain, settings = self._drain_searches, self.settings

        def fn(control, on_progress, on_error):
            # imported here, off the UI thread: at launch the warm start may be importing
            # these very modules, and the UI thread would wait for it
            from app.wiring import choose_spec
            from indexer.library import Library

            drain()
            if old is not None:
                old.close()
            if prepare is not None:
                prepare(on_progress)
            chosen = spec or choose_spec(path, None, settings)
            return Library.open(path, chosen, allow_non_empty=allow_non_empty)

        self.jobs.submit(Job("switch", "Preparing the demo" if prepare else "Opening library",
                             fn, quiet=prepare is None, on_progress=self._show_opening,
                             on_finished=self._opened, background=prepare is not None))

    def _show_opening(self, job: Job, p: Progress) -> None:
        if not job.quiet:
            self.window.show_progress(job.title, p.done, p.total, 0, None, p.current, 0)

    def _opened(self, job: Job) -> None:
        if self.closing:
            if job.result is not None:
                self.library = job.result  # closed by shutdown()
            return
        if not job.quiet:
            self.window.job_finished()
        if job.error is not None:
            self._library_failed(job)
            return
        self.library = job.result
        self.spec = self.library.spec
        self.window.hide_banner()
        self.refresh_library_view(errors=True)
        self._resume_and_catch_up()
        if self.encoder is not None and getattr(self.encoder, "spec", self.spec) == self.spec \
                and not self._spec_mismatch():
            self._model_ready()
        else:
            self._drop_encoder()
            self.load_model()
        self.jobs.sync_waiting()

    def _resume_and_catch_up(self) -> None:
        """An interrupted run left files pending: finish them now, and say so. While the
        folders are followed, also pick up what changed while Magpie was closed."""
        try:
            reader = self.library.reader()
            roots = dict(reader.roots())
            pending = {roots[rid]: n for rid, n in reader.root_pending_counts().items()
                       if rid in roots and n}
        except Exception as exc:  # noqa: BLE001 - a busy database: the next start resumes
            log.debug("reading pending work failed: %s", exc)
            return
        if pending and not self._demo_starting:
            self.jobs.resume(sum(pending.values()), sorted(pending))
        if self.settings.watch and roots and not self._demo_starting:
            self.jobs.catch_up(sorted(roots.values()))

    def _library_failed(self, job: Job) -> None:
        from indexer.library import LibraryInUse, ModelMismatch, NotALibrary
        from indexer.specs import SPECS

        self._discard_warm()
        self.jobs.runner.cancel_all()
        self.window.job_finished()
        in_use = isinstance(job.error, LibraryInUse)
        self.window.set_status("No library open", "", "")
        actions = [("retry", "Try again", "primary"),
                   ("open-library", "Open another library…", None),
                   ("default-library", "Use my default library", None)]
        title = ("This library is open in another Magpie window" if in_use
                 else "The library could not be opened")
        self.migrate_target = None
        if isinstance(job.error, NotALibrary):
            title = "This folder is not a Magpie library"
            actions = [("create-here", "Create a library here…", "primary"), *actions[1:]]
        if isinstance(job.error, ModelMismatch):
            # Offer the migration: re-embed side by side, switch when complete.
            self.migrate_target = self.spec_override or SPECS.get(job.error.requested_model)
            title = f"This library was built with {job.error.library_model}"
            actions = [("migrate", f"Re-index with {job.error.requested_model}", "primary"),
                       *actions[1:]]
        self.window.show_banner(title, job.message, actions=actions, tone="error")

    def switch_library(self, path: Path | str, spec: ModelSpec | None = None, *,
                       allow_non_empty: bool = False) -> None:
        path = Path(path)
        self.jobs.runner.cancel_all()
        self.switching.emit()
        self.settings.library = "" if path == default_library() else str(path)
        self.save_settings()
        self.spec_override = spec
        self.open_library(path, spec, allow_non_empty=allow_non_empty)

    def _on_open_library(self) -> None:
        path = self.window.choose_library_folder(str(self.library_path.parent))
        if path:
            self.open_folder_as_library(path)

    def open_folder_as_library(self, path: Path | str, spec: ModelSpec | None = None) -> bool:
        """Switch to the library in `path`. A folder that holds other things (not a library)
        becomes one only if the person agrees; declining writes nothing. False: declined."""
        consent = self.consent_to_create(Path(path))
        if consent is False:
            self.window.notify("Nothing was changed; choose an empty folder or an existing "
                               "library", 8000)
            return False
        self.switch_library(path, spec, allow_non_empty=bool(consent))
        return True

    def consent_to_create(self, path: Path) -> bool | None:
        """None: no question needed (a library, an empty or new folder); else the answer."""
        from indexer.library import foreign_entries, is_library

        path = Path(path).expanduser().absolute()
        if not path.is_dir() or is_library(path):
            return None
        others = foreign_entries(path)
        if not others:
            return None
        return bool(self.confirm_create(path, others))

    def _create_here(self) -> None:
        """The banner's "Create a library here…" after a refused open."""
        path = self.library_path
        if self.consent_to_create(path) is not False:
            self.open_library(path, self.spec_override, allow_non_empty=True)

    # -- the model --------------------------------------------------------------------------
    def _spec_mismatch(self) -> bool:
        dim = getattr(self.encoder, "dim", None)
        return dim is not None and self.spec is not None and dim != self.spec.embed_dim

    def _drop_encoder(self) -> None:
        enc, self.encoder = self.encoder, None
        self._set_searcher(None)
        if enc is not None and self._owns_encoder:
            try:
                enc.close()
            except Exception:  # noqa: BLE001
                pass

    def _set_searcher(self, searcher) -> None:
        self.searcher = searcher
        self.searcherChanged.emit(searcher)

    def load_encoder(self, spec: ModelSpec, weights: str | None,
                     warm: WarmStart | None = None):
        """Runs on a background thread. Also imports the core's heavier modules there, so
        the first search or drop never pays for an import on the UI thread. `warm`: the load
        begun at launch, used when it is for this model."""
        import indexer.indexing  # noqa: F401
        import indexer.search  # noqa: F401

        if warm is not None:
            encoder = warm.take(spec, weights)
            if encoder is not None:
                return encoder
        if self._load_encoder_fn is not None:
            return self._load_encoder_fn(spec, weights)
        from app.wiring import load_model

        encoder = load_model(spec, weights, allow_download=False, settings=self.settings)
        encoder.warm()  # the light text runtime when cached (no torch), else the torch model
        return encoder

    def load_model(self, weights: str | None = None) -> None:
        spec = self.spec
        if spec is None:
            return
        self.model_error = None
        self.window.set_status(self.items_text(), f"Model: {spec.label()}", "Loading model…")
        if weights:
            self.window.banner_busy("Checking the weights file (this takes a few seconds for "
                                    "large models)…")
        warm, self._warm = self._warm, None
        task = Task(lambda: self.load_encoder(spec, weights, warm), parent=self)
        task.done.connect(lambda enc: self._on_model_loaded(spec, enc, weights))
        task.failed.connect(lambda msg, exc: self._on_model_failed(spec, msg, exc, weights))
        self.model_task = task
        task.start()

    def reload_model(self) -> None:
        """Load the model again (another device was chosen). The caller makes sure no job is
        using the encoder; queued jobs that need the model wait for the new one."""
        if self.spec is None or self.library is None:
            return
        self.jobs.runner.set_model_ready(False)
        self._drop_encoder()
        self.load_model()

    def _on_model_loaded(self, spec: ModelSpec, encoder, weights: str | None) -> None:
        if self.closing or spec != self.spec:
            if self._owns_encoder:
                encoder.close()
            return
        self.encoder = encoder
        if weights:
            self.settings.weights[spec.name] = weights
            self.save_settings()
        self.window.hide_banner()
        self._model_ready()

    def _model_ready(self) -> None:
        from indexer.search import Searcher

        # torch, open_clip and friends leave millions of long-lived objects on the heap; a
        # full garbage collection walks them all (~0.25 s here) with the GIL held, freezing
        # the window whenever indexing allocates enough to trigger one. Frozen objects are
        # never scanned again, so collections stay in the millisecond range.
        gc.freeze()

        self.model_error = None
        searcher = Searcher(self.library, self.encoder)
        self.searcher = searcher
        self.window.set_marks_enabled(True)
        self.jobs.runner.set_model_ready(True)
        self.refresh_status()
        self._set_searcher(searcher)  # the query waiting for the model runs now

    def _on_model_failed(self, spec: ModelSpec, message: str, exc, weights: str | None) -> None:
        if self.closing or spec != self.spec:
            return
        from indexer.weights import WeightsMismatch, WeightsUnavailable

        self.model_error = message
        self.refresh_status()
        size = f" ({spec.size_mb:.0f} MB)" if spec.size_mb else ""
        actions = [("download", f"Download{size}", "primary"),
                   ("choose", "Choose weights file…", None)]
        if spec.name != TINY_SHAPES.name:
            actions.append(("demo", "Try the demo", None))
        if isinstance(exc, WeightsMismatch):
            title = f"That file is not the {spec.name} model"
            body = ("Magpie checks every weights file against the exact version it was built "
                    "for, so your library never mixes vectors from different models. Choose the "
                    "right file, or download it.")
        elif isinstance(exc, WeightsUnavailable):
            title = f"The {spec.name} model isn't on this computer yet"
            body = (f"Magpie needs its weights file{size} to understand pictures and text. "
                    "Download it once, choose a copy you already have, or try the offline demo "
                    "with a small bundled model right now.")
        else:
            title = f"The {spec.name} model could not be loaded"
            body = "Choose another weights file, or try the offline demo."
            actions = [a for a in actions if a[0] != "download"]
        if spec.bundled:
            actions = [a for a in actions if a[0] != "download"]
        self.window.show_banner(title, body, details=message, actions=actions)
        if weights:
            self.window.banner_status(message.splitlines()[0], error=True)
        self.modelFailed.emit(message)

    # -- weights ----------------------------------------------------------------------------
    def on_banner_action(self, key: str) -> None:
        action = self._actions.get(key)
        if action is not None:
            action()

    def choose_weights(self) -> None:
        if self.spec is None:
            return
        path = self.choose_file()
        if path:
            self.load_model(weights=path)

    def _choose_weights_file(self) -> str | None:
        return self.window.choose_weights_file(self.spec.name if self.spec else "")

    def download_weights(self) -> None:
        spec = self.spec
        if spec is None or spec.bundled:
            return
        from app.wiring import weights_path

        settings = self.settings

        def fn(progress):
            path = weights_path(spec, progress=progress, settings=settings)
            return self.load_encoder(spec, str(path))

        task = Task(fn, with_progress=True, parent=self)
        self.weights_task = task
        w = self.window
        w.banner_busy(f"Connecting to download {spec.name}…")
        task.progressed.connect(lambda done, total: w.banner_busy(
            f"Downloading {spec.name}: {done / 1e6:,.0f} of {total / 1e6:,.0f} MB" if total
            else f"Downloading {spec.name}: {done / 1e6:,.0f} MB", done, total or None))
        task.done.connect(lambda enc: self._on_model_loaded(spec, enc, None))
        task.failed.connect(lambda msg, exc: w.banner_status(msg, error=True))
        task.start()

    def cancel_download(self) -> None:
        if self.weights_task is not None:
            self.weights_task.abandon()
            self.weights_task = None
        self.window.banner_status("Download cancelled.")

    # -- the demo ---------------------------------------------------------------------------
    def start_demo(self) -> None:
        """Make the sample folder, switch to the demo library with the bundled tiny model,
        index it in the background and show a query's results as they come in."""
        folder = demo_folder()
        n = self.demo_images

        def prepare(on_progress):
            if not folder.exists():
                from magpie_demo.shapes import make_demo_folder

                on_progress(Progress("scanning", 0, 0, current=str(folder)))
                make_demo_folder(folder, n_images=n)

        self.jobs.runner.cancel_all()
        self.switching.emit()
        self.settings.library = str(demo_library())
        self.save_settings()
        self.spec_override = TINY_SHAPES
        self.open_library(demo_library(), TINY_SHAPES, prepare=prepare)
        # the demo's shapes hold no words: reading them would only delay its first results
        self.jobs.index([str(folder)], "Indexing the demo pictures", ocr=False)
        self.demoStarted.emit()

    # -- migrating to another model ---------------------------------------------------------
    def _migrate_if_offered(self) -> None:
        if self.migrate_target is not None:
            self.migrate_library(self.migrate_target)

    def migrate_library(self, spec: ModelSpec) -> Job:
        """Changing model is a migration job: the new index is built beside the old one
        (which keeps answering if it is open) and the window switches when it is complete."""
        path, source = self.library_path, self.library
        self.window.hide_banner()

        def fn(control, on_progress, on_error):
            from app.wiring import tuning_for
            from indexer.migrate import migrate

            encoder = self.load_encoder(spec, self.settings.weights.get(spec.name))
            try:
                tune = self._tuning or tuning_for(getattr(encoder, "device", "cpu"),
                                                  self.settings)
                return migrate(path, spec, encoder, control=control, workers=tune.workers,
                               batch_size=tune.batch_size, on_progress=on_progress,
                               on_error=on_error, source=source)
            finally:  # the window loads the new model itself once it has switched
                if self._owns_encoder:
                    encoder.close()

        return self.jobs.submit(Job("migrate", f"Re-indexing with {spec.name}", fn,
                                    roots=(str(path),), on_finished=self._migration_finished))

    def _migration_finished(self, job: Job) -> None:
        if self.closing:
            return
        self.window.job_finished()
        if job.error is not None:
            self.window.show_banner("Re-indexing stopped", job.message, actions=[], tone="error")
            return
        result = job.result
        if result.switched:
            spec = self.migrate_target or next(
                (s for s in self._known_specs() if s.fingerprint() ==
                 result_active_fingerprint(self.library_path)), None)
            self.window.notify(
                "Re-indexed: " + result.report.summary() + "; now using the new model", 10000)
            self.spec_override = spec
            self._drop_encoder()
            self.open_library(self.library_path, spec)
        else:
            self.window.show_banner(
                "Re-indexing paused",
                "The library keeps using its current model until re-indexing completes; "
                "start it again to continue where it stopped.",
                actions=[("migrate", "Continue re-indexing", "primary")], tone="info")

    @staticmethod
    def _known_specs():
        from indexer.specs import SPECS

        return list(SPECS.values())

    # -- what the window says about the library ---------------------------------------------
    def refresh_library_view(self, errors: bool = False) -> None:
        if self.library is None:
            return
        try:
            reader = self.library.reader()
            counts_by_root = reader.root_counts()
            pending_by_root = reader.root_pending_counts()
            roots = reader.roots()
            rows = [(p, counts_by_root.get(rid, 0)) for rid, p in roots]
            pending = {p: pending_by_root[rid] for rid, p in roots if pending_by_root.get(rid)}
            self.counts = reader.counts()
            if errors:
                self.window.set_errors(reader.errors())
        except Exception as exc:  # noqa: BLE001 - a busy database must not break the window
            log.debug("refresh failed: %s", exc)
            return
        self.window.set_roots(rows)
        if rows:
            self._demo_starting = False
        # an unplugged drive keeps its entries and is shown as offline until it is back
        self.window.set_root_states(pending, {p for p, _ in rows if not os.path.isdir(p)})
        self.rootsListed.emit([p for p, _ in rows])
        self.refresh_status()
        if not self._query_active():
            self.show_idle_page()

    def show_idle_page(self) -> None:
        """No query: the drop zone for an empty library, else what it holds and examples."""
        if not self.window.has_roots() and self._demo_starting:
            self.window.show_message(
                "Preparing the demo…", "Sample pictures are being made and indexed with the "
                "small bundled model. Results appear here as soon as the first ones are in.",
                "sparkle")
            self.window.set_summary("")
            return
        if not self.window.has_roots():
            self.window.show_page("empty")
            self.window.set_summary("")
            return
        demo = self.spec is not None and self.spec.name == TINY_SHAPES.name
        self.window.show_hint(
            f"{self.item_count():,} pictures and notes are indexed. Describe what you're "
            "looking for, drop an image on the search box, or try one of these:",
            DEMO_EXAMPLES if demo else EXAMPLES)

    def item_count(self) -> int:
        c = self.counts
        return int(c.get("images", 0) + c.get("notes", 0))

    def items_text(self) -> str:
        if self.library is None:
            return "No library open"
        c = self.counts
        n = self.item_count()
        if not n:
            return "No items yet"
        return f"{n:,} items  ·  {c.get('images', 0):,} pictures  ·  {c.get('notes', 0):,} notes"

    def refresh_status(self) -> None:
        model = f"Model: {self.spec.label()}" if self.spec else ""
        if self.encoder is not None:
            device = device_label(getattr(self.encoder, "device", "cpu"))
        elif self.model_error:
            device = "Model not loaded"
        else:
            device = "Loading model…" if self.spec else ""
        self.window.set_status(self.items_text(), model, device)

    # -- closing ----------------------------------------------------------------------------
    def save_settings(self) -> None:
        try:
            self.settings.save()
        except OSError as exc:
            log.warning("could not save settings: %s", exc)

    def _discard_warm(self) -> None:
        warm, self._warm = self._warm, None
        if warm is not None:
            warm.discard()

    def close(self) -> None:
        """At shutdown, after the jobs and searches have stopped."""
        self.closing = True
        self._discard_warm()
        if self.library is not None:
            try:
                self.library.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("closing the library failed: %s", exc)
            self.library = None
        self._drop_encoder()
