"""Deploy verdicts under noise: `nox -s bench -- verdicts` (= python -m tests.bench.verdicts).

On a stack of its own (temporary state dir, free port base, 1,000 seeded products),
with k6 keeping --vus VUs on nginx throughout, three rows of --runs deploys each:

- healthy: an unchanged release. Target: 0 rollbacks, 0 failed requests.
- errors: the new color fails 20% of requests once it is live (the shop's fault
  injection, set right after the switch). Target: every deploy rolled back, each
  decided within 10 s of the switch.
- slow: the new color adds 300 ms to every API request once it is live. Target:
  every deploy rolled back inside the analysis window.

Each row runs under every --conditions: `busy` starts --hogs busy-loop processes
(pure CPU at priority --hog-nice, killed at the end of the row) so that they take at
least 1.5 of the 2 cores, and measures what they really took; `quiet` runs without
them.

Prints a Markdown table for docs/benchmarks.md and writes JSON (--json-out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

import httpx

from ocean import secrets
from ocean.config import PortPlan, Settings
from ocean.noise import CpuHogs
from ocean.procedures import deploy as deploys
from ocean.procedures import stack
from ocean.procedures.seed import seed
from ocean.runtime import make_runtime
from ocean.runtime.base import Runtime
from tests.bench.deploy import timed_deploy
from tests.helpers import free_port_base
from tests.k6_traffic import Traffic

ROWS = {"healthy": {}, "errors": {"error_rate": 0.2}, "slow": {"latency_ms": 300}}


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def run_row(runtime: Runtime, workdir: Path, row: str, args: argparse.Namespace) -> dict:
    token = secrets.load_or_create(runtime.settings.secrets_file)["SHOP_ADMIN_TOKEN"]
    fault = ROWS[row]
    workdir.mkdir(parents=True)
    traffic = Traffic.through_nginx(runtime, workdir, vus=args.vus, duration=1800, products=1000)
    runs, loads = [], []
    try:
        traffic.warm_up(5)
        for _ in range(args.runs):
            color = deploys.other(runtime.live_color())

            def inject(color: str = color) -> None:
                if fault:
                    httpx.put(
                        f"{runtime.url(f'shop-{color}-admin')}/admin/faults",
                        json=fault,
                        headers={"Authorization": f"Bearer {token}"},
                    ).raise_for_status()

            opts = deploys.DeployOptions(
                color=color, analysis_window=args.window, scale_down_delay=0
            )
            runs.append(timed_deploy(runtime, opts, on_switch=inject))
            loads.append(load_average())
            run = runs[-1]
            print(
                f"  {row} {len(runs)}: {run['outcome']} in {run['seconds']} s, decided "
                f"{run['decided_after_switch_s']} s after the switch: {run['error'][:160]}",
                flush=True,
            )
            slowest = sorted(run["steps"].items(), key=lambda kv: -kv[1])[:4]
            print("    slowest steps: " + ", ".join(f"{k} {v} s" for k, v in slowest), flush=True)
    finally:
        load = traffic.stop()
    outcomes = [r["outcome"] for r in runs]
    decided = [r["decided_after_switch_s"] for r in runs if r["decided_after_switch_s"]]
    return {
        "row": row,
        "runs": runs,
        "successes": outcomes.count("success"),
        "rollbacks": outcomes.count("rolled_back"),
        "other": len(outcomes) - outcomes.count("success") - outcomes.count("rolled_back"),
        "slowest_decision_s": max(decided) if decided else None,
        "requests": load.requests,
        "failed": load.failed,
        "k6_p99_ms": load.p99_ms,
        "load_average_max": max(loads) if loads else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vus", type=int, default=50)
    parser.add_argument("--runs", type=int, default=10, help="deploys per row")
    parser.add_argument("--window", type=float, default=20.0, help="analysis window, seconds")
    parser.add_argument("--hogs", type=int, default=4, help="busy loops in the busy condition")
    parser.add_argument(
        "--hog-nice", type=int, default=-15,
        help="their priority: 4 loops took 1.55-1.58 of 2 cores at -15, 1.26 at -10, "
        "and 8 at -5 only 1.15, beside the stack and 50 VUs of k6",
    )  # fmt: skip
    parser.add_argument("--conditions", default="busy,quiet")
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    # A SIGTERM (timeout, kill) unwinds like Ctrl-C: the hogs stop and the stack comes down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    state = Path(tempfile.mkdtemp(prefix="ocean-bench-verdicts-"))
    os.chmod(state, 0o755)
    runtime = make_runtime("local", Settings(state_dir=state, ports=PortPlan(free_port_base())))
    results: dict = {"date": datetime.date.today().isoformat(), "cpus": os.cpu_count()}
    results.update({k: v for k, v in vars(args).items() if k != "json_out"})
    results["conditions_run"] = []
    # The stack's alert inbox receives Alertmanager's notices: the provoked alerts deliver.
    try:
        list(stack.up(runtime))
        list(seed(runtime, products=1000, customers=100, orders=100))
        for condition in args.conditions.split(","):
            for row in args.rows.split(","):
                print(f"{condition} / {row}", flush=True)
                hogs = CpuHogs(args.hogs, 1800, args.hog_nice) if condition == "busy" else None
                try:
                    outcome = run_row(runtime, state / condition / row, row, args)
                finally:
                    outcome_cores = hogs.stop() if hogs else 0.0
                outcome.update(condition=condition, hog_cores=outcome_cores)
                results["conditions_run"].append(outcome)
                if args.json_out:  # after every row: a long run keeps what it measured
                    args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        list(stack.down(runtime, purge=True, yes=True))
    report(results)


def report(results: dict) -> None:
    print(
        f"\n{results['vus']} VUs of k6 through nginx, {results['runs']} deploys per row, "
        f"{results['window']:.0f} s analysis window, {results['hogs']} busy loops at nice "
        f"{results.get('hog_nice', 0)} when busy\n"
    )
    print(
        "| machine | release | promoted | rolled back | slowest decision | k6 requests | "
        "failed | hogs took | load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results["conditions_run"]:
        decision = f"{r['slowest_decision_s']} s" if r["slowest_decision_s"] else "-"
        cores = f"{r['hog_cores']:.2f} cores" if r["condition"] == "busy" else "-"
        print(
            f"| {r['condition']} | {r['row']} | {r['successes']} | {r['rollbacks']} | "
            f"{decision} | {r['requests']:,} | {r['failed']:,} | {cores} | "
            f"{r['load_average_max']} |"
        )


if __name__ == "__main__":
    main()
