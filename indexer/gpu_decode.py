"""Batched JPEG decoding on the GPU (nvJPEG through torchvision), resize and crop there too.

Used by the pipeline only when the model runs on CUDA. It handles the common case and nothing
else: a file that isn't a plain RGB/grey JPEG, is too large, fails to decode or can't be read is
handed back (None) and goes through the CPU decode pool, which gives it the same treatment and the
same error messages as on a machine without a GPU. Runs in the main process (it needs the CUDA
context); torch/torchvision are imported lazily.

The same code runs with device="cpu" (torchvision's libjpeg-turbo decoder), which is how it is
tested on machines without a GPU.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np

from indexer.decode import MAX_PIXELS, exif_datetime

JPEG_EXTS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif"})
#: decoded pixels held at once on the GPU per sub-batch (uint8 RGB): 12 MP photos come in
#: sub-batches of ~32, web-size images in one go
PIXEL_BUDGET = 400_000_000


def is_jpeg_name(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in JPEG_EXTS


@dataclass(frozen=True)
class JpegFile:
    """A JPEG read into memory with what the GPU decoder can't work out itself."""

    data: bytes
    width: int
    height: int
    orientation: int  # EXIF 1..8
    taken_at: float | None


def read_jpeg(path: str) -> JpegFile | None:
    """The bytes and header facts of a JPEG the GPU path can take, else None (CPU path).

    Pillow only parses the header here (no pixel decoding)."""
    from PIL import Image

    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if not data.startswith(b"\xff\xd8"):
            return None
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "JPEG" or im.mode not in ("RGB", "L"):  # CMYK/YCCK: CPU
                return None
            w, h = im.size
            if w < 1 or h < 1 or w * h > MAX_PIXELS:
                return None
            try:
                orientation = int(im.getexif().get(0x0112, 1) or 1)
            except Exception:
                orientation = 1
            taken = exif_datetime(im)
    except Exception:  # unreadable, vanished, not really a JPEG: the CPU path says why
        return None
    return JpegFile(data, w, h, orientation if 1 <= orientation <= 8 else 1, taken)


def apply_orientation(t, orientation: int):
    """[C, H, W] tensor turned upright like PIL.ImageOps.exif_transpose."""
    if orientation == 2:
        return t.flip(-1)
    if orientation == 3:
        return t.flip(-2, -1)
    if orientation == 4:
        return t.flip(-2)
    if orientation == 5:
        return t.transpose(-2, -1)
    if orientation == 6:
        return t.rot90(-1, dims=(-2, -1))
    if orientation == 7:
        return t.transpose(-2, -1).flip(-2, -1)
    if orientation == 8:
        return t.rot90(1, dims=(-2, -1))
    return t


def resize_crop(t, size: int):
    """[3, H, W] uint8 -> [size, size, 3] uint8: shortest side to `size` (bicubic, antialiased),
    centre crop. The GPU twin of `indexer.decode.fit_square`."""
    import torch
    import torch.nn.functional as F

    _, h, w = t.shape
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    x = F.interpolate(t[None].float(), size=(nh, nw), mode="bicubic", antialias=True,
                      align_corners=False)[0]
    left, top = (nw - size) // 2, (nh - size) // 2
    x = x[:, top : top + size, left : left + size]
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0)


def _decode(tensors: list, device: str) -> list:
    """Batched decode; when the batch fails, each file alone so one bad file costs only itself."""
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        out = decode_jpeg(tensors, mode=ImageReadMode.RGB, device=device)
        return list(out) if isinstance(out, (list, tuple)) else [out]
    except Exception:
        single = []
        for t in tensors:
            try:
                single.append(decode_jpeg(t, mode=ImageReadMode.RGB, device=device))
            except Exception:
                single.append(None)
        return single


def decode_batch(files: list[JpegFile | None], size: int, device: str) -> list[np.ndarray | None]:
    """Model-ready uint8 [size, size, 3] per file, None where the CPU path must take over."""
    import torch

    out: list[np.ndarray | None] = [None] * len(files)
    todo = [(i, f) for i, f in enumerate(files) if f is not None]
    start = 0
    while start < len(todo):
        group: list[tuple[int, JpegFile]] = []
        pixels = 0
        while start < len(todo) and (not group or pixels + todo[start][1].width
                                     * todo[start][1].height <= PIXEL_BUDGET):
            f = todo[start][1]
            group.append(todo[start])
            pixels += f.width * f.height
            start += 1
        tensors = [torch.frombuffer(bytearray(f.data), dtype=torch.uint8) for _, f in group]
        decoded = _decode(tensors, device)
        ready: list[tuple[int, torch.Tensor]] = []
        for (i, f), img in zip(group, decoded):
            if img is None or img.ndim != 3 or img.shape[0] != 3:
                continue
            try:
                ready.append((i, resize_crop(apply_orientation(img, f.orientation), size)))
            except Exception:
                continue
            del img
        if ready:
            host = torch.stack([t for _, t in ready]).cpu().numpy()  # one transfer per group
            for (i, _), px in zip(ready, host):
                out[i] = px
        del decoded, tensors
    return out


def gpu_decode_available(device: str) -> bool:
    """True when `device` is CUDA and torchvision's GPU JPEG decoder can be used."""
    if not str(device).startswith("cuda"):
        return False
    try:
        import torch
        from torchvision.io import decode_jpeg  # noqa: F401

        return bool(torch.cuda.is_available())
    except Exception:
        return False
