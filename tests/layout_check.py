"""Finds text a person can't read whole: a label, button or combo box narrower than its text,
unless the text is elided (…) and the full text is in its tooltip."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtWidgets import (
    QAbstractButton, QCheckBox, QComboBox, QLabel, QPushButton, QRadioButton, QStyle,
    QStyleOptionComboBox, QWidget,
)

ELLIPSIS = "…"


def cut_text(root: QWidget) -> list[str]:
    """Every visible control whose text does not fit, as 'Class "text" (needs N, has M)'."""
    problems = []
    for w in [root, *root.findChildren(QWidget)]:
        if not w.isVisible() or w.width() <= 0:
            continue
        if isinstance(w, QLabel):
            problems += _label(w)
        elif isinstance(w, (QPushButton, QCheckBox, QRadioButton)):
            problems += _button(w)
        elif isinstance(w, QComboBox):
            problems += _combo(w)
    return problems


def _label(w: QLabel) -> list[str]:
    text = w.text()
    if not text or w.pixmap() is not None and not w.pixmap().isNull():
        return []
    if w.textFormat() == Qt.TextFormat.RichText or (
            w.textFormat() == Qt.TextFormat.AutoText and GuiQt.mightBeRichText(text)):
        return []
    if w.buddy() is not None:  # "&Device:" shows as "Device:" with D underlined
        text = text.replace("&&", "\0").replace("&", "").replace("\0", "&")
    full = getattr(w, "full_text", lambda: text)()
    shown = getattr(w, "shown_text", lambda: text)()
    if w.wordWrap():
        need = w.heightForWidth(w.width())
        if need > w.height() + 1:
            return [f'QLabel "{text[:40]}" wraps to {need}px, has {w.height()}']
        return []
    fm = QFontMetrics(w.font())
    avail = w.contentsRect().width() - 2 * max(0, w.margin()) - max(0, w.indent())
    need = fm.horizontalAdvance(shown)
    if need <= avail:
        if shown != full and not (w.toolTip() and full in w.toolTip()):
            return [f'QLabel "{shown[:40]}" elided without the full text in its tooltip']
        return []
    return [f'QLabel "{shown[:40]}" (needs {need}, has {avail})']


def _button(w: QAbstractButton) -> list[str]:
    if not w.text():
        return []
    need = w.sizeHint().width()
    if need <= w.width():
        return []
    return [f'{type(w).__name__} "{w.text()}" (needs {need}, has {w.width()})']


def _combo(w: QComboBox) -> list[str]:
    text = w.currentText()
    if not text:
        return []
    if w.width() < w.minimumSizeHint().width():  # squeezed below what its items need
        return [f'QComboBox "{text}" (minimum {w.minimumSizeHint().width()}, has {w.width()})']
    opt = QStyleOptionComboBox()
    w.initStyleOption(opt)
    field = w.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, opt,
                                     QStyle.SubControl.SC_ComboBoxEditField, w)
    icon = w.iconSize().width() + 4 if not w.itemIcon(w.currentIndex()).isNull() else 0
    need = QFontMetrics(w.font()).horizontalAdvance(text) + icon
    if need <= field.width():
        return []
    if w.toolTip() and text in w.toolTip():
        return []  # elided by the style, full text in the tooltip
    return [f'QComboBox "{text}" (needs {need}, has {field.width()})']
