"""Where each token of a text ends, from one pass of open_clip's SimpleTokenizer.

The chunker uses these offsets to read cut points off a single tokenization instead of
searching for them; it still checks every chunk with the exact token count, so an offset that
is a little off (the tokenizer's ftfy/HTML clean-up is skipped here) costs a smaller chunk,
never an overlong one. BPE is quadratic in the length of one "word", so words are cut into
pieces of at most MAX_WORD characters first (a 4 MB base64 line is one word).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_WORD = 64


def clip_token_ends(tok: Any) -> Callable[[str], list[int] | None] | None:
    """A function text -> end offset (in characters) of each token, or None when `tok` is not
    a SimpleTokenizer (HF tokenizers: the chunker then searches with counts alone)."""
    if not all(hasattr(tok, a) for a in ("bpe", "pat", "byte_encoder")):
        return None
    byte_encoder = tok.byte_encoder
    bpe = tok.bpe
    pat = tok.pat
    cache: dict[str, list[int]] = {}

    def word_ends(word: str) -> list[int]:
        """Token ends within one pre-token word (character offsets), cached: prose repeats."""
        found = cache.get(word)
        if found is not None:
            return found
        found = []
        for at in range(0, len(word), MAX_WORD):
            piece = word[at : at + MAX_WORD]
            raw = piece.encode("utf-8")
            ascii_only = len(raw) == len(piece)
            offset = 0  # in bytes within the piece
            for token in bpe("".join(byte_encoder[b] for b in raw)).split(" "):
                offset += len(token) - (4 if token.endswith("</w>") else 0)
                chars = offset if ascii_only else len(raw[:offset].decode("utf-8", "ignore"))
                found.append(at + chars)
        if len(cache) > 200_000:  # random text (base64) would otherwise grow it without end
            cache.clear()
        cache[word] = found
        return found

    def ends(text: str) -> list[int] | None:
        low = text.lower()
        if len(low) != len(text):  # a character whose lower case is longer: offsets would drift
            return None
        out: list[int] = []
        for m in pat.finditer(low):
            base = m.start()
            out.extend([base + e for e in word_ends(m.group())])
        return out

    return ends
