"""Shared pieces of the benchmarks: the machine, generated data, the ViT-B-32 stand-in, tables.

Nothing here downloads anything. Real ViT-B-32 weights can't be fetched on the bench machines,
so throughput is measured with *random weights in the published architecture*: the checkpoint is
built with `open_clip.create_model("ViT-B-32")`, saved as safetensors, and loaded through the real
loader (`indexer.model.load_encoder`) under a spec that pins its sha256. Speed does not depend on
the values of the weights.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = BENCH / ".cache"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# -- the machine ------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    model = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        m = re.search(r"Model name:\s*(.+)", out)
        if m:
            model = m.group(1).strip()
    except (OSError, subprocess.SubprocessError):
        pass
    mem_gib = 0.0
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_gib = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
        tv = torch.__version__
    except ImportError:
        tv = "-"
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "ram": f"{mem_gib:.0f} GiB",
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": tv,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def print_machine(title: str) -> None:
    m = machine()
    print(f"# {title}")
    print(f"# {m['cpu']} · {m['cores']} cores · {m['ram']} · GPU {m['gpu']} · "
          f"python {m['python']} · torch {m['torch']} · loadavg at start {m['load']}")


# -- tables -----------------------------------------------------------------------------------
def table(headers: list[str], rows: list[list], title: str | None = None) -> str:
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    out = []
    if title:
        out.append(f"\n### {title}\n")
    out.append("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    text = "\n".join(out)
    print(text, flush=True)
    return text


def _fmt(c) -> str:
    if isinstance(c, float):
        if c != c:  # nan
            return "–"
        if abs(c) >= 100:
            return f"{c:,.0f}"
        if abs(c) >= 10:
            return f"{c:.1f}"
        return f"{c:.2f}"
    return str(c)


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


class Timer:
    def __enter__(self) -> "Timer":
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.s = time.perf_counter() - self.t0


# -- the ViT-B-32 stand-in --------------------------------------------------------------------
def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def vit_b32_checkpoint(seed: int = 0) -> tuple[Path, str]:
    """Random weights in the published ViT-B-32 layout (built once, cached); (path, sha256)."""
    path = CACHE / f"vit-b-32-random-seed{seed}.safetensors"
    sha_file = path.with_suffix(".sha256")
    if path.exists() and sha_file.exists():
        return path, sha_file.read_text().strip()
    import open_clip
    import torch
    from safetensors.torch import save_file

    CACHE.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(sd, str(tmp))
    os.replace(tmp, path)
    sha = sha256_of(path)
    sha_file.write_text(sha)
    return path, sha


def vit_b32_spec():
    from indexer.specs import VIT_B_32

    path, sha = vit_b32_checkpoint()
    return dataclasses.replace(VIT_B_32, sha256=sha), path


def load_vit_b32(device: str = "cpu"):
    """The real loader on the random-weight checkpoint; returns (encoder, spec)."""
    from indexer.model import load_encoder

    spec, path = vit_b32_spec()
    enc = load_encoder(spec, path, device=device)
    return ensure_encoder_api(enc), spec


def ensure_encoder_api(enc):
    """The pipeline's EncoderLike wants `image_size` and `max_text_tokens`; add them if this
    build's Encoder lacks them (they are plain facts of the spec)."""
    cls = type(enc)
    if not hasattr(enc, "image_size"):
        try:
            cls.image_size = property(lambda self: self.spec.preprocess.image_size)
        except TypeError:
            enc.image_size = enc.spec.preprocess.image_size
    if not hasattr(enc, "max_text_tokens"):
        try:
            cls.max_text_tokens = property(lambda self: self.spec.context_length - 2)
        except TypeError:
            enc.max_text_tokens = enc.spec.context_length - 2
    return enc


# -- generated files --------------------------------------------------------------------------
def _photo_like(rng: np.random.Generator, w: int, h: int, noise: float) -> np.ndarray:
    """Smooth gradients + soft shapes + sensor-like noise: compresses like a camera photo."""
    from PIL import Image, ImageDraw, ImageFilter

    # low-frequency base: a small random field upscaled (sky/ground-like gradients)
    base = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    im = Image.fromarray(base, "RGB").resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(12, 30))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        rw, rh = int(rng.integers(w // 30, w // 4)), int(rng.integers(h // 30, h // 4))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        box = (x0, y0, x0 + rw, y0 + rh)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    # mid-frequency texture (foliage/fabric-like), then soften edges a bit
    tex = rng.integers(0, 256, size=(h // 16, w // 16), dtype=np.uint8)
    tex_im = Image.fromarray(tex, "L").resize((w, h), Image.Resampling.BILINEAR)
    im = im.filter(ImageFilter.GaussianBlur(1.2))
    arr = np.asarray(im, dtype=np.int16)
    arr = arr + ((np.asarray(tex_im, dtype=np.int16) - 128) // 6)[..., None]
    if noise:
        arr = arr + rng.normal(0, noise, size=(h, w, 1)).astype(np.int16)
    return np.clip(arr, 0, 255).astype(np.uint8)


def make_jpegs(folder: Path, n: int, w: int, h: int, *, quality: int, noise: float,
               seed: int, exif: bool = True) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    proto = [_photo_like(rng, w, h, noise) for _ in range(min(n, 8))]
    for i in range(n):
        p = folder / f"IMG_{i:05d}.jpg"
        out.append(p)
        if p.exists():
            continue
        arr = proto[i % len(proto)]
        # make every file distinct (the indexer deduplicates identical content)
        arr = np.roll(arr, shift=(i * 37) % h, axis=0)
        arr = arr.copy()
        arr[0, : 3 + i % 500, :] = (i * 7) % 256
        im = Image.fromarray(arr, "RGB")
        kw = {"quality": quality, "subsampling": 2}
        if exif:
            ex = Image.Exif()
            ex[0x0112] = 1  # orientation
            ex[306] = f"2023:07:{1 + i % 28:02d} 12:00:00"
            kw["exif"] = ex.tobytes()
        tmp = p.with_suffix(".tmp")
        im.save(tmp, "JPEG", **kw)
        os.replace(tmp, p)
    return out


def make_screenshots(folder: Path, n: int, w: int = 1920, h: int = 1080, seed: int = 2) -> list[Path]:
    """UI-like PNGs: window chrome, panels, text lines, icons, a photo thumbnail or two."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    words = ("File Edit View Window Help Settings Search Library Photos Notes Import Export "
             "Open Save Close Preferences Account Sync Share Album Recent Trash").split()
    thumb = _photo_like(rng, 320, 200, 3)
    out = []
    for i in range(n):
        p = folder / f"Screenshot {i:05d}.png"
        out.append(p)
        if p.exists():
            continue
        bg = tuple(int(c) for c in rng.integers(200, 256, 3))
        im = Image.new("RGB", (w, h), bg)
        d = ImageDraw.Draw(im)
        d.rectangle((0, 0, w, 40), fill=(50, 50, 60))
        side = int(rng.integers(180, 360))
        d.rectangle((0, 40, side, h), fill=tuple(int(c) for c in rng.integers(220, 246, 3)))
        y = 60
        while y < h - 30:
            x = 10
            for _ in range(int(rng.integers(2, 8))):
                word = words[int(rng.integers(len(words)))]
                d.text((x, y), word, fill=(20, 20, 20))
                x += 8 * len(word) + 10
            y += int(rng.integers(16, 28))
            if rng.random() < 0.05:
                x0 = int(rng.integers(side, w - 340))
                im.paste(Image.fromarray(thumb), (x0, y))
                y += 210
        for _ in range(int(rng.integers(5, 15))):
            x0, y0 = int(rng.integers(side, w - 200)), int(rng.integers(40, h - 100))
            d.rounded_rectangle((x0, y0, x0 + int(rng.integers(60, 400)), y0 + 30), 6,
                                fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        d.text((w - 200, 12), f"{i:05d}", fill=(255, 255, 255))
        tmp = p.with_suffix(".tmp")
        im.save(tmp, "PNG")
        os.replace(tmp, p)
    return out


_WORDS = ("the a of meeting notes project budget garden recipe travel plan beach mountain dog cat "
          "family photo birthday invoice tax receipt list shopping milk bread eggs idea draft "
          "chapter summary review todo call email schedule flight hotel museum lunch dinner "
          "paint kitchen bike repair insurance doctor school homework piano concert").split()


def make_notes(folder: Path, n: int, seed: int = 3) -> list[Path]:
    """Notes of 40-400 words (1-6 chunks each), Markdown and plain text."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p = folder / (f"note-{i:05d}.md" if i % 2 else f"note-{i:05d}.txt")
        out.append(p)
        if p.exists():
            continue
        paras = []
        for _ in range(int(rng.integers(1, 5))):
            k = int(rng.integers(20, 100))
            paras.append(" ".join(_WORDS[j] for j in rng.integers(0, len(_WORDS), k)) + ".")
        p.write_text(f"# Note {i}\n\n" + "\n\n".join(paras) + "\n")
    return out


def folder_size_mb(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def datasets(smoke: bool) -> dict[str, tuple[Path, list[Path]]]:
    """The four generated folders (cached under bench/.cache; smoke sets are small and separate)."""
    tag = "smoke" if smoke else "full"
    base = CACHE / "data" / tag
    n = (dict(camera=4, web=16, screens=6, notes=16) if smoke
         else dict(camera=120, web=400, screens=120, notes=400))
    sets = {
        "camera 12 MP JPEG": (base / "camera",
                              lambda f: make_jpegs(f, n["camera"], 4000, 3000, quality=88,
                                                   noise=5.0, seed=11)),
        "web 0.5 MP JPEG": (base / "web",
                            lambda f: make_jpegs(f, n["web"], 864, 576, quality=85, noise=4.0,
                                                 seed=12, exif=False)),
        "PNG screenshot 1080p": (base / "screens", lambda f: make_screenshots(f, n["screens"])),
        "text notes": (base / "notes", lambda f: make_notes(f, n["notes"])),
    }
    return {name: (folder, make(folder)) for name, (folder, make) in sets.items()}
