"""The encoder a command or the window holds: nothing is loaded until work arrives.

Why: most commands need no model at all (a rescan where nothing changed), and a text query
needs only the text tower. So:

* tokenising and `token_count` use the torch-free tokenizer (same ids as open_clip's);
* `encode_texts` runs on the cached, checked ONNX export of the text tower when there is one
  (indexer/text_runtime.py) — no torch import — and on the torch model otherwise, or when the
  torch model is already loaded anyway (indexing: one text tower in memory, not two);
* `encode_images` runs on the cached, checked ONNX export of the image tower when the model
  would run on the CPU (indexer/image_runtime.py) — again no torch — and on the torch model
  otherwise (a GPU, no export yet, MAGPIE_IMAGE_RUNTIME=torch);
* the torch model (`load_encoder`) loads on first need; when an export is missing, that load
  makes it, and once both towers are exported the torch model is let go again (one copy of
  the weights in memory), so the rest of the run and every later one is torch-free.
* a quantized variant (vit-b-32-int8) embeds pictures only on its int8 graph
  (indexer/quantized_runtime.py), made from its base model's fp32 export (torch loads once, on
  the CPU, when that is missing), and never on torch: that would put fp32 vectors under the
  int8 fingerprint. Its text tower is the base model's, export and all.

The weights were resolved and sha256-checked before this object exists (app/wiring.py), so a
missing or wrong file fails at the same place as before; only the model build is deferred.
Thread-safe: the window's search and indexing threads may share one instance.
"""
from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .clip_tokenizer import shared_tokenizer
from .specs import ModelSpec

log = logging.getLogger(__name__)

RECENT_QUERIES = 32  # single texts whose vectors are kept (a few KB)


class LazyEncoder:
    def __init__(
        self,
        spec: ModelSpec,
        weights: Path,
        *,
        cache_dir: Path | None = None,
        device: str | None = None,
        load_full: Callable[..., Any] | None = None,
        model_threads: int | None = None,
    ) -> None:
        self.spec = spec
        self.dim = spec.embed_dim
        self.weights = Path(weights)
        self.cache_dir = cache_dir
        # a quantized variant runs on ONNX Runtime's CPU kernels; its torch model is only the
        # source of the fp32 exports (made on the CPU) and the text fallback
        self._device_pref = "cpu" if spec.quantization else device
        self._text_spec = spec.fp32_base() if (
            spec.quantization and "text" not in spec.quantization.towers) else spec
        self._load_full_fn = load_full
        self.model_threads = model_threads  # ONNX Runtime threads; None: indexer/cpu_budget.py
        self._full: Any = None
        self._text: Any = None
        self._text_tried = False
        self._image: Any = None
        self._image_tried = False
        self._hub_tokenizer: Any = None
        self._closed = False
        self._lock = threading.RLock()
        self._recent: dict[str, np.ndarray] = {}  # query text -> its vector, oldest first

    # -- what callers read without loading anything ------------------------------------------
    @property
    def image_size(self) -> int:
        return self.spec.preprocess.image_size

    @property
    def max_text_tokens(self) -> int:
        if self.spec.tokenizer is not None:  # its own tokenizer says how many tokens it adds
            return self._text_tokenizer().max_text_tokens
        return self.spec.context_length - 2

    @property
    def interpolation(self) -> str:
        """The resize filter the decoder must use for this model (bilinear for MobileCLIP)."""
        return self.spec.preprocess.interpolation

    @property
    def resize_mode(self) -> str:
        """How the decoder must fit a picture to the square ("shortest" side, or "squash")."""
        return self.spec.preprocess.resize_mode

    def _text_tokenizer(self) -> Any:
        """The torch-free tokenizer: CLIP's BPE (open_clip's exact ids), or the model's own
        Hub tokenizer from its checked files (indexer/tokenizer_files.py)."""
        if self.spec.tokenizer is None:
            return shared_tokenizer()
        with self._lock:
            if self._hub_tokenizer is None:
                from .model import text_tokenizer

                self._hub_tokenizer = text_tokenizer(self.spec, self.cache_dir)
            return self._hub_tokenizer

    @property
    def tokenizer_sha256(self) -> dict[str, str] | None:
        """The checked sha256 of each tokenizer file, for a model with its own tokenizer (the
        library records them: Library.check_tokenizer); None for CLIP's built-in one."""
        if self.spec.tokenizer is None:
            return None
        return self._text_tokenizer().files_sha256

    def token_count(self, text: str) -> int:
        """Tokens without the special ones, as the model's tokenizer counts them."""
        return len(self._text_tokenizer().encode(text))

    @property
    def device(self) -> str:
        """Where the torch model runs (or would): asked without importing torch when possible."""
        if self._full is not None:
            return self._full.device
        if self.spec.quantization is not None:
            return "cpu"  # ONNX Runtime's CPU kernels, whatever MAGPIE_DEVICE says
        from .model import guess_device

        return guess_device(self._device_pref)

    @property
    def loaded(self) -> str:
        """"none", "text" (ONNX Runtime text tower), "onnx" (ONNX Runtime image tower, with or
        without the text one) or "torch" — for tests and the status bar."""
        if self._full is not None:
            return "torch"
        if self._image is not None:
            return "onnx"
        return "text" if self._text is not None else "none"

    @property
    def runtime(self) -> str:
        """Which runtime answers text queries now (recorded in search output and status)."""
        if self._full is not None or self._text is None:
            return "torch"
        return self._text.runtime

    @property
    def image_runtime(self) -> str:
        """Which runtime embeds pictures now ("torch" until an export is in use)."""
        return self._image.runtime if self._image is not None else "torch"

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
        if self.cache_dir is None:
            return
        model = getattr(self._full, "_model", None)
        if model is None:
            return
        from . import image_runtime

        if (image_runtime.runtime_wanted() and image_runtime.onnxruntime_version() is not None
                and self._full.device == "cpu"):
            fp32 = self.spec.fp32_base()  # a quantized variant is made from its base's export
            # missing, or there but stale (its files changed since the check: copied, restored,
            # touched): made again, else every later run would stay on torch
            if image_runtime.checked_export(fp32, self.cache_dir,
                                            image_runtime.onnxruntime_version() or "") is None:
                image_runtime.export_image_tower(fp32, model, self.cache_dir)
        if self._text is not None:
            return
        from . import text_runtime

        if not text_runtime.runtime_wanted() or text_runtime.onnxruntime_version() is None:
            return
        if text_runtime.checked_text_export(self._text_spec, self.cache_dir,
                                            text_runtime.onnxruntime_version() or "") is not None:
            return
        if model is not None:
            text_runtime.export_text_tower(self._text_spec, model, self.cache_dir,
                                           tokenizer=getattr(self._full, "_tokenizer", None))

    def _text_encoder(self) -> Any:
        with self._lock:
            self._check_open()
            if self._full is not None:
                return self._full
            if not self._text_tried:
                self._load_light_text()
            return self._text if self._text is not None else self.full()

    def _load_light_text(self) -> None:
        """The cached text export on ONNX Runtime, with the model's own tokenizer (caller holds
        the lock); None stays in `_text` when there is no usable export."""
        self._text_tried = True
        from .text_runtime import load_text_runtime

        tok = self._text_tokenizer() if self.spec.tokenizer is not None else None
        self._text = load_text_runtime(self._text_spec, self.cache_dir, tokenizer=tok)
        if self._text is not None:
            log.info("text queries for %s run on %s", self.spec.name, self._text.runtime)

    def warm(self, light_only: bool = False) -> str:
        """Load what the first text query needs, ahead of it (the window calls this on its
        loading thread): the light text runtime when an export is cached, else the torch model
        (`light_only`: else nothing). Returns `loaded`."""
        if light_only:
            with self._lock:
                self._check_open()
                if self._full is None and not self._text_tried:
                    self._load_light_text()
            return self.loaded
        self._text_encoder()
        return self.loaded

    def _load_image_runtime(self) -> Any:
        from .cpu_budget import current_plan
        from .image_runtime import load_image_runtime

        if self.device != "cpu":
            return None  # a GPU runs torch's own tower
        if self._text is not None:
            # indexing embeds notes before pictures: let the text session (and the memory its
            # batches of long notes grew) go before the image session comes; a later query
            # loads it again in a fraction of a second
            self._text, self._text_tried = None, False
        threads = self.model_threads or current_plan().model_threads
        image = load_image_runtime(self.spec, self.cache_dir, threads=threads)
        if image is not None:
            log.info("pictures for %s are embedded on %s (%d threads)", self.spec.name,
                     image.runtime, threads)
        return image

    def _image_encoder(self) -> Any:
        with self._lock:
            self._check_open()
            if self._image is not None:
                return self._image
            if self.spec.quantization is not None:
                self._image = self._quantized_encoder()
                return self._image
            if self._full is None and self._load_full_fn is None and not self._image_tried:
                self._image_tried = True
                self._image = self._load_image_runtime()
                if self._image is not None:
                    return self._image
                full = self.full()  # no export yet (or a GPU): torch, which makes the exports
                self._image = self._load_image_runtime()
                if self._image is None:
                    return full
                # run on the fresh exports and let the torch model go: one copy of the weights
                self._full, self._text, self._text_tried = None, None, False
                if hasattr(full, "close"):
                    full.close()
                return self._image
            return self.full()

    def _quantized_encoder(self) -> Any:
        """The variant's int8 image tower: cached, else quantized from the base model's fp32
        export (made first with torch if missing, then torch is let go). Raises
        QuantizedModelUnavailable with what to do instead; never falls back to torch."""
        from . import image_runtime, quantized_runtime
        from .cpu_budget import current_plan
        from .quantized_runtime import QuantizedModelUnavailable

        base = self.spec.quantization.base if self.spec.quantization else self.spec.name
        if not image_runtime.runtime_wanted():
            raise QuantizedModelUnavailable(
                f"{self.spec.name} embeds pictures only on ONNX Runtime, and "
                f"{image_runtime.ENV_IMAGE_RUNTIME}=torch asks for torch; unset it, or choose "
                f"{base}")
        ver = image_runtime.onnxruntime_version()
        if self.cache_dir is None or ver is None:
            raise QuantizedModelUnavailable(
                f"{self.spec.name} needs ONNX Runtime and a cache folder for its int8 graph; "
                f"choose {base} instead")
        if self._text is not None:  # as for fp32: the text session goes before the image one
            self._text, self._text_tried = None, False
        threads = self.model_threads or current_plan().model_threads
        image = quantized_runtime.load_quantized_runtime(self.spec, self.cache_dir, threads)
        if image is None:
            if image_runtime.checked_export(self.spec.fp32_base(), self.cache_dir, ver) is None:
                self.full()  # torch once, on the CPU: makes the fp32 exports
                if image_runtime.checked_export(self.spec.fp32_base(), self.cache_dir,
                                                ver) is None:
                    raise QuantizedModelUnavailable(
                        f"could not export the {base} image tower to ONNX, so "
                        f"{self.spec.name} can't be made here; choose {base} instead")
            quantized_runtime.quantize_image_tower(self.spec, self.cache_dir)
            image = quantized_runtime.load_quantized_runtime(self.spec, self.cache_dir, threads)
            if image is None:
                raise QuantizedModelUnavailable(
                    f"the int8 image tower of {self.spec.name} was made but does not load; "
                    f"choose {base} instead")
        full = self._full
        if full is not None and self._load_full_fn is None:
            # one copy of the weights: the rest of the run is torch-free
            self._full, self._text, self._text_tried = None, None, False
            if hasattr(full, "close"):
                full.close()
        log.info("pictures for %s are embedded on %s (%d threads)", self.spec.name,
                 image.runtime, threads)
        return image

    # -- encoding --------------------------------------------------------------------------
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """One text (a query) is remembered: the same query searched again (more results,
        another filter, a refresh after indexing, or encoded ahead by the window's warm
        start) does not run the model again. The vectors are the same model's either way."""
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) != 1:
            return self._text_encoder().encode_texts(texts)
        with self._lock:
            self._check_open()
            hit = self._recent.pop(texts[0], None)
            if hit is not None:
                self._recent[texts[0]] = hit  # the most recent again
        if hit is not None:
            return hit.copy()
        out = self._text_encoder().encode_texts(texts)
        with self._lock:
            self._recent[texts[0]] = out.copy()
            while len(self._recent) > RECENT_QUERIES:
                self._recent.pop(next(iter(self._recent)))
        return out

    def encode_fixed(self, texts: list[str]) -> np.ndarray:
        """Vectors of texts that never change for a model (a search's probes), kept on disk
        beside the model's exports: every later process (a window's start, a `magpie search`)
        reads them instead of running the model (~0.1 CPU-s for five short texts)."""
        path = self._fixed_path(texts)
        if path is not None:
            try:
                with open(path, "rb") as fh:
                    kept = np.load(fh, allow_pickle=False)
                if kept.shape == (len(texts), self.dim) and np.isfinite(kept).all():
                    return kept.astype(np.float32, copy=False)
            except (OSError, ValueError):
                pass  # missing or damaged: made again below
        out = np.asarray(self._text_encoder().encode_texts(list(texts)), np.float32)
        if path is not None:
            try:
                from .atomic import atomic_write_bytes

                buf = io.BytesIO()
                np.save(buf, out, allow_pickle=False)
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(path, buf.getvalue())
            except OSError as exc:  # a read-only cache: computed again next time
                log.debug("could not keep the fixed text vectors (%s)", exc)
        return out

    def _fixed_path(self, texts: list[str]) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()[:16]
        return (Path(self.cache_dir) / "models" / self.spec.name / self.spec.sha256 /
                "fixed-texts" / f"{self.spec.fingerprint()}-{key}.npy")

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        return self._image_encoder().encode_images(pixels)

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._closed = True
            full, self._full, self._text, self._image = self._full, None, None, None
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
