"""Keep the libraries Magpie uses from writing outside Magpie's own dirs.

onnxruntime (1.32 on Linux) creates a device id and a telemetry database under
~/.cache/Microsoft/DeveloperTools/.onnxruntime as soon as it is imported, unless
ORT_DISABLE_TELEMETRY is set. Magpie writes nowhere but the library the user chose and its
own data and cache dirs, so the variable is set before anything can import onnxruntime: in
`indexer/__init__.py`, which every Magpie process (CLI, GUI, decode workers, the OCR engine,
which runs on onnxruntime too) imports first. Child processes inherit it from the environment.
"""
from __future__ import annotations

import os
from pathlib import Path

#: environment each Magpie process runs with, whatever the user's shell says: these switch off
#: writes outside Magpie's dirs that nothing in Magpie needs
QUIET_ENV = {"ORT_DISABLE_TELEMETRY": "1"}


def keep_libraries_in_our_dirs() -> None:
    """Set QUIET_ENV in this process (and so in every process it starts)."""
    os.environ.update(QUIET_ENV)


def keep_hub_downloads_in(cache_dir: Path) -> None:
    """Before a weights download: hf_xet, which huggingface_hub hands files kept in Xet storage
    to (the pinned CLIP weights are), writes logs under ~/.cache/huggingface/xet the moment it
    is imported, unless HF_XET_CACHE names another place. Its files go to Magpie's cache dir
    instead, and its chunk cache is off: Magpie keeps the one verified copy of the weights
    itself. It reads these once, at import, so a later call changes nothing."""
    os.environ.setdefault("HF_XET_CACHE", str(Path(cache_dir) / "xet"))
    os.environ.setdefault("HF_XET_CHUNK_CACHE_SIZE_BYTES", "0")
