"""Pinned model specifications.

Every vector in a library comes from exactly one ModelSpec. The spec's fingerprint covers
everything that changes the numbers a model produces (architecture, pretrained tag, the exact
weights file by sha256, and preprocessing), so two libraries agree on vectors iff their
fingerprints match.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
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

OPENCLIP_RESULTS = "https://github.com/mlfoundations/open_clip/blob/main/docs/openclip_results.csv"
SPEED_ON = ("per core: CPU time of one torch thread, random weights, shared 2-core AMD EPYC; "
            "bench/model_speed.py, 2026-11-30")
MOBILECLIP_CARD = "https://huggingface.co/apple/MobileCLIP-S2-OpenCLIP (model card table)"
OPENCLIP_MULTILINGUAL = ("https://github.com/mlfoundations/open_clip/blob/main/docs/"
                         "openclip_multilingual_retrieval_results.csv")


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes model input; part of the pin because it changes the vectors."""

    image_size: int
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"  # resize the shortest side to image_size, then centre-crop


INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Quality:
    """Published zero-shot quality, so people can weigh a model before downloading it.

    Figures are copied from the named source, never measured by Magpie (the real weights can't
    be downloaded on the build machines). Fractions, e.g. 0.6656 for 66.56 %.
    """

    imagenet_top1: float  # ImageNet-1k zero-shot top-1
    avg_38: float | None  # mean over the 38 datasets of the CLIP benchmark suite, if published
    source: str  # where the numbers come from (a URL a person can open)
    # mean recall (R@1/5/10, image and text retrieval) over open_clip's multilingual benchmark
    # (Crossmodal-3600, 36 languages, and multilingual MS-COCO), if published; and its source
    multilingual: float | None = None
    multilingual_source: str = ""


@dataclass(frozen=True)
class Speed:
    """Encoding speed measured by `bench/model_speed.py` with random weights in the real
    architecture (speed does not depend on the weights' values) on the machine named in `on`.

    Per CPU core (CPU time of one thread): the bench machines are shared, and CPU time hardly
    depends on the neighbours where wall-clock time does. Torch uses every core, so a free 2-core
    machine indexes at up to about twice `images_per_s`.
    """

    images_per_s: float  # image embeddings per CPU-second, batches of 16 at the model's input size
    query_ms: int  # CPU milliseconds to encode one short text query
    on: str  # the machine and how it was measured


@dataclass(frozen=True)
class HubTokenizerFiles:
    """A text tower with its own Hugging Face tokenizer (not CLIP's BPE): these files are
    fetched from the spec's `hf_repo` at its pinned `revision` (indexer/tokenizer_files.py) and
    read with the `tokenizers` library (indexer/hub_tokenizer.py)."""

    files: tuple[str, ...] = ("tokenizer.json", "tokenizer_config.json",
                              "special_tokens_map.json")
    clean: str = "whitespace"  # open_clip's text cleaning for this model ("canonicalize", ...)


@dataclass(frozen=True)
class Quantization:
    """How a variant's image tower is derived from its base model's checked fp32 ONNX export
    (indexer/quantized_runtime.py). Part of the variant's identity: its vectors are close to the
    base model's but not equal, so a library made with it never takes the base model's vectors.

    The recipe is ONNX Runtime's dynamic quantization: no calibration data, so the graph follows
    from the fp32 export alone. Weights int8 per output channel in 7 bits (`reduce_range`):
    on x86 CPUs without VNNI ONNX Runtime's u8s8 kernels can saturate 8-bit weights, which would
    make the same file give different vectors on different CPUs; 7 bits cannot saturate. Only
    MatMul/Gemm (the transformer's weights, ~all the work) are quantized; the patch convolution
    stays fp32. Chosen by measurement (bench/int8_agreement.py; bench/RESULTS.md, #12): as fast
    as static QDQ int8 and closer to fp32, no calibration set to pin.
    """

    base: str  # the fp32 model whose pinned checkpoint (and fp32 export) this derives from
    method: str = "onnxruntime-dynamic"
    weight_type: str = "QInt8"
    per_channel: bool = True
    reduce_range: bool = True
    op_types: tuple[str, ...] = ("Gemm", "MatMul")
    towers: tuple[str, ...] = ("image",)  # the text tower stays the base model's fp32 one
    version: int = 1


@dataclass(frozen=True)
class Agreement:
    """How close a quantized variant's vectors are to its base model's, measured by Magpie
    (bench/int8_agreement.py) with random weights in the real architecture: the real weights
    can't be downloaded on the build machines, so these are a proxy, said so where shown."""

    image_cosine_mean: float  # int8 vs fp32 image vectors of the same generated pictures
    image_cosine_min: float
    top10_overlap: float  # mean share of the fp32 text->image top 10 that int8 also returns
    on: str  # what was measured, where, with which command


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
    tokenizer: HubTokenizerFiles | None = None  # None: open_clip's CLIP BPE tokenizer
    description: str = ""
    size_mb: float = 0.0
    license: str = ""  # the weights' licence, as the model card states it
    quality: Quality | None = field(default=None, compare=False)
    speed: Speed | None = field(default=None, compare=False)
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    quantization: Quantization | None = None  # a variant derived from `quantization.base`
    agreement: Agreement | None = field(default=None, compare=False)

    def identity(self) -> dict:
        ident = {
            "arch": self.arch,
            "pretrained": self.pretrained,
            "sha256": self.sha256,
            "preprocess": asdict(self.preprocess),
            "embed_dim": self.embed_dim,
            "context_length": self.context_length,
            # only for models with their own tokenizer, so older fingerprints stay as they were
            **({"tokenizer": {"repo": self.hf_repo, "revision": self.revision,
                              "files": list(self.tokenizer.files),
                              "clean": self.tokenizer.clean}} if self.tokenizer else {}),
        }
        if self.quantization is not None:  # only then: every fp32 fingerprint stays as it was
            ident["quantization"] = asdict(self.quantization)
        return ident

    @property
    def weights_name(self) -> str:
        """Whose cache folder holds the weights file: a quantized variant shares its base
        model's checkpoint (same sha256), so it is downloaded and verified once."""
        return self.quantization.base if self.quantization else self.name

    def fp32_base(self) -> "ModelSpec":
        """The fp32 model a quantized variant derives from, built from this spec's own pin
        (same checkpoint, preprocessing and shape), so its fingerprint is the base model's."""
        if self.quantization is None:
            return self
        return replace(self, name=self.quantization.base, quantization=None, agreement=None)

    def fingerprint(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def label(self) -> str:
        """Human name with version, e.g. for the status bar."""
        return f"{self.name} ({self.arch} / {self.pretrained}, {self.sha256[:8]})"

    # -- one-line facts for the places a person chooses a model (CLI, Preferences) ------------

    def size_text(self) -> str:
        where = "ships with Magpie" if self.bundled else "download"
        size = f"{self.size_mb:,.0f} MB" if self.size_mb >= 10 else f"{self.size_mb:.1f} MB"
        lic = f", licence {self.license}" if self.license else ""
        return f"{where} {size}{lic}"

    def speed_text(self) -> str:
        if self.speed is None:
            return "not measured"
        s = self.speed
        return f"{s.images_per_s} images/s per CPU core, {s.query_ms} ms per query ({s.on})"

    def quality_text(self) -> str:
        if self.agreement is not None and self.quantization is not None:
            a = self.agreement
            return (f"agreement with {self.quantization.base}: image cosine "
                    f"{a.image_cosine_mean:.5f} (lowest {a.image_cosine_min:.5f}), top-10 overlap "
                    f"{100 * a.top10_overlap:.0f} % (measured, not published: {a.on})")
        if self.quality is None:
            return "no published figures"
        q = self.quality
        avg = f", 38-dataset average {_percent(q.avg_38)}" if q.avg_38 is not None else ""
        text = f"ImageNet zero-shot {_percent(q.imagenet_top1)}{avg} (source: {q.source})"
        if q.multilingual is not None:
            text += (f"; multilingual retrieval average {_percent(q.multilingual)} "
                     f"(source: {q.multilingual_source})")
        return text

    def short_facts(self) -> str:
        """Size, speed and quality in a few words, for a list of models to choose from."""
        parts = [f"{self.size_mb:,.0f} MB" if self.size_mb >= 10 else f"{self.size_mb:.1f} MB"]
        if self.speed is not None:
            parts.append(f"{self.speed.images_per_s:g} images/s per core")
        if self.quality is not None:
            parts.append(f"ImageNet {_percent(self.quality.imagenet_top1)}")
        if self.agreement is not None and self.quantization is not None:
            parts.append(f"cosine {self.agreement.image_cosine_mean:.4f} to "
                         f"{self.quantization.base}")
        return " · ".join(parts)

    @property
    def for_users(self) -> bool:
        """A model people index their own pictures with (not a bundled demo/test model)."""
        return not self.bundled

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
    license="MIT",
    quality=Quality(imagenet_top1=0.6656, avg_38=0.5694, source=OPENCLIP_RESULTS),
    speed=Speed(images_per_s=9.7, query_ms=29, on=SPEED_ON),
)


def int8_variant(base: ModelSpec, name: str, *, description: str = "",
                 agreement: Agreement | None = None, speed: Speed | None = None) -> ModelSpec:
    """`base` with its image tower quantized to int8 (the `Quantization` recipe): same pinned
    checkpoint, its own fingerprint."""
    return replace(base, name=name, quantization=Quantization(base=base.name),
                   description=description or f"{base.name} with an int8 image tower",
                   quality=None, agreement=agreement, speed=speed)


# ViT-B-32 with its image tower in int8 on ONNX Runtime: the same published checkpoint and pin,
# about twice the pictures per CPU-second; its own fingerprint, so never mixed with ViT-B-32's
# vectors (switching between them is a migration, as between any two models).
VIT_B_32_INT8 = int8_variant(
    VIT_B_32, "vit-b-32-int8",
    description="ViT-B-32 fast (int8): the same pinned ViT-B-32 weights, its image tower run in "
    "int8 on ONNX Runtime (made on this computer from the checked fp32 export, ~100 MB more on "
    "disk): embeds pictures two to three times as fast per CPU core; text queries are "
    "ViT-B-32's own. Its vectors are close to ViT-B-32's but not the same, so a library uses one or the other.",
    agreement=Agreement(
        image_cosine_mean=0.99972, image_cosine_min=0.99966, top10_overlap=0.905,
        on="random weights in the ViT-B-32 architecture, 300 generated pictures, 40 queries; "
        "bench/int8_agreement.py, 2026-12-01"),
    speed=Speed(images_per_s=33.1, query_ms=VIT_B_32.speed.query_ms if VIT_B_32.speed else 0,
                on="per core: CPU time of one ONNX Runtime thread (fp32 graph: 11.1), random "
                "weights, shared 2-core AMD EPYC, bench/int8_agreement.py, 2026-12-01; queries: "
                "ViT-B-32's own text tower (bench/model_speed.py)"),
)

# The larger one. Pin sources (all public, all agreeing):
#  - the Hub's own LFS pointer page for this file, showing SHA256 7d129ed7… and commit 1627032
#    ("Adding `safetensors` variant of this model (#2)"): https://huggingface.co/laion/
#    CLIP-ViT-L-14-laion2B-s32B-b82K/blob/refs%2Fpr%2F4/open_clip_pytorch_model.safetensors
#  - at least two unrelated public projects pin the same repo, revision 1627032…, file
#    open_clip_pytorch_model.safetensors, sha256 7d129ed7… and 1,710,517,748 bytes in their
#    download scripts and lockfiles (found by exact-string search over public GitHub).
# The repo has no open_clip_model.safetensors; this is its safetensors file.
VIT_L_14 = ModelSpec(
    name="vit-l-14",
    arch="ViT-L-14",
    pretrained="laion2b_s32b_b82k",
    hf_repo="laion/CLIP-ViT-L-14-laion2B-s32B-b82K",
    revision="1627032197142fbe2a7cfec626f4ced3ae60d07a",
    filename="open_clip_pytorch_model.safetensors",
    sha256="7d129ed747e0ed53e82dfcc140382b51be66b56e6a9bdc3258afd2846e3bb019",
    preprocess=Preprocess(image_size=224, mean=INCEPTION_MEAN, std=INCEPTION_STD),
    embed_dim=768,
    description="OpenCLIP ViT-L/14 trained on LAION-2B: clearly better matches than ViT-B-32, "
    "but about 50 times slower to index on a CPU; for computers with a GPU.",
    size_mb=1710.5,
    license="MIT",
    quality=Quality(imagenet_top1=0.7525, avg_38=0.6205, source=OPENCLIP_RESULTS),
    speed=Speed(images_per_s=0.2, query_ms=65, on=SPEED_ON),
)

# The small one. Pin source: the Hub's own LFS pointer page for this file at this commit
# ("Add model", a406a1b…), showing SHA256 64553a97… and 398 MB: https://huggingface.co/apple/
# MobileCLIP-S2-OpenCLIP/blob/a406a1bd0b882b27509e608f3cb199de52010c4d/open_clip_pytorch_model.bin
# The same revision is pinned by an unrelated public project (for the tokenizer files). No second
# public record of this sha256 was found, so the pin rests on the Hub's pointer alone; the loader
# also checks the Hub's ETag before downloading. The repo's open_clip_model.safetensors could not
# be pinned (no public record of its hash was found), so the .bin is used: it is plain tensors and
# is read with torch.load(weights_only=True), which refuses any pickled code.
MOBILECLIP_S2 = ModelSpec(
    name="mobileclip-s2",
    arch="MobileCLIP-S2",
    pretrained="datacompdr",
    hf_repo="apple/MobileCLIP-S2-OpenCLIP",
    revision="a406a1bd0b882b27509e608f3cb199de52010c4d",
    filename="open_clip_pytorch_model.bin",
    sha256="64553a972ead2f84f6f59ee0c854751db0fdd2203efbd6e7e0c258ecbf24d8d8",
    preprocess=Preprocess(
        image_size=256,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        interpolation="bilinear",
    ),
    embed_dim=512,
    description="Apple MobileCLIP-S2 (DataCompDR): the smallest download, published quality "
    "close to ViT-L-14's; on a CPU it indexes about 3 times slower than ViT-B-32 (measured). Its "
    "weights come under Apple's own licence (apple-amlr): read it before any commercial use.",
    size_mb=398.0,
    license="apple-amlr",
    quality=Quality(imagenet_top1=0.744, avg_38=0.637, source=MOBILECLIP_CARD),
    speed=Speed(images_per_s=3.6, query_ms=89, on=SPEED_ON),
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
    pretrained="magpie-digits-v2",
    filename="tiny-digits.safetensors",
    sha256="9a3220802aca46842c3ac94e430dff1a4c734f965607df43cd4da7ef63aef114",
    preprocess=Preprocess(image_size=32),
    embed_dim=32,
    bundled="tiny-digits/tiny-digits.safetensors",
    description="A tiny ViT CLIP trained by Magpie on real handwritten digit scans; a second "
    "model for the ranking tests (scripts/train_digits_model.py).",
    size_mb=5.0,
)

# The multilingual one. xlm-roberta-base-ViT-B-32 (laion5b_s13b_b90k) is not offered: no public
# record of its weights' sha256 was found (its repo holds only a pickle .bin), and its text tower
# needs the xlm-roberta-base config fetched at load time. SigLIP i18n is offered instead: better
# published multilingual retrieval (open_clip's table: 66.37 % against 64.73 %) and ImageNet.
# Pin source: the Hub's own LFS pointer page for open_clip_model.safetensors in
# timm/ViT-B-16-SigLIP-i18n-256, showing SHA256 0dca7e40… and 1.48 GB; the file was added in
# commit 9b361c9 ("Add model") and is unchanged at ec35f94 (main). The repo's pickle .bin (another
# hash) is not used. open_clip's own pretrained table names this repo for the `webli` tag, and
# preprocessing below is open_clip's config for it (tests/test_specs.py compares them).
# Its tokenizer (tokenizer.json, 16.4 MB, and two small config files) is fetched from the same
# repo at the same pinned commit; no public record of those files' sha256 was found, so their
# hashes are recorded at the first download and checked on every load (tokenizer_files.py).
SIGLIP_I18N = ModelSpec(
    name="siglip-i18n",
    arch="ViT-B-16-SigLIP-i18n-256",
    pretrained="webli",
    hf_repo="timm/ViT-B-16-SigLIP-i18n-256",
    revision="ec35f9450b91a8ea263a50e31f55ae069069d1df",
    filename="open_clip_model.safetensors",
    sha256="0dca7e40ddcc0c89c39275226bd8609d96c60b1605bc1ae612a68f02170f14ce",
    preprocess=Preprocess(image_size=256, mean=INCEPTION_MEAN, std=INCEPTION_STD,
                          interpolation="bicubic", resize_mode="squash"),
    embed_dim=768,
    context_length=64,
    tokenizer=HubTokenizerFiles(clean="canonicalize"),
    description="Google's SigLIP ViT-B/16 trained on multilingual WebLI: search and notes in "
    "many languages (German, Japanese, Arabic, …). Published multilingual retrieval 66 % "
    "against 18 % for ViT-B-32. Its text window is shorter (64 tokens, ViT-B-32: 77), so notes "
    "are cut into smaller pieces. On a CPU it indexes about 5 to 6 times slower than ViT-B-32 "
    "(measured). Downloads 1.48 GB of weights and a 16 MB tokenizer.",
    # the weights: 1.48 GB on the Hub's page; a random-weight file in the same layout is
    # 1,482,539,144 bytes. Its tokenizer files add 16 MB.
    size_mb=1482.5,
    license="apache-2.0",
    quality=Quality(imagenet_top1=0.7513, avg_38=0.6068, source=OPENCLIP_RESULTS,
                    multilingual=0.6637, multilingual_source=OPENCLIP_MULTILINGUAL),
    # measured side by side with ViT-B-32 (11 images/s, 27 ms in the same run, load 4.6-5.6)
    speed=Speed(images_per_s=1.8, query_ms=143, on=SPEED_ON.replace("2026-11-30", "2026-12-01")),
)

SPECS: dict[str, ModelSpec] = {
    s.name: s for s in (VIT_B_32, VIT_B_32_INT8, MOBILECLIP_S2, VIT_L_14, SIGLIP_I18N,
                        TINY_SHAPES, TINY_DIGITS)
}
DEFAULT_SPEC = VIT_B_32.name


def _percent(fraction: float) -> str:
    """0.7525 -> "75.25 %", 0.744 -> "74.4 %": as precise as the source, no invented digits."""
    return f"{100 * fraction:.2f}".rstrip("0").rstrip(".") + " %"


class UnknownModel(MagpieError, ValueError):
    pass


def get_spec(name: str) -> ModelSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise UnknownModel(
            f"unknown model {name!r}; choose one of: {', '.join(sorted(SPECS))}"
        ) from None
