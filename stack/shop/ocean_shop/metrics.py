"""Every Prometheus metric the shop exports, on a registry owned by one app.

A private registry (not prometheus_client's global one) lets tests build
several apps in one process without "duplicated timeseries" errors.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

# The API's p99 target is 200 ms, so buckets are dense around it.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0)
# Single-row queries should take well under a millisecond.
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

CACHE_RESULTS = ("hit", "miss", "error")
# Fault injection (faults.py): what an injected fault did, and which settings exist.
FAULT_KINDS = ("error", "latency")
FAULT_SETTINGS = ("error_rate", "latency_ms", "fail_readiness")
# Lock waits are short unless a product is hot; holds span one SQL round trip.
LOCK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PAYMENT_FAILURE_REASONS = ("card_declined", "insufficient_funds", "provider_error")
CHECKOUT_OUTCOMES = (
    "paid",
    "payment_failed",
    "out_of_stock",
    "lock_timeout",
    "replayed",
    "rejected",
)
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
        self.orders_created = Counter(
            "shop_orders_created_total",
            "Orders created by checkout (stock reserved, before payment).",
            registry=self.registry,
        )
        self.checkout_dry_runs = Counter(
            "shop_checkout_dry_runs_total",
            "Checkouts rehearsed and rolled back (the deploy's warm-up): no order, no stock.",
            registry=self.registry,
        )
        payment_failures = Counter(
            "shop_payment_failures_total",
            "Payments the provider refused or could not complete, by reason.",
            ("reason",),
            registry=self.registry,
        )
        self.payment_failures = {r: payment_failures.labels(r) for r in PAYMENT_FAILURE_REASONS}
        checkout_duration = Histogram(
            "shop_checkout_duration_seconds",
            "Checkout latency (cart read to payment outcome) by outcome.",
            ("outcome",),
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.checkout_duration = {o: checkout_duration.labels(o) for o in CHECKOUT_OUTCOMES}
        self.low_stock_products = Gauge(
            "shop_low_stock_products",
            "Products whose stock is below SHOP_LOW_STOCK_THRESHOLD (refreshed every 60 s).",
            registry=self.registry,
        )
        self.lock_wait = Histogram(
            "shop_lock_wait_seconds",
            "Time a checkout waited to acquire its inventory locks.",
            buckets=LOCK_BUCKETS,
            registry=self.registry,
        )
        self.lock_hold = Histogram(
            "shop_lock_hold_seconds",
            "Time inventory locks were held (acquire to release).",
            buckets=LOCK_BUCKETS,
            registry=self.registry,
        )
        self.lock_contention = Counter(
            "shop_lock_contention_total",
            "Lock acquisitions that found a product already locked at least once.",
            registry=self.registry,
        )
        self.lock_timeouts = Counter(
            "shop_lock_timeouts_total",
            "Lock acquisitions given up after SHOP_LOCK_WAIT_MS.",
            registry=self.registry,
        )
        # The autoscaler's signals (issue 22): how many requests this process is serving
        # right now, and its CPU time (process_cpu_seconds_total and the other process_*).
        self.in_flight = Gauge(
            "shop_http_requests_in_flight",
            "HTTP requests this process is serving now.",
            ("color",),
            registry=self.registry,
        ).labels(color)
        ProcessCollector(registry=self.registry)
        self.websockets_open = Gauge(
            "shop_websocket_connections",
            "Open WebSocket order feeds.",
            registry=self.registry,
        )
        injected_faults = Counter(
            "shop_injected_faults_total",
            "Requests failed (error) or delayed (latency) by fault injection.",
            ("kind",),
            registry=self.registry,
        )
        self.injected_faults = {k: injected_faults.labels(k) for k in FAULT_KINDS}
        fault_settings = Gauge(
            "shop_fault_injection_active",
            "Fault injection settings in force (0 = off): error_rate 0..1, latency_ms,"
            " fail_readiness 0|1. Anything above 0 means this instance is being broken"
            " on purpose through its admin API.",
            ("setting",),
            registry=self.registry,
        )
        self.fault_settings = {name: fault_settings.labels(name) for name in FAULT_SETTINGS}
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
