"""Magpie's main window: composition of the widgets and the signals `app/` listens to.

The window holds no business logic. It shows what the controllers give it (results, roots,
progress, errors, messages) through the methods below and reports what the person did (typed,
dropped, clicked) through its signals; the controllers never reach into its widgets.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

from PySide6.QtCore import (
    QByteArray, QEvent, QModelIndex, QPoint, QSettings, QSize, Qt, QTimer, Signal,
)
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog, QFrame, QHBoxLayout, QLabel, QMainWindow, QMenu, QMessageBox, QScrollArea,
    QSizePolicy, QSplitter, QStackedWidget, QToolButton, QVBoxLayout, QWidget,
)

from ui import icons, theme
from ui.models import THUMB, ErrorsModel, ResultsModel, Roles, RootsModel
from ui.thumbnails import ThumbnailLoader
from ui.widgets import (
    Banner, DropOverlay, EmptyState, ErrorPanel, FilterBar, ImageChip, MessageView, PreviewPane,
    ProgressPanel, ResultsView, RootsPanel, SearchField, SearchHint, button, label, local_paths,
)
from ui.widgets.elided import ElidedLabel

PREVIEW = 900  # px, the preview pane's decode size
SEARCH_PLACEHOLDER = "Describe what you're looking for — or drop an image here"


class MainWindow(QMainWindow):
    # what the person asked for; `app/` decides what it means
    queryEdited = Signal(str)
    queryCommitted = Signal(str)  # Enter in the search box: search now, no debounce
    imageQuery = Signal(str)
    imageQueryCleared = Signal()
    filtersChanged = Signal()
    pathsDropped = Signal(list)  # local paths (folders and/or files)
    addFolderRequested = Signal()
    rescanRequested = Signal(str)  # "" = all folders
    removeRootRequested = Signal(str)
    openRequested = Signal(object)  # a result
    revealRequested = Signal(object)
    findSimilarRequested = Signal(object)
    markRequested = Signal(object, int)  # result, +1 / -1 / 0
    showMoreRequested = Signal()
    pauseRequested = Signal()
    resumeRequested = Signal()
    cancelRequested = Signal()
    bannerAction = Signal(str)
    demoRequested = Signal()
    chooseWeightsRequested = Signal()
    downloadWeightsRequested = Signal()
    openLibraryRequested = Signal()
    defaultLibraryRequested = Signal()
    preferencesRequested = Signal()
    aboutRequested = Signal()
    closing = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Magpie")
        self.setWindowIcon(icons.logo_icon())
        self.setAcceptDrops(True)
        self.setMinimumSize(QSize(760, 520))
        self.thumbs = ThumbnailLoader(self)
        self.results_model = ResultsModel(self.thumbs, self)
        self.roots_model = RootsModel(self)
        self.errors_model = ErrorsModel(self)
        self._image_query: str | None = None
        self.last_notice = ""
        self._text_marks: dict[int, list] = {}  # file id -> where its words were read
        self._build()
        self._wire()

    # -- construction -----------------------------------------------------------------------
    def _build(self) -> None:
        t = theme.current()
        central = QWidget()
        root = QVBoxLayout(central)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)

        # header: logo, search, menu / filters, summary, "show more"
        header = QFrame()
        header.setObjectName("Header")
        hl = QVBoxLayout(header)
        hl.setContentsMargins(16, 12, 16, 10)
        hl.setSpacing(10)
        top = QHBoxLayout()
        top.setSpacing(12)
        logo = QLabel()
        logo.setPixmap(icons.logo_pixmap(30, self.devicePixelRatioF()))
        name = label("Magpie", "heading")
        name.setStyleSheet("font-size: 16px;")
        top.addWidget(logo)
        top.addWidget(name)
        top.addSpacing(12)
        self.image_chip = ImageChip()
        self.search = SearchField()
        top.addWidget(self.image_chip)
        top.addWidget(self.search, 1)
        self.menu_button = QToolButton()
        self.menu_button.setIcon(icons.icon("menu", t.text))
        self.menu_button.setText("Menu")
        self.menu_button.setToolTip("Folders, model, library")
        self.menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu_button.setIconSize(QSize(18, 18))
        top.addWidget(self.menu_button)
        hl.addLayout(top)
        self.filter_row = QWidget()
        second = QHBoxLayout(self.filter_row)
        second.setContentsMargins(0, 0, 0, 0)
        second.setSpacing(10)
        self.filters = FilterBar()
        second.addWidget(self.filters)
        second.addStretch(1)
        self.summary = ElidedLabel("", "muted", min_chars=6)
        self.query_notice = label("", "warn")
        self.query_notice.setObjectName("query-notice")
        self.query_notice.setWordWrap(True)
        self.query_notice.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.query_notice.hide()
        self.show_more_button = button("Show more", "flat", "chevron-down")
        self.show_more_button.setObjectName("show-more")
        self.show_more_button.hide()
        second.addWidget(self.summary)
        second.addWidget(self.show_more_button)
        hl.addWidget(self.filter_row)
        hl.addWidget(self.query_notice)
        root.addWidget(header)

        # banner (missing weights, library problems)
        self.banner = Banner()
        banner_box = QHBoxLayout()
        banner_box.setContentsMargins(16, 12, 16, 0)
        banner_box.addWidget(self.banner)
        self.banner_holder = QWidget()
        self.banner_holder.setLayout(banner_box)
        self.banner_holder.hide()
        root.addWidget(self.banner_holder)

        # body: folders | results | preview
        self.body = QWidget()
        body_l = QVBoxLayout(self.body)
        body_l.setContentsMargins(0, 0, 0, 0)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setHandleWidth(1)
        self.roots_panel = RootsPanel(self.roots_model)
        # panes may shrink to what their controls need, never below it (no fixed minimum
        # that would squeeze their buttons), and the side panes may be dragged shut
        self.splitter.setChildrenCollapsible(True)
        self.stack = QStackedWidget()
        self.stack.setObjectName("ResultsArea")
        self.empty = EmptyState()
        self.hint = SearchHint()
        self.results = ResultsView()
        self.results.setModel(self.results_model)
        self.message = MessageView()
        results_page = QWidget()
        rl = QVBoxLayout(results_page)
        rl.setContentsMargins(10, 8, 4, 4)
        rl.addWidget(self.results)
        # the centred pages scroll in a window too short for them rather than being cut
        self._pages = {"empty": _scrolling(self.empty), "hint": _scrolling(self.hint),
                       "results": results_page, "message": _scrolling(self.message)}
        for w in self._pages.values():
            self.stack.addWidget(w)
        self.preview = PreviewPane()
        self.splitter.addWidget(self.roots_panel)
        self.splitter.addWidget(self.stack)
        self.splitter.addWidget(self.preview)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setCollapsible(1, False)
        self.splitter.setSizes([250, 760, 320])
        body_l.addWidget(self.splitter)
        root.addWidget(self.body, 1)
        self.overlay = DropOverlay(self.body)

        # bottom: indexing progress and errors
        bottom = QFrame()
        bottom.setObjectName("Bottom")
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.setSpacing(0)
        self.progress = ProgressPanel()
        self.errors = ErrorPanel(self.errors_model)
        bl.addWidget(self.progress)
        bl.addWidget(self.errors)
        self.body.installEventFilter(self)
        self.errors.toggle.toggled.connect(lambda _on: QTimer.singleShot(0, self._fit_errors))
        self.bottom = bottom
        root.addWidget(bottom)
        self.setCentralWidget(central)

        # status bar: items | model | device
        sb = self.statusBar()
        sb.setSizeGripEnabled(False)
        # each line elides (full text in its tooltip) rather than being cut in a narrow window
        self.items_label = ElidedLabel("No library yet", min_chars=14)
        self.model_label = ElidedLabel("", min_chars=8)
        self.model_label.setObjectName("model-label")
        self.device_label = ElidedLabel("", min_chars=6)
        self.device_label.setObjectName("device-label")
        sb.addWidget(self.items_label, 1)
        sb.addPermanentWidget(self.model_label)
        sb.addPermanentWidget(self.device_label)

        self._build_menu()
        # never narrower than the controls need (the filter row, the three panes at their
        # minimum): a window can't be shrunk into cutting them
        central.layout().activate()
        need = central.minimumSizeHint().width()
        if self.show_more_button.isHidden():  # it comes with results: keep room for it
            need += self.show_more_button.sizeHint().width() + 10
        self.setMinimumSize(QSize(max(760, need), 520))
        self._name_controls()
        self.show_page("empty")
        self._sync_bottom()
        self._set_tab_order()

    def _build_menu(self) -> None:
        t = theme.current()
        m = QMenu(self)

        def act(text: str, signal, icon_name: str | None = None, shortcut=None) -> QAction:
            a = QAction(text, self)
            if icon_name:
                a.setIcon(icons.icon(icon_name, t.text))
            if shortcut:
                a.setShortcut(shortcut)
                a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
                self.addAction(a)
            a.triggered.connect(signal)
            m.addAction(a)
            return a

        self.add_action = act("Add folder…", self.addFolderRequested, "folder-plus",
                              QKeySequence.StandardKey.Open)
        self.rescan_action = act("Rescan all folders", lambda: self.rescanRequested.emit(""),
                                 "refresh", QKeySequence(Qt.Key.Key_F5))
        m.addSeparator()
        self.demo_action = act("Try the demo", self.demoRequested, "sparkle")
        self.weights_action = act("Choose weights file…", self.chooseWeightsRequested, "folder-open")
        self.download_action = act("Download model weights", self.downloadWeightsRequested,
                                   "download")
        m.addSeparator()
        self.library_action = act("Open library…", self.openLibraryRequested, "folder")
        self.default_library_action = act("Use my default library", self.defaultLibraryRequested)
        m.addSeparator()
        self.preferences_action = act("Preferences…", self.preferencesRequested, "cpu",
                                      QKeySequence("Ctrl+,"))
        self.preferences_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        help_menu = m.addMenu("Help")
        self.about_action = QAction("About Magpie", self)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(self.aboutRequested)
        help_menu.addAction(self.about_action)
        self.help_menu = help_menu
        m.addSeparator()
        # Ctrl+Q everywhere: some platforms (and Qt's offscreen one) bind nothing to Quit
        quit_action = act("Quit", self.close, None, QKeySequence("Ctrl+Q"))
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.quit_action = quit_action
        self.menu = m
        self.menu_button.setMenu(m)
        m.aboutToShow.connect(lambda: QTimer.singleShot(0, self._align_menu))

        for seq in ("Ctrl+F", "Ctrl+L"):
            a = QAction(self)
            a.setShortcut(QKeySequence(seq))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            a.triggered.connect(self.focus_search)
            self.addAction(a)

    def _name_controls(self) -> None:
        """Names and descriptions a screen reader announces for controls whose text alone
        does not say what they do (or that have none)."""
        self.menu_button.setAccessibleName("Menu")
        self.menu_button.setAccessibleDescription("Folders, model, library, preferences, about")
        f = self.filters
        for combo, name in ((f.kind, "Kind of items"), (f.folder, "Folder"),
                            (f.date, "Date"), (f.sort, "Sort order"),
                            (f.after, "From date"), (f.before, "Until date")):
            combo.setAccessibleName(name)
            combo.setAccessibleDescription(combo.toolTip())
        self.preview.setAccessibleName("Preview")
        self.preview.text.setAccessibleName("Note text")
        self.preview.text.setTabChangesFocus(True)
        self.preview.open_button.setAccessibleDescription(self.preview.open_button.toolTip())
        self.preview.reveal_button.setAccessibleDescription(
            "Show the file selected in your file manager")
        self.errors.toggle.setAccessibleName("Show the files that could not be indexed")
        self.errors.clear_button.setAccessibleName("Dismiss the list of files that could not "
                                                   "be indexed")
        self.errors.view.setAccessibleName("Files that could not be indexed")
        self.progress.pause_button.setAccessibleDescription("Pause or resume indexing")
        self.progress.cancel_button.setAccessibleDescription(
            "Stop indexing; what was done is kept")
        self.show_more_button.setAccessibleDescription("Show the results below the cutoff")

    def tab_chain(self) -> list[QWidget]:
        """The order Tab visits the window's controls: the query, its filters, the banner's
        actions, the folders, the results, the preview, then progress and errors."""
        f, rp, pv = self.filters, self.roots_panel, self.preview
        chain: list[QWidget] = [self.image_chip.close_button, self.search, self.menu_button,
                                f.kind, f.folder, f.date, f.after, f.before, f.sort,
                                self.show_more_button]
        chain += list(self.banner._buttons.values())
        if getattr(self.banner, "details_button", None) is not None:
            chain.append(self.banner.details_button)
        chain += [rp.rescan_all, rp.add_button, rp.view, rp.rescan_button, rp.remove_button,
                  self.empty.add_button, self.empty.demo_button, *self.hint.example_buttons(),
                  self.results, pv.text,
                  pv.open_button, pv.reveal_button, pv.similar_button, pv.more_button,
                  pv.less_button, self.progress.pause_button, self.progress.cancel_button,
                  self.errors.toggle, self.errors.clear_button, self.errors.view]
        return chain

    def _set_tab_order(self) -> None:
        chain = self.tab_chain()
        for a, b in zip(chain, chain[1:]):
            QWidget.setTabOrder(a, b)

    def _align_menu(self) -> None:
        """The menu hangs from the right edge of its button, inside the window (Qt opens it
        to the right, past the window's edge)."""
        b, m = self.menu_button, self.menu
        pos = b.mapToGlobal(QPoint(b.width() - m.width(), b.height()))
        m.move(max(self.mapToGlobal(QPoint(0, 0)).x(), pos.x()), pos.y())

    def _wire(self) -> None:
        self.search.textEdited.connect(self.queryEdited)
        self.search.returnPressed.connect(lambda: self.queryCommitted.emit(self.search.text()))
        self.search.imageDropped.connect(self._on_image_dropped)
        self.search.downPressed.connect(self.results.select_first)
        self.results.upFromTop.connect(self.focus_search)
        self.image_chip.cleared.connect(self._on_image_cleared)
        self.filters.changed.connect(self.filtersChanged)
        self.show_more_button.clicked.connect(self.showMoreRequested)
        self.empty.addFolderClicked.connect(self.addFolderRequested)
        self.empty.demoClicked.connect(self.demoRequested)
        self.hint.exampleClicked.connect(self.run_example)
        self.roots_panel.addClicked.connect(self.addFolderRequested)
        self.roots_panel.rescanClicked.connect(self.rescanRequested)
        self.roots_panel.removeClicked.connect(self.removeRootRequested)
        self.progress.pauseClicked.connect(self.pauseRequested)
        self.progress.resumeClicked.connect(self.resumeRequested)
        self.progress.cancelClicked.connect(self.cancelRequested)
        self.banner.action.connect(self.bannerAction)
        self.results.openRequested.connect(lambda idx: self._emit_for(idx, self.openRequested))
        self.results.contextRequested.connect(self._context_menu)
        self.results.copyRequested.connect(self._copy_indexes)
        self.results.delegate.markClicked.connect(self._on_mark_clicked)
        self.results.selectionModel().currentChanged.connect(self._on_current)
        self.results_model.modelReset.connect(self._on_results_reset)
        self.preview.openClicked.connect(lambda: self._emit_current(self.openRequested))
        self.preview.revealClicked.connect(lambda: self._emit_current(self.revealRequested))
        self.preview.similarClicked.connect(lambda: self._emit_current(self.findSimilarRequested))
        self.preview.markClicked.connect(self._on_preview_mark)
        self.thumbs.ready.connect(self._on_thumb)
        self.thumbs.textReady.connect(self._on_text)
        self.errors_model.rowsInserted.connect(self._sync_bottom)
        self.errors_model.modelReset.connect(self._sync_bottom)

    # -- pages ------------------------------------------------------------------------------
    def show_page(self, name: str) -> None:
        self.stack.setCurrentWidget(self._pages[name])
        # a first start shows only the drop zone: no filters or preview for an empty library
        empty = name == "empty"
        self.filter_row.setVisible(not empty)
        self.preview.setVisible(not empty)

    def page(self) -> str:
        current = self.stack.currentWidget()
        return next(k for k, v in self._pages.items() if v is current)

    def show_hint(self, body: str, examples: Sequence[str]) -> None:
        self.hint.set_info(body, examples)
        self._set_tab_order()  # its example buttons may be new
        self.show_page("hint")
        self.set_summary("")

    def show_message(self, title: str, body: str = "", icon_name: str = "search",
                     error: bool = False) -> None:
        self.message.show_message(title, body, icon_name, error)
        self.show_page("message")

    def show_results(self, results: Sequence, cutoff: int | None = None, summary: str = "",
                     keep_selection: bool = False, show_all: bool = False,
                     min_visible: int = 0, copies: dict | None = None,
                     highlight: Sequence[str] = (), text_marks: dict | None = None) -> None:
        """New results; with keep_selection the same file stays selected and the grid keeps
        its place (live refresh), else the grid starts at the top (a new query).
        `copies`: file id -> its identical copies; `highlight`: the query's words;
        `text_marks`: file id -> where those words were read in the picture."""
        current = self.current_result()
        self._text_marks = dict(text_marks or {})
        scroll = self.results.verticalScrollBar().value()
        self.thumbs.cancel_pending()
        self.results_model.set_results(results, cutoff, show_all=show_all,
                                       min_visible=min_visible, copies=copies,
                                       highlight=highlight)
        self.preview.set_highlight(highlight)
        self.show_page("results")
        self.set_summary(summary)
        if keep_selection:
            if current is not None:
                row = self.results_model.row_of(current.file_id)
                if row >= 0:
                    self.results.setCurrentIndex(self.results_model.index(row))
            self.results.verticalScrollBar().setValue(scroll)
        else:
            self.results.scrollToTop()
        self._sync_show_more()

    def show_more(self) -> None:
        self.results_model.show_more()
        self._sync_show_more()

    def _sync_show_more(self) -> None:
        hidden = self.results_model.hidden_count()
        self.show_more_button.setVisible(hidden > 0)
        self.show_more_button.setText(f"Show {hidden} more")
        self.show_more_button.setToolTip(
            "Results below the relevance cutoff: they score close to a typical item of your "
            "library for this query")

    def set_summary(self, text: str) -> None:
        self.summary.setText(text)
        if not text:
            self.show_more_button.hide()

    def set_query_notice(self, text: str) -> None:
        """A warning about the query itself (the model read only part of it)."""
        self.query_notice.setText(text)
        self.query_notice.setToolTip(text)
        self.query_notice.setVisible(bool(text))

    def visible_results(self) -> int:
        """Results shown (the "Other results" divider is not one)."""
        return self.results_model.result_count()

    def hidden_results(self) -> int:
        """Results fetched but past the cutoff, waiting for "Show N more"."""
        return self.results_model.hidden_count()

    def offer_load_more(self, remaining: int) -> None:
        """Every fetched result is shown and the library holds more: offer to fetch them."""
        self.show_more_button.setText("Show more")
        self.show_more_button.setToolTip(f"{remaining:,} more items in the library, ranked "
                                         "below these")
        self.show_more_button.show()

    def clear_results(self) -> None:
        self.results_model.clear()

    def clear_marks(self) -> None:
        self.results_model.clear_marks()

    def set_marks_enabled(self, on: bool) -> None:
        self.results.delegate.marks_enabled = on

    # -- search box -------------------------------------------------------------------------
    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def query_text(self) -> str:
        return self.search.text()

    def set_query(self, text: str) -> None:
        self.search.setText(text)

    def run_example(self, text: str) -> None:
        self.search.setText(text)
        self.queryCommitted.emit(text)

    def set_image_query(self, path: str | None, title: str | None = None) -> None:
        """The picture that is the query (None: no picture)."""
        if path is None:
            self._image_query = None
            self.image_chip.hide()
            self.search.setPlaceholderText(SEARCH_PLACEHOLDER)
            return
        self.show_picture_chip(title or os.path.basename(path), path, path)

    def show_picture_chip(self, title: str, path: str | None = None, tip: str = "") -> None:
        """Say in the search row what the query is made of: a picture (its thumbnail when
        `path` is an image) that words typed in the box are added to."""
        self._image_query = path
        pm = self.thumbs.get(path, THUMB) if path else None
        self.image_chip.set_image(title, pm, tip)
        self.search.setPlaceholderText("Add words to search with this picture")

    def _on_image_dropped(self, path: str) -> None:
        self.imageQuery.emit(path)

    def _on_image_cleared(self) -> None:
        self.imageQueryCleared.emit()

    # -- results interaction ----------------------------------------------------------------
    def current_result(self):
        idx = self.results.currentIndex()
        return idx.data(Roles.Result) if idx.isValid() else None

    def _emit_for(self, idx: QModelIndex, signal) -> None:
        r = idx.data(Roles.Result) if idx.isValid() else None
        if r is not None:
            signal.emit(r)

    def _emit_current(self, signal) -> None:
        r = self.preview.current
        if r is not None:
            signal.emit(r)

    def _on_mark_clicked(self, idx: QModelIndex, mark: int) -> None:
        r = idx.data(Roles.Result)
        if r is not None:
            self.markRequested.emit(r, mark)

    def _on_preview_mark(self, mark: int) -> None:
        r = self.preview.current
        if r is not None:
            self.markRequested.emit(r, mark)

    def set_mark(self, file_id: int, mark: int) -> None:
        self.results_model.set_mark(file_id, mark)
        if self.preview.current is not None and self.preview.current.file_id == file_id:
            self.preview.set_mark(mark)

    def _context_menu(self, idx: QModelIndex, global_pos: QPoint) -> None:
        r = idx.data(Roles.Result) if idx.isValid() else None
        if r is None:
            return
        menu = self.result_menu(r)
        menu.exec(global_pos)

    def result_menu(self, r) -> QMenu:
        t = theme.current()
        menu = QMenu(self)
        mark = self.results_model.mark(r.file_id)

        def add(text: str, icon_name: str | None, fn, checked: bool | None = None) -> QAction:
            a = menu.addAction(icons.icon(icon_name, t.text), text) if icon_name else menu.addAction(text)
            if checked is not None:
                a.setCheckable(True)
                a.setChecked(checked)
            a.triggered.connect(fn)
            return a

        add("Open", "open", lambda: self.openRequested.emit(r)).setShortcut(QKeySequence(Qt.Key.Key_Return))
        add("Show in folder", "folder-open", lambda: self.revealRequested.emit(r))
        add("Copy path", "copy", lambda: self.copy_path(r))
        menu.addSeparator()
        add("Find similar", "similar", lambda: self.findSimilarRequested.emit(r))
        if self.results.delegate.marks_enabled:
            add("More like this", "more", lambda: self.markRequested.emit(r, 0 if mark > 0 else 1),
                mark > 0)
            add("Less like this", "less", lambda: self.markRequested.emit(r, 0 if mark < 0 else -1),
                mark < 0)
        return menu

    def copy_path(self, r) -> None:
        self.copy_paths([r])

    def copy_paths(self, results: Sequence) -> None:
        """Full paths, one a line (what a terminal or a file dialog accepts)."""
        paths = [r.path for r in results]
        if not paths:
            return
        QGuiApplication.clipboard().setText("\n".join(paths))
        self.notify(f"Copied {paths[0]}" if len(paths) == 1 else f"Copied {len(paths)} paths",
                    3000)

    def _copy_indexes(self, indexes: list) -> None:
        self.copy_paths([r for r in (i.data(Roles.Result) for i in indexes) if r is not None])

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        r = current.data(Roles.Result) if current.isValid() else None
        if r is None:
            self.preview.clear()
            return
        pm = None
        if r.kind == "image":
            pm = self.thumbs.get(r.open_path, PREVIEW) or self.thumbs.get(r.open_path, THUMB)
        else:
            self.thumbs.request_text(r.open_path)
        self.preview.show_result(r, pm, self.results_model.mark(r.file_id),
                                 self.results_model.copies(r.file_id),
                                 self._text_marks.get(r.file_id, ()))

    def _on_results_reset(self) -> None:
        self.preview.clear()

    def _on_thumb(self, path: str, size: int) -> None:
        r = self.preview.current
        if r is not None and r.open_path == path:
            pm = self.thumbs.get(path, size)
            if pm is not None and (size == PREVIEW or self.preview.image.pixmap() is None):
                self.preview.set_pixmap(pm)
        if self._image_query == path and size == THUMB:
            pm = self.thumbs.get(path, THUMB)
            if pm is not None:
                self.image_chip.set_pixmap(pm)

    def _on_text(self, path: str, text: str) -> None:
        r = self.preview.current
        if r is not None and r.open_path == path:
            self.preview.set_text(text)

    # -- roots, progress, errors, status ----------------------------------------------------
    def set_roots(self, rows: Sequence[tuple[str, int]]) -> None:
        self.roots_model.set_roots(rows)
        self.filters.set_folders([p for p, _ in rows])

    def has_roots(self) -> bool:
        return self.roots_model.rowCount() > 0

    def root_paths(self) -> list[str]:
        return self.roots_model.paths()

    def set_busy_roots(self, paths: Sequence[str]) -> None:
        self.roots_model.set_busy(list(paths))

    def set_root_states(self, pending: dict[str, int], offline: set[str]) -> None:
        """Folders an interrupted run left incomplete (files left) and unreachable ones."""
        self.roots_model.set_states(pending, offline)

    def set_errors(self, rows: Sequence[tuple[str, str]]) -> None:
        self.errors_model.set_errors(rows)

    def add_errors(self, rows: Sequence[tuple[str, str]]) -> None:
        self.errors_model.add(rows)

    def filter_values(self) -> dict:
        return self.filters.values()

    def show_progress(self, title: str, done: int, total: int, rate: float, eta: float | None,
                      current: str, errors: int, queued: int = 0) -> None:
        self.progress.update_progress(title, done, total, rate, eta, current, errors, queued)

    def show_waiting(self, title: str, detail: str) -> None:
        """A job is queued behind something (the model): no bar moving, no pause."""
        self.progress.start(title)
        self.progress.detail.setText(detail)
        self.progress.pause_button.setEnabled(False)
        self._sync_bottom()

    def set_paused(self, paused: bool) -> None:
        self.progress.set_paused(paused)

    def progress_stopping(self) -> None:
        self.progress.stopping()

    def notify(self, text: str, ms: int = 6000) -> None:
        """A passing message in the status bar; elided to the room left of the model and
        device lines, the whole message in the status bar's tooltip."""
        sb = self.statusBar()
        room = sb.width() - sum(w.width() + 12 for w in (self.model_label, self.device_label)
                                if w.isVisible()) - 16
        shown = sb.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, max(80, room))
        sb.setToolTip(text if shown != text else "")
        sb.showMessage(shown, ms)
        self.last_notice = text  # what was said, whole (tests and scripts read it)

    def job_started(self, title: str) -> None:
        self.progress.start(title)
        self._sync_bottom()

    def job_finished(self, message: str = "") -> None:
        self.progress.hide()
        self.roots_model.set_busy([])
        self._sync_bottom()
        if message:
            self.notify(message, 8000)

    def _sync_bottom(self, *args) -> None:
        self.bottom.setVisible(self.progress.isVisibleTo(self.bottom) or
                               self.errors_model.rowCount() > 0)

    def set_status(self, items: str, model: str, device: str) -> None:
        self.items_label.setText(items)
        self.model_label.setText(model)
        self.device_label.setText(device)

    def show_banner(self, *args, **kwargs) -> None:
        self.banner.show_message(*args, **kwargs)
        self.banner_holder.show()
        self._set_tab_order()  # its new buttons come right after the query row

    def hide_banner(self) -> None:
        self.banner.hide()
        self.banner_holder.hide()

    def banner_busy(self, text: str, done: int | None = None, total: int | None = None) -> None:
        self.banner.set_busy(text, done, total)

    def banner_status(self, text: str, error: bool = False) -> None:
        self.banner.set_status(text, error=error)

    # -- dialogs (the controllers ask; tests replace these) ---------------------------------
    def confirm_removal(self, title: str, text: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, "Magpie", title,
                          QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText(text)
        remove = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        box.exec()
        return box.clickedButton() is remove

    def confirm_new_library(self, folder, entries: list[str]) -> bool:
        from ui.prompts import confirm_new_library

        return confirm_new_library(self, folder, entries)

    def ask_quit_while_indexing(self, what: str) -> bool:
        from ui.prompts import ask_quit_while_indexing

        return ask_quit_while_indexing(self, what)

    def choose_folder(self) -> str | None:
        return QFileDialog.getExistingDirectory(self, "Choose a folder to index",
                                                os.path.expanduser("~")) or None

    def choose_library_folder(self, start: str) -> str | None:
        return QFileDialog.getExistingDirectory(self, "Open a Magpie library", start) or None

    def choose_weights_file(self, model_name: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(
            self, f"Choose the {model_name} weights file", os.path.expanduser("~"),
            "Model weights (*.safetensors *.bin *.pt *.pth);;All files (*)")
        return path or None

    def stop_thumbnails(self, msecs: int) -> None:
        """At shutdown: drop queued thumbnails and wait for the one being decoded."""
        self.thumbs.cancel_pending()
        self.thumbs.wait(msecs)

    # -- drag and drop onto the window ------------------------------------------------------
    def dragEnterEvent(self, e: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        paths = local_paths(e.mimeData())
        if not paths:
            e.ignore()
            return
        e.acceptProposedAction()
        folders = sum(os.path.isdir(p) for p in paths)
        files = len(paths) - folders
        what = []
        if folders:
            what.append(f"{folders} folder{'s' * (folders != 1)}")
        if files:
            what.append(f"the folder of {files} file{'s' * (files != 1)}")
        self.overlay.show_for("Drop to index", "Magpie will index " + " and ".join(what) +
                              " in the background. Drop an image on the search box to search "
                              "by it instead.")
        self.empty.set_dragging(True)

    def dragMoveEvent(self, e) -> None:  # noqa: N802
        if local_paths(e.mimeData()):
            e.acceptProposedAction()

    def dragLeaveEvent(self, e) -> None:  # noqa: N802
        self.overlay.hide()
        self.empty.set_dragging(False)

    def dropEvent(self, e: QDropEvent) -> None:  # noqa: N802
        self.overlay.hide()
        self.empty.set_dragging(False)
        paths = local_paths(e.mimeData())
        if paths:
            e.acceptProposedAction()
            self.pathsDropped.emit(paths)

    def resizeEvent(self, e) -> None:  # noqa: N802
        super().resizeEvent(e)
        if self.overlay.isVisible():
            self.overlay.setGeometry(self.body.rect())
        # the items count keeps its room; the model and device lines elide first
        self.model_label.setMaximumWidth(max(120, self.width() * 3 // 10))
        self.device_label.setMaximumWidth(max(90, self.width() // 5))
        QTimer.singleShot(0, self._balance_panes)

    RESULTS_MIN = 400  # px: below this the side panes give up width first

    def _balance_panes(self) -> None:
        """In a narrow window the folders and preview panes shrink to their minimum before
        the results do (QSplitter alone takes it all from the results)."""
        sizes = self.splitter.sizes()
        if len(sizes) != 3 or sizes[1] >= self.RESULTS_MIN or not self.splitter.isVisible():
            return
        want = self.RESULTS_MIN - sizes[1]
        for i in (2, 0):  # the preview first, then the folders
            w = self.splitter.widget(i)
            if sizes[i] == 0 or not w.isVisible():
                continue
            floor = max(w.minimumSizeHint().width(), w.minimumWidth())
            give = max(0, min(want, sizes[i] - floor))
            sizes[i] -= give
            sizes[1] += give
            want -= give
        self.splitter.setSizes(sizes)

    def eventFilter(self, obj, e) -> bool:  # noqa: N802
        if obj is self.body and e.type() == QEvent.Type.Resize:
            QTimer.singleShot(0, self._fit_errors)
        return super().eventFilter(obj, e)

    ERRORS_SHARE = 3  # the errors panel takes at most a third of the results area's height

    def _fit_errors(self) -> None:
        """Cap the list of failed files so the panel (summary + list) stays within a third of
        the results area: E <= G / 3 with G + E the height they share, i.e. E <= (G + E) / 4."""
        shared = self.body.height() + (self.errors.height() if self.errors.isVisible() else 0)
        cap = shared // (self.ERRORS_SHARE + 1)
        view = self.errors.view
        spacing = self.errors.layout().spacing()
        # the panel without its list: summary row, margins, and the gap above the list
        rest = self.errors.height() - view.height() if view.isVisible() else \
            self.errors.height() + spacing
        one_row = max(20, view.sizeHintForRow(0)) + 2 * view.frameWidth() + 4
        view.setMaximumHeight(max(one_row, min(150, cap - rest)))

    # -- persistence ------------------------------------------------------------------------
    def save_state(self, s: QSettings) -> None:
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/splitter", self.splitter.saveState())

    def restore_state(self, s: QSettings) -> bool:
        geo = s.value("window/geometry")
        ok = False
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            ok = self.restoreGeometry(geo)
        state = s.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        split = s.value("window/splitter")
        if isinstance(split, QByteArray):
            self.splitter.restoreState(split)
        return ok

    def closeEvent(self, e: QCloseEvent) -> None:  # noqa: N802
        guard = getattr(self, "close_guard", None)  # the controller may ask first (indexing)
        if guard is not None and not guard():
            e.ignore()
            return
        self.closing.emit()
        super().closeEvent(e)


def _scrolling(page: QWidget) -> QScrollArea:
    """A page in a frameless, see-through scroll area (vertical only)."""
    area = QScrollArea()
    area.setObjectName("PageScroll")
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    page.setObjectName(page.objectName() or "Page")
    area.setWidget(page)
    return area
