"""The light text path: torch-free tokenizer, the checked ONNX text tower, and lazy loading.

Proves (1) the tokenizer gives open_clip's exact ids, (2) the ONNX export matches open_clip's
own `encode_text` within 1e-5 for the tiny model and a full-size random ViT-B-32, (3) a stale or
failed export is never used, and (4) a `magpie search` with a cached export and a `magpie index`
with nothing to embed never import torch (checked with sys.modules in a fresh process).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer import text_runtime
from indexer.clip_tokenizer import ClipTokenizer
from indexer.specs import TINY_SHAPES

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(600)

TEXTS = [
    "a photo of a dog", "", "   ", "A Red Circle", "Café crème brûlée — naïve façade",
    "日本語のテキスト 東京タワー", "Ελληνικά και русский текст", "emoji 🐶🚲🎂!!",
    "it's we'll they'd I'm you've", "&amp;lt;b&amp;gt; html &quot;quoted&quot; &#39;x&#39;",
    "mojibake: Ã©tÃ©", "<start_of_text> a literal special token", "a\tb\nc\r\nd  e",
    "123 4567 3.14159 1e-5", "https://example.com/path?q=1&x=2#frag", "UPPER lower MiXeD",
    "x" * 500, " ".join(["word"] * 200), "ﬁne ligatures and ｆｕｌｌｗｉｄｔｈ",
    " ".join(["receipt from the hardware store"] * 15),  # cut at 77
    # ASCII that ftfy still changes (control characters, terminal escapes, line breaks)
    "a\x0bb\x00c\x7fd", "\x1b[31mred\x1b[0m text", "line one\r\nline two\rthree",
    "&lt;tag&gt; & more &amp;amp;", "tab\tseparated\tvalues",
]


# -- the tokenizer ----------------------------------------------------------------------------
def test_tokenizer_ids_are_open_clips():
    import open_clip

    ours = ClipTokenizer()
    ref = open_clip.get_tokenizer("ViT-B-32")
    got = ours(TEXTS, 77)
    want = ref(TEXTS, context_length=77).numpy()
    assert got.dtype == np.int64 and got.shape == (len(TEXTS), 77)
    assert np.array_equal(got, want)
    for text in TEXTS:  # untruncated ids too (token_count relies on them)
        assert ours.encode(text) == ref.encode(text)
    cut = [row for row, t in zip(got, TEXTS) if len(ours.encode(t)) > 75]
    assert cut and all(r[-1] == ours.eot_token_id for r in cut)  # truncation keeps the end token


def test_tokenizer_does_not_import_torch():
    code = ("import sys; from indexer.clip_tokenizer import ClipTokenizer; "
            "ClipTokenizer()(['Café 東京 🐶'], 77); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


# -- the export -------------------------------------------------------------------------------
def _check_against_open_clip(spec, encoder, cache: Path) -> dict:
    import open_clip
    import torch

    meta = text_runtime.export_text_tower(spec, encoder._model, cache)
    assert meta is not None
    assert meta["max_abs_diff"] <= 1e-5 and meta["onnxruntime"] == text_runtime.onnxruntime_version()
    on_disk = json.loads(text_runtime.export_paths(spec, cache, meta["onnxruntime"]).meta
                         .read_text())
    assert on_disk["max_abs_diff"] == meta["max_abs_diff"]  # the measured diff is recorded
    rt = text_runtime.load_text_runtime(spec, cache)
    assert rt is not None
    ref_tok = open_clip.get_tokenizer(spec.arch)
    with torch.no_grad():  # open_clip's own path: full 77-token window, its tokenizer
        want = encoder._model.encode_text(ref_tok(TEXTS, context_length=77)).float().numpy()
    got = np.concatenate([rt.features(rt.tokens([t])) for t in TEXTS])
    assert np.abs(got - want).max() <= 1e-5
    batched = rt.features(rt.tokens(TEXTS))  # one padded batch: same numbers
    assert np.abs(batched - want).max() <= 1e-5
    unit = rt.encode_texts(TEXTS)
    assert np.allclose(np.linalg.norm(unit, axis=1), 1, atol=1e-5)
    assert np.abs(unit - encoder.encode_texts(TEXTS)).max() <= 1e-5
    return meta


def test_tiny_export_matches_open_clip(tiny_encoder, tmp_path):
    _check_against_open_clip(TINY_SHAPES, tiny_encoder, tmp_path / "cache")


def test_vit_b32_export_matches_open_clip(vit_b32_encoder, tmp_path):
    spec = vit_b32_encoder.spec
    meta = _check_against_open_clip(spec, vit_b32_encoder, tmp_path / "cache")
    assert meta["fingerprint"] == spec.fingerprint()


# -- lazy loading -----------------------------------------------------------------------------
def test_lazy_encoder_loads_nothing_until_asked(tmp_path):
    from indexer.lazy_encoder import LazyEncoder

    calls = []

    def fake_load(spec, weights, device):
        calls.append(spec.name)
        from fakes import FakeEncoder

        return FakeEncoder(dim=spec.embed_dim)

    enc = LazyEncoder(TINY_SHAPES, TINY_SHAPES.bundled_path(), cache_dir=None, load_full=fake_load)
    assert enc.token_count("a red circle") == 3 and enc.image_size == 64
    assert enc.loaded == "none" and calls == []
    enc.encode_texts(["a red circle"])  # no export (no cache dir): torch-side model
    assert calls == ["tiny-shapes"] and enc.loaded == "torch"
    enc.close()
    with pytest.raises(RuntimeError):
        enc.encode_texts(["x"])


def test_lazy_encoder_token_count_equals_the_model_tokenizers(tiny_encoder):
    from indexer.lazy_encoder import LazyEncoder

    enc = LazyEncoder(TINY_SHAPES, TINY_SHAPES.bundled_path())
    for text in TEXTS:
        assert enc.token_count(text) == tiny_encoder.token_count(text)
    assert enc.loaded == "none"


# -- whole processes: search and a no-change rescan never import torch -------------------------
PROBE = (
    "import sys\n"
    "from app.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "print('PROBE', rc, 'torch' in sys.modules, 'open_clip' in sys.modules, file=sys.stderr)\n"
)


def _probe(args: list[str], env: dict) -> tuple[subprocess.CompletedProcess, bool]:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    line = [ln for ln in out.stderr.splitlines() if ln.startswith("PROBE ")]
    assert line, out.stderr
    _, rc, torch_in, clip_in = line[-1].split()
    assert rc == "0", out.stderr
    return out, torch_in == "True" or clip_in == "True"


def _results(stdout: str) -> list[tuple[float, str]]:
    rows = []
    for line in stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].isdigit():
            rows.append((float(parts[1]), parts[2].replace("  (below cutoff)", "")))
    return rows


@pytest.fixture(scope="module")
def cli_library(tmp_path_factory):
    from magpie_demo.shapes import make_demo_folder

    base = tmp_path_factory.mktemp("light")
    folder = base / "Pictures"
    make_demo_folder(folder, n_images=24, seed=5)
    env = {**os.environ, "MAGPIE_DATA_DIR": str(base / "data"),
           "MAGPIE_CACHE_DIR": str(base / "cache"), "HF_HUB_OFFLINE": "1"}
    env.pop(text_runtime.ENV_TEXT_RUNTIME, None)
    lib = base / "lib"
    out, imported = _probe(["index", str(folder), "--library", str(lib), "--model",
                            "tiny-shapes", "--quiet"], env)
    assert imported  # there was work: the torch model loaded (and made the export)
    return base, folder, lib, env


def _export_meta(env: dict) -> Path:
    return text_runtime.export_paths(TINY_SHAPES, Path(env["MAGPIE_CACHE_DIR"]),
                                     text_runtime.onnxruntime_version()).meta


def test_index_made_the_export(cli_library):
    _, _, _, env = cli_library
    meta = json.loads(_export_meta(env).read_text())
    assert meta["fingerprint"] == TINY_SHAPES.fingerprint() and meta["max_abs_diff"] <= 1e-5


def test_search_with_a_cached_export_never_imports_torch(cli_library):
    _, _, lib, env = cli_library
    out, imported = _probe(["search", "a blue triangle", "--library", str(lib), "--all"], env)
    assert not imported, out.stderr
    light = _results(out.stdout)
    assert light
    torch_env = {**env, text_runtime.ENV_TEXT_RUNTIME: "torch"}
    out2, imported2 = _probe(["search", "a blue triangle", "--library", str(lib), "--all"],
                             torch_env)
    assert imported2  # the fallback really is torch
    heavy = _results(out2.stdout)
    assert [p for _, p in light] == [p for _, p in heavy]  # same ranking
    assert max(abs(a - b) for (a, _), (b, _) in zip(light, heavy)) <= 1e-4


def test_no_change_index_never_imports_torch(cli_library):
    _, _, lib, env = cli_library
    out, imported = _probe(["index", "--library", str(lib), "--quiet"], env)
    assert not imported, out.stderr
    assert "0 added" in out.stdout or "nothing to embed" in out.stdout, out.stdout


def test_search_without_an_export_falls_back_and_makes_one(cli_library, tmp_path):
    _, _, lib, env = cli_library
    env = {**env, "MAGPIE_CACHE_DIR": str(tmp_path / "empty-cache")}
    out, imported = _probe(["search", "a blue triangle", "--library", str(lib)], env)
    assert imported and _results(out.stdout)  # torch answered
    assert _export_meta(env).exists()  # and left the export for next time
    out, imported = _probe(["search", "a blue triangle", "--library", str(lib)], env)
    assert not imported, out.stderr


def test_no_change_index_without_an_export_loads_no_model(cli_library, tmp_path):
    _, _, lib, env = cli_library
    env = {**env, "MAGPIE_CACHE_DIR": str(tmp_path / "empty-cache")}
    out, imported = _probe(["index", "--library", str(lib), "--quiet"], env)
    assert not imported, out.stderr
    assert not _export_meta(env).exists()


def test_warm_loads_the_light_text_runtime_when_cached(tiny_encoder, tmp_path):
    from indexer.lazy_encoder import LazyEncoder

    cache = tmp_path / "cache"
    calls = []

    def fake_load(spec, weights, device):
        calls.append(1)
        return tiny_encoder

    light = LazyEncoder(TINY_SHAPES, TINY_SHAPES.bundled_path(), cache_dir=cache,
                        load_full=fake_load)
    assert light.warm(light_only=True) == "none" and calls == []  # the launch never gets torch
    enc = LazyEncoder(TINY_SHAPES, TINY_SHAPES.bundled_path(), cache_dir=cache,
                      load_full=fake_load)
    assert enc.warm() == "torch" and calls == [1]  # nothing cached: the window gets torch
    assert text_runtime.load_text_runtime(TINY_SHAPES, cache) is not None  # …and made the export
    enc2 = LazyEncoder(TINY_SHAPES, TINY_SHAPES.bundled_path(), cache_dir=cache,
                       load_full=fake_load)
    assert enc2.warm(light_only=True) == "text" and calls == [1]  # next start: ONNX Runtime only
    assert enc2.runtime.startswith("onnxruntime")
    vec = enc2.encode_texts(["a red circle"])
    assert np.abs(vec - tiny_encoder.encode_texts(["a red circle"])).max() <= 1e-5
    enc2.encode_images(np.zeros((1, 64, 64, 3), np.uint8))  # images need torch: loaded now
    assert calls == [1, 1] and enc2.loaded == "torch"


# -- the pre-optimised copy of the graph ------------------------------------------------------
def test_first_load_keeps_a_checked_optimised_graph_and_later_loads_use_it(tiny_encoder, tmp_path):
    cache = tmp_path / "cache"
    meta = text_runtime.export_text_tower(TINY_SHAPES, tiny_encoder._model, cache)
    assert meta is not None
    paths = text_runtime.export_paths(TINY_SHAPES, cache, meta["onnxruntime"])
    assert not paths.optimized.exists()  # the export's own check leaves no copy
    first = text_runtime.load_text_runtime(TINY_SHAPES, cache)
    assert first is not None and first.graph == paths.graph  # built from the export …
    record = json.loads(paths.optimized_meta.read_text())  # … and its optimisation kept
    assert record["fingerprint"] == TINY_SHAPES.fingerprint()
    assert record["max_abs_diff_from_export"] + meta["max_abs_diff"] <= 1e-5
    assert not [p for p in paths.graph.parent.iterdir() if p.name.startswith(".tmp")]
    second = text_runtime.load_text_runtime(TINY_SHAPES, cache)
    assert second is not None and second.graph == paths.optimized
    assert np.abs(second.encode_texts(TEXTS) - first.encode_texts(TEXTS)).max() <= 1e-5
    assert np.abs(second.encode_texts(TEXTS) - tiny_encoder.encode_texts(TEXTS)).max() <= 1e-5


def test_a_stale_or_damaged_optimised_graph_is_not_used(tiny_encoder, tmp_path):
    cache = tmp_path / "cache"
    meta = text_runtime.export_text_tower(TINY_SHAPES, tiny_encoder._model, cache)
    assert meta is not None
    paths = text_runtime.export_paths(TINY_SHAPES, cache, meta["onnxruntime"])
    want = text_runtime.load_text_runtime(TINY_SHAPES, cache).encode_texts(TEXTS)  # makes it
    # damaged in place, its size and time kept: the record still matches, the session fails
    st = paths.optimized.stat()
    paths.optimized.write_bytes(b"\0" * st.st_size)
    os.utime(paths.optimized, ns=(st.st_atime_ns, st.st_mtime_ns))
    rt = text_runtime.load_text_runtime(TINY_SHAPES, cache)
    assert rt is not None and rt.graph == paths.graph  # the export itself answers
    assert np.abs(rt.encode_texts(TEXTS) - want).max() <= 1e-6
    # that load made a good copy again; a copy over the allowance is not used
    assert text_runtime.load_text_runtime(TINY_SHAPES, cache).graph == paths.optimized
    record = json.loads(paths.optimized_meta.read_text())
    record["max_abs_diff_from_export"] = 1e-5
    paths.optimized_meta.write_text(json.dumps(record))
    assert text_runtime.load_text_runtime(TINY_SHAPES, cache).graph == paths.graph
    # nor is one made from an earlier export (the export's files changed since)
    assert text_runtime.load_text_runtime(TINY_SHAPES, cache).graph == paths.optimized
    os.utime(paths.weights, ns=(1, 1))
    meta_on_disk = json.loads(paths.meta.read_text())
    meta_on_disk["weights"] = {"size": paths.weights.stat().st_size, "mtime_ns": 1}
    paths.meta.write_text(json.dumps(meta_on_disk))  # the export is valid again, the copy not
    assert text_runtime.load_text_runtime(TINY_SHAPES, cache).graph == paths.graph
