"""Grading a query against the words read in a picture (indexer/text_match.py): the levels
search ranks by, the snippet line, and the marks the preview draws."""
from __future__ import annotations

import pytest

from indexer.ocr import fold
from indexer.text_match import (
    CLOSE, PHRASE, SCATTERED, SOME, evidence, marks, query_words, word_box,
)

RECEIPT = ["HARDWARE STORE", "Claw hammer 16oz 12.99", "Plate RE16 TGK", "TOTAL 42,50"]


def level(query: str, lines=RECEIPT) -> int:
    return evidence(lines, query_words(query)).level


def test_query_words_are_taken_as_typed_and_folded():
    assert query_words("Total 42.50 RE16") == [fold("total"), fold("42,50"), fold("re16")]
    assert len(query_words("42.50")[0]) == 4  # one word, as typed: not "42" and "50"
    assert query_words("the hammer", frozenset({"the"})) == ["hammer"]
    assert query_words("a 5 hammer hammer") == ["hammer"]  # short words and repeats dropped


@pytest.mark.parametrize("query, want", [
    ("hammer", PHRASE),            # a whole word read in the picture
    ("claw hammer", PHRASE),       # words one after another: a phrase, like a note's
    ("42.50", PHRASE),             # read "42,50": punctuation is folded away
    ("total 42.50", PHRASE),
    ("re16", PHRASE),              # a code: "1" and "l" are one character when folded
    ("hammer claw", CLOSE),        # all words, near each other, not in order
    ("hamner", CLOSE),             # one misread letter: found, below an exact match
    ("hardwarestore", PHRASE),     # the reader's spaces do not matter
    ("ardwarest", CLOSE),          # part of a word: close, not exact
    ("ham", -1),                   # three letters only as a whole word
    ("hardware 42.50", SCATTERED),  # first line and last: all words, far apart
    ("hammer ladder", SOME),
    ("ladder", -1),
])
def test_levels(query, want):
    assert level(query) == want


def test_words_the_reader_ran_together_or_split():
    assert level("hammer", ["Clawhammer12.99"]) == CLOSE  # part of a word: maybe another word
    assert level("claw hammer", ["Clawhammer12.99"]) == PHRASE  # ends where the digits start
    assert level("12.99", ["Clawhammer12.99"]) == PHRASE
    assert level("re16", ["PlateRE16TGK"]) == PHRASE  # capitals after a small letter: a word
    assert level("hammer", ["ham mer 12.99"]) == PHRASE  # the reader split the word
    assert level("hammer", ["Claw hammer", "12.99"]) == PHRASE
    assert level("hammer 12.99", ["Claw hammer", "12.99", "x", "y"]) == CLOSE  # next line


def test_snippet_is_the_line_holding_most_of_the_words():
    ev = evidence(RECEIPT, query_words("hammer 12.99 total"))
    assert ev.line == "Claw hammer 16oz 12.99" and ev.line_index == 1
    assert evidence(RECEIPT, query_words("ladder")).line == ""


def test_word_box_is_the_words_share_of_its_line():
    box = [[0.1, 0.2], [0.5, 0.2], [0.5, 0.3], [0.1, 0.3]]
    text = "Claw hammer"  # "hammer" is characters 5..11 of 11
    got = word_box(box, text, (5, 11))
    assert got[0] == pytest.approx([0.1 + 0.4 * 5 / 11, 0.2])
    assert got[2] == pytest.approx([0.5, 0.3])
    assert word_box(box, text, None) == box


def test_marks_one_box_per_occurrence_of_any_word():
    box = [[0.0, 0.0], [1.0, 0.0], [1.0, 0.1], [0.0, 0.1]]
    other = [[0.0, 0.5], [1.0, 0.5], [1.0, 0.6], [0.0, 0.6]]
    lines = [("Claw hammer", box), ("TOTAL 42.50", other), ("Nails", box)]
    got = marks(lines, query_words("hammer 42.50"))
    assert len(got) == 2
    assert got[0][0][0] == pytest.approx(5 / 11)  # "hammer" starts 5/11 along the first line
    assert got[1][0][1] == pytest.approx(0.5)  # "42.50" is on the second line
    assert marks(lines, query_words("ladder")) == []


def test_spans_mark_the_words_in_a_line_as_read():
    from indexer.text_match import spans

    assert spans("Clawhammer12.99", ["hammer"]) == [(4, 10)]
    assert spans("Claw hammer 12.99", ["claw", "hammer"]) == [(0, 4), (5, 11)]
    assert spans("TOTAL 42,50", ["42.50"]) == [(6, 11)]
    assert spans("HARDWARE STORE", ["are"]) == []  # 3 letters: whole words only
    assert spans("", ["hammer"]) == [] and spans("hammer", []) == []
