"""The gates a deploy passes, for procedures/deploy.py: the preflight (stack, freeze,
validation), the preview of the new color, its warm-up before the switch, and the
metric analysis after it (``analyse``: judged against the live color's baseline under
the same conditions, extended when inconclusive)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from ocean import environments_apply, slo
from ocean.errors import OceanError
from ocean.freeze import FreezePolicy
from ocean.model import Build, Step, StepStatus
from ocean.procedures.deploy_options import DeployOptions
from ocean.prom import PromError, Prometheus
from ocean.rollout.analysis import FAIL, INCONCLUSIVE, Measurement, Snapshot, Thresholds, judge
from ocean.rollout.journal import Journal
from ocean.rollout.probe import Prober
from ocean.rollout.smoke import smoke
from ocean.rollout.verdicts import COMPARE_S, LIVE_BASELINE_S, Analyst, compare
from ocean.rollout.warmup import Admin as WarmUpAdmin
from ocean.rollout.warmup import warm_up
from ocean.runtime.base import Runtime

# How long Prometheus may take to scrape the warm-up reads before the switch.
WARMUP_SCRAPE_TIMEOUT_S = 15.0

# The shop counts a request once its response is sent: a client has its answer up to
# this long before the counter moves.
COUNTED_WITHIN_S = 0.25

# Polls in a row that find none of the new color's series before it counts as down. One
# scrape slower than the scrape timeout (a busy machine) marks them all stale until the
# next one: that is a missing poll, not a restart.
MISSING_POLLS = 5

PROGRESS_EVERY = 5.0  # seconds between analysis progress steps

PROM_RETRIES = 3  # consecutive failed polls before the analysis counts as failed

# An inconclusive window (too few requests even with the probes, a breach not yet
# sustained) is extended by its own length, at least MIN and at most MAX seconds (the
# probes alone bring 20 requests in 4 s), before ON_INCONCLUSIVE applies.
MIN_EXTENSION_S = 10.0

MAX_EXTENSION_S = 120.0


# -- preflight and preview ------------------------------------------------------------


def preflight(
    runtime: Runtime, opts: DeployOptions, journal: Journal, record: dict[str, Any]
) -> Iterator[Step]:
    started = time.monotonic()
    if opts.validate:
        yield from validation_gate(runtime)
    unhealthy = [
        f"{s.name} ({s.health_detail})"
        for s in runtime.status()
        if s.name in ("postgres", "redis-master", "nginx", "prometheus", f"shop-{record['from']}")
        and not s.healthy
    ]
    if unhealthy:
        raise OceanError(
            f"the stack is not healthy: {', '.join(unhealthy)}; fix it before deploying"
        )
    yield Step("stack healthy", detail="postgres, redis, nginx, prometheus, live color")
    try:
        with Prometheus.of(runtime) as prom:
            alerts = prom.alerts()
    except PromError as exc:
        raise OceanError(
            f"Prometheus is unreachable ({exc}): a deploy needs it for the alert check "
            "and the analysis"
        ) from None
    # The deploy freeze: the environment's deploy.freeze sorts what fires into alerts
    # that hurt customers (freeze; --force overrides) and plumbing (a warning).
    decision = FreezePolicy.from_env(runtime.settings.env).decide(alerts)
    journal.update(record, freeze=decision.as_dict())
    if decision.warned:
        yield Step(
            "alerts firing (no freeze)",
            StepStatus.INFO,
            f"{', '.join(decision.warned)}: not customer-facing under deploy.freeze; "
            "look at them after the deploy",
            data=decision.as_dict(),
        )
    names = decision.frozen
    if names and not opts.force:
        yield Step(
            "deploy freeze",
            StepStatus.FAILED,
            f"customer-facing alerts firing: {', '.join(names)}",
            data=decision.as_dict(),
        )
        raise OceanError(
            f"deploy freeze: customer-facing alerts firing: {', '.join(names)}. "
            "Fix them first, or override with --force (recorded)"
        )
    if names:
        journal.update(record, forced=True, forced_over=names)
        yield Step(
            "deploy freeze overridden",
            StepStatus.INFO,
            f"--force over {', '.join(names)}",
            data=decision.as_dict(),
        )
    else:
        yield Step(
            "no deploy freeze", detail="no customer-facing alert firing", data=decision.as_dict()
        )
    # slo.yaml with the environment's overrides (stack/environments: slo.*)
    slos = environments_apply.slos(slo.load(), runtime.settings.env)
    thresholds = Thresholds.from_slo(slos, opts.min_requests)
    journal.update(record, thresholds=thresholds.as_dict())
    yield Step("preflight", seconds=time.monotonic() - started)


def validation_gate(runtime: Runtime) -> Iterator[Step]:
    """Config validation as a gate: any error refuses, naming the first ones."""
    from ocean.validate import run as run_checks

    started = time.monotonic()
    findings = run_checks(runtime.settings.repo_root)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        first = "; ".join(f"{f.check} {f.where}: {f.message}" for f in errors[:3])
        raise OceanError(
            f"config validation failed with {len(errors)} error(s): {first}. "
            "Run `invoke validate` for all of them"
        )
    yield Step(
        "config validation",
        detail=f"0 errors, {len(findings)} warnings",
        seconds=time.monotonic() - started,
    )


def preview(
    runtime: Runtime,
    opts: DeployOptions,
    build: Build,
    record: dict[str, Any],
    journal: Journal,
) -> Iterator[Step]:
    """Smoke requests to the new color's own port, then its metrics as Prometheus saw them."""
    color = opts.color
    started = time.monotonic()
    timings = smoke(runtime.url(f"shop-{color}"), color, build.label)
    yield Step(
        "smoke",
        detail=f"{len(timings)} requests to {color}: " + ", ".join(timings),
        seconds=time.monotonic() - started,
        data=timings,
    )
    api_calls = sum(1 for name in timings if name != "version")
    smoked = time.time()
    thresholds = Thresholds(**record["thresholds"])
    api_selector = slo.load().api_selector
    with Prometheus.of(runtime) as prom:
        # A fresh instance: its totals are all its traffic, the smoke requests.
        seen = counted(
            runtime,
            prom,
            color,
            api_selector,
            (smoked, api_calls, "smoke requests"),
            opts.preview_timeout,
            "pre-promotion analysis",
        )
    verdict = judge(Measurement.of(color, time.monotonic() - started, seen), thresholds)
    journal.update(record, preview=verdict.as_dict())
    if verdict.verdict == FAIL:
        raise OceanError(f"pre-promotion analysis failed: {'; '.join(verdict.reasons)}")
    yield Step("pre-promotion analysis", detail=verdict.summary(), data=verdict.as_dict())


def warm_up_new_color(
    runtime: Runtime, prom: Prometheus, record: dict[str, Any], api_selector: str
) -> Iterator[Step]:
    """Rounds of requests on every route class straight to the new color until its
    latency settles (ocean.rollout.warmup), then wait until Prometheus has scraped them
    all: returns the baseline the analysis subtracts, so that the cold first requests
    of the warm-up are never judged as live traffic. Not settling is reported in the
    step, not fatal: the analysis judges the live traffic."""
    color = record["color"]
    requests = int(record.get("warmup_requests", DeployOptions.warmup_requests))
    if requests <= 0:
        return snapshot_or_none(prom, color, api_selector)
    done = warm_up(
        runtime.url(f"shop-{color}"),
        requests,
        int(record.get("warmup_concurrency", DeployOptions.warmup_concurrency)),
        admin=WarmUpAdmin.of(runtime, color),
    )
    record["warmup"] = done.as_dict()  # in the history with the journal's next write
    yield Step("warm-up", detail=f"{color}: {done.summary()}", seconds=done.seconds)
    sent = (time.time(), done.api_requests, "warm-up API requests")
    return counted(runtime, prom, color, api_selector, sent, WARMUP_SCRAPE_TIMEOUT_S, "warm-up")


def counted(
    runtime: Runtime,
    prom: Prometheus,
    color: str,
    api_selector: str,
    sent: tuple[float, int, str],
    timeout: float,
    step: str,
) -> Snapshot:
    """The color's totals once Prometheus has counted ``sent`` (when the last request
    ended, Unix time; how many; what they were). OceanError prefixed with ``step`` when
    Prometheus fails or has not counted them within ``timeout``."""
    since, requests, what = sent
    try:
        seen = scraped_after(runtime, prom, color, api_selector, since, timeout)
    except PromError as exc:
        raise OceanError(f"{step}: Prometheus unreachable ({exc})") from None
    if seen is None or seen.requests < requests:
        found = f"saw {seen.requests:.0f} of" if seen else "has not scraped"
        raise OceanError(
            f"{step}: Prometheus {found} {color}'s {requests} {what} after {timeout:.0f}s: "
            f"is it scraping {color}?"
        )
    return seen


def scraped_after(
    runtime: Runtime,
    prom: Prometheus,
    color: str,
    api_selector: str,
    since: float,
    timeout: float,
) -> Snapshot | None:
    """The color's totals from the first scrape that began after ``since`` (Unix time),
    so that they count every request sent before it; None after ``timeout``.

    Not "until the totals reach N": a color restarted on its port within one scrape
    interval leaves Prometheus holding the previous process's larger totals.
    PromError when Prometheus still fails at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            scraped = Snapshot.last_scraped(prom, color, api_selector)
            if scraped is not None and scraped > since + COUNTED_WITHIN_S:
                return Snapshot.take(prom, color, api_selector)
        except PromError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            return None
        time.sleep(runtime.analysis_interval)


# -- analysis -------------------------------------------------------------------------


def analyse(
    runtime: Runtime,
    prom: Prometheus,
    record: dict[str, Any],
    api_selector: str,
    thresholds: Thresholds,
    baseline: Snapshot | None,
    switched: float,
) -> Iterator[Step]:
    """Judge the new color poll by poll (ocean.rollout.verdicts) while a prober reads
    from both colors, until the window ends or the verdict fails.

    An inconclusive window is extended once by its own length (between
    MIN_EXTENSION_S and MAX_EXTENSION_S). Returns the final Measurement. Prometheus
    failing PROM_RETRIES polls in a row (or at the end) is a failed analysis, never a
    pass; so are MISSING_POLLS polls in a row without the new color's series.
    """
    color, old = record["color"], record["from"]
    window = float(record["analysis_window_s"])
    deadline = window
    urls = {c: runtime.url(f"shop-{c}") for c in (color, old)}
    failures, missing, last_progress, last_error = 0, 0, switched, ""
    try:  # the old color on the same live traffic, just before the switch
        old_live = Snapshot.recent(prom, old, api_selector, LIVE_BASELINE_S)
    except PromError:
        old_live = None  # the probes are the only relative baseline
    analyst = Analyst(color, thresholds, baseline, old_live) if baseline is not None else None
    with Prober(urls) as prober:
        while True:
            time.sleep(runtime.analysis_interval)
            now = time.monotonic()
            elapsed = now - switched
            final = elapsed >= deadline
            try:
                current = Snapshot.take(prom, color, api_selector)
                failures = 0
            except PromError as exc:
                failures += 1
                last_error = str(exc)
                if failures >= PROM_RETRIES or final:
                    why = f"Prometheus unreachable: {last_error}"
                    return Measurement(color, elapsed, 0, 0, None, FAIL, [why])
                continue
            # No series (its last scrape failed and marked them stale), or half of them:
            # the two queries of a snapshot straddled such a scrape.
            if not current.buckets or not current.requests:
                missing += 1
                if missing >= MISSING_POLLS:
                    why = f"Prometheus has not scraped {color} for {missing} polls: is it down?"
                    return Measurement(color, elapsed, 0, 0, None, FAIL, [why])
                continue
            missing = 0
            if analyst is None:  # no baseline before the switch: this poll is it
                analyst = Analyst(color, thresholds, current, old_live)
                continue
            if current.reset_since(analyst.baseline):
                why = f"{color}'s counters reset: it restarted"
                return Measurement(color, elapsed, 0, 0, None, FAIL, [why])
            probes = prober.samples(since=max(switched, now - COMPARE_S))
            comparison = compare(probes[color], probes[old], analyst.margin_s)
            verdict = analyst.observe(elapsed, current, comparison, final)
            if verdict.verdict == FAIL:
                return verdict
            if final and verdict.verdict == INCONCLUSIVE and deadline == window:
                deadline = window + min(max(window, MIN_EXTENSION_S), MAX_EXTENSION_S)
                yield Step(
                    "analysis extended",
                    StepStatus.INFO,
                    f"{verdict.reasons[0]}: judging {deadline - window:.0f}s more",
                    data=verdict.as_dict(),
                )
                continue
            if final:
                return verdict
            if now - last_progress >= PROGRESS_EVERY:
                last_progress = now
                yield Step("analysing", StepStatus.INFO, verdict.summary(), data=verdict.as_dict())


def snapshot_or_none(prom: Prometheus, color: str, api_selector: str) -> Snapshot | None:
    try:
        return Snapshot.take(prom, color, api_selector)
    except PromError:
        return None  # the analysis takes it on its first poll, or fails
