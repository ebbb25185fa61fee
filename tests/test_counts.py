"""count_matching: what "60 of 1,234 shown" counts, kept until the database changes."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from indexer.catalogue import Catalogue, FileFilter, NewChunk
from indexer.counts import count_matching


def _add(cat: Catalogue, root: int, path: str, kind: str = "image") -> int:
    fid = cat.upsert_pending(root, path, kind, 1, 1, f"h-{path}")
    cat.commit_embedded([(fid, [NewChunk(0, None, np.ones(4, np.float32) / 2)], 0.0, None)], [])
    return fid


def test_counts_follow_the_filter_and_the_writer(tmp_path: Path):
    path = tmp_path / "catalogue.sqlite"
    writer = Catalogue(path)
    root = writer.add_root("/p")
    for name in ("a.jpg", "b.jpg", "sub/c.jpg"):
        _add(writer, root, f"/p/{name}")
    _add(writer, root, "/p/n.txt", "text")
    reader = Catalogue(path, readonly=True)
    counted: list[str] = []
    reader.db.set_trace_callback(lambda sql: counted.append(sql) if "COUNT" in sql else None)

    assert count_matching(reader, FileFilter()) == 4
    assert count_matching(reader, FileFilter(kinds=("text",))) == 1
    assert count_matching(reader, FileFilter(folders=("/p/sub",))) == 1
    assert len(counted) == 3
    # asked again with nothing written: answered without counting
    assert count_matching(reader, FileFilter()) == 4
    assert len(counted) == 3
    # the writer commits: the next answer is counted afresh
    _add(writer, root, "/p/d.jpg")
    assert count_matching(reader, FileFilter()) == 5
    assert len(counted) == 4
    # pending files are not counted
    writer.upsert_pending(root, "/p/e.jpg", "image", 1, 1, "h-e")
    assert count_matching(reader, FileFilter()) == 5
    reader.close()
    writer.close()
