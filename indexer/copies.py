"""Identical copies in a result list: files with the same content hash are one result.

The indexer already gives copies the same vectors (it reuses them by hash), so without this a
page would show the same picture three times in a row with the same score.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar


class HasHash(Protocol):
    content_hash: str | None


R = TypeVar("R")


def collapse_copies(results: Sequence[R], files: Mapping[int, HasHash], cutoff: int
                    ) -> tuple[list[R], dict[int, list[Any]], int]:
    """Keep the best-ranked file of each content hash; the others become its copies.

    `results` have `file_id` and `path`; `files` maps file ids to rows with `content_hash`
    (`Catalogue.files_by_ids`). Returns (kept results, {kept file id: [the copies' results]},
    the cutoff counted in kept results). A file without a hash is never merged."""
    kept: list[R] = []
    copies: dict[int, list[Any]] = {}
    first_by_hash: dict[str, int] = {}
    new_cutoff = 0
    for i, r in enumerate(results):
        fid = r.file_id  # type: ignore[attr-defined]
        row = files.get(fid)
        h = row.content_hash if row is not None else None
        owner = first_by_hash.get(h) if h else None
        if owner is not None:
            copies.setdefault(owner, []).append(r)
            continue
        if h:
            first_by_hash[h] = fid
        kept.append(r)
        if i < cutoff:
            new_cutoff += 1
    return kept, copies, new_cutoff

