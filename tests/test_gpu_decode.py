"""The GPU JPEG path (indexer/gpu_decode.py + Embedder) run on the CPU: the same code with
torchvision's CPU decoder, so selection, orientation, resize and the CPU fallback are tested
on machines without a GPU. Only the CUDA kernel itself is not exercised here."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from indexer import gpu_decode as G
from indexer.decode import load_image
from indexer.pipeline import Embedder, WorkItem

pytest.importorskip("torchvision")


def photo(path, w=320, h=200, orientation=None, mode="RGB", fmt="JPEG"):
    """A gradient with a bright block top-left, so orientation mistakes show."""
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], -1).astype(np.uint8)
    arr[: h // 3, : w // 4] = (250, 20, 20)
    im = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        im = im.convert(mode)
    kw = {}
    if orientation:
        ex = Image.Exif()
        ex[0x0112] = orientation
        ex[306] = "2021:05:06 07:08:09"
        kw["exif"] = ex.tobytes()
    if fmt == "JPEG":
        kw["quality"] = 95
    im.save(path, fmt, **kw)
    return path


def test_only_jpeg_names_take_the_device_path():
    assert G.is_jpeg_name("/a/b/IMG_1.JPG") and G.is_jpeg_name("x.jpeg") and G.is_jpeg_name("y.jfif")
    assert not G.is_jpeg_name("shot.png") and not G.is_jpeg_name("p.heic")


def test_device_path_is_chosen_only_for_cuda(fake_encoder):
    fake_encoder.device = "cpu"
    assert Embedder(fake_encoder)._device_decode_target() is None  # auto, CPU model
    assert Embedder(fake_encoder, gpu_decode=False)._device_decode_target() is None
    assert Embedder(fake_encoder, gpu_decode=True, gpu_device="cpu")._device_decode_target() == "cpu"
    assert not G.gpu_decode_available("cpu")
    fake_encoder.device = "cuda:0"
    import torch

    want = "cuda:0" if torch.cuda.is_available() else None
    assert Embedder(fake_encoder)._device_decode_target() == want


def test_read_jpeg_refuses_what_the_device_cannot_take(tmp_path):
    assert G.read_jpeg(str(photo(tmp_path / "ok.jpg"))) is not None
    assert G.read_jpeg(str(photo(tmp_path / "cmyk.jpg", mode="CMYK"))) is None
    assert G.read_jpeg(str(photo(tmp_path / "png.jpg", fmt="PNG"))) is None
    (tmp_path / "text.jpg").write_text("hello")
    assert G.read_jpeg(str(tmp_path / "text.jpg")) is None
    assert G.read_jpeg(str(tmp_path / "missing.jpg")) is None


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
def test_device_decode_matches_pillow_path(tmp_path, orientation):
    p = str(photo(tmp_path / f"o{orientation}.jpg", orientation=orientation))
    f = G.read_jpeg(p)
    assert f is not None and f.orientation == orientation and f.taken_at is not None
    (px,) = G.decode_batch([f], 64, "cpu")
    ref = load_image(p, 64).pixels
    assert px.shape == ref.shape == (64, 64, 3) and px.dtype == np.uint8
    # same picture, same way up; resampling differs a little (draft + reducing_gap vs antialias)
    assert np.abs(px.astype(int) - ref).mean() < 6  # a wrong orientation differs by > 40


def test_a_bad_file_in_a_batch_costs_only_itself(tmp_path):
    good = [G.read_jpeg(str(photo(tmp_path / f"g{i}.jpg", w=200 + i, h=150))) for i in range(3)]
    data = good[0].data
    broken = G.JpegFile(data[: len(data) // 3], 320, 200, 1, None)  # truncated stream
    out = G.decode_batch([good[0], broken, None, good[1], good[2]], 32, "cpu")
    assert out[1] is None and out[2] is None
    assert all(out[i] is not None and out[i].shape == (32, 32, 3) for i in (0, 3, 4))


def test_pixel_budget_splits_big_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(G, "PIXEL_BUDGET", 100_000)  # two 320x200 images per group
    files = [G.read_jpeg(str(photo(tmp_path / f"b{i}.jpg"))) for i in range(5)]
    out = G.decode_batch(files, 16, "cpu")
    assert all(o is not None for o in out)


def test_embedder_device_path_with_cpu_fallback(tmp_path, fake_encoder):
    paths = [photo(tmp_path / f"ok{i}.jpg", orientation=6 if i == 0 else None) for i in range(5)]
    paths.append(photo(tmp_path / "cmyk.jpg", mode="CMYK"))  # device refuses -> CPU pool
    paths.append(photo(tmp_path / "shot.png", fmt="PNG"))  # not a JPEG -> CPU pool
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(paths[1].read_bytes()[:300])  # header ok, data cut -> CPU says why
    paths.append(bad)
    items = [WorkItem(i, str(p), "image") for i, p in enumerate(paths)]
    emb = Embedder(fake_encoder, workers=0, batch_size=3, gpu_decode=True, gpu_device="cpu")
    done = {e.item.file_id: e for b in emb.run(items) for e in b}
    assert sorted(done) == list(range(len(paths)))
    assert all(done[i].error is None and len(done[i].chunks) == 1 for i in range(7))
    assert done[7].error == "truncated or corrupt image data"  # the CPU path's own message
    assert done[0].taken_at is not None
    # the device path and the CPU path agree on what a file looks like (fake vector = mean colour)
    cpu = {e.item.file_id: e for b in Embedder(fake_encoder, workers=0, batch_size=3).run(items)
           for e in b}
    for i in range(5):
        a, b = done[i].chunks[0].vector, cpu[i].chunks[0].vector
        assert float(np.dot(a, b)) > 0.999
