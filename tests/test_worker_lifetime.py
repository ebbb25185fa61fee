"""Decode workers never outlive the process they decode for, even one killed with SIGKILL
(no handler runs, nothing is told): they notice it is gone and exit, and with them the
forkserver and the resource tracker, so no orphan keeps memory or the terminal."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads the process tree from /proc")


def _children() -> dict[int, int]:
    """pid -> parent pid of every live process (zombies count as gone)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            out[int(entry)] = int(fields[1])
    return out


def _descendants(root: int) -> set[int]:
    parents = _children()
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    return pids & set(_children())


def _pictures(folder: Path, n: int) -> None:
    """n distinct JPEGs that take a while to decode: one noisy 3000x2000 picture, each copy
    with other bytes after its end marker (decoders ignore them; the hashes differ, so
    none is skipped as a copy of another)."""
    folder.mkdir()
    noise = np.random.default_rng(0).integers(0, 255, (2000, 3000, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG", quality=95)
    for i in range(n):
        (folder / f"p{i:03d}.jpg").write_bytes(buf.getvalue() + f"copy {i}".encode())


def test_decode_workers_die_with_a_killed_indexer(tmp_path: Path) -> None:
    _pictures(tmp_path / "Pictures", 40)
    # on the CPU: with a GPU, JPEGs would be decoded there, without decode workers
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MAGPIE_DEVICE": "cpu"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.main", "index", str(tmp_path / "Pictures"), "--model",
         "tiny-shapes", "--no-ocr", "--quiet", "--workers", "2",
         "--library", str(tmp_path / "lib")],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    family: set[int] = set()
    try:
        deadline = time.monotonic() + 300
        workers: set[int] = set()
        while not workers:  # grandchildren: decode workers under the forkserver
            assert proc.poll() is None, "the index ended before its decode workers were seen"
            assert time.monotonic() < deadline, "no decode workers after 300 s"
            kids = _descendants(proc.pid)
            workers = {p for p in kids if _children().get(p) not in (proc.pid, None)}
            family |= kids
            time.sleep(0.05)
        family |= _descendants(proc.pid)
        proc.kill()  # SIGKILL: nothing in the indexer runs after this
        proc.wait(timeout=30)

        deadline = time.monotonic() + 30  # generous: the box is shared; they go within a second
        while _alive(family) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _alive(family) == set(), "processes outlived the killed indexer"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _alive(family):  # clean up after a failure: never leave orphans behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.stderr is not None:
            proc.stderr.close()


WATCHER = """
import os, sys, time
from indexer import die_with
if sys.argv[2] == "poll":  # a kernel without pidfd
    def no_pidfd(pid):
        raise OSError(38, "Function not implemented")
    os.pidfd_open = no_pidfd
    die_with.POLL_S = 0.05
die_with.exit_when_gone(int(sys.argv[1]))
print("watching", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("how", ["pidfd", "poll"])
def test_a_watcher_exits_when_the_watched_process_ends(how: str) -> None:
    from indexer.die_with import ORPHANED_EXIT

    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    watcher = subprocess.Popen([sys.executable, "-c", WATCHER, str(victim.pid), how], cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.PIPE, text=True)
    try:
        assert watcher.stdout is not None and watcher.stdout.readline() == "watching\n"
        assert watcher.poll() is None  # the watched process is alive: keeps going
        victim.kill()
        victim.wait()
        assert watcher.wait(timeout=30) == ORPHANED_EXIT
    finally:
        for p in (victim, watcher):
            if p.poll() is None:
                p.kill()
                p.wait()
        if watcher.stdout is not None:
            watcher.stdout.close()


# -- a pool whose workers cannot start ---------------------------------------------------------
@pytest.mark.parametrize("init", ["failing_worker_init", "exiting_worker_init"])
def test_workers_that_cannot_start_stop_the_run_and_blame_no_file(tmp_path, fake_encoder,
                                                                  init):
    """Before, every file given to the broken pool was retried alone, "crashed" again and was
    recorded as failed: the whole folder marked broken, and skipped by the next run."""
    import crashy
    from helpers import solid

    from indexer.pipeline import DecodeWorkersFailed, Embedder, WorkItem

    items = [WorkItem(i, str(solid(tmp_path / f"img{i}.png", (i * 20, 50, 100))), "image")
             for i in range(10)]
    emb = Embedder(fake_encoder, workers=2, batch_size=4, worker_init=getattr(crashy, init))
    yielded = []
    with pytest.raises(DecodeWorkersFailed) as err:
        for batch in emb.run(items):
            yielded += batch
    assert yielded == []  # no file was given an error (nor a vector)
    assert emb._pool is None  # the broken pool's processes were stopped
    message = str(err.value)
    assert "could not start" in message and "No picture was marked as failed" in message
    if init == "failing_worker_init":  # the initializer's own reason is passed on
        assert "RuntimeError: cannot load the decoder library" in message


NO_GUARD_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from app.main import main
sys.exit(main(["index", {folder!r}, "--library", {lib!r}, "--model", "tiny-shapes",
               "--no-ocr", "--quiet", "--workers", "2"]))
"""


def test_a_script_without_a_main_guard_gets_one_message_and_no_file_errors(tmp_path):
    """The lead's case: a script calling the CLI without `if __name__ == "__main__":`. Each
    decode worker imports the script again, runs the command again and exits. The run stops
    with one message saying what to do, exits non-zero, and a run done right indexes every
    file (nothing was recorded against them)."""
    from helpers import solid

    folder = tmp_path / "Pictures"
    for i in range(12):
        solid(folder / f"img{i}.png", (i * 20, 50, 100))
    lib = tmp_path / "lib"
    script = tmp_path / "index_my_pictures.py"
    script.write_text(NO_GUARD_SCRIPT.format(root=str(ROOT), folder=str(folder), lib=str(lib)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("the image decoder processes could not start") == 1, out.stderr
    assert '`if __name__ == "__main__":`' in out.stderr
    assert "Traceback" not in out.stderr

    status = subprocess.run([sys.executable, "-m", "app.main", "status", "--library", str(lib),
                             "--errors"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert status.returncode == 0, status.stderr
    assert "crashed" not in status.stdout and "errors    0" in status.stdout

    again = subprocess.run([sys.executable, "-m", "app.main", "index", "--library", str(lib),
                            "--no-ocr", "--quiet"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "0 errors" in again.stdout
    status = subprocess.run([sys.executable, "-m", "app.main", "status", "--library", str(lib),
                             "--errors"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert "items     12 images" in status.stdout and "errors    0" in status.stdout, status.stdout
