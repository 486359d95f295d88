"""What /proc/PID/stat says of a process: name, state and parent.

Dependency-free: ``launch`` imports it before it execs nginx.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple


class ProcStat(NamedTuple):
    comm: str
    state: str  # R, S, D, Z …
    ppid: int
    cpu_ticks: int  # user + system time (fields 14, 15), in clock ticks
    # user + system time of its children that ended and were waited for (16, 17)
    children_ticks: int = 0


def read_stat(pid: int | str) -> ProcStat | None:
    """The process' stat fields, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may hold spaces and parentheses: it runs from the first "(" to the last ")".
    rest = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(
        comm=raw[raw.index("(") + 1 : raw.rindex(")")],
        state=rest[0],
        ppid=int(rest[1]),
        cpu_ticks=int(rest[11]) + int(rest[12]),
        children_ticks=int(rest[13]) + int(rest[14]),
    )


def all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def signal_on_parent_death(sig: int) -> Callable[[], None]:
    """A Popen ``preexec_fn``: the child gets ``sig`` when the process that started it
    dies, even by SIGKILL, so a killed toolkit leaves no load generator or scratch
    server behind. Linux clears it when the child's user changes, but Popen's
    ``user=`` is applied before ``preexec_fn`` runs, so it holds for children run as
    another user too. It follows the *thread* that started the child: a child started
    from a worker thread (the console's) gets ``sig`` when that thread ends."""

    def arm() -> None:
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)

    return arm


def process_table() -> dict[int, ProcStat]:
    """Every live process' stat fields, by pid (processes that end meanwhile left out)."""
    return {pid: stat for pid in all_pids() if (stat := read_stat(pid)) is not None}


def descendants(table: dict[int, ProcStat], roots: set[int]) -> set[int]:
    """``roots`` that are alive and every process below them in ``table``."""
    children: dict[int, list[int]] = {}
    for pid, stat in table.items():
        children.setdefault(stat.ppid, []).append(pid)
    found: set[int] = set()
    pending = [pid for pid in roots if pid in table]
    while pending:
        pid = pending.pop()
        if pid not in found:
            found.add(pid)
            pending.extend(children.get(pid, ()))
    return found


def stop_child(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
    """Stop a child we started: ``sig`` (nothing once it has ended), then SIGKILL after
    ``timeout`` s. k6 takes SIGINT to still write its summary, PostgreSQL SIGQUIT."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
