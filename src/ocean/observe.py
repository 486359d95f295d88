"""What the console shows of the stack's health, fetched from Prometheus in one go.

Headless (no Textual): the console renders these dataclasses, and tests build them
from recorded Prometheus answers. One fetch is a handful of queries over the one
reused connection of ``ocean.prom.Prometheus``:

- every scrape target with its state; a target that is up but changed state ≥ 2 times
  in the last 5 minutes is ``flapping`` (Prometheus' own ``changes(up[5m])``);
- the SLO panel, derived from monitoring/slo.yaml: request rate, error ratio, p99,
  DB p95, cache hit ratio and error budget left, each with its last 15 minutes;
- firing and pending alerts, most severe first, with summary and runbook.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from ocean.model import TargetHealth
from ocean.prom import Prometheus
from ocean.slo import SLOs

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
HISTORY_S = 15 * 60
HISTORY_STEP_S = 30


@dataclass(frozen=True)
class TargetRow:
    job: str
    instance: str
    state: str  # up, down, flapping, unknown
    last_scrape: str
    error: str = ""


@dataclass(frozen=True)
class SloRow:
    key: str
    label: str
    value: float | None
    unit: str  # "rps", "%", "ms"
    objective: str  # what good looks like, as text
    ok: bool | None  # None: no data to judge
    history: list[float] = field(default_factory=list)

    def text(self) -> str:
        if self.value is None:
            return "-"
        if self.unit == "%":
            return f"{self.value * 100:.2f}%"
        if self.unit == "ms":
            return f"{self.value * 1000:.0f} ms"
        return f"{self.value:.1f}/s"


@dataclass(frozen=True)
class AlertRow:
    severity: str
    name: str
    state: str  # firing, pending
    summary: str
    runbook: str
    since: str


@dataclass(frozen=True)
class HealthView:
    targets: list[TargetRow]
    slos: list[SloRow]
    alerts: list[AlertRow]
    fetched_at: float


@dataclass(frozen=True)
class _Panel:
    key: str
    label: str
    expr: str
    unit: str
    objective: str
    good: object  # callable value -> bool


def slo_panels(slos: SLOs) -> list[_Panel]:
    """The panel's rows: one query each, thresholds from slo.yaml."""
    api = slos.api_selector
    max_errors = 1 - slos.availability.objective / 100
    p99_s = (slos.latency.threshold_ms or 0) / 1000
    db_s = slos.db_query_latency.threshold_ms / 1000
    cache = slos.cache_hit_ratio.min_percent / 100
    return [
        _Panel(
            "rate",
            "request rate",
            f"sum(rate(shop_http_requests_total{{{api}}}[1m]))",
            "rps",
            "traffic",
            lambda v: True,
        ),
        _Panel(
            "errors",
            "error ratio",
            # "or vector(0)": no 5xx series yet is a ratio of 0, not "no data".
            f'(sum(rate(shop_http_requests_total{{{api},status="5xx"}}[1m])) or vector(0)) '
            f"/ sum(rate(shop_http_requests_total{{{api}}}[1m]))",
            "%",
            f"≤ {max_errors:.2%}",
            lambda v: v <= max_errors,
        ),
        _Panel(
            "p99",
            "API p99",
            "histogram_quantile(0.99, sum by (le) "
            f"(rate(shop_http_request_duration_seconds_bucket{{{api}}}[1m])))",
            "ms",
            f"≤ {p99_s * 1000:.0f} ms",
            lambda v: v <= p99_s,
        ),
        _Panel(
            "db_p95",
            "DB p95 (worst query)",
            "max(shop:db_query_duration_seconds:p95_5m)",
            "ms",
            f"≤ {db_s * 1000:.0f} ms",
            lambda v: v <= db_s,
        ),
        _Panel(
            "cache",
            "cache hit ratio",
            "min(shop:cache_hit:ratio_rate5m)",
            "%",
            f"≥ {cache:.0%}",
            lambda v: v >= cache,
        ),
        _Panel(
            "budget",
            "error budget left (3d)",
            'clamp_min(1 - max(slo:sli_error:ratio_rate3d{slo="availability"})'
            f" / {max_errors:g}, 0)",
            "%",
            "> 0%",
            lambda v: v > 0,
        ),
        # The last browser run's figures (ocean.textfile.record_page_load), worst page.
        _Panel(
            "page_load",
            "page load p95 (last run)",
            'max(ocean_page_load_p95_seconds{metric="load"})',
            "ms",
            f"≤ {slos.page_load.threshold_ms:.0f} ms",
            lambda v: v <= slos.page_load.threshold_ms / 1000,
        ),
        _Panel(
            "lcp",
            "LCP p95 (last run)",
            'max(ocean_page_load_p95_seconds{metric="lcp"})',
            "ms",
            f"≤ {slos.page_load.lcp_threshold_ms:.0f} ms",
            lambda v: v <= slos.page_load.lcp_threshold_ms / 1000,
        ),
    ]


def fetch(prom: Prometheus, slos: SLOs, now: float | None = None) -> HealthView:
    """One consistent view; raises PromError when Prometheus cannot answer."""
    now = time.time() if now is None else now
    targets = _targets(prom.targets(), _flapping(prom))
    rows = []
    for panel in slo_panels(slos):
        value = _scalar(prom.query(panel.expr))
        history = _series(prom.query_range(panel.expr, now - HISTORY_S, now, HISTORY_STEP_S))
        ok = None if value is None else bool(panel.good(value))
        rows.append(SloRow(panel.key, panel.label, value, panel.unit, panel.objective, ok, history))
    return HealthView(targets, rows, _alerts(prom.alerts()), now)


def color_stats(prom: Prometheus, slos: SLOs) -> dict[str, dict[str, float | None]]:
    """Per color: request rate, error ratio and p99 over the last minute."""
    api = slos.api_selector
    rate = prom.query(f"sum by (color) (rate(shop_http_requests_total{{{api}}}[1m]))")
    errors = prom.query(
        f'sum by (color) (rate(shop_http_requests_total{{{api},status="5xx"}}[1m]))'
    )
    p99 = prom.query(
        "histogram_quantile(0.99, sum by (color, le) "
        f"(rate(shop_http_request_duration_seconds_bucket{{{api}}}[1m])))"
    )
    out: dict[str, dict[str, float | None]] = {}
    for result, key in ((rate, "rps"), (errors, "errors"), (p99, "p99")):
        for sample in result:
            color = sample["metric"].get("color", "?")
            out.setdefault(color, {})[key] = _finite(float(sample["value"][1]))
    for stats in out.values():
        rps, errs = stats.get("rps"), stats.pop("errors", None)
        stats["error_ratio"] = (errs or 0) / rps if rps else None
    return out


def _flapping(prom: Prometheus) -> set[tuple[str, str]]:
    result = prom.query("changes(up[5m]) >= 2")
    return {(r["metric"].get("job", ""), r["metric"].get("instance", "")) for r in result}


def _targets(targets: list[TargetHealth], flapping: set[tuple[str, str]]) -> list[TargetRow]:
    rows = []
    for t in targets:
        # Down now says more than "changed often": a flapping target that is down shows down.
        flapped = (t.job, t.instance) in flapping and t.health != "down"
        state = "flapping" if flapped else t.health
        rows.append(TargetRow(t.job, t.instance, state, t.last_scrape[11:19], t.last_error))
    order = {"down": 0, "flapping": 1, "unknown": 2, "up": 3}
    return sorted(rows, key=lambda r: (order.get(r.state, 2), r.job, r.instance))


def _alerts(alerts: list[dict]) -> list[AlertRow]:
    rows = []
    for a in alerts:
        labels, notes = a.get("labels", {}), a.get("annotations", {})
        rows.append(
            AlertRow(
                severity=labels.get("severity", "none"),
                name=labels.get("alertname", "?"),
                state=a.get("state", "?"),
                summary=notes.get("summary", ""),
                runbook=notes.get("runbook_url", ""),
                since=(a.get("activeAt") or "")[11:19],
            )
        )
    return sorted(
        rows,
        key=lambda r: (SEVERITY_ORDER.get(r.severity, 3), r.state != "firing", r.name),
    )


def _scalar(result: list[dict]) -> float | None:
    if not result:
        return None
    return _finite(float(result[0]["value"][1]))


def _series(result: list[dict]) -> list[float]:
    if not result:
        return []
    values = [_finite(float(v)) for _, v in result[0]["values"]]
    return [v for v in values if v is not None]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
