"""The pinned model's image tower on ONNX Runtime, so indexing on a CPU needs no torch.

Why: on this project's CPUs ONNX Runtime runs ViT-B-32's image tower faster than torch
(bench/RESULTS.md, "Index rate vs rclip"), and an indexing process that never imports torch
holds one copy of the weights in ~0.1 GB of runtime instead of ~0.9 GB of torch libraries.

Like the text export (indexer/text_runtime.py) the graph is *derived* from the verified weights
and *checked* before it is used:

* `export_image_tower` (needs torch; once per model fingerprint, when a torch model is loaded
  anyway) traces open_clip's `encode_image` with the model's own pixel normalisation in front
  (uint8 NHWC in, features out: the same arithmetic as `model.Encoder.encode_images`), runs it
  on ONNX Runtime over fixed generated images and compares with open_clip on the same pixels.
  Only an export whose unit vectors differ by at most 1e-5 (max abs) is cached; the measured
  differences (raw features and unit vectors) and the versions are written to its metadata.
* Files live beside the weights in the app cache, keyed by the model fingerprint, the
  onnxruntime version and this format's version; graph first, metadata last, each moved into
  place whole, so a reader sees a complete export or none.
* `load_image_runtime` returns None when anything is missing or does not match, or the model
  should run on a GPU; callers fall back to torch. The library's fingerprint is unchanged.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .specs import ModelSpec
from .text_runtime import (_atomic_save, _file_stamp, checked_meta, onnxruntime_version,
                           save_with_external_weights, weights_path)

log = logging.getLogger(__name__)

ENV_IMAGE_RUNTIME = "MAGPIE_IMAGE_RUNTIME"  # "auto" (default) or "torch"
FORMAT = 1  # the weights in a separate, memory-mapped file (text_runtime's external data)
OPSET = 17
MAX_ABS_DIFF = 1e-5
CHECK_IMAGES = 4


def runtime_wanted() -> bool:
    return os.environ.get(ENV_IMAGE_RUNTIME, "auto").strip().lower() != "torch"


@dataclass(frozen=True)
class ExportPaths:
    graph: Path
    meta: Path

    @property
    def weights(self) -> Path:
        return weights_path(self.graph)


def export_paths(spec: ModelSpec, cache_dir: Path, ort_version: str) -> ExportPaths:
    """<cache>/models/<name>/<sha256>/image-onnx/<fingerprint>-ort<ver>-f<FORMAT>.*"""
    base = Path(cache_dir) / "models" / spec.name / spec.sha256 / "image-onnx"
    key = f"{spec.fingerprint()}-ort{ort_version}-f{FORMAT}"
    return ExportPaths(base / f"{key}.onnx", base / f"{key}.json")


def check_pixels(size: int) -> np.ndarray:
    """Fixed check images: a black, a white, and two seeded noisy gradients (uint8 NHWC)."""
    rng = np.random.default_rng(12)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    grad = np.stack([ramp[None, :].repeat(size, 0), ramp[:, None].repeat(size, 1),
                     255 - ramp[None, :].repeat(size, 0)], axis=-1)
    noisy = [np.clip(grad + rng.normal(0, 40, grad.shape), 0, 255).astype(np.uint8)
             for _ in range(CHECK_IMAGES - 2)]
    return np.stack([np.zeros((size, size, 3), np.uint8), np.full((size, size, 3), 255, np.uint8),
                     *noisy])


# ---------------------------------------------------------------------------------------------
# the runtime (no torch)


#: ONNX Runtime's intra-op threads spin (burn their core) while waiting for work by default;
#: with the decode processes and other programs wanting the same cores, that time is taken from
#: them. Off measured faster under load (bench/RESULTS.md, issue 12 CPU plan).
SPIN_WAIT = False


class OnnxImageEncoder:
    """uint8 [N, H, W, 3] pixels -> float32 [N, dim] unit vectors, from a checked export.

    Thread-safe (one run at a time). `threads` sets ONNX Runtime's intra-op pool; its threads
    sleep rather than spin when idle (`SPIN_WAIT`). The memory arena stays on: without it a
    ViT-B-32 batch of 32 peaked 0.36 GB higher (each run's activations allocated anew)."""

    max_batch = 64

    def __init__(self, spec: ModelSpec, paths: ExportPaths, meta: dict,
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        self.spec = spec
        self.dim = spec.embed_dim
        self.image_size = spec.preprocess.image_size
        self.interpolation = spec.preprocess.interpolation
        self.resize_mode = spec.preprocess.resize_mode
        self.meta = meta
        self.runtime = meta.get("runtime_label") or f"onnxruntime {meta['onnxruntime']}"
        self.device = "cpu"
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning",
                                      "1" if SPIN_WAIT else "0")
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(paths.graph), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._lock = threading.Lock()

    def features(self, pixels: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._session.run(None, {"pixels": pixels})[0]

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        size = self.image_size
        if pixels.ndim != 4 or pixels.shape[1:] != (size, size, 3):
            raise ValueError(
                f"expected uint8 images of shape [N, {size}, {size}, 3], got {pixels.shape}"
            )
        if pixels.dtype != np.uint8:
            raise ValueError(f"expected uint8 pixels, got {pixels.dtype}")
        out = np.empty((len(pixels), self.dim), dtype=np.float32)
        for i in range(0, len(pixels), self.max_batch):
            feats = self.features(np.ascontiguousarray(pixels[i : i + self.max_batch]))
            if feats.shape[1] != self.dim:
                raise ValueError(f"the image export produced {feats.shape[1]}-d vectors, "
                                 f"the spec says {self.dim}")
            norms = np.linalg.norm(feats, axis=1, keepdims=True)
            out[i : i + len(feats)] = feats / np.maximum(norms, 1e-12)
        return out


def checked_export(spec: ModelSpec, cache_dir: Path, ver: str) -> tuple[ExportPaths, dict] | None:
    """The cached export's files and record when it can be trusted, else None (no session is
    made: the int8 variant reads the fp32 graph from here to quantize it)."""
    paths = export_paths(spec, cache_dir, ver)
    if not paths.meta.exists():
        return None
    meta = checked_meta(paths.meta, fmt=FORMAT, fingerprint=spec.fingerprint(), ort_version=ver,
                        diff_key="max_abs_diff_normalised", max_diff=MAX_ABS_DIFF,
                        files={"graph": paths.graph, "weights": paths.weights})
    if meta is None:
        log.info("image export for %s is stale or incomplete; using torch", spec.name)
        return None
    return paths, meta


def load_image_runtime(spec: ModelSpec, cache_dir: Path | None,
                       threads: int | None = None) -> OnnxImageEncoder | None:
    """The cached, checked export for `spec`, or None (missing, stale, damaged, no runtime)."""
    if cache_dir is None or not runtime_wanted():
        return None
    ver = onnxruntime_version()
    if ver is None:
        return None
    found = checked_export(spec, cache_dir, ver)
    if found is None:
        return None
    paths, meta = found
    try:
        return OnnxImageEncoder(spec, paths, meta, threads=threads)
    except Exception as e:  # a damaged file: fall back to torch, never fail indexing over it
        log.warning("could not load the image export %s (%s); using torch", paths.graph, e)
        return None


# ---------------------------------------------------------------------------------------------
# the export (torch; once per fingerprint)


def _tower_module(model: Any, spec: ModelSpec):
    """uint8 NHWC -> open_clip's `encode_image` features, with `Encoder.encode_images`'s own
    normalisation (÷255, −mean, ÷std, in that order) inside the graph."""
    import torch

    p = spec.preprocess

    class ImageTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("mean", torch.tensor(p.mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(p.std, dtype=torch.float32).view(1, 3, 1, 1))

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            x = pixels.permute(0, 3, 1, 2).float() / 255.0
            x = (x - self.mean) / self.std  # type: ignore[operator]  # buffers are tensors
            return self.model.encode_image(x)

    return ImageTower().eval()


def export_image_tower(spec: ModelSpec, model: Any, cache_dir: Path) -> dict | None:
    """Export, check and cache the image tower of a loaded open_clip model; its metadata or
    None. Never raises: a model that can't be exported keeps using torch."""
    if not runtime_wanted():
        return None
    ver = onnxruntime_version()
    if ver is None:
        return None
    try:
        return _export(spec, model, Path(cache_dir), ver)
    except Exception as e:  # noqa: BLE001 - an optional speed-up must not break indexing
        log.warning("could not export the %s image tower to ONNX (%s); images use torch",
                    spec.name, e)
        return None


def _export(spec: ModelSpec, model: Any, cache_dir: Path, ver: str) -> dict | None:
    import torch

    started = time.perf_counter()
    paths = export_paths(spec, cache_dir, ver)
    paths.graph.parent.mkdir(parents=True, exist_ok=True)
    tower = _tower_module(model, spec)
    size = spec.preprocess.image_size
    example = torch.zeros((2, size, size, 3), dtype=torch.uint8)

    def write_graph(tmp: Path) -> None:
        fast = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)  # the fused MHA kernel has no ONNX form
        try:
            with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    tower, (example,), str(tmp), input_names=["pixels"],
                    output_names=["features"],
                    dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}},
                    opset_version=OPSET, dynamo=False,
                )
        finally:
            torch.backends.mha.set_fastpath_enabled(fast)

    save_with_external_weights(write_graph, paths.graph)

    # check: ONNX Runtime against open_clip's encode_image on the same pixels, normalised the
    # way model.Encoder does it
    px = check_pixels(size)
    with torch.inference_mode():
        x = torch.from_numpy(px).permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(spec.preprocess.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(spec.preprocess.std, dtype=torch.float32).view(1, 3, 1, 1)
        ref = model.encode_image((x - mean) / std).float().cpu().numpy()
    runtime = OnnxImageEncoder(spec, paths, {"onnxruntime": ver}, threads=None)
    got = np.concatenate([runtime.features(px), runtime.features(px[:1])])
    want = np.concatenate([ref, ref[:1]])
    del runtime
    diff = float(np.abs(got - want).max())
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    diff_unit = float(np.abs(unit(got) - unit(want)).max())
    meta = {
        "format": FORMAT,
        "model": spec.name,
        "fingerprint": spec.fingerprint(),
        "weights_sha256": spec.sha256,
        "onnxruntime": ver,
        "opset": OPSET,
        "torch": torch.__version__,
        "open_clip": metadata.version("open_clip_torch"),
        "check_images": int(len(px)),
        "max_abs_diff": diff,
        "max_abs_diff_normalised": diff_unit,
        "max_allowed": MAX_ABS_DIFF,
        "export_seconds": round(time.perf_counter() - started, 2),
        "graph": _file_stamp(paths.graph),
        "weights": _file_stamp(paths.weights),
    }
    if diff_unit > MAX_ABS_DIFF:
        log.warning("%s: ONNX image tower differs from open_clip by %.2e (> %.0e); not used",
                    spec.name, diff_unit, MAX_ABS_DIFF)
        paths.graph.unlink(missing_ok=True)
        paths.weights.unlink(missing_ok=True)
        return None
    _atomic_save(paths.meta, lambda tmp: tmp.write_text(json.dumps(meta, indent=1), "utf-8"))
    log.info("exported the %s image tower to ONNX (max abs diff %.1e, %.1f s)",
             spec.name, diff, meta["export_seconds"])
    return meta
