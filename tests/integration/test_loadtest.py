"""Load tests on a real stack of its own: a smoke run with real numbers, a guard that
stops k6 when injected faults raise the error ratio, a latency regression caught by
`loadtest-report --compare`, refusal of non-loopback targets and bad input.

Every run here is small (≤ 20 s, ≤ 10 VUs, loopback only); the benchmark
(tests/bench/loadtest.py) runs the big ones.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ocean import secrets
from ocean.errors import OceanError
from ocean.loadtest import generator, machine, results
from ocean.loadtest.scenarios import options
from ocean.model import StepStatus
from ocean.procedures import loadtest as loadtests
from ocean.procedures.seed import seed
from ocean.prom import Prometheus
from ocean.runtime import k6
from ocean.runtime.local import LocalRuntime
from tests.conftest import own_stack
from tests.helpers import cli


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with own_stack(tmp_path_factory, "loadtest") as runtime:
        list(seed(runtime, products=0, customers=10, orders=20))
        yield runtime


def faults(runtime: LocalRuntime, **settings: object) -> None:
    """PUT (or, with no settings, DELETE) the live color's fault injection."""
    token = secrets.load_or_create(runtime.settings.secrets_file)["SHOP_ADMIN_TOKEN"]
    url = f"{runtime.url(f'shop-{runtime.live_color()}-admin')}/admin/faults"
    headers = {"Authorization": f"Bearer {token}"}
    if settings:
        response = httpx.put(url, json=settings, headers=headers, timeout=5)
    else:
        response = httpx.delete(url, headers=headers, timeout=5)
    response.raise_for_status()


def run(runtime: LocalRuntime, scenario: str, **kwargs) -> list:
    opts = options(scenario, runtime.url("nginx"), **kwargs)
    return list(loadtests.loadtest(runtime, opts))


@pytest.fixture(scope="module")
def smoke(stack: LocalRuntime) -> dict:
    """One smoke run (5 VUs, 10 s): the baseline of the regression test too."""
    steps = run(stack, "smoke", vus=5, duration="10s")
    return {"steps": steps, "result": steps[-1].data}


def test_smoke_run_measures_real_numbers(stack: LocalRuntime, smoke: dict):
    result = smoke["result"]
    client, server = result["client"], result["server"]
    assert result["stopped_by"] == "completed" and result["breach"] is None
    assert result["duration_s"] <= 20
    assert client["requests"] >= 100 and client["rps"] > 5
    assert client["failed_rate"] == 0
    assert 0 < client["p50_ms"] <= client["p95_ms"] <= client["p99_ms"] <= client["max_ms"]
    assert server["requests"] >= 50 and server["error_ratio"] == 0
    assert server["p99_ms"] > 0 and server["db_p95_ms"] > 0
    # The requests over 200 ms, from the same histogram as the p99: at most 1% of them
    # exactly when the p99 is within 200 ms.
    assert 0 <= server["slow"] <= server["requests"], server
    assert (server["p99_ms"] <= 200) == (server["slow"] <= 0.01 * server["requests"]), server
    assert server["slow_significant"] in (True, False), server
    verdicts = {(v["slo"], v["source"]): v["passed"] for v in result["verdicts"]}
    assert verdicts[("availability", "client")] is True
    assert verdicts[("availability", "server")] is True
    assert verdicts[("cache_hit_ratio", "server")] is None  # 10 s: a cold cache, not judged
    # Live progress came as steps with numbers.
    progress = [s for s in smoke["steps"] if s.name == "progress"]
    assert len(progress) >= 5
    assert progress[-1].data["requests"] > 0 and progress[-1].data["rps"] > 0
    # Saved beside each other, and k6's metrics reached Prometheus under the test id.
    run_dir = results.runs_dir(stack.settings) / result["id"]
    for name in ("params.json", "summary.json", "result.json", "timeseries.json", "chart.html"):
        assert (run_dir / name).stat().st_size > 0, name
    assert "<svg" in (run_dir / "chart.html").read_text()
    assert len(json.loads((run_dir / "timeseries.json").read_text())) >= 5
    with Prometheus.of(stack) as prom:
        pushed = prom.query(f'sum(k6_http_reqs_total{{testid="{result["id"]}"}})')
    assert float(pushed[0]["value"][1]) >= 100
    textfile = (stack.settings.data / "textfile" / "ocean_loadtest.prom").read_text()
    assert 'ocean_loadtest_rps{scenario="smoke"}' in textfile


def test_guard_stops_k6_when_injected_errors_breach(stack: LocalRuntime):
    """20% injected 500s from 4 s into a 60 s run: the error-ratio guard stops k6
    within 15 s of the injection, and the verdict names the guard."""
    injected: dict[str, float] = {}

    def inject() -> None:
        time.sleep(4)
        faults(stack, error_rate=0.2)
        injected["at"] = time.monotonic()

    # The server-side guard alone (k6's own failures would trip client_error_ratio too).
    only = ["client_error_ratio=off"]
    opts = options("smoke", stack.url("nginx"), vus=5, duration="60s", guards=only)
    steps, stopped = [], None
    thread = threading.Thread(target=inject)
    try:
        thread.start()
        for step in loadtests.loadtest(stack, opts):
            steps.append(step)
            if step.name == "k6 stopped":
                stopped = time.monotonic()
    finally:
        thread.join()
        faults(stack)
    result = steps[-1].data
    assert stopped is not None, [s.name for s in steps]
    assert stopped - injected["at"] <= 15, stopped - injected["at"]
    assert result["stopped_by"] == "guard" and result["passed"] is False
    assert result["breach"]["guard"] == "error_ratio"
    assert "guard error_ratio" in steps[-1].detail
    assert result["duration_s"] < 30
    assert any(s.name == "guard error_ratio" and s.status == "failed" for s in steps)


def test_compare_flags_injected_latency(stack: LocalRuntime, smoke: dict):
    """A second run with 100 ms injected latency: `loadtest-report --compare` flags it."""
    faults(stack, latency_ms=100)
    try:
        done = cli(
            stack, "loadtest", "--scenario", "smoke", "--vus", "5", "--duration", "10s", "--json"
        )
    finally:
        faults(stack)
    assert done.stdout, done.stderr
    slow = json.loads(done.stdout)
    assert slow["client"]["p50_ms"] >= 100, slow["client"]
    base = smoke["result"]["id"]
    report = cli(stack, "loadtest-report", "--id", slow["id"], "--compare", base)
    assert report.returncode == 1, report.stderr
    assert "regression" in report.stderr and "p99 ms" in report.stderr
    data = loadtests.report(stack, slow["id"], base, 0.2)
    # 100 ms on every request moves the median and p95 for certain; the baseline's own
    # p99 on a busy machine can sit past 200 ms (seen: 199 ms beside another session's
    # tests) and hide the shift there, so p99 is held to the report's own arithmetic.
    assert {"p50 ms", "p95 ms"} <= set(data["regressions"]), data["rows"]
    p99 = next(row for row in data["rows"] if row["metric"] == "p99 ms")
    floor = results.LATENCY_FLOOR_MS
    flagged = p99["run"] > p99["base"] * 1.2 and p99["run"] - p99["base"] >= floor
    assert ("p99 ms" in data["regressions"]) == flagged, p99
    # The baseline against itself: nothing to flag.
    same = loadtests.report(stack, base, base, 0.2)
    assert same["regressions"] == []


def test_a_starved_load_generator_makes_the_run_inconclusive(
    stack: LocalRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """k6 pinned to one core at nice 19, a busy loop (nice 0) on that core from its
    first poll until its 10 s are over, asked for 30 iterations/s with 3 VUs: it gets a
    sliver of a CPU (a few requests a second), drops most iterations, and its own clock
    runs late. The run is inconclusive, limited by the load generator, with k6's
    figures; not an SLO failure. A busier machine only starves k6 more; the one outcome
    it can change is the shop's own latency, and a shop that breaches must fail the run
    whatever k6 did (asserted then instead)."""
    core = max(os.sched_getaffinity(0))
    real = k6.k6_binary()
    starved = tmp_path / "k6-starved"  # execs k6: the procedure still sees k6's pid
    starved.write_text(
        f"#!{sys.executable}\nimport os, sys\nos.sched_setaffinity(0, {{{core}}})\n"
        f"os.nice(19)\nos.execv({real!r}, [{real!r}, *sys.argv[1:]])\n"
    )
    starved.chmod(0o755)
    monkeypatch.setattr(k6, "k6_binary", lambda: str(starved))
    hog = (
        f"import os, time\nos.sched_setaffinity(0, {{{core}}})\n"
        "end = time.monotonic() + 40\nwhile time.monotonic() < end: pass\n"
    )
    hogs: list[subprocess.Popen] = []
    steps = []
    opts = options("performance", stack.url("nginx"), vus=3, rate=30, duration="10s")
    opts = dataclasses.replace(opts, browser=False)  # k6 alone
    try:
        for step in loadtests.loadtest(stack, opts):
            steps.append(step)
            if step.name != "progress":
                continue
            if not hogs and step.data["t"] < 8:
                hogs = [subprocess.Popen([sys.executable, "-c", hog]) for _ in range(1)]
            elif step.data["t"] >= 11:  # k6's duration is over: let it write its summary
                for proc in hogs:
                    proc.kill()
    finally:
        for proc in hogs:
            proc.kill()
            proc.wait()
    assert hogs, [s.detail for s in steps]
    result, done = steps[-1].data, steps[-1]
    gen = result["generator"]
    verdicts = {(v["slo"], v["source"]): v for v in result["verdicts"]}
    assert gen["k6_cores"] == 1, gen
    assert gen["k6_saturated"] and generator.saturated(gen), gen
    assert gen["k6_wait_share"] >= generator.WAIT_MAX, gen
    assert any(s.data.get("k6_cpu_pct") is not None for s in steps if s.name == "progress")
    if result["limited_by"] == "machine":
        # Other processes kept this machine busy (a CI neighbour, the busy-suite run's
        # hog): they are named first, and nothing timed is judged either way.
        assert machine.starved(gen) and result["outcome"] == "inconclusive", result
        assert latency_outcomes(result) <= {"pass", "inconclusive"}, result
        return
    if any(v["outcome"] == "fail" for v in result["verdicts"] if v["source"] == "server"):
        # This machine was too busy for the shop itself: its breach stands.
        assert result["outcome"] == "fail" and result["limited_by"] == "server", result
        assert "the load generator was saturated too" in result["limit_detail"]
        return
    assert result["limited_by"] == "load generator", result["limit_detail"]
    assert result["outcome"] == "inconclusive" and result["passed"] is False
    assert done.status == StepStatus.INCONCLUSIVE
    assert "inconclusive: load generator" in done.detail
    # 30/s asked; a k6 on a sliver of one core cannot start them: dropped, and said so.
    assert gen["dropped_share"] > generator.DROPPED_MAX and result["undelivered"], gen
    assert f"{gen['dropped_iterations']:,} iterations dropped" in result["limit_detail"]
    latency = verdicts[("latency", "client")]
    assert latency["outcome"] in ("pass", "inconclusive"), latency  # never "fail"
    assert verdicts[("availability", "client")]["outcome"] == "pass"
    limited = next(s for s in steps if s.name == "limited by")
    assert limited.detail.startswith("load generator: k6 saturated and dropped")
    # Saved, and told by loadtest-report like the run said it.
    saved = results.load(stack.settings, result["id"])
    assert saved.outcome == "inconclusive" and saved.limited_by == "load generator"
    shown = cli(stack, "loadtest-report", "--id", result["id"])
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stderr.split())
    assert "inconclusive: load generator" in text
    assert "limited by load generator" in text and "waited for a CPU" in text


def latency_outcomes(result: dict) -> set[str]:
    return {v["outcome"] for v in result["verdicts"] if "latency" in v["slo"]}


def test_non_loopback_target_is_refused(stack: LocalRuntime):
    for target in ("http://10.1.2.3:8080", "http://example.com", "ftp://127.0.0.1/"):
        done = cli(stack, "loadtest", "--scenario", "smoke", "--target", target)
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --target"), done.stderr
    with pytest.raises(OceanError, match="not loopback"):
        options("smoke", "http://192.168.1.1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "nope"], "unknown scenario 'nope'"),
        (["--scenario", "smoke", "--vus", "50000"], "--vus must be 1..20,000"),
        (["--scenario", "smoke", "--duration", "soon"], "not a duration"),
        (["--scenario", "browsing", "--rate", "10"], "--rate applies to"),
        (["--scenario", "smoke", "--guard", "bogus=1"], "unknown guard 'bogus'"),
        (["--scenario", "smoke", "--guard", "error_ratio"], "not NAME=VALUE"),
    ],
)
def test_bad_input_is_one_line(stack: LocalRuntime, args: list[str], message: str):
    done = cli(stack, "loadtest", *args)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and message in done.stderr, done.stderr


def test_report_of_unknown_run(stack: LocalRuntime, smoke: dict):
    done = cli(stack, "loadtest-report", "--id", "20990101-000000-none-0000")
    assert done.returncode == 1 and "no load test" in done.stderr
    shown = cli(stack, "loadtest-report", "--id", smoke["result"]["id"])
    assert shown.returncode == 0 and "availability" in shown.stderr


# -- from the console -------------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_console_runs_a_load_test(stack: LocalRuntime):
    """The Load tests screen: smoke, 5 VUs, 6 s; live rps arrives in the sparkline and
    the verdicts fill the table."""
    import time

    from textual.widgets import DataTable, Input

    from tui.app import OceanConsole
    from tui.screens.loadtest import LoadTestScreen
    from tui.widgets.step_log import StepLog

    prom = Prometheus.of(stack)
    app = OceanConsole(stack, prom, refresh=2.0)
    try:
        async with app.run_test(size=(140, 44)) as pilot:
            await pilot.press("4")
            await pilot.pause(0.2)
            screen = app.screen
            assert isinstance(screen, LoadTestScreen)
            screen.query_one("#vus", Input).value = "5"
            screen.query_one("#duration", Input).value = "6s"
            await pilot.press("r")
            deadline = time.monotonic() + 90
            text = ""
            while time.monotonic() < deadline:
                await pilot.pause(0.5)
                text = "\n".join(str(line.text) for line in screen.query_one(StepLog).lines)
                if "loadtest done" in text or "✗ " in text.split("loadtest done")[0][-200:]:
                    break
            assert "loadtest done" in text, text
            assert screen.rps and max(screen.rps) > 0  # live progress reached the screen
            verdicts = screen.query_one("#verdicts", DataTable)
            assert verdicts.row_count >= 3
    finally:
        prom.close()


def test_browser_journeys_during_a_run_judge_page_load(stack: LocalRuntime):
    """--browser: Chromium walks the storefront while k6 runs; page_load gets a verdict
    with the measured figures, and the console's metric is written."""
    steps = run(stack, "smoke", vus=3, duration="12s", browser=True)
    result = steps[-1].data
    page = [v for v in result["verdicts"] if v["slo"] == "page_load"]
    assert len(page) == 1 and page[0]["source"] == "browser"
    assert "worst load" in page[0]["measured"]
    if page[0]["outcome"] == "inconclusive":
        # Chromium's clock is on this machine: a slow page is excused only when the run
        # names the machine (work outside it took the cores) or k6 as its limit (at
        # load 12, home loaded in 2066 ms against 2500 and was excused by the machine).
        limit = result["limited_by"]
        assert limit in ("machine", "load generator"), result["limit_detail"]
        assert page[0]["excused"].startswith(limit), page
        assert limit != "machine" or machine.starved(result["generator"]), result
    else:
        assert page[0]["passed"] is True, page[0]
    prom = (stack.settings.data / "textfile").glob("*.prom")
    assert any("ocean_page_load_p95_seconds" in p.read_text() for p in prom)
