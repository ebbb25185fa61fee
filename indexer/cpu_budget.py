"""How many decode processes and model threads an indexing run should use on a CPU box.

Why: the fixed "every core decodes, the model uses every core too" rule is the fastest on an
idle desktop, but on a box already busy with other work it fell to 0.43-0.62x rclip (issue 12):
the model's threads wait at every barrier for a thread that another process preempted. So the
plan reads the cores this process may run on (`os.sched_getaffinity`, which honours taskset
and container CPU sets) and how many of them other work keeps busy *now*, and:

* when (nearly) every core is free: decode workers = model threads = cores;
* otherwise: the free cores are split between decoding and the model, at least one each, so
  nobody waits on a preempted thread.

"Busy now" is the CPU time other processes used over a short sample (~0.15 s of the kernel's
counters in /proc/stat, this process's own time taken out), read when work arrives. It was
the 1-minute load average, which counts work that already ended: the benchmark run or build
that finished seconds ago made a quiet 2-core box run 1 decoder + 1 model thread, ~1.75x
slower than it could. Work of processes at a lower priority (nice > 0) does not count as busy
when this process runs at a higher priority than such work usually has (below nice 10): the
kernel gives that work only a sliver of a core this process wants. Where the platform has no
such counters, every core counts as free.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

#: how long the counters are sampled when a plan is made: long enough to be many clock ticks
#: per core (the kernel counts in 1/100 s), short beside any run that has a picture to embed
SAMPLE_S = 0.15

#: from this niceness on, this process is as low a priority as typical niced work (`nice`'s
#: default), so that work competes with it on equal terms and counts as busy
NICED_PEER = 10

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CpuPlan:
    cores: int  # cores this process may run on
    free: int  # of those, not kept busy by other work
    decode_workers: int
    model_threads: int


@dataclass(frozen=True)
class CpuTimes:
    """One reading of the system's CPU time counters and this process's own, in seconds."""

    at: float  # monotonic clock
    busy: float  # all cores: running anything at normal or higher priority (idle/iowait not)
    niced: float  # all cores: running processes at lower priority (nice > 0)
    own: float  # this process, all its threads (its children not)


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS / Windows have no affinity call
        return max(1, os.cpu_count() or 1)


def parse_proc_stat(text: str, tick_s: float) -> tuple[float, float] | None:
    """(busy, niced) seconds from /proc/stat's first `cpu` line, or None if it isn't there.

    Fields: user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is
    already inside user and nice. Steal (the hypervisor ran someone else) counts as busy."""
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            try:
                v = [int(x) for x in parts[1:9]]
            except ValueError:
                return None
            if len(v) < 8:
                return None
            user, nice, system, _idle, _iowait, irq, softirq, steal = v
            return ((user + system + irq + softirq + steal) * tick_s, nice * tick_s)
    return None


def read_cpu_times() -> CpuTimes | None:
    """The counters now, or None where the platform has none (not Linux, /proc hidden)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            text = f.read()
        tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    got = parse_proc_stat(text, tick_s)
    if got is None:
        return None
    t = os.times()
    return CpuTimes(time.monotonic(), got[0], got[1], t.user + t.system)


def own_niceness() -> int:
    try:
        return os.getpriority(os.PRIO_PROCESS, 0)
    except (AttributeError, OSError):
        return 0


def other_busy(before: CpuTimes, after: CpuTimes, niceness: int = 0) -> float:
    """Cores' worth of CPU time other processes used between two readings.

    This process's own time is taken out. Niced work (nice 1-19; `nice` runs at 10 unless
    told) counts only when this process runs at `NICED_PEER` or lower itself: at normal
    priority the kernel's weights give it ~90% of a core it shares with a nice-10 loop, and
    the window's indexing thread (nice 5) still ~75%."""
    elapsed = after.at - before.at
    if elapsed <= 0:
        return 0.0
    busy = after.busy - before.busy
    niced = after.niced - before.niced
    own = after.own - before.own
    counted = busy + niced if niceness >= NICED_PEER else busy
    counted -= own
    return max(0.0, counted / elapsed)


def sample_other_busy(sample_s: float = SAMPLE_S,
                      read: Callable[[], CpuTimes | None] | None = None,
                      sleep: Callable[[float], None] | None = None) -> float:
    """Cores other processes keep busy now (0 where the platform can't say)."""
    read = read or read_cpu_times
    sleep = sleep or time.sleep
    before = read()
    if before is None:
        return 0.0
    sleep(sample_s)
    after = read()
    if after is None:
        return 0.0
    return other_busy(before, after, own_niceness())


def plan(cores: int | None = None, load: float | None = None) -> CpuPlan:
    """The split for `cores` usable cores with `load` cores' worth of other work running now
    (both read from the system if None)."""
    cores = usable_cores() if cores is None else max(1, cores)
    load = sample_other_busy() if load is None else max(0.0, load)
    free = max(1, min(cores, int(cores - load + 0.5)))
    if free == cores:
        return CpuPlan(cores, free, decode_workers=cores, model_threads=cores)
    workers = max(1, free // 2)
    threads = max(1, free - workers)
    return CpuPlan(cores, free, decode_workers=workers, model_threads=threads)


_current: CpuPlan | None = None


def current_plan(fresh: bool = False) -> CpuPlan:
    """The plan of this process's current indexing job.

    `fresh=True` (where a job's decode pool is sized, before it starts) samples the system
    anew; otherwise the last plan is kept, so the model's threads, sized when the model loads
    a little later, come from the same reading: by then the job's own decode processes run,
    and a new sample would count them as other work."""
    global _current
    if _current is None or fresh:
        _current = plan()
        log.info("CPU plan: %d of %d cores free, %d decode processes, %d model threads",
                 _current.free, _current.cores, _current.decode_workers, _current.model_threads)
    return _current
