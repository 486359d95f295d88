"""Load-test capacity benchmark: `nox -s bench -- loadtest` (= python -m tests.bench.loadtest).

On a whole stack of its own (temporary state dir, free port base: Prometheus is needed
for the guards and live progress), through the same procedure as `invoke loadtest`:

  browsing  the browsing scenario (1-3 s think time) at rising VU counts (--vus-steps),
            each --duration s, until p99 >= 200 ms or errors >= 0.1% (or a guard
            stops it); then one run halfway between the last that held and the first
            that did not. At most --max-runs runs. The answer: the highest VU count
            that held.
  stress    the stress scenario stepping the arrival rate up to --stress-rate: the
            breaking point (the highest level with p99 < 200 ms and errors < 0.1%).
            (--stress-rate 0 skips it)
  moonshot  one browsing run at 10,000 VUs (--moonshot-vus, 0 skips it).

k6's peak RSS is sampled from /proc during every run: memory per VU is the slope
between the smallest and the largest browsing runs. The machine's busy cores during
each run, and what else ran (pgrep tests.bench|pytest), are recorded: k6 and the stack
share the machine's cores with whoever else is using it.

Prints a Markdown table for docs/benchmarks.md and writes JSON (--json-out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from ocean.config import REPO_ROOT, PortPlan, Settings
from ocean.loadtest.scenarios import options
from ocean.procedures import loadtest as loadtests
from ocean.procedures import stack
from ocean.procfs import all_pids
from ocean.runtime.local import LocalRuntime
from tests.bench.shop import CLK_TCK, machine_busy_ticks
from tests.helpers import free_port_base

P99_MS = 200.0
MAX_ERRORS = 0.001


class K6Memory:
    """Peak RSS (MiB) of the k6 processes this process started, sampled every 0.5 s."""

    def __init__(self) -> None:
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.5):
            for pid in all_pids():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                if fields.get("Name", "").strip() == "k6" and int(fields["PPid"]) == me:
                    rss_kib = int(fields.get("VmRSS", "0 kB").split()[0])
                    self.peak_mib = max(self.peak_mib, rss_kib / 1024)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak_mib, 1)


def others() -> list[str]:
    """Other test or benchmark processes on the machine right now (the contention)."""
    found = subprocess.run(
        ["pgrep", "-af", "tests.bench|pytest"], capture_output=True, text=True
    ).stdout.splitlines()
    me = str(os.getpid())
    return [line[:120] for line in found if not line.startswith(me + " ")]


def one_run(runtime: LocalRuntime, scenario: str, **kwargs) -> dict:
    opts = options(scenario, runtime.url("nginx"), **kwargs)
    memory = K6Memory()
    busy0, _ = machine_busy_ticks()
    started = time.monotonic()
    steps = list(loadtests.loadtest(runtime, opts))
    wall = time.monotonic() - started
    busy1, _ = machine_busy_ticks()
    peak = memory.stop()
    result = steps[-1].data
    client = result["client"]
    row = {
        "id": result["id"],
        "scenario": scenario,
        "vus": opts.vus,
        "rate": opts.rate,
        "duration_s": result["duration_s"],
        "stopped_by": result["stopped_by"],
        "breach": (result.get("breach") or {}).get("detail"),
        "requests": client["requests"],
        "rps": client["rps"],
        "p95_ms": client["p95_ms"],
        "p99_ms": client["p99_ms"],
        "failed_rate": client["failed_rate"],
        "server_p99_ms": result["server"].get("p99_ms"),
        "k6_peak_rss_mib": peak,
        "machine_busy_cores": round((busy1 - busy0) / CLK_TCK / wall, 2),
        "others": others(),
        "levels": result.get("levels", []),
        "breaking_point": result.get("breaking_point"),
    }
    row["held"] = (
        result["stopped_by"] == "completed"
        and client["p99_ms"] is not None
        and client["p99_ms"] < P99_MS
        and client["failed_rate"] < MAX_ERRORS
    )
    print(
        f"  {scenario} {opts.vus} VUs{f' rate {opts.rate}' if opts.rate else ''}: "
        f"{client['rps']:.0f} rps, p99 {client['p99_ms']} ms, failed "
        f"{client['failed_rate']:.3%}, k6 {peak} MiB, {row['stopped_by']}"
        f" → {'held' if row['held'] else 'not held'}",
        flush=True,
    )
    return row


def browse_search(runtime: LocalRuntime, steps: list[int], duration: int, max_runs: int) -> dict:
    runs: list[dict] = []
    good = bad = None
    for vus in steps:
        if len(runs) >= max_runs:
            break
        row = one_run(runtime, "browsing", vus=vus, duration=f"{duration}s")
        runs.append(row)
        if row["held"]:
            good = vus
        else:
            bad = vus
            break
    if good and bad and len(runs) < max_runs and bad - good > 100:
        mid = (good + bad) // 2
        row = one_run(runtime, "browsing", vus=mid, duration=f"{duration}s")
        runs.append(row)
        good = mid if row["held"] else good
    return {"runs": runs, "highest_vus_held": good, "first_vus_failed": bad}


def memory_per_vu(runs: list[dict]) -> float | None:
    measured = sorted((r["vus"], r["k6_peak_rss_mib"]) for r in runs if r["k6_peak_rss_mib"])
    if len(measured) < 2 or measured[-1][0] == measured[0][0]:
        return None
    (v0, m0), (v1, m1) = measured[0], measured[-1]
    return round((m1 - m0) / (v1 - v0), 3)


def print_table(results: dict) -> None:
    print(
        "\n| run | VUs / rate | rps | p95 ms | p99 ms | failed | k6 RSS MiB | busy cores | held |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    rows = results["browsing"]["runs"] + [r for r in (results.get("moonshot"),) if r]
    rows += [results["stress"]] if results.get("stress") else []
    for r in rows:
        load = f"{r['vus']:,}" + (f" / {r['rate']}/s" if r["rate"] else "")
        print(
            f"| {r['scenario']} | {load} | {r['rps']:,.0f} | {r['p95_ms']} | {r['p99_ms']} | "
            f"{r['failed_rate']:.3%} | {r['k6_peak_rss_mib']} | {r['machine_busy_cores']} | "
            f"{'yes' if r['held'] else 'no'}{' (guard)' if r['stopped_by'] == 'guard' else ''} |"
        )
    stress = results.get("stress")
    if stress and stress["levels"]:
        print("\n| stress level | target/s | done/s | p99 ms | failed | held |")
        print("|---|---|---|---|---|---|")
        for row in stress["levels"]:
            print(
                f"| {row['level']} | {row['target_rate']} | {row['rps']:.0f} | {row['p99_ms']} |"
                f" {row['failed_rate']:.3%} | {'yes' if row['held'] else 'no'} |"
            )
    print(
        f"\nbrowsing: highest VUs holding p99 < {P99_MS:.0f} ms and errors < 0.1%: "
        f"{results['browsing']['highest_vus_held']} (first failing: "
        f"{results['browsing']['first_vus_failed']}); k6 memory per VU: "
        f"{results['k6_mib_per_vu']} MiB"
    )
    if stress:
        best = stress["breaking_point"]
        print(f"stress: held up to {best['rps'] if best else '-'} rps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vus-steps", default="250,500,1000,2000,3000,4000,6000")
    parser.add_argument("--duration", type=int, default=40)
    parser.add_argument("--max-runs", type=int, default=7)
    parser.add_argument("--stress-rate", type=int, default=3000)
    parser.add_argument("--stress-vus", type=int, default=1000)
    parser.add_argument("--stress-duration", type=int, default=80)
    parser.add_argument("--moonshot-vus", type=int, default=10_000)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="ocean-bench-loadtest-"))
    runtime = LocalRuntime(Settings(state_dir=state, ports=PortPlan(free_port_base())))
    results: dict = {
        "date": datetime.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "others_at_start": others(),
        "target": {"p99_ms": P99_MS, "max_errors": MAX_ERRORS, "moonshot_vus": 10_000},
    }
    try:
        print("bringing the stack up", flush=True)
        list(stack.up(runtime))
        steps = [int(v) for v in args.vus_steps.split(",") if v]
        print("browsing: VU search", flush=True)
        results["browsing"] = browse_search(runtime, steps, args.duration, args.max_runs)
        if args.stress_rate:
            print("stress: breaking point", flush=True)
            results["stress"] = one_run(
                runtime,
                "stress",
                vus=args.stress_vus,
                rate=args.stress_rate,
                duration=f"{args.stress_duration}s",
            )
        if args.moonshot_vus:
            print("moonshot", flush=True)
            results["moonshot"] = one_run(
                runtime, "browsing", vus=args.moonshot_vus, duration=f"{args.duration}s"
            )
        runs = results["browsing"]["runs"] + [r for r in (results.get("moonshot"),) if r]
        results["k6_mib_per_vu"] = memory_per_vu(runs)
    finally:
        list(stack.down(runtime, purge=True, yes=True))
    out = args.json_out or REPO_ROOT / "docs" / f"bench-loadtest-{results['date']}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
