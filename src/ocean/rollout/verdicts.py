"""The post-switch verdict: sustained, sample-size aware, relative to the old color.

One slow second must not roll back a healthy release, and one error in sixty requests
is no evidence against a 99.9% objective. At every poll the :class:`Analyst` is
given the new color's totals (raw counters, minus the baseline taken before the switch)
and the probe samples of both colors (ocean.rollout.probe), and decides:

- **errors (absolute)**: all the requests since the switch; a failure once the count
  is significant for the objective (analysis.errors_significant). No relative excuse:
  a slow machine delays answers, it does not turn them into 5xx.
- **latency (absolute)**: the p99 of consecutive, disjoint intervals of at least
  INTERVAL_S seconds and ``min_requests`` requests; a breach must hold for
  FAILURE_LIMIT intervals in a row, as Argo Rollouts' consecutive failure limit.
  Disjoint, not sliding: one slow second sits in one interval, where a 5-second
  sliding window would count it five times.
- **latency (relative)**, two baselines measured under the same machine conditions:
  - *probes*: the probes' median and p90 on the new color against the old one over
    the last COMPARE_S seconds: the same reads at the same moments, so machine-wide
    slowness moves both. Slower by more than the margin (half the p99 objective) at
    the median, or twice that at the p90, is a regression.
  - *live*: the new color's median against the old color's median over the
    LIVE_BASELINE_S seconds before the switch, when it served the same live traffic on
    the same machine; slower by more than the margin or half the old median, whichever
    is larger. The median, not the p99: on a loaded machine both colors' p99s sit in
    the same wide histogram bucket, where a 300 ms regression cannot show.
    The probes alone would be biased: after the switch only the new color
    carries the live load, and its probes queue behind it.

Latency fails only when the absolute breach is sustained AND every relative baseline
that could be measured confirms it. With neither (too few probe answers, no live
traffic before the switch), a breach sustained for FAILURE_LIMIT intervals decides
alone. A sustained breach that the old color shares is reported as machine-wide
slowness and passes; a relative regression within the SLO is reported and passes too.

At the end of the window, too few requests, or a breach still in progress (not yet
FAILURE_LIMIT intervals, and no baseline showing the old color as slow), is
``inconclusive``: the deploy procedure judges on for longer, then applies the
configured default.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ocean.rollout.analysis import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Measurement,
    Snapshot,
    Thresholds,
    errors_significant,
)
from ocean.rollout.probe import Sample
from ocean.rollout.samples import quantile

# A latency breach counts once it holds for this many intervals in a row: at least
# 6 s of slowness, never one slow moment.
FAILURE_LIMIT = 3
# Each absolute latency judgment covers at least this long (and min_requests).
INTERVAL_S = 2.0
# The probes of the last 10 s (about 50 reads per color) decide the relative verdict.
COMPARE_S = 10.0
# Fewer probe answers per color and there is no relative verdict.
MIN_PROBES = 10
# The old color's live p99 over this long before the switch is the live baseline.
LIVE_BASELINE_S = 30.0
# On a loaded machine latencies spread: the live comparison allows the new color this
# much more than the old one's median (or the margin, whichever is larger).
LIVE_TOLERANCE = 0.5


@dataclass(frozen=True)
class Comparison:
    """The new color's probe latencies against the old color's, same reads, same time."""

    new_median_s: float | None
    old_median_s: float | None
    new_p90_s: float | None
    old_p90_s: float | None
    new_probes: int
    old_probes: int
    margin_s: float
    verdict: str = INCONCLUSIVE

    def summary(self) -> str:
        if self.verdict == INCONCLUSIVE:
            return (
                f"relative: no verdict ({self.new_probes} new / {self.old_probes} old "
                f"probe answers, < {MIN_PROBES})"
            )
        return (
            f"relative {self.verdict}: probe median {_ms(self.new_median_s)} new vs "
            f"{_ms(self.old_median_s)} old, p90 {_ms(self.new_p90_s)} vs {_ms(self.old_p90_s)}"
        )

    def as_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "new_median_ms": _ms_value(self.new_median_s),
            "old_median_ms": _ms_value(self.old_median_s),
            "new_p90_ms": _ms_value(self.new_p90_s),
            "old_p90_ms": _ms_value(self.old_p90_s),
            "new_probes": self.new_probes,
            "old_probes": self.old_probes,
            "margin_ms": _ms_value(self.margin_s),
        }


def compare(new: list[Sample], old: list[Sample], margin_s: float) -> Comparison:
    """FAIL when the new color's answered probes are slower than the old color's by
    more than ``margin_s`` at the median, or by twice that at the 90th percentile (a
    regression of some routes only); INCONCLUSIVE below MIN_PROBES answers each."""
    new_s = sorted(s.seconds for s in new if s.status)
    old_s = sorted(s.seconds for s in old if s.status)
    figures = (
        quantile(new_s, 0.5),
        quantile(old_s, 0.5),
        quantile(new_s, 0.9),
        quantile(old_s, 0.9),
        len(new_s),
        len(old_s),
        margin_s,
    )
    if len(new_s) < MIN_PROBES or len(old_s) < MIN_PROBES:
        return Comparison(*figures)
    new_median, old_median, new_p90, old_p90 = figures[:4]
    slower = new_median - old_median > margin_s or new_p90 - old_p90 > 2 * margin_s
    return Comparison(*figures, verdict=FAIL if slower else PASS)


class Analyst:
    """Judges one color poll by poll; see the module docstring for the rules."""

    def __init__(
        self,
        color: str,
        thresholds: Thresholds,
        baseline: Snapshot,
        old_live: Snapshot | None = None,
    ) -> None:
        self.color = color
        self.thresholds = thresholds
        self.baseline = baseline
        # The old color's median on its live traffic before the switch; none with too
        # few requests.
        usable = old_live is not None and old_live.requests >= thresholds.min_requests
        self.old_live_p50 = old_live.quantile(0.5) if usable else None
        self.margin_s = thresholds.max_p99_seconds / 2
        self.breaches = 0
        self.judged = 0  # intervals judged so far
        self.interval: Measurement | None = None  # the last interval judged
        self._interval_traffic = Snapshot()
        self._opened: tuple[float, Snapshot] = (0.0, baseline)

    def observe(
        self, elapsed: float, current: Snapshot, comparison: Comparison, final: bool = False
    ) -> Measurement:
        """The verdict after this poll: FAIL decides a rollback now; PASS and
        INCONCLUSIVE are the state so far (final=True: the window's verdict)."""
        t = self.thresholds
        whole = Measurement.of(self.color, elapsed, current.minus(self.baseline))
        self._close_interval(elapsed, current)
        interval = self.interval
        extra = {
            "interval_p99_seconds": interval.p99_seconds if interval else None,
            "breaches": self.breaches,
            "relative": {
                **comparison.as_dict(),
                "new_live_p50_ms": _ms_value(self._interval_traffic.quantile(0.5)),
                "old_live_p50_ms": _ms_value(self.old_live_p50),
            },
        }
        if errors_significant(whole.errors, whole.requests, t.max_error_ratio):
            why = (
                f"error ratio {whole.error_ratio:.2%} > {t.max_error_ratio:.2%} "
                f"({whole.errors:.0f} of {whole.requests:.0f} requests)"
            )
            return replace(whole, verdict=FAIL, reasons=[why], **extra)
        limit = f"{t.max_p99_seconds * 1000:.0f} ms"
        if self.breaches >= FAILURE_LIMIT and interval is not None:
            why = (
                f"p99 {_ms(interval.p99_seconds)} > {limit} in {self.breaches} intervals in a "
                f"row (the last: {interval.requests:.0f} requests in {interval.window_s:.0f}s)"
            )
            traffic = self._interval_traffic
            return self._latency_verdict(whole, traffic, why, comparison, extra, sustained=True)
        if final:
            if whole.requests < t.min_requests:
                why = f"only {whole.requests:.0f} requests (< {t.min_requests}) to judge"
                return replace(whole, verdict=INCONCLUSIVE, reasons=[why], **extra)
            # The window ends inside a breach (or too short to fill one interval, and
            # slow): not sustained yet, so no rollback on it alone; inconclusive, and
            # the deploy procedure judges on for longer.
            slow = whole.p99_seconds is not None and whole.p99_seconds > t.max_p99_seconds
            if self.breaches or (not self.judged and slow):
                judged = interval if self.breaches and interval else whole
                traffic = self._interval_traffic if self.breaches else current.minus(self.baseline)
                why = (
                    f"p99 {_ms(judged.p99_seconds)} > {limit} in {self.breaches} of "
                    f"{FAILURE_LIMIT} intervals needed"
                )
                return self._latency_verdict(
                    whole, traffic, why, comparison, extra, sustained=False
                )
        notes = [comparison.summary()] if comparison.verdict == FAIL else []
        if whole.requests < t.min_requests:
            return replace(whole, verdict=INCONCLUSIVE, reasons=notes, **extra)
        return replace(whole, verdict=PASS, reasons=notes, **extra)

    def _latency_verdict(
        self,
        whole: Measurement,
        judged: Snapshot,
        why: str,
        comparison: Comparison,
        extra: dict,
        sustained: bool,
    ) -> Measurement:
        """An absolute breach (``judged``: the traffic of the interval or the window)
        weighed against every relative baseline there is; see the module docstring."""
        evidence = []  # (the new color is slower, how we know)
        if comparison.verdict != INCONCLUSIVE:
            evidence.append((comparison.verdict == FAIL, comparison.summary()))
        new_p50, old_p50 = judged.quantile(0.5), self.old_live_p50
        if new_p50 is not None and old_p50 is not None:
            slower = new_p50 - old_p50 > max(self.margin_s, LIVE_TOLERANCE * old_p50)
            evidence.append(
                (
                    slower,
                    f"live median {_ms(new_p50)} now vs {_ms(old_p50)} on the old color "
                    "before the switch",
                )
            )
        figures = "; ".join(how for _, how in evidence)
        if evidence and not all(slower for slower, _ in evidence):
            note = f"{why}, but machine-wide: {figures}"  # the old color is as slow
            return replace(whole, verdict=PASS, reasons=[note], **extra)
        if not evidence:
            figures = f"no relative baseline ({comparison.summary()}, no live traffic before)"
        verdict = FAIL if sustained else INCONCLUSIVE
        return replace(whole, verdict=verdict, reasons=[f"{why}; {figures}"], **extra)

    def _close_interval(self, elapsed: float, current: Snapshot) -> None:
        """Judge the open interval once it is INTERVAL_S long with min_requests in it,
        counting consecutive breaches; then open the next one."""
        opened_at, opened = self._opened
        traffic = current.minus(opened)
        if elapsed - opened_at < INTERVAL_S or traffic.requests < self.thresholds.min_requests:
            return
        self.interval = Measurement.of(self.color, elapsed - opened_at, traffic)
        self._interval_traffic = traffic
        p99 = self.interval.p99_seconds
        breach = p99 is not None and p99 > self.thresholds.max_p99_seconds
        self.breaches = self.breaches + 1 if breach else 0
        self.judged += 1
        self._opened = (elapsed, current)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _ms_value(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
