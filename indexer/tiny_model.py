"""Registers the bundled tiny-shapes architecture with open_clip (no Qt, no network).

After ``register_tiny_config()``, ``open_clip.create_model("tiny-shapes", pretrained=None)``
builds the architecture from ``assets/tiny-shapes/tiny-shapes.json`` and
``open_clip.get_tokenizer("tiny-shapes")`` returns open_clip's bundled SimpleTokenizer.
The weights (``assets/tiny-shapes/tiny-shapes.safetensors``, fp16) are made by
``scripts/train_tiny_model.py``; cast them to fp32 before ``load_state_dict``.
"""
from __future__ import annotations

from pathlib import Path

from indexer.specs import ASSETS_DIR

TINY_ARCH = "tiny-shapes"
TINY_CONFIG_PATH: Path = ASSETS_DIR / "tiny-shapes" / "tiny-shapes.json"
TINY_WEIGHTS_PATH: Path = ASSETS_DIR / "tiny-shapes" / "tiny-shapes.safetensors"


def register_tiny_config() -> None:
    """Make ``open_clip`` know the "tiny-shapes" architecture. Safe to call many times."""
    import open_clip

    if TINY_ARCH in open_clip.list_models():
        return
    if not TINY_CONFIG_PATH.is_file():
        raise FileNotFoundError(f"tiny-shapes config missing: {TINY_CONFIG_PATH}")
    open_clip.add_model_config(TINY_CONFIG_PATH)
    if TINY_ARCH not in open_clip.list_models():
        raise RuntimeError(f"open_clip did not accept {TINY_CONFIG_PATH}")
