"""Blue-green deploy benchmark: `nox -s bench -- deploy` (= python -m tests.bench.deploy).

On a stack of its own (temporary state dir, free port base, 1,000 seeded products):

1. Zero downtime: k6 (testing/k6/deploy_traffic.js) keeps --vus VUs on nginx while
   --deploys deploys run in a row (blue→green→blue…), each with the default 30 s
   scale-down delay and a --window analysis window. Target: 0 failed requests out of
   ≥ 20,000; each switch (decision → nginx serving the new color) ≤ 1 s; each whole
   deploy ≤ 45 s with a 30 s window.
2. Rollback: --rollbacks deploys whose new color starts failing 20% of requests once
   it is live (the shop's fault injection, set right after the switch) under the same
   load. Target: rolled back within the window, the flip back to the warm color ≤ 1 s.

Prints a Markdown table for docs/benchmarks.md and writes JSON (--json-out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import time
from pathlib import Path

import httpx

from ocean import secrets
from ocean.config import PortPlan, Settings
from ocean.errors import OceanError
from ocean.procedures import deploy as deploys
from ocean.procedures import stack
from ocean.procedures.seed import seed
from ocean.rollout.journal import Journal
from ocean.runtime import make_runtime
from ocean.runtime.base import Runtime
from tests.helpers import free_port_base
from tests.k6_traffic import Traffic

TARGETS = {"failed": 0, "requests": 20_000, "switch_s": 1.0, "deploy_s": 45.0, "rollback_s": 1.0}


def timed_deploy(runtime: Runtime, opts: deploys.DeployOptions, on_switch=None) -> dict:
    started = time.monotonic()
    error = ""
    switched_at = breach_at = None
    # Each step's own duration: where a deploy's minutes go on a busy machine.
    steps: dict[str, float] = {}
    try:
        for step in deploys.deploy(runtime, opts):
            if step.seconds:
                steps[step.name] = round(steps.get(step.name, 0.0) + step.seconds, 2)
            if step.name == f"switch to {opts.color}":
                switched_at = time.monotonic()
                if on_switch:
                    on_switch()
            if step.name == "analysis" and step.status == "failed":
                breach_at = time.monotonic()
    except OceanError as exc:
        error = str(exc)
    took = time.monotonic() - started
    entry = Journal(runtime.settings.state_dir).history(1)[-1]
    return {
        "color": opts.color,
        "outcome": entry["outcome"],
        "seconds": round(took, 2),
        "switch_s": entry.get("switch_s"),
        "rollback_s": entry.get("rollback_s"),
        "decided_after_switch_s": round(breach_at - switched_at, 2)
        if switched_at and breach_at
        else None,
        "analysis": entry.get("analysis"),
        "steps": steps,
        "error": error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vus", type=int, default=50)
    parser.add_argument("--deploys", type=int, default=5)
    parser.add_argument("--rollbacks", type=int, default=3)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument(
        "--runtime", choices=("local", "compose"), default="local",
        help="compose: the containers on the local engine (started when needed)",
    )  # fmt: skip
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="ocean-bench-deploy-"))
    os.chmod(state, 0o755)
    settings = Settings(state_dir=state, ports=PortPlan(free_port_base()))
    runtime = make_runtime(args.runtime, settings)
    results: dict = {
        "date": datetime.date.today().isoformat(),
        "cpus": os.cpu_count(),
        **vars(args),
    }
    results.pop("json_out")
    # compose's `up` starts the engine when it is not running: stop it again after.
    own_engine = args.runtime == "compose" and not runtime.engine.pid()
    try:
        list(stack.up(runtime))
        list(seed(runtime, products=1000, customers=100, orders=100))
        token = secrets.load_or_create(runtime.settings.secrets_file)["SHOP_ADMIN_TOKEN"]

        # 1. zero downtime
        traffic = Traffic.through_nginx(runtime, state, vus=args.vus, duration=600, products=1000)
        runs = []
        try:
            traffic.warm_up(5)
            for _ in range(args.deploys):
                color = deploys.other(runtime.live_color())
                opts = deploys.DeployOptions(color=color, analysis_window=args.window)
                runs.append(timed_deploy(runtime, opts))
                print(f"deploy {len(runs)}: {runs[-1]}", flush=True)
        finally:
            load = traffic.stop()
        results["deploys"] = runs
        results["load"] = {
            "requests": load.requests,
            "failed": load.failed,
            "served_blue": load.served_blue,
            "served_green": load.served_green,
            "p99_ms": load.p99_ms,
        }

        # 2. rollback
        (state / "rollback").mkdir()
        traffic = Traffic.through_nginx(
            runtime, state / "rollback", vus=args.vus, duration=600, products=1000
        )
        rollbacks = []
        try:
            traffic.warm_up(5)
            for _ in range(args.rollbacks):
                color = deploys.other(runtime.live_color())

                def inject(color: str = color) -> None:
                    httpx.put(
                        f"{runtime.url(f'shop-{color}-admin')}/admin/faults",
                        json={"error_rate": 0.2},
                        headers={"Authorization": f"Bearer {token}"},
                    ).raise_for_status()

                opts = deploys.DeployOptions(color=color, analysis_window=args.window)
                rollbacks.append(timed_deploy(runtime, opts, on_switch=inject))
                print(f"rollback {len(rollbacks)}: {rollbacks[-1]}", flush=True)
        finally:
            traffic.stop()
        results["rollbacks"] = rollbacks
    finally:
        list(stack.down(runtime, purge=True, yes=True))
        if own_engine:
            list(runtime.engine.stop())

    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    report(results)


def report(results: dict) -> None:
    load = results["load"]
    print(f"\nk6: {results['vus']} VUs, {load['requests']:,} requests, {load['failed']} failed")
    print(f"served: blue {load['served_blue']:,}, green {load['served_green']:,} (/version)")
    print("\n| deploy | to | outcome | whole deploy | switch | analysis (new color) |")
    print("|---|---|---|---|---|---|")
    for i, run in enumerate(results["deploys"], 1):
        a = run["analysis"] or {}
        p99_ms = 1000 * (a.get("p99_seconds") or 0)
        print(
            f"| {i} | {run['color']} | {run['outcome']} | {run['seconds']:.1f} s | "
            f"{run['switch_s']:.2f} s | {a.get('requests', 0):,.0f} req, "
            f"{a.get('error_ratio', 0):.2%} errors, p99 {p99_ms:.0f} ms |"
        )
    print("\n| rollback | outcome | decided after switch | flip back | measured error ratio |")
    print("|---|---|---|---|---|")
    for i, run in enumerate(results["rollbacks"], 1):
        a = run["analysis"] or {}
        print(
            f"| {i} | {run['outcome']} | {run['decided_after_switch_s']} s | "
            f"{run['rollback_s']} s | {a.get('error_ratio', 0):.2%} |"
        )


if __name__ == "__main__":
    main()
