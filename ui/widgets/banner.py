"""The banner across the top of the window (missing weights, library problems)."""
from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui import icons, theme
from ui.widgets.common import button, label, repolish


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
