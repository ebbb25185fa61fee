"""The CPU plan (indexer/cpu_budget.py) from injected readings: what counts as other work now,
and who samples it when. Deterministic: fake counters, a fake sleep, no timing asserts."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from indexer import cpu_budget
from indexer.cpu_budget import CpuTimes, other_busy, parse_proc_stat, plan, sample_other_busy

STAT = """cpu  1000 200 300 5000 40 0 10 5 0 0
cpu0 500 100 150 2500 20 0 5 2 0 0
cpu1 500 100 150 2500 20 0 5 3 0 0
intr 1 2 3
"""


def readings(*times: CpuTimes):
    """A `read` that returns the given readings in turn, and a `sleep` that records calls."""
    it = iter(times)
    slept: list[float] = []
    return (lambda: next(it)), slept.append, slept


def test_proc_stat_counts_user_system_irq_steal_as_busy_and_nice_apart():
    busy, niced = parse_proc_stat(STAT, 0.01)
    assert busy == pytest.approx((1000 + 300 + 0 + 10 + 5) * 0.01)
    assert niced == pytest.approx(200 * 0.01)
    assert parse_proc_stat("intr 1 2\n", 0.01) is None
    assert parse_proc_stat("cpu 1 2 3\n", 0.01) is None  # too few fields: can't say


def test_a_job_that_just_finished_does_not_halve_the_plan(monkeypatch):
    """Regression (issue 12): the 1-minute load average still read ~1.5 after the previous
    run ended, so a quiet 2-core box ran 1 decoder + 1 model thread. The plan now reads what
    the cores do now: idle counters give every core, whatever the load average says."""
    monkeypatch.setattr(os, "getloadavg", lambda: (1.9, 1.5, 0.8), raising=False)
    idle = (CpuTimes(10.0, busy=100.0, niced=5.0, own=1.0),
            CpuTimes(10.15, busy=100.01, niced=5.0, own=1.0))  # a tick of stray work
    read, sleep, _ = readings(*idle)
    monkeypatch.setattr(cpu_budget, "read_cpu_times", read)
    monkeypatch.setattr(cpu_budget.time, "sleep", sleep)
    p = plan(cores=2)
    assert (p.free, p.decode_workers, p.model_threads) == (2, 2, 2)


def test_real_concurrent_load_still_splits_the_free_cores():
    # one other process kept a core busy over the whole 0.2 s sample
    read, sleep, slept = readings(CpuTimes(0.0, 50.0, 0.0, 2.0), CpuTimes(0.2, 50.2, 0.0, 2.0))
    load = sample_other_busy(0.2, read=read, sleep=sleep)
    assert load == pytest.approx(1.0) and slept == [0.2]
    p = plan(cores=2, load=load)
    assert (p.free, p.decode_workers, p.model_threads) == (1, 1, 1)
    two = plan(cores=2, load=2.0)  # both cores taken: still one of each, never none
    assert (two.decode_workers, two.model_threads) == (1, 1)
    eight = plan(cores=8, load=3.0)  # five free: split, never more than free
    assert eight.decode_workers + eight.model_threads == eight.free == 5
    assert plan(cores=8, load=0.0).model_threads == 8


def test_this_process_own_work_is_not_other_work():
    # the whole system's busy time over the sample is this process's own (its threads)
    before, after = CpuTimes(0.0, 10.0, 0.0, 3.0), CpuTimes(0.5, 10.9, 0.0, 3.9)
    assert other_busy(before, after) == pytest.approx(0.0)
    # ... and half a core more was someone else's
    after = CpuTimes(0.5, 11.15, 0.0, 3.9)
    assert other_busy(before, after) == pytest.approx(0.5)


def test_niced_work_yields_to_a_normal_priority_run_but_not_to_a_niced_one():
    # a nice-10 busy loop over 0.2 s; this process did 0.05 s of its own work
    normal_before, normal_after = CpuTimes(0.0, 5.0, 1.0, 0.0), CpuTimes(0.2, 5.05, 1.2, 0.05)
    assert other_busy(normal_before, normal_after, niceness=0) == pytest.approx(0.0)
    # the window's indexing thread runs at nice 5: the loop still yields to it
    assert other_busy(normal_before, normal_after, niceness=5) == pytest.approx(0.0)
    # run niced itself, this process's time lands in the niced column and the loop counts
    niced_before, niced_after = CpuTimes(0.0, 5.0, 1.0, 0.0), CpuTimes(0.2, 5.0, 1.25, 0.05)
    assert other_busy(niced_before, niced_after, niceness=10) == pytest.approx(1.0)


def test_no_counters_means_every_core_is_free():
    read, sleep, slept = readings(None)  # type: ignore[arg-type]
    assert sample_other_busy(read=read, sleep=sleep) == 0.0
    assert slept == []  # nothing to wait for
    assert plan(cores=4, load=0.0).decode_workers == 4
    assert other_busy(CpuTimes(1.0, 0, 0, 0), CpuTimes(1.0, 5, 0, 0)) == 0.0  # no time passed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")
def test_the_live_counters_read_on_linux():
    a = cpu_budget.read_cpu_times()
    b = cpu_budget.read_cpu_times()
    assert a is not None and b is not None
    assert b.at >= a.at and b.busy >= a.busy and b.niced >= a.niced and b.own >= a.own


def test_a_fresh_plan_is_sampled_per_job_and_reused_when_the_model_loads(monkeypatch):
    """The decode pool asks for a fresh plan when a job starts; the model, loading a moment
    later with the job's decoders running, reuses it (a new sample would count them)."""
    loads = iter([0.0, 1.0])
    calls: list[float] = []

    def fake_sample() -> float:
        calls.append(1)
        return next(loads)

    monkeypatch.setattr(cpu_budget, "_current", None)
    monkeypatch.setattr(cpu_budget, "usable_cores", lambda: 2)
    monkeypatch.setattr(cpu_budget, "sample_other_busy", fake_sample)
    first = cpu_budget.current_plan(fresh=True)
    assert cpu_budget.current_plan() is first and len(calls) == 1
    assert first.model_threads == 2
    second = cpu_budget.current_plan(fresh=True)  # the next job of a long-lived window
    assert len(calls) == 2 and (second.decode_workers, second.model_threads) == (1, 1)
    assert cpu_budget.current_plan() is second


# -- who samples, and when ---------------------------------------------------------------------
def _count_samples(monkeypatch, load: float, cores: int = 2) -> list[int]:
    calls: list[int] = []

    def fake_sample() -> float:
        calls.append(1)
        return load

    monkeypatch.setattr(cpu_budget, "_current", None)
    monkeypatch.setattr(cpu_budget, "usable_cores", lambda: cores)
    monkeypatch.setattr(cpu_budget, "sample_other_busy", fake_sample)
    return calls


def test_cpu_tuning_leaves_the_workers_to_the_job_and_settings_still_win(monkeypatch):
    from app.settings import Settings
    from app.wiring import tuning_for

    calls = _count_samples(monkeypatch, 0.0)
    assert tuning_for("cpu", Settings()).workers is None
    assert tuning_for("cpu", Settings(workers=3)).workers == 3
    assert calls == []  # opening a job (a rescan with nothing new) samples nothing


def test_the_decode_pool_is_sized_from_a_fresh_plan_only_when_pictures_come(
        tmp_path, fake_encoder, monkeypatch):
    from helpers import solid

    from indexer.pipeline import Embedder, WorkItem

    calls = _count_samples(monkeypatch, load=1.0)  # one of two cores busy: one decoder
    note = tmp_path / "n.txt"
    note.write_text("a note about boats")
    emb = Embedder(fake_encoder, batch_size=4)
    done = [e for b in emb.run([WorkItem(0, str(note), "text")]) for e in b]
    assert len(done) == 1 and calls == [] and emb.workers is None  # notes: no sample

    items = [WorkItem(i, str(solid(tmp_path / f"p{i}.png", (i * 40, 9, 9))), "image")
             for i in range(5)]
    emb = Embedder(fake_encoder, batch_size=4)
    done = [e for b in emb.run(items) for e in b]
    assert sorted(e.item.file_id for e in done) == list(range(5))
    assert all(e.error is None for e in done)
    assert calls == [1] and emb.workers == 1
    assert cpu_budget.current_plan().model_threads == 1  # the model reuses that reading
    assert calls == [1]


def test_the_image_session_threads_sleep_instead_of_spinning(monkeypatch):
    """ONNX Runtime's default spin-wait burns the cores the decoders (and other programs)
    need; the image session turns it off, on the thread count the plan gave."""
    import onnxruntime as ort

    from indexer.image_runtime import ExportPaths, OnnxImageEncoder
    from indexer.specs import TINY_SHAPES

    seen = {}

    class FakeSession:
        def __init__(self, path, sess_options=None, providers=None):
            seen["opts"] = sess_options

    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    paths = ExportPaths(Path("x.onnx"), Path("x.json"))  # never opened: the session is fake
    OnnxImageEncoder(TINY_SHAPES, paths, {"onnxruntime": ort.__version__}, threads=1)
    opts = seen["opts"]
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.intra_op_num_threads == 1
