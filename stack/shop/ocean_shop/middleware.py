"""Pure ASGI middleware recording request count and latency per route template.

BaseHTTPMiddleware would run every request through an extra task and memory
stream; this only wraps `send` to see the status code.
"""

from __future__ import annotations

from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocean_shop.metrics import ShopMetrics


class HTTPMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: ShopMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        start = perf_counter()
        # The scrape reading the gauge is not load: it would count itself on every scrape.
        counted = scope["path"] != "/metrics"
        if counted:
            self.metrics.in_flight.inc()
        # An exception escaping the app becomes a 500 in the error middleware
        # outside this one, so that is the status to count if none was sent.
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            if counted:
                self.metrics.in_flight.dec()
            # The router stores the matched route in the (shared) scope; its
            # path is the template, e.g. /api/products/{id}, which keeps ids
            # out of label values. No match (404) means no route.
            route = scope.get("route")
            self.metrics.observe_request(
                route.path if route is not None else "other",
                scope["method"],
                status,
                perf_counter() - start,
            )
