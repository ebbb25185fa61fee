"""The indexing progress panel and the panel of files that could not be indexed."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ui import icons, theme
from ui.delegates import ErrorDelegate
from ui.models import ErrorsModel
from ui.widgets.common import button, fitted_list, label, repolish
from ui.widgets.elided import ElidedLabel


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
        self.title = ElidedLabel("Indexing", "heading", min_chars=12)
        self.detail = ElidedLabel("", "muted", min_chars=12)
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
        self._last: tuple | None = None  # the last progress shown, redrawn on pause/resume
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
        if self._last is not None:  # a paused job has no speed and no time left: redraw
            self.update_progress(*self._last)

    def start(self, title: str) -> None:
        self.set_paused(False)
        self.title.setText(title)
        self.detail.setText("Starting…")
        self._last = None
        self.current.setText("")
        self.bar.setRange(0, 0)
        self.pause_button.setEnabled(True)
        self.cancel_button.setEnabled(True)
        self.show()

    def update_progress(self, title: str, done: int, total: int, rate: float,
                        eta: float | None, current: str, errors: int, queued: int = 0) -> None:
        self._last = (title, done, total, rate, eta, current, errors, queued)
        if self.paused:
            rate, eta = 0.0, None  # the last speed and time left mean nothing while paused
        else:
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
                                           max(0, self.current.contentsRect().width())))
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
        self.summary = ElidedLabel("", "muted", min_chars=16)
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
        self.view = fitted_list("ErrorsList", model, ErrorDelegate)
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
