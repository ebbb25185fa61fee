"""Line icons drawn from small inline SVGs, tinted to the theme (no icon files to ship).

Every icon is a 24x24 stroke drawing; `icon(name, color)` renders it crisp at any scale.
"""
from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QIconEngine, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from indexer.specs import ASSETS_DIR

_PATHS: dict[str, str] = {
    "search": '<circle cx="11" cy="11" r="6.5"/><path d="M16 16l4.5 4.5"/>',
    "folder": '<path d="M3 6.5A1.5 1.5 0 0 1 4.5 5H9l2 2.5h8.5A1.5 1.5 0 0 1 21 9v9.5a1.5 1.5 0 '
              '0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 18.5z"/>',
    "folder-plus": '<path d="M3 6.5A1.5 1.5 0 0 1 4.5 5H9l2 2.5h8.5A1.5 1.5 0 0 1 21 9v9.5a1.5 '
                   '1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 18.5z"/><path d="M12 11v6M9 14h6"/>',
    "folder-open": '<path d="M3.5 18.5V6.5A1.5 1.5 0 0 1 5 5h4l2 2h6.5A1.5 1.5 0 0 1 19 8.5V10"/>'
                   '<path d="M3.5 18.5L6 11h16l-2.6 7.5a1.5 1.5 0 0 1-1.4 1H5a1.5 1.5 0 0 1-1.5-1z"/>',
    "menu": '<path d="M4 7h16M4 12h16M4 17h16"/>',
    "plus": '<path d="M12 5v14M5 12h14"/>',
    "refresh": '<path d="M19.5 12a7.5 7.5 0 1 1-2.2-5.3L19.5 9"/><path d="M19.5 4v5h-5"/>',
    "trash": '<path d="M4 7h16M9.5 7V4.5h5V7M6.5 7l1 13h9l1-13M10 11v5.5M14 11v5.5"/>',
    "pause": '<path d="M9 5.5v13M15 5.5v13"/>',
    "play": '<path d="M7.5 5v14l11-7z"/>',
    "x": '<path d="M6.5 6.5l11 11M17.5 6.5l-11 11"/>',
    "image": '<rect x="3" y="4" width="18" height="16" rx="2.5"/><circle cx="8.5" cy="9.5" r="1.6"/>'
             '<path d="M21 15.5l-5-5L6.5 20"/>',
    "note": '<path d="M6.5 3h7.5l5 5v11.5a1.5 1.5 0 0 1-1.5 1.5h-11A1.5 1.5 0 0 1 5 19.5v-15A1.5 '
            '1.5 0 0 1 6.5 3z"/><path d="M14 3v5h5M8.5 12.5h7M8.5 16h7M8.5 9h2.5"/>',
    "open": '<path d="M14 4h6v6M20 4l-8.5 8.5"/><path d="M18 14v4.5a1.5 1.5 0 0 1-1.5 1.5h-11A1.5 '
            '1.5 0 0 1 4 18.5v-11A1.5 1.5 0 0 1 5.5 6H10"/>',
    "copy": '<rect x="8.5" y="8.5" width="11.5" height="11.5" rx="2"/><path d="M15.5 8.5V5.5A1.5 '
            '1.5 0 0 0 14 4H5.5A1.5 1.5 0 0 0 4 5.5V14a1.5 1.5 0 0 0 1.5 1.5h3"/>',
    "similar": '<path d="M11 3.5l1.7 4.8 4.8 1.7-4.8 1.7L11 16.5l-1.7-4.8L4.5 10l4.8-1.7z"/>'
               '<path d="M18 14.5l.9 2.1 2.1.9-2.1.9-.9 2.1-.9-2.1-2.1-.9 2.1-.9z"/>',
    "more": '<path d="M7 10.5V20H4.5V10.5zM7 10.5l3.8-6.6a1.8 1.8 0 0 1 3.3 1.3L13.3 9h5.2a2 2 0 '
            '0 1 2 2.4l-1.4 6.9a2 2 0 0 1-2 1.7H7"/>',
    "less": '<g transform="rotate(180 12 12)"><path d="M7 10.5V20H4.5V10.5zM7 10.5l3.8-6.6a1.8 1.8 '
            '0 0 1 3.3 1.3L13.3 9h5.2a2 2 0 0 1 2 2.4l-1.4 6.9a2 2 0 0 1-2 1.7H7"/></g>',
    "alert": '<path d="M12 3.5L2.5 20h19z"/><path d="M12 10v4.5M12 17.3v.2"/>',
    "download": '<path d="M12 4v11M7 10.5l5 5 5-5M5 20h14"/>',
    "check": '<path d="M5 12.5l4.5 4.5L19 7"/>',
    "chevron-down": '<path d="M6.5 9.5l5.5 5.5 5.5-5.5"/>',
    "chevron-up": '<path d="M6.5 14.5L12 9l5.5 5.5"/>',
    "filter": '<path d="M4 5h16l-6.2 7.5V19l-3.6-2v-4.5z"/>',
    "sparkle": '<path d="M12 3l2 6.5L20.5 12 14 14.5 12 21l-2-6.5L3.5 12 10 9.5z"/>',
    "cpu": '<rect x="6" y="6" width="12" height="12" rx="2"/><rect x="9.5" y="9.5" width="5" '
           'height="5"/><path d="M9 3v3M15 3v3M9 18v3M15 18v3M3 9h3M3 15h3M18 9h3M18 15h3"/>',
    "drop": '<path d="M12 3.5v10M8 9.5l4 4 4-4"/><path d="M4 14.5v3A2.5 2.5 0 0 0 6.5 20h11a2.5 '
            '2.5 0 0 0 2.5-2.5v-3"/>',
}

_LOGO = (ASSETS_DIR / "desktop" / "magpie.svg").read_text()  # also the desktop icon


def svg_for(name: str, color: str, stroke: float = 1.8) -> bytes:
    body = _PATHS[name]
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" '
        f'stroke="{color}" stroke-width="{stroke}" stroke-linecap="round" '
        f'stroke-linejoin="round">{body}</svg>'
    ).encode()


class _SvgEngine(QIconEngine):
    """Renders the SVG at whatever size and pixel ratio Qt asks for (sharp on HiDPI)."""

    def __init__(self, data: bytes, disabled: bytes | None = None) -> None:
        super().__init__()
        self._data = data
        self._disabled = disabled

    def paint(self, painter: QPainter, rect, mode, state) -> None:  # noqa: N802 - Qt API
        data = self._disabled if mode == QIcon.Mode.Disabled and self._disabled else self._data
        QSvgRenderer(QByteArray(data)).render(painter, QRectF(rect))

    def pixmap(self, size: QSize, mode, state) -> QPixmap:
        pm = QPixmap(size)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        self.paint(p, pm.rect(), mode, state)
        p.end()
        return pm

    def clone(self) -> QIconEngine:
        return _SvgEngine(self._data, self._disabled)


@lru_cache(maxsize=256)
def icon(name: str, color: str = "#3c4048", stroke: float = 1.8) -> QIcon:
    """A theme-tinted line icon; unknown names raise KeyError (a typo, not a user error)."""
    faded = QColor(color)
    faded.setAlphaF(0.35)
    return QIcon(_SvgEngine(svg_for(name, color, stroke), svg_for(name, faded.name(QColor.NameFormat.HexArgb), stroke)))


@lru_cache(maxsize=512)
def pixmap(name: str, color: str, size: int, ratio: float = 1.0, stroke: float = 1.8) -> QPixmap:
    """A rendered icon, cached: delegates call this on every paint."""
    pm = QPixmap(int(size * ratio), int(size * ratio))
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(QByteArray(svg_for(name, color, stroke))).render(p, QRectF(0, 0, pm.width(), pm.height()))
    p.end()
    pm.setDevicePixelRatio(ratio)
    return pm


def logo_icon() -> QIcon:
    return QIcon(_SvgEngine(_LOGO.encode()))


@lru_cache(maxsize=8)
def logo_pixmap(size: int, ratio: float = 1.0) -> QPixmap:
    pm = QPixmap(int(size * ratio), int(size * ratio))
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    QSvgRenderer(QByteArray(_LOGO.encode())).render(p, QRectF(0, 0, pm.width(), pm.height()))
    p.end()
    pm.setDevicePixelRatio(ratio)
    return pm


def names() -> list[str]:
    return sorted(_PATHS)
