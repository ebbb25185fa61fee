"""The side panel listing the indexed folders."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFrame, QHBoxLayout, QVBoxLayout, QWidget

from ui import icons, theme
from ui.delegates import RootDelegate
from ui.models import RootsModel
from ui.widgets.common import button, fitted_list, label, tool


class RootsPanel(QFrame):
    """The indexed folders with counts; add, rescan, remove."""

    addClicked = Signal()
    rescanClicked = Signal(str)  # "" = every folder
    removeClicked = Signal(str)

    def __init__(self, model: RootsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Sidebar")
        self.model = model
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 14, 8, 10)
        lay.setSpacing(6)
        head = QHBoxLayout()
        head.setContentsMargins(8, 0, 2, 0)
        head.addWidget(label("FOLDERS", "section"))
        head.addStretch()
        self.add_button = tool("folder-plus", "Add a folder to index…")
        self.add_button.clicked.connect(self.addClicked)
        self.rescan_all = tool("refresh", "Rescan every folder for changes")
        self.rescan_all.clicked.connect(lambda: self.rescanClicked.emit(""))
        head.addWidget(self.rescan_all)
        head.addWidget(self.add_button)
        lay.addLayout(head)
        # rows are as wide as the panel: narrowed, they lay out again (the count stays in view;
        # names are elided by the delegate, full path in the tooltip)
        self.view = fitted_list("RootsList", model, RootDelegate)
        self.view.setMouseTracking(True)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.view.setAccessibleName("Indexed folders")
        self.rescan_action = QAction(icons.icon("refresh", theme.current().text), "Rescan", self)
        self.rescan_action.triggered.connect(self._rescan_selected)
        self.remove_action = QAction(icons.icon("trash", theme.current().danger),
                                     "Remove from Magpie…", self)
        self.remove_action.setToolTip("Forget this folder; your files are not touched")
        self.remove_action.triggered.connect(self._remove_selected)
        self.view.addAction(self.rescan_action)
        self.view.addAction(self.remove_action)
        lay.addWidget(self.view, 1)
        self.empty = label("No folders yet. Drop one on the window, or click the folder "
                           "button above.", "faint", wrap=True)
        self.empty.setContentsMargins(8, 4, 8, 0)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        lay.addWidget(self.empty, 1)
        self.button_row = QWidget()
        row = QHBoxLayout(self.button_row)
        row.setContentsMargins(4, 0, 4, 0)
        self.rescan_button = button("Rescan", None, "refresh", "Pick up new, changed and deleted "
                                    "files in the selected folder")
        self.remove_button = button("Remove", "danger", None, "Forget the selected folder; your "
                                    "files are not touched")
        self.rescan_button.clicked.connect(self._rescan_selected)
        self.remove_button.clicked.connect(self._remove_selected)
        row.addWidget(self.rescan_button)
        row.addWidget(self.remove_button)
        lay.addWidget(self.button_row)
        self.total = label("", "faint")
        self.total.setContentsMargins(8, 2, 8, 0)
        lay.addWidget(self.total)
        model.modelReset.connect(self._sync)
        model.dataChanged.connect(self._sync)
        self.view.selectionModel().selectionChanged.connect(self._sync)
        self._sync()

    def selected_path(self) -> str | None:
        idx = self.view.currentIndex()
        sel = self.view.selectionModel().selectedIndexes()
        if not sel and self.model.rowCount() == 1:
            return self.model.path(0)
        return self.model.path(idx.row()) if idx.isValid() and sel else None

    def _rescan_selected(self) -> None:
        path = self.selected_path()
        self.rescanClicked.emit(path or "")

    def _remove_selected(self) -> None:
        path = self.selected_path()
        if path:
            self.removeClicked.emit(path)

    def _sync(self, *args) -> None:
        n = self.model.rowCount()
        self.empty.setVisible(n == 0)
        self.view.setVisible(n > 0)
        self.button_row.setVisible(n > 0)
        has = self.selected_path() is not None
        self.remove_button.setEnabled(has)
        self.remove_action.setEnabled(has)
        self.rescan_button.setEnabled(n > 0)
        self.rescan_all.setEnabled(n > 0)
        self.total.setText(f"{self.model.total():,} items in {n} folder{'s' * (n != 1)}" if n else "")
