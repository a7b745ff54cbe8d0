"""What /proc says about a process: its children, CPU time and memory (Linux only).

The benchmarks measure their processes with it, and the tests that kill ``serve`` find its
delivery engine with :func:`child_pids`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def child_pids(parent: int) -> list[int]:
    """Pids whose parent is ``parent``: ``serve``'s delivery engine, PostgreSQL's backends."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # The command name (field 2) may hold spaces; the parent pid is the field after state.
            if int(stat.read_text().rpartition(")")[2].split()[1]) == parent:
                found.append(int(stat.parent.name))
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time the process has used so far, user and system, all threads."""
    # The command name (field 2) may hold spaces; utime and stime are fields 14 and 15.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reaped_children_cpu_seconds(pid: int) -> float:
    """CPU time of the process's children it has waited for (PostgreSQL's parallel workers)."""
    # cutime and cstime are fields 16 and 17.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def parent_pid(pid: int) -> int:
    """The process's parent: a PostgreSQL backend's is the postmaster."""
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def rss_bytes(pid: int) -> int:
    """A process's resident memory now (VmRSS)."""
    return _proc_status_kib(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int) -> int:
    """A process's high-water mark of resident memory (VmHWM)."""
    return _proc_status_kib(pid, "VmHWM") * 1024


def _proc_status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    raise LookupError(f"/proc/{pid}/status has no {field}")
