"""A glance before the OCR first look: could this small grayscale picture hold text at all?

The OCR detector costs ~30 CPU ms on a 480 px copy of a photo, about a third of what embedding
the photo costs, so running it on every picture made indexing a folder of ordinary photos ~80%
slower. Text has a signature a few array operations see: runs of strong, thin strokes side by
side along a line (many rising edges of the gradient within a few pixels, over several rows).
Smooth photo grounds, sensor noise and the outlines of shapes do not have it; busy textures
(foliage, gravel, fences) may, and go on to the detector, which decides. This glance only
shuts out; it never decides that a picture holds text.

Checked both ways (text at 0/180 and at 90/270) and at two scales (small and large type).
Thresholds were chosen on bench/ocr_pregate.py's sets: every generated text picture and photo
with a sign the detector sees passes; the bench's ordinary photos are shut out.
"""
from __future__ import annotations

import numpy as np

# |Sobel| above this is a stroke edge: a step of ~20 grey levels (Sobel's gain is 4); sensor
# noise and soft photo grounds stay below it
EDGE = 80
# reading direction: stroke edges closer than this are joined into one candidate line
JOIN = 5
# a candidate line holds text when at least ROWS of its rows cross this many stroke edges
STROKES = 5
ROWS = 3
# at 1/4 scale (type 40 px and up) an edge counts only above this: there the soft texture of a
# photo's ground turns as sharp as strokes (15 of 200 ordinary photos passed at EDGE)
LARGE_EDGE = 160
# the cheap test before the candidate lines: STROKES rising edges within WINDOW pixels
WINDOW = 24


def _strokes(gray: np.ndarray, across: bool, edge: int = EDGE) -> np.ndarray:
    """1 where the gradient along the reading direction is a strong edge; the reading
    direction is made the array's x axis (a transpose for text turned 90 or 270 degrees)."""
    import cv2

    g = cv2.Sobel(gray, cv2.CV_16S, 0 if across else 1, 1 if across else 0, ksize=3)
    mask = (cv2.convertScaleAbs(g) > edge).astype(np.uint8)
    return np.ascontiguousarray(mask.T) if across else mask


def _has_line(mask: np.ndarray) -> bool:
    import cv2

    rising = np.zeros_like(mask)
    rising[:, 1:] = mask[:, 1:] > mask[:, :-1]
    # quick test: somewhere STROKES edges within WINDOW pixels, on ROWS of 5 rows
    dense = cv2.boxFilter(rising, cv2.CV_16U, (WINDOW, 1), normalize=False) >= STROKES
    if not np.any(cv2.boxFilter(dense.astype(np.uint8), cv2.CV_16U, (1, 5),
                                normalize=False) >= ROWS):
        return False
    # candidate lines: stroke edges joined along the line; a line of text is at least as long
    # as it is high and crosses many edges on several rows (a shape's outline crosses one or two)
    joined = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((1, JOIN), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=4)
    stats = stats[1:]
    keep = (stats[:, 2] >= 10) & (stats[:, 3] >= 3) & (stats[:, 2] >= stats[:, 3])
    for x, y, w, h, _area in stats[keep]:
        per_row = np.count_nonzero(rising[y:y + h, x + 1:x + w], axis=1)
        if np.count_nonzero(per_row >= STROKES) >= ROWS:
            return True
    return False


def looks_like_text(gray: np.ndarray) -> bool:
    """False when a grayscale picture (H, W) uint8 surely holds no text the detector would
    find; True when it might (then the detector looks)."""
    import cv2

    if gray.ndim == 3:
        gray = cv2.cvtColor(np.ascontiguousarray(gray), cv2.COLOR_RGB2GRAY)
    if min(gray.shape[:2]) < 8:
        return False
    # large type: its strokes are too far apart at full size, so also at 1/2 and 1/4 (the
    # smaller copies cost a quarter and a sixteenth as much)
    for edge in (EDGE, EDGE, LARGE_EDGE):
        if any(_has_line(_strokes(gray, across, edge)) for across in (False, True)):
            return True
        if min(gray.shape[:2]) < 64:
            return False
        gray = cv2.pyrDown(gray)
    return False
