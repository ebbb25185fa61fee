"""The encoder: device choice, safe loading of checkpoints, and what encode_* return.

Uses a full-size random-weight ViT-B-32 checkpoint in the published layout (the real loader, the
real shapes); the model is loaded once for the module. Ranking quality is the tiny model's job.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from indexer import weights
from indexer.model import Encoder, ModelLoadError, load_encoder, pick_device, read_state_dict
from indexer.specs import VIT_B_32, ModelSpec
from indexer.weights import WeightsMismatch, sha256_file

pytestmark = pytest.mark.timeout(300)




def spec_for(sha: str, **kw) -> ModelSpec:
    return dataclasses.replace(VIT_B_32, sha256=sha, revision="0" * 40, **kw)




@pytest.fixture(scope="module")
def encoder(vit_ckpt) -> Encoder:
    ckpt, sha = vit_ckpt
    enc = load_encoder(spec_for(sha), ckpt, device="cpu")  # hashes it: not verified before
    yield enc
    enc.close()


def images(n: int, seed: int = 0, size: int = 224) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# devices


def test_pick_device(monkeypatch):
    import torch

    monkeypatch.delenv("MAGPIE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device() == "cpu"
    assert pick_device("cuda") == "cpu"  # asked for, not there: CPU, same vectors
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == "cuda"
    assert pick_device("cpu") == "cpu"
    monkeypatch.setenv("MAGPIE_DEVICE", "cpu")
    assert pick_device("cuda") == "cpu"  # the environment wins
    monkeypatch.setenv("MAGPIE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="unknown device"):
        pick_device()


def test_importing_model_does_not_import_torch():
    import subprocess

    code = "import sys, indexer.model, indexer.weights; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------
# the encoder on a full-size checkpoint


def test_encode_images_gives_unit_vectors(encoder):
    assert encoder.dim == 512 and encoder.device == "cpu"
    v = encoder.encode_images(images(3))
    assert v.shape == (3, 512) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # deterministic and batch-independent (same image alone or in a batch)
    one = encoder.encode_images(images(3)[1:2])
    np.testing.assert_allclose(one[0], v[1], atol=1e-4)
    assert encoder.encode_images(np.zeros((0, 224, 224, 3), np.uint8)).shape == (0, 512)


def test_encode_images_rejects_wrong_input(encoder):
    with pytest.raises(ValueError, match="224"):
        encoder.encode_images(images(1, size=64))
    with pytest.raises(ValueError, match="uint8"):
        encoder.encode_images(images(1).astype(np.float32))


def test_encode_texts_and_token_count(encoder):
    t = encoder.encode_texts(["a red bicycle", "a receipt from the pharmacy", ""])
    assert t.shape == (3, 512) and t.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    assert encoder.encode_texts([]).shape == (0, 512)

    assert encoder.token_count("") == 0
    assert encoder.token_count("a dog") == 2
    long = "word " * 200
    assert encoder.token_count(long) == 200
    # what fits the window (context_length - 2 tokens) is encoded exactly like itself...
    fits = " ".join(["cat"] * (VIT_B_32.context_length - 2))
    assert encoder.token_count(fits) == VIT_B_32.context_length - 2
    # ...and a longer text is truncated, not rejected
    assert encoder.encode_texts([long]).shape == (1, 512)


def test_encoder_is_shareable_between_threads(encoder):
    px = images(2, seed=5)
    ref = encoder.encode_images(px)
    out: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work():
        try:
            out.append(encoder.encode_images(px))
            encoder.encode_texts(["a photo of a cat"])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for o in out:
        np.testing.assert_allclose(o, ref, atol=1e-4)


def test_close_frees_the_model():
    # a tiny stand-in instead of a second 600 MB load: close() only drops the reference
    enc = Encoder(spec_for("0" * 64), model=object(), tokenizer=None, device="cpu")
    enc.close()
    assert enc.closed
    with pytest.raises(RuntimeError, match="closed"):
        enc.encode_images(images(1))


# ---------------------------------------------------------------------------------------------
# loading: verification and safety


def test_load_refuses_a_file_with_the_wrong_hash(vit_ckpt):
    ckpt, _ = vit_ckpt
    with pytest.raises(WeightsMismatch):
        load_encoder(spec_for("9" * 64), ckpt, device="cpu")


def test_shape_or_key_mismatch_names_the_file(vit_ckpt, tmp_path):
    import torch
    from safetensors.torch import save_file

    ckpt, _ = vit_ckpt
    sd = read_state_dict(ckpt)
    sd.pop("visual.proj")
    sd["text_projection"] = torch.zeros(3, 3)
    bad = tmp_path / "broken.safetensors"
    save_file(sd, str(bad))
    del sd
    with pytest.raises(ModelLoadError) as ei:
        load_encoder(spec_for(sha256_file(bad)), bad, device="cpu")
    msg = str(ei.value)
    assert str(bad.resolve()) in msg and "visual.proj" in msg and "ViT-B-32" in msg


def test_plain_tensor_pickle_checkpoint_is_readable(tmp_path):
    import torch

    p = tmp_path / "tensors.bin"
    torch.save({"module.a": torch.ones(2, dtype=torch.float16), "module.n": torch.arange(3)}, p)
    sd = read_state_dict(p)
    assert set(sd) == {"a", "n"}
    assert sd["a"].dtype == torch.float32 and sd["n"].dtype == torch.int64


class _Evil:
    """Unpickling this would run a shell command that creates a file."""

    def __init__(self, flag: Path):
        self.flag = flag

    def __reduce__(self):
        cmd = f'"{sys.executable}" -c "open(r\'{self.flag}\', \'w\').write(\'pwned\')"'
        return (os.system, (cmd,))


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pth"])
def test_malicious_pickle_is_refused_without_running_it(tmp_path, suffix):
    import torch

    flag = tmp_path / "pwned"
    evil = tmp_path / f"open_clip_pytorch_model{suffix}"
    torch.save({"state_dict": {"visual.proj": torch.zeros(1)}, "payload": _Evil(flag)}, evil)
    spec = spec_for(sha256_file(evil), filename=evil.name)  # the hash matches: only safety stops it
    # through the public path, exactly like a verified download
    got = weights.resolve_weights(spec, local_file=evil, cache_dir=tmp_path / "cache")
    with pytest.raises(ModelLoadError, match="refused") as ei:
        load_encoder(spec, got, device="cpu")
    assert str(evil.resolve()) in str(ei.value)
    assert not flag.exists()

    # (the payload is real: plain pickle would have run it)
    assert b"system" in evil.read_bytes() or b"posix" in evil.read_bytes()


def test_unknown_format_is_refused(tmp_path):
    p = tmp_path / "weights.ckpt"
    p.write_bytes(b"\x00" * 16)
    with pytest.raises(ModelLoadError, match="unsupported weights format"):
        load_encoder(spec_for(sha256_file(p), filename=p.name), p, device="cpu")


def test_truncated_safetensors_is_a_clear_error(vit_ckpt, tmp_path):
    ckpt, _ = vit_ckpt
    p = tmp_path / "cut.safetensors"
    with open(ckpt, "rb") as src, open(p, "wb") as dst:
        dst.write(src.read(1 << 20))
    with pytest.raises(ModelLoadError, match="not a readable safetensors"):
        load_encoder(spec_for(sha256_file(p)), p, device="cpu")


def test_bundled_arch_without_its_config_is_a_clear_error(tmp_path, monkeypatch):
    """A bundled architecture's config missing from the installation: one clear message."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    import indexer.model as model_mod
    from indexer.specs import TINY_SHAPES

    monkeypatch.setattr(model_mod, "ASSETS_DIR", tmp_path / "no-assets")
    monkeypatch.setattr(open_clip, "list_models", lambda: [])  # as in a fresh process
    p = tmp_path / "tiny.safetensors"
    save_file({"x": torch.zeros(1)}, str(p))
    spec = dataclasses.replace(TINY_SHAPES, sha256=sha256_file(p), bundled=None)
    with pytest.raises(ModelLoadError, match="tiny-shapes architecture's config is missing"):
        load_encoder(spec, p, device="cpu")


def _reference_texts(enc: Encoder, texts: list[str]) -> np.ndarray:
    """open_clip's own encode_text over the full padded window: what the trimmed path must match."""
    import torch

    with torch.inference_mode():
        tokens = enc._tokenizer(texts, context_length=enc.spec.context_length)
        feats = enc._model.encode_text(tokens)
        return torch.nn.functional.normalize(feats.float(), dim=-1).numpy()


MIXED_TEXTS = [
    "cat",
    "a receipt from the hardware store, paid by card",
    "",
    "kids on a red sled " * 30,  # longer than the window: truncated, end token at the last slot
    "a dog",
]


@pytest.mark.parametrize("which", ["vit-b-32", "tiny-shapes"])
def test_texts_encoded_over_used_tokens_equal_the_full_window(which, request):
    enc = request.getfixturevalue("encoder" if which == "vit-b-32" else "tiny_encoder")
    got = enc.encode_texts(MIXED_TEXTS)
    want = _reference_texts(enc, MIXED_TEXTS)
    np.testing.assert_allclose(got, want, atol=2e-5)
    # order is kept although the batch is sorted by length inside; one at a time gives the same
    for i, t in enumerate(MIXED_TEXTS):
        np.testing.assert_allclose(enc.encode_texts([t])[0], want[i], atol=2e-5)


def test_text_batches_larger_than_max_batch_keep_their_order(encoder, monkeypatch):
    monkeypatch.setattr(encoder, "max_batch", 2)
    texts = [f"{'word ' * (i * 7 % 13)}number {i}" for i in range(7)]
    np.testing.assert_allclose(encoder.encode_texts(texts), _reference_texts(encoder, texts),
                               atol=2e-5)
