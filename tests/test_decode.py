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
    DECODE_BUDGET_BYTES,
    MAX_PIXELS,
    MAX_TEXT_BYTES,
    PERMISSION,
    VANISHED,
    DecodeError,
    decode_bytes_needed,
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


# -- memory: large pictures in strips, a budget per decode ------------------------------------
def noisy(mode: str, w: int, h: int, seed: int = 3) -> Image.Image:
    """Random pixels in `mode` (random so a misplaced strip or block would show)."""
    rng = np.random.default_rng(seed)

    def grey() -> Image.Image:
        return Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8))
    if mode in ("RGB", "RGBA", "LA", "CMYK"):
        return Image.merge(mode, [grey() for _ in mode])
    if mode == "P":
        im = grey().convert("P")
        im.putpalette(rng.integers(0, 256, 768).tolist())
        im.info["transparency"] = 7  # one palette entry see-through: composited over white
        return im
    if mode == "1":
        return grey().convert("1")
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    if mode == "I":
        return Image.fromarray(rng.integers(-5_000_000, 90_000_000, (h, w), dtype=np.int32))
    if mode == "F":
        return Image.fromarray(rng.normal(size=(h, w)).astype(np.float32))
    return grey()


STRIP_MODES = ["RGBA", "LA", "P", "I;16", "I", "F", "RGB", "L", "1", "CMYK"]


@pytest.mark.parametrize("mode", STRIP_MODES)
@pytest.mark.parametrize("orientation", [1, 3, 6, 7])
def test_strips_give_the_same_pixels_as_the_whole_picture(tmp_path, monkeypatch, mode,
                                                          orientation):
    """Above the strip threshold a picture is turned, converted and reduced strip by strip;
    the pixels (so the vectors) must be exactly those of the whole-image path that pictures
    under the threshold still take. Small pictures, with the threshold and strip size scaled
    down, sides that are no multiple of the reduction, and many strips."""
    monkeypatch.setattr(decode, "STRIP_PIXELS", 4000)
    ext = "tif" if mode in ("I", "F", "CMYK") else "png"
    path = tmp_path / f"noisy.{ext}"
    exif = Image.Exif()
    exif[0x0112] = orientation
    noisy(mode, 997, 611).save(path, exif=exif)
    strips = []
    real = decode._fit_square_in_strips
    monkeypatch.setattr(decode, "_fit_square_in_strips",
                        lambda *a: strips.append(a[1]) or real(*a))
    for size, interpolation in [(32, "bicubic"), (48, "bilinear")]:
        whole = load_image(str(path), size, interpolation).pixels
        assert strips == []  # 0.6 MP: the whole-image path, as before
        in_strips = load_image(str(path), size, interpolation, strip_above=0).pixels
        assert strips == [size]
        strips.clear()
        assert in_strips.shape == (size, size, 3)
        np.testing.assert_array_equal(in_strips, whole)


def test_strips_keep_the_upright_picture(tmp_path):
    """EXIF orientation in the strip path: the quadrants land where a viewer shows them."""
    stored = np.kron(quadrants(8, 4), np.ones((40, 40, 1), np.uint8))  # 320×160
    for orientation in sorted(SHOWN):
        path = tmp_path / f"q{orientation}.png"
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(stored).save(path, exif=exif)
        got = load_image(str(path), 32, strip_above=0).pixels
        want = centre_crop(SHOWN[orientation](quadrants()))
        for y, x in [(8, 8), (8, 24), (24, 8), (24, 24)]:
            assert np.abs(got[y, x].astype(int) - want[y, x]).max() <= 12, (orientation, y, x)


def semi_transparent_png(path: Path, side: int) -> Path:
    """The issue's picture, scaled down: semi-transparent RGBA that compresses very well."""
    im = Image.new("RGBA", (side, side), (200, 40, 40, 128))
    im.paste((20, 90, 220, 200), (side // 4, side // 4, side // 2, side - 1))
    im.save(path)
    return path


def test_the_budget_refuses_what_would_not_fit_and_decodes_what_does(tmp_path, monkeypatch):
    """The 12000² RGBA case at 1/100 of the pixels, strip and budget: the old
    whole-image path would need ~6x its decoded size and be over; in strips it fits, and the
    colours come out right. Below that budget it is refused, before decoding, with the
    figures in the reason."""
    side, budget = 1200, DECODE_BUDGET_BYTES // 100
    monkeypatch.setattr(decode, "STRIP_PIXELS", decode.STRIP_PIXELS // 100)
    path = semi_transparent_png(tmp_path / "big.png", side)
    assert path.stat().st_size < 30_000
    decoded = side * side * 4
    in_strips = decode_bytes_needed(side, side, "RGBA", 32, strip_above=0)
    whole = decode_bytes_needed(side, side, "RGBA", 32, strip_above=side * side)
    assert decoded < in_strips < budget < whole
    assert whole >= 5 * decoded  # the copies the whole-image path makes
    px = load_image(str(path), 32, budget_bytes=budget, strip_above=0).pixels
    assert close(tuple(int(c) for c in px[2, 2]), (227, 147, 147), tol=3)  # half red on white
    too_small = in_strips - 1
    with pytest.raises(DecodeError) as err:
        load_image(str(path), 32, budget_bytes=too_small, strip_above=0)
    mb = 1024 * 1024
    assert str(err.value) == (f"needs about {-(-in_strips // mb)} MB to decode, more than the "
                              f"{too_small // mb} MB budget of a decode worker")


def test_what_a_decode_needs_follows_the_mode():
    """Bytes per pixel as Pillow keeps them: 1 for L/P, 2 for 16-bit grey, 4 for RGB/RGBA."""
    n = 12_000 * 12_000  # the pictures: arithmetic only, nothing is allocated
    need = {m: decode_bytes_needed(12_000, 12_000, m, 224)
            for m in ("L", "I;16", "RGB", "RGBA")}
    assert need["L"] < need["I;16"] < need["RGB"] <= need["RGBA"]
    assert n <= need["L"] < 2 * n and 2 * n <= need["I;16"] < 3 * n
    assert 4 * n <= need["RGBA"] < 5 * n  # decoded once, plus strips and the small result
    # the largest picture the pixel cap lets through fits the default budget
    assert decode_bytes_needed(12_247, 12_247, "RGBA", 224) < DECODE_BUDGET_BYTES


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
