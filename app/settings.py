"""Where Magpie keeps things, and the few settings shared by the CLI and the GUI.

Locations come from platformdirs; MAGPIE_DATA_DIR / MAGPIE_CACHE_DIR override them (tests
and headless use run isolated that way). Magpie writes only there and in the library the
user chose.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import platformdirs

from indexer.atomic import atomic_write_bytes

APP = "magpie"


def data_dir() -> Path:
    env = os.environ.get("MAGPIE_DATA_DIR")
    path = Path(env) if env else Path(platformdirs.user_data_dir(APP, appauthor=False))
    return path.expanduser()


def cache_dir() -> Path:
    env = os.environ.get("MAGPIE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if os.environ.get("MAGPIE_DATA_DIR"):
        return data_dir() / "cache"
    return Path(platformdirs.user_cache_dir(APP, appauthor=False))


def default_library() -> Path:
    return data_dir() / "library"


def demo_folder() -> Path:
    return data_dir() / "demo-pictures"


def demo_library() -> Path:
    return data_dir() / "demo-library"


@dataclass
class Settings:
    library: str = ""
    model: str = "vit-b-32"
    weights: dict[str, str] = field(default_factory=dict)  # model name -> local weights file
    workers: int = 0  # 0 = automatic
    batch_size: int = 0  # 0 = automatic
    ocr: bool = True  # read the words in pictures (after embedding) so they can be searched

    @staticmethod
    def path() -> Path:
        return data_dir() / "settings.json"

    @classmethod
    def load(cls) -> Settings:
        try:
            raw = json.loads(cls.path().read_text())
        except (OSError, ValueError):
            return cls()
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self) -> None:
        self.path().parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path(), json.dumps(asdict(self), indent=2).encode())

    def library_path(self) -> Path:
        return Path(self.library).expanduser() if self.library else default_library()
