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


# -- names: a query that names a file finds it first; a misleading name does not win ----------

@pytest.fixture(scope="module")
def named(tiny_encoder, tmp_path_factory):
    """Three pictures of every colour x shape named IMG_…, five document scans named
    invoice_2023_0N.png (the model cannot see the word "invoice"), and one red circle named
    "blue square 9.jpg"."""
    import random

    from magpie_demo.shapes import COLORS, SHAPES, make_demo_folder, render_shape

    tmp = tmp_path_factory.mktemp("named")
    items = make_demo_folder(tmp / "Pictures", n_images=3 * len(COLORS) * len(SHAPES), seed=11,
                             image_size=96)
    scans = tmp / "Pictures" / "Scans"
    scans.mkdir()
    rng = random.Random(5)
    for i in range(1, 6):
        c, s = rng.choice(list(COLORS)), rng.choice(SHAPES)
        render_shape(c, s, random.Random(i), size=96).save(scans / f"invoice_2023_0{i}.png")
    render_shape("red", "circle", random.Random(9), size=96).save(scans / "blue square 9.jpg")
    library = Library.open(tmp / "lib", TINY_SHAPES)
    Indexer(library, tiny_encoder, workers=0).run([tmp / "Pictures"])
    yield Searcher(library, tiny_encoder), items
    library.close()


def test_a_word_only_in_file_names_finds_those_files_first(named):
    s, _ = named
    page = s.run(SearchRequest("invoice", k=30))
    top = [Path(r.path).name for r in page.results[:5]]
    assert sorted(top) == [f"invoice_2023_0{i}.png" for i in range(1, 6)]
    assert all(r.stands_out and r.keyword_level == 4 for r in page.results[:5])


def test_the_exact_file_name_ranks_that_file_first(named):
    s, items = named
    picture = next(i.path for i in items if i.color == "green" and i.shape == "star")
    for query, name in ((picture.name, picture.name), (picture.stem.lower(), picture.name),
                        ("blue square 9.jpg", "blue square 9.jpg")):
        first = s.run(SearchRequest(query, k=30)).results[0]
        assert Path(first.path).name == name
        assert first.keyword_level == 5 and first.relevance == 1.0 and first.stands_out


def test_a_misleading_name_ranks_below_pictures_that_match(named):
    s, items = named
    page = s.run(SearchRequest("a blue square", k=30))
    names = [Path(r.path).name for r in page.results]
    misnamed = names.index("blue square 9.jpg")
    blue_squares = {str(i.path) for i in items if (i.color, i.shape) == ("blue", "square")}
    ranks = [k for k, r in enumerate(page.results) if r.open_path in blue_squares]
    assert len(ranks) == 3 and max(ranks) < misnamed


def test_gibberish_says_no_strong_matches_and_still_lists_the_closest(named):
    s, _ = named
    for query in ("qwzx florp blarg", "vrumble snorkwhistle"):
        page = s.run(SearchRequest(query, k=30))
        assert page.no_strong_matches and len(page.results) == 30
        assert all(r.relevance < 0.5 for r in page.results)
    words_only = s.run(SearchRequest("invoice", k=30))  # a word the model cannot see either
    assert words_only.cutoff == 5  # found by the names alone
    assert not s.run(SearchRequest("a red circle", k=30)).no_strong_matches


def test_tiny_digits_reads_every_digit_and_no_gibberish_as_one():
    """The second test model must not read text it does not know as a digit: v1 gave "qwzx
    florp blarg" the very vector of "a handwritten two" (cosine 1.000), so the nonsense gate
    hid every two and gibberish would otherwise have stood the twos out."""
    import numpy as np

    from indexer.model import load_encoder
    from indexer.specs import TINY_DIGITS
    from indexer.weights import verify_file

    enc = load_encoder(TINY_DIGITS, verify_file(TINY_DIGITS, TINY_DIGITS.bundled_path()))
    s = Searcher(None, enc)  # type: ignore[arg-type]  # reads_nothing needs the model only
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    digits = np.asarray(enc.encode_texts([f"a handwritten {w}" for w in words]))
    assert not any(s.reads_nothing(v) for v in digits)
    for gibberish in ("qwzx florp blarg", "vrumble snorkwhistle"):
        v = np.asarray(enc.encode_texts([gibberish]))[0]
        assert s.reads_nothing(v)
        assert float(np.max(digits @ v)) < 0.9  # near no digit in particular
