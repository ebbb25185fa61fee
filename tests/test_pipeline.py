"""The decode pool: real worker processes, crash isolation, pause and cancel."""
from __future__ import annotations

import os
import threading
import time

import pytest
from crashy import crashing_decode, hungry_decode
from helpers import solid
from PIL import Image

from indexer.jobs import Cancelled, JobControl
from indexer.pipeline import CRASH_REASON, Embedder, WorkItem


def items_for(folder, n, crash_at=()):
    out = []
    for i in range(n):
        name = f"crash{i}.png" if i in crash_at else f"img{i}.png"
        p = solid(folder / name, (i * 10 % 255, 50, 100))
        out.append(WorkItem(i, str(p), "image"))
    return out


def test_pool_decodes_everything_in_batches(tmp_path, fake_encoder):
    items = items_for(tmp_path, 21)
    batches = list(Embedder(fake_encoder, workers=2, batch_size=8).run(items))
    done = [e for b in batches for e in b]
    assert sorted(e.item.file_id for e in done) == list(range(21))
    assert all(e.error is None and len(e.chunks) == 1 for e in done)
    assert max(len(b) for b in batches) <= 8


def test_a_dying_worker_costs_one_file(tmp_path, fake_encoder):
    items = items_for(tmp_path, 12, crash_at=(5,))
    emb = Embedder(fake_encoder, workers=2, batch_size=4, decode_job=crashing_decode)
    done = {e.item.file_id: e for b in emb.run(items) for e in b}
    assert sorted(done) == list(range(12))
    assert done[5].error == CRASH_REASON
    assert all(done[i].error is None for i in done if i != 5)


def test_a_picture_over_the_memory_budget_costs_that_file_only(tmp_path, fake_encoder):
    """Workers get the Embedder's decode budget: a picture that would need more is refused
    before decoding, with the figures, and the rest of the batch is embedded."""
    items = items_for(tmp_path, 6)
    big = tmp_path / "big.png"
    Image.new("RGBA", (1000, 1000), (200, 40, 40, 128)).save(big)  # 4 MB decoded, 4 KB file
    items.append(WorkItem(6, str(big), "image"))
    emb = Embedder(fake_encoder, workers=1, batch_size=4, decode_budget_bytes=2 * 1024 * 1024)
    done = {e.item.file_id: e for b in emb.run(items) for e in b}
    assert sorted(done) == list(range(7))
    assert done[6].error.startswith("needs about ")
    assert done[6].error.endswith(" MB to decode, more than the 2 MB budget of a decode worker")
    assert all(done[i].error is None for i in range(6))


def test_a_decode_that_outgrows_the_worker_cap_costs_one_file(tmp_path, fake_encoder):
    """The estimate is not the only guard: each worker's data segment is capped a little
    above its budget, so a decoder that asks for more gets MemoryError (one file, a clear
    reason) where it would otherwise grow until the OOM killer ends the run. The same worker
    then decodes the files after it."""
    items = items_for(tmp_path, 8)
    hungry = solid(tmp_path / "hungry.png", (10, 20, 30))
    items.insert(3, WorkItem(99, str(hungry), "image"))
    emb = Embedder(fake_encoder, workers=1, batch_size=4, decode_job=hungry_decode,
                   decode_budget_bytes=64 * 1024 * 1024)
    done = {e.item.file_id: e for b in emb.run(items) for e in b}
    assert sorted(done) == [*range(8), 99]
    assert done[99].error == ("needed more memory to decode than the 64 MB budget of a decode "
                              "worker")
    assert all(done[i].error is None and len(done[i].chunks) == 1 for i in range(8))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("cancel", [False, True])
def test_no_decode_worker_outlives_the_run(tmp_path, fake_encoder, cancel):
    """When run() returns (or raises Cancelled), its workers are gone: the CLI ends with
    os._exit, and a worker still waiting to be told to stop lived on for ever, holding the
    command's stdout/stderr open, so `out=$(magpie index …)` never returned."""
    control = JobControl()
    emb = Embedder(fake_encoder, workers=2, batch_size=4, control=control)
    pids: list[int] = []
    gen = emb.run(items_for(tmp_path, 24))
    next(gen)
    pids = [p.pid for p in emb._pool._processes.values()]
    assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    if cancel:
        control.cancel()
        with pytest.raises(Cancelled):
            list(gen)
    else:
        list(gen)
    assert emb._pool is None
    assert [pid for pid in pids if _alive(pid)] == []


class ParkedControl(JobControl):
    """A JobControl that says when a paused job has stopped at a checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.parked = threading.Event()

    def checkpoint(self) -> None:
        if self.paused:
            self.parked.set()
        super().checkpoint()


def test_pause_holds_and_cancel_stops(tmp_path, fake_encoder):
    items = items_for(tmp_path, 40)
    control = ParkedControl()
    emb = Embedder(fake_encoder, workers=0, batch_size=4, control=control)
    seen = []
    gen = emb.run(items)
    seen += next(gen)
    control.pause()
    result: dict = {}

    def consume():
        try:
            for b in gen:
                seen.extend(b)
        except Cancelled:
            result["cancelled"] = True

    t = threading.Thread(target=consume)
    t.start()
    # wait for the event, not for a guess at how long a busy machine takes: the run is parked
    # in a checkpoint; from then on nothing more is encoded or delivered while paused
    assert control.parked.wait(30), "the paused run never reached a checkpoint"
    paused_count = len(seen)
    time.sleep(0.3)
    assert len(seen) == paused_count == fake_encoder.images_encoded  # nothing moves
    control.cancel()
    t.join(5)
    assert result.get("cancelled") and len(seen) < 40


def test_text_notes_are_chunked_and_embedded(tmp_path, fake_encoder):
    long = "\n\n".join(f"Paragraph {i}. " + "word " * 30 for i in range(6))
    p = tmp_path / "long.md"
    p.write_text(long)
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02" * 100)
    items = [WorkItem(1, str(p), "text"), WorkItem(2, str(tmp_path / "bin.txt"), "text")]
    done = {e.item.file_id: e for b in Embedder(fake_encoder, workers=0).run(items) for e in b}
    assert len(done[1].chunks) >= 3
    assert all(fake_encoder.token_count(c.text) <= 75 for c in done[1].chunks)
    assert done[2].error == "binary data, not text"
