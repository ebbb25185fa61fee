"""The overlay shown while files are dragged over the window."""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

from ui import icons, theme


class DropOverlay(QWidget):
    """Covers the window while files are dragged over it: 'Drop to index'."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.text = "Drop to index"
        self.sub = ""
        self.hide()

    def show_for(self, text: str, sub: str = "") -> None:
        self.text, self.sub = text, sub
        self.setGeometry(self.parentWidget().rect())
        self.raise_()
        self.show()
        self.update()

    def paintEvent(self, e) -> None:  # noqa: N802
        t = theme.current()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        bg = QColor(t.window)
        bg.setAlpha(225)
        p.fillRect(self.rect(), bg)
        r = QRectF(self.rect()).adjusted(16, 16, -16, -16)
        pen = QPen(QColor(t.accent), 2.5, Qt.PenStyle.DashLine)
        pen.setDashPattern([6, 5])
        p.setPen(pen)
        p.setBrush(QColor(t.accent_soft))
        p.drawRoundedRect(r, 18, 18)
        ic = icons.pixmap("drop", t.accent, 56, self.devicePixelRatioF(), stroke=1.5)
        p.drawPixmap(int(r.center().x() - 28), int(r.center().y() - 70), ic)
        f = p.font()
        f.setPointSizeF(f.pointSizeF() + 6)
        f.setBold(True)
        p.setFont(f)
        p.setPen(QColor(t.text))
        p.drawText(QRectF(r.left(), r.center().y() - 6, r.width(), 34),
                   Qt.AlignmentFlag.AlignCenter, self.text)
        if self.sub:
            f.setPointSizeF(f.pointSizeF() - 6)
            f.setBold(False)
            p.setFont(f)
            p.setPen(QColor(t.muted))
            p.drawText(QRectF(r.left() + 20, r.center().y() + 30, r.width() - 40, 44),
                       Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextWordWrap, self.sub)
