"""Query arithmetic (indexer/query.py): terms, operators, weights, image terms, and the errors
a person reads when a query cannot mean anything."""
from __future__ import annotations

import os

import pytest
from helpers import note, solid

from indexer.query import QueryError, Term, keyword_text, parse_query


def texts(query: str) -> list[tuple[str | None, float]]:
    return [(t.text, t.weight) for t in parse_query(query)]


def test_a_plain_query_is_one_text_term_of_weight_one():
    assert parse_query("  a red sled in the snow ") == [Term(1.0, text="a red sled in the snow")]


def test_operators_stand_alone_between_terms():
    assert texts("beach + sunset - people") == [("beach", 1.0), ("sunset", 1.0), ("people", -1.0)]
    # a hyphen or plus inside a word is part of the word
    assert texts("t-shirt") == [("t-shirt", 1.0)]
    assert texts("c++ book - e-mail") == [("c++ book", 1.0), ("e-mail", -1.0)]
    assert texts("red -5 degrees") == [("red -5 degrees", 1.0)]  # a number is not a term
    assert texts("-square + red") == [("square", -1.0), ("red", 1.0)]  # a leading operator
    assert texts("+red") == [("red", 1.0)]


def test_weights_scale_terms_and_keep_their_sign():
    assert texts("beach:2 + sunset:0.5 - people:3") == [
        ("beach", 2.0), ("sunset", 0.5), ("people", -3.0)]
    assert texts("beach:-1 + sky") == [("beach", -1.0), ("sky", 1.0)]
    assert texts("meeting at 10:30") == [("meeting at 10:30", 1.0)]  # a time, not a weight
    assert texts('"meeting 10:30":2') == [("meeting 10:30", 2.0)]  # quoted: weighted
    assert texts("note: buy milk") == [("note: buy milk", 1.0)]  # ':' not followed by a number
    assert texts(":3") == [(":3", 1.0)]  # no body: not a weight


def test_quotes_keep_operators_inside_a_term():
    assert texts('"salt + pepper" - sugar') == [("salt + pepper", 1.0), ("sugar", -1.0)]
    assert texts('"rock - paper":2') == [("rock - paper", 2.0)]


@pytest.mark.parametrize("query, says", [
    ("", "the query is empty"),
    ("   ", "the query is empty"),
    ("red + ", "missing a term around '+'"),
    ("red + - blue", "missing a term"),
    ('"unbalanced + quote', "unbalanced quote"),
    ('"" + red', "empty quoted term"),
    ("beach:0 + sky", "weight 0 for 'beach' has no effect"),
    ("- people", "at least one positive term"),
    ("beach:-2", "at least one positive term"),
])
def test_meaningless_queries_say_why(query, says):
    with pytest.raises(QueryError) as err:
        parse_query(query)
    assert says in str(err.value)
    assert isinstance(err.value, ValueError)  # what the CLI and the GUI turn into one line


def test_an_existing_image_path_is_an_image_term(tmp_path, monkeypatch):
    cat = solid(tmp_path / "pets" / "cat.jpg", (200, 120, 40))
    terms = parse_query(f"{cat}:2 - dog")
    assert terms == [Term(2.0, image=str(cat)), Term(-1.0, text="dog")]
    monkeypatch.chdir(tmp_path)  # relative forms are made absolute
    assert parse_query("./pets/cat.jpg") == [Term(1.0, image=str(cat))]
    assert parse_query("pets/cat.jpg") == [Term(1.0, image=str(cat))]
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_query("~/pets/cat.jpg + sunny") == [Term(1.0, image=str(cat)),
                                                     Term(1.0, text="sunny")]
    assert parse_query(f'"{cat}"') == [Term(1.0, image=str(cat))]


def test_a_path_that_is_not_an_image_says_which(tmp_path):
    with pytest.raises(QueryError, match="no such image: /nowhere/cat.jpg"):
        parse_query("/nowhere/cat.jpg")
    text = note(tmp_path / "shopping.txt", "milk")
    with pytest.raises(QueryError, match="not an image file"):
        parse_query(str(text))
    folder = tmp_path / "a folder.png"
    folder.mkdir()
    with pytest.raises(QueryError, match="no such image"):
        parse_query(str(folder))


def test_a_word_that_only_looks_like_a_file_name_stays_text():
    assert texts("photo.jpg of my cat") == [("photo.jpg of my cat", 1.0)]
    assert os.sep not in "photo.jpg"


def test_keyword_text_is_the_positive_words_only(tmp_path):
    cat = solid(tmp_path / "cat.png", (1, 2, 3))
    terms = parse_query(f"red sled:2 + snow - people + {cat}")
    assert keyword_text(terms) == "red sled snow"
    assert [t.positive for t in terms] == [True, True, False, True]
