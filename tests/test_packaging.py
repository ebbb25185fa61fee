"""Installed as an app: the wheel carries the bundled model, the desktop entry and the icon,
and an installed copy (not this checkout) runs the offline demo."""
from __future__ import annotations

import configparser
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True, timeout=300)
    return next(out.glob("magpie-*.whl"))


def test_wheel_ships_models_desktop_entry_and_icon(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for want in ("magpie_assets/tiny-shapes/tiny-shapes.safetensors",
                 "magpie_assets/tiny-shapes/tiny-shapes.json",
                 "magpie_assets/desktop/magpie.desktop", "magpie_assets/desktop/magpie.svg",
                 "app/cli.py", "indexer/specs.py", "ui/icons.py", "magpie_demo/shapes.py"):
        assert want in names, want
    assert not any(n.startswith("tests/") for n in names)
    # the demo's pictures and the training data live outside the core package
    assert not any(n.startswith(("indexer/shapes", "indexer/digits", "indexer/tiny_model"))
                   for n in names)


def test_installed_wheel_runs_the_demo_offline(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    env = dict(os.environ, PYTHONPATH=str(target), HF_HUB_OFFLINE="1",
               MAGPIE_DATA_DIR=str(tmp_path / "data"), MAGPIE_CACHE_DIR=str(tmp_path / "cache"))
    probe = subprocess.run(
        [sys.executable, "-c", "import indexer.specs as s; print(s.ASSETS_DIR)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip().startswith(str(target)), probe  # the installed copy, not ours
    demo = subprocess.run([sys.executable, "-m", "app.main", "demo", "--images", "16"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr
    assert "added" in demo.stdout
    found = subprocess.run([sys.executable, "-m", "app.main", "search", "a red circle",
                            "--library", str(tmp_path / "data" / "demo-library")],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert found.returncode == 0, found.stderr
    assert "IMG_" in found.stdout  # a demo picture, found by the installed copy


def test_desktop_entry_is_valid_and_starts_this_magpie(tmp_path, monkeypatch):
    from app import desktop_entry

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    entry, icon = desktop_entry.install()
    assert entry == tmp_path / "share" / "applications" / "magpie.desktop"
    assert icon.read_bytes().startswith(b"<svg")
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.optionxform = str  # keys are case-sensitive in desktop files
    parsed.read(entry)
    d = parsed["Desktop Entry"]
    assert d["Type"] == "Application" and d["Icon"] == "magpie" and d["Name"] == "Magpie"
    assert d["Exec"] == desktop_entry.magpie_executable() or d["Exec"].startswith('"')
    assert desktop_entry.uninstall() == [entry, icon] and not entry.exists()


def test_exec_paths_with_spaces_are_quoted():
    from app.desktop_entry import _quote

    assert _quote("/opt/magpie/bin/magpie") == "/opt/magpie/bin/magpie"
    assert _quote('/home/a b/$x/magpie') == '"/home/a b/\\$x/magpie"'
