"""Preferences and About, driven through the real dialogs (pytest-qt, offscreen).

Models are faked by an encoder of the right width for whichever spec is asked for, so a model
change runs the real side-by-side migration job in seconds.
"""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fakes import FakeEncoder
from helpers import note, solid
from PySide6.QtCore import Qt

from app.gui import make_window
from app.settings import Settings
from app.wiring import Tuning
from indexer.library import LibraryInfo
from indexer.search import SearchRequest
from indexer.specs import MOBILECLIP_S2, SPECS, TINY_DIGITS, TINY_SHAPES, VIT_B_32, VIT_L_14
from ui.widgets.preferences import PreferencesDialog

INLINE = Tuning(workers=0, batch_size=8)


class Models:
    """load_encoder for the window: a fake of the spec's width; counts loads per model and can
    hold one model's image batches until released (to cancel a migration mid-way)."""

    def __init__(self) -> None:
        self.loads: list[str] = []
        self.hold: str | None = None
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, spec, weights):
        self.loads.append(spec.name)
        enc = FakeEncoder(dim=spec.embed_dim)
        if spec.name == self.hold:
            original = enc.encode_images

            def held(pixels):
                self.entered.set()
                self.release.wait(30)
                return original(pixels)

            enc.encode_images = held
        return enc


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    root = tmp_path / "pictures"
    for i in range(30):
        solid(root / f"{i:02d}.png", (i * 8, 255 - i * 8, 90), (24, 24))
    note(root / "list.txt", "buy a ladder and blue paint")
    return root


@pytest.fixture
def gui(qtbot, tmp_path):
    models = Models()

    def make(library=None, spec=TINY_SHAPES):
        window, ctl = make_window(str(library or tmp_path / "lib"), spec=spec,
                                  load_encoder=models, tuning=INLINE)
        qtbot.addWidget(window)
        window.resize(1200, 800)
        window.show()
        ctl.confirm = lambda title, text: True
        ctl.start()
        qtbot.waitUntil(lambda: ctl.searcher is not None, timeout=10_000)
        return window, ctl

    make.models = models
    return make


def wait_idle(qtbot, ctl, timeout=30_000) -> None:
    qtbot.waitUntil(lambda: not ctl.runner.busy and not ctl.runner.pending, timeout=timeout)


def accept_with(ctl, edit):
    """Make the next Preferences dialog run `edit(dialog)` and be accepted."""
    seen = []

    def run(dialog: PreferencesDialog) -> bool:
        seen.append(dialog)
        edit(dialog)
        return True

    ctl.prefs.run_dialog = run
    return seen


def choose(combo, data) -> None:
    i = combo.findData(data)
    assert i >= 0, data
    combo.setCurrentIndex(i)


# -- the dialog -------------------------------------------------------------------------------
def test_model_list_shows_every_pinned_model_with_size_speed_and_quality(qtbot, gui):
    window, ctl = gui()
    dialog = ctl.prefs.make_dialog()
    qtbot.addWidget(dialog)
    combo = dialog.model
    names = [combo.itemData(i) for i in range(combo.count()) if combo.itemData(i)]
    # every user model first, the bundled ones after, marked as demo models
    users = [s.name for s in SPECS.values() if s.for_users]
    assert {VIT_B_32.name, VIT_L_14.name, MOBILECLIP_S2.name} <= set(users)
    assert names[:len(users)] == users
    assert set(names[len(users):]) == {TINY_SHAPES.name, TINY_DIGITS.name}
    texts = {combo.itemData(i): combo.itemText(i) for i in range(combo.count())}
    assert "(demo)" in texts[TINY_DIGITS.name] and "(demo)" not in texts[VIT_B_32.name]
    assert "(in use)" in texts[TINY_SHAPES.name]  # the open library's model
    for spec in (VIT_B_32, VIT_L_14, MOBILECLIP_S2):
        # the figures come from the spec (bench/model_speed.py, published sources)
        assert f"{spec.speed.images_per_s:g} images/s" in texts[spec.name]
        assert f"{spec.size_mb:,.0f} MB" in texts[spec.name]
        choose(combo, spec.name)
        details = dialog.model_details.text()
        assert f"{spec.speed.images_per_s} images/s per CPU core" in details
        assert spec.quality.source.split()[0] in details  # the source, as a link
        assert f"{100 * spec.quality.imagenet_top1:.2f}".rstrip("0").rstrip(".") in details
        assert dialog.model_note.isVisibleTo(dialog)  # says what OK will do
    choose(combo, TINY_SHAPES.name)
    assert not dialog.model_note.isVisibleTo(dialog)


def test_settings_persist_and_the_device_applies_live(qtbot, gui, isolated_dirs):
    window, ctl = gui()
    watched, ocr = [], []
    ctl.prefs.watchChanged.connect(watched.append)
    ctl.prefs.ocrChanged.connect(ocr.append)
    loads = len(gui.models.loads)

    def edit(d):
        choose(d.device, "cpu")
        d.watch.setChecked(False)
        d.ocr.setChecked(False)

    accept_with(ctl, edit)
    window.preferences_action.trigger()  # Ctrl+, and the menu both trigger this action
    saved = Settings.load()
    assert (saved.device, saved.watch, saved.ocr) == ("cpu", False, False)
    assert watched == [False] and ocr == [False]
    assert ctl.lib.settings.device == "cpu"  # the live settings the controllers read
    # the model loads again for the new device; nothing else changed
    qtbot.waitUntil(lambda: len(gui.models.loads) == loads + 1 and ctl.searcher is not None,
                    timeout=10_000)
    assert saved.model == VIT_B_32.name  # a demo model never becomes the default
    assert LibraryInfo.read(ctl.library_path).active == TINY_SHAPES.fingerprint()

    # cancelling the dialog changes nothing
    ctl.prefs.run_dialog = lambda d: (choose(d.device, "auto"), False)[1]
    window.preferences_action.trigger()
    assert Settings.load().device == "cpu"


def test_the_device_reaches_the_real_model_loader(isolated_dirs):
    from app.wiring import load_model

    settings = Settings(device="cpu")
    enc = load_model(TINY_SHAPES, settings=settings)
    try:
        assert enc._device_pref == "cpu" and enc.device == "cpu"
    finally:
        enc.close()
    enc = load_model(TINY_SHAPES, settings=Settings(device="auto"))
    assert enc._device_pref is None  # "auto": pick_device decides (a GPU when there is one)
    enc.close()


def test_a_bad_device_in_settings_falls_back_to_auto(isolated_dirs):
    Settings.path().parent.mkdir(parents=True, exist_ok=True)
    Settings.path().write_text('{"device": "tpu", "ocr": false}')
    s = Settings.load()
    assert s.device == "auto" and s.ocr is False


def test_changing_the_model_migrates_in_the_background_and_switches(qtbot, gui, pictures):
    window, ctl = gui()
    ctl.add_paths([str(pictures)])
    wait_idle(qtbot, ctl)
    old = ctl.searcher
    gui.models.hold = TINY_DIGITS.name
    accept_with(ctl, lambda d: choose(d.model, TINY_DIGITS.name))
    window.preferences_action.trigger()

    # a job on the indexing queue, with its progress panel
    qtbot.waitUntil(lambda: ctl.runner.busy and ctl.runner.current.kind == "migrate",
                    timeout=10_000)
    assert window.progress.isVisible()
    assert "tiny-digits" in window.progress.title.text()
    assert gui.models.entered.wait(10)
    # meanwhile the old library keeps answering with the old model
    assert ctl.searcher is old and ctl.spec.name == TINY_SHAPES.name
    assert old.run(SearchRequest("ladder paint")).results
    gui.models.release.set()

    qtbot.waitUntil(lambda: ctl.spec is not None and ctl.spec.name == TINY_DIGITS.name
                    and ctl.searcher is not None, timeout=30_000)
    assert LibraryInfo.read(ctl.library_path).active == TINY_DIGITS.fingerprint()
    assert ctl.library.vectors.count() == 31
    assert ctl.searcher.run(SearchRequest("ladder paint")).results
    assert Settings.load().model == VIT_B_32.name  # demo models are not made the default


def test_cancelling_the_model_change_keeps_the_old_library(qtbot, gui, pictures):
    window, ctl = gui()
    ctl.add_paths([str(pictures)])
    wait_idle(qtbot, ctl)
    before = LibraryInfo.read(ctl.library_path).active
    gui.models.hold = TINY_DIGITS.name
    accept_with(ctl, lambda d: choose(d.model, TINY_DIGITS.name))
    window.preferences_action.trigger()
    assert gui.models.entered.wait(10)
    qtbot.mouseClick(window.progress.cancel_button, Qt.MouseButton.LeftButton)
    gui.models.release.set()
    wait_idle(qtbot, ctl)
    assert LibraryInfo.read(ctl.library_path).active == before
    assert ctl.spec.name == TINY_SHAPES.name and ctl.searcher is not None
    assert ctl.searcher.run(SearchRequest("ladder paint")).results
    assert window.banner.isVisibleTo(window) and "paused" in window.banner.title.text()
    assert ctl.library.vectors.count() == 31


def test_choosing_another_library_location_opens_it(qtbot, gui, tmp_path, isolated_dirs):
    window, ctl = gui()
    other = tmp_path / "elsewhere"

    def edit(d):
        d.pick_folder = lambda start: str(other)
        qtbot.mouseClick(d.choose_library, Qt.MouseButton.LeftButton)
        assert d.library.text() == str(other)

    accept_with(ctl, edit)
    window.preferences_action.trigger()
    qtbot.waitUntil(lambda: ctl.library is not None and ctl.library_path == other,
                    timeout=10_000)
    assert Settings.load().library == str(other)


# -- About --------------------------------------------------------------------------------
def test_about_names_the_model_runtime_and_licences(qtbot, gui):
    from importlib import metadata

    window, ctl = gui()
    shown = []
    ctl.show_dialog = lambda d: shown.append(d)
    window.about_action.trigger()  # Help → About Magpie
    assert len(shown) == 1
    about = shown[0]
    fields = {k: v.text() for k, v in about.fields.items()}
    assert fields["Model"] == TINY_SHAPES.name
    assert fields["Architecture"] == TINY_SHAPES.arch
    assert fields["Pretrained"] == TINY_SHAPES.pretrained
    assert fields["Weights sha256"] == TINY_SHAPES.sha256
    assert "Magpie" in fields["Model licence"]
    assert "CPU" in fields["Pictures"]
    assert about.title.text() == f"Magpie {metadata.version('magpie')}"
    assert about.licence_of("open_clip_torch") == "MIT"
    assert about.licence_of("torch").startswith("Apache-2.0")
    assert about.licence_of("hnswlib") == "not stated in its package metadata"


def test_about_gives_a_download_models_licence_from_its_pin():
    from app.about import model_rows, runtime_rows

    rows = dict(model_rows(MOBILECLIP_S2))
    assert rows["Model licence"] == "apple-amlr"
    assert MOBILECLIP_S2.revision in rows["Source"]

    class Lazy:
        loaded, runtime = "text", "onnxruntime 1.32.0"

    rt = dict(runtime_rows(Lazy(), "CPU"))
    assert rt["Text queries"].startswith("ONNX Runtime 1.32.0")
    assert "loaded when pictures are indexed" in rt["Pictures"]


def test_about_says_the_int8_model_embeds_pictures_on_onnx_runtime():
    from app.about import runtime_rows
    from indexer.specs import VIT_B_32_INT8

    class Lazy:
        loaded, runtime, image_runtime, spec = "text", "onnxruntime 1.32.0", "torch", VIT_B_32_INT8

    assert "ONNX Runtime int8" in dict(runtime_rows(Lazy(), "CPU"))["Pictures"]
    Lazy.loaded, Lazy.image_runtime = "onnx", "onnxruntime 1.32.0 int8 49d7247c2361"
    assert dict(runtime_rows(Lazy(), "CPU"))["Pictures"] == "ONNX Runtime 1.32.0 int8 on the CPU"


def test_the_gpu_choice_says_when_there_is_none(qtbot, gui, monkeypatch):
    from app import preferences

    window, ctl = gui()
    monkeypatch.setattr(preferences, "gpu_found", lambda: False)
    d = ctl.prefs.make_dialog()
    qtbot.addWidget(d)
    assert "none found" in d.device.itemText(d.device.findData("cuda"))
    monkeypatch.setattr(preferences, "gpu_found", lambda: True)
    d2 = ctl.prefs.make_dialog()
    qtbot.addWidget(d2)
    assert d2.device.itemText(d2.device.findData("cuda")) == "GPU (CUDA)"


def test_the_multilingual_model_is_offered_with_its_multilingual_figure(qtbot, gui):
    """SigLIP i18n in the list like the others, and its details say what sets it apart: the
    published multilingual retrieval figure and its source, and its tokenizer's pin."""
    from app.about import model_rows
    from indexer.specs import SIGLIP_I18N as spec

    window, ctl = gui()
    dialog = ctl.prefs.make_dialog()
    qtbot.addWidget(dialog)
    texts = {dialog.model.itemData(i): dialog.model.itemText(i)
             for i in range(dialog.model.count())}
    assert f"{spec.speed.images_per_s:g} images/s" in texts[spec.name]
    assert "ImageNet 75.13 %" in texts[spec.name]  # the list stays short (narrow windows)
    choose(dialog.model, spec.name)
    details = dialog.model_details.text()
    assert "multilingual retrieval average 66.37 %" in details
    assert "openclip_multilingual_retrieval_results.csv" in details
    assert f"{spec.speed.query_ms} ms per query" in details
    rows = dict(model_rows(spec))
    assert spec.revision in rows["Source"] and "first download" in rows["Tokenizer"]
