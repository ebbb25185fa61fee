"""How many decode processes and model threads an indexing run should use on a CPU box.

Why: the fixed "every core decodes, the model uses every core too" rule is the fastest on an
idle desktop, but on a box already busy with other work it fell to 0.43-0.62x rclip (issue 12):
the model's threads wait at every barrier for a thread that another process preempted. So the
plan reads the cores this process may run on (`os.sched_getaffinity`, which honours taskset
and container CPU sets) and how many of them other work keeps busy (the 1-minute load
average, read before this run adds its own), and:

* when (nearly) every core is free: decode workers = model threads = cores, as before;
* otherwise: the free cores are split between decoding and the model, at least one each, so
  nobody waits on a preempted thread.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class CpuPlan:
    cores: int  # cores this process may run on
    free: int  # of those, not kept busy by other work
    decode_workers: int
    model_threads: int


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS / Windows have no affinity call
        return max(1, os.cpu_count() or 1)


def other_load() -> float:
    """Runnable processes over the last minute (0 when the platform can't say)."""
    try:
        return max(0.0, os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def plan(cores: int | None = None, load: float | None = None) -> CpuPlan:
    """The split for `cores` usable cores under `load` (both read from the system if None)."""
    cores = usable_cores() if cores is None else max(1, cores)
    load = other_load() if load is None else max(0.0, load)
    free = max(1, min(cores, int(cores - load + 0.5)))
    if free == cores:
        return CpuPlan(cores, free, decode_workers=cores, model_threads=cores)
    workers = max(1, free // 2)
    threads = max(1, free - workers)
    return CpuPlan(cores, free, decode_workers=workers, model_threads=threads)


_current: CpuPlan | None = None


def current_plan() -> CpuPlan:
    """`plan()` read once per process, so the decode pool and the model's threads, sized at
    different moments of a run, come from the same reading (the run's own work would otherwise
    count as other load by the time the model loads)."""
    global _current
    if _current is None:
        _current = plan()
    return _current
