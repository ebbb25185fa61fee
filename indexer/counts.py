"""How many items a search could show: the honest denominator of "60 of 1,234 shown".

Counting is a scan (about 0.2 s for a million files without a filter), so a count is kept per
read connection and filter until the database changes: SQLite's `data_version` moves
whenever another connection (the indexer's writer) commits, and costs nothing to read.
"""
from __future__ import annotations

import weakref

from indexer.catalogue import Catalogue, FileFilter, filter_sql

_cache: weakref.WeakKeyDictionary[Catalogue, dict[FileFilter, tuple[int, int]]] = \
    weakref.WeakKeyDictionary()


def data_version(catalogue: Catalogue) -> int:
    return int(catalogue.db.execute("PRAGMA data_version").fetchone()[0])


def count_matching(catalogue: Catalogue, flt: FileFilter) -> int:
    """Indexed files that the filter allows (all indexed files for an empty filter)."""
    version = data_version(catalogue)
    seen = _cache.setdefault(catalogue, {})
    hit = seen.get(flt)
    if hit is not None and hit[0] == version:
        return hit[1]
    where, args = filter_sql(flt)
    row = catalogue.db.execute(f"SELECT COUNT(*) FROM files f WHERE {where}", args).fetchone()
    if len(seen) > 64:  # date filters end at "now": each search is a new key
        seen.clear()
    seen[flt] = (version, int(row[0]))
    return int(row[0])
