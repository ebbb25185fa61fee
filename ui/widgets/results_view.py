"""The thumbnail grid of results."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QListView, QToolTip, QWidget

from ui.delegates import CELL, ResultDelegate


class ResultsView(QListView):
    """The thumbnail grid. Enter or double-click opens; arrows move; right-click for more."""

    openRequested = Signal(QModelIndex)
    contextRequested = Signal(QModelIndex, QPoint)
    upFromTop = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ResultsView")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setUniformItemSizes(True)
        self.setGridSize(CELL)
        self.setSpacing(0)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)
        self.setMouseTracking(True)
        self.setDragEnabled(False)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setAccessibleName("Results")
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_Hover, True)
        self.delegate = ResultDelegate(self)
        self.setItemDelegate(self.delegate)
        self.doubleClicked.connect(self.openRequested)
        self.customContextMenuRequested.connect(self._context)

    MIN_CELL_WIDTH = 184

    def resizeEvent(self, e) -> None:  # noqa: N802
        """Cells stretch so the columns fill the width exactly (no ragged gap on the right)."""
        # reserve the scroll bar's width: it comes and goes with the results, and a grid
        # that only fits without it would drop to one column fewer when it appears
        width = self.contentsRect().width() - self.verticalScrollBar().sizeHint().width() - 2
        cols = max(1, width // self.MIN_CELL_WIDTH)
        cell = max(self.MIN_CELL_WIDTH, (width - 12) // cols)  # QListView wraps early
        size = QSize(cell, cell + CELL.height() - CELL.width())
        if size != self.gridSize():
            self.setGridSize(size)
        super().resizeEvent(e)

    def _context(self, pos: QPoint) -> None:
        idx = self.indexAt(pos)
        if idx.isValid():
            self.setCurrentIndex(idx)
        self.contextRequested.emit(idx, self.viewport().mapToGlobal(pos))

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        if e.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            idx = self.currentIndex()
            if idx.isValid():
                self.openRequested.emit(idx)
            return
        if e.key() == Qt.Key.Key_Up and self.currentIndex().isValid():
            before = self.currentIndex()
            super().keyPressEvent(e)
            if self.currentIndex() == before:
                self.upFromTop.emit()
            return
        if e.key() == Qt.Key.Key_Escape:
            self.upFromTop.emit()
            return
        if e.key() == Qt.Key.Key_Menu:
            idx = self.currentIndex()
            if idx.isValid():
                self.contextRequested.emit(idx, self.viewport().mapToGlobal(
                    self.visualRect(idx).center()))
            return
        super().keyPressEvent(e)

    def viewportEvent(self, e: QEvent) -> bool:  # noqa: N802
        if e.type() == QEvent.Type.ToolTip:
            pos = e.pos()
            idx = self.indexAt(pos)
            if idx.isValid():
                sign = self.delegate.button_at(self.visualRect(idx), pos)
                if sign:
                    QToolTip.showText(e.globalPos(), self.delegate.tooltip_for_button(sign), self)
                    return True
        if e.type() == QEvent.Type.Leave:
            self.delegate._hover_button = None
        return super().viewportEvent(e)

    def select_first(self) -> None:
        if self.model() is not None and self.model().rowCount() > 0:
            self.setCurrentIndex(self.model().index(0, 0))
            self.setFocus(Qt.FocusReason.ShortcutFocusReason)
