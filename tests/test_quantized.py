"""The int8 variant (vit-b-32-int8): a model of its own, made deterministically, checked, never
mixed with fp32 vectors, and still ranking the right pictures.

The bundled tiny-shapes model goes through the same path as ViT-B-32 (fp32 ONNX export, then
ONNX Runtime dynamic int8 by the spec's recipe): quick enough for CI, and its ranking means
something. ViT-B-32's own figures are bench/int8_agreement.py's (bench/RESULTS.md, #12).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from indexer import image_runtime, quantized_runtime
from indexer.library import Library, ModelMismatch
from indexer.quantized_runtime import QuantizedModelUnavailable
from indexer.specs import SPECS, TINY_SHAPES, VIT_B_32, VIT_B_32_INT8, Quantization, int8_variant
from indexer.weights import cache_path

TINY_INT8 = int8_variant(TINY_SHAPES, "tiny-shapes-int8")
pytestmark = pytest.mark.timeout(600)


def _pixels(n: int = 6, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def fp32_cache(tiny_encoder, tmp_path_factory) -> Path:
    """A cache holding tiny-shapes' checked fp32 image export (what the int8 graph is made from)."""
    cache = tmp_path_factory.mktemp("int8") / "cache"
    assert image_runtime.export_image_tower(TINY_SHAPES, tiny_encoder._model, cache) is not None
    return cache


def _copy_cache(src: Path, dest: Path) -> Path:
    # a real copy (ONNX refuses external weights behind hard links), of the fp32 exports only
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(TINY_INT8.name))
    return dest


# -- identity ---------------------------------------------------------------------------------
def test_the_int8_variant_is_its_own_model_on_the_same_pin():
    assert SPECS["vit-b-32-int8"] is VIT_B_32_INT8
    assert VIT_B_32_INT8.fingerprint() != VIT_B_32.fingerprint()
    assert VIT_B_32_INT8.sha256 == VIT_B_32.sha256 and VIT_B_32_INT8.revision == VIT_B_32.revision
    assert VIT_B_32_INT8.fp32_base().fingerprint() == VIT_B_32.fingerprint()
    # the recipe is part of what the vectors are: another recipe is another model
    other = dataclasses.replace(VIT_B_32_INT8,
                                quantization=Quantization(base="vit-b-32", per_channel=False))
    assert other.fingerprint() != VIT_B_32_INT8.fingerprint()
    # one checkpoint on disk for both
    assert cache_path(VIT_B_32_INT8, Path("/c")) == cache_path(VIT_B_32, Path("/c"))
    assert "agreement with vit-b-32" in VIT_B_32_INT8.quality_text()


def test_a_library_of_one_refuses_the_other(tmp_path):
    Library.open(tmp_path / "a", TINY_INT8).close()
    with pytest.raises(ModelMismatch) as err:
        Library.open(tmp_path / "a", TINY_SHAPES)
    assert "tiny-shapes-int8" in str(err.value) and "magpie migrate" in str(err.value)
    Library.open(tmp_path / "b", TINY_SHAPES).close()
    with pytest.raises(ModelMismatch):
        Library.open(tmp_path / "b", TINY_INT8)


# -- the graph --------------------------------------------------------------------------------
def test_the_int8_graph_is_what_the_recipe_makes(fp32_cache, tmp_path):
    """Made twice from the same fp32 export, it is the same file; its sha256, recipe, versions
    and measured cosines are recorded; it agrees with fp32 on pictures it was not checked on."""
    meta = quantized_runtime.quantize_image_tower(TINY_INT8, fp32_cache)
    paths = quantized_runtime.export_paths(TINY_INT8, fp32_cache, meta["onnxruntime"])
    assert meta == json.loads(paths.meta.read_text())
    assert meta["graph_sha256"] == quantized_runtime.sha256_of(paths.graph)
    assert meta["recipe"]["method"] == "onnxruntime-dynamic" and meta["recipe"]["reduce_range"]
    assert meta["fingerprint"] == TINY_INT8.fingerprint()
    assert meta["base_fingerprint"] == TINY_SHAPES.fingerprint()
    assert quantized_runtime.MIN_COSINE <= meta["cosine_min"] <= meta["cosine_mean"] < 1.0

    again = _copy_cache(fp32_cache, tmp_path / "again")
    meta2 = quantized_runtime.quantize_image_tower(TINY_INT8, again)
    assert meta2["graph_sha256"] == meta["graph_sha256"]

    int8 = quantized_runtime.load_quantized_runtime(TINY_INT8, fp32_cache, threads=1)
    fp32 = image_runtime.load_image_runtime(TINY_SHAPES, fp32_cache, threads=1)
    assert int8 is not None and fp32 is not None and "int8" in int8.runtime
    px = _pixels()
    a, b = int8.encode_images(px), fp32.encode_images(px)
    cos = (a * b).sum(axis=1)
    # the check's threshold holds on unseen pictures too, and int8 is not fp32 in disguise
    assert cos.min() >= quantized_runtime.MIN_COSINE and not np.array_equal(a, b)


def test_a_changed_or_foreign_int8_graph_is_not_used(fp32_cache, tmp_path):
    cache = _copy_cache(fp32_cache, tmp_path / "cache")
    meta = quantized_runtime.quantize_image_tower(TINY_INT8, cache)
    assert quantized_runtime.load_quantized_runtime(TINY_INT8, cache) is not None
    other = int8_variant(dataclasses.replace(TINY_SHAPES, sha256="0" * 64), "tiny-shapes-int8")
    assert quantized_runtime.load_quantized_runtime(other, cache) is None
    graph = quantized_runtime.export_paths(TINY_INT8, cache, meta["onnxruntime"]).graph
    st = graph.stat()
    data = bytearray(graph.read_bytes())
    data[-1] ^= 0xFF  # same size, same mtime: only the sha256 can tell
    graph.write_bytes(bytes(data))
    os.utime(graph, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert quantized_runtime.load_quantized_runtime(TINY_INT8, cache) is None


def test_an_int8_graph_too_far_from_fp32_is_refused(fp32_cache, tmp_path, monkeypatch):
    cache = _copy_cache(fp32_cache, tmp_path / "cache")
    monkeypatch.setattr(quantized_runtime, "MIN_COSINE", 1.01)
    with pytest.raises(QuantizedModelUnavailable) as err:
        quantized_runtime.quantize_image_tower(TINY_INT8, cache)
    assert "tiny-shapes" in str(err.value)
    assert not [p for p in (cache / "models" / TINY_INT8.name).rglob("*") if p.is_file()]


def test_an_fp32_export_the_tools_refuse_is_one_clear_message(fp32_cache, tmp_path):
    """ONNX refuses external weights behind a hard link (a backup tool's dedupe can make one):
    a plain message naming the folder and what to do, no traceback, nothing left behind."""
    cache = _copy_cache(fp32_cache, tmp_path / "cache")
    weights = next(cache.rglob("image-onnx/*.onnx.weights"))
    os.link(weights, tmp_path / "second-name")
    with pytest.raises(QuantizedModelUnavailable) as err:
        quantized_runtime.quantize_image_tower(TINY_INT8, cache)
    assert "delete that folder" in str(err.value) and "Traceback" not in str(err.value)
    assert not [p for p in (cache / "models" / TINY_INT8.name).rglob("*") if p.is_file()]


# -- the lazy encoder -------------------------------------------------------------------------
def test_lazy_int8_makes_its_graph_once_and_never_embeds_on_torch(tiny_encoder, tmp_path,
                                                                  monkeypatch):
    from indexer import model
    from indexer.lazy_encoder import LazyEncoder

    loads = []
    real = model.load_encoder
    monkeypatch.setattr(model, "load_encoder", lambda *a, **kw: loads.append(1) or real(*a, **kw))
    cache = tmp_path / "cache"
    px = _pixels()
    # as on a GPU box: int8 still runs (and makes its fp32 exports) on the CPU
    monkeypatch.setattr(model, "guess_device", lambda prefer=None: "cuda")
    monkeypatch.setattr(model, "pick_device", lambda prefer=None: "cuda")
    enc = LazyEncoder(TINY_INT8, TINY_SHAPES.bundled_path(), cache_dir=cache, model_threads=1)
    assert enc.device == "cpu"
    first = enc.encode_images(px)  # nothing cached: torch once (fp32 exports), then int8
    assert loads == [1] and enc.loaded == "onnx" and "int8" in enc.image_runtime
    assert enc.device == "cpu"
    # text: the base model's own fp32 tower and export, so queries are tiny-shapes' vectors
    assert np.abs(enc.encode_texts(["a red circle"])
                  - tiny_encoder.encode_texts(["a red circle"])).max() <= 1e-5
    enc.close()
    enc2 = LazyEncoder(TINY_INT8, TINY_SHAPES.bundled_path(), cache_dir=cache, model_threads=1)
    assert np.array_equal(enc2.encode_images(px), first) and loads == [1]  # no torch again
    enc2.close()

    monkeypatch.setenv(image_runtime.ENV_IMAGE_RUNTIME, "torch")
    enc3 = LazyEncoder(TINY_INT8, TINY_SHAPES.bundled_path(), cache_dir=cache)
    with pytest.raises(QuantizedModelUnavailable) as err:
        enc3.encode_images(px)
    assert "tiny-shapes" in str(err.value) and "torch" in str(err.value)
    assert loads == [1]


def test_int8_search_still_ranks_the_right_shapes(shapes_folder, tiny_encoder, tmp_path):
    """Index the demo pictures with each model; for every colour x shape query the first
    result is the asked-for shape as often with int8 as with fp32 (all 66 with both when this
    was written), and the two top 10s overlap."""
    from indexer.indexing import Indexer
    from indexer.lazy_encoder import LazyEncoder
    from indexer.search import SearchRequest, Searcher

    folder, items = shapes_folder
    labels = {str(i.path): (i.color, i.shape) for i in items if i.color}
    classes = sorted(set(labels.values()))
    int8 = LazyEncoder(TINY_INT8, TINY_SHAPES.bundled_path(), cache_dir=tmp_path / "cache",
                       model_threads=1)
    hits = {}
    tops = {}
    for name, spec, enc in (("fp32", TINY_SHAPES, tiny_encoder), ("int8", TINY_INT8, int8)):
        with Library.open(tmp_path / name, spec) as lib:
            Indexer(lib, enc, workers=0).run([folder])
            if name == "int8":
                assert lib.catalogue.get_meta("image_runtime") == int8.image_runtime
            s = Searcher(lib, enc)
            hits[name], tops[name] = 0, {}
            for colour, shape in classes:
                page = s.run(SearchRequest(f"a {colour} {shape}", k=10, mode="vector"))
                paths = [r.open_path for r in page.results if r.open_path in labels]
                hits[name] += labels[paths[0]] == (colour, shape)
                tops[name][(colour, shape)] = set(paths[:10])
    int8.close()
    overlap = np.mean([len(tops["int8"][c] & tops["fp32"][c]) / 10 for c in classes])
    assert hits["fp32"] >= 0.5 * len(classes)  # the model itself ranks (sanity for the test)
    assert hits["int8"] >= hits["fp32"] - len(classes) // 20
    assert overlap >= 0.85, overlap  # measured 0.94: the rest are ties among other classes
