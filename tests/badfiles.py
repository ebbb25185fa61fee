"""A corpus of every kind of bad input a real disk holds, generated on the fly.

`make_bad_corpus(folder)` returns {relative name: substring expected in the error reason}
for the files that must fail, and the list of files that must index fine despite being odd.
"""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from PIL import Image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path: Path, w: int = 30000, h: int = 30000) -> None:
    """A PNG whose header claims w×h pixels (900 MP) in a few hundred bytes."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * 3 * 16
    idat = zlib.compress(row * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                     + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))


def make_bad_corpus(folder: Path) -> tuple[dict[str, str], list[str]]:
    folder.mkdir(parents=True, exist_ok=True)
    must_fail: dict[str, str] = {}
    must_pass: list[str] = []

    good = Image.new("RGB", (120, 90), (200, 30, 30))
    good.save(folder / "good.jpg")
    must_pass.append("good.jpg")

    data = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    must_fail["truncated.jpg"] = "truncated"
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    must_fail["corrupt.png"] = ""  # any clear reason
    (folder / "zero.jpg").write_bytes(b"")
    must_fail["zero.jpg"] = "empty file"
    (folder / "zero.txt").write_bytes(b"")
    must_fail["zero.txt"] = "empty note"
    (folder / "actually-text.jpg").write_text("this is a shopping list, not a photo\n")
    must_fail["actually-text.jpg"] = "contains text"
    bomb_png(folder / "bomb.png")
    must_fail["bomb.png"] = "decompression bomb"
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 64)
    must_fail["binary.txt"] = "binary data"

    frames = [Image.new("P", (40, 40), i * 40) for i in range(4)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=50)
    must_pass.append("animated.gif")
    Image.new("CMYK", (64, 48), (0, 200, 200, 0)).save(folder / "cmyk.jpg")
    must_pass.append("cmyk.jpg")
    Image.new("I;16", (64, 48), 40000).save(folder / "sixteen-bit.png")
    must_pass.append("sixteen-bit.png")
    Image.new("RGBA", (64, 48), (0, 0, 255, 128)).save(folder / "alpha.png")
    must_pass.append("alpha.png")
    Image.new("LA", (64, 48), (90, 200)).save(folder / "grey-alpha.png")
    must_pass.append("grey-alpha.png")
    Image.new("1", (64, 48), 1).save(folder / "bilevel.bmp")
    must_pass.append("bilevel.bmp")
    Image.new("RGB", (64, 48), (9, 9, 9)).save(folder / "scan.tiff")
    must_pass.append("scan.tiff")
    Image.new("RGB", (1, 5000), (9, 90, 9)).save(folder / "sliver.png")
    must_pass.append("sliver.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: must come out upright
    exif[0x0132] = "2021:07:04 10:00:00"
    Image.new("RGB", (80, 40), (0, 128, 0)).save(folder / "rotated.jpg", exif=exif)
    must_pass.append("rotated.jpg")

    (folder / "latin1.txt").write_bytes("Crème brûlée für Käthe, señor".encode("latin-1"))
    must_pass.append("latin1.txt")
    (folder / "utf16.txt").write_bytes("Ünïcode note in UTF-16".encode("utf-16"))
    must_pass.append("utf16.txt")
    bad_name = os.fsdecode(b"caf\xe9-latin1-name.png")  # not valid UTF-8
    good.save(os.path.join(os.fsencode(folder), b"caf\xe9-latin1-name.png"), format="PNG")
    must_pass.append(bad_name)

    loop = folder / "loop"
    loop.mkdir()
    (loop / "again").symlink_to(folder, target_is_directory=True)
    (folder / "dangling.jpg").symlink_to(folder / "does-not-exist.jpg")
    (folder / ".hidden.jpg").write_bytes(data)  # hidden: skipped, not an error
    return must_fail, must_pass
