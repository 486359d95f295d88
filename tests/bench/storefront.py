"""Storefront page load in a real browser under API load: `nox -s bench -- storefront`
(= tests.bench.storefront).

On a stack of its own (temporary state dir, free port base; PostgreSQL, the Redis
master, nginx and both shop colors, blue live), stock topped up by SQL, then:

  alone       the browser journey (testing/k6/storefront_browser.js: home → category →
              product → add to cart → cart → checkout → order), --iterations times, idle
  under load  the same while testing/k6/bench/browse.js runs --api-vus (100) browsing
              VUs through nginx (bounded: --api-seconds)

Target (issue 10, monitoring/slo.yaml page_load): under load, every page's p95 load
event < 2 s and p95 LCP < 2.5 s. k6 browser starts one Chromium per iteration, one at
a time here (1 VU): ≈ 1 iteration/s at most on 2 cores, so the runs are short.
Prints a Markdown table for docs/benchmarks.md and writes JSON (--json-out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ocean import slo
from ocean.config import REPO_ROOT, PortPlan, Settings
from ocean.procedures import stack
from ocean.render import write_atomic
from ocean.runtime.local import LocalRuntime
from ocean.storefront import PAGES
from tests.bench.shop import Bench, Phase, k6_figures, run_k6, timed
from tests.helpers import free_port_base


def browser_phase(runtime: LocalRuntime, iterations: int, seconds: int) -> dict[str, Any]:
    started = time.monotonic()
    # Through the runtime: Chromium gets the stack certificate's pin.
    run = runtime.run_browser(
        runtime.url("nginx"),
        iterations=iterations,
        max_duration=f"{seconds}s",
        timeout=seconds + 60,
    )
    return {
        "ok": run.ok,
        "returncode": run.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "journeys": run.summary.get("journeys"),
        "p95_ms": run.p95_ms(),
        "pages": run.summary.get("pages"),
        "failures": run.failures,
    }


def table(results: dict[str, Any]) -> str:
    objective = results["objective"]
    lines = [
        "| page | alone: load p95 | alone: LCP p95 | under load: load p95 | "
        "under load: FCP p95 | under load: LCP p95 | meets |",
        "|---|---|---|---|---|---|---|",
    ]
    alone = results["alone"]["p95_ms"]
    loaded = results["under_load"]["p95_ms"]
    for page in PAGES:
        a, b = alone.get(page, {}), loaded.get(page, {})
        meets = (
            b.get("load", 1e9) < objective["load_ms"] and b.get("lcp", 1e9) < objective["lcp_ms"]
        )
        lines.append(
            f"| {page} | {a.get('load', '-')} ms | {a.get('lcp', '-')} ms | {b.get('load', '-')} ms"
            f" | {b.get('fcp', '-')} ms | {b.get('lcp', '-')} ms | {'yes' if meets else 'NO'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20, help="browser journeys per phase")
    parser.add_argument("--api-vus", type=int, default=100)
    parser.add_argument("--api-seconds", type=int, default=90, help="bound of the API load")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    objective = slo.load().page_load
    state = Path(tempfile.mkdtemp(prefix="ocean-bench-storefront-"))
    workdir = Path(tempfile.mkdtemp(prefix="ocean-bench-storefront-k6-"))
    runtime = LocalRuntime(Settings(state_dir=state, ports=PortPlan(free_port_base())))
    results: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "iterations": args.iterations,
        "api_vus": args.api_vus,
        "objective": {"load_ms": objective.threshold_ms, "lcp_ms": objective.lcp_threshold_ms},
    }
    try:
        write_atomic(
            runtime.settings.etc / "upstream.conf", runtime.spec.render_upstream(["shop-blue"])
        )
        services = "postgres,redis-master,shop-blue,shop-green,nginx"
        results["up_s"] = round(timed(stack.up(runtime, services, wait_targets=False)), 2)
        bench = Bench(runtime, workdir, args.api_seconds)
        bench.top_up_stock(100_000)
        front = runtime.url("nginx")
        print(f"stack up in {results['up_s']} s; browser alone", flush=True)
        results["alone"] = browser_phase(runtime, args.iterations, 120)

        print(f"browser under {args.api_vus} browsing API VUs", flush=True)
        api: dict[str, Any] = {}

        def api_load() -> None:
            phase = Phase("browse", "browse.js", args.api_vus, front, "blue")
            summary, _, code = run_k6(phase, args.api_seconds, workdir, runtime.access().k6_env())
            api.update(k6_figures(summary), exit_code=code)

        thread = threading.Thread(target=api_load)
        thread.start()
        time.sleep(8)  # k6 ramped up and the shop warm
        results["under_load"] = browser_phase(runtime, args.iterations, args.api_seconds - 15)
        thread.join(args.api_seconds + 90)
        results["api_load"] = api
        loaded = results["under_load"]["p95_ms"]
        results["meets"] = results["under_load"]["ok"] and all(
            page in loaded
            and loaded[page]["load"] < objective.threshold_ms
            and loaded[page]["lcp"] < objective.lcp_threshold_ms
            for page in PAGES
        )
    finally:
        timed(stack.down(runtime, purge=True, yes=True))
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)

    out = args.json_out or REPO_ROOT / "docs" / f"bench-storefront-{results['date']}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(table(results))
    api = results.get("api_load", {})
    print(
        f"\nAPI load: {args.api_vus} VUs, {api.get('rps', 0):.0f} req/s, "
        f"p99 {api.get('p99_ms', 0):.0f} ms, failed {api.get('failed_rate', 0):.4f}; "
        f"journeys under load: {results['under_load']['journeys']}; meets: {results['meets']}"
    )
    print(f"JSON: {out}")


if __name__ == "__main__":
    main()
