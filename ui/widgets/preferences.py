"""The Preferences dialog: model, library location, device, watching and OCR.

It only shows and edits values: what a change means (a migration, reopening a library,
reloading the model) is decided by app/preferences.py. The model list comes from the pinned
specs, each with its size, speed and published quality (indexer/specs.py), so the figures live
in one place and the CLI's `magpie models` shows the same ones.
"""
from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
    QLabel, QLineEdit, QVBoxLayout, QWidget,
)

from indexer.specs import ModelSpec
from ui.widgets.common import button, label

DEVICE_CHOICES = (
    ("Automatic (the GPU when there is one)", "auto"),
    ("GPU (CUDA)", "cuda"),
    ("CPU only", "cpu"),
)


@dataclass(frozen=True)
class PrefsValues:
    """What the dialog edits (a plain copy: the dialog never touches Settings itself)."""

    model: str
    library: str
    device: str
    watch: bool
    ocr: bool


class PreferencesDialog(QDialog):
    """Edit the values; `values()` says what the person chose when the dialog is accepted."""

    def __init__(self, values: PrefsValues, models: Sequence[ModelSpec], *,
                 in_use: str = "", device_now: str = "", has_vectors: bool = False,
                 gpu_found: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setObjectName("Preferences")
        self.setMinimumWidth(560)
        self._initial = values
        self._specs = {s.name: s for s in models}
        self._in_use = in_use
        self._has_vectors = has_vectors
        lay = QVBoxLayout(self)
        lay.setContentsMargins(20, 18, 20, 16)
        lay.setSpacing(10)

        # -- model ------------------------------------------------------------------------
        lay.addWidget(label("MODEL", "section"))
        self.model = QComboBox()
        self.model.setAccessibleName("Model")
        self.model.setAccessibleDescription("The pinned model that understands pictures and "
                                            "text; changing it re-indexes the library")
        users = [s for s in models if s.for_users]
        demos = [s for s in models if not s.for_users]
        for s in users:
            self._add_model(s, s.name)
        if demos:
            self.model.insertSeparator(self.model.count())
            for s in demos:
                self._add_model(s, f"{s.name} (demo)")
        self.model.setCurrentIndex(max(0, self.model.findData(values.model)))
        lay.addWidget(self.model)
        # never narrower than the longest choice, so whichever model is chosen reads whole
        margins = lay.contentsMargins()
        self.setMinimumWidth(max(self.minimumWidth(), self.model.minimumSizeHint().width()
                                 + margins.left() + margins.right()))
        self.model_details = label("", "muted", wrap=True)
        self.model_details.setObjectName("model-details")
        self.model_details.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.model_details.setOpenExternalLinks(True)
        lay.addWidget(self.model_details)
        self.model_note = label("", "warn", wrap=True)
        self.model_note.setObjectName("model-note")
        lay.addWidget(self.model_note)
        self.model.currentIndexChanged.connect(self._sync_model)

        # -- library ----------------------------------------------------------------------
        lay.addSpacing(6)
        lay.addWidget(label("LIBRARY", "section"))
        row = QHBoxLayout()
        self.library = QLineEdit(values.library)
        self.library.setAccessibleName("Library folder")
        self.library.setToolTip("The folder where Magpie keeps its index (never your pictures)")
        self.library.setClearButtonEnabled(False)
        self.choose_library = button("Choose…", None, "folder-open",
                                     "Choose the folder of another library, or an empty one")
        self.choose_library.setAccessibleName("Choose the library folder")
        self.choose_library.clicked.connect(self._pick_library)
        row.addWidget(self.library, 1)
        row.addWidget(self.choose_library)
        lay.addLayout(row)

        # -- running ----------------------------------------------------------------------
        lay.addSpacing(6)
        lay.addWidget(label("RUNNING", "section"))
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.device = QComboBox()
        self.device.setAccessibleName("Device")
        for text, data in DEVICE_CHOICES:
            if data == "cuda" and not gpu_found:
                text += " — none found: the CPU is used"
            self.device.addItem(text, data)
        self.device.setCurrentIndex(max(0, self.device.findData(values.device)))
        self.device.setToolTip("Where the model runs. The vectors are the same on either; a "
                               "GPU only makes indexing faster.")
        device_label = QLabel("&Device:")
        device_label.setBuddy(self.device)
        form.addRow(device_label, self.device)
        self.device_now = label(f"In use now: {device_now}" if device_now else "", "faint")
        form.addRow("", self.device_now)
        lay.addLayout(form)
        self.watch = QCheckBox("&Follow my folders while Magpie is open")
        self.watch.setChecked(values.watch)
        self.ocr = QCheckBox("&Read the words in pictures (OCR)")
        self.ocr.setChecked(values.ocr)
        for c, what in ((self.watch, "New, changed, moved and deleted files are picked up "
                                     "within seconds, without a rescan."),
                        (self.ocr, "Screenshots and scans are found by the text they show; "
                                   "indexing pictures takes longer.")):
            c.setAccessibleName(c.text().replace("&", ""))
            c.setAccessibleDescription(what)
            c.setToolTip(what)
            lay.addWidget(c)
            note = label(what, "faint", wrap=True)
            note.setContentsMargins(28, 0, 0, 4)
            lay.addWidget(note)

        lay.addStretch(1)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok |
                                        QDialogButtonBox.StandardButton.Cancel)
        for b in self.buttons.buttons():
            b.setIcon(QIcon())  # the platform's stock icons clash with the theme's line icons
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.setTabOrder(self.model, self.library)
        self.setTabOrder(self.library, self.choose_library)
        self.setTabOrder(self.choose_library, self.device)
        self.setTabOrder(self.device, self.watch)
        self.setTabOrder(self.watch, self.ocr)
        self.setTabOrder(self.ocr, self.buttons)
        self._sync_model()

    def _add_model(self, spec: ModelSpec, title: str) -> None:
        suffix = "  (in use)" if spec.name == self._in_use else ""
        self.model.addItem(f"{title}{suffix}  —  {spec.short_facts()}", spec.name)
        self.model.setItemData(self.model.count() - 1, spec.description,
                               Qt.ItemDataRole.ToolTipRole)

    def _sync_model(self, *args) -> None:
        spec = self._specs.get(self.model.currentData())
        if spec is None:
            self.model_details.setText("")
            self.model_note.hide()
            return
        self.model_details.setText(
            f"{html.escape(spec.description)}<br><b>Size:</b> {html.escape(spec.size_text())}"
            f"<br><b>Speed:</b> {html.escape(spec.speed_text())}"
            f"<br><b>Quality:</b> {_linked(spec.quality_text())}")
        changing = bool(self._in_use) and spec.name != self._in_use
        if changing and self._has_vectors:
            self.model_note.setText(
                f"OK re-indexes this library with {spec.name} in the background. Searches keep "
                "using the current model until every file is done, then Magpie switches; "
                "cancelling keeps the current model.")
        elif changing:
            self.model_note.setText(f"This library is empty: OK switches it to {spec.name}.")
        self.model_note.setVisible(changing)
        QTimer.singleShot(0, self._fit_height)

    def _fit_height(self) -> None:
        """Grow to show the whole description and note of the model now chosen (wrapped text
        would otherwise be cut at the bottom of a dialog sized for another model)."""
        lay = self.layout()
        lay.activate()
        need = lay.totalHeightForWidth(self.width()) if lay.hasHeightForWidth() else \
            lay.totalSizeHint().height()
        if need > self.height():
            self.resize(self.width(), need)

    def resizeEvent(self, e) -> None:  # noqa: N802
        super().resizeEvent(e)
        QTimer.singleShot(0, self._fit_height)

    def _pick_library(self) -> None:
        start = self.library.text() or os.path.expanduser("~")
        path = self.pick_folder(os.path.dirname(start.rstrip(os.sep)) or start)
        if path:
            self.library.setText(path)

    def pick_folder(self, start: str) -> str | None:
        """Asks for a folder (tests replace this)."""
        return QFileDialog.getExistingDirectory(self, "Choose the library folder", start) or None

    def values(self) -> PrefsValues:
        return PrefsValues(
            model=self.model.currentData() or self._initial.model,
            library=self.library.text().strip(),
            device=self.device.currentData(),
            watch=self.watch.isChecked(),
            ocr=self.ocr.isChecked(),
        )


def _linked(text: str) -> str:
    """Quality text with its source URL made a link (the rest escaped)."""
    out = []
    for word in text.split(" "):
        core = word.rstrip(")")
        if core.startswith("https://"):
            out.append(f'<a href="{html.escape(core)}">{html.escape(core)}</a>'
                       + html.escape(word[len(core):]))
        else:
            out.append(html.escape(word))
    return " ".join(out)
