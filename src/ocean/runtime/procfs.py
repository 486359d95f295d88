"""What /proc/PID/stat says of a process: name, state and parent.

Dependency-free: ``launch`` imports it before it execs nginx.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class ProcStat(NamedTuple):
    comm: str
    state: str  # R, S, D, Z …
    ppid: int


def read_stat(pid: int | str) -> ProcStat | None:
    """The process' stat fields, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may hold spaces and parentheses: it runs from the first "(" to the last ")".
    rest = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(
        comm=raw[raw.index("(") + 1 : raw.rindex(")")], state=rest[0], ppid=int(rest[1])
    )


def all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
