"""Load tests against the SLOs: run a k6 scenario, watch the stack from Prometheus while
it runs, stop it when a server-side guard breaches, judge the run per SLO.

``loadtest()`` yields a ``progress`` INFO step per poll (data: requests, rps, p95/p99,
errors, guard values, k6's CPU) that front ends show live, then one step per verdict, a
``limited by`` step (which side limited the run, with the figures:
ocean/loadtest/generator.py) and a last ``loadtest done`` step (FAILED when a verdict
failed or a guard stopped the run, INCONCLUSIVE when only the load generator's doing
failed) whose data is the whole :class:`~ocean.loadtest.results.LoadResult`. k6 streams its metrics
to Prometheus (remote write, tagged ``testid=<id>``), which is also where progress
comes from; the runtime starts k6 (``runtime.run_k6``).

``options()`` is the one door to a run for both front ends: what the user asked for,
through the scenario's defaults and the ceilings. ``report()`` reads saved runs back and
compares two (``compare_latest()``: the newest with the one before).
"""

from __future__ import annotations

import json
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from ocean import environments_apply, slo, statedir, storefront, textfile
from ocean.access import TRAFFIC_HEADER
from ocean.errors import OceanError
from ocean.fsys import private_dir, remove_other_access
from ocean.loadtest import chart, generator, guards, machine, results, scenarios
from ocean.loadtest.scenarios import SCENARIOS, LoadOptions
from ocean.model import Step, StepStatus
from ocean.procfs import stop_child
from ocean.prom import PromError, Prometheus
from ocean.rollout.analysis import Snapshot, errors_significant
from ocean.runtime.base import Runtime

POLL_S = 1.0
# Tags every sample carries (k6's defaults add url, which has one value per product id:
# too many series for Prometheus). The scripts name every request.
SYSTEM_TAGS = "status,method,name,group,check,scenario,expected_response,error_code"
STOP_GRACE_S = 30.0  # past duration + this, k6 is killed (its own stop is 5-10 s)
PROM_FAILURES = 5  # consecutive failed polls before the run says so
# A verdict's (and the run's) outcome as a step.
STATUS = {
    results.PASS: StepStatus.OK,
    results.FAIL: StepStatus.FAILED,
    results.INCONCLUSIVE: StepStatus.INCONCLUSIVE,
    results.NOT_MEASURED: StepStatus.SKIPPED,
}


def options(
    runtime: Runtime,
    scenario: str,
    vus: int | str | None = None,
    duration: str | None = None,
    rate: int | str | None = None,
    guards: list[str] | tuple[str, ...] = (),
    browser: bool = False,
    target: str = "",
) -> LoadOptions:
    """A run's options as `invoke loadtest` and the console take them: what is left out
    (None, "", a count of 0: a flag's default, a blank field) is the scenario's
    default, the ceilings of loadtest/scenarios.py hold, and the target is this stack's
    nginx unless another loopback URL is given; ``browser`` adds the storefront walk to
    a scenario without it (performance always has it). OceanError names the first
    problem, as the task's flag."""
    return scenarios.options(
        scenario,
        target or runtime.url("nginx"),
        _count(vus),
        duration or None,  # "0" is a duration asked for, and refused
        _count(rate),
        list(guards),
        browser or None,
    )


def _count(value: int | str | None) -> int | str | None:
    """None for a count left out: the task's --vus and --rate default to 0, so a field
    holding 0 says what the flag --vus 0 says."""
    text = str(value).strip() if value is not None else ""
    return None if text in ("", "0") else value


def new_id(scenario: str, at: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(at))
    return f"{stamp}-{scenario}-{secrets.token_hex(2)}"


def _scalar(prom: Prometheus, expr: str) -> float | None:
    result = prom.query(expr)
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if value != value else value  # NaN: no data in the window


def _server_snapshot(prom: Prometheus, api: str) -> Snapshot:
    """Every color's API request totals now (raw counters: see rollout/analysis.py)."""
    by_status = prom.query(f"sum by (status) (shop_http_requests_total{{{api}}})")
    by_le = prom.query(f"sum by (le) (shop_http_request_duration_seconds_bucket{{{api}}})")
    counts = {r["metric"].get("status", ""): float(r["value"][1]) for r in by_status}
    buckets = {float(r["metric"]["le"]): float(r["value"][1]) for r in by_le}
    return Snapshot(sum(counts.values()), counts.get("5xx", 0.0), buckets)


def _catalogue(runtime: Runtime, target: str) -> int:
    """How many products the target serves (the scripts pick ids in 1..N); over HTTPS
    it trusts the stack's CA, as k6 will (SSL_CERT_FILE)."""
    access = runtime.access()
    try:
        response = httpx.get(
            f"{target}/api/products",
            params={"limit": 1},
            timeout=5,
            verify=access.ssl_context(),
            headers={TRAFFIC_HEADER: access.traffic_token},
        )
        response.raise_for_status()
        return int(response.json().get("total", 0))
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        raise OceanError(
            f"the shop does not answer at {target} ({exc}): start the stack with ./ocean up"
        ) from None


class _Progress:
    """Polls Prometheus for what k6 pushed (client) and what the shop did (server)."""

    def __init__(self, prom: Prometheus, run_id: str, window_s: float, api: str) -> None:
        self.prom = prom
        self.sel = f'testid="{run_id}"'
        self.window = f"{max(1, round(window_s))}s"
        self.api = api
        self.last: tuple[float, float] | None = None

    def poll(self, at_s: float) -> dict[str, Any]:
        q = self.prom
        requests = _scalar(q, f"sum(k6_http_reqs_total{{{self.sel}}})") or 0.0
        failed = _scalar(q, f'sum(k6_http_reqs_total{{{self.sel},expected_response="false"}})')
        rps = 0.0
        if self.last is not None and at_s > self.last[0]:
            rps = max(0.0, (requests - self.last[1]) / (at_s - self.last[0]))
        self.last = (at_s, requests)
        point: dict[str, Any] = {
            "t": round(at_s, 1),
            "vus": _scalar(q, f"max(k6_vus{{{self.sel}}})"),
            "requests": int(requests),
            "rps": round(rps, 1),
            "errors": int(failed or 0),
            "ws_sessions": int(_scalar(q, f"sum(k6_ws_sessions_total{{{self.sel}}})") or 0),
            "client_p95_ms": _ms(
                _scalar(q, f'max(k6_http_req_duration_p95{{{self.sel},expected_response="true"}})')
            ),
            "client_p99_ms": _ms(
                _scalar(q, f'max(k6_http_req_duration_p99{{{self.sel},expected_response="true"}})')
            ),
        }
        for pct in (95, 99):
            point[f"server_p{pct}_ms"] = _ms(
                _scalar(
                    q,
                    f"histogram_quantile(0.{pct}, sum by (le) (rate("
                    f"shop_http_request_duration_seconds_bucket{{{self.api}}}[{self.window}])))",
                )
            )
        # The live picture for front ends: the shop's latency over the last window.
        point["p95_ms"], point["p99_ms"] = point["server_p95_ms"], point["server_p99_ms"]
        return point


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _progress_line(p: dict[str, Any]) -> str:
    def ms(key: str) -> str:
        return "-" if p.get(key) is None else f"{p[key]:.0f}"

    return (
        f"{p['t']:.0f}s {int(p.get('vus') or 0)} VUs {p['requests']:,} req {p['rps']:.0f}/s"
        f" errors {p['errors']} server p95/p99 {ms('server_p95_ms')}/{ms('server_p99_ms')} ms"
        f" k6 p99 {ms('client_p99_ms')} ms"
        + (f" k6 CPU {p['k6_cpu_pct']:.0f}%" if p.get("k6_cpu_pct") is not None else "")
        + (f" websockets {p['ws_sessions']:,}" if p.get("ws_sessions") else "")
    )


def _k6_args(opts: LoadOptions, run_id: str, summary: Path, products: int) -> list[str]:
    env = {
        "BASE_URL": opts.target,
        "VUS": str(opts.vus),
        "DURATION": f"{opts.duration_s:g}s",
        "PRODUCTS": str(products),
        "SUMMARY_JSON": str(summary),
    }
    if opts.rate is not None:
        env["RATE"] = str(opts.rate)
    args = ["run", "--quiet", "--no-color", "--tag", f"testid={run_id}"]
    args += ["--system-tags", SYSTEM_TAGS, "-o", "experimental-prometheus-rw"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    return [*args, SCENARIOS[opts.scenario].script]


class _BrowserJourneys:
    """The storefront walked in Chromium while k6 loads the API, for the page_load SLO.

    One browser, in a thread (it blocks), as many journeys as fit in the run; bounded
    by the run's duration inside k6 and a timeout outside it.
    """

    def __init__(self, runtime: Runtime, opts: LoadOptions) -> None:
        self.result: Any = None
        self.error = ""
        seconds = max(10, int(opts.duration_s))

        def walk() -> None:
            try:
                self.result = runtime.run_browser(
                    opts.target,
                    iterations=max(3, seconds // 10),
                    max_duration=f"{seconds}s",
                    timeout=seconds + 90,
                )
            except OceanError as exc:
                self.error = str(exc)

        self.thread = threading.Thread(target=walk, name="storefront-browser", daemon=True)
        self.thread.start()
        self.deadline = time.monotonic() + seconds + 120

    def verdict(self, slos: slo.SLOs) -> tuple[results.Verdict, dict]:
        self.thread.join(timeout=max(0.0, self.deadline - time.monotonic()))
        if self.thread.is_alive():
            self.error = "the browser journeys did not end in time"
        run = self.result
        p95 = run.p95_ms() if run is not None else {}
        failure = self.error
        if not failure and run is not None and run.failures:
            failure = run.failures[0][:160]
        verdict = results.page_load_verdict(p95, slos.page_load, storefront.PAGES, failure)
        return verdict, p95


def loadtest(runtime: Runtime, opts: LoadOptions) -> Iterator[Step]:
    """Run ``opts.scenario`` against ``opts.target`` under the server-side guards."""
    settings = runtime.settings
    statedir.require(settings.state_dir)  # reading the stack's secrets would make them
    # slo.yaml with the environment's overrides (stack/environments: slo.*)
    slos = environments_apply.slos(slo.load(root=settings.repo_root), settings.env)
    limits = results.ClientLimits.load(settings.repo_root)
    run_guards = guards.resolve(slos, opts.guards)
    scrape = float(getattr(runtime, "analysis_interval", 1.0) or 1.0)
    window_s = max(10.0, 5 * scrape)
    prom = Prometheus.of(runtime)
    try:
        if not prom.ready():
            raise OceanError(
                f"Prometheus does not answer at {prom.url}: the guards and live progress need "
                "it (./ocean up)"
            )
        yield from _run(runtime, opts, prom, slos, limits, run_guards, window_s, scrape)
    finally:
        prom.close()
        # What k6, the browser and we wrote there, for our eyes only (issue 25).
        remove_other_access(results.runs_dir(settings))


def _live_build(runtime: Runtime) -> dict:
    return runtime.color_build(runtime.live_color()).as_dict()


def _run(
    runtime: Runtime,
    opts: LoadOptions,
    prom: Prometheus,
    slos: slo.SLOs,
    limits: results.ClientLimits,
    run_guards: list[guards.Guard],
    window_s: float,
    scrape: float,
) -> Iterator[Step]:
    settings = runtime.settings
    products = _catalogue(runtime, opts.target)
    if products < 1:
        raise OceanError(f"the shop at {opts.target} has no products: ./ocean seed --products 100")
    started = time.time()
    run_id = new_id(opts.scenario, started)
    run_dir = private_dir(results.runs_dir(settings)) / run_id
    run_dir.mkdir(mode=0o700)
    summary_path = run_dir / "summary.json"
    args = _k6_args(opts, run_id, summary_path, products)
    params = {
        **opts.as_dict(),
        "id": run_id,
        "products": products,
        "guards": [g.as_dict() for g in run_guards],
        "guard_window_s": window_s,
        "k6_args": args,
        # Which shop build took the load (the staging promotion gate matches on it):
        # known only when the target is this stack's own nginx.
        "shop_build": _live_build(runtime) if opts.target == runtime.url("nginx") else None,
    }
    (run_dir / "params.json").write_text(json.dumps(params, indent=2) + "\n")
    api = slos.api_selector
    try:
        before = _server_snapshot(prom, api)
    except PromError as exc:
        raise OceanError(f"Prometheus: {exc}") from None
    rate = f" at {opts.rate}/s" if opts.rate else ""
    yield Step(
        "loadtest start",
        StepStatus.INFO,
        f"{run_id}: {opts.scenario}, {opts.vus} VUs{rate} for {opts.duration_s:g}s → "
        f"{opts.target}; guards: {', '.join(g.describe() for g in run_guards) or 'none'}",
        data=params,
    )
    env = {
        "K6_PROMETHEUS_RW_SERVER_URL": f"{prom.url}/api/v1/write",
        "K6_PROMETHEUS_RW_PUSH_INTERVAL": f"{max(1, round(scrape))}s",
        "K6_PROMETHEUS_RW_TREND_STATS": "p(95),p(99)",
        # k6's Go GC competes with the stack for the cores: collect less often.
        "GOGC": "400",
    }
    # Who else used the cores meanwhile: everything but the stack's services (and what
    # runs them), this process and its children (k6, Chromium), read before k6 starts
    # (loadtest/machine.py).
    others = machine.MachineWatch(
        {s.pid for s in runtime.status() if s.pid}, engine=runtime.engine_pids()
    )
    proc = runtime.run_k6(args, env, run_dir / "k6.log")
    t0 = time.monotonic()
    cpu = generator.CpuWatch(proc.pid, 0.0)  # k6's own CPU: was the client the bottleneck?
    browser = _BrowserJourneys(runtime, opts) if opts.browser else None
    deadline = t0 + opts.duration_s + STOP_GRACE_S
    watch = guards.Watch(run_guards)
    progress = _Progress(prom, run_id, window_s, api)
    series: list[dict[str, Any]] = []
    breach: guards.Breach | None = None
    stopped_by = "completed"
    prom_failures = 0
    try:
        while proc.poll() is None:
            time.sleep(max(0.0, POLL_S - (time.monotonic() - t0) % POLL_S))
            at_s = time.monotonic() - t0
            k6_cpu = cpu.sample(at_s)
            others.sample()
            if time.monotonic() > deadline:
                stopped_by = "deadline"
                break
            try:
                point = progress.poll(at_s)
                values = {
                    g.name: _scalar(prom, guards.expression(g, window_s, api, run_id))
                    for g in run_guards
                }
            except PromError as exc:
                prom_failures += 1
                if prom_failures == PROM_FAILURES:
                    yield Step("prometheus", StepStatus.INFO, f"unreachable, guards blind: {exc}")
                continue
            prom_failures = 0
            point.update(k6_cpu)
            point["guards"] = {
                g.name: None if values[g.name] is None else round(values[g.name] * g.scale, 6)
                for g in run_guards
            }
            series.append(point)
            yield Step("progress", StepStatus.INFO, _progress_line(point), data=point)
            for g in run_guards:
                value = point["guards"][g.name]
                tripped = watch.observe(g.name, value, at_s)
                if tripped:
                    breach = tripped
                    break
            if breach:
                stopped_by = "guard"
                yield Step(f"guard {breach.guard}", StepStatus.FAILED, breach.detail)
                break
    finally:
        # SIGINT: k6 stops and still writes its summary; also when the caller stops early.
        stop_child(proc, signal.SIGINT, 20.0)
    stopped_at = time.monotonic() - t0
    others.sample()
    page_verdict = None
    if browser is not None:
        yield Step("browser", StepStatus.INFO, "waiting for the storefront journeys to end")
        page_verdict, p95 = browser.verdict(slos)
        if p95:
            textfile.record_page_load(settings, p95)
    if breach:
        yield Step(
            "k6 stopped",
            StepStatus.INFO,
            f"{stopped_at - breach.at_s:.1f}s after the guard tripped",
            seconds=stopped_at,
        )
    if not summary_path.exists():
        tail = (run_dir / "k6.log").read_text(errors="replace")[-600:].strip()
        raise OceanError(f"k6 wrote no summary (exit {proc.returncode}): {tail.splitlines()[-1:]}")
    summary = json.loads(summary_path.read_text())
    time.sleep(2 * scrape)  # the last requests reach Prometheus
    cache_guard = guards.defaults(slos)["cache_hit_ratio"]
    server = _server_figures(prom, before, api, stopped_at, cache_guard.grace_s, slos.latency)
    client = results.client_figures(summary)
    slo_limits = {
        "error_ratio": slos.availability.error_budget,
        "p99_ms": slos.latency.threshold_ms or 0,
        "db_p95_ms": slos.db_query_latency.threshold_ms,
        "cache_hit_ratio": slos.cache_hit_ratio.min_ratio,
    }
    levels, best = results.stress_levels(summary, limits)
    verdicts = results.verdicts(client, server, limits, slo_limits) + (
        [page_verdict] if page_verdict else []
    )
    gen = {**generator.figures(cpu.figures(), client, server), **others.figures()}
    judged = generator.judge(verdicts, gen, breach.as_dict() if breach else None, stopped_by)
    result = results.LoadResult(
        id=run_id,
        scenario=opts.scenario,
        params=params,
        started=started,
        duration_s=round(stopped_at, 1),
        k6_exit=proc.returncode,
        stopped_by=stopped_by,
        client=client,
        server=server,
        verdicts=verdicts,
        breach=breach.as_dict() if breach else None,
        levels=levels,
        breaking_point=best,
        limited_by=judged.limited_by,
        generator=gen,
        limit_detail=judged.detail,
        undelivered=judged.undelivered,
    )
    results.save(run_dir, result, series)
    title = f"{run_id}: {opts.scenario}, {opts.vus} VUs{rate}"
    (run_dir / "chart.html").write_text(chart.render(title, series, breach and breach.at_s))
    textfile.record_loadtest(
        settings, opts.scenario, result.passed, (client["p99_ms"] or 0) / 1000, client["rps"]
    )
    for verdict in result.verdicts:
        yield Step(
            f"slo {verdict.slo} ({verdict.source})",
            STATUS[verdict.outcome],
            verdict.detail(),
        )
    if levels:
        capacity = _capacity_line(levels, best)
        if result.limited_by in (results.LOAD_GENERATOR, results.MACHINE):
            capacity += f" (the {result.limited_by} was the limit: a lower bound)"
        yield Step("capacity", StepStatus.INFO, capacity, data={"levels": levels})
    yield Step(
        "limited by",
        StepStatus.INFO,
        f"{result.limited_by or 'nothing'}: {result.limit_detail}",
        data={"limited_by": result.limited_by, **gen},
    )
    outcome = result.headline()
    why = f" (stopped by {breach.detail})" if breach else ""
    yield Step(
        "loadtest done",
        STATUS[result.outcome],
        f"{run_id} {outcome}{why}: {client['requests']:,} requests, {client['rps']:.0f}/s, "
        f"p99 {client['p99_ms']} ms, failed {client['failed_rate']:.3%}; {run_dir}",
        seconds=stopped_at,
        data=result.as_dict(),
    )


def _capacity_line(levels: list[dict], best: dict | None) -> str:
    if best is None:
        return f"no level held (first: {levels[0]['target_rate']}/s)"
    broke = next((row for row in levels if not row["held"]), None)
    where = f"; broke at {broke['target_rate']}/s" if broke else "; every level held"
    return (
        f"held up to {best['rps']:.0f} requests/s (level {best['target_rate']}/s, "
        f"p99 {best['p99_ms']} ms){where}"
    )


def _server_figures(
    prom: Prometheus,
    before: Snapshot,
    api: str,
    seconds: float,
    warm_up: float,
    latency: slo.BudgetSLO,
) -> dict:
    """The shop's view of the run: API requests, 5xx ratio, p99 and the requests slower
    than the latency threshold (raw counter deltas), the slowest query's p95 (increase
    over the run) and the worst cache hit ratio after ``warm_up`` seconds (a cold cache
    is not judged; nor is a run shorter than twice that).

    ``slow_significant``: whether the slow requests are evidence that more than the
    objective allows were slow (the binomial test deploys judge errors by: slo.yaml keeps
    latency as an error budget, a slow request is a bad event). A p99 over the
    threshold on a few hundred requests is its few slowest; without that evidence the
    latency verdict is inconclusive, not failed (loadtest/results.py)."""
    try:
        run = _server_snapshot(prom, api).minus(before)
        window = f"{max(2, round(seconds + 2))}s"
        db = _scalar(
            prom,
            "max(histogram_quantile(0.95, sum by (query, le) "
            f"(increase(shop_db_query_duration_seconds_bucket[{window}]))))",
        )
        hit = None
        if seconds >= 2 * warm_up:
            warm = f"{round(seconds - warm_up + 2)}s"
            hit = _scalar(
                prom,
                'min(sum by (cache) (increase(shop_cache_requests_total{result="hit"}'
                f"[{warm}])) / (sum by (cache) (increase(shop_cache_requests_total[{warm}]))"
                " > 10))",
            )
    except PromError as exc:
        return {"error": str(exc)}
    p99 = run.quantile(0.99)
    slow = run.slower_than(latency.threshold_seconds or 0.0)
    return {
        "requests": round(run.requests),
        "errors": round(run.errors),
        "error_ratio": round(run.errors / run.requests, 6) if run.requests else None,
        "p99_ms": _ms(p99),
        "slow": None if slow is None else round(slow),
        "slow_significant": (
            None if slow is None else errors_significant(slow, run.requests, latency.error_budget)
        ),
        "db_p95_ms": _ms(db),
        "cache_hit_ratio": None if hit is None else round(hit, 4),
    }


# -- reports ----------------------------------------------------------------------------


def compare_latest(runtime: Runtime, tolerance: float = 0.2) -> dict[str, Any]:
    """report() of the newest run against the one before it."""
    ids = results.run_ids(runtime.settings)
    if len(ids) < 2:
        raise OceanError("compare needs two load test runs")
    return report(runtime, ids[-1], ids[-2], tolerance)


def report(
    runtime: Runtime, run_id: str | None = None, compare: str | None = None, tolerance: float = 0.2
) -> dict[str, Any]:
    """A saved run (the newest by default) and, with ``compare``, how it fares against
    that baseline run: {run, base, rows, regressions, chart}."""
    if not 0 <= tolerance <= 10:
        raise OceanError(f"--tolerance must be 0..10 (a fraction: 0.2 = 20%), not {tolerance}")
    settings = runtime.settings
    run = results.load(settings, run_id)
    out: dict[str, Any] = {
        "run": run.as_dict(),
        "chart": str(results.runs_dir(settings) / run.id / "chart.html"),
    }
    if compare:
        base = results.load(settings, compare)
        budget = slo.load(root=settings.repo_root).availability.error_budget
        rows = results.compare(base, run, tolerance, budget)
        out["base"] = base.as_dict()
        out["rows"] = rows
        out["tolerance"] = tolerance
        out["regressions"] = [row["metric"] for row in rows if row["regression"]]
        differs = [
            key
            for key in ("scenario", "vus", "rate", "duration_s", "target")
            if base.params.get(key) != run.params.get(key)
        ]
        out["differs"] = differs
        # A run the load generator limited measured k6 as much as the shop: its side of
        # the comparison says little about the shop (loadtest/generator.py).
        out["load_generator_limited"] = [
            r.id for r in (base, run) if r.limited_by == results.LOAD_GENERATOR
        ]
        # Likewise a run on a machine other processes kept busy (loadtest/machine.py).
        out["machine_limited"] = [r.id for r in (base, run) if r.limited_by == results.MACHINE]
    return out
