"""The recording rules and the SLO alerts generated from the SLOs."""

from __future__ import annotations

from typing import Any

import yaml

from ocean.slo.model import (
    HEADER,
    HTTP_PERCENTILES,
    SLI_WINDOWS,
    BudgetSLO,
    BurnRateAlert,
    SLOs,
    seconds,
)


def num_text(value: float) -> str:
    """A number as written in slo.yaml: 14.4, 6, 0.001 (no float noise)."""
    return f"{value:.10g}"


def pct_text(ratio: float) -> str:
    return f"{ratio * 100:.10g}%"


def le_text(threshold_seconds: float) -> str:
    """The le label prometheus_client writes for a bucket bound (repr of the float)."""
    return repr(float(threshold_seconds))


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def yaml_doc(doc: Any, comment: str = "") -> str:
    head = f"# {HEADER}.\n" + "".join(f"# {line}\n" for line in comment.splitlines())
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    return head + body


def alert_name(slo: BudgetSLO, alert: BurnRateAlert) -> str:
    return f"Shop{slo.name.capitalize()}BudgetBurn{alert.name}"


DB_ALERT = "ShopDatabaseQueriesSlow"
STATUS_5XX = 'status="5xx"'
CACHE_ALERT = "ShopCacheHitRatioLow"


def alert_names(slos: SLOs) -> list[str]:
    """Every alert generated, in file order."""
    names = [alert_name(s, a) for s in slos.budget_slos for a in slos.burn_rate_alerts]
    return [*names, DB_ALERT, CACHE_ALERT]


def _db_record(slos: SLOs) -> str:
    return f"shop:db_query_duration_seconds:p{slos.db_query_latency.percentile}_5m"


def api_selector(slos: SLOs, *extra: str) -> str:
    return "{" + ",".join([slos.api_selector, *extra]) + "}"


def sli_expr(slos: SLOs, slo: BudgetSLO, window: str) -> str:
    if slo.name == "availability":
        bad = f"shop_http_requests_total{api_selector(slos, STATUS_5XX)}"
        every = f"shop_http_requests_total{api_selector(slos)}"
        return (
            f"(sum(rate({bad}[{window}]))\n"
            f"  or sum(rate({every}[{window}])) * 0)\n"
            f"/\nsum(rate({every}[{window}]))\n"
        )
    assert slo.threshold_seconds is not None  # nosec B101  # narrows a type for the checker only
    le = 'le="' + le_text(slo.threshold_seconds) + '"'
    fast = f"shop_http_request_duration_seconds_bucket{api_selector(slos, le)}"
    every = f"shop_http_request_duration_seconds_count{api_selector(slos)}"
    return f"1 - (\n  sum(rate({fast}[{window}]))\n  /\n  sum(rate({every}[{window}]))\n)\n"


def _runbook_url(slos: SLOs, name: str) -> str:
    return f"{slos.runbook_url_prefix}{name}.md"


def _burn_alert(slos: SLOs, slo: BudgetSLO, alert: BurnRateAlert) -> dict[str, Any]:
    name = alert_name(slo, alert)
    limit = f"({num_text(alert.factor)} * {num_text(slo.error_budget)})"
    days = seconds(slo.window) / alert.factor / 86400
    lasts = f"{days:.1f} days" if days >= 1 else f"{days * 24:.1f} hours"
    if slo.name == "availability":
        what = "of API requests failed (5xx)"
        objective = f"the {num_text(slo.objective)}% availability SLO"
        why = (
            "a bad deploy, a crashed or overloaded dependency (PostgreSQL, Redis),"
            " or fault injection left on"
        )
    else:
        what = f"of API requests took longer than {num_text(slo.threshold_ms or 0)} ms"
        objective = f"the p{slo.percentile} < {num_text(slo.threshold_ms or 0)} ms latency SLO"
        why = (
            "slow database queries, a cold or failing cache, lock contention on hot"
            " products, CPU saturation, or latency injection left on"
        )
    return {
        "alert": name,
        "expr": (
            f'slo:sli_error:ratio_rate{alert.long}{{slo="{slo.name}"}} > {limit}\n'
            f'and\nslo:sli_error:ratio_rate{alert.short}{{slo="{slo.name}"}} > {limit}\n'
        ),
        "for": alert.for_,
        "labels": {"severity": alert.severity, "team": slos.team, "slo": slo.name},
        "annotations": {
            "summary": (
                f"Shop {slo.name} error budget burning {num_text(alert.factor)}x too fast"
                f" ({alert.long} and {alert.short} windows)"
            ),
            "description": (
                f"{{{{ $value | humanizePercentage }}}} {what} over the last {alert.long}"
                f" ({num_text(alert.factor)}x the {pct_text(slo.error_budget)} {objective} allows;"
                f" at this rate the {slo.window} budget is gone in {lasts})."
                f" Likely {why}."
            ),
            "runbook_url": _runbook_url(slos, name),
        },
    }


def rules(slos: SLOs) -> tuple[dict[str, Any], dict[str, Any]]:
    """(shop.rules.yml, slo.rules.yml) documents."""
    http_pcts = [
        {
            "record": f"shop:http_request_duration_seconds:p{q}_5m",
            "expr": (
                f"histogram_quantile(0.{q}, sum by (color, route, le) "
                "(rate(shop_http_request_duration_seconds_bucket[5m])))"
            ),
        }
        for q in sorted(HTTP_PERCENTILES, reverse=True)
    ]
    every = "shop_http_requests_total"
    shop = {
        "groups": [
            {
                "name": "shop-sli",
                "rules": [
                    {
                        "record": "shop:http_requests:rate5m",
                        "expr": f"sum by (color, route) (rate({every}[5m]))",
                    },
                    {
                        "record": "shop:http_errors:ratio_rate5m",
                        "expr": (
                            f'(sum by (color) (rate({every}{{status="5xx"}}[5m]))\n'
                            f"  or sum by (color) (rate({every}[5m])) * 0)\n"
                            f"/\nsum by (color) (rate({every}[5m]))\n"
                        ),
                    },
                    *http_pcts,
                    {
                        "record": _db_record(slos),
                        "expr": (
                            f"histogram_quantile(0.{slos.db_query_latency.percentile},"
                            " sum by (query, le) (rate(shop_db_query_duration_seconds_bucket[5m])))"
                        ),
                    },
                    {
                        "record": "shop:cache_hit:ratio_rate5m",
                        "expr": (
                            'sum by (cache) (rate(shop_cache_requests_total{result="hit"}[5m]))\n'
                            "/\nsum by (cache) (rate(shop_cache_requests_total"
                            '{result=~"hit|miss|error"}[5m]))\n'
                        ),
                    },
                    {
                        "record": "shop:orders_created:rate1m_per_minute",
                        "expr": "sum(rate(shop_orders_created_total[1m])) * 60",
                    },
                ],
            }
        ]
    }
    sli_rules = [
        {
            "record": f"slo:sli_error:ratio_rate{w}",
            "expr": sli_expr(slos, slo, w),
            "labels": {"slo": slo.name},
        }
        for slo in slos.budget_slos
        for w in SLI_WINDOWS
    ]
    burn = [_burn_alert(slos, s, a) for s in slos.budget_slos for a in slos.burn_rate_alerts]
    db, cache = slos.db_query_latency, slos.cache_hit_ratio
    other = [
        {
            "alert": DB_ALERT,
            "expr": f"{_db_record(slos)} > {num_text(db.threshold_seconds)}",
            "for": db.for_,
            "labels": {"severity": "warning", "team": slos.team},
            "annotations": {
                "summary": (
                    f"Shop query {{{{ $labels.query }}}} p{db.percentile} above"
                    f" {num_text(db.threshold_ms)} ms"
                ),
                "description": (
                    f"The p{db.percentile} of the {{{{ $labels.query }}}} query has been"
                    f" {{{{ $value | humanizeDuration }}}} for {db.for_} (objective:"
                    f" p{db.percentile} < {num_text(db.threshold_ms)} ms). Likely lock waits on hot"
                    " rows, a missing index or bloated table after a bulk load, an exhausted"
                    " connection pool, or a host short of CPU or I/O."
                ),
                "runbook_url": _runbook_url(slos, DB_ALERT),
            },
        },
        {
            "alert": CACHE_ALERT,
            "expr": (
                f"shop:cache_hit:ratio_rate5m < {num_text(cache.min_ratio)}\n"
                "and on (cache)\n"
                "sum by (cache) (rate(shop_cache_requests_total[5m])) > "
                f"{num_text(cache.min_rate)}\n"
            ),
            "for": cache.for_,
            "labels": {"severity": "warning", "team": slos.team},
            "annotations": {
                "summary": (
                    "Shop {{ $labels.cache }} cache hit ratio below "
                    f"{num_text(cache.min_percent)}%"
                ),
                "description": (
                    f"Only {{{{ $value | humanizePercentage }}}} of {{{{ $labels.cache }}}} cache"
                    f" lookups hit over 5m, for {cache.for_} (objective: above"
                    f" {num_text(cache.min_percent)}%). Likely Redis down or evicting (maxmemory),"
                    " a cold cache after a restart or flush, heavy product writes replacing"
                    " entries, or traffic spread over far more products than usual."
                ),
                "runbook_url": _runbook_url(slos, CACHE_ALERT),
            },
        },
    ]
    slo_doc = {
        "groups": [
            {"name": "slo-sli", "rules": sli_rules},
            {"name": "slo-alerts", "rules": [*burn, *other]},
        ]
    }
    return shop, slo_doc
