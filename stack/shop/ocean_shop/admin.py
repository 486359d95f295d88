"""The admin API: operator routes, reachable only on the admin listener with its token.

`python -m ocean_shop` serves the one app on two listeners when SHOP_ADMIN_TOKEN is
set: the public one (SHOP_HOST:SHOP_PORT) and the admin one, always on
127.0.0.1:SHOP_ADMIN_PORT. `require_admin` admits a request only when BOTH hold:

1. it arrived on the admin listener (the ASGI scope's ``server`` is
   127.0.0.1:SHOP_ADMIN_PORT); on any other listener it answers 404 exactly as an
   unknown path does, so the public side does not even reveal that the route exists;
2. it carries ``Authorization: Bearer <SHOP_ADMIN_TOKEN>`` (compared in constant
   time); else 401.

Without SHOP_ADMIN_TOKEN every admin route is a 404. To add admin routes elsewhere::

    from ocean_shop.admin import require_admin

    router = APIRouter(
        prefix="/admin", dependencies=[Depends(require_admin)], include_in_schema=False
    )

(or ``Depends(require_admin)`` on a single route), and include the router in app.py.

The routes here drive fault injection (faults.py). Every change is logged as one
WARNING line naming the client and the settings before and after.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from ocean_shop.config import Settings
from ocean_shop.faults import MAX_LATENCY_MS, Faults, FaultSettings
from ocean_shop.responses import JSONResponse

log = logging.getLogger(__name__)

ADMIN_HOST = "127.0.0.1"


def on_admin_listener(request: Request) -> bool:
    """Whether the request arrived on the admin listener (and the admin API is on)."""
    settings: Settings = request.app.state.settings
    server = request.scope.get("server")
    return (
        settings.admin_token is not None
        and server is not None
        and server[1] == settings.admin_port
        and server[0] == ADMIN_HOST
    )


def has_admin_token(request: Request) -> bool:
    """Whether the request carries ``Authorization: Bearer <SHOP_ADMIN_TOKEN>``."""
    settings: Settings = request.app.state.settings
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (
        settings.admin_token is not None
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), settings.admin_token.encode())
    )


def is_admin(request: Request) -> bool:
    """On the admin listener and with its token: what admin routes require."""
    return on_admin_listener(request) and has_admin_token(request)


async def require_admin(request: Request) -> None:
    """FastAPI dependency: 404 off the admin listener, 401 without the admin token."""
    if not on_admin_listener(request):
        raise HTTPException(status_code=404, detail="Not Found")
    if not has_admin_token(request):
        raise HTTPException(
            status_code=401,
            detail="admin token required",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(
    prefix="/admin",
    dependencies=[Depends(require_admin)],
    include_in_schema=False,
    default_response_class=JSONResponse,
)


class FaultSettingsBody(BaseModel):
    """PUT /admin/faults replaces every setting: one left out is turned off."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key must not silently reset

    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    latency_ms: int = Field(0, ge=0, le=MAX_LATENCY_MS)
    fail_readiness: bool = False


def faults_of(request: Request) -> Faults:
    return request.app.state.faults


@router.get("/faults")
async def get_faults(request: Request) -> JSONResponse:
    return JSONResponse(faults_of(request).settings.as_dict())


@router.put("/faults")
async def put_faults(request: Request, body: FaultSettingsBody) -> JSONResponse:
    settings = FaultSettings(
        error_rate=body.error_rate, latency_ms=body.latency_ms, fail_readiness=body.fail_readiness
    )
    previous = faults_of(request).apply(settings)
    log_change(request, "set", previous, settings)
    return JSONResponse(settings.as_dict())


@router.delete("/faults")
async def delete_faults(request: Request) -> JSONResponse:
    faults = faults_of(request)
    previous = faults.reset()
    log_change(request, "reset", previous, faults.settings)
    return JSONResponse(faults.settings.as_dict())


def log_change(request: Request, action: str, before: FaultSettings, after: FaultSettings) -> None:
    client = f"{request.client.host}:{request.client.port}" if request.client else "unknown"
    old, new = before.as_dict(), after.as_dict()
    changes = [f"{key} {old[key]} -> {new[key]}" for key in new if old[key] != new[key]]
    log.warning(
        "fault injection %s by %s: %s",
        action,
        client,
        ", ".join(changes) or "no change",
        extra={
            "fields": {"event": "fault_injection", "client": client, "before": old, "after": new}
        },
    )
