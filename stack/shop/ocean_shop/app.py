"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request

from ocean_shop import api, ops
from ocean_shop.config import Settings
from ocean_shop.metrics import ShopMetrics
from ocean_shop.middleware import HTTPMetricsMiddleware
from ocean_shop.resources import open_resources
from ocean_shop.responses import JSONResponse


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    metrics = ShopMetrics(version=settings.version, color=settings.color)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
    app.include_router(api.router)
    app.include_router(ops.router)
    app.add_exception_handler(psycopg.OperationalError, database_unavailable)
    app.add_middleware(HTTPMetricsMiddleware, metrics=metrics)
    return app


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Lost connections and pool timeouts are an outage, not a bug: answer 503.

    Not logged per request (an outage would flood the log); /readyz names the
    failing dependency and shop_http_requests_total counts the 5xx.
    """
    return JSONResponse({"detail": "database unavailable"}, status_code=503)
