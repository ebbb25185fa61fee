"""The results area's other pages: the first-start drop zone, the idle hint with example
queries, and a centred message."""
from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ui import icons, theme
from ui.widgets.common import button, label


class EmptyState(QWidget):
    """First start: a big drop zone that says what to do."""

    addFolderClicked = Signal()
    demoClicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._dragging = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(32, 32, 32, 32)
        outer.addStretch(2)
        box = QVBoxLayout()
        box.setSpacing(10)
        box.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.art = QLabel()
        self.art.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.art.setPixmap(icons.pixmap("drop", theme.current().accent, 56,
                                        self.devicePixelRatioF(), stroke=1.5))
        self.title = label("Drop a folder here to index it", "title")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body = label(
            "Magpie looks at every picture and note inside, so you can find them by describing "
            "them. Everything stays on this computer.", "muted", wrap=True)
        self.body.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body.setFixedWidth(440)
        self.body.setMinimumHeight(self.body.heightForWidth(440))
        row = QHBoxLayout()
        row.setSpacing(10)
        row.addStretch()
        self.add_button = button("Add folder…", "primary", "folder-plus")
        self.add_button.clicked.connect(self.addFolderClicked)
        self.demo_button = button("Try the demo", None, "sparkle",
                                  "Index a small folder of sample pictures with the bundled "
                                  "offline model")
        self.demo_button.clicked.connect(self.demoClicked)
        row.addWidget(self.add_button)
        row.addWidget(self.demo_button)
        row.addStretch()
        self.hint = label("You can also drag folders onto this window at any time.", "faint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for w in (self.art, self.title, self.body):
            box.addWidget(w, 0, Qt.AlignmentFlag.AlignHCenter)
        box.addSpacing(8)
        box.addLayout(row)
        box.addSpacing(4)
        box.addWidget(self.hint, 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addLayout(box)
        outer.addStretch(3)

    def set_dragging(self, on: bool) -> None:
        self._dragging = on
        self.update()

    def paintEvent(self, e) -> None:  # noqa: N802
        t = theme.current()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(self.rect()).adjusted(18, 18, -18, -18)
        pen = QPen(QColor(t.accent if self._dragging else t.border), 2, Qt.PenStyle.DashLine)
        pen.setDashPattern([6, 5])
        p.setPen(pen)
        p.setBrush(QColor(t.accent_soft) if self._dragging else Qt.BrushStyle.NoBrush)
        p.drawRoundedRect(r, 18, 18)


class SearchHint(QWidget):
    """Library has items but no query yet: say how many and offer example queries."""

    exampleClicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(32, 32, 32, 32)
        outer.addStretch(2)
        self.art = QLabel()
        self.art.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.art.setPixmap(icons.pixmap("search", theme.current().faint, 52,
                                        self.devicePixelRatioF(), stroke=1.4))
        self.title = label("Search your pictures and notes", "title")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body = label("", "muted", wrap=True)
        self.body.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.examples = QHBoxLayout()
        self.examples.setSpacing(8)
        outer.addWidget(self.art)
        outer.addSpacing(6)
        outer.addWidget(self.title)
        outer.addWidget(self.body)
        outer.addSpacing(10)
        holder = QHBoxLayout()
        holder.addStretch()
        holder.addLayout(self.examples)
        holder.addStretch()
        outer.addLayout(holder)
        outer.addStretch(3)

    def set_info(self, body: str, examples: Sequence[str]) -> None:
        self.body.setText(body)
        if list(examples) == getattr(self, "_examples", None):
            return
        self._examples = list(examples)
        while self.examples.count():
            item = self.examples.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        for ex in examples:
            b = button(f"“{ex}”", "flat")
            b.clicked.connect(lambda _=False, q=ex: self.exampleClicked.emit(q))
            self.examples.addWidget(b)


class MessageView(QWidget):
    """A centred icon + title + line, for 'no results', 'searching…' and errors."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.addStretch(2)
        self.art = QLabel()
        self.art.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = label("", "heading")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body = label("", "muted", wrap=True)
        self.body.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.art)
        lay.addWidget(self.title)
        lay.addWidget(self.body)
        lay.addStretch(3)

    def show_message(self, title: str, body: str = "", icon_name: str = "search",
                     error: bool = False) -> None:
        t = theme.current()
        self.art.setPixmap(icons.pixmap(icon_name, t.danger if error else t.faint, 40,
                                        self.devicePixelRatioF(), stroke=1.5))
        self.title.setText(title)
        self.body.setText(body)
        self.body.setVisible(bool(body))
