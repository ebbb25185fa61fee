"""A decode job that kills its worker process for files named *crash*: a stand-in for a
decoder segfault (os._exit skips every Python handler, like a real crash)."""
from __future__ import annotations

import os

from indexer.decode import decode_image_job


def crashing_decode(path: str, size: int):
    if "crash" in os.path.basename(path):
        os._exit(139)
    return decode_image_job(path, size)


def hungry_decode(path: str, size: int):
    """For files named *hungry*: a decoder that asks for far more than the worker's budget
    (address space only, never touched), as a decode the estimate misjudged would."""
    if "hungry" not in os.path.basename(path):
        return decode_image_job(path, size)
    import numpy as np

    from indexer import decode

    real = decode.load_image

    def greedy(*args, **kwargs):
        np.empty(decode._budget_bytes + 2 * decode.WORKER_HEADROOM_BYTES, np.uint8)
        return real(*args, **kwargs)

    decode.load_image = greedy
    try:
        return decode_image_job(path, size)
    finally:
        decode.load_image = real


def failing_worker_init(budget_bytes: int, indexer_pid: int) -> None:
    """A decode-pool initializer that fails in every worker, as one whose imports are broken
    would: no file has been given to the worker yet."""
    raise RuntimeError("cannot load the decoder library")


def exiting_worker_init(budget_bytes: int, indexer_pid: int) -> None:
    """A worker that ends as it starts (like one that runs a script's unguarded CLI call)."""
    os._exit(2)
