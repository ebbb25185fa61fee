"""What a person is told about their own query: which words of a result matched it (spans to
highlight) and whether the model read all of it (CLIP reads 77 tokens; the rest is cut).

Qt-free: the GUI paints the spans, the CLI could print them.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Protocol

from indexer.query import QueryError, Term, keyword_text, parse_query

_QUOTED = re.compile(r'"([^"]+)"')


class TokenCounter(Protocol):
    max_text_tokens: int

    def token_count(self, text: str) -> int: ...


def _terms(query: str) -> list[Term]:
    try:
        return parse_query(query) if query.strip() else []
    except QueryError:
        return []


def matched_words(query: str) -> list[str]:
    """The words the keyword search looks for in names and notes (no stopwords, no negated
    terms), lowercased, in query order. A query that does not parse has none."""
    from indexer.search import keyword_query  # the same words the keyword ranking uses

    q = keyword_query(keyword_text(_terms(query)))
    return _QUOTED.findall(q) if q else []


def highlight_spans(text: str, words: Iterable[str]) -> list[tuple[int, int]]:
    """(start, end) of each whole-word, case-insensitive occurrence of `words` in `text`,
    sorted and non-overlapping: what the full-text index matched (it has no stemming)."""
    alts = sorted({w for w in words if w}, key=len, reverse=True)
    if not alts or not text:
        return []
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, alts)) + r")(?!\w)",
                         re.IGNORECASE)
    return [m.span() for m in pattern.finditer(text)]


def cut_terms(query: str, encoder: TokenCounter) -> list[str]:
    """The text terms of `query` longer than the model's window: it reads only their start.
    Each term is encoded on its own, so each is measured on its own."""
    limit = int(encoder.max_text_tokens)
    return [t.text for t in _terms(query)
            if t.text is not None and encoder.token_count(t.text) > limit]


def collapse_spaces(text: str) -> str:
    """Runs of whitespace as one space: how a note card shows its snippet (spans must be
    computed on the text as shown)."""
    return " ".join(text.split())


__all__: Sequence[str] = ["collapse_spaces", "cut_terms", "highlight_spans", "matched_words"]
