"""The window follows the library's folders: it resumes an interrupted run on start, watches
the folders while it is open (real file operations in a temp dir), asks before quitting
mid-index and before making a library in a folder that holds other things; and the small
status fixes (paused, cancelled, error rows, title, the demo's first page).

Every wait is on a condition or an event, never on a guess at how long a busy box takes.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from fakes import FakeEncoder
from helpers import solid
from PySide6.QtGui import QFontMetrics

from app.gui import make_window
from app.settings import Settings
from app.wiring import Tuning
from indexer.indexing import Indexer
from indexer.library import Library
from indexer.specs import TINY_SHAPES
from ui.models import ErrorsModel, Roles, RootsModel

INLINE = Tuning(workers=0, batch_size=4)
WAIT = 30_000


class GatedEncoder(FakeEncoder):
    """Embeds only while `go` is set, so a test can hold a job mid-way without timing."""

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()
        self.go.set()
        self.waiting = threading.Event()  # set while a batch waits at the gate

    def encode_images(self, pixels):
        if not self.go.is_set():
            self.waiting.set()
            self.go.wait(60)
            self.waiting.clear()
        return super().encode_images(pixels)


def spec_for(enc) -> object:
    return replace(TINY_SHAPES, embed_dim=enc.dim)


def gui(qtbot, library: Path, enc, *, settings: Settings | None = None, start: bool = True):
    window, ctl = make_window(str(library), spec=spec_for(enc), load_encoder=lambda s, w: enc,
                              tuning=INLINE, settings=settings)
    qtbot.addWidget(window)
    window.resize(1100, 760)
    window.show()
    ctl.ask_quit = lambda what: True
    if start:
        ctl.start()
        qtbot.waitUntil(lambda: ctl.searcher is not None, timeout=WAIT)
    return window, ctl


def wait_idle(qtbot, ctl, timeout=WAIT) -> None:
    qtbot.waitUntil(lambda: not ctl.runner.busy and not ctl.runner.pending, timeout=timeout)


def pictures(folder: Path, n: int, start: int = 0) -> list[Path]:
    return [solid(folder / f"{i:03d}.png", (i * 3 % 255, 255 - i % 255, 40), (16, 16))
            for i in range(start, start + n)]


def interrupted_library(library: Path, folder: Path, enc) -> int:
    """A library whose first run stopped after one batch: returns the files left pending."""
    from indexer.jobs import JobControl

    control = JobControl()
    real = enc.encode_images

    def stop_after_first(pixels):
        control.cancel()
        return real(pixels)

    enc.encode_images = stop_after_first
    with Library.open(library, spec_for(enc)) as lib:
        Indexer(lib, enc, workers=0, batch_size=4, control=control).run([folder])
        left = lib.catalogue.counts()["pending"]
    del enc.encode_images
    return left


def root_row(window, path: Path) -> int:
    return window.root_paths().index(str(path))


# -- 1. resume on start ---------------------------------------------------------------------------
def test_start_resumes_an_interrupted_run_and_marks_the_folder_incomplete(qtbot, tmp_path):
    folder = tmp_path / "photos"
    pictures(folder, 30)
    enc = GatedEncoder()
    left = interrupted_library(tmp_path / "lib", folder, enc)
    assert 0 < left < 30

    enc.go.clear()  # hold the resumed run at its first batch
    window, ctl = gui(qtbot, tmp_path / "lib", enc)
    qtbot.waitUntil(enc.waiting.is_set, timeout=WAIT)
    title = f"Resuming: {left:,} files left from last time"
    qtbot.waitUntil(lambda: window.progress.title.text() == title, timeout=WAIT)
    assert window.progress.isVisible()
    row = window.roots_model.index(root_row(window, folder))
    assert row.data(Roles.Kind) == "busy"  # being resumed (marked incomplete before: below)
    assert row.data(Roles.Count) == 30 - left  # what is indexed so far

    enc.go.set()
    wait_idle(qtbot, ctl)
    qtbot.waitUntil(lambda: window.roots_model.index(0).data(Roles.Count) == 30, timeout=WAIT)
    assert ctl.library.reader().counts()["pending"] == 0
    assert window.roots_model.index(0).data(Roles.Kind) == ""  # complete again
    assert "30 items in 1 folder" in window.roots_panel.total.text()
    assert window.statusBar().currentMessage() == \
        f"Finished what was left from last time: {left:,} files indexed"


def test_incomplete_folder_is_marked_until_the_resume_finishes(qtbot, tmp_path):
    """Not busy yet (the model is still loading): the folder says how many files are left."""
    folder = tmp_path / "photos"
    pictures(folder, 12)
    enc = GatedEncoder()
    left = interrupted_library(tmp_path / "lib", folder, enc)
    release = threading.Event()

    def slow_model(spec, weights):
        release.wait(60)
        return enc

    window, ctl = make_window(str(tmp_path / "lib"), spec=spec_for(enc),
                              load_encoder=slow_model, tuning=INLINE)
    qtbot.addWidget(window)
    window.show()
    ctl.start()
    qtbot.waitUntil(lambda: window.has_roots(), timeout=WAIT)
    assert window.roots_model.index(0).data(Roles.Kind) == "incomplete"
    assert window.roots_model.state_text(str(folder), short=True) == f"{left:,} left"
    assert window.roots_model.index(0).data(Roles.Reason) == f"{left:,} left"
    assert f"incomplete — {left:,} left" in window.roots_model.index(0).data(Qt_ToolTip())
    qtbot.waitUntil(lambda: window.progress.isVisible(), timeout=WAIT)  # waits for the model
    assert window.progress.title.text() == f"Resuming: {left:,} files left from last time"
    assert "model" in window.progress.detail.text()
    release.set()
    wait_idle(qtbot, ctl)
    qtbot.waitUntil(lambda: window.roots_model.index(0).data(Roles.Kind) == "", timeout=WAIT)


def test_quitting_while_indexing_asks_and_nothing_is_lost(qtbot, tmp_path):
    folder = tmp_path / "photos"
    pictures(folder, 40)
    enc = GatedEncoder()
    window, ctl = gui(qtbot, tmp_path / "lib", enc)
    asked: list[str] = []
    answer = {"quit": False}
    ctl.ask_quit = lambda what: asked.append(what) or answer["quit"]
    enc.go.clear()
    ctl.add_paths([str(folder)])
    qtbot.waitUntil(enc.waiting.is_set, timeout=WAIT)

    assert not window.close()  # "Keep indexing": the window stays, the job goes on
    assert asked and "photos" in asked[0]
    assert window.isVisible() and ctl.runner.busy

    answer["quit"] = True  # "Quit and resume later"
    enc.go.set()
    assert window.close()
    assert len(asked) == 2
    assert not ctl.runner.busy
    with Library.open(tmp_path / "lib", spec_for(enc)) as lib:
        counts = lib.catalogue.counts()
    assert counts["images"] + counts["pending"] == 40  # every file indexed or waiting

    _window2, ctl2 = gui(qtbot, tmp_path / "lib", enc)  # the next start finishes them
    wait_idle(qtbot, ctl2)
    assert ctl2.library.reader().counts()["images"] == 40
    assert ctl2.library.reader().counts()["pending"] == 0


def test_quitting_when_idle_or_only_following_does_not_ask(qtbot, tmp_path):
    enc = FakeEncoder()
    window, ctl = gui(qtbot, tmp_path / "lib", enc)
    ctl.ask_quit = lambda what: pytest.fail("asked with nothing being indexed")
    assert window.close()


# -- 2. following the folders ---------------------------------------------------------------------
def indexed_paths(ctl) -> set[str]:
    reader = ctl.library.reader()
    return {os.fsdecode(r[0]) for r in reader.db.execute(
        "SELECT path FROM files WHERE state='indexed'")}


def test_a_new_picture_in_a_watched_folder_becomes_searchable(qtbot, tmp_path):
    from test_gui import search

    folder = tmp_path / "photos"
    pictures(folder, 3)
    enc = FakeEncoder()
    window, ctl = gui(qtbot, tmp_path / "lib", enc)
    ctl.add_paths([str(folder)])
    wait_idle(qtbot, ctl)
    qtbot.waitUntil(lambda: ctl.follower.watching == [str(folder)], timeout=WAIT)

    new = solid(folder / "tangerine.png", (250, 140, 10))
    qtbot.waitUntil(lambda: str(new) in indexed_paths(ctl), timeout=WAIT)
    results = search(qtbot, window, ctl, "tangerine")
    assert results[0].path == str(new)
    qtbot.waitUntil(lambda: window.roots_model.index(0).data(Roles.Count) == 4, timeout=WAIT)

    new.unlink()  # deleted: it leaves the index
    qtbot.waitUntil(lambda: str(new) not in indexed_paths(ctl), timeout=WAIT)
    assert len(indexed_paths(ctl)) == 3


def test_changes_wait_behind_a_running_job_never_two_writers(qtbot, tmp_path):
    watched, big = tmp_path / "watched", tmp_path / "big"
    pictures(watched, 2)
    pictures(big, 24)
    enc = GatedEncoder()
    _window, ctl = gui(qtbot, tmp_path / "lib", enc)
    ctl.add_paths([str(watched)])
    wait_idle(qtbot, ctl)
    qtbot.waitUntil(lambda: ctl.follower.watching == [str(watched)], timeout=WAIT)

    enc.go.clear()
    ctl.add_paths([str(big)])
    qtbot.waitUntil(enc.waiting.is_set, timeout=WAIT)
    first = solid(watched / "late1.png", (1, 2, 3))
    qtbot.waitUntil(lambda: any(j.kind == "update" for j in ctl.runner.pending), timeout=WAIT)
    assert ctl.runner.current.kind == "index"  # the update waits its turn
    second = solid(watched / "late2.png", (3, 2, 1))
    qtbot.waitUntil(lambda: ctl.follower.batches >= 2, timeout=WAIT)
    updates = [j for j in ctl.runner.pending if j.kind == "update"]
    assert len(updates) == 1  # the second batch joined the waiting update
    enc.go.set()
    wait_idle(qtbot, ctl)
    assert {str(first), str(second)} <= indexed_paths(ctl)
    assert ctl.library.reader().counts()["images"] == 28


def test_cancel_stops_indexing_but_keeps_the_watchers_changes(qtbot, tmp_path):
    watched, big = tmp_path / "watched", tmp_path / "big"
    pictures(watched, 1)
    pictures(big, 24)
    enc = GatedEncoder()
    window, ctl = gui(qtbot, tmp_path / "lib", enc)
    ctl.add_paths([str(watched)])
    wait_idle(qtbot, ctl)
    qtbot.waitUntil(lambda: ctl.follower.watching == [str(watched)], timeout=WAIT)
    enc.go.clear()
    ctl.add_paths([str(big)])
    qtbot.waitUntil(enc.waiting.is_set, timeout=WAIT)
    late = solid(watched / "late.png", (1, 2, 3))
    qtbot.waitUntil(lambda: any(j.kind == "update" for j in ctl.runner.pending), timeout=WAIT)
    window.progress.cancel_button.click()
    enc.go.set()
    wait_idle(qtbot, ctl)
    assert ctl.last_report.cancelled
    assert str(late) in indexed_paths(ctl)


def test_a_watched_change_never_resumes_cancelled_work_out_of_sight(qtbot, tmp_path):
    """The person cancelled the resume: a new file is indexed, the files left stay left
    (they resume visibly at the next start), nothing runs unseen."""
    folder = tmp_path / "photos"
    pictures(folder, 30)
    enc = GatedEncoder()
    left = interrupted_library(tmp_path / "lib", folder, enc)
    enc.go.clear()
    window, ctl = gui(qtbot, tmp_path / "lib", enc)
    qtbot.waitUntil(enc.waiting.is_set, timeout=WAIT)
    window.progress.cancel_button.click()  # the resume and the catch-up behind it
    enc.go.set()
    wait_idle(qtbot, ctl)
    still = ctl.library.reader().counts()["pending"]
    assert 0 < still <= left
    qtbot.waitUntil(lambda: ctl.follower.watching == [str(folder)], timeout=WAIT)
    new = solid(folder / "new.png", (3, 3, 3))
    qtbot.waitUntil(lambda: str(new) in indexed_paths(ctl), timeout=WAIT)
    wait_idle(qtbot, ctl)
    assert ctl.library.reader().counts()["pending"] == still
    assert not window.progress.isVisible()


def test_a_large_watched_change_shows_its_progress(qtbot, tmp_path, monkeypatch):
    import app.indexing_controller as ic

    monkeypatch.setattr(ic, "VISIBLE_UPDATE", 2)
    folder = tmp_path / "photos"
    pictures(folder, 1)
    enc = GatedEncoder()
    window, ctl = gui(qtbot, tmp_path / "lib", enc)
    ctl.add_paths([str(folder)])
    wait_idle(qtbot, ctl)
    qtbot.waitUntil(lambda: ctl.follower.watching == [str(folder)], timeout=WAIT)
    enc.go.clear()
    pictures(folder / "import", 6, start=100)  # a camera import
    qtbot.waitUntil(enc.waiting.is_set, timeout=WAIT)
    qtbot.waitUntil(lambda: window.progress.isVisible(), timeout=WAIT)
    assert window.progress.title.text() == "Indexing new and changed files"
    enc.go.set()
    wait_idle(qtbot, ctl)
    assert not window.progress.isVisible()
    assert ctl.library.reader().counts()["images"] == 7


def test_an_unplugged_folder_keeps_its_entries_and_shows_offline(qtbot, tmp_path):
    folder = tmp_path / "drive" / "photos"
    pictures(folder, 3)
    enc = FakeEncoder()
    window, ctl = gui(qtbot, tmp_path / "lib", enc)
    ctl.follower.check_s = 0.2
    ctl.add_paths([str(folder)])
    wait_idle(qtbot, ctl)
    qtbot.waitUntil(lambda: ctl.follower.watching == [str(folder)], timeout=WAIT)

    away = tmp_path / "drive" / "unplugged"
    folder.rename(away)  # as good as an unplugged drive, for the folder's path
    qtbot.waitUntil(lambda: window.roots_model.index(0).data(Roles.Kind) == "offline",
                    timeout=WAIT)
    assert window.roots_model.index(0).data(Roles.Count) == 3  # entries kept
    assert window.roots_model.index(0).data(Roles.Reason) == "offline"
    assert "entries are kept" in window.roots_model.index(0).data(Qt_ToolTip())

    away.rename(folder)  # plugged in again, with a picture added meanwhile
    solid(folder / "while-away.png", (9, 9, 9))
    qtbot.waitUntil(lambda: window.roots_model.index(0).data(Roles.Kind) == "", timeout=WAIT)
    qtbot.waitUntil(lambda: str(folder / "while-away.png") in indexed_paths(ctl), timeout=WAIT)
    wait_idle(qtbot, ctl)
    assert len(indexed_paths(ctl)) == 4


def test_watching_follows_the_setting_and_can_be_toggled_live(qtbot, tmp_path):
    folder = tmp_path / "photos"
    pictures(folder, 2)
    enc = FakeEncoder()
    _window, ctl = gui(qtbot, tmp_path / "lib", enc, settings=Settings(watch=False))
    ctl.add_paths([str(folder)])
    wait_idle(qtbot, ctl)
    assert not ctl.watching and ctl.follower.watching == []

    solid(folder / "unseen.png", (5, 5, 5))  # not followed: stays out until watching is on
    ctl.set_watching(True)
    assert Settings.load().watch is True
    qtbot.waitUntil(lambda: ctl.follower.watching == [str(folder)], timeout=WAIT)
    qtbot.waitUntil(lambda: str(folder / "unseen.png") in indexed_paths(ctl), timeout=WAIT)

    ctl.set_watching(False)
    assert Settings.load().watch is False
    qtbot.waitUntil(lambda: ctl.follower.watching == [], timeout=WAIT)


def test_the_library_inside_a_watched_folder_is_not_followed(qtbot, tmp_path):
    """The library's own writes never feed the watcher (no update loop)."""
    folder = tmp_path / "home"
    pictures(folder, 2)
    enc = FakeEncoder()
    _window, ctl = gui(qtbot, folder / "magpie-lib", enc)
    seen: list[str] = []
    ctl.follower.changed.connect(seen.extend)
    ctl.add_paths([str(folder)])
    wait_idle(qtbot, ctl)
    qtbot.waitUntil(lambda: ctl.follower.watching == [str(folder)], timeout=WAIT)
    first = solid(folder / "first.png", (7, 7, 7))  # indexing it writes to the library
    qtbot.waitUntil(lambda: str(first) in indexed_paths(ctl), timeout=WAIT)
    wait_idle(qtbot, ctl)
    # events are delivered in order: once the next change is seen, any the library's writes
    # had caused are seen too
    second = solid(folder / "second.png", (9, 9, 9))
    qtbot.waitUntil(lambda: str(second) in seen, timeout=WAIT)
    assert str(first) in seen
    assert not [p for p in seen if p.startswith(str(folder / "magpie-lib"))]


# -- 3. never create a library without asking ------------------------------------------------------
def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_open_library_on_a_photo_folder_asks_and_declining_changes_nothing(qtbot, tmp_path):
    photos = tmp_path / "Photos"
    pictures(photos, 2)
    before = listing(photos)
    enc = FakeEncoder()
    window, ctl = gui(qtbot, tmp_path / "lib", enc)
    asked: list[tuple[Path, list[str]]] = []
    ctl.lib.confirm_create = lambda path, entries: asked.append((path, entries)) or False
    window.choose_library_folder = lambda start: str(photos)
    window.library_action.trigger()
    assert asked and asked[0][0] == photos and "000.png" in asked[0][1]
    assert listing(photos) == before  # declined: nothing written
    assert ctl.library_path == tmp_path / "lib"
    assert Settings.load().library == ""

    ctl.lib.confirm_create = lambda path, entries: True
    window.library_action.trigger()
    qtbot.waitUntil(lambda: ctl.library is not None and ctl.library_path == photos,
                    timeout=WAIT)
    assert (photos / "magpie-library.json").exists()
    assert set(before) <= set(listing(photos))


def test_an_empty_folder_or_a_library_opens_without_a_question(qtbot, tmp_path):
    empty = tmp_path / "NewLib"
    empty.mkdir()
    enc = FakeEncoder()
    _window, ctl = gui(qtbot, tmp_path / "lib", enc)
    ctl.lib.confirm_create = lambda path, entries: pytest.fail("asked for an empty folder")
    assert ctl.open_folder_as_library(empty, spec_for(enc))
    qtbot.waitUntil(lambda: ctl.library is not None and ctl.library_path == empty, timeout=WAIT)
    assert ctl.open_folder_as_library(tmp_path / "lib", spec_for(enc))  # an existing library
    qtbot.waitUntil(lambda: ctl.library is not None and ctl.library_path == tmp_path / "lib",
                    timeout=WAIT)


def test_starting_on_a_non_library_folder_offers_to_create_it_only_with_consent(qtbot, tmp_path):
    photos = tmp_path / "Photos"
    pictures(photos, 2)
    before = listing(photos)
    enc = FakeEncoder()
    window, ctl = gui(qtbot, photos, enc, start=False)
    ctl.start()
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=WAIT)
    assert "not a Magpie library" in window.banner.title.text()
    assert listing(photos) == before
    ctl.lib.confirm_create = lambda path, entries: False
    window.banner.button_for("create-here").click()
    assert listing(photos) == before
    ctl.lib.confirm_create = lambda path, entries: True
    window.banner.button_for("create-here").click()
    qtbot.waitUntil(lambda: ctl.searcher is not None, timeout=WAIT)
    assert (photos / "magpie-library.json").exists()


# -- 4. the small ones ------------------------------------------------------------------------------
def test_paused_progress_drops_the_old_speed_and_time_left(qtbot):
    from ui.widgets import ProgressPanel

    panel = ProgressPanel()
    qtbot.addWidget(panel)
    panel.start("Indexing photos")
    panel.update_progress("Indexing photos", 68, 200, 15.0, 9.0, "/p/068.png", 0)
    assert "15 files/s" in panel.detail.text() and "left" in panel.detail.text()
    panel.set_paused(True)
    assert panel.title.text() == "Paused"
    assert "files/s" not in panel.detail.text() and "left" not in panel.detail.text()
    assert panel.detail.text() == "68 of 200 files"
    panel.update_progress("Indexing photos", 70, 200, 14.0, 8.0, "/p/070.png", 0)  # late tick
    assert "files/s" not in panel.detail.text()
    panel.set_paused(False)
    assert panel.title.text() == "Indexing photos" and "files/s" in panel.detail.text()


def test_a_cancelled_run_says_how_far_it_got(qtbot, tmp_path):
    folder = tmp_path / "photos"
    pictures(folder, 40)
    enc = GatedEncoder()
    window, ctl = gui(qtbot, tmp_path / "lib", enc)
    enc.go.clear()
    ctl.add_paths([str(folder)])
    qtbot.waitUntil(enc.waiting.is_set, timeout=WAIT)
    window.progress.cancel_button.click()
    enc.go.set()
    wait_idle(qtbot, ctl)
    done = ctl.library.reader().counts()["images"]
    assert ctl.last_report.cancelled and ctl.last_report.embedded_files == done
    assert window.statusBar().currentMessage() == \
        f"Cancelled — {done:,} of 40 done; the rest resumes next time"


def test_error_rows_show_the_full_path_elided_in_the_middle(qtbot):
    from ui.delegates import ErrorDelegate, error_row_texts

    model = ErrorsModel()
    path = "/home/someone/Pictures/2019/holidays/a-very-long-folder-name/IMG_4032.jpg"
    model.add([(path, "not an image (cannot decode)")])
    idx = model.index(0)
    assert path in idx.data()
    assert idx.data(Roles.Path) == path and path in idx.data(Qt_ToolTip())

    from ui.widgets import ErrorPanel

    panel = ErrorPanel(model)
    qtbot.addWidget(panel)
    assert isinstance(panel.view.itemDelegate(), ErrorDelegate)
    fm = QFontMetrics(panel.view.font())
    shown, tail = error_row_texts(fm, path, "not an image (cannot decode)", 360)
    assert shown.startswith("/home/") and shown.endswith("IMG_4032.jpg") and "…" in shown
    assert tail.startswith("  —  not an")  # the reason follows (elided at the end)
    shown, _ = error_row_texts(fm, path, "x", 4000)
    assert shown == path  # room enough: the whole path
    panel.resize(500, 200)
    panel.show()
    panel.toggle.click()
    qtbot.waitUntil(lambda: panel.view.isVisible())
    qtbot.waitUntil(lambda: 0 < panel.view.visualRect(idx).width()
                    <= panel.view.viewport().width())
    assert panel.view.horizontalScrollBar().maximum() == 0  # elided, not scrolled sideways


def Qt_ToolTip():  # noqa: N802 - a role constant, read as one
    from PySide6.QtCore import Qt

    return Qt.ItemDataRole.ToolTipRole


def test_roots_model_states_are_told_apart():
    model = RootsModel()
    model.set_roots([("/a", 5), ("/b", 2), ("/c", 0)])
    model.set_states({"/b": 7}, {"/c"})
    kinds = [model.index(i).data(Roles.Kind) for i in range(3)]
    assert kinds == ["", "incomplete", "offline"]
    assert "incomplete — 7 left" in model.index(1).data(Qt_ToolTip())
    assert "offline" in model.index(2).data(Qt_ToolTip())
    assert model.state_text("/a") == ""
    model.set_busy(["/b"])
    assert model.index(1).data(Roles.Kind) == "busy"  # being indexed wins over incomplete


def test_sidebar_counts_stay_in_view_when_the_panel_narrows(qtbot):
    """After a restart the window settles to its saved size once the folders are listed: rows
    laid out for the wider panel hid the count behind a scroll bar (only "1" of "1,682")."""
    from ui.mainwindow import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.resize(1280, 820)
    window.show()
    window.set_roots([("/media/photos/Holiday Photos", 1682)])
    view = window.roots_panel.view
    qtbot.waitUntil(lambda: view.visualRect(window.roots_model.index(0)).width() > 0)
    window.splitter.setSizes([200, 600, 300])
    qtbot.waitUntil(lambda: view.viewport().width() < 200)
    qtbot.waitUntil(lambda: view.visualRect(window.roots_model.index(0)).right()
                    < view.viewport().width(), timeout=5000)
    assert view.horizontalScrollBar().maximum() == 0


TITLE_PROBE = """
import subprocess
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from app.gui import configure_app
from ui.mainwindow import MainWindow

app = QApplication([])
configure_app(app)
w = MainWindow()
w.setWindowTitle("Magpie — MyPhotos")
w.show()

def probe():
    out = subprocess.run(["xdotool", "search", "--name", "MyPhotos", "getwindowname", "%@"],
                         capture_output=True, text=True).stdout
    print("TITLE=" + out.strip())
    app.quit()

QTimer.singleShot(1500, probe)
app.exec()
"""


def test_the_title_names_magpie_once(qtbot, tmp_path):
    enc = FakeEncoder()
    window, _ctl = gui(qtbot, tmp_path / "MyPhotos", enc)
    assert window.windowTitle() == "Magpie — MyPhotos"


@pytest.mark.skipif(not (shutil.which("xvfb-run") and shutil.which("xdotool")),
                    reason="needs an X server (xvfb-run) and xdotool to read the real title")
def test_the_title_a_window_manager_shows_names_magpie_once(tmp_path):
    """Offscreen Qt never formats titles; under X11 it appends the application display name,
    which made "Magpie — lib — Magpie"."""
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(Path(__file__).parent.parent))
    out = subprocess.run(["xvfb-run", "-a", sys.executable, "-c", TITLE_PROBE], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    titles = [line for line in out.stdout.splitlines() if line.startswith("TITLE=")]
    assert titles == ["TITLE=Magpie — MyPhotos"], out.stdout + out.stderr


def test_the_demo_start_never_shows_the_drop_a_folder_page(qtbot, tiny_encoder, isolated_dirs):
    window, ctl = make_window(None, load_encoder=lambda s, w: tiny_encoder, demo_images=8)
    qtbot.addWidget(window)
    window.show()
    ctl.start()
    qtbot.waitUntil(lambda: ctl.searcher is not None, timeout=WAIT)
    mine = isolated_dirs.parent / "mine"
    pictures(mine, 2)
    ctl.add_paths([str(mine)])
    wait_idle(qtbot, ctl)
    pages: list[str] = []
    window.stack.currentChanged.connect(lambda _i: pages.append(window.page()))
    ctl.start_demo()
    assert window.page() == "message" and "demo" in window.message.title.text().lower()
    assert str(mine) not in window.root_paths()  # the old library's folders are gone
    wait_idle(qtbot, ctl)
    qtbot.waitUntil(lambda: window.page() == "results", timeout=WAIT)
    assert "empty" not in pages, pages
