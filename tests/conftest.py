"""Every test gets its own data, cache and settings dirs; nothing touches the real home."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from fakes import FakeEncoder  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "appdata"
    monkeypatch.setenv("MAGPIE_DATA_DIR", str(data))
    monkeypatch.setenv("MAGPIE_CACHE_DIR", str(tmp_path / "appcache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.delenv("MAGPIE_WEIGHTS", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return data


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="session")
def tiny_encoder():
    """The real bundled tiny model, loaded once: the exact path a real model takes."""
    from indexer.model import load_encoder
    from indexer.specs import TINY_SHAPES
    from indexer.weights import verify_file

    path = verify_file(TINY_SHAPES, TINY_SHAPES.bundled_path())
    enc = load_encoder(TINY_SHAPES, path)
    yield enc
    enc.close()


@pytest.fixture(scope="session")
def shapes_folder(tmp_path_factory: pytest.TempPathFactory):
    """A generated folder of labelled shapes and notes (shared, read-only by convention)."""
    from magpie_demo.shapes import make_demo_folder

    dest = tmp_path_factory.mktemp("shapes") / "Pictures"
    items = make_demo_folder(dest, n_images=96, seed=7)
    return dest, items


@pytest.fixture(scope="session")
def vit_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A full-size random-weight ViT-B-32 in the published layout (one ~600 MB file per
    session): the real loader and download path are exercised without real weights."""
    from indexer.weights import sha256_file

    d = tmp_path_factory.getbasetemp() / "vit-b-32-random"
    ckpt = d / "open_clip_model.safetensors"
    sha_file = d / "sha256"
    if not sha_file.exists():
        import open_clip
        import torch
        from safetensors.torch import save_file

        d.mkdir(exist_ok=True)
        torch.manual_seed(1234)
        model = open_clip.create_model("ViT-B-32", pretrained=None)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt))
        del model
        sha_file.write_text(sha256_file(ckpt))
    return ckpt, sha_file.read_text().strip()


@pytest.fixture(scope="module")
def vit_b32_encoder(vit_ckpt):
    """The random-weight ViT-B-32 loaded on the CPU under a spec pinned to its sha256 (its
    `.spec`), for checks that need a full-size model's numbers (the ONNX exports)."""
    import dataclasses

    from indexer.model import load_encoder
    from indexer.specs import VIT_B_32

    ckpt, sha = vit_ckpt
    enc = load_encoder(dataclasses.replace(VIT_B_32, sha256=sha, revision="0" * 40), ckpt,
                       device="cpu")
    yield enc
    enc.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that had a Milvus server running gets the server's thread stacks and
    log in its report: a call that did not come back shows where the server was."""
    report = yield
    if report.failed and "milvus_server" in sys.modules:
        from milvus_server import RUNNING

        for server in list(RUNNING):
            report.sections.append((f"milvus-lite server {server.address}: threads and log",
                                    server.dump_stacks() + "\n--- log ---\n" + server.log_tail()))
    return report
