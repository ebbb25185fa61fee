"""Incremental indexing, moves, deletions and the library's rules, with a fake model."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import note, snapshot, solid

from indexer.indexing import Indexer
from indexer.library import Library, ModelMismatch
from indexer.search import Searcher
from indexer.specs import TINY_SHAPES, VIT_B_32


def spec_for(encoder):
    """A spec whose dims match the fake encoder (the fake is 'tiny-shapes' to the library)."""
    from dataclasses import replace

    return replace(TINY_SHAPES, embed_dim=encoder.dim)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    solid(root / "red.png", (250, 10, 10))
    solid(root / "green.jpg", (10, 240, 10))
    solid(root / "sub" / "blue.png", (10, 10, 250))
    note(root / "notes" / "todo.txt", "buy a ladder at the hardware store")
    return root


def run(lib: Library, enc, roots=None):
    return Indexer(lib, enc, workers=0, batch_size=2).run(roots)


def test_index_then_nothing_to_embed(tmp_path, photos, fake_encoder):
    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        first = run(lib, fake_encoder, [photos])
        assert (first.added, first.embedded_files, first.errors) == (4, 4, 0)
        assert lib.vectors.count() == 4
        images_before = fake_encoder.images_encoded
        second = run(lib, fake_encoder, [photos])
    assert second.embedded_files == 0 and second.unchanged == 4
    assert fake_encoder.images_encoded == images_before
    assert "nothing to embed" in second.summary()


def test_changed_file_is_reembedded(tmp_path, photos, fake_encoder):
    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        run(lib, fake_encoder, [photos])
        solid(photos / "red.png", (250, 250, 10))  # now yellow
        os.utime(photos / "red.png", ns=(1, 2_000_000_000_000_000_000))
        rep = run(lib, fake_encoder, [photos])
        assert (rep.updated, rep.embedded_files) == (1, 1)
        hits = Searcher(lib, fake_encoder).vector_ranking(
            fake_encoder.encode_images(np.full((1, 4, 4, 3), (250, 250, 10), np.uint8))[0], 1
        )
        assert hits[0].path.endswith("red.png") and hits[0].score > 0.99
        assert lib.vectors.count() == 4


def test_touched_but_same_content_is_not_reembedded(tmp_path, photos, fake_encoder):
    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        run(lib, fake_encoder, [photos])
        os.utime(photos / "green.jpg", ns=(1, 1_000_000_000))
        rep = run(lib, fake_encoder, [photos])
    assert rep.embedded_files == 0 and rep.unchanged == 4


def test_deleted_file_leaves_index(tmp_path, photos, fake_encoder):
    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        run(lib, fake_encoder, [photos])
        (photos / "green.jpg").unlink()
        rep = run(lib, fake_encoder, [photos])
        assert rep.removed == 1
        assert lib.vectors.count() == 3
        paths = [r.path for r in Searcher(lib, fake_encoder).vector_ranking(
            np.eye(fake_encoder.dim, dtype=np.float32)[1], 10)]
    assert not any(p.endswith("green.jpg") for p in paths)


def test_moved_file_keeps_vectors_without_reembedding(tmp_path, photos, fake_encoder):
    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        run(lib, fake_encoder, [photos])
        old_ids = set(lib.vectors.ids().tolist())
        (photos / "archive").mkdir()
        shutil.move(photos / "sub" / "blue.png", photos / "archive" / "renamed.png")
        shutil.move(photos / "notes" / "todo.txt", photos / "todo-moved.txt")
        before = (fake_encoder.images_encoded, fake_encoder.texts_encoded)
        rep = run(lib, fake_encoder, [photos])
        assert (rep.moved, rep.embedded_files, rep.removed) == (2, 0, 0)
        assert (fake_encoder.images_encoded, fake_encoder.texts_encoded) == before
        assert set(lib.vectors.ids().tolist()) == old_ids
        res = Searcher(lib, fake_encoder).search("hardware ladder", k=1, mode="vector")
    assert res[0].path.endswith("todo-moved.txt")


def test_duplicate_content_reuses_vectors(tmp_path, photos, fake_encoder):
    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        run(lib, fake_encoder, [photos])
        shutil.copy(photos / "red.png", photos / "red-copy.png")
        before = fake_encoder.images_encoded
        rep = run(lib, fake_encoder, [photos])
        assert rep.copied == 1 and rep.embedded_files == 0
        assert fake_encoder.images_encoded == before
        assert lib.vectors.count() == 5


def test_unreachable_root_keeps_its_entries(tmp_path, photos, fake_encoder):
    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        run(lib, fake_encoder, [photos])
        shutil.move(photos, tmp_path / "unplugged")
        rep = run(lib, fake_encoder)  # rescan all roots
        assert rep.removed == 0 and rep.errors == 1
        assert lib.vectors.count() == 4
        assert any("not reachable" in r for _, r in lib.catalogue.errors())


def test_library_folder_inside_root_is_skipped(tmp_path, photos, fake_encoder):
    with Library.open(photos / "my-library", spec_for(fake_encoder)) as lib:
        rep = run(lib, fake_encoder, [photos])
    assert rep.added == 4


def test_remove_root_forgets_vectors_but_not_files(tmp_path, photos, fake_encoder):
    before = snapshot(photos)
    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        run(lib, fake_encoder, [photos])
        n = Indexer(lib, fake_encoder).remove_root(photos)
        assert n == 4 and lib.vectors.count() == 0
        assert lib.catalogue.counts()["images"] == 0
    assert snapshot(photos) == before


def test_model_mismatch_is_refused_naming_both(tmp_path, fake_encoder):
    Library.open(tmp_path / "lib", spec_for(fake_encoder)).close()
    with pytest.raises(ModelMismatch) as err:
        Library.open(tmp_path / "lib", VIT_B_32)
    msg = str(err.value)
    assert "tiny-shapes" in msg and "vit-b-32" in msg and "magpie migrate" in msg


def test_second_process_gets_library_in_use(tmp_path, fake_encoder):
    import subprocess
    import sys

    lib = Library.open(tmp_path / "lib", spec_for(fake_encoder))
    try:
        code = (
            "import sys; from indexer.library import Library, LibraryInUse\n"
            "from indexer.specs import TINY_SHAPES\n"
            "try:\n Library.open(sys.argv[1], TINY_SHAPES)\n"
            "except LibraryInUse as e:\n print(e); sys.exit(3)\n"
        )
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "lib")],
                             capture_output=True, text=True, cwd=Path(__file__).parent.parent)
        assert out.returncode == 3, out.stderr
        assert "in use by another Magpie process" in out.stdout
        assert str(os.getpid()) in out.stdout
    finally:
        lib.close()


def test_deleted_or_truncated_hnsw_is_rebuilt_from_sqlite(tmp_path, photos, fake_encoder):
    lib_dir = tmp_path / "lib"
    with Library.open(lib_dir, spec_for(fake_encoder)) as lib:
        run(lib, fake_encoder, [photos])
        folder = lib.folder
    (folder / "vectors.hnsw").unlink()
    with Library.open(lib_dir, spec_for(fake_encoder)) as lib:
        assert lib.vectors.count() == 4
    data = (folder / "vectors.hnsw").read_bytes()
    (folder / "vectors.hnsw").write_bytes(data[: len(data) // 3])
    with Library.open(lib_dir, spec_for(fake_encoder)) as lib:
        assert lib.vectors.count() == 4
        assert len(Searcher(lib, fake_encoder).search("ladder", k=4, mode="vector")) == 4


def test_stale_hnsw_is_reconciled(tmp_path, photos, fake_encoder):
    """An index saved before the last batches (a crash) catches up from SQLite on open."""
    lib_dir = tmp_path / "lib"
    with Library.open(lib_dir, spec_for(fake_encoder)) as lib:
        run(lib, fake_encoder, [photos])
        folder = lib.folder
    saved = {p.name: p.read_bytes() for p in folder.glob("vectors.*")}
    with Library.open(lib_dir, spec_for(fake_encoder)) as lib:
        solid(photos / "new.png", (1, 2, 3))
        (photos / "green.jpg").unlink()
        run(lib, fake_encoder, [photos])
    for name, data in saved.items():  # roll the index files back to the older state
        (folder / name).write_bytes(data)
    with Library.open(lib_dir, spec_for(fake_encoder)) as lib:
        assert set(lib.vectors.ids().tolist()) == set(lib.catalogue.chunk_ids().tolist())
        assert lib.vectors.count() == 4


def test_errors_are_recorded_and_the_rest_indexed(tmp_path, fake_encoder):
    root = tmp_path / "mixed"
    solid(root / "ok.png", (9, 9, 9))
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("I am not a picture")
    (root / "trunc.png").write_bytes((solid(tmp_path / "x.png", (1, 1, 1), (300, 300))).read_bytes()[:200])
    (root / "binary.txt").write_bytes(bytes(range(256)) * 4)
    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        rep = run(lib, fake_encoder, [root])
        errors = dict(lib.catalogue.errors())
    assert rep.errors == 4 and lib_count_ok(rep)
    assert "empty file" in errors[str(root / "empty.jpg")]
    assert "contains text" in errors[str(root / "text.jpg")]
    assert "truncated" in errors[str(root / "trunc.png")] or "corrupt" in errors[str(root / "trunc.png")]
    assert "binary" in errors[str(root / "binary.txt")]


def lib_count_ok(rep) -> bool:
    return rep.added == 5 and rep.embedded_files == 5


def test_failed_file_is_retried_only_when_it_changes(tmp_path, fake_encoder):
    root = tmp_path / "r"
    (root).mkdir()
    (root / "bad.png").write_bytes(b"garbage")
    with Library.open(tmp_path / "lib", spec_for(fake_encoder)) as lib:
        run(lib, fake_encoder, [root])
        again = run(lib, fake_encoder, [root])
        assert again.embedded_files == 0
        solid(root / "bad.png", (5, 5, 5))
        fixed = run(lib, fake_encoder, [root])
        assert fixed.embedded_files == 1 and lib.catalogue.counts()["errors"] == 0


def test_a_library_is_never_created_in_a_folder_of_other_files(tmp_path, photos, fake_encoder):
    from indexer.library import NotALibrary

    before = snapshot(photos)
    with pytest.raises(NotALibrary, match="nothing was written"):
        Library.open(photos, spec_for(fake_encoder))
    assert snapshot(photos) == before and not (photos / "lock").exists()
    # asked for explicitly (the window's confirmation), it is made there, files untouched
    with Library.open(photos, spec_for(fake_encoder), allow_non_empty=True):
        pass
    assert (photos / "magpie-library.json").exists()
    # and from then on it is a library: it opens without asking again
    with Library.open(photos, spec_for(fake_encoder)):
        pass
    assert {k: v for k, v in snapshot(photos).items() if k in before} == before


def test_an_empty_folder_or_leftover_lock_is_fine_for_a_new_library(tmp_path, fake_encoder):
    empty = tmp_path / "new-lib"
    empty.mkdir()
    (empty / "lock").write_text("123")  # a first open that stopped early
    with Library.open(empty, spec_for(fake_encoder)):
        pass
    assert (empty / "magpie-library.json").exists()
