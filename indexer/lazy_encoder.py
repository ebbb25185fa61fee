"""The encoder a command or the window holds: nothing is loaded until work arrives.

Why: most commands need no model at all (a rescan where nothing changed), and a text query
needs only the text tower. So:

* tokenising and `token_count` use the torch-free tokenizer (same ids as open_clip's);
* `encode_texts` runs on the cached, checked ONNX export of the text tower when there is one
  (indexer/text_runtime.py) — no torch import — and on the torch model otherwise, or when the
  torch model is already loaded anyway (indexing: one text tower in memory, not two);
* `encode_images` and `device` load the torch model (`load_encoder`) on first use; when no
  export is cached yet, that load also makes one, so the next query is light.

The weights were resolved and sha256-checked before this object exists (app/wiring.py), so a
missing or wrong file fails at the same place as before; only the model build is deferred.
Thread-safe: the window's search and indexing threads may share one instance.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .clip_tokenizer import shared_tokenizer
from .specs import ModelSpec

log = logging.getLogger(__name__)


class LazyEncoder:
    def __init__(
        self,
        spec: ModelSpec,
        weights: Path,
        *,
        cache_dir: Path | None = None,
        device: str | None = None,
        load_full: Callable[..., Any] | None = None,
    ) -> None:
        self.spec = spec
        self.dim = spec.embed_dim
        self.weights = Path(weights)
        self.cache_dir = cache_dir
        self._device_pref = device
        self._load_full_fn = load_full
        self._full: Any = None
        self._text: Any = None
        self._text_tried = False
        self._closed = False
        self._lock = threading.RLock()

    # -- what callers read without loading anything ------------------------------------------
    @property
    def image_size(self) -> int:
        return self.spec.preprocess.image_size

    @property
    def max_text_tokens(self) -> int:
        return self.spec.context_length - 2

    def token_count(self, text: str) -> int:
        """BPE tokens without start/end; the torch-free tokenizer gives open_clip's exact ids."""
        return len(shared_tokenizer().encode(text))

    @property
    def device(self) -> str:
        """Where the torch model runs (or would): asked without importing torch when possible."""
        if self._full is not None:
            return self._full.device
        from .model import guess_device

        return guess_device(self._device_pref)

    @property
    def loaded(self) -> str:
        """"none", "text" (ONNX Runtime text tower) or "torch" — for tests and the status bar."""
        if self._full is not None:
            return "torch"
        return "text" if self._text is not None else "none"

    @property
    def runtime(self) -> str:
        """Which runtime answers text queries now (recorded in search output and status)."""
        if self._full is not None or self._text is None:
            return "torch"
        return self._text.runtime

    # -- loading ---------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the {self.spec.name} encoder was closed")

    def full(self) -> Any:
        """The torch Encoder, loaded on first call (and the text export made if missing)."""
        with self._lock:
            self._check_open()
            if self._full is None:
                if self._load_full_fn is not None:
                    self._full = self._load_full_fn(self.spec, self.weights, self._device_pref)
                else:
                    from .model import load_encoder

                    self._full = load_encoder(self.spec, self.weights, self._device_pref,
                                              cache_dir=self.cache_dir)
                self._maybe_export()
                self._text = None  # one text tower in memory: torch answers from now on
            return self._full

    def _maybe_export(self) -> None:
        if self.cache_dir is None or self._text is not None:
            return
        from . import text_runtime

        if not text_runtime.runtime_wanted() or text_runtime.onnxruntime_version() is None:
            return
        probe = text_runtime.export_paths(self.spec, self.cache_dir,
                                          text_runtime.onnxruntime_version() or "")
        if probe.meta.exists():
            return
        model = getattr(self._full, "_model", None)
        if model is not None:
            text_runtime.export_text_tower(self.spec, model, self.cache_dir,
                                           tokenizer=getattr(self._full, "_tokenizer", None))

    def _text_encoder(self) -> Any:
        with self._lock:
            self._check_open()
            if self._full is not None:
                return self._full
            if not self._text_tried:
                self._text_tried = True
                from .text_runtime import load_text_runtime

                self._text = load_text_runtime(self.spec, self.cache_dir)
                if self._text is not None:
                    log.info("text queries for %s run on %s", self.spec.name, self._text.runtime)
            return self._text if self._text is not None else self.full()

    def warm(self) -> str:
        """Load what the first text query needs, ahead of it (the window calls this on its
        loading thread): the light text runtime when an export is cached, else the torch model.
        Returns `loaded`."""
        self._text_encoder()
        return self.loaded

    # -- encoding --------------------------------------------------------------------------
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return self._text_encoder().encode_texts(texts)

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        return self.full().encode_images(pixels)

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._closed = True
            full, self._full, self._text = self._full, None, None
        if full is not None and hasattr(full, "close"):
            full.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "LazyEncoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LazyEncoder {self.spec.label()} loaded={self.loaded}>"
