"""Ranking rules across pictures and notes (issue 13): evidence decides, not list positions."""
from __future__ import annotations

from pathlib import Path

import pytest

from indexer.indexing import Indexer
from indexer.library import Library
from indexer.search import SearchRequest, Searcher, highlight_spans
from indexer.specs import TINY_SHAPES


@pytest.fixture(scope="module")
def demo(shapes_folder, tiny_encoder, tmp_path_factory):
    folder, items = shapes_folder
    library = Library.open(tmp_path_factory.mktemp("relevance") / "lib", TINY_SHAPES)
    Indexer(library, tiny_encoder, workers=0).run([folder])
    yield Searcher(library, tiny_encoder), items
    library.close()


def test_a_note_with_the_words_scattered_ranks_below_matching_pictures(demo):
    s, items = demo
    page = s.run(SearchRequest("a white triangle", k=30))
    names = [Path(r.path).name for r in page.results]
    note = names.index("hardware store.md")  # "blue triangle sign ... Buy white paint"
    assert page.results[note].keyword_level == 1 and not page.results[note].stands_out
    whites = {str(i.path) for i in items if (i.color, i.shape) == ("white", "triangle")}
    first_match = min(k for k, r in enumerate(page.results) if r.open_path in whites)
    assert first_match < note


def test_a_phrase_in_a_note_stands_out(demo):
    s, _ = demo
    page = s.run(SearchRequest("blue triangle", k=30))
    hit = next(r for r in page.results if r.path.endswith("hardware store.md"))
    assert hit.keyword_level == 3 and hit.stands_out and hit.relevance >= 0.8
    assert "triangle" in hit.matched_terms
    assert page.query_words == ("blue", "triangle")


def test_relevance_is_in_range_monotone_and_marks_the_standouts(demo):
    s, _ = demo
    page = s.run(SearchRequest("a red circle", k=40, mode="vector"))
    rel = [r.relevance for r in page.results]
    assert all(0.0 <= x <= 1.0 for x in rel)
    by_z = sorted(page.results, key=lambda r: -r.z)
    assert [r.relevance for r in by_z] == sorted(rel, reverse=True)  # monotone in z
    assert all(r.stands_out == (r.relevance >= 0.5) for r in page.results)
    assert page.cutoff == sum(r.stands_out for r in page.results) >= 1
    assert not page.no_strong_matches
    assert page.library_counts["images"] == 96


def test_highlight_spans_find_whole_words():
    assert highlight_spans("Turn at the Blue triangle sign; bluebird", ["blue", "triangle"]) == [
        (12, 16), (17, 25)]
