"""The pinned model's text tower on ONNX Runtime, so a text query never needs torch.

Why: `import torch` + `import open_clip` cost seconds and most of a gigabyte before a one-word
query is encoded; ONNX Runtime loads in ~0.1 s and 60 MB. The vectors must stay the pinned
model's, so the export is *derived* from the verified weights and *checked* before it is used:

* `export_text_tower` (needs torch; runs once per model fingerprint, when a torch model is
  loaded anyway) traces the text tower, runs it on ONNX Runtime over fixed texts and compares
  with open_clip's own `encode_text`; only a max abs difference <= 1e-5 is cached. The measured
  difference, the runtime and library versions are written to the export's metadata file.
* The token embedding table (a third of the tower) is stored as a .npy beside the graph and read
  through a memory map: a query touches a few rows of it instead of holding 100 MB.
* The graph's weights live in a file of their own beside it (ONNX external data), which ONNX
  Runtime maps into memory instead of parsing and copying out of the graph, and the text
  session does not pre-pack them: a query process starts its session in ~0.4-0.5 s instead of
  ~1-3 s on the 2-core test box, and holds ~90 MB less (bench/RESULTS.md).
* The session starts from a copy of the graph that ONNX Runtime optimised once (its own fusions
  at the "extended" level, saved beside the export and checked against the export's own output
  on the fixed texts, the two differences together within 1e-5 of open_clip) and builds it with
  graph optimisation off: 0.2-0.4 s of a window's or a query's start to ~0.06 s (the copy costs
  ~150 MB of cache; bench/RESULTS.md). Missing, stale or failing, it is made again or skipped.
* Files live in the app cache beside the weights, under a name keyed by the model fingerprint,
  the onnxruntime version and this format's version; each is written to a temporary name and
  moved into place, the metadata file last, so a reader sees a whole export or none.
* `load_text_runtime` returns None when anything is missing or does not match; callers fall
  back to torch. The library's fingerprint is unchanged: the export computes the same vectors.
* Two text towers are supported: CLIP's (causal mask, pooled at the end token: a query runs
  over its used positions only) and SigLIP's (no mask, pooled at the last position: every row
  runs over the whole window, padding included, exactly as open_clip runs it). A model with its
  own Hub tokenizer (SigLIP i18n) is fed by that tokenizer (indexer/hub_tokenizer.py).
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

from .clip_tokenizer import ClipTokenizer, shared_tokenizer
from .specs import ModelSpec

log = logging.getLogger(__name__)

ENV_TEXT_RUNTIME = "MAGPIE_TEXT_RUNTIME"  # "auto" (default) or "torch" (never use or make exports)
FORMAT = 2  # 2: weights in a separate, memory-mapped file (external data)
OPSET = 17
MAX_ABS_DIFF = 1e-5
OPTIMIZED_FORMAT = 1  # the record of the pre-optimised copy of a text graph

# Fixed check inputs: short and long, unicode, punctuation, and one cut at the context window.
CHECK_TEXTS = (
    "a photo of a dog",
    "x",
    "sunset over the mountains, seen from a red bicycle",
    "Café crème brûlée — naïve façade; 東京タワー; emoji 🐶🚲",
    "receipt from the hardware store &amp; the plumber's invoice (2023-04-01)",
    " ".join(["a long note that runs past the context window"] * 12),
)


def runtime_wanted() -> bool:
    return os.environ.get(ENV_TEXT_RUNTIME, "auto").strip().lower() != "torch"


def onnxruntime_version() -> str | None:
    try:
        return metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class ExportPaths:
    graph: Path
    token_embedding: Path
    meta: Path

    @property
    def weights(self) -> Path:
        return weights_path(self.graph)

    @property
    def optimized(self) -> Path:
        """The graph as ONNX Runtime optimised it once (its weights: `weights_path(...)`)."""
        return self.graph.with_name(self.graph.stem + ".opt.onnx")

    @property
    def optimized_meta(self) -> Path:
        return self.graph.with_name(self.graph.stem + ".opt.json")


def weights_path(graph: Path) -> Path:
    """The external-data file holding a graph's weights (named inside the graph)."""
    return graph.with_name(graph.name + ".weights")


def save_with_external_weights(make_graph, graph: Path) -> None:
    """Write the ONNX graph `make_graph(tmp_path)` produces to `graph`, its tensors moved to
    `weights_path(graph)`; the weights file is moved into place before the graph, each whole."""
    import onnx

    data = weights_path(graph)
    tmp_dir = graph.parent / f".tmp-{graph.name}.{os.getpid()}.{threading.get_ident()}"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    try:
        raw = tmp_dir / "raw.onnx"
        make_graph(raw)
        model = onnx.load(str(raw))
        raw.unlink()
        onnx.save_model(model, str(tmp_dir / graph.name), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=data.name, size_threshold=1024)
        del model
        os.replace(tmp_dir / data.name, data)
        os.replace(tmp_dir / graph.name, graph)
    finally:
        for left in tmp_dir.glob("*"):
            left.unlink(missing_ok=True)
        tmp_dir.rmdir()


def export_paths(spec: ModelSpec, cache_dir: Path, ort_version: str) -> ExportPaths:
    """<cache>/models/<name>/<sha256>/text-onnx/<fingerprint>-ort<ver>-f<FORMAT>.*"""
    base = Path(cache_dir) / "models" / spec.name / spec.sha256 / "text-onnx"
    key = f"{spec.fingerprint()}-ort{ort_version}-f{FORMAT}"
    return ExportPaths(base / f"{key}.onnx", base / f"{key}.tok-emb.npy", base / f"{key}.json")


def checked_meta(meta_path: Path, *, fmt: int, fingerprint: str, ort_version: str,
                 diff_key: str, max_diff: float, files: dict[str, Path]) -> dict | None:
    """An export's record when it can be trusted: made by this format and runtime for this
    fingerprint, within the agreed difference from open_clip, and every file (by key) still the
    one recorded. None when missing, stale, or damaged: the caller falls back to torch.
    Shared by the text and the image tower."""
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    try:
        ok = (
            meta.get("format") == fmt
            and meta.get("fingerprint") == fingerprint
            and meta.get("onnxruntime") == ort_version
            and float(meta.get(diff_key, 1.0)) <= max_diff
            and all(meta.get(key) == _file_stamp(path) for key, path in files.items())
        )
    except OSError:
        ok = False
    return meta if ok else None


def _file_stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


# ---------------------------------------------------------------------------------------------
# the runtime (no torch)


class OnnxTextEncoder:
    """Texts -> float32 [N, dim], unit length, from a checked export. Thread-safe."""

    max_batch = 256

    def __init__(self, spec: ModelSpec, paths: ExportPaths, meta: dict,
                 tokenizer: Any = None, threads: int | None = None, *,
                 graph: Path | None = None, save_optimized: Path | None = None) -> None:
        """`graph`: a pre-optimised copy to run as it is (else the export's graph, optimised
        while the session starts); `save_optimized`: where that optimisation is saved."""
        import onnxruntime as ort

        if tokenizer is None and spec.tokenizer is not None:
            raise ValueError(f"{spec.name} needs its own tokenizer")
        self.spec = spec
        self.dim = spec.embed_dim
        self.meta = meta
        self.pool = meta.get("pool", "argmax")  # "last": the whole window, pooled at its end
        self.runtime = f"onnxruntime {meta['onnxruntime']}"
        self._tokenizer = tokenizer or shared_tokenizer()
        self._table = np.load(paths.token_embedding, mmap_mode="r")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        # a query runs a few tokens through each weight once: packing them for faster GEMMs
        # costs more at start than it saves
        opts.add_session_config_entry("session.disable_prepacking", "1")
        level = ort.GraphOptimizationLevel
        if graph is not None:
            opts.graph_optimization_level = level.ORT_DISABLE_ALL  # done once, when saved
        elif save_optimized is not None:
            # "extended": ONNX Runtime's own fusions, none tied to this CPU's instruction set
            opts.graph_optimization_level = level.ORT_ENABLE_EXTENDED
            opts.optimized_model_filepath = str(save_optimized)
            opts.add_session_config_entry(
                "session.optimized_model_external_initializers_file_name",
                weights_path(save_optimized).name)
            opts.add_session_config_entry(
                "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        self.graph = graph or paths.graph  # the file the session was built from
        self._session = ort.InferenceSession(
            str(self.graph), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._lock = threading.Lock()

    def tokens(self, texts: list[str]) -> np.ndarray:
        return self._tokenizer(texts, self.spec.context_length)

    def features(self, tokens: np.ndarray) -> np.ndarray:
        """Unnormalised text features for int64 token rows (CLIP: trimmed to the longest used
        row; SigLIP: the whole window, pooled at its last position)."""
        if self.pool == "last":
            n = tokens.shape[1]
            eot = np.full(len(tokens), n - 1, dtype=np.int64)
        else:
            eot = tokens.argmax(axis=1)
            n = int(eot.max()) + 1
        x = np.ascontiguousarray(self._table[tokens[:, :n]], dtype=np.float32)
        with self._lock:
            return self._session.run(None, {"x": x, "eot": eot.astype(np.int64)})[0]

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokens = self.tokens(texts)
        order = np.argsort(tokens.argmax(axis=1), kind="stable")  # CLIP: similar lengths batched
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(texts), self.max_batch):
            idx = order[i : i + self.max_batch]
            feats = self.features(tokens[idx]).astype(np.float32, copy=False)
            if feats.shape[1] != self.dim:
                raise ValueError(f"the text export produced {feats.shape[1]}-d vectors, "
                                 f"the spec says {self.dim}")
            norms = np.linalg.norm(feats, axis=1, keepdims=True)
            out[idx] = feats / np.maximum(norms, 1e-12)
        return out

    def token_count(self, text: str) -> int:
        return len(self._tokenizer.encode(text))


def checked_text_export(spec: ModelSpec, cache_dir: Path,
                        ver: str) -> tuple[ExportPaths, dict] | None:
    """The cached export's files and record when they can be trusted, else None (missing,
    stale, damaged): then the next torch load makes it again."""
    paths = export_paths(spec, cache_dir, ver)
    if not paths.meta.exists():
        return None
    meta = checked_meta(paths.meta, fmt=FORMAT, fingerprint=spec.fingerprint(), ort_version=ver,
                        diff_key="max_abs_diff", max_diff=MAX_ABS_DIFF,
                        files={"graph": paths.graph, "weights": paths.weights,
                               "token_embedding": paths.token_embedding})
    if meta is None:
        log.info("text export for %s is stale or incomplete; using torch", spec.name)
        return None
    return paths, meta


def load_text_runtime(spec: ModelSpec, cache_dir: Path | None, threads: int | None = None,
                      tokenizer: Any = None) -> OnnxTextEncoder | None:
    """The cached, checked export for `spec`, or None (missing, stale, damaged, or no runtime).
    `tokenizer`: the model's own (HubTokenizer) when it has one; CLIP's BPE otherwise."""
    if cache_dir is None or not runtime_wanted():
        return None
    ver = onnxruntime_version()
    if ver is None:
        return None
    checked = checked_text_export(spec, cache_dir, ver)
    if checked is None:
        return None
    paths, meta = checked
    if _optimized_ok(spec, paths, ver, meta):
        try:
            return OnnxTextEncoder(spec, paths, meta, tokenizer=tokenizer, threads=threads,
                                   graph=paths.optimized)
        except Exception as e:  # noqa: BLE001 - the export itself may still be fine
            log.warning("could not load %s (%s); using the export's graph", paths.optimized, e)
    try:
        return _load_and_optimize(spec, paths, meta, threads, tokenizer)
    except Exception as e:  # a damaged file: fall back, never fail a search over it
        log.warning("could not load the text export %s (%s); using torch", paths.graph, e)
        return None


def _optimized_ok(spec: ModelSpec, paths: ExportPaths, ver: str, meta: dict) -> bool:
    """The pre-optimised copy is there, made from this very export, and within the allowance
    together with the export's own difference from open_clip."""
    if not paths.optimized_meta.exists():
        return False
    allowance = MAX_ABS_DIFF - float(meta.get("max_abs_diff", MAX_ABS_DIFF))
    return checked_meta(paths.optimized_meta, fmt=OPTIMIZED_FORMAT,
                        fingerprint=spec.fingerprint(), ort_version=ver,
                        diff_key="max_abs_diff_from_export", max_diff=allowance,
                        files={"graph": paths.optimized, "weights": weights_path(paths.optimized),
                               "export_graph": paths.graph, "export_weights": paths.weights,
                               }) is not None


def _load_and_optimize(spec: ModelSpec, paths: ExportPaths, meta: dict,
                       threads: int | None, tokenizer: Any = None) -> OnnxTextEncoder:
    """The export's own session; on the way, its optimised graph is saved, checked against it
    and put beside the export for the next start. That part never fails the load: without a
    writable cache or on any surprise the next start simply optimises again."""
    tmp_dir = paths.graph.parent / f".tmp-opt-{paths.graph.stem}.{os.getpid()}.{threading.get_ident()}"
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return OnnxTextEncoder(spec, paths, meta, tokenizer=tokenizer, threads=threads)
    try:
        tmp_graph = tmp_dir / paths.optimized.name
        encoder = OnnxTextEncoder(spec, paths, meta, tokenizer=tokenizer, threads=threads,
                                  save_optimized=tmp_graph)
        try:
            _keep_optimized(spec, paths, meta, encoder, tmp_graph)
        except Exception as e:  # noqa: BLE001
            log.info("the optimised text graph was not kept (%s)", e)
        return encoder
    finally:
        for left in tmp_dir.glob("*"):
            left.unlink(missing_ok=True)
        tmp_dir.rmdir()


def _keep_optimized(spec: ModelSpec, paths: ExportPaths, meta: dict, encoder: OnnxTextEncoder,
                    tmp_graph: Path) -> None:
    """Check the saved optimisation against the export's session on the fixed texts; move it
    into place (weights, graph, then its record, each whole) when it agrees."""
    if not tmp_graph.exists() or not weights_path(tmp_graph).exists():
        raise OSError("ONNX Runtime saved no optimised graph")
    copy = OnnxTextEncoder(spec, paths, meta, tokenizer=encoder._tokenizer, graph=tmp_graph)
    tokens = encoder.tokens(list(CHECK_TEXTS))
    diff = float(np.abs(copy.features(tokens) - encoder.features(tokens)).max())
    del copy
    allowance = MAX_ABS_DIFF - float(meta.get("max_abs_diff", MAX_ABS_DIFF))
    if not diff <= allowance:
        raise ValueError(f"the optimised graph differs by {diff:.2e} (allowed {allowance:.2e})")
    os.replace(weights_path(tmp_graph), weights_path(paths.optimized))
    os.replace(tmp_graph, paths.optimized)
    record = {
        "format": OPTIMIZED_FORMAT,
        "fingerprint": spec.fingerprint(),
        "onnxruntime": meta["onnxruntime"],
        "optimization": "extended",
        "max_abs_diff_from_export": diff,
        "graph": _file_stamp(paths.optimized),
        "weights": _file_stamp(weights_path(paths.optimized)),
        "export_graph": _file_stamp(paths.graph),
        "export_weights": _file_stamp(paths.weights),
    }
    _atomic_save(paths.optimized_meta,
                 lambda tmp: tmp.write_text(json.dumps(record, indent=1), "utf-8"))


# ---------------------------------------------------------------------------------------------
# the export (torch; once per fingerprint)


def _text_module(model: Any) -> tuple[Any, str]:
    """(the module holding the text tower's parts, its pooling): open_clip's CLIP keeps them on
    the model itself, CustomTextCLIP (SigLIP) in `model.text`, a TextTransformer."""
    text = getattr(model, "text", None)
    if text is not None and hasattr(text, "pool_type"):
        return text, str(text.pool_type)
    return model, str(getattr(model, "text_pool_type", None))


def _text_tower_supported(model: Any) -> bool:
    """open_clip's text tower with plain pre-norm blocks and either CLIP's causal mask with
    end-token pooling, or SigLIP's: no mask, no padding mask, no class token, last-position
    pooling."""
    import torch

    model, pool = _text_module(model)
    blocks = getattr(getattr(model, "transformer", None), "resblocks", None)
    mask = getattr(model, "attn_mask", None)
    if pool == "argmax":
        shape_ok = isinstance(mask, torch.Tensor)
    elif pool == "last":
        shape_ok = (mask is None and not getattr(model, "use_pad_mask", False)
                    and getattr(model, "cls_emb", None) is None)
    else:
        shape_ok = False
    if (
        not shape_ok
        or not isinstance(getattr(model, "positional_embedding", None), torch.Tensor)
        or not hasattr(model, "token_embedding")
        or not hasattr(model, "ln_final")
        or not getattr(model.transformer, "batch_first", True)
        or blocks is None
    ):
        return False
    for b in blocks:
        attn = getattr(b, "attn", None)
        if (
            not isinstance(attn, torch.nn.MultiheadAttention)
            or hasattr(b, "ln_1_kv")
            or not attn._qkv_same_embed_dim
            or attn.in_proj_bias is None
            or attn.bias_k is not None
            or not all(hasattr(b, n) for n in ("ln_1", "ln_2", "mlp", "ls_1", "ls_2"))
        ):
            return False
    return True


def _tower_module(model: Any):
    """open_clip's `CLIP.encode_text` after the token lookup, over the used positions only
    (exact: the mask is causal and pooling is at the end token; see model._encode_text_trimmed).

    Attention is written out with shape-free ops (`unflatten`, -1): torch's fused
    MultiheadAttention bakes the traced batch size and length into the graph as constants.
    The check in `_export` compares the result with open_clip's own `encode_text`.
    """
    import torch
    import torch.nn.functional as F

    class Block(torch.nn.Module):
        def __init__(self, b: Any) -> None:
            super().__init__()
            self.ln_1, self.ln_2, self.mlp, self.ls_1, self.ls_2 = b.ln_1, b.ln_2, b.mlp, b.ls_1, b.ls_2
            a = b.attn
            self.heads = a.num_heads
            self.head_dim = a.embed_dim // a.num_heads
            self.in_w, self.in_b = a.in_proj_weight, a.in_proj_bias
            self.out_proj = a.out_proj

        def attention(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            q, k, v = F.linear(x, self.in_w, self.in_b).chunk(3, dim=-1)
            q, k, v = (t.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)
                       for t in (q, k, v))
            att = (q @ k.transpose(-2, -1)) * (self.head_dim ** -0.5) + mask
            o = (att.softmax(dim=-1) @ v).transpose(1, 2).flatten(2)
            return self.out_proj(o)

        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            x = x + self.ls_1(self.attention(self.ln_1(x), mask))
            return x + self.ls_2(self.mlp(self.ln_2(x)))

    class TextTower(torch.nn.Module):
        # set in __init__ (pos, mask and a tensor proj as buffers, so they travel with .to())
        pos: torch.Tensor
        mask: torch.Tensor
        proj: torch.Tensor | None
        proj_linear: torch.nn.Linear | None

        def __init__(self, m: Any) -> None:
            super().__init__()
            m, _ = _text_module(m)
            self.blocks = torch.nn.ModuleList(Block(b) for b in m.transformer.resblocks)
            self.ln_final = m.ln_final
            self.register_buffer("pos", m.positional_embedding.detach().clone())
            ctx = m.positional_embedding.shape[0]
            mask = m.attn_mask if m.attn_mask is not None else torch.zeros(ctx, ctx)  # SigLIP
            self.register_buffer("mask", mask.detach().clone().float())
            proj = m.text_projection
            if isinstance(proj, torch.nn.Linear):
                self.proj_linear = proj
                self.proj = None
            else:
                self.proj_linear = None
                self.register_buffer("proj", None if proj is None else proj.detach().clone())

        def forward(self, x: torch.Tensor, eot: torch.Tensor) -> torch.Tensor:
            n = x.shape[1]
            x = x + self.pos[:n]
            mask = self.mask[:n, :n]
            for blk in self.blocks:
                x = blk(x, mask)
            x = self.ln_final(x)
            x = x[torch.arange(x.shape[0]), eot]
            if self.proj_linear is not None:
                return self.proj_linear(x)
            return x if self.proj is None else x @ self.proj

    return TextTower(model).eval()


def _atomic_save(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_text_tower(spec: ModelSpec, model: Any, cache_dir: Path,
                      tokenizer: Any = None) -> dict | None:
    """Export, check and cache the text tower of a loaded open_clip model; the metadata or None.

    `tokenizer` is open_clip's tokenizer for the reference side (loaded here when not given).
    Never raises: a model that can't be exported keeps using torch.
    """
    if not runtime_wanted():
        return None
    ver = onnxruntime_version()
    if ver is None:
        return None
    try:
        return _export(spec, model, Path(cache_dir), ver, tokenizer)
    except Exception as e:  # noqa: BLE001 - an optional speed-up must not break loading
        log.warning("could not export the %s text tower to ONNX (%s); queries use torch",
                    spec.name, e)
        return None


def _export(spec: ModelSpec, model: Any, cache_dir: Path, ver: str, tokenizer: Any) -> dict | None:
    import torch

    if not _text_tower_supported(model):
        log.info("%s: text tower not exportable (pooling/mask); queries use torch", spec.name)
        return None
    import open_clip

    started = time.perf_counter()
    paths = export_paths(spec, cache_dir, ver)
    paths.graph.parent.mkdir(parents=True, exist_ok=True)
    tower = _tower_module(model)
    text, pool = _text_module(model)
    table = text.token_embedding.weight.detach().float().cpu().numpy()
    if spec.tokenizer is not None:  # the model's own tokenizer feeds both sides
        if tokenizer is None:
            raise ValueError(f"{spec.name} needs its own tokenizer for the export")
        ours = tokenizer
    else:
        ours = ClipTokenizer()
    example = torch.from_numpy(table[ours(["a photo of a dog", "two"], spec.context_length)[:, :7]])
    eot = torch.tensor([5, 3], dtype=torch.int64)

    def write_graph(tmp: Path) -> None:
        fast = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)  # the fused MHA kernel has no ONNX form
        try:
            with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer chatter about advanced indexing
                torch.onnx.export(
                    tower, (example, eot), str(tmp), input_names=["x", "eot"],
                    output_names=["features"],
                    dynamic_axes={"x": {0: "n", 1: "len"}, "eot": {0: "n"}, "features": {0: "n"}},
                    opset_version=OPSET, dynamo=False,
                )
        finally:
            torch.backends.mha.set_fastpath_enabled(fast)

    save_with_external_weights(write_graph, paths.graph)

    def write_table(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, table)

    _atomic_save(paths.token_embedding, write_table)

    # check: ONNX Runtime (our tokenizer, trimmed) against open_clip's own encode_text (77 wide)
    ref_tok = tokenizer or open_clip.get_tokenizer(spec.arch, context_length=spec.context_length)
    with torch.no_grad():
        ref = model.encode_text(torch.as_tensor(
            ref_tok(list(CHECK_TEXTS), context_length=spec.context_length)))
    ref = ref.float().cpu().numpy()
    meta_stub = {"onnxruntime": ver, "pool": pool}
    runtime = OnnxTextEncoder(spec, paths, meta_stub, tokenizer=ours)
    got = np.concatenate([runtime.features(runtime.tokens([t])) for t in CHECK_TEXTS]
                         + [runtime.features(runtime.tokens(list(CHECK_TEXTS)))])
    want = np.concatenate([ref, ref])
    diff = float(np.abs(got - want).max())
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    diff_unit = float(np.abs(unit(got) - unit(want)).max())
    del runtime
    meta = {
        "format": FORMAT,
        "model": spec.name,
        "pool": pool,
        "fingerprint": spec.fingerprint(),
        "weights_sha256": spec.sha256,
        "onnxruntime": ver,
        "opset": OPSET,
        "torch": torch.__version__,
        "open_clip": metadata.version("open_clip_torch"),
        "check_texts": len(CHECK_TEXTS),
        "max_abs_diff": diff,
        "max_abs_diff_normalised": diff_unit,
        "max_allowed": MAX_ABS_DIFF,
        "export_seconds": round(time.perf_counter() - started, 2),
        "graph": _file_stamp(paths.graph),
        "weights": _file_stamp(paths.weights),
        "token_embedding": _file_stamp(paths.token_embedding),
    }
    if diff > MAX_ABS_DIFF:
        log.warning("%s: ONNX text tower differs from open_clip by %.2e (> %.0e); not used",
                    spec.name, diff, MAX_ABS_DIFF)
        for p in (paths.graph, paths.weights, paths.token_embedding):
            p.unlink(missing_ok=True)
        return None
    _atomic_save(paths.meta, lambda tmp: tmp.write_text(json.dumps(meta, indent=1), "utf-8"))
    log.info("exported the %s text tower to ONNX (max abs diff %.1e, %.1f s)",
             spec.name, diff, meta["export_seconds"])
    return meta
