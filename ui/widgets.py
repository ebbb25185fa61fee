"""The window's building blocks. Each one displays what it is given and emits signals."""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence

from PySide6.QtCore import (
    QDate, QEvent, QMimeData, QModelIndex, QPoint, QRectF, QSize, Qt, QTimer, Signal,
)
from PySide6.QtGui import (
    QAction, QColor, QDragEnterEvent, QDropEvent, QFontMetrics, QKeyEvent, QPainter,
    QPainterPath, QPen, QPixmap,
)
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QDateEdit, QFrame, QHBoxLayout, QLabel, QLineEdit, QListView,
    QPlainTextEdit, QProgressBar, QPushButton, QSizePolicy, QToolButton, QToolTip, QVBoxLayout,
    QWidget,
)

from ui import icons, theme
from ui.delegates import CELL, ResultDelegate, RootDelegate
from ui.models import ErrorsModel, RootsModel, explain, score_line, when_text

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


def repolish(w: QWidget) -> None:
    w.style().unpolish(w)
    w.style().polish(w)
    w.update()


# ---------------------------------------------------------------------------------------------
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

    def set_image(self, title: str, pixmap: QPixmap | None = None) -> None:
        fm = QFontMetrics(self.name.font())
        self.name.setText(fm.elidedText(title, Qt.TextElideMode.ElideMiddle, 190))
        self.name.setToolTip(title)
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
        self.thumb.setPixmap(_rounded_pixmap(pm, 6 * ratio))


def _rounded_pixmap(pm: QPixmap, radius: float) -> QPixmap:
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


# ---------------------------------------------------------------------------------------------
KIND_CHOICES = (("All items", None), ("Pictures", "image"), ("Notes", "text"))
DATE_CHOICES = (
    ("Any date", None), ("Past week", 7), ("Past month", 31), ("Past year", 365),
    ("Custom range…", "custom"),
)
SORT_CHOICES = (("Best match", "relevance"), ("Newest first", "date"))


class FilterBar(QWidget):
    """Kind, folder, date range and sort; `changed` fires on any edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(8)
        self.kind = self._combo(KIND_CHOICES, "Show pictures, notes or both")
        self.folder = QComboBox()
        self.folder.setToolTip("Only results inside this folder")
        self.folder.setMinimumContentsLength(12)
        self.folder.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.set_folders([])
        self.date = self._combo(DATE_CHOICES, "When the picture was taken (EXIF), else when the "
                                "file was last changed")
        self.after = QDateEdit(calendarPopup=True)
        self.before = QDateEdit(calendarPopup=True)
        for w, tip in ((self.after, "From (inclusive)"), (self.before, "Until (inclusive)")):
            w.setDisplayFormat("d MMM yyyy")
            w.setToolTip(tip)
            w.hide()
            w.dateChanged.connect(self.changed)
        today = QDate.currentDate()
        self.after.setDate(today.addYears(-1))
        self.before.setDate(today)
        self.sort = self._combo(SORT_CHOICES, "Order results by how well they match, or by date")
        self._roots: list[str] = []
        self._last_folder_index = 0
        for c in (self.kind, self.sort):
            c.currentIndexChanged.connect(self.changed)
        self.folder.currentIndexChanged.connect(self._folder_changed)
        self.date.currentIndexChanged.connect(self._date_changed)
        for w in (self.kind, self.folder, self.date, self.after, self.before, self.sort):
            lay.addWidget(w)

    def _combo(self, choices, tip: str) -> QComboBox:
        c = QComboBox()
        for text, data in choices:
            c.addItem(text, data)
        c.setToolTip(tip)
        return c

    def _date_changed(self) -> None:
        custom = self.date.currentData() == "custom"
        self.after.setVisible(custom)
        self.before.setVisible(custom)
        self.changed.emit()

    OTHER = "\0other"  # the "Other folder…" entry

    def set_folders(self, paths: Sequence[str]) -> None:
        """The roots, plus any subfolder picked with "Other folder…" that lies inside one."""
        current = self.folder.currentData()
        paths = list(paths)
        self._roots = paths
        extra = [current] if current and current != self.OTHER and current not in paths and any(
            current.startswith(r.rstrip(os.sep) + os.sep) for r in paths) else []
        if [self.folder.itemData(i) for i in range(self.folder.count())] == \
                [None, *paths, *extra, self.OTHER]:
            return
        self.folder.blockSignals(True)
        self.folder.clear()
        folder_icon = icons.icon("folder", theme.current().muted)
        self.folder.addItem(folder_icon, "All folders", None)
        for p in paths + extra:
            self.folder.addItem(folder_icon, os.path.basename(p.rstrip(os.sep)) or p, p)
            self.folder.setItemData(self.folder.count() - 1, p, Qt.ItemDataRole.ToolTipRole)
        self.folder.addItem("Other folder…", self.OTHER)
        self.folder.setItemData(self.folder.count() - 1, "Only results inside a subfolder you "
                                "choose", Qt.ItemDataRole.ToolTipRole)
        idx = self.folder.findData(current) if current else 0
        self.folder.setCurrentIndex(max(0, idx))
        self._last_folder_index = self.folder.currentIndex()
        self.folder.blockSignals(False)
        if current and idx < 0:
            self.changed.emit()

    def _folder_changed(self, index: int) -> None:
        if self.folder.itemData(index) != self.OTHER:
            self._last_folder_index = index
            self.changed.emit()
            return
        start = self._roots[0] if self._roots else os.path.expanduser("~")
        path = self.pick_folder(start)
        self.folder.blockSignals(True)
        if path:
            path = os.path.abspath(path)
            at = self.folder.findData(path)
            if at < 0:
                at = self.folder.count() - 1
                self.folder.insertItem(at, icons.icon("folder", theme.current().muted),
                                       os.path.basename(path.rstrip(os.sep)) or path, path)
                self.folder.setItemData(at, path, Qt.ItemDataRole.ToolTipRole)
            self.folder.setCurrentIndex(at)
            self._last_folder_index = at
        else:
            self.folder.setCurrentIndex(self._last_folder_index)
        self.folder.blockSignals(False)
        if path:
            self.changed.emit()

    def pick_folder(self, start: str) -> str | None:
        from PySide6.QtWidgets import QFileDialog

        return QFileDialog.getExistingDirectory(self, "Only results inside this folder", start) \
            or None

    def values(self) -> dict:
        after = before = None
        span = self.date.currentData()
        if span == "custom":
            a, b = self.after.date(), self.before.date().addDays(1)
            after = dt.datetime(a.year(), a.month(), a.day()).timestamp()
            before = dt.datetime(b.year(), b.month(), b.day()).timestamp()
        elif span:
            after = (dt.datetime.now() - dt.timedelta(days=int(span))).timestamp()
        folder = self.folder.currentData()
        return {
            "kind": self.kind.currentData(),
            "folder": folder if folder != self.OTHER else None,
            "after": after,
            "before": before,
            "sort": self.sort.currentData(),
        }

    def is_default(self) -> bool:
        v = self.values()
        return not (v["kind"] or v["folder"] or v["after"] or v["before"]) and v["sort"] == "relevance"

    def reset(self) -> None:
        for c in (self.kind, self.folder, self.date, self.sort):
            c.blockSignals(True)
            c.setCurrentIndex(0)
            c.blockSignals(False)
        self.after.hide()
        self.before.hide()
        self.changed.emit()


# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
class Banner(QFrame):
    """A message across the top of the window (missing weights, library problems) with
    actions, an optional progress bar and expandable details. Never a modal pop-up."""

    action = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Banner")
        outer = QHBoxLayout(self)
        outer.setContentsMargins(16, 14, 16, 14)
        outer.setSpacing(14)
        self.art = QLabel()
        self.art.setAlignment(Qt.AlignmentFlag.AlignTop)
        outer.addWidget(self.art)
        col = QVBoxLayout()
        col.setSpacing(6)
        self.title = label("", "heading", wrap=True)
        self.body = label("", None, wrap=True)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.body.setOpenExternalLinks(True)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(110)
        self.details.hide()
        self.progress = QProgressBar()
        self.progress.hide()
        self.status = label("", "muted", wrap=True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.hide()
        self.buttons = QHBoxLayout()
        self.buttons.setSpacing(8)
        col.addWidget(self.title)
        col.addWidget(self.body)
        col.addWidget(self.details)
        col.addWidget(self.progress)
        col.addWidget(self.status)
        col.addSpacing(2)
        col.addLayout(self.buttons)
        outer.addLayout(col, 1)
        self._buttons: dict[str, QPushButton] = {}
        self.details_button: QPushButton | None = None
        self.hide()

    def show_message(self, title: str, body: str = "", *, details: str = "",
                     actions: Sequence[tuple[str, str, str | None]] = (), tone: str = "warn",
                     icon_name: str = "alert") -> None:
        t = theme.current()
        self.setProperty("tone", tone)
        repolish(self)
        color = {"warn": "#b7791f", "info": t.accent, "error": t.danger}.get(tone, t.text)
        self.art.setPixmap(icons.pixmap(icon_name, color, 24, self.devicePixelRatioF()))
        self.title.setText(title)
        self.body.setText(body)
        self.body.setVisible(bool(body))
        self.details.setPlainText(details)
        self.details.hide()
        self.progress.hide()
        self.status.hide()
        while self.buttons.count():
            item = self.buttons.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self._buttons = {}
        for key, text, kind in actions:
            b = button(text, kind, _ACTION_ICONS.get(key))
            b.setObjectName(f"banner-{key}")
            b.clicked.connect(lambda _=False, k=key: self.action.emit(k))
            self.buttons.addWidget(b)
            self._buttons[key] = b
        self.details_button = None
        if details:
            db = button("Details", "flat")
            db.setCheckable(True)
            db.toggled.connect(self.details.setVisible)
            self.buttons.addWidget(db)
            self.details_button = db
        self.buttons.addStretch()
        self.show()

    def button_for(self, key: str) -> QPushButton | None:
        return self._buttons.get(key)

    def set_busy(self, text: str, done: int | None = None, total: int | None = None) -> None:
        self.status.setText(text)
        self.status.setProperty("role", "muted")
        repolish(self.status)
        self.status.show()
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * (done or 0) / total))
        else:
            self.progress.setRange(0, 0)  # indeterminate
        self.progress.show()
        for b in self._buttons.values():
            b.setEnabled(False)

    def set_status(self, text: str, error: bool = False) -> None:
        self.progress.hide()
        self.status.setText(text)
        self.status.setProperty("role", "error" if error else "muted")
        repolish(self.status)
        self.status.setVisible(bool(text))
        for b in self._buttons.values():
            b.setEnabled(True)


_ACTION_ICONS = {
    "download": "download", "choose": "folder-open", "demo": "sparkle", "retry": "refresh",
    "open-library": "folder-open", "default-library": "folder", "cancel-download": "x",
}


# ---------------------------------------------------------------------------------------------
class RootsPanel(QFrame):
    """The indexed folders with counts; add, rescan, remove."""

    addClicked = Signal()
    rescanClicked = Signal(str)  # "" = every folder
    removeClicked = Signal(str)

    def __init__(self, model: RootsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Sidebar")
        self.model = model
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 14, 8, 10)
        lay.setSpacing(6)
        head = QHBoxLayout()
        head.setContentsMargins(8, 0, 2, 0)
        head.addWidget(label("FOLDERS", "section"))
        head.addStretch()
        self.add_button = tool("folder-plus", "Add a folder to index…")
        self.add_button.clicked.connect(self.addClicked)
        self.rescan_all = tool("refresh", "Rescan every folder for changes")
        self.rescan_all.clicked.connect(lambda: self.rescanClicked.emit(""))
        head.addWidget(self.rescan_all)
        head.addWidget(self.add_button)
        lay.addLayout(head)
        self.view = QListView()
        self.view.setObjectName("RootsList")
        self.view.setModel(model)
        self.view.setItemDelegate(RootDelegate(self.view))
        self.view.setMouseTracking(True)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.view.setAccessibleName("Indexed folders")
        self.rescan_action = QAction(icons.icon("refresh", theme.current().text), "Rescan", self)
        self.rescan_action.triggered.connect(self._rescan_selected)
        self.remove_action = QAction(icons.icon("trash", theme.current().danger),
                                     "Remove from Magpie…", self)
        self.remove_action.setToolTip("Forget this folder; your files are not touched")
        self.remove_action.triggered.connect(self._remove_selected)
        self.view.addAction(self.rescan_action)
        self.view.addAction(self.remove_action)
        lay.addWidget(self.view, 1)
        self.empty = label("No folders yet. Drop one on the window, or click the folder "
                           "button above.", "faint", wrap=True)
        self.empty.setContentsMargins(8, 4, 8, 0)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        lay.addWidget(self.empty, 1)
        self.button_row = QWidget()
        row = QHBoxLayout(self.button_row)
        row.setContentsMargins(4, 0, 4, 0)
        self.rescan_button = button("Rescan", None, "refresh", "Pick up new, changed and deleted "
                                    "files in the selected folder")
        self.remove_button = button("Remove", "danger", None, "Forget the selected folder; your "
                                    "files are not touched")
        self.rescan_button.clicked.connect(self._rescan_selected)
        self.remove_button.clicked.connect(self._remove_selected)
        row.addWidget(self.rescan_button)
        row.addWidget(self.remove_button)
        lay.addWidget(self.button_row)
        self.total = label("", "faint")
        self.total.setContentsMargins(8, 2, 8, 0)
        lay.addWidget(self.total)
        model.modelReset.connect(self._sync)
        model.dataChanged.connect(self._sync)
        self.view.selectionModel().selectionChanged.connect(self._sync)
        self._sync()

    def selected_path(self) -> str | None:
        idx = self.view.currentIndex()
        sel = self.view.selectionModel().selectedIndexes()
        if not sel and self.model.rowCount() == 1:
            return self.model.path(0)
        return self.model.path(idx.row()) if idx.isValid() and sel else None

    def _rescan_selected(self) -> None:
        path = self.selected_path()
        self.rescanClicked.emit(path or "")

    def _remove_selected(self) -> None:
        path = self.selected_path()
        if path:
            self.removeClicked.emit(path)

    def _sync(self, *args) -> None:
        n = self.model.rowCount()
        self.empty.setVisible(n == 0)
        self.view.setVisible(n > 0)
        self.button_row.setVisible(n > 0)
        has = self.selected_path() is not None
        self.remove_button.setEnabled(has)
        self.remove_action.setEnabled(has)
        self.rescan_button.setEnabled(n > 0)
        self.rescan_all.setEnabled(n > 0)
        self.total.setText(f"{self.model.total():,} items in {n} folder{'s' * (n != 1)}" if n else "")


# ---------------------------------------------------------------------------------------------
class ProgressPanel(QFrame):
    """Indexing progress: bar, counts, speed, ETA, current file, pause/resume/cancel."""

    pauseClicked = Signal()
    resumeClicked = Signal()
    cancelClicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ProgressPanel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 10, 16, 10)
        lay.setSpacing(6)
        top = QHBoxLayout()
        top.setSpacing(10)
        self.title = label("Indexing", "heading")
        self.detail = label("", "muted")
        self.detail.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        top.addWidget(self.title)
        top.addWidget(self.detail, 1)
        self.pause_button = button("Pause", None, "pause")
        self.pause_button.setObjectName("pause")
        self.cancel_button = button("Cancel", None, "x")
        self.cancel_button.setObjectName("cancel")
        self.pause_button.clicked.connect(self._toggle)
        self.cancel_button.clicked.connect(self.cancelClicked)
        top.addWidget(self.pause_button)
        top.addWidget(self.cancel_button)
        lay.addLayout(top)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        lay.addWidget(self.bar)
        self.current = label("", "faint")
        self.current.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        lay.addWidget(self.current)
        self.paused = False
        self._current_path = ""
        self.hide()

    def _toggle(self) -> None:
        if self.paused:
            self.resumeClicked.emit()
        else:
            self.pauseClicked.emit()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        t = theme.current()
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.setIcon(icons.icon("play" if paused else "pause", t.text))
        self.bar.setProperty("paused", "true" if paused else "false")
        repolish(self.bar)
        if paused:
            self.title.setText("Paused")

    def start(self, title: str) -> None:
        self.set_paused(False)
        self.title.setText(title)
        self.detail.setText("Starting…")
        self.current.setText("")
        self.bar.setRange(0, 0)
        self.pause_button.setEnabled(True)
        self.cancel_button.setEnabled(True)
        self.show()

    def update_progress(self, title: str, done: int, total: int, rate: float,
                        eta: float | None, current: str, errors: int, queued: int = 0) -> None:
        if not self.paused:
            self.title.setText(title)
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
            parts = [f"{done:,} of {total:,} files"]
        else:
            self.bar.setRange(0, 0)
            parts = [f"{done:,} files found"] if done else []
        if rate > 0:
            parts.append(f"{rate:,.1f} files/s" if rate < 10 else f"{rate:,.0f} files/s")
        if eta is not None and total > 0 and done < total:
            parts.append(f"about {format_duration(eta)} left")
        if errors:
            parts.append(f"{errors:,} could not be read")
        if queued:
            parts.append(f"{queued} more queued")
        self.detail.setText("  ·  ".join(parts))
        self._current_path = current
        self._elide_current()

    def _elide_current(self) -> None:
        fm = QFontMetrics(self.current.font())
        self.current.setText(fm.elidedText(self._current_path, Qt.TextElideMode.ElideMiddle,
                                           max(50, self.current.width() - 4)))
        self.current.setToolTip(self._current_path)

    def resizeEvent(self, e) -> None:  # noqa: N802
        super().resizeEvent(e)
        self._elide_current()

    def stopping(self) -> None:
        self.title.setText("Stopping…")
        self.pause_button.setEnabled(False)
        self.cancel_button.setEnabled(False)


def format_duration(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s" if s < 600 else f"{round(s / 60)} min"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class ErrorPanel(QFrame):
    """Files that could not be indexed, as a list under a one-line summary (no pop-ups)."""

    def __init__(self, model: ErrorsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ErrorPanel")
        self.model = model
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 6, 16, 8)
        lay.setSpacing(6)
        row = QHBoxLayout()
        self.art = QLabel()
        self.art.setPixmap(icons.pixmap("alert", "#b7791f", 16, self.devicePixelRatioF()))
        self.summary = label("", "muted")
        self.toggle = button("Show", "flat")
        self.toggle.setCheckable(True)
        self.toggle.toggled.connect(self._toggled)
        self.clear_button = button("Dismiss", "flat")
        self.clear_button.clicked.connect(self._dismiss)
        row.addWidget(self.art)
        row.addWidget(self.summary, 1)
        row.addWidget(self.toggle)
        row.addWidget(self.clear_button)
        lay.addLayout(row)
        self.view = QListView()
        self.view.setObjectName("ErrorsList")
        self.view.setModel(model)
        self.view.setUniformItemSizes(True)
        self.view.setMaximumHeight(150)
        self.view.setAlternatingRowColors(True)
        self.view.hide()
        lay.addWidget(self.view)
        model.rowsInserted.connect(self._sync)
        model.modelReset.connect(self._sync)
        self._sync()

    def _toggled(self, on: bool) -> None:
        self.view.setVisible(on)
        self.toggle.setText("Hide" if on else "Show")

    def _dismiss(self) -> None:
        self.model.clear()

    def _sync(self, *args) -> None:
        n = self.model.rowCount()
        self.setVisible(n > 0)
        self.summary.setText(f"{n:,} file{'s' * (n != 1)} could not be indexed" +
                             (" (showing the first 10,000)" if n >= ErrorsModel.LIMIT else ""))


# ---------------------------------------------------------------------------------------------
class ScaledImage(QWidget):
    """A pixmap drawn to fit (aspect kept, rounded corners); never upscaled past 2x."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pm: QPixmap | None = None
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


class PreviewPane(QFrame):
    """The selected result, larger: the picture or the note's text, and what to do with it."""

    openClicked = Signal()
    revealClicked = Signal()
    similarClicked = Signal()
    markClicked = Signal(int)  # +1 / -1 / 0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Preview")
        self.setMinimumWidth(240)
        lay = QVBoxLayout(self)
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
        actions = QHBoxLayout()
        actions.setSpacing(6)
        self.open_button = button("Open", "primary", "open", "Open with the default app (Enter)")
        self.reveal_button = button("Show in folder", None, "folder-open")
        actions.addWidget(self.open_button)
        actions.addWidget(self.reveal_button)
        actions.addStretch()
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
        self.clear()

    def clear(self) -> None:
        self.current = None
        for w in self._details:
            w.hide()
        self.text.hide()
        self.placeholder.show()

    def show_result(self, r, pixmap: QPixmap | None = None, mark: int = 0) -> None:
        self.current = r
        self.placeholder.hide()
        for w in self._details:
            w.show()
        is_note = r.kind == "text"
        self.image.setVisible(not is_note)
        self.text.setVisible(is_note)
        self._layout.setStretch(self._layout.count() - 1, 0 if is_note else 1)
        if is_note:
            self.text.setPlainText(r.snippet or "")
        else:
            self.image.set_pixmap(pixmap)
        self.title.setText(os.path.basename(r.path) or r.path)
        lines = [os.path.dirname(r.path)]
        when = when_text(r.taken_at)
        if when:
            lines.append(when)
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


def flash(widget: QWidget, ms: int = 1200) -> None:
    """Briefly highlight a widget (e.g. the search field after a drop)."""
    widget.setProperty("dropping", "true")
    repolish(widget)

    def off() -> None:
        widget.setProperty("dropping", "false")
        repolish(widget)

    QTimer.singleShot(ms, off)
