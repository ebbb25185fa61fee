"""Bad inputs, files that change under us, concurrency, migrations and user-file safety."""
from __future__ import annotations

import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from badfiles import make_bad_corpus
from fakes import FakeEncoder
from helpers import note, snapshot, solid

from indexer.decode import load_image
from indexer.indexing import Indexer
from indexer.jobs import JobControl, Progress
from indexer.library import Library, LibraryInfo
from indexer.migrate import migrate
from indexer.search import Searcher
from indexer.specs import TINY_SHAPES


def spec16(**kw):
    return replace(TINY_SHAPES, embed_dim=16, **kw)


def test_bad_inputs_each_get_a_clear_reason(tmp_path, fake_encoder):
    corpus = tmp_path / "bad"
    must_fail, must_pass = make_bad_corpus(corpus)
    before = snapshot(corpus)
    with Library.open(tmp_path / "lib", spec16()) as lib:
        for workers in (0, 2):  # in-process and in the decode pool
            rep = Indexer(lib, fake_encoder, workers=workers).run([corpus])
        errors = {Path(p).name: r for p, r in lib.catalogue.errors()}
        indexed = {os.path.basename(r[0]) for r in lib.catalogue.db.execute(
            "SELECT path FROM files WHERE state='indexed'")}
    for name, expect in must_fail.items():
        assert name in errors, f"{name} was not reported"
        assert expect in errors[name], f"{name}: {errors[name]!r} lacks {expect!r}"
    assert "dangling.jpg" in errors
    for name in must_pass:
        shown = os.fsencode(name).decode("utf-8", "replace")
        assert shown in indexed, f"{name} should have been indexed ({errors.get(name)})"
    assert ".hidden.jpg" not in indexed and ".hidden.jpg" not in errors
    assert rep.embedded_files == 0  # second pass: nothing new
    assert snapshot(corpus) == before


def test_exif_orientation_and_modes_decode_upright(tmp_path):
    make_bad_corpus(tmp_path)
    px = load_image(str(tmp_path / "rotated.jpg"), 32).pixels
    assert px.shape == (32, 32, 3)
    # 80×40 rotated by EXIF 6 becomes 40×80 (portrait): the centre crop is all green
    assert px[:, :, 1].mean() > 100
    assert load_image(str(tmp_path / "sixteen-bit.png"), 16).pixels.shape == (16, 16, 3)
    alpha = load_image(str(tmp_path / "alpha.png"), 16).pixels
    assert alpha[0, 0, 2] > alpha[0, 0, 0]  # blue over white, not black


def test_permission_denied_file_and_folder(tmp_path, fake_encoder, monkeypatch):
    root = tmp_path / "r"
    solid(root / "ok.png", (1, 2, 3))
    secret = solid(root / "secret.png", (3, 2, 1))
    locked = root / "locked"
    solid(locked / "inside.png", (5, 5, 5))
    if os.geteuid() == 0:  # root ignores file modes: inject the same OSErrors instead
        real_open, real_scandir = open, os.scandir

        def guarded_open(path, *a, **kw):
            if os.fspath(path) == str(secret):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *a, **kw)

        def guarded_scandir(path="."):
            if os.fspath(path) == str(locked):
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)

        monkeypatch.setattr("builtins.open", guarded_open)
        monkeypatch.setattr(os, "scandir", guarded_scandir)
        import PIL.Image

        monkeypatch.setattr(PIL.Image, "open", _guarded_pil_open(PIL.Image.open, str(secret)))
    else:
        secret.chmod(0)
        locked.chmod(0)
    try:
        with Library.open(tmp_path / "lib", spec16()) as lib:
            rep = Indexer(lib, fake_encoder, workers=0).run([root])
            errors = dict(lib.catalogue.errors())
    finally:
        secret.chmod(0o644)
        locked.chmod(0o755)
    assert rep.added >= 1 and lib_has(errors, "secret.png", "permission denied")
    assert lib_has(errors, "locked", "permission denied")


def _guarded_pil_open(real, denied):
    def open_(fp, *a, **kw):
        if os.fspath(fp) == denied:
            raise PermissionError(13, "Permission denied", denied)
        return real(fp, *a, **kw)

    return open_


def lib_has(errors: dict[str, str], name: str, reason: str) -> bool:
    return any(Path(p).name == name and reason in r for p, r in errors.items())


def test_files_vanish_or_change_between_scan_and_decode(tmp_path, fake_encoder):
    root = tmp_path / "r"
    for i in range(6):
        solid(root / f"img{i}.png", (i * 40, 10, 10))
    note(root / "n.txt", "hello there")
    fired = []

    def sabotage(p: Progress) -> None:
        if p.phase == "embedding" and p.done == 0 and not fired:
            fired.append(1)
            (root / "img2.png").unlink()
            (root / "n.txt").unlink()
            (root / "img4.png").write_bytes(b"now garbage")

    with Library.open(tmp_path / "lib", spec16()) as lib:
        rep = Indexer(lib, fake_encoder, workers=0, on_progress=sabotage).run([root])
        errors = {Path(p).name: r for p, r in lib.catalogue.errors()}
        assert rep.errors == 3 and "vanished" in errors["img2.png"]
        assert "vanished" in errors["n.txt"]
        assert "img4.png" in errors
        again = Indexer(lib, fake_encoder, workers=0).run([root])
        assert again.removed == 2  # the vanished ones leave; nothing crashes
        assert lib.catalogue.counts()["images"] == 4


def test_root_unplugged_mid_run_keeps_index_and_recovers(tmp_path, fake_encoder):
    root = tmp_path / "usb"
    for i in range(30):
        solid(root / f"img{i:02d}.png", (i * 8, 100, 10))
    with Library.open(tmp_path / "lib", spec16()) as lib:
        Indexer(lib, fake_encoder, workers=0).run([root])
        for i in range(30):  # all change while the drive was away
            solid(root / f"img{i:02d}.png", (i * 8, 10, 100))
        moved = []

        def unplug(p: Progress) -> None:
            if p.phase == "embedding" and p.done >= 8 and not moved:
                moved.append(shutil.move(root, tmp_path / "away"))

        rep = Indexer(lib, fake_encoder, workers=0, batch_size=4, on_progress=unplug).run([root])
        assert rep.errors > 0 and not rep.cancelled
        shutil.move(tmp_path / "away", root)
        back = Indexer(lib, fake_encoder, workers=0).run([root])
        assert back.removed == 0
        assert lib.catalogue.counts()["images"] == 30 and lib.catalogue.counts()["errors"] == 0


def test_search_while_indexing_is_always_consistent(tmp_path):
    root = tmp_path / "r"
    for i in range(300):
        solid(root / f"img{i:03d}.png", ((i * 7) % 255, (i * 3) % 255, 90), size=(8, 8))
    enc = FakeEncoder()
    created = {str(p) for p in root.iterdir()}
    lib = Library.open(tmp_path / "lib", spec16())
    problems: list[str] = []
    done = threading.Event()
    searches = [0]

    def searcher() -> None:
        s = Searcher(lib, enc)
        q = enc.encode_images(np.full((1, 2, 2, 3), 120, np.uint8))[0]
        while not done.is_set():
            try:
                res = s.search(vector=q, k=20, mode="vector")
                ids = [r.file_id for r in res]
                if len(ids) != len(set(ids)):
                    problems.append("duplicate file in results")
                scores = [r.score for r in res]
                if scores != sorted(scores, reverse=True) or any(abs(x) > 1.0001 for x in scores):
                    problems.append(f"bad scores {scores}")
                for r in res:
                    if r.path not in created or r.kind != "image":
                        problems.append(f"half-written or foreign row {r}")
                searches[0] += 1
            except Exception as exc:  # noqa: BLE001
                problems.append(repr(exc))

    threads = [threading.Thread(target=searcher) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        Indexer(lib, enc, workers=0, batch_size=8).run([root])
        for i in range(0, 300, 3):  # deletions race with searches too
            (root / f"img{i:03d}.png").unlink()
        Indexer(lib, enc, workers=0, batch_size=8).run([root])
    finally:
        done.set()
        for t in threads:
            t.join()
        lib.close()
    assert not problems, problems[:5]
    assert searches[0] > 10


def test_readonly_open_searches_while_a_writer_holds_the_lock(tmp_path, fake_encoder):
    root = tmp_path / "r"
    solid(root / "a.png", (200, 0, 0))
    writer = Library.open(tmp_path / "lib", spec16())
    try:
        Indexer(writer, fake_encoder, workers=0).run([root])
        reader = Library.open(tmp_path / "lib", spec16(), readonly=True)
        assert reader.vectors.count() == 1
        reader.close()
    finally:
        writer.close()


def _two_model_library(tmp_path):
    root = tmp_path / "r"
    for i in range(10):
        solid(root / f"img{i}.png", (i * 25, 50, 200 - i * 20))
    note(root / "n.md", "the red kite over the beach")
    old_spec, new_spec = spec16(), spec16(pretrained="magpie-shapes-v2")
    lib = Library.open(tmp_path / "lib", old_spec)
    Indexer(lib, FakeEncoder(), workers=0).run([root])
    return root, lib, old_spec, new_spec


def test_migration_builds_side_by_side_then_switches(tmp_path):
    root, old, old_spec, new_spec = _two_model_library(tmp_path)
    before = snapshot(root)
    searched_during: list[int] = []
    s = Searcher(old, FakeEncoder())

    def probe(p: Progress) -> None:  # the old index keeps answering mid-migration
        if p.phase == "embedding":
            searched_during.append(len(s.search("kite", k=5)))

    result = migrate(old.root, new_spec, FakeEncoder(), workers=0, batch_size=3,
                     on_progress=probe, source=old)
    old.close()
    assert result.switched and result.report.embedded_files == 11
    assert searched_during and all(n > 0 for n in searched_during)
    info = LibraryInfo.read(tmp_path / "lib")
    assert info.active == new_spec.fingerprint() and info.migration is None
    with Library.open(tmp_path / "lib", new_spec) as new:
        assert new.vectors.count() == 11
    assert snapshot(root) == before


def test_interrupted_migration_resumes_and_old_stays_active(tmp_path):
    root, old, old_spec, new_spec = _two_model_library(tmp_path)
    control = JobControl()

    def cancel_soon(p: Progress) -> None:
        if p.phase == "embedding" and p.done >= 3:
            control.cancel()

    first = migrate(old.root, new_spec, FakeEncoder(), control=control, workers=0,
                    batch_size=3, on_progress=cancel_soon, source=old)
    assert not first.switched and first.report.cancelled
    assert LibraryInfo.read(old.root).active == old_spec.fingerprint()
    assert LibraryInfo.read(old.root).migration == new_spec.fingerprint()
    enc = FakeEncoder()
    second = migrate(old.root, new_spec, enc, workers=0, batch_size=3, source=old)
    old.close()
    assert second.switched
    assert 0 < second.report.embedded_files < 11  # resumed: the first batches were kept
    assert LibraryInfo.read(tmp_path / "lib").active == new_spec.fingerprint()


def test_heic_photos_are_indexed(tmp_path, fake_encoder):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    from PIL import Image

    root = tmp_path / "iphone"
    root.mkdir()
    Image.new("RGB", (64, 48), (10, 200, 10)).save(root / "IMG_0001.HEIC")
    with Library.open(tmp_path / "lib", spec16()) as lib:
        rep = Indexer(lib, fake_encoder, workers=0).run([root])
    assert rep.added == 1 and rep.errors == 0
