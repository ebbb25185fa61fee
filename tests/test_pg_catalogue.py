"""What only the PostgreSQL catalogue has: one writer, read-only searchers, the change journal,
parts of words through pg_trgm, and a server that goes away. Real throwaway clusters."""
from __future__ import annotations

import uuid

import numpy as np
import pytest
from pg_server import own_pg_server, pg_server  # noqa: F401 - fixtures

from indexer.catalogue import FileFilter, NewChunk
from indexer.errors import CatalogueUnavailable, ConfigError, LibraryError

FP = "0123456789abcdef"
DIM = 4


@pytest.fixture
def url(pg_server) -> str:  # noqa: F811
    return pg_server.url(f"t{uuid.uuid4().hex[:10]}")


def _open(url: str, **kw):
    from indexer.pg_catalogue import PgCatalogue

    return PgCatalogue(url, FP, **kw)


def _add(cat, root: int, path: str, body: str = "") -> tuple[int, list[int]]:
    fid = cat.upsert_pending(root, path, "text", 1, 1, path)
    ids, _ = cat.commit_embedded(
        [(fid, [NewChunk(0, "x", np.ones(DIM, np.float32) / 2)], None, body)], [])
    return fid, ids


def test_one_indexer_at_a_time_and_searchers_cannot_write(url):
    writer = _open(url)
    try:
        with pytest.raises(LibraryError, match="another indexer is writing"):
            _open(url)
        reader = _open(url, readonly=True)
        with pytest.raises(LibraryError, match="read-only"):
            reader.add_root("/x")
        import psycopg

        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):  # even by hand
            reader._read(lambda cur: cur.execute("INSERT INTO roots(path, added_at) "
                                                 "VALUES ('/y', 0)"))
        reader.close()
    finally:
        writer.close()
    _open(url).close()  # the lock went with the writer's session


def test_a_searcher_of_a_missing_catalogue_is_told_to_index_first(url):
    with pytest.raises(LibraryError, match="run `magpie index` first"):
        _open(url, readonly=True)


def test_urls_are_checked(pg_server):  # noqa: F811
    from indexer.pg_catalogue import parse_url

    with pytest.raises(ConfigError, match="PGPASSWORD"):
        parse_url("postgresql://u:secret@h:5432/db")
    with pytest.raises(ConfigError, match="schema"):
        parse_url("postgresql://u@h:5432/db?schema=bad;name")
    with pytest.raises(ConfigError, match="needs a host and a database"):
        parse_url("postgresql://u@h:5432")
    assert parse_url("postgresql://u@h/db?schema=lib&sslmode=require") == (
        "postgresql://u@h/db?sslmode=require", "lib", "h:5432")


def test_the_journal_lists_only_what_changed_since_a_point(url):
    cat = _open(url)
    try:
        root = cat.add_root("/lib")
        _a, ca = _add(cat, root, "/lib/a.txt")
        fb, cb = _add(cat, root, "/lib/b.txt")
        point = cat.journal_head()
        fc, cc = _add(cat, root, "/lib/c.txt")
        cat.delete_files([fb])  # a cascade: chunks go with their file
        _d, cd = _add(cat, root, "/lib/d.txt")
        new_a, old_a = cat.commit_embedded(  # re-embedding: old chunk out, new in
            [(_a, [NewChunk(0, "y", np.ones(DIM, np.float32) / 2)], None, "")], [])
        upto, added, gone = cat.changes_since(point)
        assert upto == cat.journal_head() > point
        assert sorted(added.tolist()) == sorted(cc + cd + new_a)
        assert sorted(gone.tolist()) == sorted(cb + old_a)
        assert cat.changes_since(upto)[1:] == (pytest.approx([]), pytest.approx([]))
        # paging: small limits walk the same changes
        seen_added, p = [], point
        while True:
            nxt, add, _g = cat.changes_since(p, limit=2)
            if nxt == p:
                break
            seen_added += add.tolist()
            p = nxt
        assert sorted(set(seen_added)) == sorted(cc + cd + new_a)
        cat.remove_root(root)
        assert sorted(cat.changes_since(upto)[2].tolist()) == sorted(ca[:0] + cc + cd + new_a)
        cat.prune_journal(upto)
        assert cat.changes_since(0)[1].size == 0
    finally:
        cat.close()


def test_parts_of_words_match_through_trigrams_after_whole_words(url):
    cat = _open(url)
    try:
        assert cat.trigram  # the Debian server ships pg_trgm
        root = cat.add_root("/lib")
        whole, _ = _add(cat, root, "/lib/harb.txt")
        part, _ = _add(cat, root, "/lib/red_harbour_boats.txt")
        _add(cat, root, "/lib/mountains.txt")
        rows = cat.keyword_search('"harb"', FileFilter(), 10)
        assert [r[0] for r in rows] == [whole, part]
        assert rows[0][1] > rows[1][1] > 0
        assert cat.keyword_search('"harb"', FileFilter(kinds=("image",)), 10) == []
        # all words: whole words only
        assert cat.keyword_search('"harb" AND "boats"', FileFilter(), 10) == []
    finally:
        cat.close()


def test_a_server_that_goes_away_gives_one_clear_message_and_comes_back(own_pg_server):  # noqa: F811
    url = own_pg_server.url("down")
    cat = _open(url)
    root = cat.add_root("/lib")
    _add(cat, root, "/lib/a.txt")
    reader = _open(url, readonly=True)
    own_pg_server.stop(kill=True)
    with pytest.raises(CatalogueUnavailable, match=r"cannot reach the catalogue's PostgreSQL "
                       r"server at 127\.0\.0\.1:\d+ .*start the server"):
        _add(cat, root, "/lib/b.txt")
    with pytest.raises(CatalogueUnavailable, match="start the server"):
        reader.counts()
    own_pg_server.start()
    assert reader.count_files(FileFilter()) == 1  # the pool reconnects by itself
    cat.close()
    reader.close()
    again = _open(url)
    assert again.count_files(FileFilter()) == 1
    again.close()
    with pytest.raises(CatalogueUnavailable, match="start the server"):
        own_pg_server.stop()
        _open(url)
