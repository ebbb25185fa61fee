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


DEVICES = ("auto", "cuda", "cpu")  # the choices Preferences offers (Settings.device)


@dataclass
class Settings:
    library: str = ""
    model: str = "vit-b-32"
    weights: dict[str, str] = field(default_factory=dict)  # model name -> local weights file
    workers: int = 0  # 0 = automatic
    batch_size: int = 0  # 0 = automatic
    ocr: bool = True  # read the words in pictures (after embedding) so they can be searched
    watch: bool = True  # follow the library's folders while the window is open
    device: str = "auto"  # where the model runs: "auto" (a GPU when there is one), "cuda", "cpu"

    @staticmethod
    def path() -> Path:
        return data_dir() / "settings.json"

    @classmethod
    def load(cls) -> Settings:
        """The saved settings; a damaged file (not JSON, not an object, a value of the wrong
        type) never stops Magpie from starting: what cannot be used falls back to its default,
        field by field. Unknown keys (a newer Magpie's) are ignored."""
        try:
            raw = json.loads(cls.path().read_text())
        except (OSError, ValueError):
            return cls()
        if not isinstance(raw, dict):
            return cls()
        defaults = asdict(cls())
        known = {k: v for k, v in raw.items() if k in defaults and _fits(v, defaults[k])}
        if known.get("device") not in (None, *DEVICES):
            del known["device"]
        return cls(**known)

    def save(self) -> None:
        self.path().parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path(), json.dumps(asdict(self), indent=2).encode())

    def library_path(self) -> Path:
        return Path(self.library).expanduser() if self.library else default_library()


def _fits(value: object, default: object) -> bool:
    """Is `value` of the kind the field's default is (a count is an int >= 0, not a bool; the
    weights map holds text)?"""
    if isinstance(default, bool) or isinstance(value, bool):
        return type(value) is type(default)
    if isinstance(default, dict):
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    if isinstance(default, int):
        return isinstance(value, int) and value >= 0  # workers, batch size: 0 = automatic
    return isinstance(value, type(default))
