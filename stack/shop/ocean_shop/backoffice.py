"""Operator endpoints on the admin listener: change a product, ship an order.

Both go through the same paths as the shop's own writes: a product change
bumps its version and replaces its cache entry; shipping publishes the change
to the order's WebSocket feeds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from ocean_shop.admin import require_admin
from ocean_shop.api import send
from ocean_shop.resources import Resources
from ocean_shop.responses import JSONResponse
from ocean_shop.schemas import INT8_MAX, StockUpdate

router = APIRouter(
    prefix="/admin",
    dependencies=[Depends(require_admin)],
    include_in_schema=False,
    default_response_class=JSONResponse,
)
Id = Annotated[int, Path(ge=1, le=INT8_MAX)]


@router.patch("/products/{id}")
async def update_product(request: Request, id: Id, change: StockUpdate) -> JSONResponse:
    resources: Resources = request.app.state.resources
    version = await resources.catalog.update_product(
        id, stock=change.stock, price_cents=change.price_cents
    )
    if version is None:
        raise HTTPException(status_code=404, detail=f"product {id} not found")
    await resources.cache.invalidate([(id, version)])
    body = await resources.cache.get_or_load(id, resources.catalog.product_document)
    return JSONResponse(body)


@router.post("/orders/{id}/ship")
async def ship_order(request: Request, id: Id) -> JSONResponse:
    resources: Resources = request.app.state.resources
    return send(await resources.orders.ship(id))
