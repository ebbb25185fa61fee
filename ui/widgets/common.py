"""Small helpers every widget shares: labels and buttons in the theme's roles, and what a
drag carries."""
from __future__ import annotations

import os

from collections.abc import Callable

from PySide6.QtCore import QAbstractItemModel, QMimeData, QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPainterPath, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemDelegate,
    QLabel,
    QListView,
    QPushButton,
    QToolButton,
    QWidget,
)

from ui import icons, theme

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".heic",
                  ".heif", ".avif")


def local_paths(mime: QMimeData) -> list[str]:
    """Local file paths carried by a drag (file managers send file:// URLs)."""
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]


def is_image_path(path: str) -> bool:
    return path.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(path)


def label(text: str = "", role: str | None = None, wrap: bool = False) -> QLabel:
    w = QLabel(text)
    if role:
        w.setProperty("role", role)
    w.setWordWrap(wrap)
    return w


def button(text: str, kind: str | None = None, icon_name: str | None = None,
           tip: str | None = None) -> QPushButton:
    b = QPushButton(text)
    if kind:
        b.setProperty("kind", kind)
    if icon_name:
        t = theme.current()
        color = t.accent_text if kind == "primary" else (t.accent if kind == "flat" else t.text)
        b.setIcon(icons.icon(icon_name, color))
        b.setIconSize(QSize(16, 16))
    if tip:
        b.setToolTip(tip)
    b.setCursor(Qt.CursorShape.PointingHandCursor)
    return b


def tool(icon_name: str, tip: str, size: int = 18) -> QToolButton:
    b = QToolButton()
    b.setIcon(icons.icon(icon_name, theme.current().muted))
    b.setIconSize(QSize(size, size))
    b.setToolTip(tip)
    b.setAccessibleName(tip)
    b.setCursor(Qt.CursorShape.PointingHandCursor)
    return b


def fitted_list(name: str, model: QAbstractItemModel,
                delegate: Callable[[QListView], QAbstractItemDelegate]) -> QListView:
    """A list whose rows are as wide as the list: narrowed, the rows lay out again and the
    delegate elides them, so there is never a sideways scroll (the side panel's folders, the
    error panel's files)."""
    view = QListView()
    view.setObjectName(name)
    view.setModel(model)
    view.setItemDelegate(delegate(view))
    view.setResizeMode(QListView.ResizeMode.Adjust)
    view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return view


def repolish(w: QWidget) -> None:
    w.style().unpolish(w)
    w.style().polish(w)
    w.update()



def rounded_pixmap(pm: QPixmap, radius: float) -> QPixmap:
    out = QPixmap(pm.size())
    out.setDevicePixelRatio(pm.devicePixelRatio())
    out.fill(Qt.GlobalColor.transparent)
    p = QPainter(out)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    path = QPainterPath()
    r = pm.devicePixelRatio()
    path.addRoundedRect(QRectF(0, 0, pm.width() / r, pm.height() / r), radius / r, radius / r)
    p.setClipPath(path)
    p.drawPixmap(0, 0, pm)
    p.end()
    return out
