"""The machine's side of a load test: did processes outside the run take the CPU?

On one box the stack and k6 share the cores: that is the test. A process that is
neither (another CI job, a compile, a CPU hog) takes cores the shop needed, and the
shop's own timings (its p99, its database p95) then measure the machine, not the shop.
What this module measures over the run:

- **other processes' CPU**: user + system time of every process outside the run, i.e.
  not the stack's services or anything below them, not this toolkit or its children
  (k6, Chromium); kernel threads are left out (they work for every process), and so
  is what a process that ends between two polls used since the last one;
- **CPU pressure**: the share of the run during which some runnable task waited for a
  CPU (``some`` in /proc/pressure/cpu, Linux's PSI), whoever's task it was.

The machine is named (:func:`starved`) only when both hold: others used OTHERS_MIN of
the cores, and tasks waited PRESSURE_MIN of the time. Either alone is no excuse: other
processes on idle cores take nothing from the shop, and a shop that saturates the cores
under its own load makes pressure too: that is the finding a load test is for.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ocean.runtime.procfs import descendants, process_table

# Processes outside the run used at least this share of the machine's cores (half a core
# on the 2-core CI box). Measured there: idle suites and the session's idle stacks
# 0.02-0.10 of the cores; a CPU hog at nice -15, 0.55-0.80.
OTHERS_MIN = 0.25
# Some runnable task waited for a CPU at least this share of the run (PSI "some").
# Measured on the 2-core box: quiet 1-9%; a smoke load test alone 5-15%; with a CPU hog
# 48-64%.
PRESSURE_MIN = 0.20

PRESSURE_FILE = Path("/proc/pressure/cpu")
KTHREADD = 2  # the parent of every kernel thread
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_pressure_us() -> float | None:
    """Microseconds some task waited for a CPU since boot; None without PSI."""
    try:
        some = PRESSURE_FILE.read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return float(some.rsplit("total=", 1)[1]) if "total=" in some else None


class MachineWatch:
    """Other processes' CPU and the CPU pressure from the first sample to the last.

    ``roots``: the run's own processes (the stack's service pids); this process and its
    children are added."""

    def __init__(self, roots: set[int]) -> None:
        self.roots = {*roots, os.getpid()}
        self.cores = len(os.sched_getaffinity(0)) or 1
        self.seen: dict[int, int] = {}  # other process → CPU ticks at its last reading
        self.others_ticks = 0
        self.started = time.monotonic()
        self.pressure_start = cpu_pressure_us()
        self.sample()
        self.others_ticks = 0  # what they used before the run is not the run's
        self.ended = self.started
        self.pressure_end = self.pressure_start

    def sample(self) -> None:
        table = process_table()
        ours = descendants(table, self.roots) | descendants(table, {KTHREADD})
        seen: dict[int, int] = {}
        for pid, stat in table.items():
            if pid in ours:
                continue
            # A process first seen now started since the last poll: all its time counts.
            self.others_ticks += max(0, stat.cpu_ticks - self.seen.get(pid, 0))
            seen[pid] = stat.cpu_ticks
        self.seen = seen
        self.ended = time.monotonic()
        self.pressure_end = cpu_pressure_us()

    def figures(self) -> dict[str, Any]:
        """The run's figures (for the result's ``generator``); {} before a second sample."""
        span = self.ended - self.started
        if span <= 0:
            return {}
        others = self.others_ticks / CLK_TCK / span
        out: dict[str, Any] = {
            "machine_cores": self.cores,
            "others_cores": round(others, 2),
            "others_share": round(others / self.cores, 3),
            "cpu_pressure": None,
        }
        if self.pressure_start is not None and self.pressure_end is not None:
            waited = (self.pressure_end - self.pressure_start) / 1e6
            out["cpu_pressure"] = round(min(1.0, max(0.0, waited / span)), 3)
        return out


def starved(machine: dict[str, Any]) -> bool:
    """Whether processes outside the run took the CPU the run needed (see above)."""
    others, pressure = machine.get("others_share"), machine.get("cpu_pressure")
    if others is None or others < OTHERS_MIN:
        return False
    # Without PSI (an old kernel), others alone: the cautious reading of a busy box.
    return pressure is None or pressure >= PRESSURE_MIN


def describe(machine: dict[str, Any]) -> str:
    if "others_cores" not in machine:
        return "the machine not measured"
    line = f"other processes used {machine['others_cores']:.2f} of {machine['machine_cores']} cores"
    if machine.get("cpu_pressure") is not None:
        line += f", some task waited for a CPU {machine['cpu_pressure']:.0%} of the run"
    return line
