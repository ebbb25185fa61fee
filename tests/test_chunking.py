"""Chunks fit CLIP's window, measured with the real tokenizer, and break at natural places."""
from __future__ import annotations

import pytest

from indexer.chunking import chunk_text


@pytest.fixture(scope="module")
def tokenizer():
    import open_clip

    return open_clip.get_tokenizer("ViT-B-32")


@pytest.fixture(scope="module")
def count(tokenizer):
    return lambda text: len(tokenizer.encode(text))


@pytest.fixture(scope="module")
def ends(tokenizer):
    from indexer.token_ends import clip_token_ends

    return clip_token_ends(tokenizer)


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


# -- no note stalls the run (issue 10, item 1) ---------------------------------------------------
def _b64(n: int, seed: int = 1) -> str:
    import base64
    import random

    rng = random.Random(seed)
    return base64.b64encode(bytes(rng.getrandbits(8) for _ in range(n))).decode()[:n]


class _Meter:
    """A token counter (two characters a token) that records what it was asked to measure."""

    def __init__(self) -> None:
        self.calls = 0
        self.chars = 0
        self.longest = 0

    def __call__(self, text: str) -> int:
        self.calls += 1
        self.chars += len(text)
        self.longest = max(self.longest, len(text))
        return (len(text) + 1) // 2


def test_a_long_run_without_spaces_costs_linear_tokenizer_work():
    """Work (characters handed to the tokenizer) grows with the length, not its square: the
    old prefix binary search re-tokenized everything left for every cut (16x for 4x longer)."""
    work = {}
    for n in (4_000, 16_000):
        meter = _Meter()
        text = _b64(n)
        parts = chunk_text(text, meter, 75)
        assert "".join(parts) == text and all(meter(p) <= 75 for p in parts)
        work[n] = meter.chars
    assert work[16_000] / work[4_000] < 6, work


def test_the_tokenizer_never_sees_an_unbounded_piece():
    """CLIP's BPE is quadratic in one word's length: no probe may hold a whole 200k-char run."""
    from indexer.chunking import PROBE_CHARS_PER_TOKEN

    meter = _Meter()
    parts = chunk_text("# Pasted\n\n![img](data:image/png;base64," + _b64(200_000) + ")", meter, 75)
    assert meter.longest <= 75 * PROBE_CHARS_PER_TOKEN
    assert all(meter(p) <= 75 for p in parts)


def test_chunking_checks_in_as_it_goes_so_cancel_can_stop_it():
    class Stop(Exception):
        pass

    calls = []

    def check():
        calls.append(1)
        if len(calls) == 3:
            raise Stop

    with pytest.raises(Stop):
        chunk_text(_b64(100_000), _Meter(), 75, check=check)
    words = " ".join(f"w{i}" for i in range(50_000))
    calls.clear()
    with pytest.raises(Stop):
        chunk_text(words, _Meter(), 75, check=check)


@pytest.mark.parametrize("fast", [False, True], ids=["counts-only", "token-ends"])
def test_real_tokenizer_on_base64_and_run_on_prose(count, ends, fast):
    kwargs = {"token_ends": ends} if fast else {}
    blob = _b64(6_000)
    parts = chunk_text(blob, count, 75, **kwargs)
    assert "".join(parts) == blob and all(count(p) <= 75 for p in parts)
    prose = " ".join(f"The kite number {i} flew over the beach, then fell" for i in range(150))
    chunks = chunk_text(prose, count, 75, **kwargs)
    assert " ".join(chunks) == prose and all(count(c) <= 75 for c in chunks)
    assert max(count(c) for c in chunks) >= 70  # packed, not cut needlessly short


def test_token_ends_match_the_tokenizer_and_only_guide_the_cuts(count, ends):
    """The fast path reads cuts off one tokenization; a wrong reading still can't overflow."""
    text = "Hello, wörld! 雪の中の赤いそり aGVsbG8gd29ybGQ= 12345"
    assert len(ends(text)) == count(text)
    def liar(t: str) -> list[int]:  # claims 9 characters a token
        return [i + 1 for i in range(0, len(t), 9)]

    blob = _b64(3_000)
    parts = chunk_text(blob, count, 75, token_ends=liar)
    assert "".join(parts) == blob and all(count(p) <= 75 for p in parts)
    prose = "\n\n".join(f"Paragraph {i} is about a red sled. It snowed all day." for i in range(40))
    chunks = chunk_text(prose, count, 75, token_ends=liar)
    assert all(count(c) <= 75 for c in chunks)
