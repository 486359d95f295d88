"""The SLO dashboard (Grafana's JSON) and the k6 thresholds generated from the SLOs."""

from __future__ import annotations

from typing import Any

from ocean.slo.model import HEADER, SLOs, seconds
from ocean.slo.rules import (
    CACHE_ALERT,
    DB_ALERT,
    STATUS_5XX,
    alert_name,
    api_selector,
    num_text,
    pct_text,
)


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "expr": expr,
        "legendFormat": legend,
        "refId": ref,
    }


def _panel(
    pid: int,
    title: str,
    kind: str,
    grid: tuple[int, int, int, int],
    targets: list[dict[str, Any]],
    unit: str,
    description: str,
    steps: list[tuple[str, float | None]] | None = None,
) -> dict[str, Any]:
    x, y, w, h = grid
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": c, "value": v} for c, v in (steps or [("green", None)])],
                },
            },
            "overrides": [],
        },
        "options": {},
    }


def dashboard(slos: SLOs) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y = 0
    for slo in slos.budget_slos:
        b = num_text(slo.error_budget)
        goal = f"{num_text(slo.objective)}%" + (
            f" of requests < {num_text(slo.threshold_ms or 0)} ms" if slo.name == "latency" else ""
        )
        pid = len(panels) + 1
        panels.append(
            {
                "id": pid,
                "type": "row",
                "title": f"{slo.name.capitalize()} SLO: {goal} over {slo.window}",
                "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
                "collapsed": False,
                "panels": [],
            }
        )
        y += 1
        panels.append(
            _panel(
                pid + 1,
                f"{slo.name.capitalize()} SLI (1h)",
                "stat",
                (0, y, 6, 6),
                [_target(f'1 - slo:sli_error:ratio_rate1h{{slo="{slo.name}"}}', "SLI", "A")],
                "percentunit",
                f"Share of good API requests over the last hour; objective {goal}.",
                [("red", None), ("green", slo.objective / 100)],
            )
        )
        panels.append(
            _panel(
                pid + 2,
                f"{slo.name.capitalize()} error budget remaining (3d)",
                "stat",
                (6, y, 6, 6),
                [
                    _target(
                        f'1 - slo:sli_error:ratio_rate3d{{slo="{slo.name}"}} / {b}',
                        "budget left",
                        "A",
                    )
                ],
                "percentunit",
                f"1 - (bad ratio over the last 3 days / the {pct_text(slo.error_budget)} budget):"
                " below 0 means the last 3 days alone burned more than the budget allows.",
                [("red", None), ("orange", 0), ("green", 0.5)],
            )
        )
        windows = sorted({w for a in slos.burn_rate_alerts for w in (a.long, a.short)}, key=seconds)
        panels.append(
            _panel(
                pid + 3,
                f"{slo.name.capitalize()} burn rate (x budget)",
                "timeseries",
                (12, y, 12, 6),
                [
                    _target(
                        f'slo:sli_error:ratio_rate{w}{{slo="{slo.name}"}} / {b}',
                        w,
                        chr(ord("A") + i),
                    )
                    for i, w in enumerate(windows)
                ],
                "none",
                "Bad ratio / budget per window; alerts: "
                + "; ".join(
                    f"{alert_name(slo, a)} when {a.long} and {a.short} > {num_text(a.factor)}x"
                    for a in slos.burn_rate_alerts
                ),
                [("green", None)]
                + [
                    ("red" if a.severity == "critical" else "orange", a.factor)
                    for a in sorted(slos.burn_rate_alerts, key=lambda a: a.factor)
                ],
            )
        )
        y += 6
    lat = slos.latency
    db = slos.db_query_latency
    cache = slos.cache_hit_ratio
    pid = len(panels) + 1
    panels.append(
        {
            "id": pid,
            "type": "row",
            "title": "Service objectives",
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
            "collapsed": False,
            "panels": [],
        }
    )
    y += 1
    rate = "[$__rate_interval]"
    panels += [
        _panel(
            pid + 1,
            f"API p{lat.percentile} by route",
            "timeseries",
            (0, y, 12, 8),
            [
                _target(
                    f"histogram_quantile(0.{lat.percentile}, sum by (route, le) "
                    f"(rate(shop_http_request_duration_seconds_bucket{api_selector(slos)}{rate})))",
                    "{{route}}",
                    "A",
                )
            ],
            "s",
            f"Objective: p{lat.percentile} < {num_text(lat.threshold_ms or 0)} ms.",
            [("green", None), ("red", lat.threshold_seconds)],
        ),
        _panel(
            pid + 2,
            f"DB query p{db.percentile} by query",
            "timeseries",
            (12, y, 12, 8),
            [
                _target(
                    f"histogram_quantile(0.{db.percentile}, sum by (query, le) "
                    f"(rate(shop_db_query_duration_seconds_bucket{rate})))",
                    "{{query}}",
                    "A",
                )
            ],
            "s",
            f"Objective: p{db.percentile} < {num_text(db.threshold_ms)} ms"
            f" ({DB_ALERT} after {db.for_}).",
            [("green", None), ("red", db.threshold_seconds)],
        ),
        _panel(
            pid + 3,
            "Cache hit ratio",
            "timeseries",
            (0, y + 8, 8, 8),
            [
                _target(
                    f'sum by (cache) (rate(shop_cache_requests_total{{result="hit"}}{rate}))'
                    f" / sum by (cache) (rate(shop_cache_requests_total{rate}))",
                    "{{cache}}",
                    "A",
                )
            ],
            "percentunit",
            f"Objective: above {num_text(cache.min_percent)}% ({CACHE_ALERT} after {cache.for_}).",
            [("red", None), ("green", cache.min_ratio)],
        ),
        _panel(
            pid + 4,
            "API error ratio by color",
            "timeseries",
            (8, y + 8, 8, 8),
            [
                _target(
                    "sum by (color) (rate(shop_http_requests_total"
                    f"{api_selector(slos, STATUS_5XX)}{rate}))"
                    f" / sum by (color) (rate(shop_http_requests_total{api_selector(slos)}{rate}))",
                    "{{color}}",
                    "A",
                )
            ],
            "percentunit",
            f"Objective: below {pct_text(slos.availability.error_budget)}.",
            [("green", None), ("red", slos.availability.error_budget)],
        ),
        _panel(
            pid + 5,
            "Orders per minute",
            "timeseries",
            (16, y + 8, 8, 8),
            [_target(f"sum(rate(shop_orders_created_total{rate})) * 60", "orders/min", "A")],
            "none",
            "Orders created by checkout per minute.",
        ),
    ]
    pending = {
        "id": pid + 6,
        "type": "text",
        "title": "Not measured here yet",
        "gridPos": {"x": 0, "y": y + 16, "w": 24, "h": 3},
        "options": {
            "mode": "markdown",
            "content": (
                f"- Page load p{num_text(slos.page_load.percentile)} <"
                f" {num_text(slos.page_load.threshold_ms)} ms and LCP <"
                f" {num_text(slos.page_load.lcp_threshold_ms)} ms per storefront page: measured"
                f" by a {slos.page_load.measured_by} ({slos.page_load.status}; last figures:"
                " `ocean_page_load_p95_seconds`); no rule.\n"
                f"- {slos.capacity.concurrent_users:,}+ concurrent users: a load-test target"
                " (testing/k6/thresholds.json)."
            ),
        },
    }
    panels.append(pending)
    return {
        "title": f"Ocean {slos.service}: SLOs and error budgets",
        "uid": f"ocean-{slos.service}-slo",
        "description": HEADER,
        "tags": ["ocean", slos.service, "slo"],
        "timezone": "utc",
        "schemaVersion": 38,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                }
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def k6_thresholds(slos: SLOs) -> dict[str, Any]:
    lat, av = slos.latency, slos.availability
    return {
        "_generated": HEADER,
        "_notes": (
            "http_req_failed counts what k6 does not expect (by default every status"
            " >= 400): give scripts a responseCallback accepting the statuses the shop"
            " answers on purpose (402, 409, ...) so only server failures count."
        ),
        "thresholds": {
            "http_req_duration": [f"p({lat.percentile})<{num_text(lat.threshold_ms or 0)}"],
            "http_req_failed": [f"rate<{num_text(av.error_budget)}"],
        },
        "target_concurrent_users": slos.capacity.concurrent_users,
        # The storefront browser run's thresholds per page (testing/k6/storefront_browser.js).
        "page_load": {
            "percentile": slos.page_load.percentile,
            "load_ms": slos.page_load.threshold_ms,
            "lcp_ms": slos.page_load.lcp_threshold_ms,
        },
    }
