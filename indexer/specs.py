"""Pinned model specifications.

Every vector in a library comes from exactly one ModelSpec. The spec's fingerprint covers
everything that changes the numbers a model produces (architecture, pretrained tag, the exact
weights file by sha256, and preprocessing), so two libraries agree on vectors iff their
fingerprints match.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from indexer.errors import MagpieError


def _assets_dir() -> Path:
    """assets/ beside the code in a checkout; the `magpie_assets` package in a wheel."""
    beside = Path(__file__).resolve().parent.parent / "assets"
    if beside.is_dir():
        return beside
    import importlib.util

    found = importlib.util.find_spec("magpie_assets")
    if found is not None and found.submodule_search_locations:
        return Path(next(iter(found.submodule_search_locations)))
    return beside


ASSETS_DIR = _assets_dir()

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes model input; part of the pin because it changes the vectors."""

    image_size: int
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"  # resize the shortest side to image_size, then centre-crop


@dataclass(frozen=True)
class ModelSpec:
    """One model at one version. Fields outside `identity()` are how to fetch it, not what it is."""

    name: str
    arch: str
    pretrained: str
    filename: str
    sha256: str
    preprocess: Preprocess
    embed_dim: int
    context_length: int = 77
    hf_repo: str | None = None
    revision: str | None = None  # a full 40-hex commit, never a branch name
    bundled: str | None = None  # path relative to assets/ for models shipped with the app
    description: str = ""
    size_mb: float = 0.0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def identity(self) -> dict:
        return {
            "arch": self.arch,
            "pretrained": self.pretrained,
            "sha256": self.sha256,
            "preprocess": asdict(self.preprocess),
            "embed_dim": self.embed_dim,
            "context_length": self.context_length,
        }

    def fingerprint(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def label(self) -> str:
        """Human name with version, e.g. for the status bar."""
        return f"{self.name} ({self.arch} / {self.pretrained}, {self.sha256[:8]})"

    def bundled_path(self) -> Path | None:
        return ASSETS_DIR / self.bundled if self.bundled else None


VIT_B_32 = ModelSpec(
    name="vit-b-32",
    arch="ViT-B-32",
    pretrained="laion2b_s34b_b79k",
    hf_repo="laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
    revision="1a25a446712ba5ee05982a381eed697ef9b435cf",
    filename="open_clip_model.safetensors",
    sha256="ac4f8c4b88af6d963118cbf40ad93176d092abbedfcb752601ae1866352656e6",
    preprocess=Preprocess(image_size=224),
    embed_dim=512,
    description="OpenCLIP ViT-B/32 trained on LAION-2B; the default for real photo libraries.",
    size_mb=605.0,
)

TINY_SHAPES = ModelSpec(
    name="tiny-shapes",
    arch="tiny-shapes",
    pretrained="magpie-shapes-v1",
    filename="tiny-shapes.safetensors",
    sha256="d30f44e36d4dcaf1c09110201c3655b35e18c999ba3927e940ede6c733e48de1",
    preprocess=Preprocess(image_size=64),
    embed_dim=64,
    bundled="tiny-shapes/tiny-shapes.safetensors",
    description="A tiny CLIP trained by Magpie on coloured shapes; ships with the app for the "
    "offline demo and the tests.",
    size_mb=5.9,
)

TINY_DIGITS = ModelSpec(
    name="tiny-digits",
    arch="tiny-digits",
    pretrained="magpie-digits-v1",
    filename="tiny-digits.safetensors",
    sha256="c1fc3b6ab778c504b08b3dc3cde825ff9b9c32e35fd7dd05c43c67aab26d1f20",
    preprocess=Preprocess(image_size=32),
    embed_dim=32,
    bundled="tiny-digits/tiny-digits.safetensors",
    description="A tiny ViT CLIP trained by Magpie on real handwritten digit scans; a second "
    "model for the ranking tests (scripts/train_digits_model.py).",
    size_mb=5.0,
)

SPECS: dict[str, ModelSpec] = {s.name: s for s in (VIT_B_32, TINY_SHAPES, TINY_DIGITS)}
DEFAULT_SPEC = VIT_B_32.name


class UnknownModel(MagpieError, ValueError):
    pass


def get_spec(name: str) -> ModelSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise UnknownModel(
            f"unknown model {name!r}; choose one of: {', '.join(sorted(SPECS))}"
        ) from None
