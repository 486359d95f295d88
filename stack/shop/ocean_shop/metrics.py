"""Every Prometheus metric the shop exports, on a registry owned by one app.

A private registry (not prometheus_client's global one) lets tests build
several apps in one process without "duplicated timeseries" errors.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# The API's p99 target is 200 ms, so buckets are dense around it.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0)
# Single-row queries should take well under a millisecond.
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

CACHE_RESULTS = ("hit", "miss", "error")
# Any other method (httptools accepts dozens) is folded into "other" to keep
# the label set small.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class ShopMetrics:
    def __init__(self, *, version: str, color: str) -> None:
        self.registry = CollectorRegistry()
        self.color = color
        self.http_requests = Counter(
            "shop_http_requests_total",
            "HTTP requests by route template, method and status class.",
            ("route", "method", "status", "color"),
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "shop_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ("route", "method", "color"),
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        cache_requests = Counter(
            "shop_cache_requests_total",
            "Read-through cache lookups by result.",
            ("cache", "result"),
            registry=self.registry,
        )
        # Touching every label set up front exports zeros, so rate() works
        # from the first scrape instead of after the first miss or error.
        self.product_cache = {r: cache_requests.labels("product", r) for r in CACHE_RESULTS}
        self.db_query = Histogram(
            "shop_db_query_duration_seconds",
            "PostgreSQL query latency by query name.",
            ("query",),
            buckets=DB_BUCKETS,
            registry=self.registry,
        )
        Gauge(
            "shop_build_info",
            "Build of this process; always 1.",
            ("version", "color"),
            registry=self.registry,
        ).labels(version, color).set(1)
        # labels() hashes and locks on every call; request label sets are few
        # (routes x methods x status classes), so resolve each one once.
        self._http_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status // 100)
        children = self._http_children.get(key)
        if children is None:
            if method not in METHODS:
                method = "other"
            children = (
                self.http_requests.labels(route, method, f"{key[2]}xx", self.color),
                self.http_duration.labels(route, method, self.color),
            )
            self._http_children[key] = children
        children[0].inc()
        children[1].observe(seconds)
