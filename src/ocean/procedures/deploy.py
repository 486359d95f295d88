"""Blue-green deploy with metric-gated promotion and automatic rollback, for any runtime.

    deploy:  preflight → build → start → preview → warm-up → switch → analysis → promoted
             → scale-down
    promote: (a deploy paused with auto_promote=False) warm-up → switch → analysis → …
    rollback: back to the other color (warm: one nginx reload), or abandon a paused deploy

Every step is journaled before it acts (``ocean.rollout.journal``), under a lock. A
deploy killed at any point is finished or undone by whoever takes the lock next
(`deploy`, `promote`, `rollback` or `deploy-status`): ``recover``. The rule: until the
decision to promote is journaled, the old color (never stopped before then) takes the
traffic back; after it, the new color keeps it. Either way exactly one color is live.

Traffic moves only by ``runtime.switch`` (render the upstream, test, atomic replace,
graceful reload), so no request is dropped; the old color keeps running until the
scale-down delay after the switch has passed, so a rollback is one more reload.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ocean import environments_apply, limits, slo, statedir, textfile
from ocean.errors import OceanError
from ocean.freeze import FreezePolicy
from ocean.model import Build, Step, StepStatus
from ocean.prom import PromError, Prometheus
from ocean.rollout.analysis import FAIL, INCONCLUSIVE, Measurement, Snapshot, Thresholds, judge
from ocean.rollout.journal import TRAFFIC_MOVED, DeployLocked, Journal, live_after
from ocean.rollout.probe import Prober
from ocean.rollout.smoke import smoke
from ocean.rollout.verdicts import COMPARE_S, LIVE_BASELINE_S, Analyst, compare
from ocean.rollout.warmup import Admin as WarmUpAdmin
from ocean.rollout.warmup import warm_up
from ocean.runtime.base import Runtime
from ocean.services import COLORS

# Tests kill the deploy at a journaled step with this (see failpoint()).
FAILPOINT_ENV = "OCEAN_DEPLOY_FAILPOINT"
PROM_RETRIES = 3  # consecutive failed polls before the analysis counts as failed
# Polls in a row that find none of the new color's series before it counts as down. One
# scrape slower than the scrape timeout (a busy machine) marks them all stale until the
# next one: that is a missing poll, not a restart.
MISSING_POLLS = 5
PROGRESS_EVERY = 5.0  # seconds between analysis progress steps
# A status read holds the lock for a moment: a deploy waits that long, not longer.
LOCK_WAIT_S = 3.0
# How long Prometheus may take to scrape the warm-up reads before the switch.
WARMUP_SCRAPE_TIMEOUT_S = 15.0
# The shop counts a request once its response is sent: a client has its answer up to
# this long before the counter moves.
COUNTED_WITHIN_S = 0.25
# An analysis window is at most an hour: a deploy holds the lock (no restore, no
# rollback) while it runs.
MAX_ANALYSIS_WINDOW_S = 3600.0
# An inconclusive window (too few requests even with the probes, a breach not yet
# sustained) is extended by its own length, at least MIN and at most MAX seconds (the
# probes alone bring 20 requests in 4 s), before ON_INCONCLUSIVE applies.
MIN_EXTENSION_S = 10.0
MAX_EXTENSION_S = 120.0
# What an analysis still inconclusive after its extension does: no evidence is no
# promotion, unless the environment says otherwise (deploy.on_inconclusive).
ON_INCONCLUSIVE = ("rollback", "promote")


@dataclass(frozen=True)
class DeployOptions:
    color: str
    version: str = "HEAD"
    auto_promote: bool = True
    analysis_window: float = 60.0
    preview_timeout: float = 15.0
    ready_timeout: float = 60.0
    scale_down_delay: float = 30.0
    force: bool = False
    min_requests: int = 20
    validate: bool = True
    # At most this many requests sent straight to the new color right before the
    # switch, in rounds until its latency settles (0: none), this many at a time: the
    # shop's default DB pool size (see ocean.rollout.warmup).
    warmup_requests: int = 600
    warmup_concurrency: int = 10
    on_inconclusive: str = "rollback"  # or "promote": see ON_INCONCLUSIVE


def other(color: str) -> str:
    return next(c for c in COLORS if c != color)


def check_color(color: str) -> str:
    if color not in COLORS:
        raise OceanError(f"unknown color {color!r}: choose {' or '.join(COLORS)}")
    return color


def check_analysis_window(runtime: Runtime, seconds: float) -> float:
    """The window must hold at least one poll (the runtime's scrape interval) and at
    most MAX_ANALYSIS_WINDOW_S; OceanError in one line otherwise."""
    interval = runtime.analysis_interval
    if seconds < interval:
        raise OceanError(
            f"--analysis-window {seconds:g}s is shorter than the analysis interval "
            f"({interval:g}s, the scrape interval): nothing could be judged"
        )
    if seconds > MAX_ANALYSIS_WINDOW_S:
        raise OceanError(
            f"--analysis-window {seconds:g}s is longer than the maximum "
            f"{MAX_ANALYSIS_WINDOW_S:.0f}s: the deploy would hold its lock that long"
        )
    return seconds


def check_options(runtime: Runtime, opts: DeployOptions) -> DeployOptions:
    """Every option within its bounds (ocean/limits.py), else OceanError in one line.
    The task calls this before the guard rail audits anything; deploy() again, for
    callers that skip the task (the console, tests)."""
    check_color(opts.color)
    if not opts.version.strip():
        # Path("") is ".": an empty --version would deploy the working directory.
        raise OceanError("--version is empty: name a git ref (e.g. HEAD) or a directory")
    check_analysis_window(runtime, opts.analysis_window)
    limits.seconds(opts.ready_timeout, "ready-timeout", limits.MAX_READY_TIMEOUT_S, positive=True)
    limits.seconds(opts.scale_down_delay, "scale-down-delay", limits.MAX_SCALE_DOWN_DELAY_S)
    if opts.on_inconclusive not in ON_INCONCLUSIVE:
        raise OceanError(
            f"on_inconclusive {opts.on_inconclusive!r}: choose {' or '.join(ON_INCONCLUSIVE)}"
        )
    if opts.warmup_requests < 0 or opts.warmup_concurrency < 1:
        raise OceanError("--warmup must be 0 or more reads, sent at least 1 at a time")
    limits.count(opts.warmup_requests, "warmup", 0, limits.MAX_WARMUP_REQUESTS)
    return opts


# -- deploy ---------------------------------------------------------------------------


def deploy(runtime: Runtime, opts: DeployOptions) -> Iterator[Step]:
    """Deploy ``opts.version`` to ``opts.color`` (the idle color) and promote it if the
    analysis passes; roll back at once if it fails."""
    check_options(runtime, opts)
    statedir.require(runtime.settings.state_dir)  # before the lock makes deploy/ in it
    journal = Journal(runtime.settings.state_dir)
    with journal.lock(f"deploy {opts.color} {opts.version}", wait=LOCK_WAIT_S):
        yield from recover(runtime, journal, refuse_paused=True)
        live = runtime.live_color()
        if opts.color == live:
            raise OceanError(
                f"{opts.color} is the live color: deploy to the idle color, "
                f"{other(live)} (`invoke deploy --color={other(live)}`)"
            )
        runtime.check_version(opts.version)  # bad input fails before anything is journaled
        record = journal.open(
            {
                "kind": "deploy",
                "color": opts.color,
                "from": live,
                # What ran live before: a later rollback to anything else goes past
                # the previous release (a guard rail in prod: ocean.guardrails).
                "from_build": runtime.color_build(live).id,
                "version": opts.version,
                "auto_promote": opts.auto_promote,
                "analysis_window_s": opts.analysis_window,
                "scale_down_delay_s": opts.scale_down_delay,
                "warmup_requests": opts.warmup_requests,
                "warmup_concurrency": opts.warmup_concurrency,
                "on_inconclusive": opts.on_inconclusive,
            }
        )
        started_color = False
        try:
            journal.step(record, "preflight")
            failpoint("preflight")
            yield from _preflight(runtime, opts, journal, record)

            journal.step(record, "build")
            failpoint("build")
            build = yield from runtime.build(opts.version)
            journal.update(record, build=build.as_dict(), label=build.label)

            journal.step(record, "start")
            failpoint("start")
            started_color = True
            yield from runtime.start_color(opts.color, build, opts.ready_timeout)

            journal.step(record, "preview")
            failpoint("preview")
            yield from _preview(runtime, opts, build, record, journal)
        except BaseException as exc:
            _failed_before_switch(runtime, journal, record, exc, started_color)
            raise
        if not opts.auto_promote:
            journal.update(record, paused=True)
            yield Step(
                "awaiting promotion",
                StepStatus.INFO,
                f"{opts.color} runs {build.label} beside {live}, which still takes all traffic: "
                "`invoke promote` to switch, `invoke rollback` to abandon",
            )
            return
        yield from _promote(runtime, journal, record)


def check_promote_options(
    runtime: Runtime, analysis_window: float | None, scale_down_delay: float | None
) -> None:
    """promote's overrides within their bounds (ocean/limits.py), else OceanError in one
    line. The guard rail calls this before it audits anything; promote() again, for
    callers that skip it (tests)."""
    if analysis_window is not None:
        check_analysis_window(runtime, analysis_window)
    if scale_down_delay is not None:
        limits.seconds(scale_down_delay, "scale-down-delay", limits.MAX_SCALE_DOWN_DELAY_S)


def promote(
    runtime: Runtime, analysis_window: float | None = None, scale_down_delay: float | None = None
) -> Iterator[Step]:
    """Promote the deploy paused by ``--no-auto-promote``: switch, analyse, scale down."""
    check_promote_options(runtime, analysis_window, scale_down_delay)
    statedir.require(runtime.settings.state_dir)
    journal = Journal(runtime.settings.state_dir)
    with journal.lock("promote", wait=LOCK_WAIT_S):
        yield from recover(runtime, journal, refuse_paused=False)
        record = journal.read()
        if not record or not record.get("paused"):
            raise OceanError("no deploy awaits promotion: `invoke deploy-status` shows the state")
        color = record["color"]
        if not runtime.color_ready(color):
            raise OceanError(
                f"{color} is not ready any more: `invoke rollback` abandons this deploy"
            )
        record["paused"] = False
        record["pid"] = os.getpid()
        if analysis_window is not None:
            record["analysis_window_s"] = analysis_window
        if scale_down_delay is not None:
            record["scale_down_delay_s"] = scale_down_delay
        journal.update(record)
        yield from _promote(runtime, journal, record)


def _promote(runtime: Runtime, journal: Journal, record: dict[str, Any]) -> Iterator[Step]:
    color, old = record["color"], record["from"]
    thresholds = Thresholds(**record["thresholds"])
    api_selector = slo.load().api_selector
    with Prometheus.of(runtime) as prom:
        journal.step(record, "warm-up")
        failpoint("warm-up")
        try:
            # The baseline: what the color has served so far (preview and warm-up).
            baseline = yield from _warm_up(runtime, prom, record, api_selector)
        except BaseException as exc:
            _failed_before_switch(runtime, journal, record, exc)
            raise
        try:
            journal.step(record, "switch")
            failpoint("switch")
            decided = time.monotonic()
            yield from runtime.switch(color)
            switched = time.monotonic()
            journal.update(record, switch_s=round(switched - decided, 3))

            journal.step(record, "analysis")
            failpoint("analysis")
            verdict = yield from _analyse(
                runtime, prom, record, api_selector, thresholds, baseline, switched
            )
            journal.update(record, analysis=verdict.as_dict())
            why = "; ".join(verdict.reasons)
            if verdict.verdict == FAIL:
                yield Step("analysis", StepStatus.FAILED, why, data=verdict.as_dict())
                yield from _roll_back(runtime, journal, record, why)
                raise OceanError(
                    f"rolled back to {old}: {color} breached its SLOs: {why} ({verdict.summary()})"
                )
            if verdict.verdict == INCONCLUSIVE and record.get("on_inconclusive") != "promote":
                why = f"analysis inconclusive: {why}; no evidence, no promotion"
                yield Step("analysis", StepStatus.FAILED, why, data=verdict.as_dict())
                yield from _roll_back(runtime, journal, record, why)
                raise OceanError(f"rolled back to {old}: {why} ({verdict.summary()})")
            note = f" ({why})" if why else ""
            yield Step(
                "analysis",
                StepStatus.OK,
                f"{verdict.verdict}: {verdict.summary()}{note}",
                data=verdict.as_dict(),
            )
        except BaseException as exc:
            # Failed or interrupted before the decision (nginx refused the upstream,
            # Ctrl-C, a closed generator): the old color takes the traffic back, as
            # recovery would. A breach has rolled back already and closed the journal.
            if journal.read() is not None:
                _drain(_roll_back(runtime, journal, record, f"interrupted: {_reason(exc)}"))
            raise

    journal.step(record, "promoted")
    failpoint("promoted")
    delay = float(record.get("scale_down_delay_s", 0)) - (time.monotonic() - switched)
    if delay > 0:
        yield Step("drain", StepStatus.INFO, f"{old} keeps running {delay:.0f}s more")
        time.sleep(delay)
    journal.step(record, "scale-down")
    failpoint("scale-down")
    yield from runtime.stop_color(old)
    entry = journal.close(record, "success")
    _record_metric(runtime, entry)
    yield Step(
        "deploy done",
        detail=f"{color} live on {record.get('label', record['version'])}",
        seconds=entry["duration_s"],
        data=entry,
    )


def _failed_before_switch(
    runtime: Runtime,
    journal: Journal,
    record: dict[str, Any],
    exc: BaseException,
    started_color: bool = True,
) -> None:
    """Traffic never moved: stop the new color if it was started, close the journal as
    failed; the old color serves on. The caller re-raises."""
    if started_color:
        _drain(runtime.stop_color(record["color"]))
    entry = journal.close(record, "failed", _reason(exc))
    _record_metric(runtime, entry)


# -- preflight and preview ------------------------------------------------------------


def _preflight(
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


def _preview(
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
        seen = _counted(
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


def _warm_up(
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
        return _snapshot_or_none(prom, color, api_selector)
    done = warm_up(
        runtime.url(f"shop-{color}"),
        requests,
        int(record.get("warmup_concurrency", DeployOptions.warmup_concurrency)),
        admin=WarmUpAdmin.of(runtime, color),
    )
    record["warmup"] = done.as_dict()  # in the history with the journal's next write
    yield Step("warm-up", detail=f"{color}: {done.summary()}", seconds=done.seconds)
    sent = (time.time(), done.api_requests, "warm-up API requests")
    return _counted(runtime, prom, color, api_selector, sent, WARMUP_SCRAPE_TIMEOUT_S, "warm-up")


def _counted(
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
        seen = _scraped_after(runtime, prom, color, api_selector, since, timeout)
    except PromError as exc:
        raise OceanError(f"{step}: Prometheus unreachable ({exc})") from None
    if seen is None or seen.requests < requests:
        found = f"saw {seen.requests:.0f} of" if seen else "has not scraped"
        raise OceanError(
            f"{step}: Prometheus {found} {color}'s {requests} {what} after {timeout:.0f}s: "
            f"is it scraping {color}?"
        )
    return seen


def _scraped_after(
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


def _analyse(
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


def _snapshot_or_none(prom: Prometheus, color: str, api_selector: str) -> Snapshot | None:
    try:
        return Snapshot.take(prom, color, api_selector)
    except PromError:
        return None  # the analysis takes it on its first poll, or fails


# -- rollback -------------------------------------------------------------------------


def _roll_back(
    runtime: Runtime, journal: Journal, record: dict[str, Any], reason: str
) -> Iterator[Step]:
    """Traffic back to the old color (still warm), stop the new one, close the journal."""
    color, old = record["color"], record["from"]
    journal.step(record, "rollback", reason=reason)
    failpoint("rollback")
    started = time.monotonic()
    if not runtime.color_ready(old):
        yield from runtime.start_color(old, runtime.color_build(old), 60.0)
    yield from runtime.switch(old)
    took = time.monotonic() - started
    yield from runtime.stop_color(color)
    entry = journal.close(record, "rolled_back", reason, rollback_s=round(took, 3))
    _record_metric(runtime, entry)
    yield Step("rolled back", StepStatus.FAILED, f"{old} live again: {reason}", seconds=took)


def rollback(runtime: Runtime) -> Iterator[Step]:
    """Send traffic back to the other color: the previous release.

    Abandons a deploy paused before promotion. Otherwise the other color takes the
    traffic (started on its last build if it was scaled down) and the current one stops.
    """
    statedir.require(runtime.settings.state_dir)
    journal = Journal(runtime.settings.state_dir)
    with journal.lock("rollback", wait=LOCK_WAIT_S):
        yield from recover(runtime, journal, refuse_paused=False)
        record = journal.read()
        if record and record.get("paused"):
            yield from runtime.stop_color(record["color"])
            entry = journal.close(record, "abandoned", "rolled back before promotion")
            _record_metric(runtime, entry)
            yield Step("deploy abandoned", detail=f"{record['from']} stays live")
            return
        live = runtime.live_color()
        target = other(live)
        successes = [e for e in journal.history(0) if e.get("outcome") == "success"]
        last = successes[-1] if successes else None
        if not last or last.get("color") != live:
            raise OceanError(
                f"nothing to roll back to: {live} is live and no successful deploy put it there"
            )
        record = journal.open({"kind": "rollback", "color": target, "from": live})
        journal.step(record, "start")
        failpoint("rollback-start")
        build = runtime.color_build(target)
        started = time.monotonic()
        if not runtime.color_ready(target):
            yield from runtime.start_color(target, build, 60.0)
        journal.step(record, "switch")
        failpoint("rollback-switch")
        decided = time.monotonic()
        yield from runtime.switch(target)
        switch_s = time.monotonic() - decided
        journal.step(record, "scale-down")
        yield from runtime.stop_color(live)
        entry = journal.close(
            record,
            "rolled_back",
            f"`invoke rollback` from {live}",
            label=build.label,
            switch_s=round(switch_s, 3),
        )
        _record_metric(runtime, entry)
        yield Step(
            "rolled back",
            detail=f"{target} live on {build.label}",
            seconds=time.monotonic() - started,
            data=entry,
        )


# -- recovery -------------------------------------------------------------------------


class StackDown(OceanError):
    """An interrupted deploy cannot be settled while the stack is down."""


def recover(runtime: Runtime, journal: Journal, refuse_paused: bool) -> Iterator[Step]:
    """Finish or undo a deploy whose process died (the caller holds the lock)."""
    record = journal.read()
    if record is None:
        return
    if record.get("paused"):
        if refuse_paused:
            raise OceanError(
                f"a deploy of {record['color']} ({record.get('label', record['version'])}) "
                "awaits promotion: `invoke promote` or `invoke rollback` first"
            )
        return
    step = record.get("step", "preflight")
    color = record["color"]
    interrupted = f"an interrupted {record['kind']} of {color} (pid {record.get('pid')})"
    target = live_after(record)
    if "nginx" not in runtime.running():
        # Settling starts colors and reloads nginx: with the stack down it would fail
        # halfway. `up` starts the color the journal names and settles it then.
        raise StackDown(
            f"{interrupted} stopped at {step} and the stack is down: "
            f"`invoke up` brings {target} back live and settles it"
        )
    yield Step("recover", StepStatus.INFO, f"{interrupted} stopped at {step}")
    leaving = other(target)
    if not runtime.color_ready(target):
        forward = target == color  # the deploy had decided (or a rollback runs)
        if record["kind"] == "deploy" and forward and runtime.color_ready(leaving):
            target, leaving = leaving, target  # the promoted color died: keep the other
        else:
            try:  # a rollback that died before starting its color; an old color gone
                yield from runtime.start_color(target, runtime.color_build(target), 60.0)
            except OceanError:
                if not runtime.color_ready(leaving):
                    raise
                target, leaving = leaving, target
    # Re-applied even when it looks done: the dead process may have replaced the
    # upstream without reloading nginx, or the reverse.
    if step in TRAFFIC_MOVED or step == "rollback" or runtime.live_color() != target:
        yield from runtime.switch(target)
    yield from runtime.stop_color(leaving)
    if target == color:
        outcome = "success" if record["kind"] == "deploy" else "rolled_back"
    elif record["kind"] == "deploy" and (step in TRAFFIC_MOVED or step == "rollback"):
        outcome = "rolled_back"
    else:
        outcome = "failed"
    reason = f"interrupted at {step}; recovered: {target} live"
    entry = journal.close(record, outcome, reason)
    _record_metric(runtime, entry)
    yield Step("recovered", detail=reason)


# -- status ---------------------------------------------------------------------------


def status(runtime: Runtime, history: int = 10) -> tuple[dict[str, Any], list[Step]]:
    """Live color, each color's build and readiness, the open deploy, recent history.

    When no deploy runs but a journal is open (its process died), recover first.
    """
    journal = Journal(runtime.settings.state_dir)
    steps: list[Step] = []
    running = None
    unsettled = None
    if journal.read() is not None:  # only an open journal needs the lock (to settle it)
        try:
            with journal.lock("deploy-status"):
                steps = list(recover(runtime, journal, refuse_paused=False))
        except DeployLocked as exc:  # a deploy runs now: report it as it stands
            running = str(exc)
        except StackDown as exc:  # nothing to settle it with: say what `up` will do
            unsettled = str(exc)
    live = runtime.live_color()
    colors = {}
    for color in COLORS:
        build = runtime.color_build(color)
        colors[color] = {
            "live": color == live,
            "ready": runtime.color_ready(color),
            "version": build.version,
            "label": build.label,
            "build": build.id,
        }
    report = {
        "live": live,
        "colors": colors,
        "open": journal.read(),
        "running": running,
        "unsettled": unsettled,
        "history": journal.history(history),
    }
    return report, steps


# -- helpers --------------------------------------------------------------------------


def failpoint(name: str) -> None:
    """Die here, as kill -9 would, when the test asks for it (OCEAN_DEPLOY_FAILPOINT).

    The crash-safety tests use it to stop a deploy exactly after a journaled step.
    """
    if name in os.environ.get(FAILPOINT_ENV, "").split(","):
        os.kill(os.getpid(), signal.SIGKILL)


def _drain(steps: Iterator[Step]) -> None:
    for _ in steps:
        pass


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(exc, GeneratorExit):
        return "stopped by its caller"
    return str(exc) or type(exc).__name__


def _record_metric(runtime: Runtime, entry: dict[str, Any]) -> None:
    label = entry.get("label") or entry.get("version") or "unknown"
    textfile.record_deploy(
        runtime.settings,
        entry["color"],
        label,
        entry["outcome"],
        at=entry.get("ended"),
        duration_s=entry.get("duration_s"),
    )
