"""Query arithmetic: "red + circle - square", "beach:2 + sunset", image paths as terms.

Operators are a `+` or `-` standing alone between terms (so "t-shirt" stays one word); a
weight is a `:number` suffix after a non-digit (so a time, "10:30", stays text); a term that
names an existing image file (absolute, ~, ./, or quoted) is an image term. Errors raise
QueryError with a message meant for the user.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from indexer.errors import MagpieError
from indexer.scan import classify

_OPERATOR = re.compile(r'(?:^|\s)([+-])(?=\s|$|[^\s\d+-])')
_WEIGHT = re.compile(r"^(?P<body>.*?\D):(?P<w>[+-]?\d+(?:\.\d+)?)$", re.S)


class QueryError(MagpieError, ValueError):
    pass


@dataclass(frozen=True)
class Term:
    weight: float  # negative for "- term"
    text: str | None = None
    image: str | None = None

    @property
    def positive(self) -> bool:
        return self.weight > 0


def _looks_like_path(s: str) -> bool:
    return s.startswith(("/", "~", "./", "../")) or (
        classify(s) == "image" and (os.sep in s)
    )


def _split(query: str) -> list[tuple[str, str]]:
    """[(sign, raw term)] honouring double quotes around terms that contain operators."""
    parts: list[tuple[str, str]] = []
    sign = "+"
    buf = ""
    i = 0
    in_quote = False
    while i < len(query):
        ch = query[i]
        if ch == '"':
            in_quote = not in_quote
            buf += ch
            i += 1
            continue
        if not in_quote:
            m = _OPERATOR.match(query, i) if (i == 0 or query[i].isspace()) else None
            if m:
                parts.append((sign, buf))
                sign = m.group(1)
                buf = ""
                i = m.end()
                continue
        buf += ch
        i += 1
    if in_quote:
        raise QueryError("unbalanced quote in the query")
    parts.append((sign, buf))
    if parts and parts[0] == ("+", "") and len(parts) > 1:
        parts = parts[1:]  # a leading operator: "-square + red" or "+red"
    return parts


def parse_query(query: str) -> list[Term]:
    """Parse a query into weighted terms; a plain query is one text term of weight 1."""
    query = query.strip()
    if not query:
        raise QueryError("the query is empty")
    terms: list[Term] = []
    for sign, raw in _split(query):
        raw = raw.strip()
        if not raw:
            raise QueryError(f"missing a term around '{sign}' in: {query}")
        weight = 1.0
        m = _WEIGHT.match(raw)
        if m and m.group("body").strip():
            raw, weight = m.group("body").strip(), float(m.group("w"))
            if weight == 0:
                raise QueryError(f"weight 0 for '{raw}' has no effect; remove the term")
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = raw[1:-1].strip()
            if not raw:
                raise QueryError("empty quoted term")
        if sign == "-":
            weight = -weight
        if _looks_like_path(raw):
            path = os.path.abspath(os.path.expanduser(raw))
            if not os.path.isfile(path):
                raise QueryError(f"no such image: {raw}")
            if classify(path) != "image":
                raise QueryError(f"not an image file: {raw}")
            terms.append(Term(weight, image=path))
        else:
            terms.append(Term(weight, text=raw))
    if not any(t.positive for t in terms):
        raise QueryError("a query needs at least one positive term (e.g. 'beach - people')")
    return terms


def keyword_text(terms: list[Term]) -> str:
    """The words of the positive text terms: what keyword search should look for."""
    return " ".join(t.text for t in terms if t.text and t.positive)
