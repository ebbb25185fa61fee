"""Put Magpie in the desktop's application menu (freedesktop .desktop file and icon).

Only on request (`magpie install-desktop-entry`), into the user's own XDG data dir; the entry
starts the very `magpie` this command belongs to, so an install in a venv or pipx works even
when that venv is not on PATH.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from indexer.atomic import atomic_write_bytes
from indexer.specs import ASSETS_DIR

ENTRY = "magpie.desktop"
ICON = "magpie.svg"


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def targets(base: Path | None = None) -> tuple[Path, Path]:
    base = base or data_home()
    return base / "applications" / ENTRY, base / "icons" / "hicolor" / "scalable" / "apps" / ICON


def magpie_executable() -> str:
    """The console script beside this interpreter, else whatever `magpie` is on PATH."""
    beside = Path(sys.executable).with_name("magpie")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("magpie") or "magpie"


def entry_text(executable: str) -> str:
    """The shipped template with Exec/TryExec pointing at `executable`."""
    out = []
    for line in (ASSETS_DIR / "desktop" / ENTRY).read_text().splitlines():
        if line.startswith("Exec="):
            line = f"Exec={_quote(executable)}"
        elif line.startswith("TryExec="):
            line = f"TryExec={executable}"
        out.append(line)
    return "\n".join(out) + "\n"


def _quote(arg: str) -> str:
    """Quote an Exec argument as the Desktop Entry spec asks (only when needed)."""
    if not any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`'):
        return arg
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$")
    return f'"{escaped}"'


def install(base: Path | None = None) -> list[Path]:
    entry, icon = targets(base)
    entry.parent.mkdir(parents=True, exist_ok=True)
    icon.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(entry, entry_text(magpie_executable()).encode())
    atomic_write_bytes(icon, (ASSETS_DIR / "desktop" / ICON).read_bytes())
    return [entry, icon]


def uninstall(base: Path | None = None) -> list[Path]:
    removed = []
    for path in targets(base):
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed
