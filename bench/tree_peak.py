"""Peak memory of a whole process tree: a command and every process it starts (Linux).

    python bench/tree_peak.py [--every 0.02] -- COMMAND [ARG ...]

`/usr/bin/time`'s peak RSS is that of the largest single process; an indexing run is a main
process plus decode workers (and a forkserver), so this samples the RSS of every process in
the tree from /proc every 20 ms and prints the largest sum seen (an upper bound: pages shared
between the processes, e.g. libraries, count once per process), the largest single process,
and the sum of proportional set sizes (PSS, shared pages split between their users) at the
sample where the RSS sum peaked. Wall time is the command's own, start to exit.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children(p)
    return seen


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(cmd: list[str], every: float = 0.02) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak_sum = peak_one = peak_pss = 0
    procs = 0
    while proc.poll() is None:
        pids = tree(proc.pid)
        sizes = [rss_kb(p) for p in pids]
        total = sum(sizes)
        if total > peak_sum:
            peak_sum, procs = total, len([s for s in sizes if s])
            peak_pss = sum(pss_kb(p) for p in pids)
        peak_one = max([peak_one, *sizes])
        time.sleep(every)
    err = proc.stderr.read() if proc.stderr else ""
    return {"wall_s": time.perf_counter() - start, "rc": proc.returncode,
            "peak_tree_rss_mb": peak_sum / 1024, "peak_tree_pss_mb": peak_pss / 1024,
            "peak_one_process_mb": peak_one / 1024, "processes_at_peak": procs,
            "stderr_tail": err[-500:]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--every", type=float, default=0.02)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("give a command after --")
    r = measure(cmd, args.every)
    print(f"wall {r['wall_s']:.2f} s, rc {r['rc']}, peak tree RSS {r['peak_tree_rss_mb']:.0f} MB "
          f"(PSS {r['peak_tree_pss_mb']:.0f} MB, {r['processes_at_peak']} processes), "
          f"largest process {r['peak_one_process_mb']:.0f} MB, load {os.getloadavg()[0]:.1f}")
    if r["rc"]:
        print(r["stderr_tail"], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
