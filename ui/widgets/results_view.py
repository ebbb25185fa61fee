"""The thumbnail grid of results."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QListView, QToolTip, QWidget

from ui.delegates import CELL, ResultDelegate
from ui.models import Roles


class ResultsView(QListView):
    """The thumbnail grid. Enter or double-click opens; arrows move; right-click for more.

    Cards are one size (`cell_size`); the model's "Other results" divider is a row as wide as
    the grid's columns (`row_width`), so it always sits on a line of its own between the
    results that stand out and the rest. Hence no QListView grid size (it would force every
    item into one cell) and no uniform item sizes: the layout reads each item's size hint.
    Arrow keys, Home/End and clicks pass over the divider (it is not enabled)."""

    openRequested = Signal(QModelIndex)
    contextRequested = Signal(QModelIndex, QPoint)
    upFromTop = Signal()
    copyRequested = Signal(list)  # the selected indexes: copy their full paths

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ResultsView")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self._cell = QSize(CELL)
        self._cols = 1
        self.setSpacing(0)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)
        self.setMouseTracking(True)
        self.setDragEnabled(False)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setAccessibleName("Results")
        self.setAccessibleDescription("Enter opens · Shift+F10 or the Menu key: more actions · "
                                      "Ctrl+C copies the path · Esc returns to the search box")
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
        if size != self._cell or cols != self._cols:
            self._cell, self._cols = size, cols
            self.scheduleDelayedItemsLayout()  # the item sizes changed: lay out again
        super().resizeEvent(e)

    def cell_size(self) -> QSize:
        """The size of one result card's cell."""
        return QSize(self._cell)

    def columns(self) -> int:
        return self._cols

    def row_width(self) -> int:
        """The width of a full line of cards: the divider's width, so it is alone on its line."""
        return self._cell.width() * self._cols

    def moveCursor(self, action, modifiers):  # noqa: N802 - Qt API
        """Qt's move, then off the divider if it landed there (Home onto a leading "No strong
        matches" row): to the nearest result, forwards first."""
        idx = super().moveCursor(action, modifiers)
        model = self.model()
        if not idx.isValid() or model is None or not idx.data(Roles.Divider):
            return idx
        rows = model.rowCount()
        back = action in (QAbstractItemView.CursorAction.MoveEnd,
                          QAbstractItemView.CursorAction.MoveUp,
                          QAbstractItemView.CursorAction.MovePageUp)
        order = (list(range(idx.row() - 1, -1, -1)) + list(range(idx.row() + 1, rows))) if back \
            else (list(range(idx.row() + 1, rows)) + list(range(idx.row() - 1, -1, -1)))
        for row in order:
            cand = model.index(row, 0)
            if cand.flags() & Qt.ItemFlag.ItemIsEnabled:
                return cand
        return self.currentIndex()

    def _context(self, pos: QPoint) -> None:
        idx = self.indexAt(pos)
        if idx.isValid() and idx.data(Roles.Divider):
            return  # the divider is a heading: no menu
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
        if e.matches(QKeySequence.StandardKey.Copy):
            # the full path of each selected result (Qt's own copy puts the file name there)
            picked = self.selectionModel().selectedIndexes() or \
                ([self.currentIndex()] if self.currentIndex().isValid() else [])
            if picked:
                self.copyRequested.emit(sorted(picked, key=lambda i: i.row()))
            return
        menu_key = e.key() == Qt.Key.Key_Menu or (
            e.key() == Qt.Key.Key_F10 and e.modifiers() == Qt.KeyboardModifier.ShiftModifier)
        if menu_key:
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
            if idx.isValid() and not idx.data(Roles.Divider):
                sign = self.delegate.button_at(self.visualRect(idx), pos)
                if sign:
                    QToolTip.showText(e.globalPos(), self.delegate.tooltip_for_button(sign), self)
                    return True
        if e.type() == QEvent.Type.Leave:
            self.delegate._hover_button = None
        return super().viewportEvent(e)

    def select_first(self) -> None:
        """The first result (past a leading "No strong matches" divider) becomes current."""
        model = self.model()
        if model is None:
            return
        for row in range(model.rowCount()):
            idx = model.index(row, 0)
            if idx.flags() & Qt.ItemFlag.ItemIsEnabled:
                self.setCurrentIndex(idx)
                self.setFocus(Qt.FocusReason.ShortcutFocusReason)
                return
