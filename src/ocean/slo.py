"""The shop's SLOs (monitoring/slo.yaml) and everything generated from them.

``load()`` reads and validates the file into dataclasses (a :class:`SLOError` names
every problem, with its key path). ``generate()`` renders the recording rules, the
alerts, their promtool tests, the Grafana dashboard, the k6 thresholds and one runbook
per alert; ``python -m ocean.slo generate`` writes them, ``python -m ocean.slo check``
exits 1 naming each stale one. No number in a generated file is typed anywhere else.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ocean.config import REPO_ROOT

SLO_FILE = "monitoring/slo.yaml"
TESTS_DIR = "monitoring/rules/tests"
HEADER = f"GENERATED from {SLO_FILE} by `python -m ocean.slo generate`; do not edit"
# Windows of the slo:sli_error:ratio_rate<W> rules (a published contract).
SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# Histogram quantiles recorded by shop:http_request_duration_seconds:p<N>_5m.
HTTP_PERCENTILES = (95, 99)
DB_PERCENTILES = (95,)
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ALERT_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")


class SLOError(ValueError):
    """monitoring/slo.yaml is missing, unreadable or invalid (every problem, one a line)."""


@dataclass(frozen=True)
class BudgetSLO:
    """An SLO with an error budget: ``objective`` percent of API requests are good."""

    name: str  # the slo="..." label: availability | latency
    objective: float  # percent
    window: str
    percentile: int | None = None  # latency only
    threshold_ms: float | None = None  # latency only

    @property
    def error_budget(self) -> float:
        """The allowed bad fraction, e.g. 0.001 for 99.9%."""
        return round(1 - self.objective / 100, 12)

    @property
    def threshold_seconds(self) -> float | None:
        return None if self.threshold_ms is None else self.threshold_ms / 1000


@dataclass(frozen=True)
class ThresholdSLO:
    """A per-series threshold alerted on after ``for_`` (DB query latency)."""

    percentile: int
    threshold_ms: float
    for_: str

    @property
    def threshold_seconds(self) -> float:
        return self.threshold_ms / 1000


@dataclass(frozen=True)
class CacheSLO:
    min_percent: float
    for_: str
    min_rate: float  # lookups per second below which the ratio is not judged

    @property
    def min_ratio(self) -> float:
        return round(self.min_percent / 100, 12)


@dataclass(frozen=True)
class PageLoadSLO:
    threshold_ms: float  # the load event, per page, at `percentile`
    measured_by: str
    status: str  # "measured": by the browser run (no Prometheus rule); "pending": not yet
    lcp_threshold_ms: float = 2500.0  # Largest Contentful Paint, per page, at `percentile`
    percentile: float = 95.0


@dataclass(frozen=True)
class CapacitySLO:
    concurrent_users: int


@dataclass(frozen=True)
class BurnRateAlert:
    name: str  # Fast, Slow, Ticket → Shop<SLO>BudgetBurn<name>
    severity: str  # critical (page) | warning (ticket)
    long: str
    short: str
    factor: float
    for_: str


@dataclass(frozen=True)
class SLOs:
    service: str
    team: str
    runbook_url_prefix: str
    api_selector: str
    availability: BudgetSLO
    latency: BudgetSLO
    db_query_latency: ThresholdSLO
    cache_hit_ratio: CacheSLO
    page_load: PageLoadSLO
    capacity: CapacitySLO
    burn_rate_alerts: tuple[BurnRateAlert, ...]

    @property
    def budget_slos(self) -> tuple[BudgetSLO, ...]:
        return (self.availability, self.latency)


# --------------------------------------------------------------------------- loading


def seconds(duration: str) -> float:
    """'5m' → 300.0 (Prometheus duration, one unit)."""
    match = _DURATION.match(duration)
    if not match:
        raise ValueError(f"not a duration like 5m, 1h, 3d: {duration!r}")
    return int(match[1]) * _UNIT_SECONDS[match[2]]


class _Reader:
    """Collects every problem with its key path instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def mapping(self, data: Any, path: str, keys: set[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.error(path, f"must be a mapping, got {type(data).__name__}")
            return {}
        for key in sorted(set(data) - keys, key=str):
            self.error(f"{path}.{key}", f"unknown key (expected one of {', '.join(sorted(keys))})")
        for key in sorted(keys - set(data)):
            self.error(f"{path}.{key}", "missing")
        return data

    def number(self, data: dict, path: str, key: str, low: float, high: float) -> float:
        value = data.get(key)
        if key not in data:
            return low if low > 0 else 1.0
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(f"{path}.{key}", f"must be a number, got {value!r}")
            return 1.0
        if not low < value < high:
            self.error(f"{path}.{key}", f"must be above {low:g} and below {high:g}, got {value!r}")
        return float(value)

    def text(self, data: dict, path: str, key: str, pattern: str = r".+") -> str:
        value = data.get(key)
        if key not in data:
            return ""
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            self.error(f"{path}.{key}", f"must be a string matching {pattern}, got {value!r}")
            return ""
        return value

    def duration(self, data: dict, path: str, key: str) -> str:
        value = data.get(key)
        if key not in data:
            return "1m"
        try:
            seconds(value if isinstance(value, str) else repr(value))
        except ValueError as exc:
            self.error(f"{path}.{key}", str(exc))
            return "1m"
        return value


def _http_buckets(root: Path) -> tuple[float, ...] | None:
    """HTTP_BUCKETS of the shop's metrics module, read without importing the shop."""
    source = root / "stack/shop/ocean_shop/metrics.py"
    try:
        tree = ast.parse(source.read_text())
    except OSError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "HTTP_BUCKETS" for t in node.targets
        ):
            return tuple(ast.literal_eval(node.value))
    return None


def parse(data: Any, root: Path = REPO_ROOT) -> SLOs:
    """Validate the parsed YAML document; raise SLOError naming every problem."""
    r = _Reader()
    top = r.mapping(
        data,
        "(top)",
        {"service", "team", "runbook_url_prefix", "api_selector", "slos", "burn_rate_alerts"},
    )
    service = r.text(top, "(top)", "service", r"[a-z][a-z0-9_]*")
    team = r.text(top, "(top)", "team", r"[a-z][a-z0-9_-]*")
    runbook = r.text(top, "(top)", "runbook_url_prefix", r"\S+/")
    selector = r.text(top, "(top)", "api_selector", r'[a-z_]+(=|!=|=~|!~)"[^"]*"')
    slos = r.mapping(
        top.get("slos", {}),
        "slos",
        {
            "availability",
            "latency",
            "db_query_latency",
            "cache_hit_ratio",
            "page_load",
            "capacity",
        },
    )

    p = "slos.availability"
    d = r.mapping(slos.get("availability", {}), p, {"objective", "window"})
    availability = BudgetSLO(
        "availability", r.number(d, p, "objective", 0, 100), r.duration(d, p, "window")
    )

    p = "slos.latency"
    d = r.mapping(slos.get("latency", {}), p, {"percentile", "threshold_ms", "objective", "window"})
    pct = r.number(d, p, "percentile", 0, 100)
    if "percentile" in d and pct not in HTTP_PERCENTILES:
        r.error(f"{p}.percentile", f"must be one of {HTTP_PERCENTILES} (the recorded p<N>_5m)")
    latency = BudgetSLO(
        "latency",
        r.number(d, p, "objective", 0, 100),
        r.duration(d, p, "window"),
        int(pct),
        r.number(d, p, "threshold_ms", 0, 60_000),
    )
    buckets = _http_buckets(root)
    if buckets is not None and "threshold_ms" in d and latency.threshold_seconds not in buckets:
        r.error(
            f"{p}.threshold_ms",
            f"{latency.threshold_ms:g} ms is not a bucket of shop_http_request_duration_seconds"
            f" (stack/shop/ocean_shop/metrics.py HTTP_BUCKETS: {buckets}); the latency SLI"
            " counts requests in the le bucket at the threshold",
        )
    if "percentile" in d and "objective" in d and latency.objective != pct:
        r.error(
            f"{p}.objective",
            f"p{pct:g} < {latency.threshold_ms:g} ms means {pct:g}% of requests are faster:"
            f" objective must equal percentile, got {latency.objective:g}",
        )

    p = "slos.db_query_latency"
    d = r.mapping(slos.get("db_query_latency", {}), p, {"percentile", "threshold_ms", "for"})
    pct = r.number(d, p, "percentile", 0, 100)
    if "percentile" in d and pct not in DB_PERCENTILES:
        r.error(f"{p}.percentile", f"must be one of {DB_PERCENTILES} (the recorded p<N>_5m)")
    db = ThresholdSLO(int(pct), r.number(d, p, "threshold_ms", 0, 60_000), r.duration(d, p, "for"))

    p = "slos.cache_hit_ratio"
    d = r.mapping(slos.get("cache_hit_ratio", {}), p, {"min_percent", "for", "min_rate"})
    cache = CacheSLO(
        r.number(d, p, "min_percent", 0, 100),
        r.duration(d, p, "for"),
        r.number(d, p, "min_rate", 0, 1e9),
    )

    p = "slos.page_load"
    d = r.mapping(
        slos.get("page_load", {}),
        p,
        {"threshold_ms", "measured_by", "status", "lcp_threshold_ms", "percentile"},
    )
    page = PageLoadSLO(
        r.number(d, p, "threshold_ms", 0, 600_000),
        r.text(d, p, "measured_by"),
        r.text(d, p, "status", "pending|measured"),
        r.number(d, p, "lcp_threshold_ms", 0, 600_000) if "lcp_threshold_ms" in d else 2500.0,
        r.number(d, p, "percentile", 0, 100) if "percentile" in d else 95.0,
    )

    p = "slos.capacity"
    d = r.mapping(slos.get("capacity", {}), p, {"concurrent_users"})
    users = r.number(d, p, "concurrent_users", 0, 1e9)
    if "concurrent_users" in d and users != int(users):
        r.error(f"{p}.concurrent_users", f"must be a whole number, got {users!r}")
    capacity = CapacitySLO(int(users))

    alerts: list[BurnRateAlert] = []
    raw_alerts = top.get("burn_rate_alerts", [])
    if not isinstance(raw_alerts, list) or not raw_alerts:
        r.error("burn_rate_alerts", "must be a non-empty list")
        raw_alerts = []
    for i, raw in enumerate(raw_alerts):
        p = f"burn_rate_alerts[{i}]"
        d = r.mapping(raw, p, {"name", "severity", "long", "short", "factor", "for"})
        alert = BurnRateAlert(
            r.text(d, p, "name", _ALERT_NAME.pattern),
            r.text(d, p, "severity", "critical|warning"),
            r.duration(d, p, "long"),
            r.duration(d, p, "short"),
            r.number(d, p, "factor", 0, 1000),
            r.duration(d, p, "for"),
        )
        for key in ("long", "short"):
            if key in d and getattr(alert, key) not in SLI_WINDOWS:
                r.error(f"{p}.{key}", f"must be a recorded window, one of {', '.join(SLI_WINDOWS)}")
        if {"long", "short"} <= set(d) and seconds(alert.short) >= seconds(alert.long):
            r.error(f"{p}.short", f"must be shorter than long ({alert.long})")
        # The generated promtool tests follow whatever `for` says; this is the policy of
        # `invoke validate`'s rule-for check (ocean.validate.rule_sanity), applied here so
        # the generator never writes an alert that check refuses.
        if {"short", "for"} <= set(d) and seconds(alert.for_) > seconds(alert.short):
            r.error(
                f"{p}.for",
                f"must not exceed short ({alert.short}): a multiwindow alert whose for: is "
                "longer than its short window pages late, or never for a burn that stops",
            )
        if alert.name and alert.name in {a.name for a in alerts}:
            r.error(f"{p}.name", f"duplicate alert name {alert.name!r}")
        alerts.append(alert)

    if r.errors:
        raise SLOError(
            f"{SLO_FILE}: {len(r.errors)} problem(s):\n" + "\n".join(f"  {e}" for e in r.errors)
        )
    return SLOs(
        service,
        team,
        runbook,
        selector,
        availability,
        latency,
        db,
        cache,
        page,
        capacity,
        tuple(alerts),
    )


def load(path: Path | None = None, root: Path = REPO_ROOT) -> SLOs:
    """Read and validate monitoring/slo.yaml (or ``path``)."""
    path = path or root / SLO_FILE
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SLOError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise SLOError(f"{path}: not valid YAML: {exc}") from exc
    return parse(data, root)


# ------------------------------------------------------------------------- rendering


def _num(value: float) -> str:
    """A number as written in slo.yaml: 14.4, 6, 0.001 (no float noise)."""
    return f"{value:.10g}"


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.10g}%"


def _le(threshold_seconds: float) -> str:
    """The le label prometheus_client writes for a bucket bound (repr of the float)."""
    return repr(float(threshold_seconds))


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def _yaml(doc: Any, comment: str = "") -> str:
    head = f"# {HEADER}.\n" + "".join(f"# {line}\n" for line in comment.splitlines())
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    return head + body


def alert_name(slo: BudgetSLO, alert: BurnRateAlert) -> str:
    return f"Shop{slo.name.capitalize()}BudgetBurn{alert.name}"


DB_ALERT = "ShopDatabaseQueriesSlow"
_5XX = 'status="5xx"'
CACHE_ALERT = "ShopCacheHitRatioLow"


def alert_names(slos: SLOs) -> list[str]:
    """Every alert generated, in file order."""
    names = [alert_name(s, a) for s in slos.budget_slos for a in slos.burn_rate_alerts]
    return [*names, DB_ALERT, CACHE_ALERT]


def _db_record(slos: SLOs) -> str:
    return f"shop:db_query_duration_seconds:p{slos.db_query_latency.percentile}_5m"


def _sel(slos: SLOs, *extra: str) -> str:
    return "{" + ",".join([slos.api_selector, *extra]) + "}"


def sli_expr(slos: SLOs, slo: BudgetSLO, window: str) -> str:
    if slo.name == "availability":
        bad = f"shop_http_requests_total{_sel(slos, _5XX)}"
        every = f"shop_http_requests_total{_sel(slos)}"
        return (
            f"(sum(rate({bad}[{window}]))\n"
            f"  or sum(rate({every}[{window}])) * 0)\n"
            f"/\nsum(rate({every}[{window}]))\n"
        )
    assert slo.threshold_seconds is not None  # nosec B101  # narrows a type for the checker only
    le = 'le="' + _le(slo.threshold_seconds) + '"'
    fast = f"shop_http_request_duration_seconds_bucket{_sel(slos, le)}"
    every = f"shop_http_request_duration_seconds_count{_sel(slos)}"
    return f"1 - (\n  sum(rate({fast}[{window}]))\n  /\n  sum(rate({every}[{window}]))\n)\n"


def _runbook_url(slos: SLOs, name: str) -> str:
    return f"{slos.runbook_url_prefix}{name}.md"


def _burn_alert(slos: SLOs, slo: BudgetSLO, alert: BurnRateAlert) -> dict[str, Any]:
    name = alert_name(slo, alert)
    limit = f"({_num(alert.factor)} * {_num(slo.error_budget)})"
    days = seconds(slo.window) / alert.factor / 86400
    lasts = f"{days:.1f} days" if days >= 1 else f"{days * 24:.1f} hours"
    if slo.name == "availability":
        what = "of API requests failed (5xx)"
        objective = f"the {_num(slo.objective)}% availability SLO"
        why = (
            "a bad deploy, a crashed or overloaded dependency (PostgreSQL, Redis),"
            " or fault injection left on"
        )
    else:
        what = f"of API requests took longer than {_num(slo.threshold_ms or 0)} ms"
        objective = f"the p{slo.percentile} < {_num(slo.threshold_ms or 0)} ms latency SLO"
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
                f"Shop {slo.name} error budget burning {_num(alert.factor)}x too fast"
                f" ({alert.long} and {alert.short} windows)"
            ),
            "description": (
                f"{{{{ $value | humanizePercentage }}}} {what} over the last {alert.long}"
                f" ({_num(alert.factor)}x the {_pct(slo.error_budget)} {objective} allows;"
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
            "expr": f"{_db_record(slos)} > {_num(db.threshold_seconds)}",
            "for": db.for_,
            "labels": {"severity": "warning", "team": slos.team},
            "annotations": {
                "summary": (
                    f"Shop query {{{{ $labels.query }}}} p{db.percentile} above"
                    f" {_num(db.threshold_ms)} ms"
                ),
                "description": (
                    f"The p{db.percentile} of the {{{{ $labels.query }}}} query has been"
                    f" {{{{ $value | humanizeDuration }}}} for {db.for_} (objective:"
                    f" p{db.percentile} < {_num(db.threshold_ms)} ms). Likely lock waits on hot"
                    " rows, a missing index or bloated table after a bulk load, an exhausted"
                    " connection pool, or a host short of CPU or I/O."
                ),
                "runbook_url": _runbook_url(slos, DB_ALERT),
            },
        },
        {
            "alert": CACHE_ALERT,
            "expr": (
                f"shop:cache_hit:ratio_rate5m < {_num(cache.min_ratio)}\n"
                "and on (cache)\n"
                f"sum by (cache) (rate(shop_cache_requests_total[5m])) > {_num(cache.min_rate)}\n"
            ),
            "for": cache.for_,
            "labels": {"severity": "warning", "team": slos.team},
            "annotations": {
                "summary": (
                    f"Shop {{{{ $labels.cache }}}} cache hit ratio below {_num(cache.min_percent)}%"
                ),
                "description": (
                    f"Only {{{{ $value | humanizePercentage }}}} of {{{{ $labels.cache }}}} cache"
                    f" lookups hit over 5m, for {cache.for_} (objective: above"
                    f" {_num(cache.min_percent)}%). Likely Redis down or evicting (maxmemory),"
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


# ----------------------------------------------------------------- promtool tests


def _go_g(value: float) -> str:
    """Go's %.4g for the humanize* template functions."""
    return f"{value:.4g}"


def _counter(segments: list[tuple[float, int]]) -> str:
    """promtool series of a counter: for each (increment, steps) segment, ``steps``
    samples growing by ``increment`` (the first segment starts with a 0 sample)."""
    parts, value = [], 0.0
    for index, (per_step, steps) in enumerate(segments):
        if index == 0:
            parts.append(f"0+{_num(per_step)}x{steps}")
        else:
            parts.append(f"{_num(value + per_step)}+{_num(per_step)}x{steps - 1}")
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
    le = {"le": _le(slo.threshold_seconds)}
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
            "name": f"{name} fires when both windows burn above {_num(alert.factor)}x",
            "interval": interval,
            "input_series": _burn_series(slo, [(hot, at // step + 1)]),
            "alert_rule_test": [silent(step), firing(at, hot)],
        },
        {
            "name": f"{name} stays silent below {_num(alert.factor)}x",
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
            "input_series": db_series({_le(lo): 0, _le(hi): 100, "+Inf": 100}),
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
            "input_series": db_series({_le(lo / 2): 100, _le(lo): 100, "+Inf": 100}),
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


# ------------------------------------------------------------------ dashboard, k6


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
        b = _num(slo.error_budget)
        goal = f"{_num(slo.objective)}%" + (
            f" of requests < {_num(slo.threshold_ms or 0)} ms" if slo.name == "latency" else ""
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
                f"1 - (bad ratio over the last 3 days / the {_pct(slo.error_budget)} budget):"
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
                    f"{alert_name(slo, a)} when {a.long} and {a.short} > {_num(a.factor)}x"
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
                    f"(rate(shop_http_request_duration_seconds_bucket{_sel(slos)}{rate})))",
                    "{{route}}",
                    "A",
                )
            ],
            "s",
            f"Objective: p{lat.percentile} < {_num(lat.threshold_ms or 0)} ms.",
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
            f"Objective: p{db.percentile} < {_num(db.threshold_ms)} ms"
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
            f"Objective: above {_num(cache.min_percent)}% ({CACHE_ALERT} after {cache.for_}).",
            [("red", None), ("green", cache.min_ratio)],
        ),
        _panel(
            pid + 4,
            "API error ratio by color",
            "timeseries",
            (8, y + 8, 8, 8),
            [
                _target(
                    f"sum by (color) (rate(shop_http_requests_total{_sel(slos, _5XX)}{rate}))"
                    f" / sum by (color) (rate(shop_http_requests_total{_sel(slos)}{rate}))",
                    "{{color}}",
                    "A",
                )
            ],
            "percentunit",
            f"Objective: below {_pct(slos.availability.error_budget)}.",
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
                f"- Page load p{_num(slos.page_load.percentile)} <"
                f" {_num(slos.page_load.threshold_ms)} ms and LCP <"
                f" {_num(slos.page_load.lcp_threshold_ms)} ms per storefront page: measured"
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
            "http_req_duration": [f"p({lat.percentile})<{_num(lat.threshold_ms or 0)}"],
            "http_req_failed": [f"rate<{_num(av.error_budget)}"],
        },
        "target_concurrent_users": slos.capacity.concurrent_users,
        # The storefront browser run's thresholds per page (testing/k6/storefront_browser.js).
        "page_load": {
            "percentile": slos.page_load.percentile,
            "load_ms": slos.page_load.threshold_ms,
            "lcp_ms": slos.page_load.lcp_threshold_ms,
        },
    }


# ------------------------------------------------------------------------- runbooks

_TASKS = """\
## What to do

1. `./ocean status`: which services and shop colors are up, and their health probes.
2. `./ocean logs shop-blue` (and `shop-green`): the shop's JSON log lines; follow one
   request across nginx and the shop by its `trace_id`.
3. Check fault injection is off: `shop_fault_injection_active` on the dashboard, or
   `GET /admin/faults` on the color's admin listener.
4. `./ocean restart SERVICE` for a crashed or wedged service (e.g. `postgres`,
   `redis-master`, `shop-blue`).
5. If it started with a deploy: `invoke rollback` (one nginx reload back to the
   previous color), then find the cause before `invoke deploy` again.
"""


def _runbook(slos: SLOs, rule: dict[str, Any], means: str, causes: list[str]) -> str:
    name = rule["alert"]
    severity = rule["labels"]["severity"]
    how = "pages the on-call" if severity == "critical" else "opens a ticket"
    lines = [
        f"<!-- {HEADER}. -->",
        f"# {name}",
        "",
        f"**Severity:** `{severity}` ({how}), team `{rule['labels']['team']}`."
        " Dashboard: `monitoring/dashboards/slo.json`.",
        "",
        "## What it means",
        "",
        means,
        "",
        "```promql",
        rule["expr"].rstrip(),
        "```",
        "",
        f"Pending for {rule['for']} before it fires.",
        "",
        "## Likely causes",
        "",
        *[f"- {c}" for c in causes],
        "",
        _TASKS,
    ]
    return "\n".join(lines)


def runbooks(slos: SLOs, rule_docs: tuple[dict, dict]) -> dict[str, str]:
    by_name = {r["alert"]: r for g in rule_docs[1]["groups"] for r in g["rules"] if "alert" in r}
    out: dict[str, str] = {}
    for slo in slos.budget_slos:
        for alert in slos.burn_rate_alerts:
            name = alert_name(slo, alert)
            sli = (
                "API requests answered with a 5xx"
                if slo.name == "availability"
                else f"API requests slower than {_num(slo.threshold_ms or 0)} ms"
            )
            means = (
                f"The share of {sli} over both the last {alert.long} and the last"
                f" {alert.short} is above {_num(alert.factor)}x the error budget"
                f" ({_pct(slo.error_budget)} for a {_num(slo.objective)}% objective over"
                f" {slo.window}). At that rate the whole {slo.window} budget is spent in"
                f" {seconds(slo.window) / alert.factor / 86400:.1f} days. The short window"
                " makes it resolve soon after the problem stops."
            )
            if slo.name == "availability":
                causes = [
                    "A bad deploy of one color (compare `shop:http_errors:ratio_rate5m` by color).",
                    "PostgreSQL or the Redis master down or refusing connections.",
                    "Fault injection (`error_rate`) left on after a drill.",
                    "Overload: connection pool exhausted, lock timeouts answered with 503.",
                ]
            else:
                causes = [
                    "Slow database queries (see ShopDatabaseQueriesSlow,"
                    " `shop:db_query_duration_seconds:p95_5m`).",
                    "A cold or failing product cache (`shop:cache_hit:ratio_rate5m`).",
                    "Lock contention on hot products during checkout bursts.",
                    "CPU saturation on the host, or latency injection (`latency_ms`) left on.",
                ]
            out[name] = _runbook(slos, by_name[name], means, causes)
    db, cache = slos.db_query_latency, slos.cache_hit_ratio
    out[DB_ALERT] = _runbook(
        slos,
        by_name[DB_ALERT],
        f"The p{db.percentile} latency of one named shop query (label `query`) has stayed"
        f" above {_num(db.threshold_ms)} ms for {db.for_}. User-facing latency suffers next"
        " (ShopLatencyBudgetBurn*).",
        [
            "Row lock waits on hot products (`place_order` locks product rows).",
            "A bulk load (`invoke seed`) just ran: stale statistics, or queries waiting for"
            " its commit.",
            "The connection pool is exhausted (`SHOP_DB_POOL_MAX`) and queries queue.",
            "The host is short of CPU or I/O; PostgreSQL's small local buffer pool.",
        ],
    )
    out[CACHE_ALERT] = _runbook(
        slos,
        by_name[CACHE_ALERT],
        f"Under {_num(cache.min_percent)}% of lookups in a cache (label `cache`) hit for"
        f" {cache.for_}, while it serves more than {_num(cache.min_rate)} lookups/s."
        " Misses fall through to PostgreSQL, so database load and latency rise.",
        [
            "The Redis master is down or restarting (errors count as non-hits).",
            "Redis evicting entries at `maxmemory`.",
            "A cold cache after a restart or flush (should recover within minutes).",
            "Many product writes (checkouts, admin changes) replacing entries with tombstones.",
        ],
    )
    return {f"docs/runbooks/{name}.md": text for name, text in out.items()}


# ------------------------------------------------------------------------ generation


def rule_files(slos: SLOs, docs: tuple[dict, dict] | None = None) -> dict[str, str]:
    """The generated Prometheus rule files: name in monitoring/rules → content."""
    shop, slo_doc = docs or rules(slos)
    comment = "Recording rules for the shop's SLIs (names published in monitoring/slo.yaml)."
    return {
        "shop.rules.yml": _yaml(shop, comment),
        "slo.rules.yml": _yaml(
            slo_doc, "SLI error ratios per window and the SLO alerts (runbooks: docs/runbooks/)."
        ),
    }


def generate(slos: SLOs) -> dict[str, str]:
    """Every generated file: repo-relative path → content."""
    docs = rules(slos)
    files = {
        **{f"monitoring/rules/{name}": text for name, text in rule_files(slos, docs).items()},
        "monitoring/dashboards/slo.json": json.dumps(dashboard(slos), indent=2) + "\n",
        "testing/k6/thresholds.json": json.dumps(k6_thresholds(slos), indent=2) + "\n",
    }
    for rel, doc in tests(slos, docs).items():
        files[rel] = _yaml(doc, f"promtool test rules {rel} (paths relative to its directory).")
    files.update(runbooks(slos, docs))
    return files


def _orphans(root: Path, files: dict[str, str]) -> list[str]:
    """Runbooks and promtool test files generated earlier for alerts that no longer exist."""
    found = []
    candidates = [*(root / "docs/runbooks").glob("*.md"), *(root / TESTS_DIR).glob("*.yml")]
    for path in sorted(candidates):
        rel = path.relative_to(root).as_posix()
        if rel not in files and HEADER in path.read_text():
            found.append(rel)
    return found


def stale(root: Path = REPO_ROOT, slos: SLOs | None = None) -> list[str]:
    """Generated files that differ from what slo.yaml generates now (with the reason)."""
    files = generate(slos or load(root=root))
    out = []
    for rel, text in files.items():
        path = root / rel
        if not path.exists():
            out.append(f"{rel} (missing)")
        elif path.read_text() != text:
            out.append(f"{rel} (out of date)")
    out += [f"{rel} (no longer generated: delete it)" for rel in _orphans(root, files)]
    return out


def write(root: Path = REPO_ROOT, slos: SLOs | None = None) -> list[str]:
    """Write every generated file; return the ones that changed."""
    files = generate(slos or load(root=root))
    changed = []
    for rel, text in files.items():
        path = root / rel
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(rel)
    return changed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in (["generate"], ["check"]):
        print("usage: python -m ocean.slo generate|check", file=sys.stderr)
        return 2
    try:
        if args == ["generate"]:
            for rel in write():
                print(f"wrote {rel}")
            return 0
        problems = stale()
    except SLOError as exc:
        print(exc, file=sys.stderr)
        return 1
    for rel in problems:
        print(f"stale: {rel}", file=sys.stderr)
    if problems:
        print("run: python -m ocean.slo generate", file=sys.stderr)
        return 1
    print(f"generated files are up to date with {SLO_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
