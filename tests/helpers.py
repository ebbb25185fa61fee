"""Small builders shared by tests."""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image


def solid(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (40, 30),
          fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)
    return path


def note(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """mtime_ns and content of every file under a folder: proves we never modify user files."""
    out = {}
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            p = Path(dirpath) / name
            try:
                out[str(p)] = (p.stat().st_mtime_ns, p.read_bytes())
            except OSError:
                pass
    return out
