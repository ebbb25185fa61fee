"""How a query's words occur in the text read in a picture (OCR): the evidence search ranks by,
the line shown as the snippet, and where the words are (for the preview's marks).

The levels are those of names and notes (`Catalogue.keyword_evidence`), so a phrase read in a
picture counts like a phrase in a note:

  3  the words whole, one after another (a phrase; one word: found whole)
  2  all the words in one line or two adjacent ones, some only as part of a word ("hammer"
     in "Clawhammer") or nearly (one misread character in five): close, not exact
  1  all the words, but scattered over the picture
  0  only some of the words

The recogniser often drops the spaces between words ("Clawhammer12.99") and reads "42.50" as
"42,50", so matching works on each line folded (`ocr.fold`: case, accents, spaces, punctuation
and confusable characters ignored), and "whole" means the match starts and ends where the line
read has a space or punctuation, a change between letters and digits, or a small letter
followed by a capital. Query words are taken as typed ("42.50" stays one word); words under 3
characters are not looked for.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from indexer.ocr import fold, near_substring

PHRASE, CLOSE, SCATTERED, SOME = 3, 2, 1, 0
MIN_WORD = 3  # shorter words match too much of any receipt; 3 letters must match whole
PART_MIN = 4  # a word this long also counts inside a longer one
NEAR_MIN = 5  # a word this long also matches with one wrong, missing or extra character
NEAR_TWO = 9  # …and from this long with two
CLOSE_LINES = 2  # "close": all words within this many consecutive lines

WHOLE, LOOSE = 2, 1  # how one word matched at one place

Box = list[list[float]]  # four corners (x, y), fractions of the picture's width and height


def query_words(text: str, stopwords: frozenset[str] = frozenset()) -> list[str]:
    """The words to look for in read text: split on spaces as typed, folded, no stopwords,
    at least MIN_WORD characters, first occurrence kept."""
    out = []
    for raw in text.split():
        if raw.lower().strip(".,;:!?\"'()") in stopwords:
            continue
        w = fold(raw)
        if len(w) >= MIN_WORD:
            out.append(w)
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class _Line:
    raw: str
    folded: str
    index: list[int]  # raw position of each folded character

    @classmethod
    def of(cls, raw: str) -> _Line:
        chars, index = [], []
        for i, c in enumerate(raw):
            for fc in fold(c):
                chars.append(fc)
                index.append(i)
        return cls(raw, "".join(chars), index)

    def boundary(self, k: int) -> bool:
        """Does a word start or end before folded character k?"""
        if k <= 0 or k >= len(self.index):
            return True
        a, b = self.index[k - 1], self.index[k]
        if a == b:  # inside one character folded to several
            return False
        if b - a > 1:  # a space or punctuation between
            return True
        ra, rb = self.raw[a], self.raw[b]
        return ra.isdigit() != rb.isdigit() or (ra.islower() and rb.isupper())

    def span(self, k: int, n: int) -> tuple[int, int]:
        """Raw character span of folded characters k..k+n."""
        return self.index[k], self.index[k + n - 1] + 1


@dataclass(frozen=True)
class _Hit:
    word: int  # index into the query's words
    line: int
    start: int  # folded position in the line (-1: a misreading, somewhere in the line)
    strength: int  # WHOLE or LOOSE
    span: tuple[int, int] | None  # raw character span in the line, None: the whole line


@dataclass(frozen=True)
class TextEvidence:
    level: int  # PHRASE … SOME; -1 when no word occurs
    line: str  # the line to show as the snippet ("" when none)
    line_index: int  # its index, -1 when none


def _occurrences(line: _Line, word: str) -> list[tuple[int, int]]:
    """(start, WHOLE | LOOSE) of each exact occurrence of `word` in the folded line."""
    out = []
    k = line.folded.find(word)
    while k >= 0:
        whole = line.boundary(k) and line.boundary(k + len(word))
        if whole or len(word) >= PART_MIN:
            out.append((k, WHOLE if whole else LOOSE))
        k = line.folded.find(word, k + 1)
    return out


def _hits(lines: Sequence[_Line], words: Sequence[str]) -> list[_Hit]:
    """Every place a word occurs exactly (whole or as a part); then, for words found nowhere,
    misreadings (rare, and the costly part: an edit-distance table per line)."""
    hits = [_Hit(wi, li, k, strength, line.span(k, len(w)))
            for li, line in enumerate(lines) for wi, w in enumerate(words)
            for k, strength in _occurrences(line, w)]
    found = {h.word for h in hits}
    for wi, w in enumerate(words):
        if wi in found or len(w) < NEAR_MIN:
            continue
        allowed = 2 if len(w) >= NEAR_TWO else 1
        hits += [_Hit(wi, li, -1, LOOSE, None) for li, line in enumerate(lines)
                 if len(line.folded) >= len(w) - allowed
                 and near_substring(w, line.folded, allowed)]
    return hits


def _has_phrase(lines: Sequence[_Line], words: Sequence[str]) -> bool:
    """The words, in order, as one whole run of a line (spaces between them or not)."""
    run = "".join(words)
    return any(s == WHOLE for line in lines for _k, s in _occurrences(line, run))


def _close(hits: list[_Hit], n: int) -> bool:
    """All n words within CLOSE_LINES consecutive lines."""
    by_line: dict[int, set[int]] = {}
    for h in hits:
        by_line.setdefault(h.line, set()).add(h.word)
    for first in by_line:
        ws: set[int] = set()
        for li in range(first, first + CLOSE_LINES):
            ws |= by_line.get(li, set())
        if len(ws) == n:
            return True
    return False


def evidence(lines: Sequence[str], words: Sequence[str]) -> TextEvidence:
    """How `words` (folded, see `query_words`) occur in a picture's read `lines`."""
    words = list(words)
    if not words or not lines:
        return TextEvidence(-1, "", -1)
    folded = [_Line.of(t) for t in lines]
    hits = _hits(folded, words)
    if not hits:
        return TextEvidence(-1, "", -1)
    n = len(words)
    found = {h.word for h in hits}
    if len(found) == n and _has_phrase(folded, words):
        level = PHRASE
    elif len(found) == n and _close(hits, n):
        level = CLOSE
    elif len(found) == n:
        level = SCATTERED
    else:
        level = SOME
    # the snippet: the line holding the most words, whole matches first, earliest on ties
    per_line: dict[int, tuple[set[int], int]] = {}
    for h in hits:
        ws, strength = per_line.get(h.line, (set(), 0))
        ws.add(h.word)
        per_line[h.line] = (ws, strength + h.strength)
    best = max(per_line, key=lambda li: (len(per_line[li][0]), per_line[li][1], -li))
    return TextEvidence(level, lines[best], best)


def _lerp(a: Sequence[float], b: Sequence[float], t: float) -> list[float]:
    return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]


def word_box(box: Sequence[Sequence[float]], text: str, span: tuple[int, int] | None) -> Box:
    """The part of a line's box (four corners: top-left, top-right, bottom-right, bottom-left)
    that holds characters span[0]:span[1] of its text, by their share of the line's length
    (the recogniser gives no per-character positions; type is near enough to monospaced for
    a mark). None: the whole line."""
    corners = [list(map(float, p)) for p in box]
    if span is None or not text:
        return corners
    tl, tr, br, bl = corners
    t0, t1 = span[0] / len(text), span[1] / len(text)
    return [_lerp(tl, tr, t0), _lerp(tl, tr, t1), _lerp(bl, br, t1), _lerp(bl, br, t0)]


def marks(lines: Sequence[tuple[str, Sequence[Sequence[float]]]], words: Sequence[str]
          ) -> list[Box]:
    """Where the words are: one box per occurrence (the word's share of its line's box, or the
    whole line for a misreading). `lines`: (text, box) as read."""
    texts = [t for t, _ in lines]
    out: list[Box] = []
    seen: set[tuple[int, tuple[int, int] | None]] = set()
    for h in _hits([_Line.of(t) for t in texts], list(words)):
        key = (h.line, h.span)
        if key not in seen:
            seen.add(key)
            out.append(word_box(lines[h.line][1], texts[h.line], h.span))
    return out


def spans(line: str, words: Sequence[str]) -> list[tuple[int, int]]:
    """(start, end) of the query's words in a line read from a picture, sorted and not
    overlapping: what a card marks. Found as search finds them (folded, spaces the reader
    dropped or added ignored), exact occurrences only; `words` as typed or folded."""
    folded = [w for w in dict.fromkeys(fold(w) for w in words) if len(w) >= MIN_WORD]
    if not line or not folded:
        return []
    ln = _Line.of(line)
    found = sorted(ln.span(k, len(w)) for w in folded for k, _s in _occurrences(ln, w))
    out: list[tuple[int, int]] = []
    for a, b in found:
        if out and a < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
