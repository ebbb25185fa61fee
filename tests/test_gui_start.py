"""Launch to the first answer (issue 12, item 4): the window is up and responsive before the
library is open and the model loaded; the model's load begun at launch (app/warm_start.py) is
the one used; a query typed meanwhile waits ("Getting ready…") and is answered once ready; a
failure in that background load reaches the person once, as one clear message. No timings:
the order of events, gated loads, and what was called."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import note, solid
from PySide6.QtCore import QEvent, QObject, QTimer

from app.gui import make_window
from app.indexing_controller import changed_results
from app.qt_bridge import Job
from app.settings import Settings
from app.warm_start import WarmStart
from fakes import FakeEncoder
from indexer.jobs import IndexReport
from indexer.specs import TINY_SHAPES
from indexer.weights import WeightsUnavailable

ROOT = Path(__file__).resolve().parent.parent
WAIT = 20_000  # ms: generous, the test box may be busy


class ClosableEncoder(FakeEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Gate:
    """A model load that waits until the test lets it finish."""

    def __init__(self, encoder=None, error: BaseException | None = None) -> None:
        self.encoder = encoder or ClosableEncoder()
        self.error = error
        self.release = threading.Event()
        self.started = threading.Event()
        self.calls = 0

    def __call__(self, spec):
        self.calls += 1
        self.started.set()
        assert self.release.wait(30), "the test never released the load"
        if self.error is not None:
            raise self.error
        return self.encoder


class Events(QObject):
    """Records the window's first paint among the other events of a launch."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Paint and "painted" not in self.log:
            self.log.append("painted")
        return False


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A library with a few pictures and a note, made (and closed) beforehand."""
    from indexer.indexing import Indexer
    from indexer.library import Library

    folder = tmp_path / "photos"
    solid(folder / "red.png", (230, 20, 20))
    solid(folder / "blue.png", (20, 20, 230))
    note(folder / "list.txt", "buy a ladder and blue paint")
    enc = FakeEncoder()
    spec = replace(TINY_SHAPES, embed_dim=enc.dim)
    with Library.open(tmp_path / "lib", spec) as lib:
        indexer = Indexer(lib, enc, workers=0, batch_size=8)
        indexer.add_roots([folder])
        indexer.run()
    return tmp_path / "lib"


def launch(qtbot, library: Path, warm: WarmStart, loads: list | None = None):
    """The window as run_gui makes it (shown, then started), with the warm start; any load
    of the controller's own is recorded in `loads` (a warm start that is used makes none)."""
    spec = replace(TINY_SHAPES, embed_dim=FakeEncoder().dim)
    own = loads if loads is not None else []

    def own_load(s, w):
        own.append(s)
        return ClosableEncoder()

    window, ctl = make_window(str(library), spec=spec, load_encoder=own_load,
                              settings=Settings(ocr=False, watch=False), warm=warm)
    qtbot.addWidget(window)
    ctl.ask_quit = lambda what: True
    log: list[str] = []
    events = Events(log)
    window.installEventFilter(events)
    window._test_events = events  # type: ignore[attr-defined]  (kept alive)
    window.resize(1000, 700)
    window.show()
    QTimer.singleShot(0, ctl.start)
    return window, ctl, log


def warm_for(library: Path, gate: Gate) -> WarmStart:
    spec = replace(TINY_SHAPES, embed_dim=FakeEncoder().dim)
    return WarmStart(library, choose=lambda path: spec, load=gate).start()


def test_the_window_paints_and_stays_responsive_before_the_model_is_loaded(qtbot, library):
    gate = Gate()
    loads: list = []
    window, ctl, log = launch(qtbot, library, warm_for(library, gate), loads)
    qtbot.waitUntil(lambda: "painted" in log, timeout=WAIT)
    assert gate.started.wait(10)
    qtbot.waitUntil(lambda: ctl.library is not None, timeout=WAIT)  # opened meanwhile
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=WAIT)  # the event loop turns
    timer.stop()
    assert ctl.searcher is None and not gate.release.is_set()  # the load is still held
    gate.release.set()
    qtbot.waitUntil(lambda: ctl.searcher is not None, timeout=WAIT)
    assert ctl.encoder is gate.encoder  # the warm start's encoder is the one used
    assert loads == [] and gate.calls == 1  # and the only load


def test_a_query_typed_before_ready_says_so_and_is_answered_once_ready(qtbot, library):
    gate = Gate()
    window, ctl, log = launch(qtbot, library, warm_for(library, gate))
    qtbot.waitUntil(lambda: "painted" in log, timeout=WAIT)
    qtbot.keyClicks(window.search, "blue paint")
    window.queryCommitted.emit("blue paint")  # Enter
    qtbot.waitUntil(lambda: window.page() == "message", timeout=WAIT)
    assert "Getting ready" in window.message.title.text()
    assert ctl.last_page is None
    gate.release.set()
    qtbot.waitUntil(lambda: ctl.last_page is not None and window.page() == "results",
                    timeout=WAIT)
    assert ctl.query.text == "blue paint"
    assert window.results_model.rowCount() > 0
    assert gate.encoder.texts_encoded > 0


def test_a_query_given_at_launch_runs_once_ready(qtbot, library):
    gate = Gate()
    window, ctl, log = launch(qtbot, library, warm_for(library, gate))
    QTimer.singleShot(0, lambda: ctl.search.run_query("ladder"))  # as run_gui(query=…) does
    qtbot.waitUntil(lambda: window.page() == "message", timeout=WAIT)
    assert window.search.text() == "ladder"
    gate.release.set()
    qtbot.waitUntil(lambda: ctl.last_page is not None and window.page() == "results",
                    timeout=WAIT)
    assert any(r.path.endswith("list.txt") for r in window.results_model.results())


def test_a_failed_warm_start_is_said_once_and_not_tried_again(qtbot, library):
    gate = Gate(error=WeightsUnavailable(TINY_SHAPES, "the weights file is not in the cache"))
    loads: list = []
    window, ctl, log = launch(qtbot, library, warm_for(library, gate), loads)
    qtbot.keyClicks(window.search, "ladder")
    gate.release.set()
    qtbot.waitUntil(lambda: ctl.model_error is not None, timeout=WAIT)
    assert "the weights file is not in the cache" in ctl.model_error
    assert window.banner.isVisible() and "isn't on this computer" in window.banner.title.text()
    assert loads == [] and gate.calls == 1  # reported from the warm start, not loaded again
    qtbot.waitUntil(lambda: window.page() == "message", timeout=WAIT)
    assert "needs the model" in window.message.title.text()


def test_a_warm_start_for_another_model_is_closed_and_the_right_one_loaded(qtbot, library):
    gate = Gate()
    other = replace(TINY_SHAPES, sha256="0" * 64)
    warm = WarmStart(library, choose=lambda path: other, load=gate).start()
    gate.release.set()
    loads: list = []
    window, ctl, log = launch(qtbot, library, warm, loads)
    qtbot.waitUntil(lambda: ctl.searcher is not None, timeout=WAIT)
    assert gate.encoder.closed and ctl.encoder is not gate.encoder
    assert [s.fingerprint() for s in loads] == [ctl.spec.fingerprint()]


def test_a_library_that_cannot_open_says_so_once_and_lets_the_warm_model_go(qtbot, tmp_path):
    folder = tmp_path / "stuff"  # holds other files: not made a library without asking
    note(folder / "diary.txt", "not a library")
    gate = Gate()
    gate.release.set()
    window, ctl, log = launch(qtbot, folder, warm_for(folder, gate))
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=WAIT)
    assert "not a Magpie library" in window.banner.title.text()
    qtbot.waitUntil(lambda: gate.encoder.closed, timeout=WAIT)
    assert ctl.searcher is None and not (folder / "magpie-library.json").exists()


def test_a_warm_start_without_a_light_runtime_leaves_the_load_to_the_window(qtbot, library):
    gate = Gate()
    gate.encoder = None  # what ready_for_text returns when no text export is cached
    gate.release.set()
    loads: list = []
    window, ctl, log = launch(qtbot, library, warm_for(library, gate), loads)
    qtbot.waitUntil(lambda: ctl.searcher is not None, timeout=WAIT)
    assert gate.calls == 1 and len(loads) == 1  # the window's own load, after it was shown


def test_warm_start_take_rules():
    spec = replace(TINY_SHAPES, embed_dim=16)
    made = ClosableEncoder()
    warm = WarmStart(None, choose=lambda p: spec, load=lambda s: made).start()
    assert warm.take(spec, "/a/chosen/weights.file") is None and made.closed  # another file
    made2 = ClosableEncoder()
    warm2 = WarmStart(None, choose=lambda p: spec, load=lambda s: made2).start()
    assert warm2.take(spec) is made2 and not made2.closed
    assert warm2.take(spec) is None  # once
    late = ClosableEncoder()
    gate = Gate(encoder=late)
    warm3 = WarmStart(None, choose=lambda p: spec, load=gate).start()
    assert gate.started.wait(10)
    warm3.discard()  # the window closed while it loaded: closed as soon as it is made
    gate.release.set()
    assert warm3.wait(10) and late.closed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_warm_start_gives_way_to_the_ui_thread_but_not_its_model_threads():
    """The imports that compete with the window's run niced; the model loads at the window's
    priority (ONNX Runtime's threads inherit it, and they answer every later query)."""
    import app.warm_start as ws

    def prio() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    seen = {}
    base = prio()
    spec = replace(TINY_SHAPES, embed_dim=16)
    made = ClosableEncoder()

    def choose(path):
        seen["choose"] = prio()
        return spec

    def load(s):
        seen["load"] = prio()
        return made

    warm = WarmStart(None, choose=choose, load=load).start()
    assert warm.take(spec) is made
    assert seen["choose"] == min(19, base + ws.WARM_NICENESS) and seen["load"] == base


def test_catch_up_that_changed_nothing_keeps_the_search_on_screen():
    assert not changed_results(IndexReport(unchanged=2000))
    assert not changed_results(IndexReport(errors=1))  # an unplugged drive: entries stay
    for field in ("added", "updated", "moved", "copied", "removed", "text_found"):
        assert changed_results(IndexReport(**{field: 1})), field
    assert changed_results(IndexReport(cancelled=True))


def test_catch_up_that_changed_nothing_does_not_search_again(qtbot, library):
    window, ctl = make_window(str(library), spec=replace(TINY_SHAPES, embed_dim=16),
                              load_encoder=lambda s, w: FakeEncoder(),
                              settings=Settings(ocr=False, watch=False))
    qtbot.addWidget(window)
    stale: list[int] = []
    ctl.jobs.resultsStale.connect(lambda: stale.append(1))
    job = Job("index", "catch up", lambda *a: None)
    job.result = IndexReport(unchanged=3)
    ctl.jobs._catch_up_finished(job)
    assert stale == []
    job.result = IndexReport(added=1)
    ctl.jobs._catch_up_finished(job)
    assert stale == [1]


def test_the_window_is_built_and_painted_without_the_heavy_modules():
    """What the UI thread imports before the first paint: no model runtime, no vector index,
    no library code, not even numpy (those load on the warm-start and job threads; the UI
    thread waiting on their import locks would wait on a niced thread)."""
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication(sys.argv[:1])\n"
        "from app.gui import make_window\n"
        "w, c = make_window('/nonexistent/lib')\n"
        "w.show(); app.processEvents()\n"
        "heavy = ['onnxruntime', 'torch', 'open_clip', 'hnswlib', 'indexer.library', 'numpy',\n"
        "         'indexer.search', 'indexer.lazy_encoder', 'indexer.text_runtime']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_gui_query_option_reaches_the_window(monkeypatch):
    import app.gui
    from app import cli

    got = {}
    monkeypatch.setattr(WarmStart, "start", lambda self: self)  # no real model load here
    monkeypatch.setattr(app.gui, "run_gui",
                        lambda library, query=None, warm=None: got.update(
                            library=library, query=query, warm=warm) or 0)
    assert cli.main(["gui", "--library", "/some/lib", "--query", "a dog on the beach"]) == 0
    assert got["library"] == "/some/lib" and got["query"] == "a dog on the beach"
    assert isinstance(got["warm"], WarmStart) and str(got["warm"].library) == "/some/lib"
    import app.warm_start as ws

    asked = []
    monkeypatch.setattr(ws, "ready_for_text", lambda spec, query=None: asked.append(query))
    got["warm"]._load("spec")  # the warm start encodes the query ahead as well
    assert asked == ["a dog on the beach"]


def test_the_encoder_remembers_a_query_so_the_same_search_never_runs_the_model_twice():
    from indexer.lazy_encoder import LazyEncoder

    inner = FakeEncoder()
    enc = LazyEncoder(TINY_SHAPES, TINY_SHAPES.bundled_path(), cache_dir=None,
                      load_full=lambda *a: inner)
    first = enc.encode_texts(["a dog on the beach"])
    first[0, 0] = 99.0  # the caller's copy: the remembered vector is not changed
    again = enc.encode_texts(["a dog on the beach"])
    assert inner.texts_encoded == 1 and again[0, 0] != 99.0
    assert (again == inner.encode_texts(["a dog on the beach"])).all()
    enc.encode_texts(["a", "b"])  # batches (notes while indexing) are not kept
    enc.encode_texts(["a", "b"])
    assert inner.texts_encoded == 1 + 1 + 4
    enc.close()
    with pytest.raises(RuntimeError):
        enc.encode_texts(["a dog on the beach"])


def test_fixed_texts_vectors_are_kept_and_read_back_not_recomputed(tmp_path):
    from indexer.lazy_encoder import LazyEncoder
    from indexer.search import NONSENSE_PROBES, nonsense_centre

    def encoder(inner):
        return LazyEncoder(TINY_SHAPES, TINY_SHAPES.bundled_path(), cache_dir=tmp_path,
                           load_full=lambda *a: inner)

    first_inner = FakeEncoder(dim=TINY_SHAPES.embed_dim)
    centre = nonsense_centre(encoder(first_inner))
    assert first_inner.texts_encoded == len(NONSENSE_PROBES)
    kept = list(tmp_path.rglob("*.npy"))
    assert len(kept) == 1 and TINY_SHAPES.fingerprint() in kept[0].name
    later = FakeEncoder(dim=TINY_SHAPES.embed_dim)
    assert (nonsense_centre(encoder(later)) == centre).all()  # another process: read back
    assert later.texts_encoded == 0
    kept[0].write_bytes(b"not a numpy file")  # damaged: made again, never trusted
    again = FakeEncoder(dim=TINY_SHAPES.embed_dim)
    assert (nonsense_centre(encoder(again)) == centre).all()
    assert again.texts_encoded == len(NONSENSE_PROBES)


def test_the_quick_look_at_a_library_finds_its_model_or_leaves_it_to_choose_spec(tmp_path):
    import indexer.library
    from app.warm_start import POINTER, active_spec, library_spec
    from app.wiring import choose_spec
    from indexer.library import Library
    from indexer.specs import VIT_B_32

    assert POINTER == indexer.library.POINTER
    with Library.open(tmp_path / "lib", TINY_SHAPES):
        pass
    assert active_spec(tmp_path / "lib") == TINY_SHAPES == choose_spec(tmp_path / "lib", None)
    assert library_spec(tmp_path / "lib") == TINY_SHAPES
    assert active_spec(tmp_path / "none") is None  # no library yet: the settings' model
    assert library_spec(tmp_path / "none") == choose_spec(tmp_path / "none", None) == VIT_B_32
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / POINTER).write_text("{not json")
    assert active_spec(tmp_path / "bad") is None  # damaged: choose_spec says what is wrong


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_opening_the_library_is_not_niced_like_indexing(qtbot, tmp_path, monkeypatch):
    """The first search waits for the library's open job: it runs at the window's priority;
    indexing jobs stay nicer than the UI."""
    import app.qt_bridge as qb
    from app.qt_bridge import JobRunner

    monkeypatch.setattr(qb, "JOB_NICENESS", 5)
    seen: dict[str, int] = {}

    def record(name):
        def fn(control, on_progress, on_error):
            seen[name] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        return fn

    base = os.getpriority(os.PRIO_PROCESS, 0)
    runner = JobRunner()
    runner.submit(Job("index", "index", record("index")))
    qtbot.waitUntil(lambda: "index" in seen and not runner.busy, timeout=WAIT)
    window, ctl = make_window(str(tmp_path / "lib"), spec=replace(TINY_SHAPES, embed_dim=16),
                              load_encoder=lambda s, w: FakeEncoder(),
                              settings=Settings(ocr=False, watch=False))
    qtbot.addWidget(window)
    import indexer.library

    real_open = indexer.library.Library.open

    def open_and_record(*a, **kw):
        seen["open"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        return real_open(*a, **kw)

    monkeypatch.setattr(indexer.library.Library, "open", open_and_record)
    ctl.start()
    qtbot.waitUntil(lambda: ctl.library is not None, timeout=WAIT)
    assert seen["index"] == min(19, base + 5) and seen["open"] == base
