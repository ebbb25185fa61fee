"""What a change in Preferences means, and applying it live.

* model: re-index the open library with it side by side (the migration job, with progress in
  the usual panel); the current model keeps answering until the switch, cancelling keeps it;
* library location: open (or create) that library, as "Open library…" does;
* device: load the model again on the chosen device (after the running job, if any);
* watching and OCR: saved at once; `watchChanged` / `ocrChanged` tell whoever follows the
  folders or reads pictures' words (they also read `settings` live at their next run).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QDialog

from app.library_controller import LibraryController, device_label
from app.settings import default_library
from indexer.specs import SPECS
from ui.widgets.preferences import PreferencesDialog, PrefsValues

log = logging.getLogger(__name__)


def gpu_found() -> bool:
    """Is there a CUDA GPU? Answered without importing torch when no driver is installed."""
    from indexer.model import guess_device

    try:
        return guess_device("auto").startswith("cuda")
    except Exception:  # noqa: BLE001 - a broken torch install: say no GPU
        return False


class PreferencesController(QObject):
    watchChanged = Signal(bool)
    ocrChanged = Signal(bool)

    def __init__(self, window, lib: LibraryController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.window = window
        self.lib = lib
        self.dialog: PreferencesDialog | None = None
        # shows the dialog and says whether it was accepted (tests replace it)
        self.run_dialog: Callable[[PreferencesDialog], bool] = \
            lambda d: d.exec() == QDialog.DialogCode.Accepted
        self._reload_pending = False
        lib.jobs.runner.finished.connect(self._after_job)
        window.preferencesRequested.connect(self.open)

    def current(self) -> PrefsValues:
        s, lib = self.lib.settings, self.lib
        return PrefsValues(
            model=lib.spec.name if lib.spec is not None else s.model,
            library=str(lib.library_path), device=s.device, watch=s.watch, ocr=s.ocr)

    def make_dialog(self) -> PreferencesDialog:
        lib = self.lib
        device = device_label(getattr(lib.encoder, "device", None)) if lib.encoder else ""
        return PreferencesDialog(
            self.current(), list(SPECS.values()),
            in_use=lib.spec.name if lib.spec is not None else "",
            device_now=device, has_vectors=lib.item_count() > 0 or self.window.has_roots(),
            gpu_found=gpu_found(), parent=self.window)

    def open(self) -> None:
        dialog = self.dialog = self.make_dialog()
        try:
            if self.run_dialog(dialog):
                self.apply(dialog.values())
        finally:
            self.dialog = None
            dialog.deleteLater()

    def apply(self, new: PrefsValues) -> None:
        """Save the new values and act on what changed."""
        lib, s = self.lib, self.lib.settings
        old = self.current()
        s.watch, s.ocr, s.device = new.watch, new.ocr, new.device
        spec = SPECS.get(new.model)
        model_changed = spec is not None and new.model != old.model
        if model_changed and spec.for_users:
            s.model = spec.name  # the default for libraries made from now on
        lib.save_settings()
        if new.watch != old.watch:
            self.watchChanged.emit(new.watch)
        if new.ocr != old.ocr:
            self.ocrChanged.emit(new.ocr)

        target = Path(new.library).expanduser() if new.library else default_library()
        if target.absolute() != Path(old.library).expanduser().absolute():
            lib.switch_library(target)  # opens with that library's own model
            return
        if model_changed:
            lib.migrate_target = spec
            lib.migrate_library(spec)
            self.window.notify(f"Re-indexing with {spec.name}; searches use the current model "
                               "until it is done", 8000)
        elif new.device != old.device:
            self.reload_model()

    # -- the device -------------------------------------------------------------------------
    def reload_model(self) -> None:
        if self.lib.jobs.runner.busy:
            self._reload_pending = True
            self.window.notify("The new device is used once the current job has finished", 8000)
            return
        self._reload_pending = False
        self.lib.reload_model()

    def _after_job(self, _job) -> None:
        if self._reload_pending:
            # after the runner has started the next job, if there is one
            QTimer.singleShot(0, self._reload_if_idle)

    def _reload_if_idle(self) -> None:
        if self._reload_pending and not self.lib.jobs.runner.busy:
            self.reload_model()
