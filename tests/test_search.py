"""Search beyond top-k cosine: hybrid keywords, arithmetic, refine, cutoff, filters."""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import note, solid

from indexer.catalogue import FileFilter, name_terms
from indexer.indexing import Indexer
from indexer.library import Library
from indexer.query import QueryError, parse_query
from indexer.search import SearchRequest, Searcher, keyword_query
from indexer.specs import TINY_SHAPES


@pytest.fixture
def lib(tmp_path, fake_encoder):
    root = tmp_path / "home"
    # colours: many reds, one blue; names sometimes help (invoice), sometimes mislead
    for i in range(12):
        solid(root / "photos" / f"IMG_{i:04d}.png", (200 + i, 20, 20))
    solid(root / "photos" / "sky.png", (20, 20, 230))
    solid(root / "scans" / "invoice_2023.png", (128, 128, 128))
    solid(root / "2019" / "old.png", (30, 200, 30))
    note(root / "notes" / "recipe.txt", "Grandma's zucchini bread: flour, sugar, zucchini.")
    note(root / "notes" / "trip.md", "We drove to the coast and watched the sunset.")
    old = time.mktime((2019, 6, 1, 12, 0, 0, 0, 0, -1))
    os.utime(root / "2019" / "old.png", (old, old))
    library = Library.open(tmp_path / "lib", replace(TINY_SHAPES, embed_dim=fake_encoder.dim))
    Indexer(library, fake_encoder, workers=0).run([root])
    yield library, root
    library.close()


def names(results):
    return [Path(r.path).name for r in results]


def test_file_names_tokenize_into_words():
    assert name_terms("IMG_2023-07_beach.jpg") == "IMG 2023 07 beach jpg"
    assert name_terms("holidayPhotos2021.png") == "holiday Photos 2021 png"


def test_keyword_query_is_safe_against_fts_syntax():
    assert keyword_query('a "quoted" NEAR(x) OR -y') == '"quoted" OR "near" OR "x" OR "y"'
    assert keyword_query("the of a") is None


def test_invoice_by_file_name_comes_first(lib, fake_encoder):
    library, _ = lib
    page = Searcher(library, fake_encoder).run(SearchRequest("invoice"))
    assert names(page.results)[0] == "invoice_2023.png"
    vector_only = Searcher(library, fake_encoder).search("invoice", mode="vector", k=20)
    assert names(vector_only)[0] != "invoice_2023.png"  # only words found it


def test_rare_word_in_a_note_finds_that_note_first(lib, fake_encoder):
    library, _ = lib
    page = Searcher(library, fake_encoder).run(SearchRequest("zucchini"))
    assert names(page.results)[0] == "recipe.txt"
    assert "zucchini" in (page.results[0].snippet or "").lower()


def test_filters_kind_folder_date_do_not_cut_the_list_short(lib, fake_encoder):
    library, root = lib
    s = Searcher(library, fake_encoder)
    red = fake_encoder.encode_images(np.full((1, 2, 2, 3), (210, 20, 20), np.uint8))[0]
    only_photos = s.search(vector=red, k=50, flt=FileFilter(folders=(str(root / "photos"),)),
                           mode="vector")
    assert len(only_photos) == 13 and all("/photos/" in r.path for r in only_photos)
    notes = s.search(vector=red, k=50, flt=FileFilter(kinds=("text",)), mode="vector")
    assert sorted(names(notes)) == ["recipe.txt", "trip.md"]
    cutoff = time.mktime((2020, 1, 1, 0, 0, 0, 0, 0, -1))
    old = s.search(vector=red, k=50, flt=FileFilter(before=cutoff), mode="vector")
    assert names(old) == ["old.png"]
    recent = s.search(vector=red, k=50, flt=FileFilter(after=cutoff), mode="vector")
    assert "old.png" not in names(recent) and len(recent) == 16


def test_sort_by_date(lib, fake_encoder):
    library, _ = lib
    page = Searcher(library, fake_encoder).run(SearchRequest("green", k=50, sort="date"))
    dates = [r.taken_at for r in page.results[page.cutoff:]]
    assert dates == sorted(dates, reverse=True)


def test_arithmetic_subtracts(lib, fake_encoder):
    library, root = lib
    s = Searcher(library, fake_encoder)
    blue = str(root / "photos" / "sky.png")
    red_img = str(root / "photos" / "IMG_0003.png")
    page = s.run(SearchRequest(f"{red_img} + {blue}:2 - {red_img}", mode="vector", k=5))
    assert names(page.results)[0] == "sky.png"


def test_query_parse_errors_are_clear():
    with pytest.raises(QueryError, match="positive term"):
        parse_query("- beach")
    with pytest.raises(QueryError, match="missing a term"):
        parse_query("beach + + sunset")
    with pytest.raises(QueryError, match="no such image"):
        parse_query("/nowhere/cat.jpg + hat")
    assert [t.weight for t in parse_query("beach:2 + sunset - people:0.5")] == [2, 1, -0.5]


def test_refine_by_example_moves_ranking(lib, fake_encoder):
    library, _ = lib
    s = Searcher(library, fake_encoder)
    base = s.run(SearchRequest("sunset", mode="vector", k=30))
    green = library.reader().file_id_for_path(str(lib[1] / "2019" / "old.png"))
    liked = s.run(SearchRequest("sunset", mode="vector", k=30, positives=(green,)))
    assert names(liked.results)[0] == "old.png"
    assert names(base.results)[0] != "old.png"
    disliked = s.run(SearchRequest("sunset", mode="vector", k=30, negatives=(green,)))
    assert names(disliked.results).index("old.png") >= names(base.results).index("old.png")


def test_find_similar_excludes_itself(lib, fake_encoder):
    library, root = lib
    fid = library.reader().file_id_for_path(str(root / "photos" / "IMG_0000.png"))
    page = Searcher(library, fake_encoder).run(SearchRequest(similar_to=fid, mode="vector"))
    assert "IMG_0000.png" not in names(page.results)
    assert names(page.results)[0].startswith("IMG_")


def test_cutoff_keeps_the_standouts(lib, fake_encoder):
    library, root = lib
    page = Searcher(library, fake_encoder).run(
        SearchRequest(str(root / "photos" / "sky.png"), mode="vector", k=30))
    assert names(page.results)[0] == "sky.png"
    assert 1 <= page.cutoff < len(page.results)
    assert all(r.z >= page.results[page.cutoff].z for r in page.results[: page.cutoff])
    assert "z" in page.results[0].explain()


# -- where the results stop standing out ---------------------------------------------------------

def _null_profile(rng, n, depth=512):
    return list(np.sort(rng.standard_normal(n))[::-1][:depth])


def test_a_planted_group_stands_out_whole():
    from indexer.search import standout_floor

    rng = np.random.default_rng(3)
    noise = _null_profile(rng, 5000)
    group = list(max(noise) + 1.0 + 0.02 * rng.random(30))  # 30 matches above the noise
    assert max(noise) < standout_floor(group + noise, 5030) < min(group)
    lone = [max(noise) + 1.5]  # one clear match (that one note): above the chance level
    assert max(noise) < standout_floor(lone + noise, 5001) < lone[0]


def test_without_a_break_the_fixed_threshold_decides():
    from indexer.search import STANDOUT_Z, null_floor, standout_floor

    assert null_floor(100) < null_floor(10_000) < null_floor(1_000_000)
    assert 3.0 < null_floor(300) < 4.0  # the best of 300 Gaussian draws stays under it in 95%
    assert standout_floor([], 300) == STANDOUT_Z
    smooth = [2.45 - 0.005 * i for i in range(400)]  # an unknown word: no match, no break
    assert standout_floor(smooth, 400) == STANDOUT_Z


def test_a_sharp_break_below_the_floor_still_counts_a_loose_one_does_not():
    from indexer.search import BREAK_FLOOR_Z, STANDOUT_Z, standout_floor

    # 91 near-identical matches at z 2.50 ... 2.23, then the first near miss at 1.9
    group = [2.5 - 0.003 * i for i in range(91)]
    floor = standout_floor(group + [1.9 - 0.002 * i for i in range(300)])
    assert 1.9 < floor < min(group) < BREAK_FLOOR_Z
    loose = [2.45 - 0.025 * i for i in range(12)]  # 2.45 ... 2.175: a loose group, then a step
    assert standout_floor(loose + [1.9 - 0.005 * i for i in range(300)]) >= STANDOUT_Z


@pytest.fixture(scope="module")
def demo_library(tmp_path_factory, tiny_encoder):
    from magpie_demo.shapes import demo_labels, make_demo_folder

    tmp = tmp_path_factory.mktemp("demo-cutoff")
    make_demo_folder(tmp / "Pictures", n_images=330, seed=3)  # 5 of each colour x shape
    labels = demo_labels(tmp / "Pictures", n_images=330, seed=3)
    library = Library.open(tmp / "lib", TINY_SHAPES)
    Indexer(library, tiny_encoder, workers=1).run([tmp / "Pictures"])
    yield library, labels
    library.close()


@pytest.mark.parametrize("query", [("red", "circle"), ("blue", "star"), ("green", "heart"),
                                   ("gray", "cross"), ("yellow", "triangle")])
def test_cutoff_keeps_every_match_and_little_else(demo_library, tiny_encoder, query):
    library, labels = demo_library
    relevant = {str(p) for p, v in labels.items() if v == query}
    assert len(relevant) == 5
    s = Searcher(library, tiny_encoder)
    page = s.run(SearchRequest(f"a {query[0]} {query[1]}", k=50, mode="vector"))
    shown = [r.open_path for r in page.results[: page.cutoff]]
    assert relevant <= set(shown), "a match was hidden behind 'show more'"
    assert len(shown) <= len(relevant) + 1
    # a page smaller than the number of matches: every result shown is a match and stands out
    small = s.run(SearchRequest(f"a {query[0]} {query[1]}", k=3, mode="vector"))
    assert small.cutoff == 3 and {r.open_path for r in small.results} <= relevant


def test_a_group_chance_would_make_does_not_stand_out():
    from indexer.search import chance_of_group, null_floor, standout_floor

    assert chance_of_group(2, 2.4, 300) > 0.5  # two random items at z 2.4 among 300: chance
    assert chance_of_group(1, 2.51, 100) < 0.5  # the lone red circle of a 96-picture library
    assert chance_of_group(91, 2.23, 6000) < 0.1  # 91 yellow stars among 6000
    assert chance_of_group(3, 2.4, 300) < chance_of_group(2, 2.4, 300)
    # the null model's "a orange square": two pictures at 2.41 / 2.39, then its tail from 1.86
    rng = np.random.default_rng(0)
    tail = list(1.86 - np.sort(np.abs(rng.standard_normal(298)))[: 298] * 0.6)
    floor = standout_floor([2.41, 2.39] + tail, 300)
    assert floor >= null_floor(300) > 2.41
    # the same two at the top of a 100-item library with one true match above: still shown
    assert standout_floor([2.7, 1.8] + [1.7 - 0.01 * i for i in range(98)], 100) < 2.7


def test_each_kind_is_measured_against_its_own_background(lib, fake_encoder):
    library, _ = lib
    s = Searcher(library, fake_encoder)
    page = s.run(SearchRequest("zucchini", k=30))
    vec = s.text_vector("zucchini")
    for r in page.results:
        mu, sd = s.z_stats(vec, r.kind)
        assert r.z == pytest.approx((r.score - mu) / sd)
    assert s.z_stats(vec, "text") != s.z_stats(vec, "image")
