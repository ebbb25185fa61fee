"""Pictures with known words in them: receipts, screenshots, signs and slides drawn with real
fonts, for measuring OCR word recall (bench/ocr_recall.py) and for the OCR tests.

Every picture is drawn at a stated type size (pixels per em) and can be turned by a quarter,
blurred and given noise; `words` is what a reader should find.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = ("/usr/share/fonts/truetype", "/usr/share/fonts/TTF", "/usr/local/share/fonts")
# Regular faces from Debian's font packages (fonts-dejavu-core, fonts-liberation,
# fonts-freefont-ttf); those missing here are skipped. "pillow" is Pillow's bundled font.
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf",
    "LiberationSans-Regular.ttf", "LiberationSerif-Regular.ttf", "LiberationMono-Regular.ttf",
    "FreeSans.ttf", "FreeSerif.ttf", "FreeMono.ttf",
)
KINDS = ("receipt", "screenshot", "sign", "slide")

_ITEMS = ("hammer", "screws", "nails", "pliers", "wrench", "sandpaper", "paint", "brush",
          "ladder", "drill", "gloves", "tape", "hinges", "bolts", "washers", "chisel")
_SHOPS = ("HARDWARE STORE", "GARDEN CENTRE", "CORNER MARKET", "CITY PHARMACY")
_ERRORS = ("Connection refused", "Permission denied", "Disk quota exceeded",
           "Invalid certificate", "Timeout while reading", "File not found")
_UI = ("Settings", "Network", "Display", "Storage", "Updates", "Accounts", "Privacy")
_SIGNS = ("EXIT", "PARKING", "NO ENTRY", "STATION ROAD", "OPEN DAILY", "PLATFORM 4",
          "KEEP LEFT", "MARKET STREET")
_SLIDES = ("Quarterly results", "Revenue grew strongly", "Next steps", "Customer feedback",
           "Launch timeline", "Budget review", "Team goals")
_PLATES = ("RE16 TGK", "AB12 CDE", "KX70 LMP", "WN19 RTY")


def find_fonts() -> dict[str, str | None]:
    """name -> font file (None: Pillow's bundled font); only those installed here."""
    out: dict[str, str | None] = {}
    for name in FONT_FILES:
        for base in FONT_DIRS:
            hits = sorted(Path(base).rglob(name)) if Path(base).is_dir() else []
            if hits:
                out[name.rsplit(".", 1)[0]] = str(hits[0])
                break
    out["pillow"] = None
    return out


def load_font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size)


@dataclass(frozen=True)
class TextPicture:
    image: Image.Image
    lines: tuple[str, ...]  # the text drawn, line by line

    @property
    def words(self) -> list[str]:
        """Words a reader should find: tokens with 3+ letters or digits."""
        out = []
        for line in self.lines:
            for tok in line.split():
                if sum(c.isalnum() for c in tok) >= 3:
                    out.append(tok)
        return out


def _content(kind: str, rng: random.Random) -> tuple[list[str], list[bool]]:
    """Lines and which of them are headings (drawn larger)."""
    if kind == "receipt":
        lines = [rng.choice(_SHOPS)]
        total = 0.0
        for item in rng.sample(_ITEMS, 5):
            price = rng.randint(100, 4999) / 100
            total += price
            lines.append(f"{item.capitalize()} x{rng.randint(1, 9)}  {price:.2f}")
        lines.append(f"TOTAL  {total:.2f}")
        lines.append(f"Card {rng.randint(1000, 9999)} ref {rng.choice(_PLATES)}")
        return lines, [True] + [False] * (len(lines) - 1)
    if kind == "screenshot":
        lines = [f"{rng.choice(_UI)} - Control Panel",
                 f"Error {rng.randint(100, 999)}: {rng.choice(_ERRORS)}",
                 f"Server backup{rng.randint(1, 9)}.example.org port {rng.randint(1024, 9999)}",
                 f"{rng.choice(_UI)}  {rng.choice(_UI)}  {rng.choice(_UI)}",
                 f"Retry in {rng.randint(2, 60)} seconds"]
        return lines, [True, False, False, False, False]
    if kind == "sign":
        lines = rng.sample(_SIGNS, 2) + [rng.choice(_PLATES)]
        return lines, [True, True, True]
    lines = [rng.choice(_SLIDES)] + [f"- {s}" for s in rng.sample(_SLIDES, 3)]
    return lines, [True] + [False] * 3


def draw(kind: str, font: str | None, size: int, *, rotation: int = 0, seed: int = 0,
         dark: bool | None = None, noise: float = 6.0, blur: float = 0.6) -> TextPicture:
    """One picture of `kind` with body text `size` px high (headings 1.5x); `rotation` in
    degrees counter-clockwise (0/90/180/270); dark = light text on a dark ground."""
    rng = random.Random(f"{kind}-{font}-{size}-{seed}")
    lines, heads = _content(kind, rng)
    if dark is None:
        dark = kind == "sign" or rng.random() < 0.3
    fonts = {False: load_font(font, size), True: load_font(font, int(size * 1.5))}
    pad = max(12, size)
    boxes = [ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), ln, font=fonts[h])
             for ln, h in zip(lines, heads)]
    width = int(max(b[2] for b in boxes)) + 2 * pad
    height = sum(int((b[3] - b[1]) * 1.6) + 4 for b in boxes) + 2 * pad
    palettes_dark = [((20, 30, 40), (235, 235, 235)), ((0, 90, 50), (255, 255, 255)),
                     ((20, 40, 120), (255, 255, 210))]
    palettes_light = [((250, 250, 245), (20, 20, 20)), ((236, 240, 244), (30, 30, 60)),
                      ((255, 250, 230), (60, 40, 20))]
    ground, ink = rng.choice(palettes_dark if dark else palettes_light)
    im = Image.new("RGB", (width, height), ground)
    d = ImageDraw.Draw(im)
    y = pad
    for ln, h, b in zip(lines, heads, boxes):
        d.text((pad, y - b[1]), ln, font=fonts[h], fill=ink)
        y += int((b[3] - b[1]) * 1.6) + 4
    if blur:
        im = im.filter(ImageFilter.GaussianBlur(blur))
    if noise:
        arr = np.asarray(im, dtype=np.float32)
        arr += np.random.default_rng(rng.randint(0, 2**31)).normal(0, noise, arr.shape)
        im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rotation:
        im = im.rotate(rotation, expand=True)
    return TextPicture(im, tuple(lines))


def word_found(word: str, read_lines: list[str]) -> bool:
    """Would a search for `word` find this picture? The word, folded like the search folds
    it (indexer.ocr.fold), inside one line read from the picture."""
    from indexer.ocr import fold

    w = fold(word)
    return any(w in fold(line) for line in read_lines)


def word_exact(word: str, read_lines: list[str]) -> bool:
    """Stricter: the word appears as a whole, space-separated word, exactly as drawn."""
    return any(word in line.split() for line in read_lines)


def draw_lines(lines: list[str], font: str | None, size: int, *, rotation: int = 0,
               dark: bool = False, noise: float = 4.0, blur: float = 0.5) -> TextPicture:
    """Given lines of text, drawn plainly (the tests' pictures): ink on paper, or light on
    dark; turned `rotation` degrees counter-clockwise."""
    f = load_font(font, size)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    boxes = [probe.textbbox((0, 0), ln, font=f) for ln in lines]
    pad = max(12, size)
    step = int(size * 1.7)
    im = Image.new("RGB", (int(max(b[2] for b in boxes) + 2 * pad), step * len(lines) + 2 * pad),
                   (25, 30, 40) if dark else (250, 250, 245))
    d = ImageDraw.Draw(im)
    for i, ln in enumerate(lines):
        d.text((pad, pad + i * step), ln, font=f, fill=(240, 240, 240) if dark else (20, 20, 20))
    if blur:
        im = im.filter(ImageFilter.GaussianBlur(blur))
    if noise:
        arr = np.asarray(im, dtype=np.float32)
        arr += np.random.default_rng(0).normal(0, noise, arr.shape)
        im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rotation:
        im = im.rotate(rotation, expand=True)
    return TextPicture(im, tuple(lines))
