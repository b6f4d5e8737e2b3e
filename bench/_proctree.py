"""CPU seconds of a process tree, read from ``/proc`` (Linux): the scan benchmarks count the
fork server and its workers, which the command they run never waits for, so ``os.times``
would leave them out."""

from __future__ import annotations

import os
from pathlib import Path


def tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds (user + sys) of ``root`` and of every process below it, now, by pid."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(d.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
    out = {}
    for pid, seconds in cpu.items():
        p = pid
        while p > 1 and p != root:
            p = parents.get(p, 0)
        if p == root:
            out[pid] = seconds
    return out
