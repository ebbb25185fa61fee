"""Following the folders: debounced batches from real file operations, and scoped updates that
rescan only what changed (fake model, real files in a temp dir)."""
from __future__ import annotations

import os
import queue
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import note, snapshot, solid

from indexer.indexing import Indexer
from indexer.library import Library
from indexer.search import Searcher
from indexer.specs import TINY_SHAPES
from indexer.watch import ChangeBatcher, FolderWatcher, collapse

WAIT_S = 20.0  # generous: a loaded 2-core box; the figure that matters is in bench/watch_latency


def spec_for(encoder):
    from dataclasses import replace

    return replace(TINY_SHAPES, embed_dim=encoder.dim)


# -- pure batching ------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_batch_is_due_after_a_quiet_spell():
    clock = Clock()
    b = ChangeBatcher(quiet_s=1.0, max_wait_s=10.0, clock=clock)
    assert b.seconds_until_due() is None
    b.add("/r/a.jpg")
    clock.t += 0.5
    b.add("/r/b.jpg")
    assert b.seconds_until_due() == pytest.approx(1.0)
    clock.t += 1.0
    assert b.seconds_until_due() == 0.0
    assert b.take() == ["/r/a.jpg", "/r/b.jpg"]
    assert b.seconds_until_due() is None


def test_a_steady_stream_still_lands_after_max_wait():
    clock = Clock()
    b = ChangeBatcher(quiet_s=1.0, max_wait_s=3.0, clock=clock)
    for i in range(10):  # an event every 0.5 s never leaves a quiet second
        b.add(f"/r/{i}.jpg")
        clock.t += 0.5
        if b.seconds_until_due() == 0.0:
            break
    assert i == 5 and b.seconds_until_due() == 0.0


def test_collapse_keeps_the_covering_folder():
    assert collapse(["/r/a/x.jpg", "/r/a", "/r/ab.jpg", "/r/a/y/z.txt", "/r/a"]) == [
        "/r/a", "/r/ab.jpg"]


# -- real events ----------------------------------------------------------------------------------
def _next_batch(q: queue.Queue, want: str) -> list[str]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            batch = q.get(timeout=0.2)
        except queue.Empty:
            continue
        if any(p == want or want.startswith(p + os.sep) for p in batch):
            return batch
    raise AssertionError(f"no batch with {want} within {WAIT_S} s")


def test_watcher_reports_created_moved_and_deleted_files(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    q: queue.Queue = queue.Queue()
    with FolderWatcher([str(root)], q.put, quiet_s=0.2, max_wait_s=2.0):
        solid(root / "new.png", (200, 10, 10))
        _next_batch(q, str(root / "new.png"))
        os.rename(root / "new.png", root / "renamed.png")
        batch = _next_batch(q, str(root / "renamed.png"))
        assert str(root / "new.png") in batch  # both ends of a move
        (root / "renamed.png").unlink()
        _next_batch(q, str(root / "renamed.png"))


def test_watcher_ignores_the_library_and_hidden_files(tmp_path):
    root = tmp_path / "photos"
    lib = root / "my-library"
    lib.mkdir(parents=True)
    q: queue.Queue = queue.Queue()
    with FolderWatcher([str(root)], q.put, ignore=[str(lib)], quiet_s=0.2, max_wait_s=2.0):
        (lib / "catalogue.sqlite").write_bytes(b"x")
        (root / ".hidden.jpg").write_bytes(b"x")
        solid(root / "seen.png", (1, 2, 3))
        batch = _next_batch(q, str(root / "seen.png"))
    assert batch == [str(root / "seen.png")]


def test_a_missing_root_is_watched_once_it_appears(tmp_path):
    root = tmp_path / "usb-drive"
    q: queue.Queue = queue.Queue()
    with FolderWatcher([str(root)], q.put, quiet_s=0.1, max_wait_s=1.0, recheck_s=0.2) as w:
        assert w.watching == []
        root.mkdir()  # the drive is plugged in
        _next_batch(q, str(root))  # handed over whole, to catch up
        assert w.watching == [str(root)]
        solid(root / "a.png", (9, 9, 9))
        _next_batch(q, str(root / "a.png"))


# -- scoped updates -------------------------------------------------------------------------------
@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    solid(root / "red.png", (250, 10, 10))
    solid(root / "sub" / "blue.png", (10, 10, 250))
    note(root / "notes" / "todo.txt", "buy a ladder at the hardware store")
    return root


def _paths(lib: Library) -> set[str]:
    return {r["path"] for r in lib.catalogue.db.execute("SELECT path FROM files")}


def test_update_sees_new_changed_moved_and_deleted_paths_only(tmp_path, photos, fake_encoder):
    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        ix = Indexer(lib, fake_encoder, workers=0, batch_size=4)
        ix.run([photos])
        before = fake_encoder.images_encoded
        solid(photos / "sub" / "green.png", (10, 250, 10))
        os.rename(photos / "red.png", photos / "sub" / "red-moved.png")
        (photos / "notes" / "todo.txt").unlink()
        rep = ix.update([photos / "sub" / "green.png", photos / "red.png",
                         photos / "sub" / "red-moved.png", photos / "notes" / "todo.txt"])
        assert (rep.added, rep.moved, rep.removed, rep.embedded_files) == (1, 1, 1, 1)
        assert fake_encoder.images_encoded == before + 1  # the move kept its vectors
        assert _paths(lib) == {str(photos / "sub" / "green.png"),
                               str(photos / "sub" / "red-moved.png"),
                               str(photos / "sub" / "blue.png")}
        assert lib.vectors.count() == 3


def test_update_leaves_the_rest_of_the_root_alone(tmp_path, photos, fake_encoder):
    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        ix = Indexer(lib, fake_encoder, workers=0, batch_size=4)
        ix.run([photos])
        (photos / "red.png").unlink()  # not reported: a scoped update must not notice it
        rep = ix.update([photos / "sub"])
        assert rep.removed == 0 and rep.unchanged == 1
        assert str(photos / "red.png") in _paths(lib)


def test_update_of_an_unplugged_root_keeps_its_entries(tmp_path, photos, fake_encoder):
    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        ix = Indexer(lib, fake_encoder, workers=0, batch_size=4)
        ix.run([photos])
        shutil.move(photos, tmp_path / "elsewhere")  # the drive is gone
        rep = ix.update([photos / "sub" / "blue.png", photos])
        assert rep.removed == 0 and rep.errors == 1
        assert len(_paths(lib)) == 3


def test_update_ignores_paths_outside_every_root(tmp_path, photos, fake_encoder):
    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        ix = Indexer(lib, fake_encoder, workers=0, batch_size=4)
        ix.run([photos])
        other = solid(tmp_path / "other" / "x.png", (1, 1, 1))
        rep = ix.update([other])
        assert rep.added == 0 and len(_paths(lib)) == 3


def test_watching_makes_a_new_picture_searchable(tmp_path, photos, fake_encoder):
    """End to end with real events: drop a picture in, find it without a rescan."""
    untouched = snapshot(photos)
    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        ix = Indexer(lib, fake_encoder, workers=0, batch_size=4)
        ix.run([photos])
        batches: queue.Queue = queue.Queue()
        with FolderWatcher([str(photos)], batches.put, quiet_s=0.2, max_wait_s=2.0):
            solid(photos / "sub" / "yellow.png", (250, 250, 10))
            ix.update(_next_batch(batches, str(photos / "sub" / "yellow.png")))
        probe = fake_encoder.encode_images(np.full((1, 4, 4, 3), (250, 250, 10), np.uint8))[0]
        hits = Searcher(lib, fake_encoder).vector_ranking(probe, 1)
    assert hits[0].path == str(photos / "sub" / "yellow.png")
    untouched[str(photos / "sub" / "yellow.png")] = snapshot(photos)[str(photos / "sub" / "yellow.png")]
    assert snapshot(photos) == untouched


def test_magpie_watch_command_indexes_changes_and_stops_cleanly(tmp_path):
    """The headless `magpie watch`: catch up, follow a change, stop on SIGTERM with exit 0."""
    import signal
    import subprocess
    import sys
    import threading

    root_dir = Path(__file__).resolve().parent.parent
    photos = tmp_path / "photos"
    solid(photos / "a.png", (200, 0, 0))
    lib = tmp_path / "lib"
    cli = [sys.executable, "-m", "app.main"]
    subprocess.run([*cli, "index", str(photos), "--library", str(lib), "--model", "tiny-shapes",
                    "--quiet"], cwd=root_dir, check=True, capture_output=True, timeout=300)
    proc = subprocess.Popen([*cli, "watch", "--library", str(lib), "--quiet-seconds", "0.3"],
                            cwd=root_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines: queue.Queue = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        for x in proc.stdout:
            seen.append(x)
            lines.put(x)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                assert proc.poll() is None, proc.stderr.read()
                continue
            if text in line:
                return line
        raise AssertionError(f"no {text!r} from magpie watch")

    try:
        wait_for("watching 1 folder")
        solid(photos / "b.png", (0, 200, 0))
        assert "1 added" in wait_for("added")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join(timeout=10)
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert "stopped watching" in "".join(seen) and "Traceback" not in err


def test_an_interrupted_run_marks_its_folder_incomplete_until_resumed(tmp_path, photos,
                                                                       fake_encoder):
    from indexer.jobs import JobControl

    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        control = JobControl()
        calls = {"n": 0}
        real = fake_encoder.encode_images

        def stop_after_first(pixels):
            calls["n"] += 1
            if calls["n"] == 1:
                control.cancel()
            return real(pixels)

        fake_encoder.encode_images = stop_after_first
        rep = Indexer(lib, fake_encoder, workers=0, batch_size=1, control=control).run([photos])
        fake_encoder.encode_images = real
        assert rep.cancelled
        (rid, _), = lib.catalogue.roots()
        assert lib.catalogue.root_pending_counts().get(rid, 0) >= 1
        Indexer(lib, fake_encoder, workers=0, batch_size=4).run()  # what start-up resumes
        assert lib.catalogue.root_pending_counts() == {}
        assert lib.catalogue.counts()["pending"] == 0
