"""Metric analysis of one shop color: its error ratio and p99 from Prometheus vs slo.yaml.

Argo Rollouts' AnalysisRun, for our stack: the shop labels every request metric with
its color, so the new color is judged on its own traffic. Only the public API routes
count (slo.yaml's api_selector), as for the SLOs themselves.

Why snapshots of raw counters and not ``increase()``: a series born during the window
(the first 5xx of a route, every route of a fresh instance) has no earlier sample, so
``increase()`` drops what it counted before its first scrape: a new color's first
errors would be invisible. Summed raw counters do not have that blind spot: a
:class:`Snapshot` is the color's totals at one instant, and a :class:`Measurement` is
the difference of two (or a snapshot alone for a fresh instance, whose totals are all
its traffic). The p99 is interpolated inside the buckets as histogram_quantile does.

Only the current process counts. Prometheus keeps a series an earlier process of the
same color exported until its staleness marker or the 5-minute lookback: a route the
new process has not served yet (its first checkout 5xx) would otherwise be summed in
with the old process's totals. Every query here keeps only the series of each
target's latest scrape (:func:`fresh`), which are exactly the current process's.

A verdict is ``pass``, ``fail`` (with the numbers that breached), or ``inconclusive``
when the color served too few requests to judge. Errors fail only when they are
significantly above the objective for the number of requests (a one-sided binomial
test, :func:`errors_significant`): one error in 60 requests is no evidence against a
99.9% objective, 3 are. Prometheus that cannot be reached is never a pass: callers
treat PromError as a failed analysis.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from ocean import slo
from ocean.prom import Prometheus

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
# An error count fails when a color meeting its objective would show this many or more
# with at most this probability: 1 in 1,000 analyses of a healthy color could fail on
# errors by chance, and 20% errors fail on their first few dozen requests.
ERROR_SIGNIFICANCE = 0.001


@dataclass(frozen=True)
class Thresholds:
    max_error_ratio: float  # 5xx / all, e.g. 0.001 for a 99.9% availability objective
    max_p99_seconds: float
    min_requests: int = 20  # fewer and the verdict is inconclusive

    @classmethod
    def from_slo(cls, slos: slo.SLOs, min_requests: int = 20) -> Thresholds:
        return cls(
            max_error_ratio=round(1 - slos.availability.objective / 100, 6),
            max_p99_seconds=(slos.latency.threshold_ms or 0) / 1000,
            min_requests=min_requests,
        )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _selector(color: str, api_selector: str) -> str:
    """The label matchers of one color's API requests."""
    return f'color="{color}",{api_selector}'


def fresh(series: str) -> str:
    """PromQL: only those of ``series`` that each target's latest scrape returned.

    Prometheus stamps every sample of one scrape with the same time, ``up`` included,
    and writes ``up`` on every scrape, failed or not. A series of an earlier process on
    the same target (a route only it had served) keeps its last, older timestamp until
    it goes stale, so it drops out here and is never summed in with the current
    process's counters.

    Held against ``up``, not against the newest of the series themselves: a failed
    scrape (one slower than the timeout on a busy machine) marks every series of the
    current process stale, and the newest left were then an earlier process's. They are
    never marked stale when Prometheus stopped before it saw that process go (`down`
    during a deploy), so for five minutes a poll read that process's totals, and an
    analysis took them for the new color's: "counters reset: it restarted" for a color
    that never did. Against ``up``, such a poll finds no series: a missing poll.
    """
    stamps = f"timestamp({series})"
    latest = "timestamp(up)"
    return f"({series} and ({stamps} == on (job, instance) group_left {latest}))"


@dataclass(frozen=True)
class Snapshot:
    """A color's API request totals at one instant, as Prometheus last scraped them."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le → cumulative count

    @classmethod
    def take(cls, prom: Prometheus, color: str, api_selector: str) -> Snapshot:
        """Raises PromError when Prometheus cannot answer."""
        sel = _selector(color, api_selector)
        requests = fresh(f"shop_http_requests_total{{{sel}}}")
        durations = fresh(f"shop_http_request_duration_seconds_bucket{{{sel}}}")
        return cls._of(
            prom.query(f"sum by (status) {requests}"), prom.query(f"sum by (le) {durations}")
        )

    @classmethod
    def recent(cls, prom: Prometheus, color: str, api_selector: str, seconds: float) -> Snapshot:
        """What the color served over the last ``seconds``, from increase(): for a
        color that has been running all along (the old one, before the switch), whose
        series all span the range. Raises PromError when Prometheus cannot answer."""
        sel = _selector(color, api_selector)
        span = f"[{max(1, round(seconds))}s]"
        by_status = prom.query(
            f"sum by (status) (increase(shop_http_requests_total{{{sel}}}{span}))"
        )
        by_le = prom.query(
            f"sum by (le) (increase(shop_http_request_duration_seconds_bucket{{{sel}}}{span}))"
        )
        return cls._of(by_status, by_le)

    @classmethod
    def _of(cls, by_status: list[dict], by_le: list[dict]) -> Snapshot:
        counts = {r["metric"].get("status", ""): float(r["value"][1]) for r in by_status}
        buckets = {float(r["metric"]["le"]): float(r["value"][1]) for r in by_le}
        return cls(sum(counts.values()), counts.get("5xx", 0.0), buckets)

    @staticmethod
    def last_scraped(prom: Prometheus, color: str, api_selector: str) -> float | None:
        """Unix time at which Prometheus last scraped the color's request counters."""
        sel = _selector(color, api_selector)
        rows = prom.query(f"max(timestamp(shop_http_requests_total{{{sel}}}))")
        return float(rows[0]["value"][1]) if rows else None

    def minus(self, earlier: Snapshot) -> Snapshot:
        buckets = {le: n - earlier.buckets.get(le, 0.0) for le, n in self.buckets.items()}
        return Snapshot(self.requests - earlier.requests, self.errors - earlier.errors, buckets)

    def reset_since(self, earlier: Snapshot) -> bool:
        """Counters went down: the instance restarted (crashed) in between."""
        return self.requests < earlier.requests

    def slower_than(self, seconds: float) -> float | None:
        """Requests slower than ``seconds``, when it is a bucket bound (as slo.yaml's
        latency threshold must be); None when it is not (or there are no buckets)."""
        if seconds not in self.buckets:
            return None
        return max(self.buckets.values()) - self.buckets[seconds]

    def quantile(self, q: float) -> float | None:
        """histogram_quantile(q) over the buckets; None without requests."""
        ordered = sorted(self.buckets.items())
        if not ordered or ordered[-1][1] <= 0:
            return None
        rank = q * ordered[-1][1]
        lower_le, lower_count = 0.0, 0.0
        for le, count in ordered:
            if count >= rank:
                if math.isinf(le):  # beyond the last finite bucket: its bound, as Prometheus
                    return lower_le
                if count == lower_count:
                    return le
                return lower_le + (le - lower_le) * (rank - lower_count) / (count - lower_count)
            lower_le, lower_count = le, count
        return lower_le


@dataclass(frozen=True)
class Measurement:
    color: str
    window_s: float
    requests: float
    errors: float
    p99_seconds: float | None  # None: no request in the window
    verdict: str = INCONCLUSIVE
    reasons: list[str] = field(default_factory=list)
    # The post-switch analysis' extra figures (ocean.rollout.verdicts): the p99 of the
    # last interval judged, how many intervals in a row breached, the probe comparison.
    interval_p99_seconds: float | None = None
    breaches: int = 0
    relative: dict | None = None

    @classmethod
    def of(cls, color: str, window_s: float, traffic: Snapshot) -> Measurement:
        p99 = traffic.quantile(0.99)
        return cls(color, round(window_s, 1), traffic.requests, traffic.errors, p99)

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def summary(self) -> str:
        p99 = f"{self.p99_seconds * 1000:.0f} ms" if self.p99_seconds is not None else "-"
        return (
            f"{self.color}: {self.requests:.0f} requests in {self.window_s:.0f}s, "
            f"error ratio {self.error_ratio:.2%}, p99 {p99}"
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "error_ratio": round(self.error_ratio, 6)}


def errors_significant(errors: float, requests: float, max_ratio: float) -> bool:
    """Whether ``errors`` of ``requests`` are evidence that the error ratio exceeds
    ``max_ratio``: P(X >= errors) for X ~ Binomial(requests, max_ratio) is below
    ERROR_SIGNIFICANCE. An objective of 100% (max_ratio 0) fails on any error."""
    k, n = round(errors), round(requests)
    if k <= 0 or n <= 0:
        return False
    if max_ratio <= 0:
        return True
    return binomial_tail(k, n, max_ratio) < ERROR_SIGNIFICANCE


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space from k upwards; for k at
    or below the mean, 1.0 (an upper bound: such a count is never significant)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if k <= n * p:
        return 1.0

    def log_pmf(i: int) -> float:
        return (
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * math.log(p)
            + (n - i) * math.log1p(-p)
        )

    total, i = 0.0, k
    while i <= n:
        term = math.exp(log_pmf(i))
        total += term
        # Past the mean the terms fall at least geometrically: stop once negligible.
        if term < total * 1e-12:
            break
        i += 1
    return min(1.0, total)


def judge(m: Measurement, thresholds: Thresholds) -> Measurement:
    """The measurement with its verdict and, on a breach, why.

    Errors fail once they are significant for the number of requests
    (:func:`errors_significant`); a p99 breach only once ``min_requests`` back it,
    since the p99 of a handful of requests is their slowest one, often a cold first
    call. Whether one breaching measurement is enough is the caller's decision
    (the post-switch analysis wants it sustained: ocean.rollout.verdicts).
    """
    reasons = []
    if errors_significant(m.errors, m.requests, thresholds.max_error_ratio):
        reasons.append(
            f"error ratio {m.error_ratio:.2%} > {thresholds.max_error_ratio:.2%} "
            f"({m.errors:.0f} of {m.requests:.0f} requests)"
        )
    enough = m.requests >= thresholds.min_requests
    if enough and m.p99_seconds is not None and m.p99_seconds > thresholds.max_p99_seconds:
        reasons.append(
            f"p99 {m.p99_seconds * 1000:.0f} ms > {thresholds.max_p99_seconds * 1000:.0f} ms"
        )
    if reasons:
        verdict = FAIL
    elif not enough:
        verdict = INCONCLUSIVE
        reasons = [f"only {m.requests:.0f} requests (< {thresholds.min_requests}) to judge"]
    else:
        verdict = PASS
    return replace(m, verdict=verdict, reasons=reasons)
