"""A decode job that kills its worker process for files named *crash*: a stand-in for a
decoder segfault (os._exit skips every Python handler, like a real crash)."""
from __future__ import annotations

import os

from indexer.decode import decode_image_job


def crashing_decode(path: str, size: int):
    if "crash" in os.path.basename(path):
        os._exit(139)
    return decode_image_job(path, size)
