"""One search, from the window's state to what the window shows: runs on the search thread,
no Qt. Adds to the core's ranked page (identical copies are already folded there) what a
person needs to read it: how many items the library holds for these filters, and whether the
model read the whole query.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.search_state import SearchState


@dataclass(frozen=True)
class Copy:
    """Another file with the same content as a result (the core folds copies into one)."""

    path: str


@dataclass(frozen=True)
class Page:
    """What the window shows for one search (adapts the core's SearchPage)."""

    results: list
    cutoff: int  # results[:cutoff] stand out
    elapsed_ms: float
    copies: dict[int, list] = field(default_factory=dict)  # file id -> its identical copies
    total: int = 0  # items the library holds for these filters
    fetched: int = 0  # results the core returned (before copies were folded)
    cut_terms: tuple[str, ...] = ()  # query terms longer than the model's window
    window_tokens: int = 77  # that window, start and end tokens included
    core: Any = None  # the core's SearchPage, for anything else it reports
    # file id -> where the query's words were read in that picture (the preview marks them)
    text_marks: dict[int, list] = field(default_factory=dict)


def run_search(searcher: Any, state: SearchState, flt: Any, sort: str) -> Page:
    """Runs on the search thread: the state as the core's SearchRequest, then the extras."""
    from indexer.counts import count_matching
    from indexer.query_feedback import cut_terms

    page = searcher.run(state.request(flt, sort))
    results = list(page.results)
    reader = searcher.library.reader()
    copies = {r.file_id: [Copy(path) for path in r.copy_paths] for r in results if r.copy_paths}
    cut = tuple(cut_terms(state.text, searcher.encoder)) if state.text.strip() else ()
    window = window_tokens(searcher.encoder)
    fetched = sum(r.copies for r in results)
    marks = searcher.text_marks([r.file_id for r in results if r.text_level >= 0],
                                page.text_words)
    return Page(results, int(page.cutoff), float(page.elapsed_ms), copies,
                count_matching(reader, flt), fetched, cut, window, page, marks)


def window_tokens(encoder: Any) -> int:
    """The model's token window, special tokens included (CLIP 77, SigLIP i18n 64)."""
    spec = getattr(encoder, "spec", None)
    if spec is not None:
        return int(spec.context_length)
    return int(getattr(encoder, "max_text_tokens", 75)) + 2


def summary_text(visible: int, standout: int, total: int, elapsed_ms: float) -> str:
    """The line above the grid: how many stand out, how many are shown out of how many the
    library holds (never a silent cap), and the time taken."""
    parts = []
    if 0 < standout < max(visible, total):
        parts.append(f"{standout:,} stand{'s' * (standout == 1)} out")
    elif standout == 0 and visible:
        parts.append("No strong matches: the closest items")  # an honest "nothing matches"
    parts.append(f"{visible:,} of {total:,} shown" if total > visible else f"{visible:,} shown")
    parts.append(f"{elapsed_ms:.0f} ms")
    return "  ·  ".join(parts)


def cut_notice(terms: tuple[str, ...], window_tokens: int = 77) -> str:
    """What to say when the model read only the start of the query."""
    if not terms:
        return ""
    return (f"The model reads the first {window_tokens} tokens of a query: the end of yours "
            "was left out. Shorter descriptions work best.")
