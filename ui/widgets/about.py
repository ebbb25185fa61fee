"""The About dialog: what this Magpie is, which model made the open library's vectors, what
runs it, and under which licences the model and the main libraries come.

It shows an `AboutInfo` it is given (app/about.py gathers it) and computes nothing itself.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QHeaderView,
    QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from PySide6.QtGui import QIcon

from ui import icons
from ui.widgets.common import label


@dataclass(frozen=True)
class AboutInfo:
    version: str
    model: Sequence[tuple[str, str]] = ()  # (what, value): name, architecture, sha256, licence…
    runtime: Sequence[tuple[str, str]] = ()  # (what, value): text queries, pictures
    licences: Sequence[tuple[str, str, str]] = field(default_factory=tuple)  # name, version, licence


class AboutDialog(QDialog):
    def __init__(self, info: AboutInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Magpie")
        self.setObjectName("About")
        self.setMinimumWidth(600)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(20, 18, 20, 16)
        lay.setSpacing(10)
        head = QHBoxLayout()
        logo = QLabel()
        logo.setPixmap(icons.logo_pixmap(48, self.devicePixelRatioF()))
        head.addWidget(logo)
        title = QVBoxLayout()
        self.title = label(f"Magpie {info.version}", "title")
        self.title.setObjectName("about-version")
        title.addWidget(self.title)
        title.addWidget(label("Find any picture or note on your disk by describing it. "
                              "Nothing leaves your machine.", "muted", wrap=True))
        head.addLayout(title, 1)
        lay.addLayout(head)
        self.fields: dict[str, QLabel] = {}
        fm = self.fontMetrics()
        key_width = max((fm.horizontalAdvance(what + ":") for what, _ in
                         (*info.model, *info.runtime)), default=0) + 4
        for section, rows in (("MODEL OF THIS LIBRARY", info.model),
                              ("RUNNING ON", info.runtime)):
            if not rows:
                continue
            lay.addWidget(label(section, "section"))
            form = QFormLayout()
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            for what, value in rows:
                v = label(value, None, wrap=True)
                v.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse |
                                          Qt.TextInteractionFlag.TextSelectableByKeyboard)
                v.setAccessibleName(what)
                self.fields[what] = v
                key = label(what + ":", "muted")
                key.setMinimumWidth(key_width)  # both sections' values line up
                form.addRow(key, v)
            lay.addLayout(form)
        lay.addWidget(label("LICENCES", "section"))
        self.licences = QTableWidget(len(info.licences), 3)
        self.licences.setObjectName("licences")
        self.licences.setAccessibleName("Licences of the libraries Magpie uses")
        self.licences.setHorizontalHeaderLabels(["Library", "Version", "Licence"])
        self.licences.verticalHeader().hide()
        self.licences.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.licences.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.licences.setWordWrap(False)
        for row, cells in enumerate(info.licences):
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.licences.setItem(row, col, item)
        h = self.licences.horizontalHeader()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.licences.setMinimumHeight(180)
        lay.addWidget(self.licences, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        for b in buttons.buttons():
            b.setIcon(QIcon())
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        lay.addWidget(buttons)

    def licence_of(self, name: str) -> str | None:
        """The licence shown for a library (tests read this)."""
        for row in range(self.licences.rowCount()):
            if self.licences.item(row, 0).text() == name:
                return self.licences.item(row, 2).text()
        return None
