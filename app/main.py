"""`magpie` console script: no subcommand opens the window."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from app.cli import main as cli_main

    rc = cli_main(argv)
    if argv is None and sys.argv[1:2] not in ([], ["gui"]):
        _exit_now(rc)
    return rc


def _exit_now(rc: int) -> None:
    """End a CLI process without the interpreter's teardown.

    Why: once torch is loaded, the normal exit spends ~1 s (measured: bench/RESULTS.md) freeing
    hundreds of MB object by object and unloading libraries, after the command has finished
    and everything is committed (each command closes its library before returning). Output is
    flushed and logging shut down first; nothing else is pending then.
    """
    import logging
    import os

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (magpie search … | head)
            pass
    os._exit(rc)


if __name__ == "__main__":
    sys.exit(main())
