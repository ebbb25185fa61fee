"""Split notes into chunks that fit the text tower's window, measured in the model's tokens.

Breaks prefer paragraph, then sentence, then word boundaries, so a chunk is a readable unit
(and a good snippet). A single word longer than the window (a URL, a hash) is cut by tokens.

Cost is linear in the note's length: each chunk is found by galloping from the size of the
previous one (a handful of token counts over about one chunk's text each), and nothing longer
than `probe_limit` characters is ever handed to the tokenizer (a 4 MB line without spaces used
to be re-tokenized prefix by prefix; CLIP's BPE is also quadratic in the length of one "word").
When the model can say where its tokens end (`token_ends`), cut points are read off one
tokenization instead of searched; every chunk is still checked with `count_tokens`, so the
window is never exceeded whichever path found it.
"""
from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?…。！？])\s+|\n")

Count = Callable[[str], int]
TokenEnds = Callable[[str], "Sequence[int] | None"]

#: the longest text handed to the tokenizer is this many times the token limit (in characters);
#: anything longer is assumed not to fit and is split first. CLIP's longest token is 32 chars.
PROBE_CHARS_PER_TOKEN = 40


def chunk_text(
    text: str,
    count_tokens: Count,
    max_tokens: int,
    *,
    token_ends: TokenEnds | None = None,
    check: Callable[[], None] | None = None,
) -> list[str]:
    """Greedy packing of paragraphs → sentences → words → characters into chunks of
    ≤ max_tokens tokens. `check` is called every few chunks (cancel, pause, a time budget: it
    may raise); `token_ends` is an optional fast path (see the module docstring)."""
    chunker = _Chunker(count_tokens, max_tokens, token_ends, check)
    paragraphs = (" ".join(p.split()) for p in _PARAGRAPH.split(text))
    return chunker.pack([p for p in paragraphs if p], "\n\n", chunker.split_paragraph)


class _Chunker:
    def __init__(
        self, count: Count, limit: int, token_ends: TokenEnds | None,
        check: Callable[[], None] | None,
    ) -> None:
        self.count = count
        self.limit = limit
        self.token_ends = token_ends
        self.check = check or (lambda: None)
        self.probe_limit = max(1, limit) * PROBE_CHARS_PER_TOKEN
        self._probes = 0

    # -- the one measurement ------------------------------------------------------------------
    def fits(self, text: str) -> bool:
        if len(text) > self.probe_limit:
            return False
        self._probes += 1
        if self._probes % 64 == 0:
            self.check()
        return self.count(text) <= self.limit

    # -- levels -------------------------------------------------------------------------------
    def split_paragraph(self, para: str) -> list[str]:
        sentences = [s.strip() for s in _SENTENCE.split(para) if s.strip()]
        if len(sentences) > 1:
            return self.pack(sentences, " ", self.split_sentence)
        return self.split_sentence(para)

    def split_sentence(self, sentence: str) -> list[str]:
        words = [w for w in sentence.split(" ") if w]
        if len(words) > 1:
            return self.pack(words, " ", self.cut_word)
        return self.cut_word(sentence)

    def pack(self, units: list[str], sep: str, split: Callable[[str], list[str]]) -> list[str]:
        """Join runs of units with `sep` into the longest chunks that fit; a unit too long on
        its own is split by the next level down, its last piece packed on with what follows."""
        out: list[str] = []
        cum = self._unit_token_ends(units, sep)
        before = 0  # estimated tokens before units[i] (fast path only)
        i, n, guess = 0, len(units), 1
        while i < n:
            def fits_k(k: int, i: int = i) -> bool:
                return self.fits(sep.join(units[i : i + k]))

            k = -1
            if cum is not None:  # read the cut off the tokenization; only check it
                est = bisect.bisect_right(cum, before + self.limit, lo=i) - i
                if est == 0 and cum[i] - before > self.limit + self.limit // 8:
                    k = 0  # clearly too long alone: split it without asking the tokenizer
                else:
                    est = max(1, est)
                    k = est if fits_k(est) else _longest(est - 1, fits_k, est - 1)
            else:
                k = _longest(n - i, fits_k, guess)
            if k == 0:  # units[i] alone is too long
                pieces = split(units[i])
                out.extend(pieces[:-1])
                units[i] = pieces[-1]
                if cum is not None:
                    before = cum[i] - self._tokens(pieces[-1])
                continue
            out.append(sep.join(units[i : i + k]))
            i += k
            guess = k
            if cum is not None:
                before = cum[i - 1]
            if len(out) % 16 == 0:
                self.check()
        return out

    def cut_word(self, word: str) -> list[str]:
        """A run with no spaces: cut into the longest prefixes that fit."""
        out: list[str] = []
        ends = self._ends_of(word)
        start, guess = 0, max(1, self.limit)
        while start < len(word):
            def fits_m(m: int, start: int = start) -> bool:
                return self.fits(word[start : start + m])

            size, cap = -1, len(word) - start
            if ends is not None:  # read the cut off the tokenization; only check it
                first = bisect.bisect_right(ends, start)
                last = min(first + self.limit, len(ends)) - 1
                for j in range(last, max(first, last - 3) - 1, -1):  # else step back a token
                    est = min(ends[j] - start, cap)
                    if est < 1:
                        break
                    if fits_m(est):
                        size = est
                        break
                    cap = guess = est - 1
            if size < 0:
                size = _longest(cap, fits_m, guess)
            size = max(size, 1)  # one character that alone exceeds the window: keep going
            out.append(word[start : start + size])
            start += size
            guess = size
            if len(out) % 16 == 0:
                self.check()
        return out

    # -- the fast path ------------------------------------------------------------------------
    def _ends_of(self, text: str) -> Sequence[int] | None:
        if self.token_ends is None:
            return None
        return self.token_ends(text)

    def _unit_token_ends(self, units: list[str], sep: str) -> list[int] | None:
        """Estimated tokens up to each unit's end (None without the fast path). Units are
        tokenized one by one: the separators are whitespace, which no CLIP token spans."""
        if self.token_ends is None or len(units) < 2:
            return None
        cum: list[int] = []
        total = 0
        for u in units:
            ends = self.token_ends(u)
            if ends is None:
                return None
            total += len(ends)
            cum.append(total)
        return cum

    def _tokens(self, text: str) -> int:
        ends = self._ends_of(text)
        return len(ends) if ends is not None else self.count(text)


def _longest(n: int, fits: Callable[[int], bool], guess: int) -> int:
    """The largest k in [0, n] with fits(k), fits being monotone (fits(0) is taken as true).

    Gallops from `guess` (the previous chunk's size), so a chunk costs a few probes of about
    its own length rather than a binary search over everything that is left."""
    if n <= 0:
        return 0
    guess = min(max(guess, 1), n)
    if fits(guess):
        lo, hi, step = guess, n + 1, 1
        while lo < n:
            nxt = min(lo + step, n)
            if not fits(nxt):
                hi = nxt
                break
            lo, step = nxt, step * 2
        if lo == n:
            return n
    else:
        lo, hi, step = 0, guess, 1
        while hi > 1:
            nxt = max(hi - step, 1)
            if fits(nxt):
                lo = nxt
                break
            hi, step = nxt, step * 2
    while hi - lo > 1:  # lo fits, hi does not
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo
