"""Item models adapting plain result/root/error records for the views.

The records are the core's frozen dataclasses (SearchResult and friends) used duck-typed:
a result needs `file_id, path, open_path, kind, score, snippet, taken_at, keyword` and may
have `z` and `explain()`. The models never compute rankings; they only present them.
"""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from indexer.query_feedback import collapse_spaces, highlight_spans
from indexer.search_split import divider_at, divider_detail, divider_title
from ui.thumbnails import ThumbnailLoader

THUMB = 256  # px: the grid decodes thumbnails to fit this box (sharp on HiDPI too)

Index = QModelIndex | QPersistentModelIndex


class Roles:
    Result = Qt.ItemDataRole.UserRole + 1
    Path = Qt.ItemDataRole.UserRole + 2
    OpenPath = Qt.ItemDataRole.UserRole + 3
    Kind = Qt.ItemDataRole.UserRole + 4
    Score = Qt.ItemDataRole.UserRole + 5
    Snippet = Qt.ItemDataRole.UserRole + 6
    FileId = Qt.ItemDataRole.UserRole + 7
    Mark = Qt.ItemDataRole.UserRole + 8  # +1 more like this, -1 less like this, 0 none
    Keyword = Qt.ItemDataRole.UserRole + 9
    Folder = Qt.ItemDataRole.UserRole + 10
    Count = Qt.ItemDataRole.UserRole + 11
    Reason = Qt.ItemDataRole.UserRole + 12
    Standout = Qt.ItemDataRole.UserRole + 13  # inside the adaptive cutoff
    Copies = Qt.ItemDataRole.UserRole + 14  # how many identical files this result stands for
    Highlights = Qt.ItemDataRole.UserRole + 15  # (start, end) of query words in the snippet
    Relevance = Qt.ItemDataRole.UserRole + 16  # calibrated 0-100 (50: the edge); None: unknown
    Divider = Qt.ItemDataRole.UserRole + 17  # True on the "Other results" row (not a result)


def relevance_of(r: Any) -> int | None:
    """The calibrated relevance 0-100 a badge shows (the same meaning for every query and
    model); None for results that carry only a similarity."""
    pct = getattr(r, "relevance_pct", None)
    return int(pct) if isinstance(pct, int) else None


def score_text(r: Any) -> str:
    pct = relevance_of(r)
    return str(pct) if pct is not None else f"{r.score:.2f}"


def score_line(r: Any) -> str:
    """One line for the preview pane: the relevance, the similarity, how much it stands out,
    why."""
    pct = relevance_of(r)
    parts = ([f"Relevance {pct} of 100"] if pct is not None else []) + [
        f"similarity {r.score:.2f}" if pct is not None else f"Similarity {r.score:.2f}"]
    z = getattr(r, "z", None)
    if z:
        kind = "note" if getattr(r, "kind", "") == "text" else "picture"
        parts.append(f"{z:+.1f} σ above a typical {kind}")
    if getattr(r, "text_level", -1) >= 0:
        parts.append("words read in the picture")
    elif getattr(r, "keyword", False):
        parts.append("matched by words")
    return "  ·  ".join(parts)


def explain(r: Any) -> str:
    """Tooltip text for a result's score."""
    fn = getattr(r, "explain", None)
    if callable(fn):
        try:
            return str(fn())
        except Exception:  # noqa: BLE001 - a tooltip must never break painting
            pass
    lines = [
        f"Similarity {r.score:.3f}: cosine between your query and this "
        f"{'note' if r.kind == 'text' else 'picture'} (1 = identical; with CLIP, 0.25–0.35 "
        "is usually a strong match for a text query)."
    ]
    if getattr(r, "keyword", False):
        lines.append("Also matched by words in its name, folder or text.")
    return "\n".join(lines)


def when_text(ts: float | None) -> str:
    if not ts:
        return ""
    try:
        return dt.datetime.fromtimestamp(ts).strftime("%d %b %Y, %H:%M")
    except (OverflowError, OSError, ValueError):
        return ""


class ResultsModel(QAbstractListModel):
    """Search results, those that stand out first; rows past the cutoff stay hidden until
    show_more().

    When some shown results do not stand out, one more row, the divider ("Other results", or
    "No strong matches" when it comes first), sits where search_split puts it. It is no
    result: not selectable, not enabled (keyboard navigation passes over it), no Roles.Result.
    Rows are therefore *model rows*; `results()`, `result_count()` and `result(row)` speak of
    results only.
    """

    def __init__(self, thumbs: ThumbnailLoader | None = None, parent=None) -> None:
        super().__init__(parent)
        self._all: list[Any] = []
        self._visible = 0
        self._cutoff = 0
        self._divider: int | None = None  # model row of the divider, None: no divider
        self._marks: dict[int, int] = {}
        self._copies: dict[int, list[Any]] = {}
        self._words: tuple[str, ...] = ()
        self._rows_by_path: dict[str, list[int]] = {}
        self._thumbs = thumbs
        if thumbs is not None:
            thumbs.ready.connect(self._on_thumb)

    # -- feeding ----------------------------------------------------------------------------
    def set_results(self, results: Sequence[Any], cutoff: int | None = None,
                    show_all: bool = False, min_visible: int = 0,
                    copies: dict[int, list[Any]] | None = None,
                    highlight: Sequence[str] = ()) -> None:
        """`cutoff`: how many stand out (badged, above the divider); at least `min_visible`
        results are shown. `copies`: file id -> the identical files folded into that result;
        `highlight`: the query's words, marked in note snippets."""
        self.beginResetModel()
        self._all = list(results)
        self._copies = dict(copies or {})
        self._words = tuple(highlight)
        self._cutoff = len(self._all) if cutoff is None else max(0, min(cutoff, len(self._all)))
        self._visible = len(self._all) if show_all else min(
            len(self._all), max(self._cutoff, min_visible))
        self._place_divider()
        self._index_paths()
        self.endResetModel()

    def clear(self) -> None:
        self.set_results([])

    def show_more(self) -> int:
        """Reveal the results past the cutoff (under the divider, which appears with them if
        it was not there yet); returns how many results appeared."""
        extra = len(self._all) - self._visible
        if extra <= 0:
            return 0
        first = self.rowCount()
        new_divider = divider_at(self._cutoff, len(self._all))
        rows = extra + int(self._divider is None and new_divider is not None)
        self.beginInsertRows(QModelIndex(), first, first + rows - 1)
        self._visible = len(self._all)
        self._divider = new_divider
        self._index_paths()
        self.endInsertRows()
        return extra

    def _place_divider(self) -> None:
        self._divider = divider_at(self._cutoff, self._visible)

    def hidden_count(self) -> int:
        return len(self._all) - self._visible

    @property
    def cutoff(self) -> int:
        return self._cutoff

    def divider_row(self) -> int | None:
        """The model row of the "Other results" divider; None when there is none."""
        return self._divider

    def is_divider(self, row: int) -> bool:
        return self._divider is not None and row == self._divider

    def copies(self, file_id: int) -> list[Any]:
        """The other files with the same content as this result."""
        return list(self._copies.get(file_id, ()))

    def _result_index(self, row: int) -> int | None:
        """Model row -> index into the results (None for the divider or out of range)."""
        if not 0 <= row < self.rowCount() or self.is_divider(row):
            return None
        return row - 1 if self._divider is not None and row > self._divider else row

    def _model_row(self, i: int) -> int:
        """Index into the results -> model row."""
        return i + 1 if self._divider is not None and i >= self._divider else i

    def result(self, row: int) -> Any:
        """The result on model row `row` (None on the divider)."""
        i = self._result_index(row)
        return None if i is None else self._all[i]

    def results(self) -> list[Any]:
        """The results shown, in order (the divider is not one)."""
        return self._all[: self._visible]

    def result_count(self) -> int:
        """How many results are shown: what the "N of M shown" line counts."""
        return self._visible

    def row_of(self, file_id: int) -> int:
        """The model row showing this file; -1 if none does."""
        for i, r in enumerate(self._all[: self._visible]):
            if r.file_id == file_id:
                return self._model_row(i)
        return -1

    # -- marks (refine by example) ----------------------------------------------------------
    def set_mark(self, file_id: int, mark: int) -> None:
        if mark:
            self._marks[file_id] = mark
        else:
            self._marks.pop(file_id, None)
        row = self.row_of(file_id)
        if row >= 0:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Roles.Mark])

    def mark(self, file_id: int) -> int:
        return self._marks.get(file_id, 0)

    def marks(self) -> dict[int, int]:
        return dict(self._marks)

    def clear_marks(self) -> None:
        rows = [self.row_of(f) for f in self._marks]
        self._marks.clear()
        for row in rows:
            if row >= 0:
                idx = self.index(row)
                self.dataChanged.emit(idx, idx, [Roles.Mark])

    # -- Qt model API -----------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else self._visible + (self._divider is not None)

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid() or self.is_divider(index.row()):
            return Qt.ItemFlag.NoItemFlags  # a heading: never current, selected or opened
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.column() != 0:
            return None
        if self.is_divider(index.row()):
            return self._divider_data(role)
        i = self._result_index(index.row())
        if i is None:
            return None
        read = _RESULT_ROLES.get(role)
        return read(self, self._all[i], i) if read is not None else None

    def _divider_data(self, role: int) -> Any:
        if role == Roles.Divider:
            return True
        if role == Qt.ItemDataRole.DisplayRole:
            return divider_title(self._cutoff)
        if role == Qt.ItemDataRole.ToolTipRole:
            return divider_detail(self._cutoff)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{divider_title(self._cutoff)}: {self._visible - self._cutoff} below"
        if role == Qt.ItemDataRole.AccessibleDescriptionRole:
            return divider_detail(self._cutoff)
        return None

    def _tooltip(self, r: Any) -> str:
        others = self._copies.get(r.file_id)
        also = ""
        if others:
            also = "\n\nIdentical copies:\n" + "\n".join(c.path for c in others[:10])
            if len(others) > 10:
                also += f"\n… and {len(others) - 10} more"
        return f"{r.path}{also}\n\n{explain(r)}"

    def _thumbnail(self, r: Any) -> Any:
        if r.kind != "image" or self._thumbs is None:
            return None
        return self._thumbs.get(r.open_path, THUMB)

    def roleNames(self) -> dict[int, bytes]:  # noqa: N802 - Qt API
        names = dict(super().roleNames())
        names.update({
            Roles.Path: b"path", Roles.Kind: b"kind", Roles.Score: b"score",
            Roles.Snippet: b"snippet", Roles.FileId: b"fileId", Roles.Mark: b"mark",
        })
        return names

    # -- thumbnails -------------------------------------------------------------------------
    def _index_paths(self) -> None:
        self._rows_by_path = {}
        for i, r in enumerate(self._all[: self._visible]):
            self._rows_by_path.setdefault(r.open_path, []).append(self._model_row(i))

    def _on_thumb(self, path: str, size: int) -> None:
        if size != THUMB:
            return
        for row in self._rows_by_path.get(path, ()):
            if row < self.rowCount():
                idx = self.index(row)
                self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


# What each role of a result row reads: (model, result, i) -> value; i counts results only
# (the divider is not one), so i < cutoff means "stands out".
_RESULT_ROLES: dict[int, Callable[[ResultsModel, Any, int], Any]] = {
    Qt.ItemDataRole.DisplayRole: lambda m, r, row: os.path.basename(r.path) or r.path,
    Qt.ItemDataRole.ToolTipRole: lambda m, r, row: m._tooltip(r),
    Qt.ItemDataRole.DecorationRole: lambda m, r, row: m._thumbnail(r),
    Qt.ItemDataRole.AccessibleTextRole:
        lambda m, r, row: f"{os.path.basename(r.path)}, score {score_text(r)}"
                          + ("" if row < m._cutoff else ", other result"),
    Roles.Result: lambda m, r, row: r,
    Roles.Path: lambda m, r, row: r.path,
    Roles.OpenPath: lambda m, r, row: r.open_path,
    Roles.Kind: lambda m, r, row: r.kind,
    Roles.Score: lambda m, r, row: float(r.score),
    Roles.Relevance: lambda m, r, row: relevance_of(r),
    Roles.Snippet: lambda m, r, row: r.snippet or "",
    Roles.FileId: lambda m, r, row: int(r.file_id),
    Roles.Mark: lambda m, r, row: m._marks.get(r.file_id, 0),
    Roles.Keyword: lambda m, r, row: bool(getattr(r, "keyword", False)),
    Roles.Folder: lambda m, r, row: os.path.basename(os.path.dirname(r.path)),
    Roles.Standout: lambda m, r, row: row < m._cutoff,
    Roles.Divider: lambda m, r, row: False,
    Roles.Copies: lambda m, r, row: 1 + len(m._copies.get(r.file_id, ())),
    Roles.Highlights:
        lambda m, r, row: (highlight_spans if r.kind == "text" else read_spans)(
            collapse_spaces(r.snippet or ""), m._words),
}


def read_spans(text: str, words) -> list:
    """Where the query's words are in words read from a picture (indexer/text_match.py).
    Imported on first use: it brings numpy and Pillow, which the window needs only once
    there are results, not to be shown (app/warm_start.py loads them meanwhile)."""
    from indexer.text_match import spans

    return spans(text, words)


class _RowsModel(QAbstractListModel):
    """A flat, read-only list of `self._rows`: what the roots and errors lists share."""

    _rows: list

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._rows)

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren


class RootsModel(_RowsModel):
    """The indexed folders with their item counts."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, int]] = []
        self._busy: set[str] = set()
        self._pending: dict[str, int] = {}
        self._offline: set[str] = set()

    def set_roots(self, rows: Sequence[tuple[str, int]]) -> None:
        rows = list(rows)
        if [p for p, _ in rows] == [p for p, _ in self._rows]:
            changed = [i for i, (a, b) in enumerate(zip(rows, self._rows)) if a != b]
            self._rows = rows
            if changed:
                self.dataChanged.emit(self.index(min(changed)), self.index(max(changed)))
            return
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    def set_busy(self, paths: Sequence[str]) -> None:
        self._busy = set(paths)
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1))

    def set_states(self, pending: dict[str, int], offline: set[str]) -> None:
        """Files left per folder by an interrupted run; folders that are not reachable."""
        pending, offline = dict(pending), set(offline)
        if (pending, offline) == (self._pending, self._offline):
            return
        self._pending, self._offline = pending, offline
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1))

    def state(self, path: str) -> str:
        """"busy" (being indexed), "offline" (not reachable), "incomplete" (files left) or ""."""
        if path in self._busy:
            return "busy"
        if path in self._offline:
            return "offline"
        return "incomplete" if self._pending.get(path) else ""

    def state_text(self, path: str, short: bool = False) -> str:
        """What the folder's row says under its name (short) or in its tooltip."""
        state = self.state(path)
        if state == "busy":
            return "indexing…"
        if state == "offline":
            return "offline" if short else "offline — not reachable; its entries are kept"
        if state == "incomplete":
            left = f"{self._pending[path]:,} left"
            return left if short else f"incomplete — {left} (indexing resumes them)"
        return ""

    def path(self, row: int) -> str | None:
        return self._rows[row][0] if 0 <= row < len(self._rows) else None

    def paths(self) -> list[str]:
        return [p for p, _ in self._rows]

    def total(self) -> int:
        return sum(c for _, c in self._rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows) or index.column() != 0:
            return None
        path, count = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(path.rstrip("/")) or path
        if role == Qt.ItemDataRole.ToolTipRole:
            state = self.state_text(path)
            return f"{path}\n{count:,} items indexed" + (f" — {state}" if state else "")
        if role == Roles.Path:
            return path
        if role == Roles.Count:
            return count
        if role == Roles.Kind:
            return self.state(path)
        if role == Roles.Reason:
            return self.state_text(path, short=True)
        return None


class ErrorsModel(_RowsModel):
    """Files that could not be indexed: (path, reason), newest last."""

    LIMIT = 10_000

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, str]] = []
        self._keys: set[tuple[str, str]] = set()

    def add(self, rows: Sequence[tuple[str, str]]) -> int:
        fresh = [r for r in dict.fromkeys(rows) if r not in self._keys]
        room = self.LIMIT - len(self._rows)
        fresh = fresh[: max(0, room)]
        if not fresh:
            return 0
        self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows) + len(fresh) - 1)
        self._rows.extend(fresh)
        self._keys.update(fresh)
        self.endInsertRows()
        return len(fresh)

    def set_errors(self, rows: Sequence[tuple[str, str]]) -> None:
        self.beginResetModel()
        self._rows = list(dict.fromkeys(rows))[: self.LIMIT]
        self._keys = set(self._rows)
        self.endResetModel()

    def clear(self) -> None:
        self.set_errors([])

    def rows(self) -> list[tuple[str, str]]:
        return list(self._rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows) or index.column() != 0:
            return None
        path, reason = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{path} — {reason}"  # the full path: a name alone is often ambiguous
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{path}\n{reason}"
        if role == Roles.Path:
            return path
        if role == Roles.Reason:
            return reason
        return None
