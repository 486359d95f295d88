"""Bulk seed benchmark: `nox -s bench -- seed` (= python -m tests.bench.seed).

On a stack of its own (temporary state dir, free port base; PostgreSQL, the Redis master
and the shop, which seeds its 1,000 demo products), runs the same procedure as
`invoke seed --orders 1000000` (10,000 new customers, orders over the existing products)
--runs times in a row. Each run adds on top of the previous ones, so run 3 loads into a
database already holding 2M orders: the foreign-key re-validation and the indexes grow
with it. Target (the seed issue): every run ≤ 60 s.

Also records how busy the machine's CPUs were during each run (all processes, in cores):
the load itself keeps ≈ 1.3 cores busy (PostgreSQL plus the row generator), so a figure
near 2 means other work competed with it.

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

import psycopg

from ocean import secrets
from ocean.config import PortPlan, Settings
from ocean.procedures import stack
from ocean.procedures.seed import seed
from ocean.runtime.local import LocalRuntime
from tests.helpers import free_port_base

TARGET_S = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def busy_jiffies() -> int:
    """CPU time spent by everything on the machine (not idle, not iowait), in ticks."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]


def count_orders(runtime: LocalRuntime) -> tuple[int, float]:
    password = secrets.load_or_create(runtime.settings.secrets_file)["POSTGRES_PASSWORD"]
    with psycopg.connect(
        host=runtime.settings.host,
        port=runtime.settings.ports["postgres"],
        user="postgres",
        password=password,
        dbname="shop",
    ) as conn:
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        size = conn.execute("SELECT pg_database_size('shop')").fetchone()[0]
    return orders, size / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--products", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="ocean-bench-seed-"))
    runtime = LocalRuntime(Settings(state_dir=state, ports=PortPlan(free_port_base())))
    results: dict[str, object] = {
        "date": datetime.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "orders": args.orders,
        "customers": args.customers,
        "products": args.products,
        "seed": args.seed,
        "target_s": TARGET_S,
    }
    runs = []
    try:
        for _ in stack.up(runtime, "shop-blue"):
            pass
        for _ in range(args.runs):
            before, _size = count_orders(runtime)
            busy, started = busy_jiffies(), time.monotonic()
            steps = list(seed(runtime, args.products, args.customers, args.orders, args.seed))
            seconds = time.monotonic() - started
            busy_cores = (busy_jiffies() - busy) / CLK_TCK / seconds
            summary = steps[-1].data
            runs.append(
                {
                    "orders_before": before,
                    "seconds": round(seconds, 2),
                    "loader_seconds": summary["seconds"],
                    "rows": summary["total_rows"],
                    "rows_per_second": round(summary["total_rows"] / seconds),
                    "rows_by_table": summary["rows"],
                    "busy_cores": round(busy_cores, 2),
                }
            )
            print(f"run {len(runs)}: {seconds:.1f} s", flush=True)
        results["db_size_mib"] = round(count_orders(runtime)[1])
    finally:
        for _ in stack.down(runtime, purge=True, yes=True):
            pass
    results["runs"] = runs
    results["max_s"] = max(r["seconds"] for r in runs)

    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    print("| run | orders before | wall time | rows | rows/s | CPUs busy (cores) |")
    print("|---|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        print(
            f"| {i} | {r['orders_before']:,} | {r['seconds']:.1f} s | {r['rows']:,} | "
            f"{r['rows_per_second']:,} | {r['busy_cores']:.2f} |"
        )
    print(f"\nslowest: {results['max_s']:.1f} s (target ≤ {TARGET_S:.0f} s)")


if __name__ == "__main__":
    main()
