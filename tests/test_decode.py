"""Decoding (indexer/decode.py) through its public calls: `load_image`, `decode_image_job`,
`read_text`. Upright pictures, every mode to RGB, the pixel cap, and one clear reason for
every file that cannot be used."""
from __future__ import annotations

import datetime as dt
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer import decode
from indexer.decode import (
    MAX_PIXELS,
    MAX_TEXT_BYTES,
    PERMISSION,
    VANISHED,
    DecodeError,
    decode_image_job,
    is_transient,
    load_image,
    read_text,
)

RED, GREEN, BLUE, YELLOW = (230, 20, 20), (20, 220, 30), (25, 30, 225), (235, 225, 20)


# -- orientation ------------------------------------------------------------------------------
def quadrants(w: int = 64, h: int = 32) -> np.ndarray:
    """Top-left red, top-right green, bottom-left blue, bottom-right yellow."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2], a[: h // 2, w // 2 :] = RED, GREEN
    a[h // 2 :, : w // 2], a[h // 2 :, w // 2 :] = BLUE, YELLOW
    return a


# how a viewer turns the stored pixels for each EXIF orientation (the EXIF 2.3 table)
SHOWN = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: np.rot90(a, 2),
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.swapaxes(0, 1),  # mirrored and turned a quarter
    6: lambda a: np.rot90(a, -1),  # a quarter clockwise
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),  # a quarter anticlockwise
}


def centre_crop(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return a[top : top + s, left : left + s]


@pytest.mark.parametrize("orientation", sorted(SHOWN))
def test_every_exif_orientation_decodes_the_way_a_viewer_shows_it(tmp_path, orientation):
    stored = quadrants()
    path = tmp_path / f"o{orientation}.png"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, exif=exif)
    got = load_image(str(path), 32).pixels
    want = centre_crop(SHOWN[orientation](stored))
    assert got.shape == want.shape == (32, 32, 3)
    for y, x in [(8, 8), (8, 24), (24, 8), (24, 24)]:  # the middle of each quadrant
        assert np.abs(got[y, x].astype(int) - want[y, x]).max() <= 12, (orientation, y, x)


# -- modes ------------------------------------------------------------------------------------
def colour_of(path: Path, size: int = 16) -> tuple[int, int, int]:
    px = load_image(str(path), size).pixels
    assert px.shape == (size, size, 3) and px.dtype == np.uint8
    return tuple(int(c) for c in px[size // 2, size // 2])


def close(a, b, tol: int = 6) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def test_every_mode_becomes_rgb_with_the_right_colours(tmp_path):
    Image.new("RGBA", (20, 20), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    assert close(colour_of(tmp_path / "clear.png"), (255, 255, 255))  # over white, not black
    Image.new("RGBA", (20, 20), (0, 0, 255, 255)).save(tmp_path / "opaque.png")
    assert close(colour_of(tmp_path / "opaque.png"), (0, 0, 255))
    Image.new("LA", (20, 20), (0, 128)).save(tmp_path / "la.png")
    assert close(colour_of(tmp_path / "la.png"), (127, 127, 127), tol=3)  # half black on white
    Image.new("L", (20, 20), 128).save(tmp_path / "grey.png")
    assert colour_of(tmp_path / "grey.png") == (128, 128, 128)
    Image.new("I;16", (20, 20), 65535).save(tmp_path / "white16.png")
    assert colour_of(tmp_path / "white16.png") == (255, 255, 255)  # 16-bit full scale
    Image.new("I;16", (20, 20), 0).save(tmp_path / "black16.png")
    assert colour_of(tmp_path / "black16.png") == (0, 0, 0)
    Image.new("CMYK", (20, 20), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)
    assert close(colour_of(tmp_path / "cmyk.jpg"), (255, 0, 0), tol=12)
    pal = Image.new("P", (20, 20), 1)
    pal.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    pal.save(tmp_path / "palette.png")
    assert close(colour_of(tmp_path / "palette.png"), (0, 200, 0))


def test_an_animated_picture_is_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (20, 20), c) for c in (RED, BLUE)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    r, g, b = colour_of(tmp_path / "anim.gif")
    assert r > 150 and b < 100


def test_a_big_jpeg_comes_out_model_sized(tmp_path):
    Image.new("RGB", (2400, 1600), GREEN).save(tmp_path / "big.jpg", quality=90)
    px = load_image(str(tmp_path / "big.jpg"), 32).pixels
    assert px.shape == (32, 32, 3) and close(tuple(int(c) for c in px[16, 16]), GREEN, tol=8)


def test_the_exif_date_is_when_the_picture_was_taken(tmp_path):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = "2021:07:04 15:30:00"  # DateTimeOriginal
    Image.new("RGB", (20, 20), RED).save(tmp_path / "dated.jpg", exif=exif)
    taken = load_image(str(tmp_path / "dated.jpg"), 16).taken_at
    assert taken == dt.datetime(2021, 7, 4, 15, 30, 0).timestamp()
    Image.new("RGB", (20, 20), RED).save(tmp_path / "undated.jpg")
    assert load_image(str(tmp_path / "undated.jpg"), 16).taken_at is None
    bad = Image.Exif()
    bad.get_ifd(0x8769)[36867] = "not a date"
    Image.new("RGB", (20, 20), RED).save(tmp_path / "baddate.jpg", exif=bad)
    assert load_image(str(tmp_path / "baddate.jpg"), 16).taken_at is None  # no date, no error


# -- the pixel cap ----------------------------------------------------------------------------
def png_claiming(w: int, h: int) -> bytes:
    """A tiny PNG whose header claims w×h pixels: decoding it would need gigabytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("w, h", [(15_000, 11_000), (40_000, 40_000)])  # 165 MP, 1.6 GP
def test_a_picture_over_the_pixel_cap_is_refused_before_decoding(tmp_path, w, h):
    assert w * h > MAX_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(w, h))
    assert path.stat().st_size < 200
    with pytest.raises(DecodeError, match="too large"):
        load_image(str(path), 32)
    pixels, taken, reason = decode_image_job(str(path), 32)
    assert pixels is None and taken is None and "too large" in reason
    assert "decompression bomb" in reason


# -- every failure is one reason, never an exception from the worker --------------------------
def test_unusable_files_each_give_one_clear_reason(tmp_path, monkeypatch):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("this is a note, not a picture\n")
    (tmp_path / "noise.png").write_bytes(bytes(range(256)) * 4)
    Image.new("RGB", (200, 200), RED).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    reasons = {name: decode_image_job(str(tmp_path / name), 16)[2]
               for name in ["empty.jpg", "text.jpg", "noise.png", "cut.jpg", "missing.jpg"]}
    assert reasons == {
        "empty.jpg": "empty file (0 bytes)",
        "text.jpg": "not an image: the file contains text",
        "noise.png": "not a recognised image format (corrupt or unsupported)",
        "cut.jpg": "truncated or corrupt image data",
        "missing.jpg": VANISHED,
    }
    assert is_transient(VANISHED) and is_transient(PERMISSION)
    assert not is_transient(reasons["cut.jpg"]) and not is_transient(None)

    def broken(path, size, *_):  # a decoder bug costs this file, with its name, not the run
        raise KeyError("boom")

    monkeypatch.setattr(decode, "load_image", broken)
    assert decode_image_job(str(tmp_path / "full.jpg"), 16) == (
        None, None, "decoder failed: KeyError: 'boom'")


# -- notes ------------------------------------------------------------------------------------
def test_notes_in_the_encodings_people_have(tmp_path):
    cases = {
        "utf8.txt": "café – naïve ☃".encode(),
        "bom.txt": b"\xef\xbb\xbf" + "with a BOM".encode(),
        "utf16.txt": "written by Notepad ✓".encode("utf-16"),
        "cp1252.txt": "smart “quotes” and café".encode("cp1252"),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    assert read_text(str(tmp_path / "utf8.txt")) == "café – naïve ☃"
    assert read_text(str(tmp_path / "bom.txt")) == "with a BOM"  # no stray U+FEFF
    assert read_text(str(tmp_path / "utf16.txt")) == "written by Notepad ✓"
    assert read_text(str(tmp_path / "cp1252.txt")) == "smart “quotes” and café"


@pytest.mark.parametrize("data, reason", [
    (b"", "empty note (no text)"),
    (b"  \n\t\n", "empty note (no text)"),
    (b"PK\x03\x04\x00\x00binary zip", "binary data, not text"),
    (bytes(range(1, 32)) * 20, "binary data, not text"),
])
def test_notes_that_are_not_text_say_so(tmp_path, data, reason):
    (tmp_path / "n.txt").write_bytes(data)
    with pytest.raises(DecodeError) as err:
        read_text(str(tmp_path / "n.txt"))
    assert str(err.value) == reason


def test_a_vanished_note_is_a_transient_reason(tmp_path):
    with pytest.raises(DecodeError) as err:
        read_text(str(tmp_path / "gone.md"))
    assert str(err.value) == VANISHED and is_transient(str(err.value))


def test_a_huge_note_is_read_up_to_the_cap_without_a_broken_character(tmp_path):
    body = b"a" * (MAX_TEXT_BYTES - 1) + "é and more".encode()  # é straddles the cap
    (tmp_path / "huge.txt").write_bytes(body)
    text = read_text(str(tmp_path / "huge.txt"))
    assert text == "a" * (MAX_TEXT_BYTES - 1)  # cut before the split character, not mojibake
