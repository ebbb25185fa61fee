"""The query row: the search box (type, or drop a picture) and the chip naming the picture
that is part of the query."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QFontMetrics, QKeyEvent, QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QLineEdit, QWidget

from ui import icons, theme
from ui.widgets.common import is_image_path, local_paths, repolish, rounded_pixmap, tool


class SearchField(QLineEdit):
    """The query box: search as you type; drop an image on it to search by that image."""

    imageDropped = Signal(str)
    downPressed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SearchField")
        self.setPlaceholderText("Describe what you're looking for — or drop an image here")
        self.setClearButtonEnabled(True)
        self.addAction(icons.icon("search", theme.current().muted),
                       QLineEdit.ActionPosition.LeadingPosition)
        self.setAcceptDrops(True)
        self.setAccessibleName("Search")
        self.setToolTip(
            "Describe a picture or a note in your own words.\n"
            "Combine ideas: beach + sunset - people   ·   weight one: beach:2 + sunset\n"
            "An image file's path works as a term too, or drop an image here.\n"
            "Enter searches at once · Down moves to the results · Esc clears")

    def _set_dropping(self, on: bool) -> None:
        self.setProperty("dropping", "true" if on else "false")
        repolish(self)

    def dragEnterEvent(self, e: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if any(is_image_path(p) for p in local_paths(e.mimeData())):
            self._set_dropping(True)
            e.acceptProposedAction()
        elif e.mimeData().hasText() and not e.mimeData().hasUrls():
            super().dragEnterEvent(e)
        else:
            e.ignore()

    def dragMoveEvent(self, e) -> None:  # noqa: N802
        if any(is_image_path(p) for p in local_paths(e.mimeData())):
            e.acceptProposedAction()
        else:
            super().dragMoveEvent(e)

    def dragLeaveEvent(self, e) -> None:  # noqa: N802
        self._set_dropping(False)
        super().dragLeaveEvent(e)

    def dropEvent(self, e: QDropEvent) -> None:  # noqa: N802
        self._set_dropping(False)
        images = [p for p in local_paths(e.mimeData()) if is_image_path(p)]
        if images:
            e.acceptProposedAction()
            self.imageDropped.emit(images[0])
            return
        super().dropEvent(e)

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        if e.key() == Qt.Key.Key_Escape and self.text():
            self.clear()
            self.textEdited.emit("")
            return
        if e.key() in (Qt.Key.Key_Down, Qt.Key.Key_PageDown):
            self.downPressed.emit()
            return
        super().keyPressEvent(e)


class ImageChip(QFrame):
    """Shows the image that is part of the query, with a button to drop it."""

    cleared = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Chip")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 2, 2, 2)
        lay.setSpacing(6)
        self.thumb = QLabel()
        self.thumb.setFixedSize(26, 26)
        self.name = QLabel()
        self.name.setMaximumWidth(200)
        self.close_button = tool("x", "Stop searching by this image", 14)
        self.close_button.clicked.connect(self.cleared)
        lay.addWidget(self.thumb)
        lay.addWidget(self.name)
        lay.addWidget(self.close_button)
        self.hide()

    def set_image(self, title: str, pixmap: QPixmap | None = None, tip: str = "") -> None:
        fm = QFontMetrics(self.name.font())
        self.name.setText(fm.elidedText(title, Qt.TextElideMode.ElideMiddle, 190))
        self.name.setToolTip(tip or title)
        if pixmap is not None and not pixmap.isNull():
            self.set_pixmap(pixmap)
        else:
            self.thumb.setPixmap(icons.pixmap("image", theme.current().muted, 22,
                                              self.devicePixelRatioF()))
        self.show()

    def set_pixmap(self, pixmap: QPixmap) -> None:
        ratio = self.devicePixelRatioF()
        pm = pixmap.scaled(int(26 * ratio), int(26 * ratio),
                           Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                           Qt.TransformationMode.SmoothTransformation)
        pm.setDevicePixelRatio(ratio)
        self.thumb.setPixmap(rounded_pixmap(pm, 6 * ratio))
