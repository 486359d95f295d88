"""Busy loops that keep cores busy: the noisy machine the verdicts must survive.

`invoke test --cpu-hogs N` runs the suite beside N of them, and the verdict benchmark
(tests/bench/verdicts.py) deploys beside them. Each loop is a separate process (one
core each at most), bounded by its own deadline so that nothing outlives a killed
parent for long, and stopped by pid. ``stop()`` says how many cores they really took:
the scheduler shares the CPUs with everything else, so the count alone proves nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

# A deadline in the child itself: the loop ends by then even if nobody stops it.
LOOP = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class CpuHogs:
    """``count`` busy loops at scheduling priority ``nice`` (-20..19; below 0 needs root):
    at 0 the scheduler shares the cores with the stack, so a few loops take less than a
    core between them on a loaded box; at -10 each weighs about nine times a normal
    process and they take what they can."""

    def __init__(self, count: int, seconds: float, nice: int = 0) -> None:
        argv = ["nice", "-n", str(nice), sys.executable, "-c", LOOP.format(seconds=seconds)]
        self.procs = [subprocess.Popen(argv) for _ in range(count)]
        self.started = time.monotonic()

    def cpu_seconds(self) -> float:
        """CPU time the loops have used so far (user + system)."""
        total = 0.0
        for proc in self.procs:
            try:
                stat = Path(f"/proc/{proc.pid}/stat").read_text()
            except FileNotFoundError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        return total

    def stop(self) -> float:
        """Kill the loops; the cores they took on average while they ran."""
        used, wall = self.cpu_seconds(), time.monotonic() - self.started
        for proc in self.procs:
            proc.kill()
            proc.wait()
        return round(used / wall, 2) if wall > 0 else 0.0

    def __enter__(self) -> CpuHogs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
