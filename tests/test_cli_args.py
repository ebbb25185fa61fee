"""Small CLI promises (issue 10, item 10): arguments that make no sense are refused with a
clear line before anything is opened, and the index summary's counts agree."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import note, solid

from indexer.specs import TINY_SHAPES

ROOT = Path(__file__).resolve().parent.parent


def magpie(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.main", *args], cwd=ROOT,
                          env=env or os.environ, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("k", ["-1", "0", "99999999999999999999", "10001", "ten"])
@pytest.mark.parametrize("mode", ["hybrid", "keyword"])
def test_k_outside_1_to_max_is_refused_in_every_mode(tmp_path, k, mode):
    out = magpie("search", "red", f"-k={k}", "--mode", mode, "--library", str(tmp_path / "l"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "argument -k:" in out.stderr
    assert "must be from 1 to 10000" in out.stderr or "not a whole number" in out.stderr
    assert not (tmp_path / "l").exists()


def test_after_not_before_before_is_refused(tmp_path):
    for after, before in [("2024-02-01", "2024-01-01"), ("2024-01-01", "2024-01-01")]:
        out = magpie("search", "red", "--after", after, "--before", before,
                     "--library", str(tmp_path / "l"))
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert out.stderr.strip() == ("magpie: --after must be an earlier date than --before "
                                      "(--after is inclusive, --before exclusive)")


def test_weights_for_the_bundled_model_are_refused_not_ignored(tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")
    for cmd in (["index", str(tmp_path)], ["search", "red"]):
        out = magpie(*cmd, "--model", "tiny-shapes", "--weights", str(weights),
                     "--library", str(tmp_path / "l"))
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert "tiny-shapes ships with Magpie" in out.stderr and "--weights" in out.stderr
    out = magpie("migrate", "--model", "tiny-shapes", "--weights", str(weights),
                 "--library", str(tmp_path / "l"))
    assert out.returncode == 2 and "no library" in out.stderr  # named before the weights
    assert not (tmp_path / "l").exists()


@pytest.mark.parametrize("flag", ["--workers", "--batch-size"])
def test_non_positive_tuning_is_refused(tmp_path, flag):
    out = magpie("index", str(tmp_path), flag, "0", "--library", str(tmp_path / "l"))
    assert out.returncode == 2 and "positive whole number" in out.stderr
    assert not (tmp_path / "l").exists()


def test_every_counted_error_reaches_on_error(tmp_path, fake_encoder, monkeypatch):
    """The summary's error count and the errors reported one by one (the CLI's "N could not be
    read", the GUI's error panel) are the same errors: a file that cannot be hashed used to be
    counted but never reported."""
    import indexer.indexing as indexing
    from indexer.library import Library

    root = tmp_path / "photos"
    solid(root / "red.png", (250, 10, 10))
    solid(root / "unreadable.png", (10, 250, 10))
    note(root / "n.txt", "a note")
    os.symlink(root / "gone.png", root / "dangling.png")
    real_hash = indexing.content_hash

    def hash_or_fail(path, *rest):
        if path.endswith("unreadable.png"):
            raise PermissionError(13, "Permission denied", path)
        return real_hash(path, *rest)

    monkeypatch.setattr(indexing, "content_hash", hash_or_fail)
    reported = []
    with Library.open(tmp_path / "lib", replace(TINY_SHAPES, embed_dim=fake_encoder.dim)) as lib:
        report = indexing.Indexer(lib, fake_encoder, workers=0, batch_size=2,
                                  on_error=reported.append).run([str(root)])
    assert report.errors == 2 and len(reported) == 2
    assert {os.path.basename(e.path) for e in reported} == {"unreadable.png", "dangling.png"}
    assert "2 errors" in report.summary()


def test_summary_pluralises():
    from indexer.jobs import IndexReport

    assert "1 error " not in IndexReport(errors=2, added=1, embedded_files=1).summary()
    assert ", 1 error in" in IndexReport(errors=1, added=1, embedded_files=1).summary()
    assert IndexReport(unchanged=1).summary() == "nothing to embed: 1 file unchanged"
