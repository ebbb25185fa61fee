"""A decode worker's start, and how the indexer learns that its workers did start.

A worker that cannot start must not look like a decoder crash: the pool would then blame, and
record as failed, every file it was given (a script that runs Magpie without an
`if __name__ == "__main__":` guard is imported again by each worker, which runs the whole
command again and exits: 200 pictures were each marked "the image decoder crashed"). So the
initializer's failure is kept instead of killing the worker with a traceback on the terminal,
and the indexer sends each new pool one `worker_ready` job before any file.
"""
from __future__ import annotations

from collections.abc import Callable

from indexer.decode import limit_worker_memory
from indexer.die_with import exit_when_gone

_start_failure: str | None = None  # why this worker's initializer failed, if it did


def init_decode_worker(budget_bytes: int, indexer_pid: int) -> None:
    """The decode pool's initializer: end when the indexer ends (even killed with SIGKILL,
    when nothing tells the workers), then cap this worker's memory."""
    exit_when_gone(indexer_pid)
    limit_worker_memory(budget_bytes)


def start_worker(init: Callable[..., None], *args: object) -> None:
    """Run the initializer `init(*args)`, keeping its failure for `worker_ready`."""
    global _start_failure
    try:
        init(*args)
    except Exception as exc:  # noqa: BLE001 - reported to the indexer, which stops the run
        _start_failure = f"{type(exc).__name__}: {exc}"


def worker_ready() -> str | None:
    """The pool's first job: None when this worker started as it should, else why not."""
    return _start_failure
