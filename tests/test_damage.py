"""Damage is named, never papered over (issue 10, item 7).

Every CLI command that takes a library runs against each damaged copy of a small library
built once per module. Each must end with one clear message (or succeed where it can, as a
read-only search does), never a traceback, and leave every byte of the library as it was.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from indexer.specs import TINY_SHAPES

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    not TINY_SHAPES.bundled_path().exists(), reason="tiny model weights not built yet"
)


def magpie(*args: str, env: dict, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "app.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def tree_state(root: Path) -> dict[str, str]:
    """Every entry under root: kind, mode and (for files) the sha256 of its bytes. Never opens
    anything but regular files (a FIFO would block).

    SQLite's own runtime files are the one exception: any reader of a WAL database (a search
    on a healthy library) makes a `-shm` index and an empty `-wal`, which hold no data; a `-wal`
    with content would still count."""
    out: dict[str, str] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if name.endswith("-shm") or (name.endswith("-wal") and st.st_size == 0):
                continue
            if stat.S_ISREG(st.st_mode):
                out[rel] = f"file {st.st_mode:o} {hashlib.sha256(p.read_bytes()).hexdigest()}"
            else:
                out[rel] = f"other {st.st_mode:o}"
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from magpie_demo.shapes import make_demo_folder

    base = tmp_path_factory.mktemp("damage")
    folder = base / "Pictures"
    make_demo_folder(folder, n_images=6, seed=5)
    env = {**os.environ, "MAGPIE_DATA_DIR": str(base / "data"),
           "MAGPIE_CACHE_DIR": str(base / "cache"), "HF_HUB_OFFLINE": "1"}
    env.pop("MAGPIE_DEBUG", None)
    lib = base / "lib"
    out = magpie("index", str(folder), "--library", str(lib), "--model", "tiny-shapes",
                 "--quiet", env=env)
    assert out.returncode == 0, out.stderr
    return base, folder, lib, env


def _catalogue(lib: Path) -> Path:
    (cat,) = lib.glob("models/*/catalogue.sqlite")
    return cat


def _empty_catalogue(lib: Path) -> None:
    _catalogue(lib).write_bytes(b"")


def _garbage_catalogue(lib: Path) -> None:
    _catalogue(lib).write_bytes(bytes(range(256)) * 40)


def _corrupt_page(lib: Path) -> None:
    """A sound header and schema, garbage further in: found only when a query reads it."""
    with open(_catalogue(lib), "r+b") as f:
        f.seek(4096 * 3)
        f.write(bytes(range(256)) * 64)


def _missing_catalogue(lib: Path) -> None:
    _catalogue(lib).unlink()


def _pointer_truncated(lib: Path) -> None:
    p = lib / "magpie-library.json"
    p.write_bytes(p.read_bytes()[:25])


def _pointer_not_an_object(lib: Path) -> None:
    (lib / "magpie-library.json").write_text("[1, 2]")


def _pointer_bad_fields(lib: Path) -> None:
    (lib / "magpie-library.json").write_text('{"format": 1, "active": 5, "models": 3}')


def _lock_is_a_folder(lib: Path) -> None:
    (lib / "lock").unlink()
    (lib / "lock").mkdir()


# name -> (damage, the commands that may still succeed, a word the failure message must hold)
CASES: dict[str, tuple[Callable[[Path], None], set[str], str]] = {
    "empty catalogue": (_empty_catalogue, set(), "is empty (0 bytes)"),
    "garbage catalogue": (_garbage_catalogue, set(), "not a readable SQLite database"),
    "corrupt catalogue page": (_corrupt_page, set(), "damaged"),
    "missing catalogue": (_missing_catalogue, set(), "is missing"),
    "truncated magpie-library.json": (_pointer_truncated, set(), "is not valid JSON"),
    "magpie-library.json not an object": (_pointer_not_an_object, set(), "JSON object"),
    "magpie-library.json bad fields": (_pointer_bad_fields, set(), "malformed"),
    "lock is a folder": (_lock_is_a_folder, {"search", "status"}, "is a folder"),
    "read-only library": (lambda lib: None, {"search", "status"}, "cannot write"),
}


def commands(folder: Path) -> dict[str, list[str]]:
    """Every command of app/cli.py that takes a library (models and download take none; gui
    is the window)."""
    return {
        "index": ["index", "--quiet"],
        "index FOLDER": ["index", str(folder), "--quiet"],
        "search": ["search", "red circle", "--all"],
        "status": ["status", "--errors"],
        "remove": ["remove", str(folder)],
        "migrate": ["migrate", "--model", "vit-b-32", "--offline", "--quiet"],
        "demo": ["demo", "--images", "4"],
    }


def _read_only(lib: Path) -> tuple[tuple[str, ...], Callable[[], None]]:
    """A command prefix that sees `lib` read-only, and the undo. chmod does not stop root, so
    as root the library is bind-mounted read-only in a private mount namespace (gone when the
    command exits)."""
    if os.geteuid() != 0:
        for p in [lib, *lib.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
        return (), lambda: [p.chmod(p.stat().st_mode | 0o200) for p in [lib, *lib.rglob("*")]]
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind -o ro '{lib}' '{lib}'"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only library here: {probe.stderr.strip()}")
    script = 'mount --bind -o ro "$0" "$0" || exit 99; exec "$@"'
    return ("unshare", "-m", "sh", "-c", script, str(lib)), lambda: None


@pytest.mark.parametrize("case", list(CASES))
def test_every_command_names_the_damage_and_changes_nothing(built, tmp_path, case):
    _base, folder, good, env = built
    damage, may_succeed, words = CASES[case]
    lib = tmp_path / "lib"
    shutil.copytree(good, lib, symlinks=True)
    damage(lib)
    prefix, undo = _read_only(lib) if case == "read-only library" else ((), lambda: None)
    env = {**env, "MAGPIE_DATA_DIR": str(tmp_path / "data"),
           "MAGPIE_CACHE_DIR": str(tmp_path / "cache")}
    before = tree_state(lib)
    try:
        for name, args in commands(folder).items():
            out = magpie(*args, "--library", str(lib), env=env, prefix=prefix)
            said = f"{case} / {name}: rc {out.returncode}\n{out.stdout}\n{out.stderr}"
            assert "Traceback" not in out.stdout + out.stderr, said
            assert out.returncode != 99, said
            if name in may_succeed:
                assert out.returncode == 0, said
            else:
                assert out.returncode == 2, said
                lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
                assert len(lines) == 1 and lines[0].startswith("magpie: "), said
                assert words in lines[0] and "internal error" not in lines[0], said
                assert out.stdout == "", said
            after = tree_state(lib)
            if case == "corrupt catalogue page":
                # found after a successful open, which records the holder's pid in `lock`
                after["lock"] = before["lock"]
            assert after == before, f"{case} / {name} changed the library"
    finally:
        undo()
    if case != "corrupt catalogue page":  # the one found after a successful open
        assert not (tmp_path / "data" / "demo-pictures").exists()  # demo made nothing either


def test_a_fresh_library_is_not_created_when_the_weights_cannot_be_used(built, tmp_path):
    """A FIFO or a device as --weights is named as such (never opened: it would hang or hash
    for ever), and the library a first run would have made is not left behind."""
    _base, folder, _good, env = built
    fifo = tmp_path / "weights.fifo"
    os.mkfifo(fifo)
    for weights, words in [(fifo, "is a FIFO"), (Path("/dev/zero"), "is a device"),
                           (tmp_path, "is a folder"), (tmp_path / "nope", "does not exist")]:
        lib = tmp_path / "newlib"
        out = magpie("index", str(folder), "--library", str(lib), "--model", "vit-b-32",
                     "--weights", str(weights), "--quiet", env=env)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert words in out.stderr.splitlines()[0], out.stderr
        assert not lib.exists()


def test_weights_that_cannot_be_used_leave_an_existing_library_as_it_was(built, tmp_path):
    _base, _folder, good, env = built
    lib = tmp_path / "lib"
    shutil.copytree(good, lib, symlinks=True)
    before = tree_state(lib)
    out = magpie("migrate", "--model", "vit-b-32", "--weights", "/dev/zero", "--quiet",
                 "--library", str(lib), env=env)
    assert out.returncode == 2 and "is a device" in out.stderr and "Traceback" not in out.stderr
    assert tree_state(lib) == before
