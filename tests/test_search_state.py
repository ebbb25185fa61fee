"""The search flow's rules without Qt: the query state, the summary line, highlighted words,
folded copies and the model's window. Microseconds each."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


from app.search_page import cut_notice, summary_text
from app.search_state import PAGE_K, SearchState
from indexer.search import SearchResult, fold_copies
from indexer.query_feedback import collapse_spaces, cut_terms, highlight_spans, matched_words

ROOT = Path(__file__).resolve().parent.parent


def test_the_state_and_page_modules_import_no_qt():
    code = ("import sys; import app.search_state, app.search_page, indexer.query_feedback, "
            "indexer.counts; "
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# -- SearchState ----------------------------------------------------------------------------------
def test_typing_sets_the_words_and_a_change_drops_refinements():
    s = SearchState()
    assert s.empty()
    s.edit_text("red")
    s.mark(3, 1)
    s.mark(4, -1)
    s.load_more()
    assert s.marks() == {3: 1, 4: -1} and s.k == 2 * PAGE_K and s.paged_past_first
    s.edit_text("red")  # the same words (a key that changed nothing): refinements stay
    assert s.refined
    s.edit_text("red circle")
    assert not s.refined and s.k == PAGE_K and s.text == "red circle"
    s.edit_text("   ")
    assert s.empty()


def test_marking_toggles_between_more_less_and_neither():
    s = SearchState(text="x")
    s.mark(7, 1)
    assert s.positives == {7} and not s.negatives
    s.mark(7, -1)
    assert s.negatives == {7} and not s.positives
    s.mark(7, 0)
    assert not s.refined


def test_a_dropped_picture_is_the_whole_query_and_gives_the_words_back():
    s = SearchState()
    s.edit_text("a red circle")
    s.mark(1, 1)
    s.use_picture("/x/cat.jpg")
    assert s.image == "/x/cat.jpg" and s.text == "" and not s.mixed  # not mixed in
    assert s.picture_mode and s.picture_name == "cat.jpg" and not s.refined
    assert s.describe() == "like cat.jpg"
    assert s.request().text == "" and s.request().image == "/x/cat.jpg"
    # words typed after the drop are asked for: mixed with the picture
    s.edit_text("on grass")
    assert s.mixed and s.request().text == "on grass" and s.request().image == "/x/cat.jpg"
    assert s.describe() == "“on grass” + cat.jpg"
    # clearing the picture keeps the words typed since …
    assert s.clear_picture() == "on grass"
    assert s.image is None and s.text == "on grass"


def test_clearing_a_picture_without_new_words_brings_the_old_ones_back():
    s = SearchState()
    s.edit_text("a red circle")
    s.use_picture("/x/a.png")
    s.use_picture("/x/b.png")  # a second drop replaces the first; the words stay set aside
    assert s.image == "/x/b.png"
    assert s.clear_picture() == "a red circle"
    assert s.text == "a red circle" and not s.picture_mode
    # with nothing set aside, clearing leaves no query
    s2 = SearchState()
    s2.use_picture("/x/a.png")
    assert s2.clear_picture() == "" and s2.empty()


def test_find_similar_is_replaced_by_typing():
    s = SearchState(text="old")
    s.find_similar(42, "/x/dog.jpg", "dog.jpg")
    assert s.similar_to == 42 and s.text == "" and s.describe() == "similar to dog.jpg"
    assert s.request().similar_to == 42
    assert s.edit_text("") is False and s.similar_to == 42  # an empty box keeps it
    assert s.edit_text("cat") is True  # typing replaces "find similar"
    assert s.similar_to is None and s.text == "cat"


def test_snapshot_is_independent_of_later_edits():
    s = SearchState(text="x")
    s.mark(1, 1)
    snap = s.snapshot()
    s.mark(2, 1)
    s.edit_text("y")
    assert snap.positives == {1} and snap.text == "x"


def test_request_carries_filters_sort_and_sorted_refinements():
    from indexer.catalogue import FileFilter

    s = SearchState(text="  beach  ")
    for fid, m in ((9, 1), (2, 1), (5, -1)):
        s.mark(fid, m)
    flt = FileFilter(kinds=("image",))
    req = s.request(flt, "date")
    assert req.text == "beach" and req.flt == flt and req.sort == "date"
    assert req.positives == (2, 9) and req.negatives == (5,) and req.k == PAGE_K


# -- the summary line -----------------------------------------------------------------------------
def test_summary_says_what_the_library_holds():
    assert summary_text(60, 60, 1234, 35.2) == "60 stand out  ·  60 of 1,234 shown  ·  35 ms"
    assert summary_text(8, 1, 1234, 12) == "1 stands out  ·  8 of 1,234 shown  ·  12 ms"
    assert summary_text(5, 5, 5, 3) == "5 shown  ·  3 ms"  # everything the library holds
    assert summary_text(12, 0, 40, 3) == ("No strong matches: the closest items  ·  12 of 40 "
                                          "shown  ·  3 ms")  # nothing stands out: say so


def test_cut_notice_only_when_something_was_cut():
    assert cut_notice(()) == ""
    assert "77 tokens" in cut_notice(("a long description",), 77)


# -- highlighted words ----------------------------------------------------------------------------
def test_matched_words_are_the_keyword_search_words():
    assert matched_words("a red circle") == ["red", "circle"]  # stopwords are not matched
    assert matched_words("beach:2 + sunset - people") == ["beach", "sunset"]  # no negatives
    assert matched_words("red +") == []  # a query that does not parse highlights nothing
    assert matched_words("") == []


def test_highlight_spans_are_whole_words_case_insensitive():
    text = "Buy blue paint. Bluebird? BLUE! paint-brush"
    spans = highlight_spans(text, ["blue", "paint"])
    assert [text[a:b] for a, b in spans] == ["blue", "paint", "BLUE", "paint"]
    assert highlight_spans(text, []) == [] and highlight_spans("", ["x"]) == []
    # regex characters in a word are literal: "(b)" is not the group "b"
    assert highlight_spans("a b c", ["(b)"]) == []
    assert highlight_spans("a.c abc", ["a.c"]) == [(0, 3)]
    text = "naïve café"
    assert [text[a:b] for a, b in highlight_spans(text, ["café"])] == ["café"]


def test_spans_match_the_text_as_a_card_shows_it():
    shown = collapse_spaces("ladder\n\n  and   blue\tpaint")
    assert shown == "ladder and blue paint"
    assert [shown[a:b] for a, b in highlight_spans(shown, ["blue"])] == ["blue"]


# -- the model's window ---------------------------------------------------------------------------
class WordCounter:
    max_text_tokens = 5

    def token_count(self, text: str) -> int:
        return len(text.split())


def test_cut_terms_names_each_term_over_the_window():
    enc = WordCounter()
    assert cut_terms("one two three", enc) == []
    long = "one two three four five six"
    assert cut_terms(long, enc) == [long]
    # each term of query arithmetic is encoded, and measured, on its own
    assert cut_terms(f"short + {long}", enc) == [long]
    assert cut_terms("bad +", enc) == []


# -- identical copies (folded by the core) -------------------------------------------------------
def _r(fid: int, path: str) -> SearchResult:
    return SearchResult(file_id=fid, path=path, open_path=path, kind="image", score=0.5)


def test_copies_fold_into_the_best_ranked_file():
    results = [_r(1, "/a/x.jpg"), _r(2, "/b/x.jpg"), _r(3, "/c/y.jpg"), _r(4, "/d/x copy.jpg"),
               _r(5, "/e/z.jpg"), _r(6, "/f/n.txt"), _r(7, "/g/n.txt")]
    hashes = {1: "h1", 2: "h1", 3: "h2", 4: "h1", 5: None, 6: None, 7: None}
    kept = fold_copies(results, hashes)
    assert [r.file_id for r in kept] == [1, 3, 5, 6, 7]  # no hash: never merged
    assert kept[0].copies == 3 and kept[0].copy_paths == ("/b/x.jpg", "/d/x copy.jpg")
    assert all(r.copies == 1 and r.copy_paths == () for r in kept[1:])


def test_unknown_files_are_kept_as_they_are():
    kept = fold_copies([_r(1, "a"), _r(2, "b")], {})
    assert [r.file_id for r in kept] == [1, 2] and all(r.copies == 1 for r in kept)
