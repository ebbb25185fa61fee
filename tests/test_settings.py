"""Settings and locations (app/settings.py): a round trip, overrides, and a damaged settings
file that must never stop Magpie from starting."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import settings as settings_mod
from app.settings import Settings, cache_dir, data_dir, default_library, demo_folder, demo_library


def test_settings_round_trip(isolated_dirs):
    s = Settings(library="~/Pictures/lib", model="tiny-shapes",
                 weights={"vit-b-32": "/models/open_clip_model.safetensors"}, workers=3,
                 batch_size=64)
    s.save()
    assert Settings.path() == isolated_dirs / "settings.json"
    assert Settings.load() == s
    assert json.loads(Settings.path().read_text())["workers"] == 3  # readable by people too
    assert [p.name for p in Settings.path().parent.iterdir()] == ["settings.json"]  # no temp


def test_no_settings_file_means_the_defaults(isolated_dirs):
    assert not Settings.path().exists()
    s = Settings.load()
    assert s == Settings() and (s.model, s.workers, s.batch_size) == ("vit-b-32", 0, 0)
    assert s.library_path() == default_library() == isolated_dirs / "library"


def test_the_library_path_expands_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings(library="~/my-lib").library_path() == tmp_path / "my-lib"


@pytest.mark.parametrize("content", [
    "{not json",
    "",
    "\x00\x01\x02",
    "[1, 2, 3]",
    '"a string"',
    "null",
    "42",
])
def test_a_damaged_settings_file_falls_back_to_the_defaults(isolated_dirs, content):
    Settings.path().parent.mkdir(parents=True, exist_ok=True)
    Settings.path().write_text(content)
    assert Settings.load() == Settings()


def test_unknown_and_wrongly_typed_fields_are_dropped_one_by_one(isolated_dirs):
    Settings.path().parent.mkdir(parents=True, exist_ok=True)
    Settings.path().write_text(json.dumps({
        "library": "/data/lib",  # good: kept
        "workers": "many",  # wrong type: default
        "batch_size": 32,  # good: kept
        "weights": ["not", "a", "mapping"],  # wrong type: default
        "model": None,  # wrong type: default
        "from_a_newer_magpie": True,  # unknown: ignored
    }))
    s = Settings.load()
    assert s == Settings(library="/data/lib", batch_size=32)
    Settings.path().write_text(json.dumps({"workers": True, "weights": {"m": 5},
                                           "batch_size": -8}))
    assert Settings.load() == Settings()  # a bool is not a count; a path must be text


def test_an_unreadable_settings_path_falls_back_too(isolated_dirs):
    Settings.path().mkdir(parents=True)  # a folder where the file should be
    assert Settings.load() == Settings()


def test_locations_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MAGPIE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MAGPIE_CACHE_DIR")
    assert data_dir() == tmp_path / "data"
    assert cache_dir() == tmp_path / "data" / "cache"  # kept together when only data is set
    monkeypatch.setenv("MAGPIE_CACHE_DIR", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    assert demo_folder() == tmp_path / "data" / "demo-pictures"
    assert demo_library() == tmp_path / "data" / "demo-library"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MAGPIE_DATA_DIR", "~/magpie")
    assert data_dir() == tmp_path / "home" / "magpie"


def test_without_overrides_the_platform_dirs_are_used(monkeypatch, tmp_path):
    monkeypatch.delenv("MAGPIE_DATA_DIR")
    monkeypatch.delenv("MAGPIE_CACHE_DIR")
    monkeypatch.setattr(settings_mod.platformdirs, "user_data_dir",
                        lambda app, appauthor=None: str(tmp_path / "share" / app))
    monkeypatch.setattr(settings_mod.platformdirs, "user_cache_dir",
                        lambda app, appauthor=None: str(tmp_path / "cache" / app))
    assert data_dir() == tmp_path / "share" / "magpie"
    assert cache_dir() == tmp_path / "cache" / "magpie"
    assert Path(Settings.path()) == tmp_path / "share" / "magpie" / "settings.json"
