"""What the About dialog says, gathered from the installed packages and the open library.

Versions and licences come from each package's own metadata (importlib.metadata): the
licence expression, else its License field, else its licence classifiers; where a package
states none, the dialog says so instead of guessing. The model's licence comes from its pin.
"""
from __future__ import annotations

from importlib import metadata

from indexer.specs import ModelSpec
from ui.widgets.about import AboutInfo

# the main libraries, as their distributions are named
LIBRARIES = (
    "PySide6-Essentials", "PySide6", "torch", "open-clip-torch", "onnxruntime", "hnswlib",
    "numpy", "pillow", "pillow-heif", "safetensors", "huggingface-hub", "watchdog",
    "platformdirs", "tokenizers",
)
NOT_STATED = "not stated in its package metadata"


def version() -> str:
    try:
        return metadata.version("magpie")
    except metadata.PackageNotFoundError:
        return "(not installed: running from a checkout)"


def licence_of(dist: metadata.Distribution) -> str:
    md = dist.metadata
    expr = (md.get("License-Expression") or "").strip()
    if expr:
        return expr
    text = (md.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 80 and text.upper() != "UNKNOWN":
        return text
    found = [c.split("::")[-1].strip() for c in md.get_all("Classifier") or []
             if c.startswith("License ::")]
    return ", ".join(found) if found else NOT_STATED


def library_licences(names=LIBRARIES) -> list[tuple[str, str, str]]:
    rows = []
    for name in names:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        rows.append((dist.metadata.get("Name") or name, dist.version, licence_of(dist)))
    return rows


def model_rows(spec: ModelSpec | None) -> list[tuple[str, str]]:
    if spec is None:
        return [("Model", "no library open")]
    if spec.license:
        licence = spec.license
    elif spec.bundled:
        licence = "made by Magpie and shipped with it (see assets/" + \
            spec.bundled.split("/")[0] + "/README.md)"
    else:
        licence = "not stated in the pin"
    source = f"{spec.hf_repo} at revision {spec.revision}" if spec.hf_repo else \
        "bundled with Magpie"
    rows = [("Model", spec.name), ("Architecture", spec.arch), ("Pretrained", spec.pretrained),
            ("Weights sha256", spec.sha256), ("Source", source), ("Model licence", licence)]
    if spec.tokenizer is not None:
        rows.append(("Tokenizer", f"{', '.join(spec.tokenizer.files)} from the same revision; "
                     "their sha256 are recorded at the first download and checked on every load"))
    return rows


def runtime_rows(encoder, device_text: str) -> list[tuple[str, str]]:
    """Which runtime answers text queries and which embeds pictures, on which device."""
    if encoder is None:
        return [("Runtime", "the model is not loaded")]
    torch = _version("torch")
    loaded = getattr(encoder, "loaded", "torch")
    runtime = getattr(encoder, "runtime", "torch")
    if runtime.startswith("onnxruntime"):
        text = f"ONNX Runtime {runtime.split()[-1]} on the CPU (no torch needed for searches)"
    else:
        text = f"PyTorch {torch} on {device_text or 'the CPU'}"
    image_rt = getattr(encoder, "image_runtime", "torch")
    spec = getattr(encoder, "spec", None)
    if isinstance(image_rt, str) and image_rt.startswith("onnxruntime"):
        pictures = f"ONNX Runtime {image_rt.split()[1]}{' int8' * ('int8' in image_rt)} on the CPU"
    elif getattr(spec, "quantization", None) is not None:  # never torch: see quantized_runtime
        pictures = "ONNX Runtime int8 on the CPU (loaded when pictures are indexed)"
    else:
        pictures = f"PyTorch {torch} on {device_text or 'the CPU'}"
        if loaded != "torch":
            pictures += " (loaded when pictures are indexed)"
    return [("Text queries", text), ("Pictures", pictures)]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def about_info(spec: ModelSpec | None, encoder, device_text: str) -> AboutInfo:
    return AboutInfo(version=version(), model=model_rows(spec),
                     runtime=runtime_rows(encoder, device_text), licences=library_licences())
