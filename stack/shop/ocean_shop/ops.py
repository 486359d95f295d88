"""Operational endpoints: liveness, readiness, version and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from ocean_shop.resources import Resources
from ocean_shop.responses import JSONResponse
from ocean_shop.schemas import Health, Readiness, Version

# A dependency slower than this is reported as down: a load balancer should
# not keep routing to an instance whose backends cannot answer in time.
READY_TIMEOUT = 1.0

router = APIRouter(default_response_class=JSONResponse)


@router.get("/healthz", response_model=Health)
async def healthz() -> JSONResponse:
    # Liveness only: touching PostgreSQL or Redis here would get a healthy
    # process restarted for a dependency's outage.
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "a dependency is down or too slow"}},
)
async def readyz(request: Request) -> JSONResponse:
    resources: Resources = request.app.state.resources

    async def postgres() -> None:
        async with resources.pool.connection(timeout=READY_TIMEOUT) as conn:
            await conn.execute("SELECT 1")

    async def redis() -> None:
        await resources.redis.ping()

    postgres_state, redis_state = await asyncio.gather(probe(postgres), probe(redis))
    checks = {"postgres": postgres_state, "redis": redis_state}
    if request.app.state.faults.settings.fail_readiness:  # faults.py, set via the admin API
        checks["fault_injection"] = "readiness failure injected through PUT /admin/faults"
    failed = [name for name, state in checks.items() if state != "ok"]
    if failed:
        return JSONResponse(
            {"status": "unavailable", "failed": failed, "checks": checks}, status_code=503
        )
    return JSONResponse({"status": "ready", "checks": checks})


async def probe(check: Callable[[], Awaitable[None]]) -> str:
    """'ok', or a short reason the check failed or timed out."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await check()
    except TimeoutError:
        return f"timeout after {READY_TIMEOUT:g} s"
    except Exception as exc:  # any failure means "not ready", with the reason shown
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@router.get("/version", response_model=Version)
async def version(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    return JSONResponse({"version": settings.version, "color": settings.color})


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
