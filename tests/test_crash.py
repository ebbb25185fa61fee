"""Crash safety: SIGKILL `magpie index` at random points, then reopen and resume.

CI runs a few kills; MAGPIE_LONG=1 runs the full loop (≥ 20). Also a full disk (simulated
with RLIMIT_FSIZE, so writes fail with EFBIG) and the checks that a reopened library agrees
with itself.
"""
from __future__ import annotations

import os
import random
import re
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from PIL import Image

from indexer.library import Library
from indexer.specs import TINY_SHAPES

ROOT = Path(__file__).resolve().parent.parent
LONG = os.environ.get("MAGPIE_LONG") == "1"
# (no skip when the tiny model is missing: it ships in assets/, so its absence is a broken
# checkout, and these tests must fail on it)


def make_folder(folder: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        c = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        Image.new("RGB", (96, 72), c).save(folder / f"img{i:05d}.png")
        if i % 50 == 0:
            (folder / f"note{i:05d}.txt").write_text(f"note number {i}. " * 20)


def magpie(args: list[str], env: dict, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app.main", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def check_consistent(lib_dir: Path) -> int:
    """Opens, passes SQLite's own checks, agrees with the vector index; returns #indexed."""
    [db] = list(lib_dir.glob("models/*/catalogue.sqlite"))
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    orphan_chunks = con.execute(
        "SELECT COUNT(*) FROM chunks WHERE file_id NOT IN (SELECT id FROM files)").fetchone()[0]
    empty_indexed = con.execute(
        "SELECT COUNT(*) FROM files f WHERE state='indexed' AND NOT EXISTS "
        "(SELECT 1 FROM chunks c WHERE c.file_id=f.id)").fetchone()[0]
    doubled = con.execute(
        "SELECT COUNT(*) FROM (SELECT f.id FROM files f JOIN chunks c ON c.file_id=f.id "
        "WHERE f.kind='image' GROUP BY f.id HAVING COUNT(*) > 1)").fetchone()[0]
    con.close()
    assert (orphan_chunks, empty_indexed, doubled) == (0, 0, 0)
    with Library.open(lib_dir, TINY_SHAPES) as lib:
        assert set(lib.vectors.ids().tolist()) == set(lib.catalogue.chunk_ids().tolist())
        return lib.catalogue.counts()["images"] + lib.catalogue.counts()["notes"]


def last_reported(stderr: str) -> int:
    found = re.findall(r"embedding:[^\r\n]*?(\d+)/(\d+)", stderr)
    return int(found[-1][0]) if found else 0


def kill_when_reported(args: list[str], env: dict, at_least: int) -> tuple[int, str]:
    """Start `magpie index` and SIGKILL its whole process group (decode workers included: like
    a machine losing power) as soon as it reports `at_least` files embedded: the kill lands
    mid-run whatever the machine's speed. Returns (exit status, stderr)."""
    proc = magpie(args, env, start_new_session=True)
    seen = ""
    fd = proc.stderr.fileno()
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break  # the run ended by itself
        seen += chunk.decode(errors="replace")
        if last_reported(seen) >= at_least:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    _, rest = proc.communicate(timeout=120)
    return proc.returncode, seen + rest


def test_sigkill_at_random_points_loses_nothing_committed(tmp_path):
    kills = 24 if LONG else 3
    n_images = 1500 if LONG else 400
    folder, lib_dir = tmp_path / "photos", tmp_path / "lib"
    make_folder(folder, n_images)
    total_files = n_images + len(list(folder.glob("*.txt")))
    env = {**os.environ, "MAGPIE_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    args = ["index", str(folder), "--library", str(lib_dir), "--model", "tiny-shapes",
            "--workers", "1", "--batch-size", "16"]
    rng = random.Random(1234)
    survived = 0
    indexed = 0
    for k in range(kills):
        # leave work for the kills still to come and for the final run
        target = rng.randint(1, max(1, (total_files - indexed) // (kills - k + 1)))
        code, err = kill_when_reported(args, env, target)
        assert code == -signal.SIGKILL, f"the run ended (status {code}) before the kill:\n{err}"
        assert "Traceback" not in err, err
        before = indexed
        indexed = check_consistent(lib_dir)
        # every file the killed run reported as done was committed: at most the batch in
        # flight (not yet reported) is lost
        assert indexed >= before + last_reported(err) >= before + target
        assert indexed < total_files, "nothing was left to interrupt"
        survived += 1
    assert survived == kills >= 1
    final = magpie(args, env)
    out, err = final.communicate(timeout=600)
    assert final.returncode == 0, err
    assert check_consistent(lib_dir) == total_files
    print(f"\nkills survived: {survived}/{survived} (tried {kills}); "
          f"all {total_files} files indexed once after resuming")


def test_full_disk_stops_cleanly_and_resumes(tmp_path):
    folder, lib_dir = tmp_path / "photos", tmp_path / "lib"
    make_folder(folder, 300)
    env = {**os.environ, "MAGPIE_DATA_DIR": str(tmp_path / "data")}
    args = ["index", str(folder), "--library", str(lib_dir), "--model", "tiny-shapes",
            "--workers", "1", "--batch-size", "16", "--quiet"]

    def limit_file_size() -> None:  # every write past 256 KiB fails with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

    full = magpie(args, env, preexec_fn=limit_file_size)
    out, err = full.communicate(timeout=600)
    assert full.returncode == 2, err
    assert "disk is full" in err and "Traceback" not in err
    partial = check_consistent(lib_dir)
    assert partial < 300
    done = magpie(args, env)
    out, err = done.communicate(timeout=600)
    assert done.returncode == 0, err
    assert check_consistent(lib_dir) == 300 + 6
