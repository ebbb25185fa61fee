"""Split notes into chunks that fit the text tower's window, measured in the model's tokens.

Breaks prefer paragraph, then sentence, then word boundaries, so a chunk is a readable unit
(and a good snippet). A single word longer than the window (a URL, a hash) is cut by tokens.
"""
from __future__ import annotations

import re
from collections.abc import Callable

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?…。！？])\s+|\n")


def chunk_text(text: str, count_tokens: Callable[[str], int], max_tokens: int) -> list[str]:
    """Greedy packing of paragraphs → sentences → words into chunks of ≤ max_tokens tokens."""
    pieces: list[str] = []
    for para in _PARAGRAPH.split(text):
        para = " ".join(para.split())  # collapse whitespace inside a paragraph
        if para:
            pieces.extend(_split_to_fit(para, count_tokens, max_tokens))
    return _pack(pieces, count_tokens, max_tokens)


def _split_to_fit(para: str, count: Callable[[str], int], limit: int) -> list[str]:
    if count(para) <= limit:
        return [para]
    out: list[str] = []
    sentences = [s for s in _SENTENCE.split(para) if s.strip()]
    if len(sentences) > 1:
        for s in sentences:
            out.extend(_split_to_fit(s.strip(), count, limit))
        return _pack(out, count, limit, sep=" ")
    words = para.split(" ")
    if len(words) > 1:
        for w in words:
            out.extend(_split_to_fit(w, count, limit) if count(w) > limit else [w])
        return _pack(out, count, limit, sep=" ")
    return _cut_word(para, count, limit)


def _cut_word(word: str, count: Callable[[str], int], limit: int) -> list[str]:
    """A single over-long token run: binary-search the longest prefix that fits."""
    out = []
    rest = word
    while rest:
        lo, hi = 1, len(rest)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count(rest[:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        out.append(rest[:lo])
        rest = rest[lo:]
    return out


def _pack(pieces: list[str], count: Callable[[str], int], limit: int, sep: str = "\n\n") -> list[str]:
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}{sep}{piece}" if current else piece
        if current and count(candidate) > limit:
            chunks.append(current)
            current = piece
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks
