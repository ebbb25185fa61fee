"""Searching in the window: what the person types, drops and clicks becomes a SearchState
(Qt-free, app/search_state.py); the state becomes a search on the SearchService's thread; the
answer becomes a page of results. Only the newest query's answer is shown.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

from app.qt_bridge import SearchService
from app.search_page import Page, cut_notice, run_search, summary_text
from app.search_state import PAGE_K, SearchState

if TYPE_CHECKING:
    from indexer.catalogue import FileFilter

DEBOUNCE_MS = 250
MIN_VISIBLE = 8  # show at least this many even when fewer stand out (they keep a grey badge)


class SearchController(QObject):
    def __init__(self, window, parent: QObject | None = None, *,
                 show_idle: Callable[[], None] = lambda: None,
                 model_error: Callable[[], str | None] = lambda: None) -> None:
        super().__init__(parent)
        self.window = window
        self.state = SearchState()
        self.searches = SearchService(self)
        self.searcher = None
        self.model_error = model_error  # why the model is not loaded (None: loading / loaded)
        self.last_page: Page | None = None
        self.pending_query: str | None = None  # the demo's query, once its results exist
        self.show_idle = show_idle
        self._live = False
        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(DEBOUNCE_MS)
        self.debounce.timeout.connect(self.search_now)
        w = window
        w.queryEdited.connect(self.on_text_edited)
        w.queryCommitted.connect(self.on_text_committed)
        w.imageQuery.connect(self.search_by_picture)
        w.imageQueryCleared.connect(self.clear_picture)
        w.filtersChanged.connect(self.on_filters)
        w.findSimilarRequested.connect(self.find_similar)
        w.markRequested.connect(self.mark)
        w.showMoreRequested.connect(self.show_more)
        self.searches.done.connect(self._on_done)
        self.searches.failed.connect(self._on_failed)

    # -- the model --------------------------------------------------------------------------
    def set_searcher(self, searcher) -> None:
        """The model is ready (a Searcher) or gone (None: library switching, shutdown)."""
        self.searcher = searcher
        if searcher is None:
            self.searches.invalidate()
            return
        if not self.state.empty():
            self.search_now()

    def on_model_failed(self, message: str) -> None:
        if not self.state.empty():
            self._show_model_needed()

    def _show_model_needed(self) -> None:
        self.window.show_message("Search needs the model",
                                 "Download or choose the model's weights above, or try the demo.",
                                 "alert")

    # -- what the person did ----------------------------------------------------------------
    def on_text_edited(self, text: str) -> None:
        if text != self.state.text:
            self.window.clear_marks()
        if self.state.edit_text(text):
            self.window.set_image_query(None)  # typing replaced "find similar"
        if self.state.empty():
            self._go_idle()
            return
        self.debounce.start()

    def _go_idle(self) -> None:
        """No query left: nothing in flight, no results, the idle page."""
        self.debounce.stop()
        self.searches.invalidate()
        self.window.clear_results()
        self.window.set_query_notice("")
        self.show_idle()

    def on_text_committed(self, text: str) -> None:
        self.state.text = text
        self.debounce.stop()
        self.search_now()

    def search_by_picture(self, path: str) -> None:
        """A picture dropped on the search box is the query, alone: the words in the box are
        set aside until the picture is cleared; words typed after the drop are mixed in."""
        self.window.clear_marks()
        self.state.use_picture(path)
        self.window.set_query("")
        self.window.show_picture_chip(f"Picture · {os.path.basename(path)}", path,
                                      f"Searching by this picture: {path}\nWords typed in the "
                                      "box are added to it; × goes back to words only.")
        self.search_now()

    def clear_picture(self) -> None:
        self.window.clear_marks()
        words = self.state.clear_picture()
        self.window.set_image_query(None)
        self.window.set_query(words)
        if self.state.empty():
            self._go_idle()
            return
        self.search_now()

    def find_similar(self, r) -> None:
        self.window.clear_marks()
        name = os.path.basename(r.path)
        self.state.find_similar(r.file_id, r.open_path, name)
        self.window.set_query("")
        self.window.show_picture_chip(f"Similar to {name}",
                                      r.open_path if r.kind == "image" else None)
        self.search_now()

    def mark(self, r, mark: int) -> None:
        self.state.mark(r.file_id, mark)
        self.window.set_mark(r.file_id, mark)
        self.search_now(live=True)

    def on_filters(self) -> None:
        self.state.k = PAGE_K
        if not self.state.empty():
            self.search_now()

    def show_more(self) -> None:
        """Reveal the results past the cutoff; when all are shown, fetch twice as many."""
        if self.window.hidden_results() > 0:
            self.window.show_more()
            self._show_counts()
        else:
            self.state.load_more()
            self.search_now(live=True)

    def clear_query(self) -> None:
        """Forget the query entirely (another library is opening)."""
        self.state.clear()
        self.window.clear_marks()
        self.window.set_query("")
        self.window.set_image_query(None)
        self.window.set_query_notice("")
        self.searches.invalidate()

    def run_when_results(self, text: str) -> None:
        """Search for `text` once the library has something to show (the demo's query)."""
        self.pending_query = text

    def run_query(self, text: str) -> None:
        """Show `text`'s results as if typed (the demo's first query)."""
        self.pending_query = None
        self.window.set_query(text)
        self.state.clear()
        self.window.clear_marks()
        self.state.text = text
        self.search_now()

    def refresh(self) -> None:
        """The library changed under the results: the demo's query if it is waiting, else the
        visible search again, keeping the selection."""
        if self.pending_query is not None:
            self.run_query(self.pending_query)
        elif not self.state.empty() and self.searcher is not None:
            self.search_now(live=True)

    # -- searching --------------------------------------------------------------------------
    def filters(self) -> tuple[FileFilter, str]:
        # imported here: the catalogue brings numpy, which the window does not need to show
        from indexer.catalogue import FileFilter

        v = self.window.filter_values()
        flt = FileFilter(
            kinds=(v["kind"],) if v["kind"] else None,
            folders=(v["folder"],) if v["folder"] else None,
            after=v["after"],
            before=v["before"],
        )
        return flt, v["sort"]

    def search_now(self, live: bool = False) -> int | None:
        """Submit the current query (debounce bypassed). Returns the search generation."""
        self.debounce.stop()
        if self.state.empty():
            return None
        if self.searcher is None:
            if self.model_error():
                self._show_model_needed()
            else:
                # the library or the model is still loading: the query waits, the window
                # stays responsive, and the search runs the moment both are ready
                self.window.show_message("Getting ready…",
                                         "Your search runs as soon as the library and the "
                                         "model are ready.", "cpu")
            return None
        state = self.state.snapshot()
        flt, sort = self.filters()
        searcher = self.searcher
        self._live = live
        if not live:
            self.window.set_summary("Searching…")
        return self.searches.submit(lambda: run_search(searcher, state, flt, sort))

    def _on_done(self, gen: int, page: Page) -> None:
        self.last_page = page
        w = self.window
        w.set_query_notice(cut_notice(page.cut_terms, page.window_tokens))
        if not page.results and not w.has_roots():
            w.show_page("empty")
            w.set_summary("")
            return
        if not page.results:
            w.show_message(f"No matches for {self.state.describe()}",
                           "Try other words, fewer filters, or a broader description.")
            w.set_summary(f"No results  ·  {page.elapsed_ms:.0f} ms")
            return
        w.show_results(page.results, page.cutoff, "", keep_selection=self._live,
                       show_all=self.state.paged_past_first, min_visible=MIN_VISIBLE,
                       copies=page.copies, highlight=self._highlight_words(),
                       text_marks=page.text_marks)
        for fid, m in self.state.marks().items():
            w.set_mark(fid, m)
        self._show_counts()

    def _highlight_words(self) -> list[str]:
        from indexer.query_feedback import matched_words

        return matched_words(self.state.text)

    def _show_counts(self) -> None:
        """The summary line and the "more" button, from what is shown now."""
        page, w = self.last_page, self.window
        if page is None:
            return
        visible = w.visible_results()
        w.set_summary(summary_text(visible, page.cutoff, max(page.total, visible),
                                   page.elapsed_ms))
        if w.hidden_results() == 0 and page.fetched >= self.state.k and page.total > visible:
            w.offer_load_more(page.total - visible)

    def _on_failed(self, gen: int, message: str) -> None:
        self.window.show_message("Couldn't run that search", message, "alert", error=True)
        self.window.set_summary("")
