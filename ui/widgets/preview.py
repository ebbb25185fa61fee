"""The preview pane: the selected result, larger, and what to do with it."""
from __future__ import annotations

import os
from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor, QPainter, QPainterPath, QPen, QPixmap, QPolygonF, QTextCharFormat, QTextCursor,
)
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QPlainTextEdit, QScrollArea, QSizePolicy, QTextEdit, QVBoxLayout,
    QWidget,
)

from indexer.query_feedback import highlight_spans
from ui import icons, theme
from ui.models import explain, score_line, when_text
from ui.widgets.common import button, label, tool
from ui.widgets.flow import FlowLayout


class ScaledImage(QWidget):
    """A pixmap drawn to fit (aspect kept, rounded corners); never upscaled past 2x."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pm: QPixmap | None = None
        self._marks: list = []
        self.setMinimumHeight(120)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def set_pixmap(self, pm: QPixmap | None) -> None:
        self._pm = pm
        self.updateGeometry()
        self.update()

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        """As tall as the picture needs at this width (portraits capped at 1.4x the width)."""
        pm = self._pm
        aspect = pm.height() / pm.width() if pm is not None and not pm.isNull() else 0.75
        return max(120, int(width * min(aspect, 1.4)))

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(300, self.heightForWidth(300))

    def pixmap(self) -> QPixmap | None:
        return self._pm

    def set_marks(self, marks: Sequence) -> None:
        """Boxes to draw over the picture (four corners each, fractions of its width and
        height): where the query's words were read in it."""
        self._marks = list(marks)
        self.update()

    def marks(self) -> list:
        return list(self._marks)

    def paintEvent(self, e) -> None:  # noqa: N802
        t = theme.current()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        area = QRectF(self.rect())
        if self._pm is None or self._pm.isNull():
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(t.sunken))
            p.drawRoundedRect(area, 12, 12)
            ic = icons.pixmap("image", t.faint, 40, self.devicePixelRatioF())
            p.drawPixmap(int(area.center().x() - 20), int(area.center().y() - 20), ic)
            return
        ratio = self._pm.devicePixelRatio()
        w, h = self._pm.width() / ratio, self._pm.height() / ratio
        scale = min(area.width() / w, area.height() / h, 2.0)
        r = QRectF(0, 0, w * scale, h * scale)
        r.moveCenter(area.center())
        r.moveTop(area.top())
        path = QPainterPath()
        path.addRoundedRect(r, 10, 10)
        p.setClipPath(path)
        p.drawPixmap(r, self._pm, QRectF(self._pm.rect()))
        if self._marks:
            self._draw_marks(p, r, t)

    def _draw_marks(self, p: QPainter, r: QRectF, t) -> None:
        """A highlighter stroke over each word: translucent fill, solid edge."""
        edge = QColor(t.accent)
        fill = QColor(t.highlight)
        fill.setAlpha(110)
        p.setPen(QPen(edge, 2))
        p.setBrush(fill)
        for box in self._marks:
            poly = QPolygonF([QPointF(r.left() + x * r.width(), r.top() + y * r.height())
                              for x, y in box])
            p.drawPolygon(poly)


class PreviewPane(QFrame):
    """The selected result, larger: the picture or the note's text, and what to do with it."""

    openClicked = Signal()
    revealClicked = Signal()
    similarClicked = Signal()
    markClicked = Signal(int)  # +1 / -1 / 0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Preview")
        # the content scrolls when the window is too short for it (nothing is cut), and its
        # buttons wrap when it is narrow; its width never drops below the widest button
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.scroll = QScrollArea()
        self.scroll.setObjectName("PreviewScroll")
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        inner = QWidget()
        inner.setObjectName("PreviewInner")
        self.scroll.setWidget(inner)
        outer.addWidget(self.scroll)
        lay = QVBoxLayout(inner)
        lay.setContentsMargins(16, 16, 16, 16)
        lay.setSpacing(10)
        self.image = ScaledImage()
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setObjectName("NoteText")
        self.text.hide()
        self.title = label("", "heading", wrap=True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.meta = label("", "muted", wrap=True)
        self.meta.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.score = label("", "faint", wrap=True)
        actions = FlowLayout(spacing=6, centred=False)
        self.open_button = button("Open", "primary", "open", "Open with the default app (Enter)")
        self.reveal_button = button("Show in folder", None, "folder-open")
        actions.addWidget(self.open_button)
        actions.addWidget(self.reveal_button)
        refine = QHBoxLayout()
        refine.setSpacing(6)
        self.similar_button = button("Find similar", None, "similar",
                                     "Search with this item as the query")
        self.more_button = tool("more", "More like this: steer the ranking towards this item")
        self.less_button = tool("less", "Less like this: steer the ranking away from this item")
        for b in (self.more_button, self.less_button):
            b.setCheckable(True)
        refine.addWidget(self.similar_button)
        refine.addStretch()
        refine.addWidget(self.more_button)
        refine.addWidget(self.less_button)
        self.placeholder = label("Select a result to preview it here.", "faint", wrap=True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.placeholder, 1)
        lay.addWidget(self.image)
        lay.addWidget(self.text, 1)
        lay.addSpacing(4)
        lay.addWidget(self.title)
        lay.addWidget(self.meta)
        lay.addWidget(self.score)
        lay.addSpacing(4)
        lay.addLayout(actions)
        lay.addLayout(refine)
        lay.addStretch(1)
        self._layout = lay
        self._details = (self.image, self.title, self.meta, self.score, self.open_button,
                         self.reveal_button, self.similar_button, self.more_button,
                         self.less_button)
        self.open_button.clicked.connect(self.openClicked)
        self.reveal_button.clicked.connect(self.revealClicked)
        self.similar_button.clicked.connect(self.similarClicked)
        self.more_button.clicked.connect(lambda on: self.markClicked.emit(1 if on else 0))
        self.less_button.clicked.connect(lambda on: self.markClicked.emit(-1 if on else 0))
        self.current = None
        self._words: tuple[str, ...] = ()
        self.clear()

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        """Wide enough for the widest control and the scroll bar (the scroll area alone
        would let the pane shrink until its buttons are cut)."""
        inner = self.scroll.widget().minimumSizeHint()
        bar = self.scroll.verticalScrollBar().sizeHint().width()
        return QSize(inner.width() + bar + 2, 120)

    def set_highlight(self, words: Sequence[str]) -> None:
        """The query's words, marked wherever they occur in a note's text."""
        self._words = tuple(words)
        self._mark_words()

    def _mark_words(self) -> None:
        t = theme.current()
        text = self.text.toPlainText()
        fmt = QTextCharFormat()
        fmt.setBackground(QColor(t.highlight))
        marks = []
        for a, b in highlight_spans(text, self._words):
            sel = QTextEdit.ExtraSelection()
            cursor = QTextCursor(self.text.document())
            cursor.setPosition(a)
            cursor.setPosition(b, QTextCursor.MoveMode.KeepAnchor)
            sel.cursor = cursor
            sel.format = fmt
            marks.append(sel)
        self.text.setExtraSelections(marks)

    def highlighted(self) -> list[str]:
        """The words marked in the note's text now (tests read this)."""
        return [s.cursor.selectedText() for s in self.text.extraSelections()]

    def clear(self) -> None:
        self.current = None
        for w in self._details:
            w.hide()
        self.text.hide()
        self.placeholder.show()

    def show_result(self, r, pixmap: QPixmap | None = None, mark: int = 0,
                    copies: Sequence = (), text_marks: Sequence = ()) -> None:
        """`text_marks`: where the query's words were read in the picture (drawn over it)."""
        self.current = r
        self.placeholder.hide()
        for w in self._details:
            w.show()
        is_note = r.kind == "text"
        self.image.setVisible(not is_note)
        self.text.setVisible(is_note)
        self._layout.setStretch(self._layout.count() - 1, 0 if is_note else 1)
        if is_note:
            self.set_text(r.snippet or "")
        else:
            self.image.set_pixmap(pixmap)
        self.image.set_marks(() if is_note else text_marks)
        self.title.setText(os.path.basename(r.path) or r.path)
        lines = [os.path.dirname(r.path)]
        when = when_text(r.taken_at)
        if when:
            lines.append(when)
        if not is_note and r.snippet:  # found by words read in the picture: they are marked
            lines.append(f"Read in the picture: “{' '.join(r.snippet.split())}”")
        if copies:
            lines.append(f"{len(copies) + 1} identical copies; also at:")
            lines.extend(c.path for c in copies[:5])
            if len(copies) > 5:
                lines.append(f"… and {len(copies) - 5} more")
        self.meta.setText("\n".join(lines))
        self.score.setText(score_line(r))
        self.score.setToolTip(explain(r))
        self.set_mark(mark)

    def set_mark(self, mark: int) -> None:
        self.more_button.setChecked(mark > 0)
        self.less_button.setChecked(mark < 0)

    def set_pixmap(self, pixmap: QPixmap | None) -> None:
        self.image.set_pixmap(pixmap)

    def set_text(self, text: str) -> None:
        self.text.setPlainText(text)
        self._mark_words()
