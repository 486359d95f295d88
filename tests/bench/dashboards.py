"""Dashboards screen benchmarks: `nox -s bench -- dashboards` (= python -m tests.bench.dashboards).

The console runs headless (Textual's run_test) in a fresh Python process against a real
Prometheus: a stack of its own (brought up and purged here), or with --existing the
stack of OCEAN_STATE_DIR / OCEAN_PORT_BASE (one with some history and traffic draws
fuller plots). Three figures, the targets from issue 26:

1. first paint: from pressing 8 until the Dashboards screen shows the System Overview
   with its data (every panel drawn), median of --starts fresh processes. Target ≤ 1 s.
2. a refresh of a 20-panel dashboard (System Overview: 21 panels and 6 rows, 27
   queries): the process's CPU time (every thread: the worker's queries and parsing,
   the UI's drawing) per refresh, over --refreshes refreshes forced back to back with
   `r`, each waited for until drawn, with the health poll held off. Target ≤ 300 ms.
3. idle CPU on the Dashboards screen (its own 30 s refresh, the health poll every 2 s)
   over --idle seconds: CPU time over wall time. Target ≤ 5% of one core. The
   Overview idling the same way is measured too: the health poll's own share (its
   runtime status probes every service) is the baseline the screen adds to.

With --recorded, only the first paint, with no stack at all: the console reads the
recording the snapshot tests use (tests/tui/recorded.py, its clock stopped there), so
the figure is the console's own CPU (no query waits on a network) and repeatable on a
machine whose stack is busy or absent; --compare DIR runs a checkout in DIR (another
commit, `git archive … | tar -x -C DIR`) interleaved with this one, start for start.

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

from ocean.config import PortPlan, Settings
from ocean.procedures import stack
from ocean.runtime.local import LocalRuntime
from tests.bench.tui import REPO_ROOT, run_child
from tests.helpers import free_port_base

CHILD = r"""
import time
import asyncio, json, sys
from tui.app import make_app

mode, amount, refresh = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])

async def drawn(pilot, screen, refreshes):
    while screen.refreshes < refreshes or screen.fetching:
        await pilot.pause(0.005)
    await pilot.pause(0)  # the paint after the message that drew the panels

async def main():
    app = make_app(refresh=refresh)
    out = {}
    async with app.run_test(size=(160, 50)) as pilot:
        while app.polls < 1:
            await pilot.pause(0.01)
        if mode == "overview":  # the baseline: the Overview idling beside the same stack
            await pilot.pause(1.0)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await pilot.pause(amount)
            out["cpu_share"] = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
            print(json.dumps(out))
            return
        t0, cpu0 = time.perf_counter(), time.process_time()
        await pilot.press("8")
        screen = app.screen
        await drawn(pilot, screen, 1)
        out["first_paint_s"] = time.perf_counter() - t0
        out["first_paint_cpu_s"] = time.process_time() - cpu0
        out["panels"] = len(screen._panels)
        out["queries"] = sum(len(p.targets) for p in screen.dashboard.panels)
        if mode == "refresh":
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for i in range(int(amount)):
                await pilot.press("r")
                await drawn(pilot, screen, 2 + i)
            out["refreshes"] = int(amount)
            out["cpu_per_refresh_s"] = (time.process_time() - cpu0) / amount
            out["wall_per_refresh_s"] = (time.perf_counter() - wall0) / amount
        elif mode == "idle":
            await pilot.pause(1.0)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            polls0, refreshes0 = app.polls, screen.refreshes
            await pilot.pause(amount)
            out["cpu_share"] = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
            out["polls"] = app.polls - polls0
            out["refreshes"] = screen.refreshes - refreshes0
    print(json.dumps(out))

asyncio.run(main())
"""


RECORDED_CHILD = r"""
import asyncio, json, shutil, tempfile, time
from pathlib import Path
from ocean.config import PortPlan, Settings
from ocean.runtime.local import LocalRuntime
from tests.tui.recorded import RecordedPrometheus
from tui.app import OceanConsole
import tui.screens.dashboards

async def main():
    state = Path(tempfile.mkdtemp(prefix="ocean-bench-dash-"))
    try:
        await paint(state)
    finally:
        shutil.rmtree(state, ignore_errors=True)  # nothing runs there: the console's state only

async def paint(state):
    runtime = LocalRuntime(Settings(state_dir=state / "state", ports=PortPlan(28000)))
    prom = RecordedPrometheus()
    app = OceanConsole(runtime, prom, refresh=60)
    app.clock = lambda: prom.recorded_at
    out = {"module": tui.screens.dashboards.__file__}
    async with app.run_test(size=(160, 50)) as pilot:
        while app.polls < 1:
            await pilot.pause(0.01)
        await pilot.pause(0.2)
        t0, cpu0 = time.perf_counter(), time.process_time()
        await pilot.press("8")
        screen = app.screen
        while screen.refreshes < 1 or screen.fetching:
            await pilot.pause(0.005)
        await pilot.pause(0)  # the paint after the message that drew the panels
        out["first_paint_s"] = time.perf_counter() - t0
        out["first_paint_cpu_s"] = time.process_time() - cpu0
        out["widgets"] = len(screen.query("*"))
    print(json.dumps(out))

asyncio.run(main())
"""


def recorded(starts: int, compare: Path | None) -> dict:
    """First paint against the recording: this checkout's, and ``compare``'s."""
    trees = {"this": REPO_ROOT} | ({"compare": compare} if compare else {})
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(starts):
        for name, tree in trees.items():
            # Run in the tree: python -c puts the working directory first on sys.path.
            env = dict(os.environ) | {"PYTHONPATH": f"{tree}/src:{tree}"}
            done = subprocess.run(
                [sys.executable, "-c", RECORDED_CHILD],
                capture_output=True,
                text=True,
                env=env,
                cwd=tree,
                timeout=600,
                check=True,
            )
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        name: {
            "module": found[0]["module"],
            "widgets": found[0]["widgets"],
            "first_paint_s": sorted(r["first_paint_s"] for r in found),
            "first_paint_cpu_s": sorted(r["first_paint_cpu_s"] for r in found),
        }
        for name, found in runs.items()
    }


def child(env: dict[str, str], mode: str, amount: float, refresh: float = 2.0) -> dict:
    return run_child(CHILD, env, mode, amount, refresh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--refreshes", type=int, default=20)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument(
        "--existing", action="store_true", help="the stack of OCEAN_STATE_DIR/OCEAN_PORT_BASE"
    )
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--recorded", action="store_true", help="first paint, recorded data")
    parser.add_argument("--compare", type=Path, help="with --recorded: another checkout")
    args = parser.parse_args()
    if args.recorded:
        found = recorded(args.starts, args.compare)
        if args.json_out:
            args.json_out.write_text(json.dumps(found, indent=2) + "\n")
        for name, result in found.items():
            cpus, walls = result["first_paint_cpu_s"], result["first_paint_s"]
            print(
                f"{name} ({result['module']}, {result['widgets']} widgets): first paint CPU "
                f"median {cpus[len(cpus) // 2]:.3f} s (range {cpus[0]:.3f}–{cpus[-1]:.3f}), "
                f"wall {walls[len(walls) // 2]:.2f} s, n={len(cpus)}"
            )
        return

    results: dict = {
        "date": datetime.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
    }
    runtime = None
    env = dict(os.environ)
    if not args.existing:
        state = Path(tempfile.mkdtemp(prefix="ocean-bench-dash-"))
        os.chmod(state, 0o755)
        runtime = LocalRuntime(Settings(state_dir=state, ports=PortPlan(free_port_base())))
        # The stack's own alert inbox takes Alertmanager's notices (no sink needed).
        env |= {"OCEAN_STATE_DIR": str(state), "OCEAN_PORT_BASE": str(runtime.settings.ports.base)}
    try:
        if runtime is not None:
            list(stack.up(runtime))
        starts = [child(env, "start", 0) for _ in range(args.starts)]
        results["first_paint_s"] = sorted(s["first_paint_s"] for s in starts)
        results["first_paint_cpu_s"] = sorted(s["first_paint_cpu_s"] for s in starts)
        results["panels"], results["queries"] = starts[0]["panels"], starts[0]["queries"]
        # No health poll meanwhile: the refreshes' own CPU.
        results["refresh"] = child(env, "refresh", args.refreshes, refresh=3600)
        results["idle"] = child(env, "idle", args.idle)
        results["overview_idle"] = child(env, "overview", args.idle)
    finally:
        if runtime is not None:
            list(stack.down(runtime, purge=True, yes=True))
    results["load_after"] = os.getloadavg()
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    paints = results["first_paint_s"]
    refresh, idle = results["refresh"], results["idle"]
    print("| measure | result | target |")
    print("|---|---|---|")
    cpus = results["first_paint_cpu_s"]
    print(
        f"| first paint of the Dashboards screen with data (median of {len(paints)}) | "
        f"{paints[len(paints) // 2]:.2f} s (range {paints[0]:.2f}–{paints[-1]:.2f}; CPU "
        f"{cpus[len(cpus) // 2]:.2f} s) | ≤ 1 s |"
    )
    print(
        f"| CPU per refresh, {results['panels']} panels / {results['queries']} queries "
        f"({refresh['refreshes']} refreshes) | {refresh['cpu_per_refresh_s'] * 1000:.0f} ms "
        f"(wall {refresh['wall_per_refresh_s'] * 1000:.0f} ms) | ≤ 300 ms |"
    )
    print(
        f"| idle CPU on the Dashboards screen ({args.idle:.0f} s, {idle['polls']} health "
        f"polls, {idle['refreshes']} refreshes) | {idle['cpu_share']:.1%} of one core "
        f"(the Overview beside it: {results['overview_idle']['cpu_share']:.1%}) | ≤ 5% |"
    )
    print(f"\nload average before {results['load_before']}, after {results['load_after']}")


if __name__ == "__main__":
    main()
