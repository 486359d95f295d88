"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
from fastapi import FastAPI, Request
from redis.exceptions import RedisError
from starlette.routing import Match

from ocean_shop import admin, api, backoffice, feeds, ops, pages
from ocean_shop.config import Settings
from ocean_shop.fastpath import ProductReadFastPath
from ocean_shop.faults import FaultInjectionMiddleware, Faults
from ocean_shop.logs import TraceIdMiddleware
from ocean_shop.metrics import ShopMetrics
from ocean_shop.middleware import HTTPMetricsMiddleware
from ocean_shop.resources import open_resources
from ocean_shop.responses import JSONResponse


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    metrics = ShopMetrics(version=settings.version, color=settings.color)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.static_dir is not None:
            pages.ASSETS.publish(Path(settings.static_dir))
        async with open_resources(settings, metrics) as resources:
            app.state.resources = resources
            yield

    app = FastAPI(
        title="Ocean Shop",
        version=settings.version,
        lifespan=lifespan,
        # The interactive docs pages load their JS from a CDN, which this
        # service's networks cannot reach; /openapi.json stays available.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.faults = Faults(metrics)
    app.include_router(api.router)
    app.include_router(ops.router)
    app.include_router(admin.router)
    app.include_router(backoffice.router)
    app.include_router(feeds.router)
    app.include_router(pages.router)
    app.add_exception_handler(psycopg.OperationalError, database_unavailable)
    app.add_exception_handler(RedisError, redis_unavailable)
    app.add_exception_handler(405, method_not_allowed)
    # The last added runs first: trace id (every log line) -> HTTP metrics -> fault
    # injection, so an injected 500 is counted as a 5xx of its real route.
    app.add_middleware(ProductReadFastPath)  # innermost: see fastpath.py
    app.add_middleware(FaultInjectionMiddleware, faults=app.state.faults)
    app.add_middleware(HTTPMetricsMiddleware, metrics=metrics)
    tracing = settings.otlp_endpoint is not None
    app.add_middleware(TraceIdMiddleware, tracing=tracing, access_log=settings.access_log)
    if tracing:
        from ocean_shop import tracing as otel  # only now: the SDK costs memory

        otel.instrument(app, settings)
    return app


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Lost connections and pool timeouts are an outage, not a bug: answer 503.

    Not logged per request (an outage would flood the log); /readyz names the
    failing dependency and shop_http_requests_total counts the 5xx.
    """
    return JSONResponse({"detail": "database unavailable"}, status_code=503)


async def method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    """405 with every method of the path in Allow (RFC 9110), not only the first route's.

    Starlette answers from the first route whose path matches, and PUT and DELETE
    /api/carts/{cart_id}/items/{product_id} are two routes: Allow said only PUT.
    Off the admin listener, /admin paths answer 404 for every method: a 405 there
    would reveal that the route exists.
    """
    if request.url.path.startswith("/admin") and not admin.on_admin_listener(request):
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    allowed: set[str] = set()
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] is not Match.NONE:
            allowed |= getattr(route, "methods", None) or set()
    return JSONResponse(
        {"detail": "Method Not Allowed"},
        status_code=405,
        headers={"Allow": ", ".join(sorted(allowed))},
    )


async def redis_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Carts and inventory locks live in Redis: without it, those endpoints answer 503.

    Catalogue reads never get here: the cache falls back to PostgreSQL.
    """
    return JSONResponse({"detail": "Redis unavailable"}, status_code=503)
