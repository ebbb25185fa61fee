"""The image tower on ONNX Runtime, and the CPU plan that sizes decode and model threads.

Proves (1) the export matches open_clip's own `encode_image` (and `Encoder.encode_images`)
within 1e-5 for the tiny model and a full-size random ViT-B-32, with the measured difference
recorded; (2) a stale, foreign or over-tolerance export is never used; (3) the lazy encoder
embeds pictures on the export when one is cached, and when it is not, loads torch once, makes
the exports and lets the torch model go; (4) a `magpie index` of new pictures with the exports
cached never imports torch (sys.modules in a fresh process) and stores the same vectors.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer import cpu_budget, image_runtime
from indexer.specs import MOBILECLIP_S2, TINY_SHAPES

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(900)


def _pixels(size: int, n: int = 5, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _check_against_open_clip(spec, encoder, cache: Path) -> dict:
    import torch

    meta = image_runtime.export_image_tower(spec, encoder._model, cache)
    assert meta is not None
    assert meta["max_abs_diff_normalised"] <= 1e-5
    on_disk = json.loads(image_runtime.export_paths(spec, cache, meta["onnxruntime"]).meta
                         .read_text())
    assert on_disk["max_abs_diff"] == meta["max_abs_diff"]  # the measured diff is recorded
    rt = image_runtime.load_image_runtime(spec, cache, threads=1)
    assert rt is not None
    px = _pixels(spec.preprocess.image_size)
    p = spec.preprocess
    with torch.no_grad():  # open_clip's own path, normalised by hand from the spec
        x = torch.from_numpy(px).permute(0, 3, 1, 2).float() / 255.0
        x = (x - torch.tensor(p.mean).view(1, 3, 1, 1)) / torch.tensor(p.std).view(1, 3, 1, 1)
        want = encoder._model.encode_image(x).float().numpy()
    got = rt.features(px)
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got - want).max() <= 1e-5 * scale
    unit = rt.encode_images(px)
    assert np.allclose(np.linalg.norm(unit, axis=1), 1, atol=1e-5)
    assert np.abs(unit - encoder.encode_images(px)).max() <= 1e-5
    return meta


def test_tiny_image_export_matches_open_clip(tiny_encoder, tmp_path):
    _check_against_open_clip(TINY_SHAPES, tiny_encoder, tmp_path / "cache")


def test_vit_b32_image_export_matches_open_clip(vit_b32_encoder, tmp_path):
    spec = vit_b32_encoder.spec
    meta = _check_against_open_clip(spec, vit_b32_encoder, tmp_path / "cache")
    assert meta["fingerprint"] == spec.fingerprint()
    assert meta["max_abs_diff"] <= 1e-5  # raw features too, for ViT-B-32


# -- the lazy encoder -------------------------------------------------------------------------
def test_lazy_encoder_exports_then_lets_torch_go(tiny_encoder, tmp_path, monkeypatch):
    from indexer import lazy_encoder, model
    from indexer.lazy_encoder import LazyEncoder

    loads = []
    real = model.load_encoder

    def counting_load(*a, **kw):
        loads.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(model, "load_encoder", counting_load)
    monkeypatch.setenv("MAGPIE_DEVICE", "cpu")
    cache = tmp_path / "cache"
    px = _pixels(64, n=3)
    enc = LazyEncoder(TINY_SHAPES, TINY_SHAPES.bundled_path(), cache_dir=cache)
    first = enc.encode_images(px)  # nothing cached: torch loads, exports, then steps aside
    assert loads == [1] and enc.loaded == "onnx" and enc.image_runtime.startswith("onnxruntime")
    assert np.abs(first - tiny_encoder.encode_images(px)).max() <= 1e-5
    assert enc.encode_texts(["a red circle"]).shape == (1, TINY_SHAPES.embed_dim)
    assert loads == [1] and enc.runtime.startswith("onnxruntime")  # text: the export too
    enc.close()
    enc2 = LazyEncoder(TINY_SHAPES, TINY_SHAPES.bundled_path(), cache_dir=cache)
    again = enc2.encode_images(px)  # next run: no torch model at all
    assert loads == [1] and enc2.loaded == "onnx"
    assert np.array_equal(first, again)
    assert lazy_encoder.LazyEncoder(MOBILECLIP_S2, Path("x")).interpolation == "bilinear"


def test_text_session_goes_before_the_image_session(tiny_encoder, tmp_path, monkeypatch):
    """Indexing embeds notes, then pictures: the text session is let go when the image one
    loads (the mixed-folder peak went 1,027 -> 656 MB), and a later query loads it again."""
    from indexer import text_runtime
    from indexer.lazy_encoder import LazyEncoder

    monkeypatch.setenv("MAGPIE_DEVICE", "cpu")
    cache = tmp_path / "cache"
    assert text_runtime.export_text_tower(TINY_SHAPES, tiny_encoder._model, cache)
    assert image_runtime.export_image_tower(TINY_SHAPES, tiny_encoder._model, cache)
    enc = LazyEncoder(TINY_SHAPES, TINY_SHAPES.bundled_path(), cache_dir=cache)
    before = enc.encode_texts(["a red circle", "a blue square"])  # a batch: not remembered
    assert enc.loaded == "text"
    enc.encode_images(_pixels(64, n=2))
    assert enc.loaded == "onnx" and enc._text is None
    again = enc.encode_texts(["a red circle", "a blue square"])
    assert enc._text is not None and np.array_equal(before, again)


# -- whole process: indexing new pictures with the exports cached imports no torch -------------
PROBE = (
    "import sys\n"
    "from app.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "print('PROBE', rc, 'torch' in sys.modules, file=sys.stderr)\n"
)


def _probe(args: list[str], env: dict) -> tuple[subprocess.CompletedProcess, bool]:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    line = [ln for ln in out.stderr.splitlines() if ln.startswith("PROBE ")]
    assert line, out.stderr
    _, rc, torch_in = line[-1].split()
    assert rc == "0", out.stderr
    return out, torch_in == "True"


def _vectors(lib: Path) -> dict[str, bytes]:
    db = next(lib.rglob("catalogue.sqlite"))
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        assert "files" in tables and "chunks" in tables, tables
        return {Path(p).name: v for p, v in con.execute(
            "select f.path, c.vector from chunks c join files f on f.id = c.file_id")}
    finally:
        con.close()


def test_index_with_cached_exports_never_imports_torch(tmp_path):
    from magpie_demo.shapes import make_demo_folder

    make_demo_folder(tmp_path / "a", n_images=12, seed=5)
    make_demo_folder(tmp_path / "b", n_images=12, seed=5)  # the same pictures again
    env = {**os.environ, "MAGPIE_DATA_DIR": str(tmp_path / "data"), "MAGPIE_DEVICE": "cpu",
           "MAGPIE_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    env.pop(image_runtime.ENV_IMAGE_RUNTIME, None)
    out, imported = _probe(["index", str(tmp_path / "a"), "--library", str(tmp_path / "la"),
                            "--model", "tiny-shapes", "--quiet"], env)
    assert imported  # first run: torch made the exports
    out, imported = _probe(["index", str(tmp_path / "b"), "--library", str(tmp_path / "lb"),
                            "--model", "tiny-shapes", "--quiet"], env)
    assert not imported, out.stderr
    torch_env = {**env, image_runtime.ENV_IMAGE_RUNTIME: "torch"}
    out, imported = _probe(["index", str(tmp_path / "b"), "--library", str(tmp_path / "lc"),
                            "--model", "tiny-shapes", "--quiet"], torch_env)
    assert imported
    light, heavy = _vectors(tmp_path / "lb"), _vectors(tmp_path / "lc")
    assert light.keys() == heavy.keys() and len(light) >= 12
    diff = max(float(np.abs(np.frombuffer(light[k], np.float32)
                             - np.frombuffer(heavy[k], np.float32)).max()) for k in light)
    assert diff <= 1e-5


# -- the CPU plan -----------------------------------------------------------------------------
def test_cpu_plan_uses_every_core_when_idle_and_splits_when_busy():
    idle = cpu_budget.plan(cores=2, load=0.2)
    assert (idle.decode_workers, idle.model_threads) == (2, 2)
    busy = cpu_budget.plan(cores=2, load=1.4)  # one core free: one decoder, one model thread
    assert (busy.free, busy.decode_workers, busy.model_threads) == (1, 1, 1)
    swamped = cpu_budget.plan(cores=2, load=30)
    assert (swamped.decode_workers, swamped.model_threads) == (1, 1)
    eight = cpu_budget.plan(cores=8, load=3)  # five free: split, never more than free
    assert eight.decode_workers + eight.model_threads == eight.free == 5
    assert cpu_budget.plan(cores=8, load=0).model_threads == 8


def test_usable_cores_honours_affinity():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    assert cpu_budget.usable_cores() == len(os.sched_getaffinity(0))
