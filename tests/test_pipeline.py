"""The decode pool: real worker processes, crash isolation, pause and cancel."""
from __future__ import annotations

import threading
import time

from crashy import crashing_decode
from helpers import solid

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
