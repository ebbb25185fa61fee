"""The multilingual model (SigLIP i18n): its pin, its own tokenizer fetched at the pinned
revision, notes in other languages chunked to its window, its text tower on ONNX Runtime, its
squash resize, and libraries made with it.

Real weights and the real tokenizer can't be downloaded here. The tests build open_clip's real
architecture ViT-B-16-SigLIP-i18n-256 with random weights, with one change: the token table has
as many rows as a small generated tokenizer of the same kind has pieces (tests/fake_tokenizer.py)
instead of 250,000 (every layer, width, mask and pooling as published; ~720 MB instead of
1.48 GB). Both are served by the loopback fake Hub of test_weights.py.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
from fake_tokenizer import write_fake_tokenizer
from test_weights import FakeHub, files_under

from indexer import weights
from indexer.specs import SIGLIP_I18N, VIT_B_32, ModelSpec
from indexer.tokenizer_files import (TokenizerChanged, TokenizerUnavailable, resolve_tokenizer,
                                     tokenizer_dir, verified_tokenizer_dir)
from indexer.model_files import resolve_model_files as resolve_weights
from indexer.weights import WeightsMismatch, sha256_file

pytestmark = pytest.mark.timeout(600)

GERMAN = ("Quittung vom Baumarkt: Schrauben, Dübel und eine neue Wasserpumpe für die Küche. "
          "Die Rechnung des Klempners kam zwei Wochen später, mit Grüßen aus München. ") * 6
JAPANESE = "赤い自転車から見た山の夕日。浜辺で夕方に犬の写真を撮りました。" * 12
JAPANESE_NO_BREAKS = "金物店の領収書と配管工の請求書" * 30  # no space, no sentence end


@pytest.fixture
def hub():
    h = FakeHub()
    yield h
    h.close()


@pytest.fixture(autouse=True)
def _hub_online(monkeypatch):
    """The suite runs offline (conftest); these tests talk to the loopback hub only."""
    from huggingface_hub import constants

    monkeypatch.delenv(weights.ENV_WEIGHTS, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    weights._verified_here.clear()
    yield
    weights._verified_here.clear()


@pytest.fixture(scope="module")
def tok_files(tmp_path_factory) -> Path:
    return write_fake_tokenizer(tmp_path_factory.mktemp("siglip-tokenizer"))


@pytest.fixture(scope="module")
def small_vocab(tmp_path_factory, tok_files) -> tuple[ModelSpec, Path]:
    """(spec, checkpoint): random weights in the real architecture, the token table cut to the
    generated tokenizer's vocabulary, saved as the pinned file type (safetensors)."""
    import open_clip
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_file(str(tok_files / "tokenizer.json")).get_vocab_size()
    d = tmp_path_factory.mktemp("siglip-random")
    cfg = open_clip.get_model_config(SIGLIP_I18N.arch)
    cfg["text_cfg"]["vocab_size"] = vocab
    name = f"{SIGLIP_I18N.arch}-vocab{vocab}"
    (d / f"{name}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(d / f"{name}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(name, pretrained=None)
    ckpt = d / SIGLIP_I18N.filename
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt))
    del model
    return dataclasses.replace(SIGLIP_I18N, arch=name, sha256=sha256_file(ckpt)), ckpt


def serve_tokenizer(hub, spec: ModelSpec, tok_files: Path) -> None:
    for name in spec.tokenizer.files:
        hub.add(spec.hf_repo, spec.revision, name, tok_files / name)


# -- the pin -------------------------------------------------------------------------------------


def test_the_pin_is_the_corroborated_one():
    """Revision and sha256 as the Hub's LFS pointer page shows them (see indexer/specs.py)."""
    assert SIGLIP_I18N.revision == "ec35f9450b91a8ea263a50e31f55ae069069d1df"
    assert SIGLIP_I18N.sha256 == \
        "0dca7e40ddcc0c89c39275226bd8609d96c60b1605bc1ae612a68f02170f14ce"
    assert SIGLIP_I18N.filename == "open_clip_model.safetensors"  # never the pickle .bin
    assert weights.download_url(SIGLIP_I18N) == (
        "https://huggingface.co/timm/ViT-B-16-SigLIP-i18n-256/resolve/"
        "ec35f9450b91a8ea263a50e31f55ae069069d1df/open_clip_model.safetensors")
    # the tokenizer and its cleaning are part of what the vectors are
    assert SIGLIP_I18N.identity()["tokenizer"]["revision"] == SIGLIP_I18N.revision
    assert SIGLIP_I18N.identity()["tokenizer"]["clean"] == "canonicalize"


def test_wrong_weights_from_the_hub_are_refused_before_the_tokenizer(hub, tmp_path, tok_files):
    """Other bytes at the pinned revision: refused on the Hub's hash with HEAD requests only,
    at the pinned commit; nothing is cached, not even the tokenizer."""
    path = tmp_path / "other.safetensors"
    path.write_bytes(os.urandom(1 << 20))
    real_sha = sha256_file(path)
    spec = SIGLIP_I18N
    hub.add(spec.hf_repo, spec.revision, spec.filename, path)
    serve_tokenizer(hub, spec, tok_files)
    cache = tmp_path / "cache"
    with pytest.raises(WeightsMismatch) as ei:
        resolve_weights(spec, cache_dir=cache, endpoint=hub.url)
    assert spec.sha256 in str(ei.value) and real_sha in str(ei.value)
    assert hub.requests and all(m == "HEAD" for m, _ in hub.requests)
    assert all(p.startswith(f"/{spec.hf_repo}/resolve/{spec.revision}/") for _, p in hub.requests)
    assert files_under(cache / "models" / spec.name) == []


# -- download, load, and the text tower on ONNX Runtime ------------------------------------------


def test_download_at_the_pinned_revision_then_onnx_text_equals_open_clip(small_vocab, tok_files,
                                                                         hub, tmp_path):
    import torch

    from indexer.model import load_encoder, text_tokenizer
    from indexer.text_runtime import export_text_tower, load_text_runtime

    spec, ckpt = small_vocab
    hub.add(spec.hf_repo, spec.revision, spec.filename, ckpt)
    serve_tokenizer(hub, spec, tok_files)
    cache = tmp_path / "cache"

    got = resolve_weights(spec, cache_dir=cache, endpoint=hub.url)

    assert sha256_file(got) == spec.sha256
    # every file came from the pinned commit, never a branch
    assert all(p.startswith(f"/{spec.hf_repo}/resolve/{spec.revision}/") for _, p in hub.requests)
    asked = {p.rsplit("/", 1)[1] for m, p in hub.requests if m == "GET"}
    assert asked == {spec.filename, *spec.tokenizer.files}
    folder, hashes = verified_tokenizer_dir(spec, cache)
    assert folder == tokenizer_dir(spec, cache)
    assert hashes == {n: sha256_file(tok_files / n) for n in spec.tokenizer.files}
    assert not (cache / "models" / spec.name / "download-tokenizer").exists()

    enc = load_encoder(spec, got, device="cpu", cache_dir=cache)
    try:
        meta = export_text_tower(spec, enc._model, cache, tokenizer=enc._tokenizer)
        assert meta is not None and meta["pool"] == "last"
        assert meta["max_abs_diff"] <= 1e-5
        runtime = load_text_runtime(spec, cache, tokenizer=text_tokenizer(spec, cache))
        assert runtime is not None
        texts = ["Ein Foto eines Hundes am Strand", "浜辺で夕方に犬の写真", "a red bicycle", GERMAN]
        ids = runtime.tokens(texts)
        assert ids.shape == (4, 64)
        with torch.no_grad():  # open_clip's own encode_text on the same ids
            ref = enc._model.encode_text(torch.from_numpy(ids)).float().numpy()
        assert float(np.abs(runtime.features(ids) - ref).max()) <= 1e-5
        # and the unit vectors a search uses, torch path against ONNX Runtime, batched or not
        want = enc.encode_texts(texts)
        assert float(np.abs(runtime.encode_texts(texts) - want).max()) <= 1e-5
        assert float(np.abs(runtime.encode_texts(texts[1:2])[0] - want[1]).max()) <= 1e-5
        # pictures: the 256 px input, 768-d unit vectors
        px = np.random.default_rng(0).integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
        img = enc.encode_images(px)
        assert img.shape == (2, 768)
        np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)
    finally:
        enc.close()


# -- the tokenizer files ------------------------------------------------------------------------


def test_tokenizer_files_are_checked_on_every_load(hub, tmp_path, tok_files):
    spec = SIGLIP_I18N
    serve_tokenizer(hub, spec, tok_files)
    cache = tmp_path / "cache"
    folder, hashes = resolve_tokenizer(spec, cache_dir=cache, endpoint=hub.url)
    before = hub.count()
    assert resolve_tokenizer(spec, cache_dir=cache, endpoint=hub.url) == (folder, hashes)
    assert hub.count() == before  # the cache answered

    # a file changed after its first download: refused on load, named with both hashes
    path = folder / "tokenizer_config.json"
    stamp = path.stat()
    path.write_text(path.read_text("utf-8").replace("64", "77"), "utf-8")
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # same size and time: re-hashed
    assert path.stat().st_size == stamp.st_size
    with pytest.raises(TokenizerChanged) as ei:
        verified_tokenizer_dir(spec, cache)
    assert hashes["tokenizer_config.json"] in str(ei.value) and "Traceback" not in str(ei.value)
    with pytest.raises(TokenizerChanged):
        resolve_tokenizer(spec, cache_dir=cache, allow_download=False)
    # with downloads allowed, the damaged copy is replaced by the pinned revision's file
    again, hashes2 = resolve_tokenizer(spec, cache_dir=cache, endpoint=hub.url)
    assert hashes2 == hashes and hub.count() > before


def test_missing_tokenizer_offline_says_where_to_get_it(tmp_path):
    with pytest.raises(TokenizerUnavailable) as ei:
        resolve_tokenizer(SIGLIP_I18N, cache_dir=tmp_path, allow_download=False)
    msg = str(ei.value)
    assert f"/resolve/{SIGLIP_I18N.revision}/tokenizer.json" in msg
    assert str(tokenizer_dir(SIGLIP_I18N, tmp_path)) in msg
    assert isinstance(ei.value, weights.WeightsUnavailable)  # the app offers "Download"


# -- the tokenizer, chunking and the query notice ------------------------------------------------


@pytest.fixture
def lazy(hub, tmp_path, tok_files):
    """A LazyEncoder for SigLIP i18n whose tokenizer files were downloaded; no model loaded."""
    from indexer.lazy_encoder import LazyEncoder

    serve_tokenizer(hub, SIGLIP_I18N, tok_files)
    resolve_tokenizer(SIGLIP_I18N, cache_dir=tmp_path, endpoint=hub.url)
    enc = LazyEncoder(SIGLIP_I18N, tmp_path / "unused.safetensors", cache_dir=tmp_path)
    yield enc
    assert enc.loaded == "none"  # tokenizing never loads a model
    enc.close()


def test_cleaning_is_open_clips():
    """open_clip's "canonicalize" cleaning for SigLIP: ftfy, HTML entities, punctuation and
    case; checked against open_clip's own function on mixed texts."""
    from open_clip.tokenizer import get_clean_fn

    from indexer.hub_tokenizer import CLEANERS

    theirs = get_clean_fn("canonicalize")
    for text in ["Grüße aus MÜNCHEN!", "東京タワー、富士山。", "it&amp;s a_b  (c) — «d»",
                 "Café crème brûlée; naïve façade", "  ", "صورة كلب على الشاطئ"]:
        assert CLEANERS["canonicalize"](text) == theirs(text), text


def test_model_input_is_cut_at_the_window_with_the_end_token_kept(lazy):
    tok = lazy._text_tokenizer()
    assert tok.special_tokens == 1 and lazy.max_text_tokens == 63  # the end token only
    eos = tok.token_to_id("</s>")
    short, long_ = tok(["Ein Hund", GERMAN])
    n = len(tok.encode("Ein Hund"))
    assert list(short[:n + 1]) == tok.encode("Ein Hund") + [eos]
    assert (short[n + 1:] == tok.pad_token_id).all()
    assert list(long_[:63]) == tok.encode(GERMAN)[:63] and long_[63] == eos


@pytest.mark.parametrize("note", [GERMAN, JAPANESE, JAPANESE_NO_BREAKS],
                         ids=["german", "japanese", "japanese-no-breaks"])
def test_notes_in_other_languages_are_chunked_within_the_window(lazy, note):
    from indexer.chunking import chunk_text

    limit = lazy.max_text_tokens
    assert lazy.token_count(note) > 3 * limit  # several chunks' worth
    chunks = chunk_text(note, lazy.token_count, limit)
    assert len(chunks) >= 4
    assert all(lazy.token_count(c) <= limit for c in chunks)
    # no text lost: the chunks hold every character of the note, in order
    assert "".join("".join(chunks).split()) == "".join(note.split())
    # each chunk reaches the model whole: its end token is inside the window
    eos = lazy._text_tokenizer().token_to_id("</s>")
    ids = lazy._text_tokenizer()(chunks)
    for c, row in zip(chunks, ids):
        assert row[lazy.token_count(c)] == eos


def test_a_query_longer_than_the_window_is_flagged(lazy, tmp_path):
    from indexer.library import Library
    from indexer.query import Term
    from indexer.search import Searcher

    with Library.open(tmp_path / "lib", SIGLIP_I18N) as lib:
        s = Searcher(lib, lazy)
        assert not s.truncated([Term(text="Ein Hund am Strand", weight=1.0)])
        assert s.truncated([Term(text=GERMAN, weight=1.0)])
        assert s.truncated([Term(text=JAPANESE, weight=1.0)])


# -- libraries ----------------------------------------------------------------------------------


def test_a_library_made_with_it_refuses_another_models_vectors(tmp_path, lazy):
    from indexer.library import Library, ModelMismatch, TokenizerDiffers

    root = tmp_path / "lib"
    with Library.open(root, SIGLIP_I18N) as lib:
        assert lib.folder.name == SIGLIP_I18N.fingerprint()
        lib.check_tokenizer(lazy.tokenizer_sha256)  # the first use records the files' hashes
    with pytest.raises(ModelMismatch) as ei:
        Library.open(root, VIT_B_32)
    assert SIGLIP_I18N.name in str(ei.value)

    with Library.open(root, SIGLIP_I18N) as lib:
        lib.check_tokenizer(lazy.tokenizer_sha256)  # the same files: fine
        other = dict(lazy.tokenizer_sha256, **{"tokenizer.json": "0" * 64})
        with pytest.raises(TokenizerDiffers):
            lib.check_tokenizer(other)


# -- the squash resize --------------------------------------------------------------------------


def _striped(path: Path, w: int = 400, h: int = 100) -> Path:
    """Grey, with a red band at the far left edge: a centre crop loses it, a squash keeps it."""
    from PIL import Image

    a = np.full((h, w, 3), 128, np.uint8)
    a[:, : w // 10] = (255, 0, 0)
    Image.fromarray(a).save(path)
    return path


def test_squash_keeps_the_whole_picture_and_strips_agree(tmp_path):
    from indexer.decode import load_image

    p = _striped(tmp_path / "wide.png")
    squash = load_image(str(p), 32, "bicubic", "squash").pixels
    crop = load_image(str(p), 32, "bicubic").pixels
    assert squash[:, 0, 0].min() > 200 and squash[:, 0, 1].max() < 50  # the band is there
    assert crop[:, 0, 0].max() < 200  # the shortest-side crop cut it off
    big = _striped(tmp_path / "big.png", 2400, 600)
    whole = load_image(str(big), 32, "bicubic", "squash").pixels
    strips = load_image(str(big), 32, "bicubic", "squash", strip_above=10_000).pixels
    assert np.array_equal(whole, strips)


def test_the_decoder_gets_the_models_resize_mode(tmp_path):
    """Decode workers fit pictures the way the spec says (SigLIP: squash), and the GPU decoder,
    which only crops, is not used for it."""
    from indexer.pipeline import Embedder, WorkItem

    class Rec:
        device, dim, max_text_tokens = "cpu", 4, 63
        image_size, interpolation, resize_mode = 32, "bicubic", "squash"
        seen: list = []

        def encode_images(self, pixels):
            self.seen.extend(pixels)
            return np.tile(np.array([1, 0, 0, 0], np.float32), (len(pixels), 1))

    from indexer.decode import load_image

    p = _striped(tmp_path / "wide.png")
    enc = Rec()
    emb = Embedder(enc, workers=1, batch_size=4, gpu_decode=True, gpu_device="cpu")
    assert emb._device_decode_target() is None
    done = [e for b in emb.run([WorkItem(1, str(p), "image")]) for e in b]
    assert done[0].error is None
    assert np.array_equal(enc.seen[0], load_image(str(p), 32, "bicubic", "squash").pixels)


def test_the_query_notice_names_the_models_own_window(lazy, tmp_path):
    from app.search_page import cut_notice, window_tokens
    from indexer.lazy_encoder import LazyEncoder
    from indexer.query_feedback import cut_terms

    assert window_tokens(lazy) == 64
    assert window_tokens(LazyEncoder(VIT_B_32, tmp_path / "x")) == 77
    cut = tuple(cut_terms(f"Hund + {JAPANESE}", lazy))
    assert cut == (JAPANESE,)
    assert "first 64 tokens" in cut_notice(cut, window_tokens(lazy))
