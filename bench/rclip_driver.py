"""Runs inside bench/.venv-rclip (rclip from PyPI): export, index, query. Prints one JSON line.

Called by bench/vs_rclip.py; not imported by Magpie. rclip 3.x runs CLIP through ONNX Runtime
with models it downloads from a model hub; nothing can be downloaded here, so bench/vs_rclip.py
exports ONNX files in exactly the layout and I/O names rclip loads (`input` -> `output`, at the
`paths` this script reports, plus the BPE vocabulary) from *our* random ViT-B-32 safetensors
checkpoint, and `verify` checks ONNX Runtime reproduces the torch output. rclip then runs its
own code unchanged, except one constant:
its preprocessing targets 256 px (its default model is ViT-B-32-256); we set it to 224 so both
tools run the same architecture on the same input size.

    python rclip_driver.py paths DATADIR
    python rclip_driver.py verify DATADIR REF_IN.npy REF_OUT.npy
    python rclip_driver.py index FOLDER DATADIR [BATCH]
    python rclip_driver.py query FOLDER DATADIR N_QUERIES [FILL_NPY FILL_DIR]
"""
from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def paths(datadir: str) -> dict:
    """Where rclip looks for its model files (Magpie's side writes them there)."""
    from rclip import model_download as md

    return {"visual": os.path.join(datadir, md.MODEL_SUBDIR, md.VISUAL_ONNX),
            "textual": os.path.join(datadir, md.MODEL_SUBDIR, md.TEXTUAL_ONNX),
            "vocab": os.path.join(datadir, md.TOKENIZER_VOCAB)}


def verify(datadir: str, ref_in: str, ref_out: str) -> dict:
    """ONNX Runtime output on the reference input vs the torch output Magpie's side saved."""
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(paths(datadir)["visual"], providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": np.load(ref_in)})[0]
    return {"max_abs_diff_visual": float(np.abs(got - np.load(ref_out)).max())}


def _setup(datadir: str) -> None:
    os.environ["RCLIP_DATADIR"] = datadir
    import rclip.utils.preprocess as pp

    pp.IMAGE_SIZE = 224  # same architecture/input as Magpie's ViT-B-32 (rclip ships ViT-B-32-256)


def _open(folder: str, datadir: str, batch: int):
    from rclip import db, model
    from rclip.main import RClip

    database = db.DB(os.path.join(datadir, "db.sqlite3"))
    m = model.Model()
    m.ensure_downloaded()  # finds the exported files: no download
    rc = RClip(model_instance=m, database=database, indexing_batch_size=batch, exclude_dirs=None)
    return rc, m, database


def index(folder: str, datadir: str, batch: int) -> dict:
    _setup(datadir)
    db_path = os.path.join(datadir, "db.sqlite3")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db_path + suffix):
            os.remove(db_path + suffix)
    rc, m, database = _open(folder, datadir, batch)
    _ = m._session_visual_index  # load the ONNX session before timing (Magpie's model is loaded too)
    t0 = time.perf_counter()
    rc.ensure_index(folder)  # rclip's own indexing: thread-pool decode + ONNX Runtime
    m.release_indexing_resources()
    t1 = time.perf_counter()
    n = database._con.execute("SELECT COUNT(*) FROM images WHERE deleted IS NULL").fetchone()[0]
    rc.close()
    m.close()
    database.close()
    return {"files": n, "seconds": t1 - t0, "rate": n / (t1 - t0)}


def query(folder: str, datadir: str, n_queries: int, fill_npy: str | None,
          fill_dir: str | None) -> dict:
    import numpy as np

    _setup(datadir)
    rc, m, database = _open(folder, datadir, 8)
    directory = folder
    if fill_npy:
        # add synthetic vectors (the same ones Magpie's library holds) under fill_dir
        vecs = np.load(fill_npy, mmap_mode="r")
        con = database._con
        con.execute("DELETE FROM images WHERE filepath LIKE ?", (fill_dir.rstrip("/") + "/%",))
        for start in range(0, len(vecs), 50_000):
            block = np.asarray(vecs[start : start + 50_000], dtype=np.float32)
            con.executemany(
                "INSERT INTO images(deleted, filepath, modified_at, size, vector, indexing, hash) "
                "VALUES (NULL, ?, 0, 0, ?, NULL, ?)",
                [(f"{fill_dir}/IMG_{start + i:07d}.jpg", block[i].tobytes(), f"h{start + i}")
                 for i in range(len(block))],
            )
        con.commit()
        directory = fill_dir
    texts = ["a dog running on the beach", "sunset over the mountains", "birthday cake",
             "my passport photo", "whiteboard with meeting notes", "a red bicycle"]
    rc.search(texts[0], directory, top_k=10)  # warm: ONNX sessions, tokenizer, page cache
    times = []
    for i in range(n_queries):
        t0 = time.perf_counter()
        res = rc.search(texts[i % len(texts)], directory, top_k=10)  # rclip's real search path
        times.append((time.perf_counter() - t0) * 1000)
    n = database._con.execute("SELECT COUNT(*) FROM images WHERE filepath LIKE ? AND deleted IS NULL",
                              (directory.rstrip("/") + "/%",)).fetchone()[0]
    # the text encoder alone, for the breakdown
    t_enc = []
    for i in range(min(n_queries, 20)):
        t0 = time.perf_counter()
        m.compute_text_features([texts[i % len(texts)]])
        t_enc.append((time.perf_counter() - t0) * 1000)
    rc.close()
    m.close()
    database.close()
    return {"items": n, "times_ms": times, "encode_ms": t_enc, "results": len(res)}


def main() -> int:
    cmd = sys.argv[1]
    if cmd == "paths":
        out = paths(sys.argv[2])
    elif cmd == "verify":
        out = verify(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "index":
        out = index(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 8)
    elif cmd == "query":
        fill = sys.argv[5:7] if len(sys.argv) > 6 else (None, None)
        out = query(sys.argv[2], sys.argv[3], int(sys.argv[4]), fill[0], fill[1])
    else:
        raise SystemExit(f"unknown command {cmd}")
    print("RESULT " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
