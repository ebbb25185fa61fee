"""A layout that places its widgets in rows like words in a paragraph (rows centred or left
aligned): example queries and the preview's buttons wrap onto another line in a narrow window
instead of being cut."""
from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QWidget


class FlowLayout(QLayout):
    def __init__(self, parent: QWidget | None = None, spacing: int = 8,
                 centred: bool = True) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self._centred = centred
        self.setContentsMargins(0, 0, 0, 0)

    # -- QLayout's item list ----------------------------------------------------------------
    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 - Qt API
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, i: int) -> QLayoutItem | None:  # noqa: N802
        return self._items[i] if 0 <= i < len(self._items) else None

    def takeAt(self, i: int) -> QLayoutItem | None:  # noqa: N802
        return self._items.pop(i) if 0 <= i < len(self._items) else None

    # -- geometry ---------------------------------------------------------------------------
    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._place(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._place(rect, move=True)

    def sizeHint(self) -> QSize:  # noqa: N802
        widths = [i.sizeHint().width() for i in self._items]
        height = max((i.sizeHint().height() for i in self._items), default=0)
        return QSize(sum(widths) + self._spacing * max(0, len(widths) - 1), height)

    def minimumSize(self) -> QSize:  # noqa: N802
        """As narrow as the widest single item: the rest wraps."""
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        return size

    def _rows(self, width: int) -> list[list[QLayoutItem]]:
        rows: list[list[QLayoutItem]] = [[]]
        used = 0
        for item in self._items:
            w = item.sizeHint().width()
            if rows[-1] and used + self._spacing + w > width:
                rows.append([])
                used = 0
            used += (self._spacing if rows[-1] else 0) + w
            rows[-1].append(item)
        return [r for r in rows if r]

    def _place(self, rect: QRect, move: bool) -> int:
        y = rect.y()
        for row in self._rows(rect.width()):
            widths = [min(i.sizeHint().width(), rect.width()) for i in row]
            height = max(i.sizeHint().height() for i in row)
            spare = rect.width() - sum(widths) - self._spacing * (len(row) - 1)
            x = rect.x() + (spare // 2 if self._centred else 0)
            for item, w in zip(row, widths):
                if move:
                    item.setGeometry(QRect(QPoint(x, y), QSize(w, height)))
                x += w + self._spacing
            y += height + self._spacing
        return max(0, y - rect.y() - self._spacing)
