"""How many items a search could show: the honest denominator of "60 of 1,234 shown"."""
from __future__ import annotations

from indexer.catalogue import Catalogue, FileFilter, filter_sql


def count_matching(catalogue: Catalogue, flt: FileFilter) -> int:
    """Indexed files that the filter allows (all indexed files for an empty filter)."""
    where, args = filter_sql(flt)
    row = catalogue.db.execute(f"SELECT COUNT(*) FROM files f WHERE {where}", args).fetchone()
    return int(row[0])
