"""Colours, palette and the style sheet: one place for how Magpie looks.

Fusion with a tuned palette gives the same modern look on every platform; the app follows the
system's light/dark preference when the platform reports one.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


@dataclass(frozen=True)
class Theme:
    dark: bool
    window: str
    surface: str  # cards, panels
    sunken: str  # thumbnail wells, inputs
    border: str
    text: str
    muted: str
    faint: str
    accent: str
    accent_hover: str
    accent_soft: str  # selected backgrounds
    accent_text: str  # text on accent
    warn_bg: str
    warn_border: str
    danger: str
    success: str
    hover: str
    highlight: str = "#fde68a"  # query words marked in note text (a highlighter stroke)


LIGHT = Theme(
    dark=False,
    window="#f4f5f7",
    surface="#ffffff",
    sunken="#eceef1",
    border="#dfe2e7",
    text="#1d2127",
    muted="#5f6773",
    faint="#9aa1ab",
    accent="#2f6bed",
    accent_hover="#2457c9",
    accent_soft="#e6eefd",
    accent_text="#ffffff",
    warn_bg="#fff6e6",
    warn_border="#f1c27d",
    danger="#c9352b",
    success="#1f8a4c",
    hover="#eef1f5",
)

DARK = Theme(
    dark=True,
    window="#1b1c1f",
    surface="#25272b",
    sunken="#1f2024",
    border="#363940",
    text="#e8e9eb",
    muted="#a2a7af",
    faint="#6f757e",
    accent="#5b8cf5",
    accent_hover="#7aa2f7",
    accent_soft="#263656",
    accent_text="#ffffff",
    warn_bg="#3a2f1c",
    warn_border="#8a6a32",
    danger="#f0766b",
    success="#5cc48a",
    hover="#2d3035",
    highlight="#6b5a1e",
)

_current: Theme = LIGHT


def current() -> Theme:
    return _current


def system_prefers_dark() -> bool:
    app = QGuiApplication.instance()
    if app is None:
        return False
    try:
        return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark
    except AttributeError:  # Qt < 6.5
        return False


def palette(t: Theme) -> QPalette:
    p = QPalette()
    c = QColor
    p.setColor(QPalette.ColorRole.Window, c(t.window))
    p.setColor(QPalette.ColorRole.WindowText, c(t.text))
    p.setColor(QPalette.ColorRole.Base, c(t.surface))
    p.setColor(QPalette.ColorRole.AlternateBase, c(t.hover))
    p.setColor(QPalette.ColorRole.Text, c(t.text))
    p.setColor(QPalette.ColorRole.PlaceholderText, c(t.faint))
    p.setColor(QPalette.ColorRole.Button, c(t.surface))
    p.setColor(QPalette.ColorRole.ButtonText, c(t.text))
    p.setColor(QPalette.ColorRole.Highlight, c(t.accent))
    p.setColor(QPalette.ColorRole.HighlightedText, c(t.accent_text))
    p.setColor(QPalette.ColorRole.ToolTipBase, c(t.surface))
    p.setColor(QPalette.ColorRole.ToolTipText, c(t.text))
    p.setColor(QPalette.ColorRole.Link, c(t.accent))
    p.setColor(QPalette.ColorRole.Mid, c(t.border))
    p.setColor(QPalette.ColorRole.Midlight, c(t.hover))
    p.setColor(QPalette.ColorRole.Light, c(t.surface))
    p.setColor(QPalette.ColorRole.Dark, c(t.border))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, c(t.faint))
    return p


def stylesheet(t: Theme) -> str:
    return f"""
QMainWindow, QDialog {{ background: {t.window}; }}
QToolTip {{ background: {t.surface}; color: {t.text}; border: 1px solid {t.border};
    padding: 6px 8px; border-radius: 6px; }}
QLabel[role="title"] {{ font-size: 20px; font-weight: 600; color: {t.text}; }}
QLabel[role="heading"] {{ font-weight: 600; color: {t.text}; }}
QLabel[role="section"] {{ font-size: 11px; font-weight: 700; color: {t.muted};
    letter-spacing: 0.6px; }}
QLabel[role="muted"] {{ color: {t.muted}; }}
QLabel[role="faint"] {{ color: {t.faint}; }}
QLabel[role="error"] {{ color: {t.danger}; }}
QLabel[role="warn"] {{ color: {t.text}; background: {t.warn_bg}; border: 1px solid {t.warn_border};
    border-radius: 6px; padding: 2px 8px; }}

#Header {{ background: {t.surface}; border-bottom: 1px solid {t.border}; }}
#Sidebar {{ background: {t.window}; border-right: 1px solid {t.border}; }}
#Preview {{ background: {t.surface}; border-left: 1px solid {t.border}; }}
#ResultsArea {{ background: {t.window}; }}
#Bottom {{ background: {t.surface}; border-top: 1px solid {t.border}; }}

#SearchField {{ background: {t.sunken}; border: 1px solid transparent; border-radius: 10px;
    padding: 0 6px; min-height: 38px; font-size: 15px; color: {t.text};
    selection-background-color: {t.accent}; }}
#SearchField:focus {{ background: {t.surface}; border: 1px solid {t.accent}; }}
#SearchField[dropping="true"] {{ border: 2px dashed {t.accent}; background: {t.accent_soft}; }}

#Chip {{ background: {t.accent_soft}; color: {t.text}; border-radius: 12px;
    padding: 2px 4px 2px 8px; }}

QPushButton {{ background: {t.surface}; color: {t.text}; border: 1px solid {t.border};
    border-radius: 8px; padding: 6px 14px; min-height: 20px; }}
QPushButton:hover {{ background: {t.hover}; }}
QPushButton:pressed {{ background: {t.sunken}; }}
QPushButton:disabled {{ color: {t.faint}; }}
QPushButton[kind="primary"] {{ background: {t.accent}; color: {t.accent_text};
    border: 1px solid {t.accent}; font-weight: 600; }}
QPushButton[kind="primary"]:hover {{ background: {t.accent_hover}; }}
QPushButton[kind="flat"] {{ background: transparent; border: none; color: {t.accent};
    padding: 4px 8px; }}
QPushButton[kind="flat"]:hover {{ background: {t.accent_soft}; }}
QPushButton[kind="danger"] {{ color: {t.danger}; }}

QToolButton {{ background: transparent; border: none; border-radius: 6px; padding: 4px;
    color: {t.text}; }}
QToolButton:hover {{ background: {t.hover}; }}
QToolButton:pressed {{ background: {t.sunken}; }}
QToolButton:checked {{ background: {t.accent_soft}; }}
QToolButton::menu-indicator {{ image: none; width: 0; }}

QComboBox {{ background: {t.surface}; border: 1px solid {t.border}; border-radius: 8px;
    padding: 4px 10px; min-height: 22px; color: {t.text}; }}
QComboBox:hover {{ border-color: {t.faint}; }}
QComboBox::drop-down {{ border: none; width: 20px; }}
QComboBox QAbstractItemView {{ background: {t.surface}; border: 1px solid {t.border};
    selection-background-color: {t.accent_soft}; selection-color: {t.text}; outline: none;
    padding: 4px; }}
QDateEdit {{ background: {t.surface}; border: 1px solid {t.border}; border-radius: 8px;
    padding: 4px 8px; min-height: 22px; }}

QListView {{ background: transparent; border: none; outline: none; }}
#RootsList::item {{ border-radius: 8px; }}
#ErrorsList {{ background: {t.surface}; }}

QProgressBar {{ background: {t.sunken}; border: none; border-radius: 4px; max-height: 8px;
    min-height: 8px; text-align: center; color: transparent; }}
QProgressBar::chunk {{ background: {t.accent}; border-radius: 4px; }}
QProgressBar[paused="true"]::chunk {{ background: {t.faint}; }}

#Banner {{ background: {t.warn_bg}; border: 1px solid {t.warn_border}; border-radius: 12px; }}
#Banner[tone="info"] {{ background: {t.accent_soft}; border: 1px solid {t.accent}; }}
#Banner[tone="error"] {{ border: 1px solid {t.danger}; }}

QTextBrowser, QPlainTextEdit {{ background: {t.surface}; border: 1px solid {t.border};
    border-radius: 8px; padding: 8px; color: {t.text}; }}

QSplitter::handle {{ background: transparent; }}
QStatusBar {{ background: {t.surface}; border-top: 1px solid {t.border}; color: {t.muted}; }}
QStatusBar QLabel {{ color: {t.muted}; padding: 0 6px; }}
QStatusBar::item {{ border: none; }}

QMenu {{ background: {t.surface}; border: 1px solid {t.border}; border-radius: 8px;
    padding: 5px; }}
QMenu::item {{ padding: 6px 22px 6px 10px; border-radius: 6px; color: {t.text}; }}
QMenu::item:selected {{ background: {t.accent_soft}; }}
QMenu::item:disabled {{ color: {t.faint}; }}
QMenu::separator {{ height: 1px; background: {t.border}; margin: 4px 6px; }}
QMenu::icon {{ padding-left: 6px; }}
QMenuBar {{ background: {t.surface}; color: {t.text}; }}
QMenuBar::item:selected {{ background: {t.hover}; border-radius: 4px; }}

QScrollBar:vertical {{ background: transparent; width: 10px; margin: 2px; }}
QScrollBar::handle:vertical {{ background: {t.border}; border-radius: 3px; min-height: 30px; }}
QScrollBar::handle:vertical:hover {{ background: {t.faint}; }}
QScrollBar::add-line, QScrollBar::sub-line {{ height: 0; width: 0; }}
QScrollBar::add-page, QScrollBar::sub-page {{ background: transparent; }}
QScrollBar:horizontal {{ background: transparent; height: 10px; margin: 2px; }}
QScrollBar::handle:horizontal {{ background: {t.border}; border-radius: 3px; min-width: 30px; }}
"""


def apply(app: QApplication, dark: bool | None = None) -> Theme:
    """Style the whole application; returns the theme in use."""
    global _current
    if dark is None:
        dark = system_prefers_dark()
    _current = DARK if dark else LIGHT
    app.setStyle("Fusion")
    app.setPalette(palette(_current))
    font = QFont(app.font())
    if font.pointSizeF() < 10:
        font.setPointSizeF(10)
    app.setFont(font)
    app.setStyleSheet(stylesheet(_current))
    return _current
