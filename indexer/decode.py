"""Decoding: files to model-ready pixels (in worker processes) and notes to text.

Runs in decode worker processes, so this module imports only Pillow and numpy.
"""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from indexer.errors import MagpieError

MAX_PIXELS = 150_000_000  # above this we refuse: a decompression bomb or no photo anyone takes
MAX_TEXT_BYTES = 4 * 1024 * 1024  # notes larger than this are read up to the cap
READ_BLOCK = 1 << 20  # notes are read (and hashed) in blocks, checking pause/cancel between

Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False

_HEIF_READY = False


class DecodeError(MagpieError):
    """A file we cannot use; the message is the reason shown to the user."""


VANISHED = "file vanished before it could be read"
PERMISSION = "permission denied"
CHANGED = "the file kept changing while it was being read (it is tried again on the next run)"
_TRANSIENT = (VANISHED, PERMISSION, "cannot read file", CHANGED)


def is_transient(reason: str | None) -> bool:
    """Errors that may go away without the file changing (a drive back, rights fixed):
    such files are retried on the next run instead of waiting for a change."""
    return reason is not None and reason.startswith(_TRANSIENT)


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # uint8 [size, size, 3]
    taken_at: float | None  # EXIF DateTimeOriginal as unix seconds


def _enable_heif() -> None:
    global _HEIF_READY
    if not _HEIF_READY:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
        except ImportError:
            pass
        _HEIF_READY = True


def exif_datetime(im: Image.Image) -> float | None:
    try:
        exif = im.getexif()
        raw = exif.get_ifd(0x8769).get(36867) or exif.get(306)  # DateTimeOriginal, DateTime
        if not raw:
            return None
        stamp = dt.datetime.strptime(str(raw).strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
        return stamp.timestamp()
    except Exception:
        return None


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any mode to RGB: alpha over white, 16-bit/float scaled to 8-bit, CMYK/P/L converted."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        if im.mode.startswith("I;16"):
            lo, hi = 0.0, 65535.0
        scaled = np.clip((arr - lo) / max(hi - lo, 1e-6) * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, "L").convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    if im.mode != "RGB":
        return im.convert("RGB")
    return im


_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def fit_square(im: Image.Image, size: int, interpolation: str = "bicubic") -> Image.Image:
    """Resize the shortest side to `size` and centre-crop: CLIP's preprocessing. The filter is
    the model's own (`Preprocess.interpolation`: bicubic for OpenCLIP's ViTs, bilinear for
    MobileCLIP), since it changes the vectors."""
    try:
        resample = _RESAMPLE[interpolation]
    except KeyError:
        raise ValueError(f"unsupported interpolation {interpolation!r}") from None
    w, h = im.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    im = im.resize((nw, nh), resample, reducing_gap=3.0)
    left, top = (nw - size) // 2, (nh - size) // 2
    return im.crop((left, top, left + size, top + size))


def load_image(path: str, size: int, interpolation: str = "bicubic") -> DecodedImage:
    """Decode only as much as the model needs (JPEG draft), apply EXIF orientation."""
    _enable_heif()
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise DecodeError(
                    f"image too large ({w}×{h} = {w * h / 1e6:.0f} MP; limit "
                    f"{MAX_PIXELS / 1e6:.0f} MP): possible decompression bomb"
                )
            if w < 1 or h < 1:
                raise DecodeError("image has no pixels")
            taken = exif_datetime(im)
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)  # animated GIF/WebP: the first frame stands for the file
            if im.format == "JPEG":
                im.draft("RGB", (2 * size, 2 * size))
            im.load()
            im = ImageOps.exif_transpose(im) or im
            rgb = _to_rgb(im)
            pixels = np.asarray(fit_square(rgb, size, interpolation), dtype=np.uint8)
    except DecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"image too large: possible decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise DecodeError(_not_an_image_reason(path)) from None
    except FileNotFoundError:
        raise DecodeError(VANISHED) from None
    except PermissionError:
        raise DecodeError(PERMISSION) from None
    except OSError as exc:
        msg = str(exc)
        if "truncated" in msg.lower() or "broken data stream" in msg.lower():
            raise DecodeError("truncated or corrupt image data") from None
        raise DecodeError(f"cannot read image: {msg}") from None
    except (ValueError, SyntaxError, EOFError, IndexError, TypeError) as exc:
        raise DecodeError(f"corrupt image: {exc}") from None
    if pixels.shape != (size, size, 3):
        raise DecodeError(f"unexpected decoded shape {pixels.shape}")
    return DecodedImage(pixels, taken)


def _not_an_image_reason(path: str) -> str:
    try:
        size = os.path.getsize(path)
    except OSError:
        return VANISHED
    if size == 0:
        return "empty file (0 bytes)"
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
        head.decode("utf-8")
        return "not an image: the file contains text"
    except (UnicodeDecodeError, OSError):
        return "not a recognised image format (corrupt or unsupported)"


def decode_image_job(
    path: str, size: int, interpolation: str = "bicubic"
) -> tuple[np.ndarray | None, float | None, str | None]:
    """Process-pool entry point: never raises for a bad file, returns (pixels, taken, error)."""
    try:
        d = load_image(path, size, interpolation)
        return d.pixels, d.taken_at, None
    except DecodeError as exc:
        return None, None, str(exc)
    except MemoryError:
        return None, None, "out of memory while decoding"
    except Exception as exc:  # a decoder bug must cost one file, not the run
        return None, None, f"decoder failed: {type(exc).__name__}: {exc}"


def read_note_bytes(path: str, check: Callable[[], None] | None = None) -> bytes:
    """The bytes of a note that are ever used: the first MAX_TEXT_BYTES, read in blocks with
    `check` (pause/cancel/budget) between them. Raises OSError like open()."""
    parts: list[bytes] = []
    left = MAX_TEXT_BYTES
    with open(path, "rb") as fh:
        while left > 0:
            if check is not None:
                check()
            block = fh.read(min(READ_BLOCK, left))
            if not block:
                break
            parts.append(block)
            left -= len(block)
    return b"".join(parts)


def read_text(path: str, check: Callable[[], None] | None = None) -> str:
    """Read a note: UTF-8 (BOM ok), UTF-16 with BOM, else cp1252/latin-1. Binary is refused."""
    try:
        data = read_note_bytes(path, check)
    except FileNotFoundError:
        raise DecodeError(VANISHED) from None
    except PermissionError:
        raise DecodeError(PERMISSION) from None
    except OSError as exc:
        raise DecodeError(f"cannot read file: {exc.strerror or exc}") from None
    if not data.strip():
        raise DecodeError("empty note (no text)")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise DecodeError("corrupt UTF-16 text") from None
    head = data[:8192]
    if b"\x00" in head or _control_ratio(head) > 0.1:
        raise DecodeError("binary data, not text")
    if len(data) == MAX_TEXT_BYTES:  # cut at the cap: drop a partial UTF-8 sequence at the end
        for trim in range(4):
            try:
                return data[: len(data) - trim].decode("utf-8-sig")
            except UnicodeDecodeError:
                continue
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DecodeError("cannot decode text")  # unreachable: latin-1 accepts all bytes


def _control_ratio(data: bytes) -> float:
    if not data:
        return 0.0
    controls = sum(1 for b in data if b < 32 and b not in (9, 10, 12, 13))
    return controls / len(data)
