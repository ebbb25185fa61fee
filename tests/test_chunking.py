"""Chunks fit CLIP's window, measured with the real tokenizer, and break at natural places."""
from __future__ import annotations

import pytest

from indexer.chunking import chunk_text


@pytest.fixture(scope="module")
def count():
    import open_clip

    tok = open_clip.get_tokenizer("ViT-B-32")
    return lambda text: len(tok.encode(text))


def test_short_note_is_one_chunk(count):
    assert chunk_text("Buy milk.\n\nAnd eggs.", count, 75) == ["Buy milk.\n\nAnd eggs."]


def test_paragraphs_are_kept_whole_when_they_fit(count):
    paras = [f"Paragraph {i} talks about the garden and the shed and the fence." for i in range(8)]
    chunks = chunk_text("\n\n".join(paras), count, 75)
    assert len(chunks) > 1
    assert all(count(c) <= 75 for c in chunks)
    for c in chunks:  # no paragraph was split across chunks
        for piece in c.split("\n\n"):
            assert piece in paras


def test_long_paragraph_breaks_at_sentences(count):
    sentences = [f"Sentence number {i} is about a blue kite over the beach." for i in range(20)]
    chunks = chunk_text(" ".join(sentences), count, 75)
    assert all(count(c) <= 75 for c in chunks)
    assert all(c.endswith(".") for c in chunks)  # every chunk ends at a sentence boundary
    assert " ".join(chunks) == " ".join(sentences)


def test_run_on_sentence_breaks_at_words_and_long_tokens_are_cut(count):
    words = " ".join(["sled"] * 200)
    chunks = chunk_text(words, count, 75)
    assert all(count(c) <= 75 for c in chunks) and " ".join(chunks) == words
    url = "https://example.org/" + "x1y2z3" * 100
    parts = chunk_text(url, count, 75)
    assert all(count(p) <= 75 for p in parts) and "".join(parts) == url


def test_unicode_and_cjk(count):
    text = "雪の中の赤いそり。" * 60
    chunks = chunk_text(text, count, 75)
    assert all(count(c) <= 75 for c in chunks) and "".join(chunks).replace(" ", "") == text


def test_huge_note_is_read_up_to_the_cap_without_breaking_utf8(tmp_path, monkeypatch):
    from indexer import decode

    monkeypatch.setattr(decode, "MAX_TEXT_BYTES", 1001)
    p = tmp_path / "big.txt"
    p.write_text("é" * 2000, encoding="utf-8")  # 2 bytes each: the cap falls mid-character
    assert decode.read_text(str(p)) == "é" * 500
