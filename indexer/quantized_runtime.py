"""A quantized variant's int8 image tower on ONNX Runtime (e.g. vit-b-32-int8).

Why: on a CPU the image tower is most of the work of indexing small pictures, and ONNX
Runtime's int8 kernels run ViT-B-32's about twice as fast per core as fp32 (bench/RESULTS.md,
#12). The int8 vectors are close to the fp32 ones but not equal, so the variant is a model of its
own (its `Quantization` recipe is part of its fingerprint, indexer/specs.py) and a library holds
one or the other, never both.

How the graph is made, so that it is the same graph wherever it is made:

* It is *derived*, not downloaded: from the base model's checked fp32 export
  (indexer/image_runtime.py, itself derived from the sha256-pinned weights and checked against
  open_clip) by the spec's recipe, ONNX Runtime's dynamic quantization (no calibration data).
  `quantize_image_tower` needs no torch when the fp32 export is cached.
* It is *checked*: the fp32 and int8 graphs embed the same fixed pictures and an int8 graph
  whose cosine to fp32 falls below `MIN_COSINE` on any of them is not cached. The measured
  cosines, the recipe, the versions and the graph's sha256 go into its JSON record.
* It is cached per variant fingerprint and onnxruntime version (the quantizer and its kernels
  are that package's), graph then record, each moved into place whole. Loading re-hashes the
  graph against the recorded sha256 (0.1-0.2 s for ViT-B-32's 89 MB: indexing only).

There is no torch fallback for the variant's pictures: torch would give fp32 vectors under the
int8 fingerprint. When the graph can't be made, the caller says so and stops.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from . import image_runtime
from .errors import MagpieError
from .specs import ModelSpec
from .text_runtime import _atomic_save, _file_stamp, checked_meta, onnxruntime_version

log = logging.getLogger(__name__)

FORMAT = 1
# Lowest cosine between the int8 and the fp32 vector of any check picture. Measured on random-
# weight ViT-B-32 it is ~0.9997 and on the bundled tiny-shapes model ~0.999; a broken graph (a
# wrong op, a saturating kernel) lands far lower. 0.99 keeps a margin for real weights, whose
# activation outliers quantize less well, while refusing anything that is no longer the model.
MIN_COSINE = 0.99
CHECK_SEED = 21


class QuantizedModelUnavailable(MagpieError):
    """The int8 graph can't be made or loaded here; the message says what to do instead."""


@dataclass(frozen=True)
class QuantizedPaths:
    graph: Path
    meta: Path


def export_paths(spec: ModelSpec, cache_dir: Path, ort_version: str) -> QuantizedPaths:
    """<cache>/models/<name>/<sha256>/image-int8/<fingerprint>-ort<ver>-q<FORMAT>.*"""
    base = Path(cache_dir) / "models" / spec.name / spec.sha256 / "image-int8"
    key = f"{spec.fingerprint()}-ort{ort_version}-q{FORMAT}"
    return QuantizedPaths(base / f"{key}.onnx", base / f"{key}.json")


def check_pixels(size: int) -> np.ndarray:
    """The fp32 export's check pictures plus smooth seeded colour fields (photo-like: the
    fp32 ones are extremes and noise), uint8 NHWC."""
    rng = np.random.default_rng(CHECK_SEED)
    fields = []
    for _ in range(6):
        small = rng.integers(0, 256, (4, 4, 3)).astype(np.float32)
        idx = np.linspace(0, 3, size)
        i0 = np.floor(idx).astype(int).clip(0, 2)
        t = (idx - i0)[:, None]
        rows = small[i0] * (1 - t[..., None]) + small[i0 + 1] * t[..., None]  # [size, 4, 3]
        cols = rows[:, i0] * (1 - t.T[..., None]) + rows[:, i0 + 1] * t.T[..., None]
        fields.append(np.clip(cols + rng.normal(0, 6, cols.shape), 0, 255).astype(np.uint8))
    return np.concatenate([image_runtime.check_pixels(size), np.stack(fields)])


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def runtime_label(ver: str, sha: str) -> str:
    return f"onnxruntime {ver} int8 {sha[:12]}"


# ---------------------------------------------------------------------------------------------
# loading (no torch)


def load_quantized_runtime(spec: ModelSpec, cache_dir: Path | None,
                           threads: int | None = None) -> image_runtime.OnnxImageEncoder | None:
    """The cached, checked int8 image tower for `spec`, or None (missing, stale, damaged)."""
    if cache_dir is None or spec.quantization is None:
        return None
    ver = onnxruntime_version()
    if ver is None:
        return None
    paths = export_paths(spec, cache_dir, ver)
    if not paths.meta.exists():
        return None
    meta = checked_meta(paths.meta, fmt=FORMAT, fingerprint=spec.fingerprint(), ort_version=ver,
                        diff_key="max_cosine_distance", max_diff=1.0 - MIN_COSINE,
                        files={"graph": paths.graph})
    if meta is None or meta.get("recipe") != _recipe(spec):
        log.info("int8 image tower for %s is stale or incomplete; making it again", spec.name)
        return None
    try:
        if sha256_of(paths.graph) != meta.get("graph_sha256"):
            log.warning("int8 image tower %s is not the graph recorded; making it again",
                        paths.graph)
            return None
        return image_runtime.OnnxImageEncoder(
            spec, image_runtime.ExportPaths(paths.graph, paths.meta), meta, threads=threads)
    except Exception as e:  # noqa: BLE001 - a damaged file is made again, never fatal here
        log.warning("could not load the int8 image tower %s (%s)", paths.graph, e)
        return None


def _recipe(spec: ModelSpec) -> dict:
    q = spec.quantization
    assert q is not None
    return json.loads(json.dumps(asdict(q)))  # tuples as lists, as they read back from JSON


# ---------------------------------------------------------------------------------------------
# making it (no torch: from the base model's fp32 export)


def quantize_image_tower(spec: ModelSpec, cache_dir: Path) -> dict:
    """Quantize the base model's cached fp32 image export by `spec.quantization`, check it
    against fp32 and cache it; its record. Raises QuantizedModelUnavailable (the fp32 export is
    missing: the caller makes it with torch first, or the tools are missing, or the check
    failed)."""
    q = spec.quantization
    if q is None:
        raise ValueError(f"{spec.name} is not a quantized model")
    if q.method != "onnxruntime-dynamic":
        raise QuantizedModelUnavailable(f"{spec.name}: unknown quantization {q.method!r}")
    ver = onnxruntime_version()
    if ver is None:
        raise QuantizedModelUnavailable(
            f"{spec.name} runs on ONNX Runtime, which is not installed; install Magpie's "
            f"dependencies again, or choose {q.base}")
    base = spec.fp32_base()
    found = image_runtime.checked_export(base, Path(cache_dir), ver)
    if found is None:
        raise QuantizedModelUnavailable(f"the fp32 image export of {base.name} is not cached")
    fp32_paths, fp32_meta = found
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        raise QuantizedModelUnavailable(
            f"{spec.name} needs ONNX Runtime's quantization tools ({e}); install Magpie's "
            f"dependencies again, or choose {q.base}") from None

    started = time.perf_counter()
    paths = export_paths(spec, cache_dir, ver)
    paths.graph.parent.mkdir(parents=True, exist_ok=True)
    # A private folder: the quantizer writes a shape-inferred copy beside its input, and
    # ONNX refuses external weights reached through a hard link, so the fp32 graph is saved
    # here afresh (one file) instead of being linked.
    stage = paths.graph.parent / f".tmp-{paths.graph.name}.{os.getpid()}.{threading.get_ident()}"
    stage.mkdir(parents=True, exist_ok=True)
    try:
        src, out = stage / "fp32.onnx", stage / "int8.onnx"
        try:
            model = onnx.load(str(fp32_paths.graph))
            onnx.save_model(model, str(src))
            del model
            with _quiet_quantizer():
                quantize_dynamic(
                    str(src), str(out),
                    weight_type=getattr(QuantType, q.weight_type),
                    per_channel=q.per_channel,
                    reduce_range=q.reduce_range,
                    op_types_to_quantize=list(q.op_types),
                )
            cosines = _agreement(spec, fp32_paths.graph, out)
        except OSError:
            raise  # a full disk or a permission: the caller's usual message says what to do
        except Exception as e:  # noqa: BLE001 - the tools' own errors, said once and plainly
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise QuantizedModelUnavailable(
                f"could not make the int8 image tower of {spec.name} from {fp32_paths.graph} "
                f"({first}); delete that folder to have it exported again, or choose "
                f"{q.base}") from None
        sha = sha256_of(out)
        os.replace(out, paths.graph)
    finally:
        for left in stage.glob("*"):
            left.unlink(missing_ok=True)
        stage.rmdir()

    meta = {
        "format": FORMAT,
        "model": spec.name,
        "fingerprint": spec.fingerprint(),
        "base_model": base.name,
        "base_fingerprint": base.fingerprint(),
        "weights_sha256": spec.sha256,
        "recipe": _recipe(spec),
        "onnxruntime": ver,
        "onnx": metadata.version("onnx"),
        "base_export": {k: fp32_meta.get(k) for k in ("torch", "open_clip", "opset",
                                                        "max_abs_diff_normalised")},
        "check_images": int(len(cosines)),
        "cosine_mean": float(cosines.mean()),
        "cosine_min": float(cosines.min()),
        "max_cosine_distance": float(1.0 - cosines.min()),
        "min_cosine_allowed": MIN_COSINE,
        "graph_sha256": sha,
        "runtime_label": runtime_label(ver, sha),
        "export_seconds": round(time.perf_counter() - started, 2),
        "graph": _file_stamp(paths.graph),
    }
    if cosines.min() < MIN_COSINE:
        paths.graph.unlink(missing_ok=True)
        raise QuantizedModelUnavailable(
            f"the int8 image tower of {spec.name} agrees with {base.name} only to cosine "
            f"{cosines.min():.4f} (< {MIN_COSINE}) on the check pictures, so it is not used; "
            f"index with {base.name} instead")
    _atomic_save(paths.meta, lambda tmp: tmp.write_text(json.dumps(meta, indent=1), "utf-8"))
    log.info("made the int8 image tower of %s (cosine to fp32 >= %.5f, %.1f s)", spec.name,
             cosines.min(), meta["export_seconds"])
    return meta


class _DropQuantizerChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime/quantization" not in record.pathname.replace("\\", "/")


@contextlib.contextmanager
def _quiet_quantizer():
    """The quantizer logs each op it skips (and advice to pre-process) on the root logger,
    which a command would print; what matters is checked and recorded here instead."""
    root = logging.getLogger()
    flt = _DropQuantizerChatter()
    root.addFilter(flt)
    try:
        yield
    finally:
        root.removeFilter(flt)


def _agreement(spec: ModelSpec, fp32_graph: Path, int8_graph: Path) -> np.ndarray:
    """Cosine between the fp32 and int8 vectors of each check picture."""
    px = check_pixels(spec.preprocess.image_size)
    stub = {"onnxruntime": "check"}
    fp32 = image_runtime.OnnxImageEncoder(
        spec, image_runtime.ExportPaths(fp32_graph, fp32_graph), stub, threads=None)
    want = fp32.encode_images(px)
    del fp32
    int8 = image_runtime.OnnxImageEncoder(
        spec, image_runtime.ExportPaths(int8_graph, int8_graph), stub, threads=None)
    got = int8.encode_images(px)
    del int8
    return (want * got).sum(axis=1)
