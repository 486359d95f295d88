"""How many shop workers the live color should run: the autoscaler's policy (issue 22).

Pure: samples of the color's signals in, one decision out. The control loop that reads
Prometheus, applies the decision and records it is built on this; the policy is kept
apart so that its judgement can be tested on recorded series without a stack.

The rules, and why:
- **No signal, no change.** When a sample lacks a signal (Prometheus unreachable, a
  series not yet scraped) the count stays: scaling on a guess can take capacity away
  under load.
- **Sustained pressure only.** A change needs the last ``sustain`` samples to agree:
  one slow scrape or a single burst is noise, and a flapping signal never agrees for
  long enough to move the count back and forth (hysteresis by the gap between the high
  and low marks, plus the agreement).
- **Up fast, down slow.** Scaling up may follow shortly after a change
  (``up_cooldown_s``); scaling down waits longer (``down_cooldown_s``), goes one worker
  at a time and needs every signal below its low mark: a worker too many costs memory,
  a worker too few costs the SLO.
- **Up in proportion.** Like Kubernetes' HPA: the count grows by the ratio of the worst
  signal to its high mark, so a spike is met in one step rather than one worker per
  cooldown.
- **Within bounds.** A count outside ``min..max`` (the environment's bounds changed) is
  brought inside at once, whatever the signals say.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ocean.errors import OceanError
from ocean.prom import PromError


@dataclass(frozen=True)
class Signals:
    """One sample of the live color. A signal is None when it could not be read."""

    at: float  # seconds (monotonic or epoch: only differences are used)
    workers: int  # workers the color runs at the sample
    cpu: float | None  # busy share of the color's workers, 1.0 = each worker on a full core
    in_flight: float | None  # requests in flight per worker
    p99_ms: float | None  # the color's request latency p99 over the last minute


@dataclass(frozen=True)
class Policy:
    min_workers: int
    max_workers: int
    cpu_high: float = 0.70
    cpu_low: float = 0.30
    in_flight_high: float = 8.0
    in_flight_low: float = 2.0
    # Below the 200 ms SLO on purpose: scale while there is still room, not after a breach.
    p99_high_ms: float = 150.0
    p99_low_ms: float = 60.0
    sustain: int = 3  # samples that must agree before a change
    up_cooldown_s: float = 30.0
    down_cooldown_s: float = 180.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_workers <= self.max_workers:
            raise OceanError(
                "scaling bounds must be 1 <= min <= max, "
                f"got {self.min_workers}..{self.max_workers}"
            )
        for low, high, what in (
            (self.cpu_low, self.cpu_high, "cpu"),
            (self.in_flight_low, self.in_flight_high, "in_flight"),
            (self.p99_low_ms, self.p99_high_ms, "p99_ms"),
        ):
            if not 0 <= low < high:
                raise OceanError(f"scaling {what}: the low mark must be below the high mark")
        if self.sustain < 1:
            raise OceanError("scaling sustain must be at least 1 sample")


@dataclass(frozen=True)
class Decision:
    workers: int  # the count to run: equal to the sample's when held
    change: str  # "up", "down" or "hold"
    reason: str  # what an operator reads in the history


def decide(policy: Policy, samples: Sequence[Signals], last_change_at: float | None) -> Decision:
    """The count the color should run after the newest of ``samples`` (oldest first).

    ``last_change_at`` is when the count last changed (None: never), for the cooldowns.
    """
    if not samples:
        raise OceanError("the autoscaler needs at least one sample")
    now = samples[-1]
    current = now.workers
    if current < policy.min_workers or current > policy.max_workers:
        bounded = min(max(current, policy.min_workers), policy.max_workers)
        change = "up" if bounded > current else "down"
        return Decision(bounded, change, f"{current} is outside {_bounds(policy)}")
    recent = samples[-policy.sustain :]
    missing = [name for name in ("cpu", "in_flight", "p99_ms") if getattr(now, name) is None]
    if missing:
        return Decision(current, "hold", f"no {', '.join(missing)} signal: the count stays")
    if len(recent) < policy.sustain or any(_unread(s) for s in recent):
        return Decision(current, "hold", f"fewer than {policy.sustain} complete samples")
    since = math.inf if last_change_at is None else now.at - last_change_at
    if all(_pressure(policy, s) for s in recent):
        return _up(policy, now, since)
    if all(_idle(policy, s) for s in recent):
        return _down(policy, now, since)
    return Decision(current, "hold", "signals within the marks or not sustained")


def _up(policy: Policy, now: Signals, since: float) -> Decision:
    if now.workers >= policy.max_workers:
        return Decision(now.workers, "hold", f"under pressure ({_why(now)}) but at the maximum")
    if since < policy.up_cooldown_s:
        return Decision(now.workers, "hold", f"under pressure ({_why(now)}), cooling down")
    ratio = max(
        now.cpu / policy.cpu_high,
        now.in_flight / policy.in_flight_high,
        now.p99_ms / policy.p99_high_ms,
    )
    wanted = max(now.workers + 1, math.ceil(now.workers * ratio))
    return Decision(min(wanted, policy.max_workers), "up", f"sustained pressure: {_why(now)}")


def _down(policy: Policy, now: Signals, since: float) -> Decision:
    if now.workers <= policy.min_workers:
        return Decision(now.workers, "hold", "idle, at the minimum")
    if since < policy.down_cooldown_s:
        return Decision(now.workers, "hold", "idle, cooling down")
    return Decision(now.workers - 1, "down", f"sustained idle: {_why(now)}")


def _unread(s: Signals) -> bool:
    return s.cpu is None or s.in_flight is None or s.p99_ms is None


def _pressure(policy: Policy, s: Signals) -> bool:
    return (
        s.cpu >= policy.cpu_high
        or s.in_flight >= policy.in_flight_high
        or s.p99_ms >= policy.p99_high_ms
    )


def _idle(policy: Policy, s: Signals) -> bool:
    return (
        s.cpu <= policy.cpu_low
        and s.in_flight <= policy.in_flight_low
        and s.p99_ms <= policy.p99_low_ms
    )


def _why(s: Signals) -> str:
    return f"cpu {s.cpu:.0%}, {s.in_flight:.1f} in flight per worker, p99 {s.p99_ms:.0f} ms"


def _bounds(policy: Policy) -> str:
    return f"{policy.min_workers}..{policy.max_workers}"


# The color's signals as Prometheus has them (the shop exports its process' CPU time and
# its requests in flight, ocean_shop/metrics.py). Summed over the color's processes, then
# divided by the workers the caller says it runs.
SIGNAL_QUERIES = {
    "cpu": 'sum(rate(process_cpu_seconds_total{{job="shop",color="{color}"}}[{window}]))',
    "in_flight": 'sum(shop_http_requests_in_flight{{color="{color}"}})',
    "p99_ms": (
        "1000 * histogram_quantile(0.99, sum by (le) "
        '(rate(shop_http_request_duration_seconds_bucket{{color="{color}"}}[{window}])))'
    ),
}


def sample(prom: Any, color: str, workers: int, at: float, window: str = "1m") -> Signals:
    """One sample of ``color`` from ``prom`` (an ocean.prom.Prometheus); a signal that
    Prometheus cannot give (unreachable, no series yet) is None."""
    values: dict[str, float | None] = {}
    for name, query in SIGNAL_QUERIES.items():
        try:
            result = prom.query(query.format(color=color, window=window))
        except PromError:
            result = []
        value = float(result[0]["value"][1]) if result else None
        # No request in the window: the quantile of nothing is NaN. That is an idle
        # color (0 ms), not a missing signal, or an idle color would never scale down.
        values[name] = 0.0 if value is not None and math.isnan(value) else value
    per_worker = {k: values[k] / workers for k in ("cpu", "in_flight") if values[k] is not None}
    return Signals(
        at=at,
        workers=workers,
        cpu=per_worker.get("cpu"),
        in_flight=per_worker.get("in_flight"),
        p99_ms=values["p99_ms"],
    )
