"""Weights resolution: local files, the environment variable, the app cache, and downloads.

Downloads go to a fake Hugging Face Hub on 127.0.0.1 (see FakeHub): the tests never touch the
network. The end-to-end test serves a full-size random-weight ViT-B-32 checkpoint in the
published layout (~600 MB, built once per session) and loads it into a real Encoder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import os
import re
import socket
import threading
import time
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from indexer import weights
from indexer.specs import MOBILECLIP_S2, VIT_B_32, VIT_L_14, ModelSpec
from indexer.weights import (
    WeightsMismatch,
    WeightsUnavailable,
    cache_path,
    resolve_weights,
    sha256_file,
)

pytestmark = pytest.mark.timeout(300)

REV = "0123456789abcdef0123456789abcdef01234567"
REPO = VIT_B_32.hf_repo


# ---------------------------------------------------------------------------------------------
# a fake Hub


class FakeHub:
    """A loopback HTTP server answering what `hf_hub_download` asks for a pinned revision.

    For `GET|HEAD /{repo_id}/resolve/{revision}/{filename}` it answers like the Hub does for an
    LFS file: 200 with `X-Repo-Commit` (the commit), `ETag` and `X-Linked-Etag` (the file's
    sha256, quoted), `X-Linked-Size`, `Content-Length` and `Accept-Ranges`, and the bytes for GET
    (honouring `Range`, which huggingface_hub uses to resume). Unknown repo / revision / file get
    404 with the Hub's `X-Error-Code` header. No Xet headers are sent, so the client falls back
    to plain HTTP. Every request is recorded in `requests`.
    """

    def __init__(self) -> None:
        self.files: dict[tuple[str, str, str], tuple[Path, str]] = {}
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:
                hub._serve(self, body=False)

            def do_GET(self) -> None:
                hub._serve(self, body=True)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def add(self, repo: str, revision: str, filename: str, path: Path, etag: str | None = None):
        """Serve `path`; `etag` defaults to its real sha256 (pass another to make the Hub lie)."""
        self.files[(repo, revision, filename)] = (Path(path), etag or sha256_file(path))

    def count(self) -> int:
        return len(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _serve(self, h: http.server.BaseHTTPRequestHandler, body: bool) -> None:
        self.requests.append((h.command, h.path))
        m = re.fullmatch(r"/(.+?/.+?)/resolve/([^/]+)/(.+)", h.path.split("?")[0])
        if not m:
            return self._error(h, 404, "RepoNotFound")
        repo, rev, name = m.group(1), unquote(m.group(2)), unquote(m.group(3))
        if not any(k[0] == repo for k in self.files):
            return self._error(h, 404, "RepoNotFound")
        if not any(k[:2] == (repo, rev) for k in self.files):
            return self._error(h, 404, "RevisionNotFound")
        if (repo, rev, name) not in self.files:
            return self._error(h, 404, "EntryNotFound", commit=rev)
        path, etag = self.files[(repo, rev, name)]
        size = path.stat().st_size
        start, end = 0, size - 1
        status = 200
        rng = h.headers.get("Range")
        if rng and (rm := re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())):
            start = int(rm.group(1))
            end = int(rm.group(2)) if rm.group(2) else size - 1
            status = 206
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("X-Repo-Commit", rev)
        h.send_header("ETag", f'"{etag}"')
        h.send_header("X-Linked-Etag", f'"{etag}"')
        h.send_header("X-Linked-Size", str(size))
        h.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        h.end_headers()
        if not body:
            return
        try:
            with open(path, "rb") as f:
                f.seek(start)
                left = end - start + 1
                while left > 0 and (chunk := f.read(min(1 << 20, left))):
                    h.wfile.write(chunk)
                    left -= len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _error(h, status: int, code: str, commit: str | None = None) -> None:
        data = f'{{"error": "{code}"}}'.encode()
        h.send_response(status)
        h.send_header("X-Error-Code", code)
        h.send_header("Content-Type", "application/json")
        if commit:
            h.send_header("X-Repo-Commit", commit)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)


@pytest.fixture
def hub():
    h = FakeHub()
    yield h
    h.close()


# ---------------------------------------------------------------------------------------------
# fixtures






@pytest.fixture
def small_file(tmp_path) -> tuple[Path, str]:
    p = tmp_path / "src" / "small.safetensors"
    p.parent.mkdir()
    p.write_bytes(os.urandom(3 * (1 << 20) + 123))  # crosses several 1 MiB chunks
    return p, hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """The suite runs with HF_HUB_OFFLINE=1 (conftest); these tests talk to the loopback hub.

    huggingface_hub reads HF_HUB_OFFLINE once, at import, so the constant is patched too.
    """
    from huggingface_hub import constants

    monkeypatch.delenv(weights.ENV_WEIGHTS, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    weights._verified_here.clear()
    yield
    weights._verified_here.clear()


def spec_for(sha: str, filename: str = VIT_B_32.filename, **kw) -> ModelSpec:
    return dataclasses.replace(VIT_B_32, sha256=sha, revision=REV, filename=filename, **kw)


def closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def files_under(p: Path) -> list[Path]:
    return [f for f in p.rglob("*") if f.is_file()] if p.exists() else []


# ---------------------------------------------------------------------------------------------
# hashing and the pinned values


def test_sha256_file_streams_and_matches_hashlib(small_file):
    path, sha = small_file
    assert sha256_file(path) == sha


def test_vit_b_32_is_pinned_to_a_commit_and_hash():
    assert weights.is_pinned_revision(VIT_B_32.revision)
    assert weights.is_pinned_sha256(VIT_B_32.sha256)
    assert weights.download_url(VIT_B_32) == (
        f"https://huggingface.co/{VIT_B_32.hf_repo}/resolve/{VIT_B_32.revision}/"
        "open_clip_model.safetensors"
    )


# ---------------------------------------------------------------------------------------------
# the full-size download, end to end


def test_download_full_size_checkpoint_then_load_and_reuse_cache(
    vit_ckpt, hub, tmp_path, monkeypatch
):
    ckpt, sha = vit_ckpt
    hub.add(REPO, REV, VIT_B_32.filename, ckpt)
    spec = spec_for(sha)
    cache = tmp_path / "cache"
    seen: list[tuple[int, int]] = []

    got = resolve_weights(
        spec, cache_dir=cache, endpoint=hub.url, progress=lambda d, t: seen.append((d, t))
    )

    size = ckpt.stat().st_size
    assert got == cache_path(spec, cache).resolve()
    assert got.parent == (cache / "models" / "vit-b-32" / sha).resolve()
    assert got.stat().st_size == size
    assert not (cache / "models" / "vit-b-32" / "download").exists()  # staging area cleaned up
    assert hub.count() >= 2 and {m for m, _ in hub.requests} <= {"HEAD", "GET"}
    assert all(p.startswith(f"/{REPO}/resolve/{REV}/") for _, p in hub.requests)
    assert seen and seen[-1] == (size, size)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))

    # the downloaded file loads into a working encoder
    from indexer.model import load_encoder

    enc = load_encoder(spec, got, device="cpu")
    try:
        px = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
        v = enc.encode_images(px)
        assert v.shape == (2, 512) and v.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    finally:
        enc.close()

    # a second start uses the cache without asking the server, and without re-hashing 600 MB
    before = hub.count()
    weights._verified_here.clear()  # as in a fresh process: only the on-disk marker remains
    calls = []
    real = weights.sha256_file
    monkeypatch.setattr(weights, "sha256_file", lambda p: calls.append(p) or real(p))
    again = resolve_weights(spec, cache_dir=cache, endpoint=hub.url)
    assert again == got
    assert hub.count() == before
    assert calls == []


def test_wrong_pinned_hash_downloads_nothing(vit_ckpt, hub, tmp_path):
    ckpt, _ = vit_ckpt
    hub.add(REPO, REV, VIT_B_32.filename, ckpt)
    spec = spec_for("f" * 64)
    with pytest.raises(WeightsMismatch) as ei:
        resolve_weights(spec, cache_dir=tmp_path / "cache", endpoint=hub.url)
    assert "f" * 64 in str(ei.value)
    assert files_under(tmp_path / "cache" / "models" / "vit-b-32") == []
    assert all(m == "HEAD" for m, _ in hub.requests)  # the 600 MB were never fetched


# ---------------------------------------------------------------------------------------------
# downloads with small files (fast)


def test_wrong_downloaded_file_is_deleted_from_our_cache(small_file, hub, tmp_path):
    path, real_sha = small_file
    claimed = hashlib.sha256(b"something else").hexdigest()
    hub.add(REPO, REV, "small.safetensors", path, etag=claimed)  # the server lies about the hash
    spec = spec_for(claimed, filename="small.safetensors")
    cache = tmp_path / "cache"
    with pytest.raises(WeightsMismatch) as ei:
        resolve_weights(spec, cache_dir=cache, endpoint=hub.url)
    msg = str(ei.value)
    assert claimed in msg and real_sha in msg and "deleted" in msg
    assert ei.value.actual == real_sha and ei.value.expected == claimed
    assert files_under(cache / "models" / "vit-b-32") == []
    assert path.exists()  # the source is not ours to delete


def test_damaged_cache_file_is_replaced_by_a_fresh_download(small_file, hub, tmp_path):
    path, sha = small_file
    hub.add(REPO, REV, "small.safetensors", path)
    spec = spec_for(sha, filename="small.safetensors")
    cache = tmp_path / "cache"
    got = resolve_weights(spec, cache_dir=cache, endpoint=hub.url)
    data = bytearray(got.read_bytes())
    data[100] ^= 0xFF
    got.write_bytes(bytes(data))
    os.utime(got, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    weights._verified_here.clear()
    before = hub.count()
    again = resolve_weights(spec, cache_dir=cache, endpoint=hub.url)
    assert again == got and sha256_file(again) == sha
    assert hub.count() > before


@pytest.mark.parametrize("spec", [VIT_L_14, MOBILECLIP_S2], ids=lambda s: s.name)
def test_new_pins_refuse_a_hub_file_with_another_hash(spec, small_file, hub, tmp_path):
    """The real pins of the larger and the small model, against a Hub that serves other bytes at
    the pinned revision: refused on the Hub's hash before any byte is fetched; and when the Hub
    claims the pinned hash but sends other bytes, the download is refused and deleted."""
    path, real_sha = small_file
    cache = tmp_path / "cache"
    hub.add(spec.hf_repo, spec.revision, spec.filename, path)
    with pytest.raises(WeightsMismatch) as ei:
        resolve_weights(spec, cache_dir=cache, endpoint=hub.url)
    assert spec.sha256 in str(ei.value) and real_sha in str(ei.value)
    assert all(m == "HEAD" for m, _ in hub.requests)
    assert files_under(cache / "models" / spec.name) == []

    hub.add(spec.hf_repo, spec.revision, spec.filename, path, etag=spec.sha256)
    with pytest.raises(WeightsMismatch) as ei:
        resolve_weights(spec, cache_dir=cache, endpoint=hub.url)
    assert "deleted" in str(ei.value) and ei.value.actual == real_sha
    assert files_under(cache / "models" / spec.name) == []
    assert path.exists()


def test_unreachable_server_says_how_to_supply_the_file(tmp_path):
    spec = spec_for("a" * 64)
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailable) as ei:
        resolve_weights(spec, cache_dir=tmp_path / "cache", endpoint=closed_port_url())
    assert time.monotonic() - t0 < 10  # no 25 s of retries before telling the user
    msg = str(ei.value)
    for needle in (
        "--weights FILE",
        "MAGPIE_WEIGHTS",
        "Choose weights file",
        VIT_B_32.hf_repo,
        VIT_B_32.filename,
        REV,
        "a" * 64,
        "offline",
    ):
        assert needle in msg, needle
    assert "Traceback" not in msg
    assert files_under(tmp_path / "cache") == []


def test_hf_hub_offline_is_respected(small_file, hub, tmp_path, monkeypatch):
    from huggingface_hub import constants

    path, sha = small_file
    hub.add(REPO, REV, "small.safetensors", path)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsUnavailable, match="HF_HUB_OFFLINE") as ei:
        resolve_weights(
            spec_for(sha, filename="small.safetensors"), cache_dir=tmp_path / "c", endpoint=hub.url
        )
    assert "--weights FILE" in str(ei.value)
    assert hub.count() == 0


def test_unknown_repo_or_file_on_the_hub_is_unavailable(small_file, hub, tmp_path):
    path, sha = small_file
    hub.add(REPO, REV, "other.bin", path)
    spec = spec_for(sha, filename="small.safetensors")
    with pytest.raises(WeightsUnavailable, match="HTTP 404"):
        resolve_weights(spec, cache_dir=tmp_path / "cache", endpoint=hub.url)
    with pytest.raises(WeightsUnavailable, match="HTTP 404"):
        resolve_weights(
            dataclasses.replace(spec, hf_repo="nobody/nothing"),
            cache_dir=tmp_path / "cache",
            endpoint=hub.url,
        )


def test_branch_revision_is_never_downloaded(small_file, hub, tmp_path):
    path, sha = small_file
    hub.add(REPO, "main", "small.safetensors", path)
    spec = dataclasses.replace(spec_for(sha, filename="small.safetensors"), revision="main")
    with pytest.raises(WeightsUnavailable, match="no pinned revision"):
        resolve_weights(spec, cache_dir=tmp_path / "cache", endpoint=hub.url)
    assert hub.count() == 0


def test_unpinned_sha_refuses_everything(small_file, tmp_path):
    path, _ = small_file
    spec = spec_for("PLACEHOLDER_SHA256")
    with pytest.raises(WeightsUnavailable, match="no sha256"):
        resolve_weights(spec, local_file=path, cache_dir=tmp_path / "cache")


def test_no_download_allowed_and_nothing_local(tmp_path):
    with pytest.raises(WeightsUnavailable, match="downloading is turned off") as ei:
        resolve_weights(spec_for("b" * 64), cache_dir=tmp_path / "cache", allow_download=False)
    assert "--weights FILE" in str(ei.value)


# ---------------------------------------------------------------------------------------------
# files the user supplies


def test_local_file_with_the_right_hash(small_file, tmp_path, monkeypatch):
    path, sha = small_file
    cache = tmp_path / "cache"
    got = resolve_weights(spec_for(sha), local_file=path, cache_dir=cache, allow_download=False)
    assert got == path.resolve()
    # remembered on disk: a new process doesn't re-hash an unchanged file
    weights._verified_here.clear()
    monkeypatch.setattr(
        weights, "sha256_file", lambda p: pytest.fail("re-hashed an unchanged, verified file")
    )
    assert resolve_weights(spec_for(sha), local_file=path, cache_dir=cache) == got


def test_local_file_with_the_wrong_hash_is_refused_and_kept(small_file, tmp_path):
    path, sha = small_file
    expected = "c" * 64
    with pytest.raises(WeightsMismatch) as ei:
        resolve_weights(spec_for(expected), local_file=path, cache_dir=tmp_path / "cache")
    msg = str(ei.value)
    assert expected in msg and sha in msg and str(path.resolve()) in msg
    assert path.exists()


def test_changed_local_file_is_hashed_again(small_file, tmp_path):
    path, sha = small_file
    cache = tmp_path / "cache"
    resolve_weights(spec_for(sha), local_file=path, cache_dir=cache)
    path.write_bytes(b"x" + path.read_bytes()[1:])
    weights._verified_here.clear()
    with pytest.raises(WeightsMismatch):
        resolve_weights(spec_for(sha), local_file=path, cache_dir=cache)


def test_missing_local_file_is_unavailable_not_a_download(tmp_path, hub):
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        resolve_weights(
            spec_for("d" * 64), local_file=tmp_path / "nope.safetensors",
            cache_dir=tmp_path / "cache", endpoint=hub.url,
        )
    assert hub.count() == 0


def test_env_variable(small_file, tmp_path, monkeypatch):
    path, sha = small_file
    monkeypatch.setenv("MAGPIE_WEIGHTS", str(path))
    got = resolve_weights(spec_for(sha), cache_dir=tmp_path / "c", allow_download=False)
    assert got == path.resolve()
    with pytest.raises(WeightsMismatch):
        resolve_weights(spec_for("e" * 64), cache_dir=tmp_path / "c", allow_download=False)
    monkeypatch.setenv("MAGPIE_WEIGHTS", str(tmp_path / "missing.safetensors"))
    with pytest.raises(WeightsUnavailable, match="MAGPIE_WEIGHTS"):
        resolve_weights(spec_for(sha), cache_dir=tmp_path / "c", allow_download=False)


def test_order_local_file_then_env_then_cache(small_file, tmp_path, monkeypatch):
    path, sha = small_file
    spec = spec_for(sha)
    cache = tmp_path / "cache"
    cached = cache_path(spec, cache)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())
    env_copy = tmp_path / "env.safetensors"
    env_copy.write_bytes(path.read_bytes())

    assert resolve_weights(spec, cache_dir=cache, allow_download=False) == cached.resolve()
    monkeypatch.setenv("MAGPIE_WEIGHTS", str(env_copy))
    assert resolve_weights(spec, cache_dir=cache, allow_download=False) == env_copy.resolve()
    assert (
        resolve_weights(spec, local_file=path, cache_dir=cache, allow_download=False)
        == path.resolve()
    )


def test_bundled_file_comes_first(small_file, tmp_path, monkeypatch):
    path, sha = small_file
    import indexer.specs as specs_mod

    monkeypatch.setattr(specs_mod, "ASSETS_DIR", path.parent)
    spec = spec_for(sha, bundled=path.name)
    other = tmp_path / "other.bin"
    other.write_bytes(b"nope")
    assert resolve_weights(spec, local_file=other, cache_dir=tmp_path / "c") == path.resolve()
