"""Public product endpoints under /api."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request

from ocean_shop.resources import Resources
from ocean_shop.responses import JSONResponse

# Ids and offsets beyond bigint would reach PostgreSQL as numeric and fail
# there; rejecting them here turns a 500 into a 422.
INT8_MAX = 2**63 - 1

router = APIRouter(prefix="/api", default_response_class=JSONResponse)


@router.get("/products")
async def list_products(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100, description="page size, 1..100")] = 20,
    offset: Annotated[int, Query(ge=0, le=INT8_MAX, description="items to skip")] = 0,
    category: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> JSONResponse:
    resources: Resources = request.app.state.resources
    items, total = await resources.catalog.list_products(
        category=category, limit=limit, offset=offset
    )
    return JSONResponse({"items": items, "total": total, "limit": limit, "offset": offset})


@router.get("/products/{id}")
async def get_product(
    request: Request, id: Annotated[int, Path(ge=1, le=INT8_MAX)]
) -> JSONResponse:
    resources: Resources = request.app.state.resources
    body = await resources.cache.get_or_load(id, resources.catalog.product_json)
    if body is None:
        raise HTTPException(status_code=404, detail=f"product {id} not found")
    return JSONResponse(body)
