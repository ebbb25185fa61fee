"""What both ONNX exports (the text tower, indexer/text_runtime.py, and the image tower,
indexer/image_runtime.py) promise alike, checked once for each: a stale, foreign or damaged
export is never used, one over the tolerance is never cached, and MAGPIE_*_RUNTIME=torch
turns them off. Each tower's own comparison with open_clip stays in its test file."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from indexer import image_runtime, text_runtime
from indexer.specs import TINY_SHAPES

pytestmark = pytest.mark.timeout(600)


@dataclasses.dataclass(frozen=True)
class Tower:
    module: ModuleType  # where MAX_ABS_DIFF lives
    export: Callable[..., dict | None]  # (spec, model, cache_dir) -> its metadata or None
    load: Callable[..., Any]  # (spec, cache_dir) -> a runtime or None
    env: str  # the variable that forces torch


TOWERS = {
    "text": Tower(text_runtime, text_runtime.export_text_tower, text_runtime.load_text_runtime,
                  text_runtime.ENV_TEXT_RUNTIME),
    "image": Tower(image_runtime, image_runtime.export_image_tower,
                   image_runtime.load_image_runtime, image_runtime.ENV_IMAGE_RUNTIME),
}


@pytest.fixture(params=list(TOWERS))
def tower(request) -> Tower:
    return TOWERS[request.param]


def test_stale_foreign_or_damaged_export_is_not_used(tower, tiny_encoder, tmp_path):
    cache = tmp_path / "cache"
    meta = tower.export(TINY_SHAPES, tiny_encoder._model, cache)
    assert meta is not None and tower.load(TINY_SHAPES, cache) is not None
    other = dataclasses.replace(TINY_SHAPES, sha256="0" * 64)  # another fingerprint: not found
    assert tower.load(other, cache) is None
    paths = tower.module.export_paths(TINY_SHAPES, cache, meta["onnxruntime"])
    with open(paths.graph, "ab") as fh:  # a changed file: its size no longer matches
        fh.write(b"\0")
    assert tower.load(TINY_SHAPES, cache) is None
    paths.meta.unlink()
    assert tower.load(TINY_SHAPES, cache) is None


def test_export_over_the_tolerance_is_not_cached(tower, tiny_encoder, tmp_path, monkeypatch):
    monkeypatch.setattr(tower.module, "MAX_ABS_DIFF", 0.0)
    cache = tmp_path / "cache"
    assert tower.export(TINY_SHAPES, tiny_encoder._model, cache) is None
    monkeypatch.setattr(tower.module, "MAX_ABS_DIFF", 1e-5)
    assert tower.load(TINY_SHAPES, cache) is None
    left = [p.name for p in cache.rglob("*") if p.is_file()]
    assert left == [], left


def test_torch_can_be_forced(tower, tiny_encoder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    assert tower.export(TINY_SHAPES, tiny_encoder._model, cache) is not None
    monkeypatch.setenv(tower.env, "torch")
    assert tower.load(TINY_SHAPES, cache) is None


def test_a_stale_export_is_made_again_at_the_next_torch_load(tiny_encoder, tmp_path):
    """Its files changed since the check (a copied or restored cache): the export is not used
    and, since it is there but stale, the next torch load must make it again; before, only a
    missing record did, so every later run stayed on torch."""
    import os

    from indexer.lazy_encoder import LazyEncoder

    cache = tmp_path / "cache"
    made = {name: t.export(TINY_SHAPES, tiny_encoder._model, cache) for name, t in TOWERS.items()}
    for name, t in TOWERS.items():
        paths = t.module.export_paths(TINY_SHAPES, cache, made[name]["onnxruntime"])
        st = paths.graph.stat()
        os.utime(paths.graph, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # as a copy does
        assert t.load(TINY_SHAPES, cache) is None, name
    enc = LazyEncoder(TINY_SHAPES, TINY_SHAPES.bundled_path(), cache_dir=cache)
    try:
        enc.full()
    finally:
        enc.close()
    for name, t in TOWERS.items():
        assert t.load(TINY_SHAPES, cache) is not None, name
