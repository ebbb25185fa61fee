"""Painting result cards (pictures and notes) and root folders."""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence

from PySide6.QtCore import QEvent, QModelIndex, QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPainterPath, QPen, QPixmap,
    QTextLayout, QTextOption,
)
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from indexer.query_feedback import collapse_spaces
from ui import icons, theme
from ui.models import Roles

CELL = QSize(204, 234)  # grid cell, including the gap between cards
DIVIDER_H = 44  # the "Other results" line between the results that stand out and the rest
GAP = 6
WELL_PAD = 8
RADIUS = 12
BUTTON = 28  # hover buttons (more / less like this)


def _rounded(rect: QRectF, r: float) -> QPainterPath:
    path = QPainterPath()
    path.addRoundedRect(rect, r, r)
    return path


def _elide(fm: QFontMetrics, text: str, width: int, mode=Qt.TextElideMode.ElideMiddle) -> str:
    return fm.elidedText(text, mode, max(0, width))


class ResultDelegate(QStyledItemDelegate):
    """A card per result: thumbnail (or note excerpt), name, folder, score badge.

    Hovering a card shows two small buttons, "more like this" and "less like this";
    clicking one emits markClicked(index, +1 or -1).
    """

    markClicked = Signal(QModelIndex, int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._hover_button: tuple[int, int] | None = None  # (row, +1/-1)
        self.marks_enabled = True
        self._wells: OrderedDict[tuple, QPixmap] = OrderedDict()

    # -- geometry ---------------------------------------------------------------------------
    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802
        """A card fills one cell of the view; the divider a whole line of cells."""
        view = self.parent()
        cell = view.cell_size() if hasattr(view, "cell_size") else QSize(CELL)
        if index.data(Roles.Divider):
            width = view.row_width() if hasattr(view, "row_width") else cell.width()
            return QSize(width, DIVIDER_H)
        return cell

    @staticmethod
    def card_rect(cell: QRect) -> QRect:
        return cell.adjusted(GAP, GAP, -GAP, -GAP)

    @staticmethod
    def well_rect(cell: QRect) -> QRect:
        card = ResultDelegate.card_rect(cell)
        side = card.width() - 2 * WELL_PAD
        return QRect(card.left() + WELL_PAD, card.top() + WELL_PAD, side, side - 12)

    def button_rects(self, cell: QRect) -> dict[int, QRect]:
        well = self.well_rect(cell)
        y = well.top() + 6
        return {
            1: QRect(well.left() + 6, y, BUTTON, BUTTON),
            -1: QRect(well.left() + 6 + BUTTON + 4, y, BUTTON, BUTTON),
        }

    # -- painting ---------------------------------------------------------------------------
    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        t = theme.current()
        if index.data(Roles.Divider):
            self._paint_divider(p, option.rect, index, t)
            return
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        focused = bool(option.state & QStyle.StateFlag.State_HasFocus)
        mark = index.data(Roles.Mark) or 0
        kind = index.data(Roles.Kind)

        card = QRectF(self.card_rect(option.rect))
        bg = QColor(t.accent_soft if selected else (t.hover if hovered else t.surface))
        p.setPen(QPen(QColor(t.accent if (selected or mark > 0) else t.border),
                      2.0 if (selected or mark > 0) else 1.0))
        p.setBrush(bg)
        p.drawPath(_rounded(card.adjusted(0.5, 0.5, -0.5, -0.5), RADIUS))
        if focused and not selected:
            p.setPen(QPen(QColor(t.accent), 1.0, Qt.PenStyle.DotLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(_rounded(card.adjusted(2, 2, -2, -2), RADIUS - 2))

        if mark < 0:
            p.setOpacity(0.45)
        well = QRectF(self.well_rect(option.rect))
        if kind == "text":
            self._paint_note(p, well, index, t)
        else:
            self._paint_picture(p, well, index, t)
        p.setOpacity(1.0)

        self._paint_score(p, well, index, t)
        self._paint_caption(p, card, well, index, t, selected)
        if mark:
            self._paint_mark_badge(p, well, mark, t)
        elif hovered and self.marks_enabled:
            self._paint_buttons(p, option.rect, index, t)
        p.restore()

    def _paint_divider(self, p: QPainter, rect: QRect, index: QModelIndex, t) -> None:
        """The line between the results that stand out and the rest: its title, then a rule
        to the right edge."""
        p.save()
        font = QFont(p.font())
        font.setWeight(QFont.Weight.DemiBold)
        fm = QFontMetrics(font)
        area = rect.adjusted(GAP + 4, 0, -GAP, 0)
        title = _elide(fm, index.data(Qt.ItemDataRole.DisplayRole) or "", area.width(),
                       Qt.TextElideMode.ElideRight)
        text_rect = QRect(area.left(), area.top() + (area.height() - fm.height()) // 2 + 4,
                          fm.horizontalAdvance(title), fm.height())
        p.setFont(font)
        p.setPen(QColor(t.muted))
        p.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)
        left = text_rect.right() + 12
        if left < area.right():
            y = text_rect.center().y() + 1
            p.setPen(QPen(QColor(t.border), 1))
            p.drawLine(left, y, area.right(), y)
        p.restore()

    def _paint_picture(self, p: QPainter, well: QRectF, index: QModelIndex, t) -> None:
        pm = index.data(Qt.ItemDataRole.DecorationRole)
        ratio = p.device().devicePixelRatioF() if p.device() else 1.0
        if isinstance(pm, QPixmap) and not pm.isNull():
            p.drawPixmap(well.topLeft(), self._well_pixmap(pm, well.size().toSize(), ratio, t))
        else:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(t.sunken))
            p.drawPath(_rounded(well, RADIUS - 4))
            ic = icons.pixmap("image", t.faint, 36, ratio)
            p.drawPixmap(int(well.center().x() - 18), int(well.center().y() - 18), ic)
        self._paint_read_line(p, well, index, t)

    def _paint_read_line(self, p: QPainter, well: QRectF, index: QModelIndex, t) -> None:
        """A picture found by words read in it: that line on a band across the well's foot,
        the query's words marked as in a note."""
        line = collapse_spaces(index.data(Roles.Snippet) or "")
        if not line:
            return
        font = QFont(p.font())
        font.setPointSizeF(max(7.5, font.pointSizeF() - 1))
        fm = QFontMetrics(font)
        rows = 2 if fm.horizontalAdvance(line) > well.width() - 16 else 1
        band = QRectF(well.left(), well.bottom() - rows * fm.lineSpacing() - 10, well.width(),
                      rows * fm.lineSpacing() + 10)
        paper = QColor(t.surface)
        paper.setAlpha(235)
        p.save()
        p.setClipPath(_rounded(well, RADIUS - 4))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(paper)
        p.drawRect(band)
        p.setFont(font)
        p.setPen(QColor(t.text))
        _draw_wrapped(p, band.adjusted(8, 5, -8, -5), line, font,
                      index.data(Roles.Highlights) or [], QColor(t.highlight))
        p.restore()

    def _well_pixmap(self, pm: QPixmap, size: QSize, ratio: float, t) -> QPixmap:
        """The thumbnail scaled into the card's well with rounded corners, made once per
        thumbnail and size: repaints (scrolling, hover, live refresh) are one blit."""
        key = (pm.cacheKey(), size.width(), size.height(), ratio, t.sunken)
        cached = self._wells.get(key)
        if cached is not None:
            self._wells.move_to_end(key)
            return cached
        out = QPixmap(int(size.width() * ratio), int(size.height() * ratio))
        out.setDevicePixelRatio(ratio)
        out.fill(Qt.GlobalColor.transparent)
        q = QPainter(out)
        q.setRenderHint(QPainter.RenderHint.Antialiasing)
        q.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        well = QRectF(0, 0, size.width(), size.height())
        clip = _rounded(well, RADIUS - 4)
        q.setPen(Qt.PenStyle.NoPen)
        q.setBrush(QColor(t.sunken))
        q.drawPath(clip)
        fit = pm.size().scaled(size, Qt.AspectRatioMode.KeepAspectRatio)
        # fill the well when the picture is close to its shape; else letterbox it
        fill = pm.size().scaled(size, Qt.AspectRatioMode.KeepAspectRatioByExpanding)
        share = (fit.width() * fit.height()) / max(1, fill.width() * fill.height())
        target = fill if share > 0.72 else fit
        r = QRectF(0, 0, target.width(), target.height())
        r.moveCenter(well.center())
        q.setClipPath(clip)
        q.drawPixmap(r, pm, QRectF(pm.rect()))
        q.end()
        self._wells[key] = out
        if len(self._wells) > 600:
            self._wells.popitem(last=False)
        return out

    def _paint_note(self, p: QPainter, well: QRectF, index: QModelIndex, t) -> None:
        paper = QColor("#2c2b27" if t.dark else "#fffbf0")
        edge = QColor("#4a463c" if t.dark else "#efe3c2")
        p.setPen(QPen(edge, 1))
        p.setBrush(paper)
        p.drawPath(_rounded(well.adjusted(0.5, 0.5, -0.5, -0.5), RADIUS - 4))
        ratio = p.device().devicePixelRatioF() if p.device() else 1.0
        p.drawPixmap(int(well.left() + 10), int(well.top() + 10),
                     icons.pixmap("note", "#b08a2e" if not t.dark else "#d8b25a", 18, ratio))
        snippet = collapse_spaces(index.data(Roles.Snippet) or "")
        spans = (index.data(Roles.Highlights) or []) if snippet else []
        if not snippet:
            snippet = "(empty note)"
        font = QFont(p.font())
        font.setPointSizeF(max(8.0, font.pointSizeF() - 0.5))
        p.setFont(font)
        p.setPen(QColor(t.text))
        area = well.adjusted(12, 36, -12, -10)
        _draw_wrapped(p, area, snippet, font, spans, QColor(t.highlight))

    def _paint_score(self, p: QPainter, well: QRectF, index: QModelIndex, t) -> None:
        score = index.data(Roles.Score)
        if score is None:
            return
        standout = bool(index.data(Roles.Standout))
        pct = index.data(Roles.Relevance)  # the calibrated 0-100; raw cosine is the tooltip's
        text = str(pct) if pct is not None else f"{score:.2f}"
        font = QFont(p.font())
        font.setPointSizeF(max(7.5, font.pointSizeF() - 1.5))
        font.setWeight(QFont.Weight.DemiBold)
        fm = QFontMetrics(font)
        w = fm.horizontalAdvance(text) + 14
        h = fm.height() + 4
        r = QRectF(well.right() - w - 6, well.top() + 6, w, h)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(t.accent) if standout else QColor(0, 0, 0, 130))
        p.drawRoundedRect(r, h / 2, h / 2)
        p.setFont(font)
        p.setPen(QColor("#ffffff"))
        p.drawText(r, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_caption(self, p: QPainter, card: QRectF, well: QRectF, index: QModelIndex, t,
                       selected: bool) -> None:
        name = index.data(Qt.ItemDataRole.DisplayRole) or ""
        folder = index.data(Roles.Folder) or ""
        if index.data(Roles.Keyword):
            how = ("words in picture" if index.data(Roles.Kind) != "text"
                   and index.data(Roles.Snippet) else "name/text match")
            folder = f"{folder} · {how}" if folder else how
        copies = index.data(Roles.Copies) or 1
        if copies > 1:
            folder = f"{copies} copies · {folder}" if folder else f"{copies} copies"
        font = QFont(p.font())
        font.setWeight(QFont.Weight.DemiBold)
        fm = QFontMetrics(font)
        x = int(well.left() + 2)
        width = int(well.width() - 4)
        y = int(well.bottom() + 8)
        p.setFont(font)
        p.setPen(QColor(t.text))
        p.drawText(QRect(x, y, width, fm.height()), Qt.AlignmentFlag.AlignLeft,
                   _elide(fm, name, width))
        small = QFont(p.font())
        small.setWeight(QFont.Weight.Normal)
        small.setPointSizeF(max(7.5, small.pointSizeF() - 1))
        sfm = QFontMetrics(small)
        p.setFont(small)
        p.setPen(QColor(t.muted))
        p.drawText(QRect(x, y + fm.height() + 2, width, sfm.height()), Qt.AlignmentFlag.AlignLeft,
                   _elide(sfm, folder, width, Qt.TextElideMode.ElideRight))

    def _paint_mark_badge(self, p: QPainter, well: QRectF, mark: int, t) -> None:
        r = QRectF(well.left() + 6, well.top() + 6, BUTTON, BUTTON)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(t.accent) if mark > 0 else QColor(t.danger))
        p.drawEllipse(r)
        ratio = p.device().devicePixelRatioF() if p.device() else 1.0
        pm = icons.pixmap("more" if mark > 0 else "less", "#ffffff", 16, ratio)
        p.drawPixmap(int(r.center().x() - 8), int(r.center().y() - 8), pm)

    def _paint_buttons(self, p: QPainter, cell: QRect, index: QModelIndex, t) -> None:
        ratio = p.device().devicePixelRatioF() if p.device() else 1.0
        for sign, r in self.button_rects(cell).items():
            hot = self._hover_button == (index.row(), sign)
            p.setPen(QPen(QColor(0, 0, 0, 40), 1))
            p.setBrush(QColor(t.accent if hot else t.surface))
            p.drawEllipse(QRectF(r))
            color = "#ffffff" if hot else t.text
            pm = icons.pixmap("more" if sign > 0 else "less", color, 16, ratio)
            p.drawPixmap(r.center().x() - 7, r.center().y() - 7, pm)

    # -- hover buttons ------------------------------------------------------------------------
    def button_at(self, cell: QRect, pos: QPoint) -> int:
        if not self.marks_enabled:
            return 0
        for sign, r in self.button_rects(cell).items():
            if r.adjusted(-2, -2, 2, 2).contains(pos):
                return sign
        return 0

    def editorEvent(self, event: QEvent, model, option: QStyleOptionViewItem,  # noqa: N802
                    index: QModelIndex) -> bool:
        if index.data(Roles.Divider):
            return False  # a heading: no buttons, nothing to click
        if event.type() in (QEvent.Type.MouseMove, QEvent.Type.MouseButtonRelease,
                            QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonDblClick):
            pos = event.position().toPoint() if isinstance(event, QMouseEvent) else QPoint()
            sign = self.button_at(option.rect, pos)
            hover = (index.row(), sign) if sign else None
            if hover != self._hover_button:
                self._hover_button = hover
                view = self.parent()
                if view is not None and hasattr(view, "viewport"):
                    view.viewport().update(option.rect)
            if sign and event.type() == QEvent.Type.MouseButtonRelease:
                current = index.data(Roles.Mark) or 0
                self.markClicked.emit(index, 0 if current == sign else sign)
                return True
            if sign and event.type() in (QEvent.Type.MouseButtonPress,
                                         QEvent.Type.MouseButtonDblClick):
                return True  # don't select or open when a button is hit
        return super().editorEvent(event, model, option, index)

    def tooltip_for_button(self, sign: int) -> str:
        return "More like this" if sign > 0 else "Less like this"


def _draw_wrapped(p: QPainter, area: QRectF, text: str, font: QFont,
                  spans: Sequence[tuple[int, int]] = (), mark: QColor | None = None) -> None:
    """Word-wrapped text that ends with an ellipsis when it runs out of room; `spans` (the
    query's words) get a highlighter background."""
    fm = QFontMetrics(font)
    layout = QTextLayout(text, font)
    opt = QTextOption()
    opt.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
    layout.setTextOption(opt)
    layout.beginLayout()
    lines = []
    y = 0.0
    line_h = fm.lineSpacing()
    max_lines = max(1, int(area.height() // line_h))
    while len(lines) < max_lines:
        line = layout.createLine()
        if not line.isValid():
            break
        line.setLineWidth(area.width())
        line.setPosition(QRectF(0, y, 0, 0).topLeft())
        lines.append(line)
        y += line_h
    layout.endLayout()
    for i, line in enumerate(lines):
        start, length = line.textStart(), line.textLength()
        seg = text[start:start + length].rstrip()
        last = i == len(lines) - 1
        if last and start + length < len(text):
            seg = fm.elidedText(text[start:], Qt.TextElideMode.ElideRight, int(area.width()))
        row = QRectF(area.left(), area.top() + i * line_h, area.width(), line_h)
        if mark is not None:
            _mark_spans(p, row, seg, start, spans, fm, mark)
        p.drawText(row, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, seg)


def _mark_spans(p: QPainter, row: QRectF, seg: str, offset: int,
                spans: Sequence[tuple[int, int]], fm: QFontMetrics, color: QColor) -> None:
    """A highlighter stroke behind each part of `spans` that falls in this line's text."""
    shown = len(seg.rstrip("…"))
    for a, b in spans:
        a, b = max(a - offset, 0), min(b - offset, shown)
        if a >= b:
            continue
        x = fm.horizontalAdvance(seg[:a])
        w = fm.horizontalAdvance(seg[a:b])
        p.save()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(color)
        p.drawRoundedRect(QRectF(row.left() + x - 1, row.top() + 1, w + 2, row.height() - 2), 3, 3)
        p.restore()


class RootDelegate(QStyledItemDelegate):
    """A folder row: icon, name, full path (muted) and its item count."""

    ROW_H = 52

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802
        view = option.widget
        width = view.viewport().width() if view is not None and hasattr(view, "viewport") \
            else option.rect.width()
        return QSize(max(120, width), self.ROW_H)

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        t = theme.current()
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(option.rect.adjusted(6, 2, -6, -2))
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        if selected or hovered:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(t.accent_soft if selected else t.hover))
            p.drawRoundedRect(r, 8, 8)
        ratio = p.device().devicePixelRatioF() if p.device() else 1.0
        state = index.data(Roles.Kind) or ""
        tone = {"busy": t.accent, "offline": t.faint, "incomplete": t.warn_border}.get(
            state, t.muted)
        p.drawPixmap(int(r.left() + 10), int(r.center().y() - 10),
                     icons.pixmap("folder", tone, 20, ratio))
        count = index.data(Roles.Count) or 0
        count_text = f"{count:,}"
        small = QFont(p.font())
        small.setPointSizeF(max(7.5, small.pointSizeF() - 1))
        sfm = QFontMetrics(small)
        cw = sfm.horizontalAdvance(count_text) + 14
        left = int(r.left() + 40)
        width = int(r.right() - 10 - cw - 6 - left)
        bold = QFont(p.font())
        bold.setWeight(QFont.Weight.DemiBold)
        bfm = QFontMetrics(bold)
        p.setFont(bold)
        p.setPen(QColor(t.text))
        top = int(r.center().y() - (bfm.height() + sfm.height()) / 2)
        p.drawText(QRect(left, top, width, bfm.height()), Qt.AlignmentFlag.AlignLeft,
                   _elide(bfm, index.data(Qt.ItemDataRole.DisplayRole) or "", width,
                          Qt.TextElideMode.ElideRight))
        p.setFont(small)
        p.setPen(QColor(t.muted))
        path = index.data(Roles.Path) or ""
        sub = (index.data(Roles.Reason) or path) if state else path
        p.drawText(QRect(left, top + bfm.height(), width, sfm.height()), Qt.AlignmentFlag.AlignLeft,
                   _elide(sfm, sub, width, Qt.TextElideMode.ElideRight if state
                          else Qt.TextElideMode.ElideMiddle))
        pill = QRectF(r.right() - 10 - cw, r.center().y() - (sfm.height() + 4) / 2, cw,
                      sfm.height() + 4)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(t.sunken))
        p.drawRoundedRect(pill, pill.height() / 2, pill.height() / 2)
        p.setPen(QColor(t.muted))
        p.drawText(pill, Qt.AlignmentFlag.AlignCenter, count_text)
        p.restore()


class ErrorDelegate(QStyledItemDelegate):
    """A file that could not be indexed: its full path, elided in the middle so both the
    folder and the file name stay readable, then the reason (the tooltip has both in full)."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802
        size = super().sizeHint(option, index)
        view = option.widget
        if view is not None and hasattr(view, "viewport"):  # as wide as the list: no scrolling
            size.setWidth(view.viewport().width())
        return size

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, p, opt.widget)
        t = theme.current()
        fm = QFontMetrics(opt.font)
        r = opt.rect.adjusted(6, 0, -6, 0)
        path, tail = error_row_texts(fm, index.data(Roles.Path) or "",
                                     index.data(Roles.Reason) or "", r.width())
        used = fm.horizontalAdvance(path)
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        p.save()
        p.setPen(QColor(t.text))
        p.drawText(QRect(r.left(), r.top(), used + 2, r.height()), align, path)
        p.setPen(QColor(t.muted))
        p.drawText(QRect(r.left() + used, r.top(), max(0, r.width() - used), r.height()), align,
                   tail)
        p.restore()


def error_row_texts(fm: QFontMetrics, path: str, reason: str, width: int) -> tuple[str, str]:
    """(the path as shown, the reason as shown) in `width` pixels: the reason keeps up to a
    third of the row; the path gets the rest, its folder elided in the middle so the file name
    stays whole while there is room for it."""
    tail = f"  —  {reason}" if reason else ""
    tail_w = min(fm.horizontalAdvance(tail), width // 3)
    room = width - tail_w
    folder, name = os.path.split(path)
    if fm.horizontalAdvance(path) <= room or not folder:
        shown = _elide(fm, path, room, Qt.TextElideMode.ElideMiddle)
    elif fm.horizontalAdvance(name) * 2 <= room:
        name = os.sep + name
        shown = _elide(fm, folder, room - fm.horizontalAdvance(name),
                       Qt.TextElideMode.ElideMiddle) + name
    else:
        shown = _elide(fm, path, room, Qt.TextElideMode.ElideMiddle)
    rest = width - fm.horizontalAdvance(shown)
    return shown, _elide(fm, tail, rest, Qt.TextElideMode.ElideRight)
