"""The pinned models: every one is pinned for real, and each spec says what open_clip says.

A spec is a promise about the vectors a library holds, so the checks here are about the pin
(commit revision, sha256), the identity (distinct fingerprints), and preprocessing that matches
open_clip's own configuration for that architecture and pretrained tag: a wrong mean/std or input
size would silently give different vectors than the published model.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from indexer.specs import (
    MOBILECLIP_S2,
    SIGLIP_I18N,
    SPECS,
    TINY_SHAPES,
    VIT_B_32,
    VIT_L_14,
    ModelSpec,
)
from indexer.weights import WeightsMismatch, is_pinned_revision, is_pinned_sha256

HUB_SPECS = [s for s in SPECS.values() if s.hf_repo]
NEW_SPECS = [VIT_L_14, MOBILECLIP_S2, SIGLIP_I18N]


def test_the_offered_models():
    """Besides ViT-B-32: its int8 variant, a larger one, a fast small one and a multilingual
    one."""
    assert set(SPECS) == {"vit-b-32", "vit-b-32-int8", "vit-l-14", "mobileclip-s2",
                          "siglip-i18n", "tiny-shapes", "tiny-digits"}
    assert SIGLIP_I18N.quality is not None and SIGLIP_I18N.quality.multilingual is not None
    assert VIT_L_14.embed_dim > VIT_B_32.embed_dim
    assert MOBILECLIP_S2.size_mb < VIT_B_32.size_mb < VIT_L_14.size_mb


@pytest.mark.parametrize("spec", list(SPECS.values()), ids=lambda s: s.name)
def test_every_spec_pins_a_sha256(spec: ModelSpec):
    assert is_pinned_sha256(spec.sha256), spec.sha256


@pytest.mark.parametrize("spec", HUB_SPECS, ids=lambda s: s.name)
def test_every_hub_spec_pins_a_commit_and_a_weights_only_file(spec: ModelSpec):
    assert is_pinned_revision(spec.revision), spec.revision
    assert Path(spec.filename).suffix in (".safetensors", ".bin", ".pt", ".pth")
    assert spec.size_mb > 0 and spec.license and spec.description


def test_fingerprints_and_names_are_distinct():
    prints = [s.fingerprint() for s in SPECS.values()]
    assert len(set(prints)) == len(prints)
    own = [s for s in SPECS.values() if s.quantization is None]  # a variant shares its base's
    assert len({s.sha256 for s in own}) == len(own)
    assert all(name == spec.name for name, spec in SPECS.items())


def test_the_default_model_keeps_its_fingerprint():
    """Adding fields for display must not change what existing libraries were built with."""
    assert VIT_B_32.fingerprint() == "2131417768f59cc2"
    assert TINY_SHAPES.fingerprint() == "002b5c8a4e35e4d7"


@pytest.mark.parametrize("spec", HUB_SPECS, ids=lambda s: s.name)
def test_spec_matches_open_clips_own_config(spec: ModelSpec):
    import open_clip

    cfg = open_clip.get_model_config(spec.arch)
    assert cfg is not None, f"open_clip has no architecture {spec.arch}"
    assert spec.preprocess.image_size == cfg["vision_cfg"]["image_size"]
    assert spec.embed_dim == cfg["embed_dim"]
    assert spec.context_length == cfg["text_cfg"].get("context_length", 77)

    pre = open_clip.get_pretrained_cfg(spec.arch, spec.pretrained)
    assert pre, f"open_clip has no pretrained tag {spec.pretrained} for {spec.arch}"
    assert tuple(spec.preprocess.mean) == pytest.approx(tuple(pre["mean"]))
    assert tuple(spec.preprocess.std) == pytest.approx(tuple(pre["std"]))
    assert spec.preprocess.interpolation == pre["interpolation"]
    assert spec.preprocess.resize_mode == pre["resize_mode"]
    # the pinned repository is the one open_clip itself downloads this tag from
    assert pre["hf_hub"].rstrip("/") == spec.hf_repo


@pytest.mark.parametrize("spec", HUB_SPECS, ids=lambda s: s.name)
def test_published_quality_and_measured_speed_are_recorded(spec: ModelSpec):
    if spec.quantization is not None:  # measured agreement with its base model instead
        assert spec.agreement is not None and 0.99 < spec.agreement.image_cosine_min <= 1
    else:
        assert spec.quality is not None and 0.5 < spec.quality.imagenet_top1 < 0.9
        assert spec.quality.source.startswith("https://")
    assert spec.speed is not None and spec.speed.images_per_s > 0 and spec.speed.query_ms > 0
    assert "model_speed.py" in spec.speed.on
    for text in (spec.size_text(), spec.speed_text(), spec.quality_text()):
        assert text and "not measured" not in text and "no published" not in text


@pytest.mark.parametrize("spec", NEW_SPECS, ids=lambda s: s.name)
def test_loader_refuses_a_file_that_is_not_the_pin(spec: ModelSpec, tmp_path):
    from indexer.model import load_encoder

    wrong = tmp_path / spec.filename
    wrong.write_bytes(os.urandom(4096))
    with pytest.raises(WeightsMismatch) as ei:
        load_encoder(spec, wrong, device="cpu")
    assert spec.sha256 in str(ei.value)
    assert wrong.exists()  # refused, not deleted: it is the user's file


def test_mobileclip_s2_loads_through_magpies_loader(tmp_path):
    """Random weights in MobileCLIP-S2's real layout, saved as the pinned file type (.bin of
    plain tensors), go through `load_encoder` and encode images and text: the loader, the
    weights_only read, the no-causal-mask text tower and the 256 px input all fit together."""
    import open_clip
    import torch

    from indexer.model import load_encoder
    from indexer.weights import sha256_file

    torch.manual_seed(0)
    model = open_clip.create_model(MOBILECLIP_S2.arch, pretrained=None)
    ckpt = tmp_path / MOBILECLIP_S2.filename
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, ckpt)
    del model
    spec = dataclasses.replace(MOBILECLIP_S2, sha256=sha256_file(ckpt))

    enc = load_encoder(spec, ckpt, device="cpu")
    try:
        px = np.random.default_rng(0).integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
        img = enc.encode_images(px)
        txt = enc.encode_texts(["a red bicycle", "a dog on the beach in the evening"])
        assert img.shape == (2, 512) and txt.shape == (2, 512)
        assert np.allclose(np.linalg.norm(img, axis=1), 1, atol=1e-4)
        assert np.allclose(np.linalg.norm(txt, axis=1), 1, atol=1e-4)
        # trimming isn't used for this tower; batching must not change a text's vector
        alone = enc.encode_texts(["a red bicycle"])
        assert np.allclose(alone[0], txt[0], atol=1e-5)
    finally:
        enc.close()


# -- the model's resize filter reaches the decoder ----------------------------------------------


class _RecordingEncoder:
    """Keeps the pixels it is given; says which resize filter its model wants."""

    device = "cpu"
    dim = 4
    max_text_tokens = 75

    def __init__(self, image_size: int, interpolation: str | None) -> None:
        self.image_size = image_size
        if interpolation is not None:
            self.interpolation = interpolation
        self.seen: list[np.ndarray] = []

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        self.seen.extend(pixels)
        return np.tile(np.array([1, 0, 0, 0], np.float32), (len(pixels), 1))

    def encode_texts(self, texts):  # pragma: no cover - no notes here
        raise AssertionError


def _detailed_photo(path: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (301, 427, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("interp", ["bilinear", "bicubic", None])
def test_decoder_resizes_with_the_models_filter(tmp_path, interp, workers):
    """MobileCLIP's published preprocessing resizes bilinear, OpenCLIP's ViTs bicubic; the spec
    records it (and its fingerprint covers it), so the decoder must use that very filter."""
    from PIL import Image

    from indexer.decode import fit_square
    from indexer.pipeline import Embedder, WorkItem

    photo = _detailed_photo(tmp_path / "p.png")
    enc = _RecordingEncoder(64, interp)
    done = [e for b in Embedder(enc, workers=workers, batch_size=4, gpu_decode=False)
            .run([WorkItem(1, str(photo), "image")]) for e in b]
    assert done[0].error is None and len(enc.seen) == 1
    with Image.open(photo) as im:
        rgb = im.convert("RGB")
        want = {f: np.asarray(fit_square(rgb, 64, f)) for f in ("bilinear", "bicubic")}
    assert not np.array_equal(want["bilinear"], want["bicubic"])
    assert np.array_equal(enc.seen[0], want[interp or "bicubic"])


def test_encoder_reports_its_specs_filter():
    from indexer.model import Encoder

    assert Encoder.interpolation.fget(type("E", (), {"spec": MOBILECLIP_S2})()) == "bilinear"
    assert Encoder.interpolation.fget(type("E", (), {"spec": VIT_B_32})()) == "bicubic"
