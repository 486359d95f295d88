"""Fault injection for operations testing: make one instance fail, slow down or unready.

Off by default, per process, and changed only through the admin API
(`PUT /admin/faults`, admin.py), so a rollback drill can break exactly one color:

- ``error_rate`` (0..1): that fraction of public requests answers
  ``500 {"detail": "injected fault"}`` without reaching its endpoint;
- ``latency_ms`` (0..60000): every public request waits that long first;
- ``fail_readiness``: /readyz answers 503 and names the fault (ops.py).

"Public" means every HTTP request except /healthz, /readyz, /metrics and /admin/*:
probes, scrapes and the admin API itself keep working (readiness has its own
switch). WebSocket connections are not affected.

An injected 500 must look like a real one to monitoring: the middleware sits inside
HTTPMetricsMiddleware (app.py adds it first) and resolves the route the request
would have taken, so shop_http_requests_total counts it as a 5xx of that route
template, which is what the deploy analysis compares between colors. Every
injected fault also counts in shop_injected_faults_total{kind}, and
shop_fault_injection_active{setting} shows the settings in force.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from ocean_shop.metrics import ShopMetrics

try:  # FastAPI >= 0.137.2 nests included routers; this flattens them (public API)
    from fastapi.routing import iter_route_contexts
except ImportError:  # older FastAPI: app.routes is already flat

    def iter_route_contexts(routes: list[BaseRoute]) -> list[BaseRoute]:  # type: ignore[misc]
        return routes


MAX_LATENCY_MS = 60_000
# Paths never failed nor delayed: probes, scrapes and the admin API.
EXEMPT_PATHS = frozenset(("/healthz", "/readyz", "/metrics", "/admin"))
EXEMPT_PREFIX = "/admin/"

INJECTED_BODY = b'{"detail":"injected fault"}'
INJECTED_HEADERS = (
    (b"content-type", b"application/json"),
    (b"content-length", str(len(INJECTED_BODY)).encode()),
)


@dataclass(frozen=True, slots=True)
class FaultSettings:
    error_rate: float = 0.0
    latency_ms: int = 0
    fail_readiness: bool = False

    def __post_init__(self) -> None:
        # The admin API validates first (422); this guards any other caller.
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be 0..1, got {self.error_rate}")
        if not 0 <= self.latency_ms <= MAX_LATENCY_MS:
            raise ValueError(f"latency_ms must be 0..{MAX_LATENCY_MS}, got {self.latency_ms}")

    def as_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


OFF = FaultSettings()


class Faults:
    """The settings in force in this process (one event loop: no locking needed)."""

    def __init__(self, metrics: ShopMetrics) -> None:
        self.metrics = metrics
        self.settings = OFF
        # The middleware's whole cost when nothing is injected: one attribute test.
        self.requests_affected = False

    def apply(self, settings: FaultSettings) -> FaultSettings:
        """Put `settings` in force; returns the ones they replace."""
        previous, self.settings = self.settings, settings
        self.requests_affected = settings.error_rate > 0 or settings.latency_ms > 0
        gauges = self.metrics.fault_settings
        gauges["error_rate"].set(settings.error_rate)
        gauges["latency_ms"].set(settings.latency_ms)
        gauges["fail_readiness"].set(int(settings.fail_readiness))
        return previous

    def reset(self) -> FaultSettings:
        return self.apply(OFF)


class FaultInjectionMiddleware:
    """Pure ASGI (see middleware.py): delays and fails public requests as configured."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.faults.requests_affected or scope["type"] != "http" or exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        # One snapshot per request, so a change mid-request never mixes two settings.
        settings = self.faults.settings
        counters = self.faults.metrics.injected_faults
        if settings.latency_ms:
            counters["latency"].inc()
            await asyncio.sleep(settings.latency_ms / 1000)
        # random() is in [0, 1): a rate of 1.0 fails every request, 0.0 none.
        # B311: fault-injection draw, not a secret
        if settings.error_rate and random.random() < settings.error_rate:  # nosec B311
            counters["error"].inc()
            resolve_route(scope)
            # Fresh messages: outer middlewares may add headers to them in place.
            await send(
                {"type": "http.response.start", "status": 500, "headers": [*INJECTED_HEADERS]}
            )
            await send({"type": "http.response.body", "body": INJECTED_BODY})
            return
        await self.app(scope, receive, send)


def exempt(path: str) -> bool:
    return path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIX)


def resolve_route(scope: Scope) -> None:
    """Set scope["route"] to the route the router would pick for this request.

    HTTPMetricsMiddleware labels requests with scope["route"], which only the
    router sets; a request failed before routing would otherwise count as "other".
    Only called for an injected error, so the normal path never pays for it.
    """
    app = scope.get("app")
    if app is None:
        return
    partial = None
    for context in iter_route_contexts(app.routes):
        match, child_scope = context.matches(scope)
        if match is Match.FULL:
            partial = (context, child_scope)
            break
        if match is Match.PARTIAL and partial is None:
            partial = (context, child_scope)  # right path, other method: the router's 405
    if partial is not None:
        context, child_scope = partial
        scope.update(child_scope)
        scope["route"] = getattr(context, "original_route", context)
