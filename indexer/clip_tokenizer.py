"""CLIP's byte-level BPE tokenizer without torch.

open_clip's `SimpleTokenizer` is the reference (both pinned models use it with its default
"lower" cleaning), but `open_clip.tokenizer` imports torch (and `import open_clip` pulls in
torchvision and timm: seconds and most of a gigabyte) just to return a LongTensor. A query must
not pay that, so this is the same algorithm over the same vocabulary file, returning numpy.
tests/test_text_runtime.py proves the ids are identical on a varied set (unicode, HTML
entities, long texts truncated at the context window).
"""
from __future__ import annotations

import gzip
import html
import importlib.util
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

VOCAB_NAME = "bpe_simple_vocab_16e6.txt.gz"
_N_MERGES = 49152 - 256 - 2


def default_vocab_path() -> Path:
    """open_clip's own vocabulary file, found without importing open_clip (which imports torch)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("open_clip is not installed, so its BPE vocabulary is missing")
    return Path(list(spec.submodule_search_locations)[0]) / VOCAB_NAME


@lru_cache()
def _bytes_to_unicode() -> dict[int, str]:
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


_PLAIN = frozenset(map(chr, range(0x20, 0x7F))) | {"\t", "\n", "\r"}


def _needs_ftfy(text: str) -> bool:
    """ftfy only changes text with non-ASCII, control characters or HTML entities; plain
    printable ASCII (most queries) skips its 0.1 s import. \r only becomes \n there, and all
    whitespace is collapsed below either way."""
    return not (text.isascii() and "&" not in text and _PLAIN.issuperset(text))


def _clean(text: str) -> str:
    """open_clip's "lower" cleaning: ftfy, HTML unescape twice, collapse whitespace, lower."""
    if _needs_ftfy(text):
        import ftfy

        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return " ".join(text.split()).strip().lower()


class ClipTokenizer:
    """Same ids as `open_clip.tokenizer.SimpleTokenizer()` with the default "lower" cleaning."""

    def __init__(self, vocab_path: Path | None = None) -> None:
        import regex

        path = vocab_path or default_vocab_path()
        lines = gzip.open(path).read().decode("utf-8").split("\n")[1 : _N_MERGES + 1]
        merges = [tuple(line.split()) for line in lines]
        byte_chars = list(_bytes_to_unicode().values())
        vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges]
        specials = ["<start_of_text>", "<end_of_text>"]
        vocab += specials
        self.encoder = {tok: i for i, tok in enumerate(vocab)}
        self.bpe_ranks = {m: i for i, m in enumerate(merges)}
        self.sot_token_id = self.encoder[specials[0]]
        self.eot_token_id = self.encoder[specials[1]]
        self._byte_encoder = _bytes_to_unicode()
        self._cache: dict[str, str] = {t: t for t in specials}
        self._lock = threading.Lock()
        self._pat = regex.compile(
            "|".join(specials) + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE,
        )

    def _bpe(self, token: str) -> str:
        hit = self._cache.get(token)
        if hit is not None:
            return hit
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        inf = float("inf")
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            first, second = min(pairs, key=lambda p: self.bpe_ranks.get(p, inf))
            if (first, second) not in self.bpe_ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        out = " ".join(word)
        with self._lock:
            self._cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        """BPE ids of `text`, without start/end tokens and without truncation."""
        ids: list[int] = []
        enc = self._byte_encoder
        for token in self._pat.findall(_clean(text)):
            token = "".join(enc[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(token).split(" "))
        return ids

    def __call__(self, texts: str | list[str], context_length: int = 77) -> np.ndarray:
        """int64 [N, context_length]: start, ids, end, zero padding; too long -> cut, end kept."""
        if isinstance(texts, str):
            texts = [texts]
        out = np.zeros((len(texts), context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot_token_id, *self.encode(text), self.eot_token_id]
            if len(ids) > context_length:
                ids = ids[:context_length]
                ids[-1] = self.eot_token_id
            out[row, : len(ids)] = ids
        return out


_shared: ClipTokenizer | None = None
_shared_lock = threading.Lock()


def shared_tokenizer() -> ClipTokenizer:
    """One tokenizer per process: building it reads the 49k merges (~0.1 s)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ClipTokenizer()
        return _shared
