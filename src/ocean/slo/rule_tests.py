"""The promtool tests of the generated alerts: each burn-rate alert fires when its
budget burns and stays silent when it does not."""

from __future__ import annotations

import re
from typing import Any

from ocean.slo.model import TESTS_DIR, BudgetSLO, BurnRateAlert, SLOs, seconds
from ocean.slo.rules import CACHE_ALERT, DB_ALERT, alert_name, le_text, num_text


def _go_g(value: float) -> str:
    """Go's %.4g for the humanize* template functions."""
    return f"{value:.4g}"


def _counter(segments: list[tuple[float, int]]) -> str:
    """promtool series of a counter: for each (increment, steps) segment, ``steps``
    samples growing by ``increment`` (the first segment starts with a 0 sample)."""
    parts, value = [], 0.0
    for index, (per_step, steps) in enumerate(segments):
        if index == 0:
            parts.append(f"0+{num_text(per_step)}x{steps}")
        else:
            parts.append(f"{num_text(value + per_step)}+{num_text(per_step)}x{steps - 1}")
        value += per_step * steps
    return " ".join(parts)


def _burn_series(
    slo: BudgetSLO, segments: list[tuple[float, int]] | list[tuple[float, int, int]]
) -> list[dict[str, str]]:
    """API request counters: for each (ratio, steps[, volume]) segment, ``volume`` × 10,000
    requests a step (default 1×), ``ratio`` of them bad (5xx, or slower than the
    threshold), for ``steps`` samples."""
    base = {"route": "/api/products/{id}", "method": "GET", "color": "blue", "job": "shop"}
    requests = [(10_000 * (rest[0] if rest else 1), ratio, n) for ratio, n, *rest in segments]

    def series(metric: str, extra: dict[str, str], count: str) -> dict:
        labels = ",".join(f'{k}="{v}"' for k, v in {**base, **extra}.items())
        per = [
            ({"all": total, "bad": round(r * total), "good": total - round(r * total)}[count], n)
            for total, r, n in requests
        ]
        return {"series": f"{metric}{{{labels}}}", "values": _counter(per)}

    if slo.name == "availability":
        return [
            series("shop_http_requests_total", {"status": "2xx"}, "good"),
            series("shop_http_requests_total", {"status": "5xx"}, "bad"),
        ]
    assert slo.threshold_seconds is not None  # nosec B101  # narrows a type for the checker only
    le = {"le": le_text(slo.threshold_seconds)}
    return [
        series("shop_http_request_duration_seconds_bucket", le, "good"),
        series("shop_http_request_duration_seconds_count", {}, "all"),
    ]


def _minutes(duration: str) -> int:
    return int(seconds(duration) // 60)


def burn_step(alert: BurnRateAlert) -> int:
    """The sample and evaluation step (minutes) of a burn-rate alert's tests: the coarsest
    of 15, 10, 5, 2 minutes that divides its ``for`` and short window and still resolves
    them (≥ 3 steps of ``for``, ≥ 6 of the short window); else 1 minute.

    promtool evaluates every rule at every step up to a test's last eval_time: a 1 m step
    over the 7 h a 6 h/1 h ticket alert needs was most of the validation's time.
    """
    for_m, short_m = _minutes(alert.for_), _minutes(alert.short)
    for step in (15, 10, 5, 2):
        divides = for_m % step == 0 and short_m % step == 0
        if divides and for_m >= 3 * step and short_m >= 6 * step:
            return step
    return 1


def _up(minutes: int, step: int) -> int:
    """``minutes`` rounded up to a whole number of steps."""
    return -(-minutes // step) * step


def rule_test_file(alert: BurnRateAlert | None) -> str:
    """Where the promtool tests of a burn-rate alert (None: the other SLO alerts) go."""
    if alert is None:
        return f"{TESTS_DIR}/slo.test.yml"
    return f"{TESTS_DIR}/slo-burn-{alert.name.lower()}.test.yml"


def _burn_cases(slo: BudgetSLO, alert: BurnRateAlert, rule: dict) -> list[dict]:
    """Fires when both windows burn (not before ``for``); silent below the factor;
    resolves once the short window is clean although the long one still burns (after
    firing on the burst); silent while only the short window burns."""
    name = alert_name(slo, alert)
    step = burn_step(alert)
    limit = alert.factor * slo.error_budget
    long_m, short_m, for_m = (_minutes(x) for x in (alert.long, alert.short, alert.for_))
    interval = f"{step}m"

    def annotations(ratio: float) -> dict[str, str]:
        value = _go_g(ratio * 100) + "%"
        return {
            k: v.replace("{{ $value | humanizePercentage }}", value)
            for k, v in rule["annotations"].items()
        }

    def firing(at: int, ratio: float) -> dict:
        return {
            "eval_time": f"{at}m",
            "alertname": name,
            "exp_alerts": [
                {"exp_labels": dict(rule["labels"]), "exp_annotations": annotations(ratio)}
            ],
        }

    def silent(at: int) -> dict:
        return {"eval_time": f"{at}m", "alertname": name, "exp_alerts": []}

    # Both windows burn from the second sample on: `for` elapsed, two steps to spare.
    at = _up(for_m, step) + 2 * step
    # Just above and below the limit (1.25x, 0.8x): a factor off by a quarter fails a test.
    hot = round(min(1.25 * limit, 0.5) * 10_000) / 10_000
    # Errors stop for longer than the short window; the burst before them, at 3x the
    # limit for as long as the quiet spell, keeps the long window at ≈ 1.5x.
    quiet = _up(short_m + 5, step)
    burst = max(_up(for_m, step) + 2 * step, min(quiet, (long_m - quiet - step) // step * step))
    burst_ratio = round(min(3 * limit, 0.9) * 10_000) / 10_000
    # One step of clean traffic as heavy as 3x the spike that follows it, at 1.25x the
    # limit and as long as fills the short window and `for`: the long window stays < 0.4x.
    spike = _up(short_m + for_m, step) + step
    cases = [
        {
            "name": f"{name} fires when both windows burn above {num_text(alert.factor)}x",
            "interval": interval,
            "input_series": _burn_series(slo, [(hot, at // step + 1)]),
            "alert_rule_test": [silent(step), firing(at, hot)],
        },
        {
            "name": f"{name} stays silent below {num_text(alert.factor)}x",
            "interval": interval,
            "input_series": _burn_series(slo, [(0.8 * limit, at // step + 1)]),
            "alert_rule_test": [silent(at)],
        },
        {
            "name": f"{name} resolves once the {alert.short} window is clean",
            "interval": interval,
            "input_series": _burn_series(slo, [(burst_ratio, burst // step), (0, quiet // step)]),
            "alert_rule_test": [firing(burst, burst_ratio), silent(burst + quiet)],
        },
    ]
    if spike + step <= long_m:
        cases.append(
            {
                "name": f"{name} stays silent while only the {alert.short} window burns",
                "interval": interval,
                "input_series": _burn_series(
                    slo, [(0, 1, 3 * spike // step), (hot, spike // step)]
                ),
                "alert_rule_test": [silent(spike + step)],
            }
        )
    return cases


def tests(slos: SLOs, rule_docs: tuple[dict, dict]) -> dict[str, dict[str, Any]]:
    """The promtool test files (repo-relative path → document): one per burn-rate alert
    at its own step (``burn_step``), so promtool runs them in parallel and none samples
    finer than its alert needs; the DB and cache alerts in slo.test.yml at 1 m."""
    burn_rules = {r["alert"]: r for g in rule_docs[1]["groups"] for r in g["rules"] if "alert" in r}
    # Recording rules before the alerts that read them: promtool's default group order
    # is random, and an alert would read a recorded sample one step old, gone stale
    # after 5 minutes (the lookback) with a coarser step.
    shop_groups, slo_groups = ([g["name"] for g in doc["groups"]] for doc in rule_docs)
    files: dict[str, dict[str, Any]] = {}
    for alert in slos.burn_rate_alerts:
        files[rule_test_file(alert)] = {
            "rule_files": ["../slo.rules.yml"],
            "evaluation_interval": f"{burn_step(alert)}m",
            "group_eval_order": slo_groups,
            "tests": [
                case
                for slo in slos.budget_slos
                for case in _burn_cases(slo, alert, burn_rules[alert_name(slo, alert)])
            ],
        }
    cases: list[dict[str, Any]] = []
    db = slos.db_query_latency
    db_rule = burn_rules[DB_ALERT]
    # Every observation between two bounds around the threshold: p = lo + (hi - lo) * q.
    lo, hi = db.threshold_seconds, db.threshold_seconds * 2.5
    p_db = lo + (hi - lo) * db.percentile / 100
    at_db = 5 + _minutes(db.for_) + 5

    def db_series(per_bucket: dict[str, float]) -> list[dict[str, str]]:
        return [
            {
                "series": "shop_db_query_duration_seconds_bucket"
                f'{{query="place_order",le="{le}",job="shop"}}',
                "values": _counter([(n, at_db + 5)]),
            }
            for le, n in per_bucket.items()
        ]

    def expand(rule: dict, value: str, labels: dict[str, str]) -> dict[str, str]:
        out = {}
        for key, text in rule["annotations"].items():
            for name, label in labels.items():
                text = text.replace(f"{{{{ $labels.{name} }}}}", label)
            out[key] = re.sub(r"\{\{ \$value \| \w+ \}\}", value, text)
        return out

    db_labels = {**db_rule["labels"], "query": "place_order"}
    cases.append(
        {
            "name": f"{DB_ALERT} fires when a query's p{db.percentile} stays above the threshold",
            "interval": "1m",
            "input_series": db_series({le_text(lo): 0, le_text(hi): 100, "+Inf": 100}),
            "alert_rule_test": [
                {
                    "eval_time": f"{at_db}m",
                    "alertname": DB_ALERT,
                    "exp_alerts": [
                        {
                            "exp_labels": db_labels,
                            "exp_annotations": expand(
                                db_rule, f"{_go_g(p_db * 1000)}ms", {"query": "place_order"}
                            ),
                        }
                    ],
                },
            ],
        }
    )
    cases.append(
        {
            "name": f"{DB_ALERT} stays silent while queries are fast",
            "interval": "1m",
            "input_series": db_series({le_text(lo / 2): 100, le_text(lo): 100, "+Inf": 100}),
            "alert_rule_test": [
                {"eval_time": f"{at_db}m", "alertname": DB_ALERT, "exp_alerts": []}
            ],
        }
    )

    cache = slos.cache_hit_ratio
    cache_rule = burn_rules[CACHE_ALERT]
    at_c = 5 + _minutes(cache.for_) + 5
    busy = max(100.0, cache.min_rate * 60 * 10)  # lookups per minute, well above min_rate

    def cache_series(hit: float, miss: float) -> list[dict[str, str]]:
        return [
            {
                "series": f'shop_cache_requests_total{{cache="product",result="{res}",job="shop"}}',
                "values": _counter([(n, at_c + 5)]),
            }
            for res, n in (("hit", hit), ("miss", miss), ("error", 0))
        ]

    low = round(cache.min_ratio - 0.15, 2)
    cases.append(
        {
            "name": f"{CACHE_ALERT} fires when the hit ratio stays low under traffic",
            "interval": "1m",
            "input_series": cache_series(busy * low, busy * (1 - low)),
            "alert_rule_test": [
                {
                    "eval_time": f"{at_c}m",
                    "alertname": CACHE_ALERT,
                    "exp_alerts": [
                        {
                            "exp_labels": {**cache_rule["labels"], "cache": "product"},
                            "exp_annotations": expand(
                                cache_rule, f"{_go_g(low * 100)}%", {"cache": "product"}
                            ),
                        }
                    ],
                },
            ],
        }
    )
    high = (1 + cache.min_ratio) / 2
    cases.append(
        {
            "name": f"{CACHE_ALERT} stays silent above the objective",
            "interval": "1m",
            "input_series": cache_series(busy * high, busy * (1 - high)),
            "alert_rule_test": [
                {"eval_time": f"{at_c}m", "alertname": CACHE_ALERT, "exp_alerts": []}
            ],
        }
    )
    idle = cache.min_rate * 60 / 4  # lookups per minute: below min_rate
    cases.append(
        {
            "name": f"{CACHE_ALERT} stays silent with too little traffic to judge",
            "interval": "1m",
            "input_series": cache_series(idle / 2, idle / 2),
            "alert_rule_test": [
                {"eval_time": f"{at_c}m", "alertname": CACHE_ALERT, "exp_alerts": []}
            ],
        }
    )
    files[rule_test_file(None)] = {
        "rule_files": ["../shop.rules.yml", "../slo.rules.yml"],
        "evaluation_interval": "1m",
        "group_eval_order": [*shop_groups, *slo_groups],
        "tests": cases,
    }
    return files
