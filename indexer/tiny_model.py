"""Registers the bundled tiny architectures (tiny-shapes, tiny-digits) with open_clip (no Qt,
no network).

After ``register_bundled_config("tiny-shapes")``, ``open_clip.create_model("tiny-shapes",
pretrained=None)`` builds the architecture from ``assets/tiny-shapes/tiny-shapes.json`` and
``open_clip.get_tokenizer("tiny-shapes")`` returns open_clip's bundled SimpleTokenizer; the
same for "tiny-digits". The weights (fp16 safetensors beside the config) are made by
``scripts/train_tiny_model.py`` and ``scripts/train_digits_model.py``; cast them to fp32
before ``load_state_dict``.
"""
from __future__ import annotations

from pathlib import Path

from indexer.specs import ASSETS_DIR

TINY_ARCH = "tiny-shapes"
BUNDLED_ARCHS = ("tiny-shapes", "tiny-digits")
TINY_CONFIG_PATH: Path = ASSETS_DIR / "tiny-shapes" / "tiny-shapes.json"
TINY_WEIGHTS_PATH: Path = ASSETS_DIR / "tiny-shapes" / "tiny-shapes.safetensors"


def config_path(arch: str) -> Path:
    return ASSETS_DIR / arch / f"{arch}.json"


def register_bundled_config(arch: str) -> None:
    """Make ``open_clip`` know one bundled architecture. Safe to call many times."""
    import open_clip

    if arch not in BUNDLED_ARCHS:
        raise ValueError(f"{arch!r} is not a bundled architecture")
    if arch in open_clip.list_models():
        return
    path = config_path(arch)
    if not path.is_file():
        raise FileNotFoundError(f"{arch} config missing: {path}")
    open_clip.add_model_config(path)
    if arch not in open_clip.list_models():
        raise RuntimeError(f"open_clip did not accept {path}")


def register_tiny_config() -> None:
    """Make ``open_clip`` know the "tiny-shapes" architecture. Safe to call many times."""
    register_bundled_config(TINY_ARCH)
