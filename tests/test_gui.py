"""The desktop window, driven through its real widgets (pytest-qt, offscreen).

Most tests use the fake encoder with inline decoding, so they run in a second or two; the
ranking and responsiveness tests use the bundled tiny model and the real decode processes.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEncoder
from helpers import note, solid
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import QApplication

from app.gui import make_window, window_settings
from app.qt_bridge import JobRunner, SearchService, Stopwatch
from app.settings import Settings
from app.wiring import Tuning
from indexer.search import SearchResult
from indexer.specs import TINY_SHAPES
from ui.models import THUMB, ErrorsModel, ResultsModel, Roles, RootsModel
from ui.thumbnails import ThumbnailLoader

INLINE = Tuning(workers=0, batch_size=16)  # decode in the job thread: fast, deterministic
JOB_TIMEOUT = 60_000


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    solid(root / "red.png", (250, 10, 10))
    solid(root / "crimson.jpg", (200, 20, 30))
    solid(root / "green.jpg", (10, 240, 10))
    solid(root / "sub" / "blue.png", (10, 10, 250))
    note(root / "notes" / "shopping.txt", "buy a ladder and blue paint at the hardware store")
    return root


@pytest.fixture
def make_gui(qtbot, tmp_path):
    """A started window + controller on a fresh library, with an injected encoder."""

    def make(encoder=None, spec=None, tuning=INLINE, start=True, library=None, **kw):
        # reading the words in pictures has its own window tests (test_ocr_gui.py); here it
        # would only add its pass to every indexing job
        kw.setdefault("settings", Settings(ocr=False))
        enc = encoder or FakeEncoder()
        spec = spec or replace(TINY_SHAPES, embed_dim=enc.dim)
        window, ctl = make_window(str(library or tmp_path / "lib"), spec=spec,
                                  load_encoder=lambda s, w: enc, tuning=tuning, **kw)
        qtbot.addWidget(window)
        window.resize(1200, 800)
        window.show()
        ctl.opener = lambda p: opened.append(p) or True
        ctl.revealer = lambda p: revealed.append(p) or True
        ctl.confirm = lambda title, text: True
        ctl.ask_quit = lambda what: True  # closing mid-index at teardown: never a modal dialog
        if start:
            ctl.start()
            qtbot.waitUntil(lambda: ctl.searcher is not None, timeout=10_000)
        return window, ctl

    opened: list[str] = []
    revealed: list[str] = []
    make.opened = opened
    make.revealed = revealed
    return make


@pytest.fixture(scope="session")
def tiny(tiny_encoder):
    """(spec, encoder) of the bundled tiny model. It ships in assets/, so a loader that fails
    here is a bug: the ranking tests fail with it, never skip."""
    return TINY_SHAPES, tiny_encoder


@pytest.fixture(scope="session")
def big_shapes(tmp_path_factory):
    """Twelve hundred labelled pictures for the responsiveness test."""
    from magpie_demo.shapes import make_demo_folder

    dest = tmp_path_factory.mktemp("big") / "Pictures"
    items = make_demo_folder(dest, n_images=1200, seed=11, image_size=128)
    return dest, items


def drop(widget, paths) -> None:
    """What a file manager does: drag enter + drop with file:// URLs."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = widget.rect().center()
    enter = QDragEnterEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    ev = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)
    assert ev.isAccepted()


def double_click(widget, pos: QPoint) -> None:
    """Press, release, double-click, release, as a real mouse sends them (QTest's
    mouseDClick does not reach item views reliably on Qt 6)."""
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QMouseEvent

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    for kind, buttons in ((QEvent.Type.MouseButtonPress, left),
                          (QEvent.Type.MouseButtonRelease, none),
                          (QEvent.Type.MouseButtonDblClick, left),
                          (QEvent.Type.MouseButtonRelease, none)):
        ev = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), left, buttons,
                         Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget, ev)


def wait_idle(qtbot, ctl, timeout=JOB_TIMEOUT) -> None:
    qtbot.waitUntil(lambda: not ctl.runner.busy and not ctl.runner.pending, timeout=timeout)


def wait_results(qtbot, window, timeout=10_000) -> list:
    qtbot.waitUntil(lambda: window.page() == "results" and window.results_model.rowCount() > 0,
                    timeout=timeout)
    return window.results_model.results()


def search(qtbot, window, ctl, text: str) -> list:
    window.search.clear()
    ctl.last_page = None
    qtbot.keyClicks(window.search, text)
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=10_000)
    return wait_results(qtbot, window)


def fake_results(n: int, kind: str = "image") -> list[SearchResult]:
    return [SearchResult(i, f"/x/img{i}.png", f"/x/img{i}.png", kind, 0.3 - i * 0.01,
                         "snippet" if kind == "text" else None) for i in range(n)]


# -- item models --------------------------------------------------------------------------------
def test_item_models_pass_qabstractitemmodeltester(qtmodeltester, qtbot):
    thumbs = ThumbnailLoader()
    results = ResultsModel(thumbs)
    results.set_results(fake_results(6) + fake_results(2, "text"), cutoff=5)
    qtmodeltester.check(results)
    assert results.rowCount() == 5 and results.hidden_count() == 3
    assert results.divider_row() is None  # every result shown stands out
    # the three below the cutoff come under the "Other results" divider (one more row)
    assert results.show_more() == 3 and results.rowCount() == 9 and results.result_count() == 8
    assert results.divider_row() == 5
    results.set_mark(2, 1)
    assert results.index(2).data(Roles.Mark) == 1
    results.set_mark(5, -1)  # the first result below the divider: model row 6
    assert results.row_of(5) == 6 and results.index(6).data(Roles.Mark) == -1
    assert results.result(5) is None and results.index(5).data(Roles.Result) is None
    qtmodeltester.check(results)
    results.set_results(fake_results(6), cutoff=0, min_visible=4)  # nothing stands out
    qtmodeltester.check(results)
    assert results.divider_row() == 0 and results.rowCount() == 5

    roots = RootsModel()
    roots.set_roots([("/a/Pictures", 10), ("/b/Notes", 3)])
    roots.set_roots([("/a/Pictures", 12), ("/b/Notes", 3)])  # in-place update
    qtmodeltester.check(roots)
    assert roots.index(0).data(Roles.Count) == 12

    errors = ErrorsModel()
    errors.add([("/a/broken.jpg", "cannot decode"), ("/a/broken.jpg", "cannot decode")])
    errors.add([("/a/locked.png", "permission denied")])
    qtmodeltester.check(errors)
    assert errors.rowCount() == 2
    thumbs.wait()


# -- thumbnails ---------------------------------------------------------------------------------
def test_thumbnails_decode_off_the_ui_thread_with_exif_and_lru(qtbot, tmp_path, monkeypatch):
    import ui.thumbnails as thumbnails

    # a landscape JPEG whose EXIF says "rotate 90°": the thumbnail must come out portrait
    im = Image.new("RGB", (400, 200), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = tmp_path / "rotated.jpg"
    im.save(rotated, exif=exif.tobytes())
    plain = solid(tmp_path / "plain.png", (10, 200, 10), (300, 300))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")

    threads = set()
    real = thumbnails.read_scaled

    def spy(path, size):
        threads.add(threading.get_ident())
        return real(path, size)

    monkeypatch.setattr(thumbnails, "read_scaled", spy)
    loader = ThumbnailLoader(max_bytes=2 * 128 * 128 * 4)
    assert loader.get(str(rotated), 128) is None  # queued, not decoded here
    with qtbot.waitSignal(loader.ready, timeout=5000):
        pass
    pm = loader.get(str(rotated), 128)
    assert pm is not None and pm.height() == 128 and pm.width() == 64  # EXIF applied
    assert threading.get_ident() not in threads  # never on the UI thread

    loader.request(str(broken), 128)
    qtbot.waitUntil(lambda: loader.failed(str(broken), 128), timeout=5000)
    decoded = loader.decoded_count
    assert loader.get(str(broken), 128) is None
    loader.wait()
    assert loader.decoded_count == decoded  # a failure is cached, not retried

    # LRU: room for two 128px thumbnails; the oldest goes first
    for i in range(3):
        p = solid(tmp_path / f"c{i}.png", (i * 60, 0, 0), (256, 256))
        loader.request(str(p), 128)
        qtbot.waitUntil(lambda p=p: loader.get(str(p), 128) is not None, timeout=5000)
    loader.request(str(plain), 128)
    qtbot.waitUntil(lambda: loader.get(str(plain), 128) is not None, timeout=5000)
    assert loader.cached_bytes <= 2 * 128 * 128 * 4
    assert (str(tmp_path / "c0.png"), 128) not in loader._cache


# -- first start --------------------------------------------------------------------------------
def test_first_start_without_weights_shows_the_message_and_offers_a_way_out(qtbot, isolated_dirs):
    """Fresh data dir, default model (ViT-B-32) whose weights are not here: no crash, the
    window says so and offers download / choose / demo; the empty state invites a drop."""
    window, ctl = make_window(None)
    qtbot.addWidget(window)
    window.show()
    ctl.start()
    qtbot.waitUntil(lambda: ctl.model_error is not None, timeout=15_000)
    assert ctl.library is not None
    assert ctl.library.root == (isolated_dirs / "library").absolute()
    assert window.banner.isVisible()
    assert "vit-b-32" in window.banner.title.text()
    assert "isn't on this computer" in window.banner.title.text()
    for key in ("download", "choose", "demo"):
        assert window.banner.button_for(key) is not None
    assert "MB" in window.banner.button_for("download").text()
    assert window.page() == "empty"
    assert window.empty.title.text() == "Drop a folder here to index it"
    assert "vit-b-32" in window.model_label.text()
    assert window.device_label.text() == "Model not loaded"

    # searching without a model explains instead of failing
    qtbot.keyClicks(window.search, "a dog")
    qtbot.waitUntil(lambda: window.page() == "message", timeout=3000)
    assert "model" in window.message.title.text().lower()

    # a dropped folder waits for the model instead of failing
    folder = tmp_path_folder = isolated_dirs.parent / "some-pictures"
    solid(tmp_path_folder / "a.png", (1, 2, 3))
    drop(window, [folder])
    assert ctl.runner.waiting_for_model()
    assert window.progress.isVisible() and "Waiting" in window.progress.title.text()
    window.progress.cancel_button.click()
    assert not ctl.runner.pending

    # offline download: a clear message, buttons usable again, no hang
    window.banner.button_for("download").click()
    qtbot.waitUntil(lambda: ctl.weights_task is not None and not ctl.weights_task.running,
                    timeout=30_000)
    assert window.banner.status.isVisible() and window.banner.status.text()
    assert window.banner.button_for("choose").isEnabled()

    # a wrong weights file: the sha256 check refuses it with a message
    bogus = isolated_dirs.parent / "not-clip.safetensors"
    bogus.write_bytes(b"\0" * 1024)
    ctl.choose_file = lambda: str(bogus)
    window.banner.button_for("choose").click()
    qtbot.waitUntil(lambda: ctl.model_task is not None and not ctl.model_task.running,
                    timeout=15_000)
    assert ctl.encoder is None
    assert "not the vit-b-32 model" in window.banner.title.text()
    window.close()


def test_window_state_is_saved_in_the_data_dir(qtbot, make_gui, isolated_dirs):
    """Geometry and splitter live in MAGPIE_DATA_DIR/window.ini: isolated per test."""
    window, ctl = make_gui()
    window.splitter.setSizes([300, 600, 300])
    saved = window.splitter.sizes()
    window.close()
    assert (isolated_dirs / "window.ini").exists()
    s = window_settings()
    assert s.value("window/geometry") is not None
    again, _ = make_window(None)
    qtbot.addWidget(again)
    again.resize(1200, 800)
    again.show()
    assert again.restore_state(window_settings())
    assert abs(again.splitter.sizes()[0] - saved[0]) <= 15  # the folders column keeps its width


# -- drag and drop, indexing, searching -----------------------------------------------------
def test_dropping_a_folder_indexes_it_and_results_appear(qtbot, make_gui, photos):
    window, ctl = make_gui()
    assert window.page() == "empty"
    with qtbot.waitSignal(ctl.runner.started, timeout=5000):
        drop(window, [photos])
    assert window.progress.isVisible()
    wait_idle(qtbot, ctl)
    assert ctl.last_report is not None and ctl.last_report.added == 5
    assert window.roots_model.paths() == [str(photos)]
    assert window.roots_model.index(0).data(Roles.Count) == 5
    assert not window.progress.isVisible()
    assert window.page() == "hint"
    assert "5 items" in window.items_label.text()

    results = search(qtbot, window, ctl, "hardware")
    assert Path(results[0].path).name == "shopping.txt"  # a note, found by its words
    # the note is painted as a card with its snippet
    assert window.results_model.index(0).data(Roles.Kind) == "text"
    assert "hardware" in window.results_model.index(0).data(Roles.Snippet)


def test_dropping_a_file_indexes_its_folder(qtbot, make_gui, photos):
    window, ctl = make_gui()
    drop(window, [photos / "sub" / "blue.png"])
    wait_idle(qtbot, ctl)
    assert window.roots_model.paths() == [str(photos / "sub")]
    # a folder inside an indexed one is a rescan of that one, not a second root
    drop(window, [photos / "sub"])
    wait_idle(qtbot, ctl)
    assert window.roots_model.paths() == [str(photos / "sub")]


def test_image_dropped_on_the_search_box_searches_by_that_image(qtbot, make_gui, photos,
                                                                 tmp_path):
    window, ctl = make_gui()
    drop(window, [photos])
    wait_idle(qtbot, ctl)
    outside = solid(tmp_path / "elsewhere" / "query.png", (240, 15, 15))
    drop(window.search, [outside])
    wait_results(qtbot, window)
    assert ctl.query.image == str(outside)
    assert window.image_chip.isVisible()
    ranked = [Path(r.path).name for r in ctl.last_page.results]
    assert set(ranked[:2]) == {"red.png", "crimson.jpg"}, ranked
    assert ctl.roots() == [str(photos)]  # the drop on the search box indexed nothing
    window.image_chip.close_button.click()
    assert ctl.query.image is None and not window.image_chip.isVisible()


def test_typing_is_debounced_and_stale_answers_are_dropped(qtbot, make_gui, photos):
    window, ctl = make_gui()
    drop(window, [photos])
    wait_idle(qtbot, ctl)
    before = ctl.searches.generation
    qtbot.keyClicks(window.search, "hardware store")  # 14 keystrokes
    qtbot.waitUntil(lambda: ctl.last_page is not None and window.page() == "results",
                    timeout=5000)
    assert ctl.searches.generation - before == 1  # one search, not one per key

    # the service itself, driven by events: a query answered after a newer one was asked is
    # dropped; a query still queued when a newer one arrives never runs
    svc = SearchService()
    got, ran = [], []
    running, release = threading.Event(), threading.Event()

    def slow(name):
        def work():
            ran.append(name)
            running.set()
            assert release.wait(30)
            return name
        return work

    svc.submit(slow("old"))
    assert running.wait(30)  # "old" is running on the search thread
    svc.submit(lambda: ran.append("queued") or "queued")  # waits behind "old"...
    svc.submit(lambda: ran.append("new") or "new")  # ...and is superseded before it starts
    svc.done.connect(lambda gen, page: got.append(page))
    release.set()
    qtbot.waitUntil(lambda: got == ["new"], timeout=30_000)
    assert svc.wait()
    qtbot.waitUntil(lambda: svc.dropped == 1, timeout=30_000)  # the stale "old" answer
    assert got == ["new"] and ran == ["old", "new"]


def test_context_menu_keyboard_and_preview(qtbot, make_gui, photos):
    window, ctl = make_gui()
    drop(window, [photos])
    wait_idle(qtbot, ctl)
    results = search(qtbot, window, ctl, "hardware")
    assert window.preview.current is None

    # Ctrl+F focuses the search box; Down moves into the grid; Enter opens
    window.activateWindow()
    window.results.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.search.hasFocus() or QApplication.focusWidget() is window.search
    qtbot.keyClick(window.search, Qt.Key.Key_Down)
    assert window.results.currentIndex().row() == 0
    assert window.preview.current.file_id == results[0].file_id
    assert window.preview.title.text() == "shopping.txt"
    qtbot.waitUntil(lambda: "ladder" in window.preview.text.toPlainText(), timeout=3000)
    qtbot.keyClick(window.results, Qt.Key.Key_Return)
    assert make_gui.opened == [results[0].open_path]
    centre = window.results.visualRect(window.results_model.index(0)).center()
    double_click(window.results.viewport(), centre)
    assert make_gui.opened == [results[0].open_path] * 2  # double-click opens too
    qtbot.keyClick(window.results, Qt.Key.Key_Escape)
    assert window.search.hasFocus() or QApplication.focusWidget() is window.search
    if len(results) > 1:  # to the next result, past the "Other results" divider if it is next
        qtbot.keyClick(window.results, Qt.Key.Key_Right)
        assert window.results.currentIndex().row() == window.results_model.row_of(
            results[1].file_id)

    # the context menu's entries
    menu = window.result_menu(results[0])
    labels = [a.text() for a in menu.actions() if a.text()]
    assert labels[:4] == ["Open", "Show in folder", "Copy path", "Find similar"]
    assert "More like this" in labels and "Less like this" in labels
    actions = {a.text(): a for a in menu.actions()}
    actions["Copy path"].trigger()
    assert QGuiApplication.clipboard().text() == results[0].path
    actions["Show in folder"].trigger()
    assert make_gui.revealed == [results[0].open_path]

    # find similar: an image as the query
    image = next(r for r in ctl.last_page.results if r.kind == "image") if any(
        r.kind == "image" for r in ctl.last_page.results) else None
    if image is None:
        results = search(qtbot, window, ctl, "red")
        image = next(r for r in ctl.last_page.results if r.kind == "image")
    ctl.last_page = None
    similar = {a.text(): a for a in window.result_menu(image).actions()}["Find similar"]
    similar.trigger()
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=5000)
    assert ctl.query.similar_to == image.file_id
    assert window.image_chip.isVisible()
    assert all(r.file_id != image.file_id for r in ctl.last_page.results)


def test_more_like_this_refines_and_show_more_reveals_the_rest(qtbot, make_gui, photos):
    window, ctl = make_gui()
    drop(window, [photos])
    wait_idle(qtbot, ctl)
    search(qtbot, window, ctl, "paint")
    target = next(r for r in ctl.last_page.results if Path(r.path).name == "green.jpg")
    ctl.last_page = None
    window.markRequested.emit(target, 1)  # what the card's hover button / menu emit
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=5000)
    assert ctl.query.positives == {target.file_id}
    row = window.results_model.row_of(target.file_id)
    if row >= 0:
        assert window.results_model.index(row).data(Roles.Mark) == 1
    # clicking the hover button on a card toggles the mark (delegate hit-testing)
    idx = window.results_model.index(0)
    rect = window.results.visualRect(idx)
    button = window.results.delegate.button_rects(rect)[-1]
    first = idx.data(Roles.Result)
    ctl.last_page = None
    qtbot.mouseMove(window.results.viewport(), button.center())
    qtbot.mouseClick(window.results.viewport(), Qt.MouseButton.LeftButton,
                     pos=button.center())
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=5000)
    assert first.file_id in ctl.query.negatives

    # "show more" past the adaptive cutoff
    window.show_results(fake_results(10), cutoff=3, summary="3 of 10")
    assert window.show_more_button.isVisible() and "7 more" in window.show_more_button.text()
    window.show_more_button.click()
    assert window.visible_results() == 10 and window.results_model.divider_row() == 3
    # the score tooltip explains the number
    tip = window.results_model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    assert "cosine" in tip.lower()


def test_filters_restrict_results(qtbot, make_gui, photos):
    window, ctl = make_gui()
    drop(window, [photos])
    wait_idle(qtbot, ctl)
    search(qtbot, window, ctl, "blue")
    assert {r.kind for r in ctl.last_page.results} == {"image", "text"}
    ctl.last_page = None
    window.filters.kind.setCurrentIndex(2)  # Notes
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=5000)
    assert {r.kind for r in ctl.last_page.results} == {"text"}
    window.filters.kind.setCurrentIndex(0)
    ctl.last_page = None
    window.filters.folder.setCurrentIndex(1)  # the only root
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=5000)
    assert ctl.filters()[0].folders == (str(photos),)
    # "Other folder…": any subfolder of a root
    window.filters.pick_folder = lambda start: str(photos / "sub")
    ctl.last_page = None
    window.filters.folder.setCurrentIndex(window.filters.folder.count() - 1)
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=5000)
    assert ctl.filters()[0].folders == (str(photos / "sub"),)
    assert {Path(r.path).name for r in ctl.last_page.results} == {"blue.png"}
    assert window.filters.folder.currentText() == "sub"
    window.filters.folder.setCurrentIndex(0)
    ctl.last_page = None
    window.filters.date.setCurrentIndex(1)  # past week: every file here is new
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=5000)
    assert ctl.last_page.results
    ctl.last_page = None
    window.filters.sort.setCurrentIndex(1)  # newest first
    qtbot.waitUntil(lambda: ctl.last_page is not None, timeout=5000)
    dates = [r.taken_at or 0 for r in ctl.last_page.results[: ctl.last_page.cutoff]]
    assert dates == sorted(dates, reverse=True)


def test_a_query_the_core_rejects_shows_its_message(qtbot, make_gui, photos):
    window, ctl = make_gui()
    drop(window, [photos])
    wait_idle(qtbot, ctl)
    window.search.setText("red +")
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.page() == "message", timeout=5000)
    assert "Couldn't run that search" in window.message.title.text()
    assert "missing a term" in window.message.body.text()


def test_roots_panel_remove_and_rescan(qtbot, make_gui, photos):
    window, ctl = make_gui()
    drop(window, [photos])
    wait_idle(qtbot, ctl)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in photos.rglob("*") if p.is_file()}

    solid(photos / "new.png", (1, 1, 1))
    window.roots_panel.view.setCurrentIndex(window.roots_model.index(0))
    window.roots_panel.rescan_button.click()
    wait_idle(qtbot, ctl)
    assert ctl.last_report.added == 1 and ctl.last_report.unchanged == 5
    assert window.roots_model.index(0).data(Roles.Count) == 6

    search(qtbot, window, ctl, "hardware")
    window.roots_panel.remove_button.click()
    wait_idle(qtbot, ctl)
    assert window.roots_model.rowCount() == 0
    qtbot.waitUntil(lambda: window.page() == "empty", timeout=5000)  # back to "drop a folder"
    assert window.roots_panel.empty.isVisible()
    for p, state in before.items():  # the user's files are untouched
        assert (p.stat().st_mtime_ns, p.read_bytes()) == state


def test_unreadable_files_are_listed_in_the_error_panel(qtbot, make_gui, photos):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    window, ctl = make_gui()
    drop(window, [photos])
    wait_idle(qtbot, ctl)
    assert window.errors.isVisible()
    assert "1 file could not be indexed" in window.errors.summary.text()
    assert window.errors_model.index(0).data(Roles.Path).endswith("broken.jpg")
    window.errors.toggle.click()
    assert window.errors.view.isVisible()


class SlowEncoder(FakeEncoder):
    """Takes its time per batch, so a job can be paused and cancelled mid-way."""

    def __init__(self, delay: float = 0.03) -> None:
        super().__init__()
        self.delay = delay

    def encode_images(self, pixels):
        time.sleep(self.delay)
        return super().encode_images(pixels)


def test_pause_resume_and_cancel(qtbot, make_gui, tmp_path, monkeypatch):
    from indexer.jobs import JobControl

    parked = threading.Event()  # set when a paused job stops at a checkpoint
    checkpoint = JobControl.checkpoint

    def noting_checkpoint(self):
        if self.paused:
            parked.set()
        checkpoint(self)

    monkeypatch.setattr(JobControl, "checkpoint", noting_checkpoint)
    folder = tmp_path / "many"
    for i in range(240):
        solid(folder / f"{i:03d}.png", (i, 255 - i, (i * 7) % 255), (24, 24))
    enc = SlowEncoder()
    window, ctl = make_gui(encoder=enc, tuning=Tuning(0, 8))
    drop(window, [folder])
    qtbot.waitUntil(lambda: window.progress.bar.maximum() > 0 and window.progress.bar.value() > 0,
                    timeout=20_000)

    window.progress.pause_button.click()
    assert ctl.runner.paused and window.progress.pause_button.text() == "Resume"
    # wait for the event, not for a guess at how long a busy machine takes: the job is parked
    # in a checkpoint, the batch in flight committed; then nothing moves while paused
    qtbot.waitUntil(parked.is_set, timeout=30_000)
    done = ctl.library.reader().counts()["images"]
    qtbot.wait(500)
    assert ctl.library.reader().counts()["images"] == done == enc.images_encoded
    assert ctl.runner.busy

    window.progress.pause_button.click()  # resume
    assert not ctl.runner.paused and window.progress.pause_button.text() == "Pause"
    qtbot.waitUntil(lambda: ctl.library.reader().counts()["images"] > done, timeout=10_000)

    window.progress.cancel_button.click()
    wait_idle(qtbot, ctl, 20_000)
    assert ctl.last_report.cancelled
    kept = ctl.library.reader().counts()["images"]
    assert 0 < kept < 240
    assert not window.progress.isVisible()
    # progress reached the UI throttled (≤ ~10 per second), not once per batch
    assert ctl.runner.progress_events <= 10 * (ctl.last_report.seconds + 1) + 5


def test_runner_throttles_progress_and_queues_jobs(qtbot):
    from app.qt_bridge import Job
    from indexer.jobs import Progress

    runner = JobRunner()
    seen: list[tuple[str, int]] = []
    runner.progress.connect(lambda job, p: seen.append((job.kind, p.done)))
    order: list[str] = []

    def chatty(control, on_progress, on_error):
        for i in range(5000):
            on_progress(Progress("embedding", i + 1, 5000))
        time.sleep(0.25)
        order.append("a")
        return "first"

    def second(control, on_progress, on_error):
        order.append("b")
        from indexer.errors import MagpieError

        raise MagpieError("a clear message")  # a bug (ValueError…) would show its type

    a = runner.submit(Job("index", "A", chatty))
    b = runner.submit(Job("index", "B", second))
    assert runner.pending == [b]
    qtbot.waitUntil(lambda: not runner.busy and not runner.pending, timeout=5000)
    assert order == ["a", "b"]
    assert a.result == "first" and b.message == "a clear message"
    assert 1 <= len([s for s in seen if s[0] == "index"]) <= 6
    assert seen[-1] == ("index", 5000)  # the last state always arrives


# -- the tiny model: ranking, responsiveness, the demo ------------------------------------
def test_typing_a_query_shows_the_matching_thumbnails(qtbot, make_gui, tiny, shapes_folder):
    spec, enc = tiny
    folder, items = shapes_folder
    labels = {str(i.path): (i.color, i.shape) for i in items}
    window, ctl = make_gui(encoder=enc, spec=spec)
    drop(window, [folder])
    wait_idle(qtbot, ctl)
    results = search(qtbot, window, ctl, "a blue triangle")
    # the note that mentions "the blue triangle sign" may rank first (keywords): fine
    top = [labels[r.path] for r in ctl.last_page.results if r.kind == "image"][:3]
    assert top[0] == ("blue", "triangle"), top
    assert top.count(("blue", "triangle")) >= 2, top
    # the cards get real thumbnails, decoded in the background
    row = next(i for i, r in enumerate(results) if r.kind == "image")
    qtbot.waitUntil(lambda: window.results_model.index(row).data(
        Qt.ItemDataRole.DecorationRole) is not None, timeout=5000)
    pm = window.results_model.index(row).data(Qt.ItemDataRole.DecorationRole)
    assert max(pm.width(), pm.height()) <= THUMB
    window.grab()  # paint every visible card once (delegate smoke test)


STALL_S = 0.25


class StallProbe:
    """A plain Python thread ticking every 10 ms beside the UI thread: how often, and how long,
    the machine (CPU share, the GIL's hand-over under load) kept any thread of this process
    from running. The UI thread doing the indexer's work would stall where the probe does not."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.wait(0.01):
            now = time.perf_counter()
            self.gaps.append(now - last)
            last = now

    def stop(self) -> tuple[int, float]:
        self._stop.set()
        self._thread.join(30)
        return sum(g > STALL_S for g in self.gaps), max(self.gaps, default=0.0) * 1000


def test_event_loop_keeps_turning_while_indexing(qtbot, make_gui, tiny, big_shapes, capsys):
    """Index 1,200 pictures with the real pipeline (decode processes + tiny model)
    while a 10 ms timer ticks on the UI thread; search while it indexes."""
    spec, enc = tiny
    folder, items = big_shapes
    window, ctl = make_gui(encoder=enc, spec=spec, tuning=None)
    watch = Stopwatch(10)
    probe = StallProbe()  # what the machine alone does to a thread ticking beside it
    watch.start()
    drop(window, [folder])
    qtbot.waitUntil(lambda: ctl.library.reader().counts()["images"] >= 32, timeout=JOB_TIMEOUT)
    answered_while_busy = []
    ctl.searches.done.connect(lambda *_: answered_while_busy.append(ctl.runner.busy))
    window.search.setText("a green circle")
    qtbot.keyClick(window.search, Qt.Key.Key_Return)  # Enter: search now, no debounce
    results = wait_results(qtbot, window)
    assert results and answered_while_busy[0]  # search works while indexing …
    wait_idle(qtbot, ctl)
    watch.stop()
    probe_slow, probe_longest = probe.stop()
    n = ctl.last_report.embedded_files
    assert n >= 1200
    longest = watch.longest_ms
    p99 = float(np.percentile(np.array(watch.gaps) * 1000, 99))
    slow = sum(g > STALL_S for g in watch.gaps)
    with capsys.disabled():
        print(f"\n[ui-stall] indexed {n} files in {ctl.last_report.seconds:.1f}s; "
              f"{len(watch.gaps)} ticks of a 10 ms timer, longest gap {longest:.0f} ms, "
              f"p99 {p99:.0f} ms, {slow} over {STALL_S * 1000:.0f} ms; a thread beside it: "
              f"{probe_slow} over, longest {probe_longest:.0f} ms")
    # side by side, not against a clock: a UI thread doing the indexer's work would stall at
    # every batch (~40 long gaps here); a busy machine delays the probe thread too (measured
    # on 2 cores at load 20: the UI 4 gaps over 250 ms, longest 616 ms; the probe 1, 295 ms)
    assert slow <= 2 * probe_slow + 8, \
        f"the UI thread stalled {slow} times (the probe beside it: {probe_slow})"
    assert longest <= max(1000, probe_longest + 4 * STALL_S * 1000), \
        f"the UI thread stalled for {longest:.0f} ms (the probe at most {probe_longest:.0f} ms)"


def test_try_the_demo_switches_to_the_demo_library(qtbot, tiny, isolated_dirs):
    spec, enc = tiny
    window, ctl = make_window(None, load_encoder=lambda s, w: enc if s.name == spec.name
                              else _missing(s), demo_images=32)
    qtbot.addWidget(window)
    window.show()
    ctl.start()
    qtbot.waitUntil(lambda: ctl.model_error is not None, timeout=15_000)
    window.banner.button_for("demo").click()
    qtbot.waitUntil(lambda: ctl.spec is not None and ctl.spec.name == "tiny-shapes"
                    and ctl.searcher is not None, timeout=20_000)
    assert not window.banner.isVisible()
    wait_idle(qtbot, ctl)
    results = wait_results(qtbot, window)
    assert window.query_text() == "a red circle"
    assert results and "demo-pictures" in results[0].path
    assert "demo-library" in window.windowTitle()
    text = ctl.library.reader().ocr_counts()  # the shapes hold no words: none were looked for
    assert text["pending"] == text["images"] > 0
    from app.settings import Settings

    assert Settings.load().library == str(isolated_dirs / "demo-library")
    window.close()


def _missing(spec):
    from indexer.weights import WeightsUnavailable

    raise WeightsUnavailable(spec, "not in this test")


# -- the real entry point -----------------------------------------------------------------------
def test_magpie_starts_and_stays_up_with_a_fresh_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(home),
               MAGPIE_DATA_DIR=str(home / "data"), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"), HF_HUB_OFFLINE="1")
    env.pop("MAGPIE_CACHE_DIR", None)
    exe = Path(sys.executable).with_name("magpie")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "app.main"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=tmp_path)
    try:
        made = home / "data" / "library" / "magpie-library.json"
        deadline = time.monotonic() + 120  # generous: a busy 2-core box starts slowly
        while not made.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert made.exists(), "the window never created its default library"
        time.sleep(1)  # and it is still up a moment later
        assert proc.poll() is None, proc.stderr.read().decode()
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert b"Traceback" not in err, err.decode()


def test_wrong_model_offers_a_migration_that_runs_as_a_job(make_gui, qtbot, tmp_path, photos,
                                                            monkeypatch):
    """A library built with another model: the banner offers re-indexing; the job builds the
    new index beside the old one and the window switches to it when complete."""
    from indexer.indexing import Indexer
    from indexer.library import Library, LibraryInfo
    from indexer.specs import SPECS

    enc = FakeEncoder()
    old_spec = replace(TINY_SHAPES, name="old-model", pretrained="old-v0", embed_dim=enc.dim)
    new_spec = replace(TINY_SHAPES, embed_dim=enc.dim)
    monkeypatch.setitem(SPECS, "old-model", old_spec)
    lib_dir = tmp_path / "lib"
    with Library.open(lib_dir, old_spec) as lib:
        Indexer(lib, enc, workers=0).run([photos])
    window, ctl = make_gui(encoder=enc, spec=new_spec, start=False, library=lib_dir)
    ctl.start()
    qtbot.waitUntil(lambda: ctl._migrate_target is not None, timeout=10_000)
    assert "old-model" in window.banner.title.text()
    assert "magpie migrate" in window.banner.body.text()
    qtbot.mouseClick(window.banner._buttons["migrate"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ctl.searcher is not None, timeout=20_000)
    assert LibraryInfo.read(lib_dir).active == new_spec.fingerprint()
    assert ctl.library.vectors.count() == 5
