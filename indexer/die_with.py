"""Make a helper process end when the process it works for ends, however that ends.

A decode worker is forked by multiprocessing's forkserver, not by the indexer, and waits on a
queue whose write end it holds itself: when the indexer is killed with SIGKILL (the OOM killer,
`kill -9`, a crashed desktop session) nothing tells the workers, and they, the forkserver and
the resource tracker lived on as orphans. prctl(PR_SET_PDEATHSIG) does not help here: it fires
when the *parent* dies, and a worker's parent is the forkserver, which itself waits for the
workers. So each worker watches the indexer's pid instead: a pidfd becomes readable the moment
that process ends (Linux 5.3+); on older kernels the pid is polled once a second.
"""
from __future__ import annotations

import os
import select
import sys
import threading
import time

#: exit status of a helper that ended because the process it worked for was gone
ORPHANED_EXIT = 3
POLL_S = 1.0  # older kernels (no pidfd): how often the pid is looked at


def exit_when_gone(pid: int) -> None:
    """End this process (os._exit: no cleanup, there is no one to report to) as soon as
    process `pid` has ended. Linux only; elsewhere a no-op (workers there are spawned by the
    indexer itself and multiprocessing ends them when their pipe to it breaks)."""
    if not sys.platform.startswith("linux") or pid == os.getpid():
        return
    try:
        fd: int | None = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(ORPHANED_EXIT)  # gone before we started
    except OSError:  # no pidfd on this kernel (or seccomp forbids it): poll
        fd = None
    threading.Thread(target=_wait_then_exit, args=(pid, fd), daemon=True,
                     name=f"exit-when-{pid}-ends").start()


def _wait_then_exit(pid: int, fd: int | None) -> None:
    if fd is not None:
        waiter = select.poll()  # (not select(): a descriptor above 1023 is fine here)
        waiter.register(fd, select.POLLIN)
        while not waiter.poll():  # readable once the process has ended
            pass
    else:
        while _exists(pid):
            time.sleep(POLL_S)
    os._exit(ORPHANED_EXIT)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by another user
    return True
