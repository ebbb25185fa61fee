"""Where a page of results splits into those that stand out and the "Other results".

One rule for every front end (the window's grid, `magpie search`, its `--json`), so the
divider is drawn in the same place everywhere. No numpy and no Qt: the window imports it at
start-up without pulling in the search core.
"""
from __future__ import annotations

OTHER_RESULTS = "Other results"
NO_STRONG_MATCHES = "No strong matches"


def divider_at(cutoff: int, shown: int) -> int | None:
    """The position of the "Other results" divider among the first `shown` results of a page
    whose first `cutoff` stand out: before the first shown result that does not stand out
    (0 when none does: "No strong matches", then the closest items), or None when every
    shown result stands out (nothing to separate)."""
    cutoff = max(0, cutoff)
    return cutoff if cutoff < shown else None


def divider_title(cutoff: int) -> str:
    """What the divider says: no result standing out is said plainly, not implied."""
    return f"{NO_STRONG_MATCHES} · the closest items" if cutoff <= 0 else OTHER_RESULTS


def divider_detail(cutoff: int) -> str:
    """The divider's explanation (tooltip, screen readers)."""
    if cutoff <= 0:
        return ("Nothing stands out for this query: these are only the closest items, each "
                "scoring near a typical item of your library.")
    return ("Below the relevance cutoff: these score close to a typical item of your library "
            "for this query.")
