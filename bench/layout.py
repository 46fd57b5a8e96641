"""Which process runs on which core. Pinning keeps the server under test and its load apart."""

from __future__ import annotations

import contextlib
import os

SERVER_CORE = 0  # the process under test (ingest, baseline, producer loop, processor, inserts)
LOAD_CORE = 1  # the load generator


def cores() -> list[int]:
    """The machine's cores (not this process's affinity: the bench's processes inherit a pinned one)."""
    return list(range(os.cpu_count() or 1))


def pin(core: int) -> int | None:
    """Pin this process, every thread of it, to ``core`` (modulo the cores it may use); returns the core,
    None if unsupported. Linux applies an affinity to one thread: pinning only the caller left the threads
    that already existed (chDB's, the executor's that run the processor's inserts) on the previous core."""
    available = cores()
    if not hasattr(os, "sched_setaffinity"):
        return None
    chosen = available[core % len(available)]
    os.sched_setaffinity(0, {chosen})
    tasks = f"/proc/{os.getpid()}/task"
    for tid in os.listdir(tasks) if os.path.isdir(tasks) else ():
        with contextlib.suppress(ProcessLookupError):  # a thread may end meanwhile
            os.sched_setaffinity(int(tid), {chosen})
    return chosen


def describe() -> str:
    n = len(cores())
    if n < 2:
        return f"{n} core: server, load generator and broker share it (pinning has no effect)"
    return (
        f"{n} cores; process under test pinned to core {SERVER_CORE}, load generator (a separate process) "
        f"to core {LOAD_CORE}, Tansu broker unpinned; the processor of the end-to-end run shares core "
        f"{LOAD_CORE} with the load generator"
    )
