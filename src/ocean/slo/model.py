"""The SLOs of monitoring/slo.yaml as dataclasses: ``load`` reads and validates the
file (an :class:`SLOError` names every problem, with its key path)."""

from __future__ import annotations

import ast
import re
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
