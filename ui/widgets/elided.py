"""A one-line label that never cuts its text: when the text is wider than the label, it is
shortened with "…" and the whole text becomes its tooltip.

`text()` stays the full text (callers and tests read what was set, not what fits), and the
label asks its layout for room for the whole text but accepts as little as `min_chars`
characters, so a narrow window shrinks it instead of squeezing its neighbours.
"""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFontMetrics, QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy, QStyle, QStyleOption, QWidget


class ElidedLabel(QLabel):
    def __init__(self, text: str = "", role: str | None = None, *,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight, min_chars: int = 6,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if role:
            self.setProperty("role", role)
        self._mode = mode
        self._min_chars = min_chars
        self._own_tip = ""
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setText(text)

    # -- text -------------------------------------------------------------------------------
    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        super().setText(text)
        self._sync_tip()

    def setToolTip(self, tip: str) -> None:  # noqa: N802
        """A tooltip of its own (shown whole or not); the full text is added when elided."""
        self._own_tip = tip
        self._sync_tip()

    def full_text(self) -> str:
        return self.text()

    def shown_text(self) -> str:
        width = max(0, self.contentsRect().width())
        return QFontMetrics(self.font()).elidedText(self.text(), self._mode, width)

    def is_elided(self) -> bool:
        return self.shown_text() != self.text()

    def _sync_tip(self) -> None:
        full = self.text()
        parts = [full] if full and self.is_elided() else []
        if self._own_tip and self._own_tip != full:
            parts.append(self._own_tip)
        QLabel.setToolTip(self, "\n".join(parts))

    # -- size and painting ------------------------------------------------------------------
    def minimumSizeHint(self) -> QSize:  # noqa: N802
        fm = QFontMetrics(self.font())
        m = self.contentsMargins()
        width = fm.horizontalAdvance("x" * self._min_chars + "…") if self.text() else 0
        return QSize(min(width, super().sizeHint().width()) + m.left() + m.right(),
                     super().minimumSizeHint().height())

    def resizeEvent(self, e) -> None:  # noqa: N802
        super().resizeEvent(e)
        self._sync_tip()

    def paintEvent(self, e) -> None:  # noqa: N802
        p = QPainter(self)
        opt = QStyleOption()
        opt.initFrom(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_Widget, opt, p, self)
        align = self.alignment()
        if not align & Qt.AlignmentFlag.AlignVertical_Mask:
            align |= Qt.AlignmentFlag.AlignVCenter
        self.style().drawItemText(p, self.contentsRect(), int(align), self.palette(),
                                  self.isEnabled(), self.shown_text(), self.foregroundRole())
