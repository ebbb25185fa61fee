"""Decoding: files to model-ready pixels (in worker processes) and notes to text.

Runs in decode worker processes, so this module imports only Pillow and numpy.
"""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from indexer.errors import MagpieError

MAX_PIXELS = 150_000_000  # above this we refuse: a decompression bomb or no photo anyone takes
#: memory one decode may use at its peak. A small file can unpack to hundreds of MB (a 0.6 MB
#: PNG of 12000×12000 RGBA is 576 MB in memory), and each core runs a decoder at once, so a
#: picture whose decode would need more is refused with its reason instead of risking the run.
#: Every picture under MAX_PIXELS fits: the largest needs about 620 MB (decoded in strips).
DECODE_BUDGET_BYTES = 1024 * 1024 * 1024
#: above this many pixels (after JPEG draft) a picture is converted and reduced in strips, so
#: only its decoded form is ever whole in memory; below it, the whole-image path (the same
#: pixels, a few full-size copies that are small at this size)
STRIP_ABOVE_PIXELS = 8_000_000
STRIP_PIXELS = 1 << 21  # pixels per strip (~8 MB as RGB, a few times that while converting)
#: a decode worker's data-segment limit is its size at start + the budget + this margin, for
#: what the estimate does not see (decoder buffers, a HEIF decoder's threads)
WORKER_HEADROOM_BYTES = 256 * 1024 * 1024
MAX_TEXT_BYTES = 4 * 1024 * 1024  # notes larger than this are read up to the cap
READ_BLOCK = 1 << 20  # notes are read (and hashed) in blocks, checking pause/cancel between

Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False

_HEIF_READY = False
_budget_bytes = DECODE_BUDGET_BYTES  # a decode worker's own budget (`limit_worker_memory`)
_worker_limited = False


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


def _to_rgb(im: Image.Image, extrema: tuple[float, float] | None = None) -> Image.Image:
    """Any mode to RGB: alpha over white, 16-bit/float scaled to 8-bit, CMYK/P/L converted.
    `extrema`: the (min, max) of the whole picture when `im` is a strip of a 32-bit one."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float32)
        lo, hi = extrema if extrema is not None else (float(arr.min()), float(arr.max()))
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


def _resample(interpolation: str) -> Image.Resampling:
    try:
        return _RESAMPLE[interpolation]
    except KeyError:
        raise ValueError(f"unsupported interpolation {interpolation!r}") from None


RESIZE_MODES = ("shortest", "squash")


def resized_size(w: int, h: int, size: int, resize_mode: str = "shortest") -> tuple[int, int]:
    """The size a w×h picture is resized to before the centre crop to size×size: "shortest"
    (CLIP: shortest side to `size`, aspect kept) or "squash" (SigLIP: straight to size×size,
    aspect not kept, nothing cropped). `Preprocess.resize_mode` says which a model wants."""
    if resize_mode == "squash":
        return size, size
    if resize_mode != "shortest":
        raise ValueError(f"unsupported resize mode {resize_mode!r}")
    scale = size / min(w, h)
    return max(size, round(w * scale)), max(size, round(h * scale))


def fit_square(im: Image.Image, size: int, interpolation: str = "bicubic",
               resize_mode: str = "shortest") -> Image.Image:
    """Resize and centre-crop to size×size the model's own way (`Preprocess.interpolation`:
    bicubic for OpenCLIP's ViTs, bilinear for MobileCLIP; `Preprocess.resize_mode`: shortest
    side for CLIP, squash for SigLIP), since both change the vectors."""
    resample = _resample(interpolation)
    nw, nh = resized_size(*im.size, size, resize_mode)
    im = im.resize((nw, nh), resample, reducing_gap=3.0)
    left, top = (nw - size) // 2, (nh - size) // 2
    return im.crop((left, top, left + size, top + size))


# -- memory: what a decode needs, and decoding large pictures in strips ------------------------
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}


def pixel_bytes(mode: str) -> int:
    """Bytes per pixel of a decoded image in Pillow's memory: one for 1/L/P, two for 16-bit
    grey, four for everything else (Pillow keeps RGB, LA and CMYK in four bytes too)."""
    return _PIXEL_BYTES.get(mode, 4)


def _whole_copies(mode: str) -> int:
    """Bytes per pixel the whole-image path keeps alive at its peak, besides the decoded image:
    EXIF transpose's copy, then the conversion's own (alpha: an RGBA copy, a white ground, the
    composite and the RGB result; 16/32-bit: float32 array + two temporaries, 8-bit, RGB)."""
    copy = pixel_bytes(mode)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La", "P"):
        return copy + 16
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return copy + 12 + 1 + 4
    return copy + (0 if mode == "RGB" else 4)


def _reduce_factors(w: int, h: int, size: int,
                    resize_mode: str = "shortest") -> tuple[int, int, int, int]:
    """(fx, fy, nw, nh): fit_square's target size and the integer reduction Pillow's resize
    applies first (reducing_gap=3.0), computed the way Image.resize computes them."""
    nw, nh = resized_size(w, h, size, resize_mode)
    return int(w / nw / 3.0) or 1, int(h / nh / 3.0) or 1, nw, nh


def decode_bytes_needed(w: int, h: int, mode: str, size: int,
                        strip_above: int = STRIP_ABOVE_PIXELS) -> int:
    """Peak bytes decoding a w×h picture of this mode needs: the decoded image itself, plus
    either the whole-image conversion's copies or, in strips, a few strips and the reduced
    result."""
    decoded = w * h * pixel_bytes(mode)
    if w * h <= strip_above:
        return decoded + w * h * _whole_copies(mode)
    fx, fy, _, _ = _reduce_factors(w, h, size)
    reduced = -(-w // fx) * -(-h // fy) * 4
    strip = min(w * h, max(STRIP_PIXELS, max(w, h) * max(fx, fy)))
    return decoded + reduced + strip * (pixel_bytes(mode) + _whole_copies(mode))


def over_budget_reason(needed: int, budget: int) -> str:
    mb = 1024 * 1024
    return (f"needs about {-(-needed // mb)} MB to decode, more than the {budget // mb} MB "
            f"budget of a decode worker")


_SOURCE_REVERSED = {Image.Transpose.ROTATE_180, Image.Transpose.FLIP_TOP_BOTTOM,
                    Image.Transpose.TRANSVERSE, Image.Transpose.ROTATE_90}
_SWAPS_AXES = {Image.Transpose.TRANSPOSE, Image.Transpose.ROTATE_270,
               Image.Transpose.TRANSVERSE, Image.Transpose.ROTATE_90}
_ORIENTATION = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                8: Image.Transpose.ROTATE_90}  # ImageOps.exif_transpose's table


def _orientation_op(im: Image.Image) -> Image.Transpose | None:
    try:
        return _ORIENTATION.get(im.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - unreadable EXIF: shown as stored
        return None


def _strip_source(op: Image.Transpose | None, w: int, h: int, y0: int, y1: int) -> tuple:
    """The box of the stored image that becomes rows y0..y1 of the upright one."""
    if op in _SWAPS_AXES:  # upright rows are stored columns
        return (w - y1, 0, w - y0, h) if op in _SOURCE_REVERSED else (y0, 0, y1, h)
    return (0, h - y1, w, h - y0) if op in _SOURCE_REVERSED else (0, y0, w, y1)


def _fit_square_in_strips(im: Image.Image, size: int, interpolation: str,
                          resize_mode: str = "shortest") -> Image.Image:
    """What `fit_square(_to_rgb(exif_transpose(im)))` gives, pixel for pixel, without a
    full-size copy: each strip of the upright picture is cut from the decoded one, turned,
    converted to RGB and reduced by the factor Pillow's resize would reduce the whole by (the
    conversions are per pixel, so strips aligned to the factor give the same sums), then the
    small result is resized exactly as resize resizes after its own reduce."""
    op = _orientation_op(im)
    w, h = im.size
    uw, uh = (h, w) if op in _SWAPS_AXES else (w, h)
    fx, fy, nw, nh = _reduce_factors(uw, uh, size, resize_mode)
    extrema = None
    if im.mode in ("I", "F"):  # scaled by the whole picture's range, as _to_rgb scales it
        lo, hi = cast(tuple[float, float], im.getextrema())
        extrema = (float(np.float32(lo)), float(np.float32(hi)))
    out = Image.new("RGB", (-(-uw // fx), -(-uh // fy)))
    rows = max(fy, STRIP_PIXELS // max(uw, 1) // fy * fy)
    for y0 in range(0, uh, rows):
        y1 = min(uh, y0 + rows)
        strip = im.crop(_strip_source(op, w, h, y0, y1))
        if op is not None:
            strip = strip.transpose(op)
        rgb = _to_rgb(strip, extrema)
        del strip
        out.paste(rgb.reduce((fx, fy)) if (fx, fy) != (1, 1) else rgb, (0, y0 // fy))
    if (fx, fy) == (1, 1):
        return fit_square(out, size, interpolation, resize_mode)
    resized = out.resize((nw, nh), _resample(interpolation), box=(0, 0, uw / fx, uh / fy))
    left, top = (nw - size) // 2, (nh - size) // 2
    return resized.crop((left, top, left + size, top + size))


def load_image(path: str, size: int, interpolation: str = "bicubic",
               resize_mode: str = "shortest", *,
               budget_bytes: int | None = None,
               strip_above: int = STRIP_ABOVE_PIXELS) -> DecodedImage:
    """Decode only as much as the model needs (JPEG draft), apply EXIF orientation.

    A picture whose decode would need more than `budget_bytes` (default: this process's
    decode budget) is refused before any pixel is decoded; one over `strip_above` pixels is
    converted and reduced in strips, so at most its decoded form is ever whole in memory."""
    _enable_heif()
    budget = _budget_bytes if budget_bytes is None else budget_bytes
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
            w, h = im.size  # after draft: what will be decoded
            needed = decode_bytes_needed(w, h, im.mode, size, strip_above)
            if needed > budget:
                raise DecodeError(over_budget_reason(needed, budget))
            im.load()
            if w * h > strip_above:
                square = _fit_square_in_strips(im, size, interpolation, resize_mode)
            else:
                im = ImageOps.exif_transpose(im) or im
                square = fit_square(_to_rgb(im), size, interpolation, resize_mode)
            pixels = np.asarray(square, dtype=np.uint8)
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
    path: str, size: int, interpolation: str = "bicubic", resize_mode: str = "shortest"
) -> tuple[np.ndarray | None, float | None, str | None]:
    """Process-pool entry point: never raises for a bad file, returns (pixels, taken, error)."""
    try:
        d = load_image(path, size, interpolation, resize_mode)
        return d.pixels, d.taken_at, None
    except DecodeError as exc:
        return None, None, str(exc)
    except MemoryError:
        if _worker_limited:
            mb = _budget_bytes // (1024 * 1024)
            return None, None, (f"needed more memory to decode than the {mb} MB budget of a "
                                f"decode worker")
        return None, None, "out of memory while decoding"
    except Exception as exc:  # a decoder bug must cost one file, not the run
        return None, None, f"decoder failed: {type(exc).__name__}: {exc}"


def _data_segment_bytes() -> int | None:
    """This process's data segment (VmData: heap and private writable mappings), or None."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def limit_worker_memory(budget_bytes: int = DECODE_BUDGET_BYTES) -> None:
    """In the decode-pool initializer: this worker's budget for the pre-decode check, and a
    hard cap on its data segment (RLIMIT_DATA) a little above it, so a decode the estimate misjudged
    fails with MemoryError (one file, with its reason) instead of growing until the OOM
    killer takes the run. Never called in the main process. A no-op where the platform has
    no such limit (Windows; macOS does not enforce it)."""
    global _budget_bytes, _worker_limited
    _budget_bytes = int(budget_bytes)
    try:
        import resource
    except ImportError:
        return
    used = _data_segment_bytes()
    if used is None:
        return
    limit = used + _budget_bytes + WORKER_HEADROOM_BYTES
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if soft != resource.RLIM_INFINITY and soft <= limit:
            return  # already capped tighter by whoever started us
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
        _worker_limited = True
    except (ValueError, OSError):
        return


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
