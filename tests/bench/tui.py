"""Console benchmarks: `nox -s bench -- tui` (= python -m tests.bench.tui).

On a stack of its own (the whole stack, real Prometheus), the console runs headless
(Textual's run_test) in a fresh Python process each time:

1. start to first screen with live data: from the process's first instruction
   (before importing Textual) until the Overview shows the first fetch. Target ≤ 1.5 s.
2. idle CPU at the default 2 s refresh, over --idle seconds: the process's CPU time
   over wall time. Target ≤ 5% of one core.
3. memory after an hour of refreshes: 1,800 polls (an hour at 2 s) run back to back,
   then the process's RSS. Target ≤ 150 MiB.

Prints a Markdown table for docs/benchmarks.md and writes JSON (--json-out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ocean.config import REPO_ROOT, PortPlan, Settings
from ocean.procedures import stack
from ocean.runtime.local import LocalRuntime
from tests.helpers import free_port_base

CHILD = r"""
import time
T0 = time.perf_counter()
import asyncio, json, resource, sys
from tui.app import make_app

mode, refresh, amount = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

async def main():
    app = make_app(refresh=refresh)
    out = {}
    async with app.run_test(size=(140, 44)) as pilot:
        while app.polls < 1:
            await pilot.pause(0.01)
        await pilot.pause(0)
        out["first_data_s"] = time.perf_counter() - T0
        if mode == "idle":
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await pilot.pause(amount)
            out["cpu_share"] = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
            out["polls"] = app.polls
        elif mode == "soak":
            out["rss_start_mib"] = rss_mib()
            while app.polls < amount:
                await pilot.pause(0.05)
            out["polls"] = app.polls
            out["rss_end_mib"] = rss_mib()
            out["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))

asyncio.run(main())
"""


def run_child(script: str, env: dict[str, str], *args: object) -> dict:
    """``script`` in a fresh Python process (``args`` as its argv); the JSON it printed
    last (tests/bench/dashboards.py runs its console the same way)."""
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def child(env: dict[str, str], mode: str, refresh: float, amount: float) -> dict:
    return run_child(CHILD, env, mode, refresh, amount)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--polls", type=int, default=1800)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="ocean-bench-tui-"))
    os.chmod(state, 0o755)
    runtime = LocalRuntime(Settings(state_dir=state, ports=PortPlan(free_port_base())))
    env = {
        **os.environ,
        "OCEAN_STATE_DIR": str(state),
        "OCEAN_PORT_BASE": str(runtime.settings.ports.base),
    }
    results: dict = {"date": datetime.date.today().isoformat(), "cpus": os.cpu_count()}
    try:
        list(stack.up(runtime))
        starts = [child(env, "start", 2.0, 0)["first_data_s"] for _ in range(args.starts)]
        results["first_data_s"] = sorted(starts)
        results["idle"] = child(env, "idle", 2.0, args.idle)
        results["soak"] = child(env, "soak", 0.0001, args.polls)
    finally:
        list(stack.down(runtime, purge=True, yes=True))
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    starts = results["first_data_s"]
    idle, soak = results["idle"], results["soak"]
    print("| measure | result | target |")
    print("|---|---|---|")
    print(
        f"| start → first screen with live data (median of {len(starts)}) | "
        f"{starts[len(starts) // 2]:.2f} s (range {starts[0]:.2f}–{starts[-1]:.2f}) | ≤ 1.5 s |"
    )
    print(
        f"| idle CPU at 2 s refresh ({args.idle:.0f} s, {idle['polls']} polls) | "
        f"{idle['cpu_share']:.1%} of one core | ≤ 5% |"
    )
    print(
        f"| RSS after {soak['polls']} polls (an hour at 2 s) | {soak['rss_end_mib']:.0f} MiB "
        f"(start {soak['rss_start_mib']:.0f}, peak {soak['maxrss_mib']:.0f}) | ≤ 150 MiB |"
    )


if __name__ == "__main__":
    main()
