"""The CLIP encoder: pinned weights in, L2-normalised float32 vectors out.

torch and open_clip are imported inside functions: importing this module must stay cheap, because
the GUI and the worker processes import `indexer` long before (or without) needing a model.

Weights are loaded without running pickle code: safetensors directly, `.bin/.pt/.pth` only through
`torch.load(weights_only=True)`. A file is loaded only after its sha256 matched the spec (checked
by `resolve_weights`, or here if it wasn't).
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError
from .specs import ASSETS_DIR, ModelSpec
from .weights import WeightsError, is_verified, verify_file

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

ENV_DEVICE = "MAGPIE_DEVICE"
SAFE_PICKLE_SUFFIXES = (".bin", ".pt", ".pth")


class ModelLoadError(WeightsError):
    """The weights file passed its hash check but can't be turned into the model."""


def pick_device(prefer: str | None = None) -> str:
    """"cuda" when a GPU is usable, else "cpu". $MAGPIE_DEVICE overrides `prefer`.

    Asking for a GPU that isn't there falls back to the CPU with a warning instead of failing:
    the result is the same vectors, only slower.
    """
    want = (os.environ.get(ENV_DEVICE) or prefer or "auto").strip().lower()
    if want == "cpu":
        return "cpu"
    if want not in ("auto", "gpu") and not want.startswith(("cuda", "mps")):
        raise ConfigError(f"unknown device {want!r}; use auto, cpu, cuda, cuda:N or mps")
    import torch

    if want.startswith("mps"):
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        log.warning("device %r requested but not available; using the CPU", want)
        return "cpu"
    if torch.cuda.is_available():
        return "cuda" if want in ("auto", "gpu") else want
    if want not in ("auto",):
        log.warning("device %r requested but no CUDA GPU is available; using the CPU", want)
    return "cpu"


def guess_device(prefer: str | None = None) -> str:
    """`pick_device`'s answer without importing torch when it is certain: "cpu" if asked for,
    or when no GPU driver is present (Linux without /proc/driver/nvidia, macOS, where `auto`
    never picks MPS). Otherwise torch is asked. Lets a rescan with nothing to embed, which
    only needs the device to size its worker pool, skip a 2-second, 1 GB import."""
    import sys

    want = (os.environ.get(ENV_DEVICE) or prefer or "auto").strip().lower()
    if want == "cpu":
        return "cpu"
    if want == "auto":
        if sys.platform == "darwin":
            return "cpu"
        if sys.platform.startswith("linux") and not os.path.exists("/proc/driver/nvidia/version"):
            return "cpu"
    return pick_device(prefer)


def _is_cuda(device: str) -> bool:
    return device.startswith("cuda")


class Encoder:
    """One loaded model. Thread-safe: GUI search and indexing may share one instance."""

    #: how many images/texts go through the model at once; callers may pass bigger batches
    max_batch = 256

    def __init__(self, spec: ModelSpec, model: Any, tokenizer: Any, device: str):
        import torch

        self.spec = spec
        self.device = device
        self.dim = spec.embed_dim
        self._model = model
        self._tokenizer = tokenizer
        self._lock = threading.Lock()
        p = spec.preprocess
        # [1, 3, 1, 1] so it broadcasts over NCHW
        self._mean = torch.tensor(p.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(p.std, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    @property
    def image_size(self) -> int:
        """Side of the square the decoder must produce (decode happens in worker processes)."""
        return self.spec.preprocess.image_size

    @property
    def interpolation(self) -> str:
        """The resize filter the decoder must use for this model ("bicubic" or "bilinear")."""
        return self.spec.preprocess.interpolation

    @property
    def resize_mode(self) -> str:
        """How the decoder must fit a picture to the square ("shortest" side, or "squash")."""
        return self.spec.preprocess.resize_mode

    @property
    def max_text_tokens(self) -> int:
        """Tokens a chunk may hold: the context window minus the special tokens (CLIP: start
        and end; a Hub tokenizer says how many its post-processor adds)."""
        return getattr(self._tokenizer, "max_text_tokens", self.spec.context_length - 2)

    # -- helpers ---------------------------------------------------------------------------

    def _autocast(self):
        import torch

        if _is_cuda(self.device):
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _model_or_raise(self):
        if self._model is None:
            raise RuntimeError(f"the {self.spec.name} encoder was closed")
        return self._model

    def _finish(self, feats: "torch.Tensor") -> np.ndarray:
        import torch

        feats = feats.float()
        feats = torch.nn.functional.normalize(feats, dim=-1)
        out = feats.cpu().numpy().astype(np.float32, copy=False)
        if out.shape[1] != self.dim:
            raise ModelLoadError(
                f"{self.spec.name} produced {out.shape[1]}-d vectors but the spec says {self.dim}"
            )
        return out

    # -- public ----------------------------------------------------------------------------

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 [N, H, W, 3], already resized and centre-cropped -> float32 [N, dim], unit length.

        Decoding and resizing happen in worker processes; only the model's own maths is here.
        """
        import torch

        size = self.spec.preprocess.image_size
        if pixels.ndim != 4 or pixels.shape[1:] != (size, size, 3):
            raise ValueError(
                f"expected uint8 images of shape [N, {size}, {size}, 3], got {pixels.shape}"
            )
        if pixels.dtype != np.uint8:
            raise ValueError(f"expected uint8 pixels, got {pixels.dtype}")
        if len(pixels) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        outs = []
        with self._lock, torch.inference_mode():
            model = self._model_or_raise()
            for i in range(0, len(pixels), self.max_batch):
                chunk = np.ascontiguousarray(pixels[i : i + self.max_batch])
                x = torch.from_numpy(chunk).to(self.device, non_blocking=True)
                x = x.permute(0, 3, 1, 2).float().div_(255.0)
                x = (x - self._mean) / self._std
                if _is_cuda(self.device):
                    x = x.contiguous(memory_format=torch.channels_last)
                with self._autocast():
                    feats = model.encode_image(x)
                outs.append(self._finish(feats))
        return np.concatenate(outs, axis=0)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Texts -> float32 [N, dim], unit length. Longer texts are truncated to the context window
        (the chunker keeps them within it using `token_count`)."""
        import torch

        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokens = torch.as_tensor(self._tokenizer(texts, context_length=self.spec.context_length))
        # Sort by length so each batch is trimmed to its own longest text, not the longest overall.
        order = np.argsort(_used_lengths(tokens).numpy(), kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with self._lock, torch.inference_mode():
            model = self._model_or_raise()
            for i in range(0, len(texts), self.max_batch):
                idx = torch.from_numpy(order[i : i + self.max_batch])
                batch = tokens[idx].to(self.device)
                with self._autocast():
                    feats = _encode_text_trimmed(model, batch)
                out[idx.numpy()] = self._finish(feats)
        return out

    @property
    def tokenizer_sha256(self) -> dict[str, str] | None:
        """Checked sha256 of a Hub tokenizer's files (None for CLIP's built-in tokenizer)."""
        return getattr(self._tokenizer, "files_sha256", None)

    def token_count(self, text: str) -> int:
        """BPE tokens in `text`, without start/end tokens; fits iff <= context_length - 2."""
        tok = self._tokenizer
        if hasattr(tok, "max_text_tokens"):  # Magpie's HubTokenizer (cleans like open_clip)
            return len(tok.encode(text))
        if hasattr(tok, "encode") and hasattr(tok, "sot_token_id"):  # open_clip SimpleTokenizer
            return len(tok.encode(text))
        inner = getattr(tok, "tokenizer", None)  # open_clip HFTokenizer
        if inner is not None and hasattr(inner, "encode"):
            try:
                return len(inner.encode(text, add_special_tokens=False))
            except TypeError:
                pass
        # last resort: tokenize into a wide window and count non-padding tokens
        ids = tok([text], context_length=max(self.spec.context_length, 4096))
        return max(int((ids[0] != 0).sum()) - 2, 0)

    def token_ends(self, text: str) -> list[int] | None:
        """End offset of each token in `text` (None when this tokenizer can't say): lets the
        chunker read cut points off one tokenization; `token_count` stays the judge."""
        if not hasattr(self, "_token_ends"):
            from .token_ends import clip_token_ends

            self._token_ends = clip_token_ends(self._tokenizer)
        return None if self._token_ends is None else self._token_ends(text)

    def close(self) -> None:
        """Free the model (and the GPU memory it held). Encoding afterwards raises."""
        with self._lock:
            model, self._model = self._model, None
            del model
            if _is_cuda(self.device):
                import torch

                torch.cuda.empty_cache()

    @property
    def closed(self) -> bool:
        return self._model is None

    def __enter__(self) -> "Encoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.device
        return f"<Encoder {self.spec.label()} on {state}>"


def _used_lengths(tokens: "torch.Tensor") -> "torch.Tensor":
    """Positions up to and including each row's end token (its largest id; padding is 0)."""
    return tokens.argmax(dim=-1) + 1


def _encode_text_trimmed(model: Any, tokens: "torch.Tensor") -> "torch.Tensor":
    """open_clip's `CLIP.encode_text`, run over the batch's used positions instead of all 77.

    Why it is exact: the text transformer's mask is causal and the features are pooled at the end
    token, so the padding after it never reaches the pooled position. A one-word query then
    costs a few positions of attention instead of 77 (3x faster on a CPU). Models that pool
    otherwise, have no causal mask, or aren't open_clip's CLIP take the library's own path.
    """
    import torch

    mask = getattr(model, "attn_mask", None)
    pos = getattr(model, "positional_embedding", None)
    if (
        getattr(model, "text_pool_type", None) != "argmax"
        or not isinstance(mask, torch.Tensor)
        or not isinstance(pos, torch.Tensor)
        or not hasattr(model, "token_embedding")
    ):
        return model.encode_text(tokens)
    n = int(_used_lengths(tokens).max())
    tokens = tokens[:, :n]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype)
    x = x + pos[:n].to(cast_dtype)
    x = model.transformer(x, attn_mask=mask[:n, :n])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    proj = model.text_projection
    if proj is not None:
        x = proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj
    return x


# ---------------------------------------------------------------------------------------------
# loading


# Architectures open_clip doesn't ship: their config lies in assets/<arch>/<arch>.json beside
# the weights (the bundled tiny models; scripts/train_*_model.py write both).
BUNDLED_ARCHS = ("tiny-shapes", "tiny-digits")


def bundled_arch_config(arch: str) -> Path:
    return ASSETS_DIR / arch / f"{arch}.json"


def register_bundled_arch(arch: str) -> None:
    """Make open_clip know one bundled architecture (before create_model / get_tokenizer).

    Safe to call many times. A missing or unreadable config is a broken installation, said so.
    """
    import open_clip

    if arch not in BUNDLED_ARCHS:
        raise ValueError(f"{arch!r} is not a bundled architecture")
    if arch in open_clip.list_models():
        return
    path = bundled_arch_config(arch)
    if not path.is_file():
        raise ModelLoadError(
            f"the {arch} architecture's config is missing from this installation ({path}); "
            "reinstall Magpie"
        )
    open_clip.add_model_config(path)
    if arch not in open_clip.list_models():
        raise ModelLoadError(f"open_clip did not accept the {arch} config {path}; reinstall Magpie")


def _prepare_arch(spec: ModelSpec) -> None:
    """Architectures that open_clip doesn't ship must be registered before create_model."""
    if spec.arch in BUNDLED_ARCHS:
        register_bundled_arch(spec.arch)


def read_state_dict(path: Path) -> dict:
    """Tensors from a checkpoint as fp32, never executing pickled code.

    Does not check the file's hash: `load_encoder` is the way to get a model from a file.
    """
    import torch

    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            sd: Any = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise ModelLoadError(f"{path} is not a readable safetensors file ({e})") from None
    elif suffix in SAFE_PICKLE_SUFFIXES:
        try:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:  # UnpicklingError for anything that isn't plain tensors
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelLoadError(
                f"refused to load {path}: it is not a plain tensor checkpoint and may contain "
                f"code; use the .safetensors file instead ({first})"
            ) from None
    else:
        raise ModelLoadError(
            f"{path}: unsupported weights format {suffix or '(none)'}; "
            "use .safetensors (or .bin/.pt/.pth)"
        )
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not sd:
        raise ModelLoadError(f"{path} holds no tensors")
    if all(isinstance(k, str) and k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelLoadError(f"{path} holds non-tensor entries: {', '.join(map(str, bad[:5]))}")
    return {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}


def load_encoder(
    spec: ModelSpec,
    weights_path: Path,
    device: str | None = None,
    *,
    cache_dir: Path | None = None,
) -> Encoder:
    """Build `spec.arch` and load `weights_path` into it.

    The file must hash to `spec.sha256`. If `resolve_weights` already checked it in this process
    (and it hasn't changed since) that check is reused; otherwise it is hashed here, using the
    verification markers under `cache_dir` when given.
    """
    import torch

    path = Path(weights_path).expanduser().resolve()
    if not is_verified(spec, path):
        verify_file(spec, path, cache_dir=cache_dir)

    sd = read_state_dict(path)  # before building the model: a bad file fails fast

    _prepare_arch(spec)
    import open_clip

    device = device or pick_device()
    model = _build_without_init(spec, open_clip)
    try:
        # same small compatibility fixes open_clip applies to published checkpoints
        sd = _convert_layout(model, sd)
        ls = sd.get("logit_scale")
        if ls is not None and getattr(model, "logit_scale", None) is not None:
            if ls.ndim != model.logit_scale.ndim:
                sd["logit_scale"] = ls.reshape(model.logit_scale.shape)
        if getattr(model, "logit_bias", None) is not None and "logit_bias" not in sd \
                and ls is not None:
            sd["logit_bias"] = torch.zeros_like(sd["logit_scale"])
        # assign=True: the model takes the checkpoint's tensors as they are (no copy, so no
        # second set of weights resident beside the model)
        model.load_state_dict(sd, strict=True, assign=True)
        _materialise_derived_buffers(model)
    except RuntimeError as e:
        missing, unexpected = _key_diff(model, sd)
        detail = str(e).strip().splitlines()
        hint = ""
        if missing or unexpected:
            hint = (
                f" missing: {', '.join(missing[:5]) or 'none'};"
                f" unexpected: {', '.join(unexpected[:5]) or 'none'}."
            )
        raise ModelLoadError(
            f"{path} does not fit the {spec.arch} architecture of {spec.name}.{hint} "
            f"({detail[1].strip() if len(detail) > 1 else detail[0] if detail else e})"
        ) from None
    del sd

    model.eval()
    model.requires_grad_(False)
    if _is_cuda(device):
        model = model.to(device, memory_format=torch.channels_last)
    else:
        model = model.to(device)
    tokenizer = text_tokenizer(spec, cache_dir) if spec.tokenizer else \
        open_clip.get_tokenizer(spec.arch, context_length=spec.context_length)
    enc = Encoder(spec, model, tokenizer, device)
    log.info("loaded %s on %s", spec.label(), device)
    return enc


def text_tokenizer(spec: ModelSpec, cache_dir: Path | None) -> Any:
    """The tokenizer of a model with its own Hub tokenizer, from the checked files in the
    cache (indexer/tokenizer_files.py). Never imports transformers."""
    from .hub_tokenizer import HubTokenizer, TokenizerFilesError
    from .tokenizer_files import verified_tokenizer_dir

    if spec.tokenizer is None:
        raise ValueError(f"{spec.name} uses open_clip's CLIP tokenizer")
    if cache_dir is None:
        raise ModelLoadError(f"{spec.name} needs its tokenizer files, found through the app "
                             "cache; no cache folder was given")
    folder, hashes = verified_tokenizer_dir(spec, Path(cache_dir))
    try:
        tok = HubTokenizer(folder, spec.context_length, spec.tokenizer.clean)
    except TokenizerFilesError as e:
        raise ModelLoadError(str(e)) from None
    tok.files_sha256 = hashes
    return tok


def _build_without_init(spec: ModelSpec, open_clip: Any) -> Any:
    """The architecture with no memory and no random init behind its parameters.

    Built on torch's "meta" device: shapes only. A ViT-B-32 built normally spends seconds
    filling 150M parameters with random numbers that `load_state_dict` then overwrites, and
    holds them beside the checkpoint's copy until then (2x the weights at peak).
    """
    try:
        with _quiet_random_init_warning():
            return open_clip.create_model(
                spec.arch, pretrained=None, precision="fp32", device="meta"
            )
    except Exception as e:
        raise ModelLoadError(
            f"open_clip can't build the architecture {spec.arch!r} ({e})"
        ) from None


def _materialise_derived_buffers(model: Any) -> None:
    """Buffers not in a checkpoint are derived from the architecture (open_clip's causal text
    mask); on the meta device they have no values yet, so they are computed here. Any other
    tensor still without data means the checkpoint doesn't cover the model: refused."""
    import torch

    for mod_name, module in model.named_modules():
        for name, buf in list(module.named_buffers(recurse=False)):
            if buf is None or not buf.is_meta:
                continue
            if name == "attn_mask" and buf.ndim == 2 and buf.shape[0] == buf.shape[1]:
                mask = torch.full(tuple(buf.shape), float("-inf")).triu_(1)
                module.register_buffer(name, mask, persistent=False)
            else:
                raise RuntimeError(f"{mod_name}.{name} has no value after loading the weights")
    left = [n for n, p in model.named_parameters() if p.is_meta]
    if left:
        raise RuntimeError(f"parameters without values: {', '.join(left[:5])}")


def _convert_layout(model: Any, sd: dict) -> dict:
    """Key layouts open_clip itself converts when it loads a checkpoint: Apple's original
    MobileCLIP files, and pre-`CustomTextCLIP` text towers. A checkpoint already in open_clip's
    layout passes through unchanged."""
    try:
        from open_clip.convert import convert_state_dict
        from open_clip.model import convert_to_custom_text_state_dict
    except ImportError:  # pragma: no cover - an older open_clip without these helpers
        return sd
    sd = convert_state_dict(model, sd)
    if "positional_embedding" in sd and not hasattr(model, "positional_embedding"):
        sd = convert_to_custom_text_state_dict(sd)
    return sd


class _DropRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()


@contextlib.contextmanager
def _quiet_random_init_warning():
    """open_clip warns "Model initialized randomly" (on the root logger) when built without a
    pretrained tag; we load the weights right after, so the warning would only mislead."""
    root = logging.getLogger()
    flt = _DropRandomInitWarning()
    root.addFilter(flt)
    try:
        yield
    finally:
        root.removeFilter(flt)


def _key_diff(model: Any, sd: dict) -> tuple[list[str], list[str]]:
    want = set(model.state_dict().keys())
    have = set(sd.keys())
    return sorted(want - have), sorted(have - want)
