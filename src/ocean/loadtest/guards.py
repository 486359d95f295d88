"""Server-side guards: stop k6 when the stack, as Prometheus sees it, breaches an SLO.

k6's thresholds judge only what the client measured, over the whole run (k6 issues
3198 and 2379). A guard judges a server-side metric over a sliding window (``rate``
over a few scrape intervals) and trips once its breach has lasted ``sustain_s``; it is
not judged in the first ``grace_s`` of the run (a cold cache is not a breach). One
guard reads what k6 itself pushed (remote write, by test id): failures the shop never
sees, such as nginx refusing connections past its worker_connections.

Limits come from monitoring/slo.yaml; ``--guard NAME=VALUE`` overrides one (``off``
disables it). Redis memory has no SLO: its limit is the RedisMemoryHigh alert's 90%.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from ocean import slo
from ocean.errors import OceanError

REDIS_MEMORY_RATIO = 0.9  # monitoring/rules/cache.rules.yml RedisMemoryHigh


@dataclass(frozen=True)
class Guard:
    name: str
    about: str
    query: str  # PromQL with {window} (e.g. 10s), {api} (slo.yaml's api_selector), {testid}
    limit: float
    above: bool  # breach when the value is above the limit (else below)
    unit: str  # how a value prints: ratio, %, ms
    scale: float = 1.0  # Prometheus value x scale = value in ``unit``
    sustain_s: float = 5.0
    grace_s: float = 0.0

    def breached(self, value: float) -> bool:
        return value > self.limit if self.above else value < self.limit

    def show(self, value: float) -> str:
        if self.unit == "%":
            return f"{value * 100:.2f}%"
        if self.unit == "ms":
            return f"{value:.0f} ms"
        return f"{value:.3g}"

    def describe(self) -> str:
        sign = ">" if self.above else "<"
        return f"{self.name} {sign} {self.show(self.limit)} for {self.sustain_s:g}s"

    def as_dict(self) -> dict:
        return asdict(self)


def defaults(slos: slo.SLOs) -> dict[str, Guard]:
    av, db, cache = slos.availability, slos.db_query_latency, slos.cache_hit_ratio
    all_api = "shop_http_requests_total{{{api}}}"
    return {
        g.name: g
        for g in (
            Guard(
                "error_ratio",
                "shop API 5xx / all (availability SLO)",
                f'sum(rate(shop_http_requests_total{{{{status="5xx",{{api}}}}}}[{{window}}]))'
                f" / sum(rate({all_api}[{{window}}]))",
                av.error_budget,
                above=True,
                unit="%",
                sustain_s=5,
            ),
            Guard(
                "client_error_ratio",
                "k6's failed requests / all: what the shop never saw too (nginx refusing"
                " connections, 502s)",
                'sum(rate(k6_http_reqs_total{{testid="{testid}",expected_response="false"}}'
                '[{window}])) / sum(rate(k6_http_reqs_total{{testid="{testid}"}}[{window}]))',
                av.error_budget,
                above=True,
                unit="%",
                sustain_s=5,
            ),
            Guard(
                "db_p95_ms",
                f"slowest query's p{db.percentile} (db_query_latency SLO)",
                f"max(histogram_quantile({db.percentile / 100},"
                " sum by (query, le) (rate(shop_db_query_duration_seconds_bucket[{window}]))))",
                db.threshold_ms,
                above=True,
                unit="ms",
                scale=1000,
                sustain_s=10,
                grace_s=5,
            ),
            Guard(
                "cache_hit_ratio",
                "worst cache's hit ratio (cache_hit_ratio SLO)",
                'min(sum by (cache) (rate(shop_cache_requests_total{{result="hit"}}[{window}]))'
                " / sum by (cache) (rate(shop_cache_requests_total[{window}]))"
                " and sum by (cache) (rate(shop_cache_requests_total[{window}]))"
                f" > {cache.min_rate:g})",
                cache.min_ratio,
                above=False,
                unit="%",
                sustain_s=60,
                grace_s=30,
            ),
            Guard(
                "redis_memory_ratio",
                "Redis used / maxmemory (RedisMemoryHigh)",
                'max(redis_memory_used_bytes{{job="redis"}}'
                ' / (redis_memory_max_bytes{{job="redis"}} > 0))',
                REDIS_MEMORY_RATIO,
                above=True,
                unit="%",
                sustain_s=10,
            ),
        )
    }


def resolve(slos: slo.SLOs, overrides: dict[str, str]) -> list[Guard]:
    """The run's guards: the defaults with ``overrides`` (NAME → number | 'off')."""
    guards = defaults(slos)
    for name, value in overrides.items():
        if name not in guards:
            raise OceanError(f"unknown guard {name!r}: choose from {', '.join(guards)}")
        if value.lower() == "off":
            del guards[name]
            continue
        try:
            limit = float(value.rstrip("%")) / (100 if value.endswith("%") else 1)
        except ValueError:
            raise OceanError(f"--guard {name}={value}: not a number or 'off'") from None
        if not math.isfinite(limit) or limit < 0:
            raise OceanError(f"--guard {name}={value}: must be a number >= 0")
        guards[name] = replace(guards[name], limit=limit)
    return list(guards.values())


def expression(guard: Guard, window_s: float, api_selector: str, testid: str = "") -> str:
    window = f"{max(1, round(window_s))}s"
    return guard.query.format(window=window, api=api_selector, testid=testid)


@dataclass(frozen=True)
class Breach:
    guard: str
    value: float
    limit: float
    at_s: float  # seconds into the run when it tripped
    since_s: float  # seconds into the run when the breach began
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


class Watch:
    """Trips a guard once its breach has lasted ``sustain_s`` (observations in order)."""

    def __init__(self, guards: list[Guard]) -> None:
        self.guards = {g.name: g for g in guards}
        self._since: dict[str, float] = {}

    def observe(self, name: str, value: float | None, at_s: float) -> Breach | None:
        guard = self.guards[name]
        if value is None or math.isnan(value) or at_s < guard.grace_s:
            self._since.pop(name, None)  # not judged: no data, or still warming up
            return None
        if not guard.breached(value):
            self._since.pop(name, None)
            return None
        since = self._since.setdefault(name, at_s)
        if at_s - since < guard.sustain_s:
            return None
        return Breach(
            guard.name,
            value,
            guard.limit,
            round(at_s, 1),
            round(since, 1),
            f"guard {guard.name}: {guard.show(value)} "
            f"{'>' if guard.above else '<'} {guard.show(guard.limit)} "
            f"since {since:.0f}s into the run (held {at_s - since:.0f}s)",
        )
