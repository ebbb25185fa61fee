"""Kind, folder, date and sort filters above the results."""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtWidgets import QComboBox, QDateEdit, QHBoxLayout, QWidget

from ui import icons, theme

KIND_CHOICES = (("All items", None), ("Pictures", "image"), ("Notes", "text"))
DATE_CHOICES = (
    ("Any date", None), ("Past week", 7), ("Past month", 31), ("Past year", 365),
    ("Custom range…", "custom"),
)
SORT_CHOICES = (("Best match", "relevance"), ("Newest first", "date"))


class FilterBar(QWidget):
    """Kind, folder, date range and sort; `changed` fires on any edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(8)
        self.kind = self._combo(KIND_CHOICES, "Show pictures, notes or both")
        self.folder = QComboBox()
        self.folder.setToolTip("Only results inside this folder")
        self.folder.setMinimumContentsLength(9)  # longer names: the item's tooltip has it
        self.folder.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.set_folders([])
        self.date = self._combo(DATE_CHOICES, "When the picture was taken (EXIF), else when the "
                                "file was last changed")
        self.after = QDateEdit(calendarPopup=True)
        self.before = QDateEdit(calendarPopup=True)
        for w, tip in ((self.after, "From (inclusive)"), (self.before, "Until (inclusive)")):
            w.setDisplayFormat("d MMM yyyy")
            w.setToolTip(tip)
            w.hide()
            w.dateChanged.connect(self.changed)
        today = QDate.currentDate()
        self.after.setDate(today.addYears(-1))
        self.before.setDate(today)
        self.sort = self._combo(SORT_CHOICES, "Order results by how well they match, or by date")
        self._roots: list[str] = []
        self._last_folder_index = 0
        for c in (self.kind, self.sort):
            c.currentIndexChanged.connect(self.changed)
        self.folder.currentIndexChanged.connect(self._folder_changed)
        self.date.currentIndexChanged.connect(self._date_changed)
        for w in (self.kind, self.folder, self.date, self.after, self.before, self.sort):
            lay.addWidget(w)

    def _combo(self, choices, tip: str) -> QComboBox:
        c = QComboBox()
        for text, data in choices:
            c.addItem(text, data)
        c.setToolTip(tip)
        return c

    def _date_changed(self) -> None:
        custom = self.date.currentData() == "custom"
        self.after.setVisible(custom)
        self.before.setVisible(custom)
        self.changed.emit()

    OTHER = "\0other"  # the "Other folder…" entry

    def set_folders(self, paths: Sequence[str]) -> None:
        """The roots, plus any subfolder picked with "Other folder…" that lies inside one."""
        current = self.folder.currentData()
        paths = list(paths)
        self._roots = paths
        extra = [current] if current and current != self.OTHER and current not in paths and any(
            current.startswith(r.rstrip(os.sep) + os.sep) for r in paths) else []
        if [self.folder.itemData(i) for i in range(self.folder.count())] == \
                [None, *paths, *extra, self.OTHER]:
            return
        self.folder.blockSignals(True)
        self.folder.clear()
        folder_icon = icons.icon("folder", theme.current().muted)
        self.folder.addItem(folder_icon, "All folders", None)
        for p in paths + extra:
            self.folder.addItem(folder_icon, os.path.basename(p.rstrip(os.sep)) or p, p)
            self.folder.setItemData(self.folder.count() - 1, p, Qt.ItemDataRole.ToolTipRole)
        self.folder.addItem("Other folder…", self.OTHER)
        self.folder.setItemData(self.folder.count() - 1, "Only results inside a subfolder you "
                                "choose", Qt.ItemDataRole.ToolTipRole)
        idx = self.folder.findData(current) if current else 0
        self.folder.setCurrentIndex(max(0, idx))
        self._last_folder_index = self.folder.currentIndex()
        self.folder.blockSignals(False)
        if current and idx < 0:
            self.changed.emit()

    def _folder_changed(self, index: int) -> None:
        if self.folder.itemData(index) != self.OTHER:
            self._last_folder_index = index
            self.changed.emit()
            return
        start = self._roots[0] if self._roots else os.path.expanduser("~")
        path = self.pick_folder(start)
        self.folder.blockSignals(True)
        if path:
            path = os.path.abspath(path)
            at = self.folder.findData(path)
            if at < 0:
                at = self.folder.count() - 1
                self.folder.insertItem(at, icons.icon("folder", theme.current().muted),
                                       os.path.basename(path.rstrip(os.sep)) or path, path)
                self.folder.setItemData(at, path, Qt.ItemDataRole.ToolTipRole)
            self.folder.setCurrentIndex(at)
            self._last_folder_index = at
        else:
            self.folder.setCurrentIndex(self._last_folder_index)
        self.folder.blockSignals(False)
        if path:
            self.changed.emit()

    def pick_folder(self, start: str) -> str | None:
        from PySide6.QtWidgets import QFileDialog

        return QFileDialog.getExistingDirectory(self, "Only results inside this folder", start) \
            or None

    def values(self) -> dict:
        after = before = None
        span = self.date.currentData()
        if span == "custom":
            a, b = self.after.date(), self.before.date().addDays(1)
            after = dt.datetime(a.year(), a.month(), a.day()).timestamp()
            before = dt.datetime(b.year(), b.month(), b.day()).timestamp()
        elif span:
            after = (dt.datetime.now() - dt.timedelta(days=int(span))).timestamp()
        folder = self.folder.currentData()
        return {
            "kind": self.kind.currentData(),
            "folder": folder if folder != self.OTHER else None,
            "after": after,
            "before": before,
            "sort": self.sort.currentData(),
        }

    def reset(self) -> None:
        for c in (self.kind, self.folder, self.date, self.sort):
            c.blockSignals(True)
            c.setCurrentIndex(0)
            c.blockSignals(False)
        self.after.hide()
        self.before.hide()
        self.changed.emit()
