"""Bring-up benchmarks of the local runtime: `nox -s bench` (or python -m tests.bench.bringup).

Measures, on a stack of its own (temporary state dir, free port base):
  first-ever bring-up (initdb, migrations, seed) to all Prometheus targets up;
  warm bring-ups (state exists, nothing running) to all targets up, median of N;
  down (every process gone, no port listening);
  idle memory of the whole process tree (RSS and PSS) after the stack settles;
  recovery after kill -9 of each service (back and healthy).
Prints a Markdown table for docs/benchmarks.md and writes JSON with --json-out.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from ocean.config import PortPlan, Settings
from ocean.procedures import stack
from ocean.procfs import all_pids, read_stat
from ocean.runtime.local import LocalRuntime
from tests.helpers import free_port_base


def timed(steps) -> float:
    started = time.monotonic()
    for _ in steps:
        pass
    return time.monotonic() - started


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        stat = read_stat(pid)
        if stat is not None:
            children.setdefault(stat.ppid, []).append(pid)
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def memory_mib(pids: list[int]) -> tuple[float, float]:
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except FileNotFoundError:
            continue
    return rss / 1024, pss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument("--settle", type=float, default=30.0, help="idle seconds before memory")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="ocean-bench-"))
    runtime = LocalRuntime(Settings(state_dir=state, ports=PortPlan(free_port_base())))
    results: dict[str, object] = {"cpus": os.cpu_count()}
    try:
        results["first_up_s"] = timed(stack.up(runtime))
        results["first_down_s"] = timed(stack.down(runtime))
        warm, downs = [], []
        for _ in range(args.warm_runs):
            warm.append(timed(stack.up(runtime)))
            downs.append(timed(stack.down(runtime)))
        results["warm_up_s"] = warm
        results["warm_up_median_s"] = statistics.median(warm)
        results["down_s"] = downs
        results["down_max_s"] = max(downs)

        timed(stack.up(runtime))
        time.sleep(args.settle)
        rss, pss = memory_mib(process_tree(runtime.supervisor.pid()))
        results["idle_rss_mib"], results["idle_pss_mib"] = rss, pss

        recovery = {}
        for status in runtime.status():
            if not status.pid:
                continue
            os.kill(status.pid, signal.SIGKILL)
            killed = time.monotonic()
            while time.monotonic() - killed < 30:
                now = next(s for s in runtime.status() if s.name == status.name)
                if now.healthy and now.pid != status.pid:
                    break
                time.sleep(0.05)
            recovery[status.name] = round(time.monotonic() - killed, 2)
        results["kill9_recovery_s"] = recovery
    finally:
        timed(stack.down(runtime, purge=True, yes=True))

    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    print("| measure | result | target |\n|---|---|---|")
    print(f"| first-ever bring-up to all targets up | {results['first_up_s']:.2f} s | ≤ 15 s |")
    print(
        f"| warm bring-up to all targets up, median of {args.warm_runs} | "
        f"{results['warm_up_median_s']:.2f} s (runs: "
        f"{', '.join(f'{x:.2f}' for x in warm)}) | ≤ 8 s |"
    )
    print(f"| down, slowest of {len(downs)} | {results['down_max_s']:.2f} s | ≤ 3 s |")
    print(f"| idle memory after {args.settle:.0f} s, RSS sum | {rss:.0f} MiB | ≤ 400 MiB |")
    print(f"| idle memory, PSS sum | {pss:.0f} MiB | |")
    worst = max(recovery.items(), key=lambda item: item[1])
    print(f"| kill -9 → healthy again, slowest ({worst[0]}) | {worst[1]:.2f} s | ≤ 5 s |")


if __name__ == "__main__":
    main()
