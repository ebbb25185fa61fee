"""Where a bug's traceback goes: a log file in the app's cache dir, never the user's terminal.

The CLI prints one line naming this file; the file keeps the full traceback for a report.
It is capped (the previous file is kept as .1) so a crash loop cannot fill the disk.
"""
from __future__ import annotations

import datetime as dt
import os
import sys
import traceback
from pathlib import Path

MAX_BYTES = 1 << 20


def crash_log_path() -> Path:
    from app.settings import cache_dir

    return cache_dir() / "logs" / "internal-errors.log"


def write_crash_log(exc: BaseException) -> str:
    """Append exc's traceback to the log; returns "details in PATH" (or why there is none)."""
    path = crash_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > MAX_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
        stamp = dt.datetime.now().isoformat(timespec="seconds")
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        with open(path, "a", encoding="utf-8", errors="backslashreplace") as f:
            f.write(f"--- {stamp} pid {os.getpid()} magpie {' '.join(sys.argv[1:])}\n{text}\n")
    except OSError as e:
        return f"no details saved: cannot write {path}: {e.strerror or e}; " \
               "run again with MAGPIE_DEBUG=1 to see them"
    return f"details in {path}"
