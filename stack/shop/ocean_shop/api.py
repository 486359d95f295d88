"""Public endpoints under /api: catalogue, carts, checkout and orders.

Handlers return ready JSON bytes (see schemas.py for the documented shapes).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request
from pydantic import AfterValidator

from ocean_shop.admin import is_admin
from ocean_shop.cart import CartFull, CartView, UnknownProduct
from ocean_shop.orders import Outcome
from ocean_shop.resources import Resources
from ocean_shop.responses import JSONResponse
from ocean_shop.schemas import (
    CART_ID_PATTERN,
    INT8_MAX,
    Cart,
    Category,
    CheckoutRequest,
    OrderEnvelope,
    OrderPage,
    OutOfStock,
    Problem,
    Product,
    ProductPage,
    QuantityUpdate,
    ValidationProblem,
)

router = APIRouter(
    prefix="/api",
    default_response_class=JSONResponse,
    # app.py answers a lost PostgreSQL or Redis with this, on any route that uses one.
    responses={503: {"model": Problem, "description": "PostgreSQL or Redis unavailable"}},
)

# Ids and offsets beyond bigint would reach PostgreSQL as numeric and fail
# there; rejecting them here turns a 500 into a 422.
ProductId = Annotated[int, Path(ge=1, le=INT8_MAX)]
Limit = Annotated[int, Query(ge=1, le=100, description="page size, 1..100")]
Offset = Annotated[int, Query(ge=0, le=INT8_MAX, description="items to skip")]
CartId = Annotated[str, Path(pattern=CART_ID_PATTERN, description="client-chosen, e.g. a UUID")]
NOT_FOUND = {404: {"model": Problem}}
# An operator's rehearsal of a checkout (Orders.dry_run), for the deploy's warm-up:
# admin listener and token only, and not in /openapi.json (read from the headers).
DRY_RUN_HEADER = "ocean-dry-run"
# FastAPI's answer to a body that is not even text (not UTF-8); bad JSON is a 422.
UNREADABLE_BODY = {400: {"model": Problem, "description": "the body is not UTF-8 text"}}


def reject_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# PostgreSQL text cannot hold NUL: a 422 naming the parameter, not a driver error (500).
NoNul = AfterValidator(reject_nul)
NO_NUL_PATTERN = {"pattern": r"^[^\x00]*$"}  # documents it in /openapi.json


def resources_of(request: Request) -> Resources:
    return request.app.state.resources


def send(outcome: Outcome) -> JSONResponse:
    return JSONResponse(outcome.body, status_code=outcome.status, headers=outcome.headers)


def page(items: bytes, total: int, limit: int, offset: int) -> JSONResponse:
    return JSONResponse(
        b'{"items":%s,"total":%d,"limit":%d,"offset":%d}' % (items, total, limit, offset)
    )


@router.get("/categories", response_model=list[Category])
async def list_categories(request: Request) -> JSONResponse:
    return JSONResponse(await resources_of(request).catalog.categories())


@router.get("/products", response_model=ProductPage)
async def list_products(
    request: Request,
    limit: Limit = 20,
    offset: Offset = 0,
    category: Annotated[
        str | None, Query(min_length=1, max_length=200, json_schema_extra=NO_NUL_PATTERN), NoNul
    ] = None,
) -> JSONResponse:
    items, total = await resources_of(request).catalog.page(
        category=category, limit=limit, offset=offset
    )
    return page(items, total, limit, offset)


@router.get("/products/{id}", response_model=Product, responses=NOT_FOUND)
async def get_product(request: Request, id: ProductId) -> JSONResponse:
    resources = resources_of(request)
    body = await resources.cache.get_or_load(id, resources.catalog.product_document)
    if body is None:
        raise HTTPException(status_code=404, detail=f"product {id} not found")
    return JSONResponse(body)


@router.get("/search", response_model=ProductPage)
async def search_products(
    request: Request,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=200,
            description="web-search syntax",
            json_schema_extra=NO_NUL_PATTERN,
        ),
        NoNul,
    ],
    limit: Limit = 20,
    offset: Offset = 0,
) -> JSONResponse:
    items, total = await resources_of(request).catalog.search(q, limit=limit, offset=offset)
    return page(items, total, limit, offset)


def cart_response(cart_id: str, cart: CartView) -> JSONResponse:
    return JSONResponse(
        {
            "cart_id": cart_id,
            "lines": [{"product_id": p, "quantity": q} for p, q in cart.lines.items()],
            "expires_in": cart.expires_in,
        }
    )


@router.post("/carts", status_code=201, response_model=Cart)
async def create_cart() -> JSONResponse:
    """A fresh cart id. Clients may also choose their own (any id matching the pattern)."""
    cart_id = uuid.uuid4().hex
    return JSONResponse({"cart_id": cart_id, "lines": [], "expires_in": None}, status_code=201)


@router.get("/carts/{cart_id}", response_model=Cart)
async def get_cart(request: Request, cart_id: CartId) -> JSONResponse:
    return cart_response(cart_id, await resources_of(request).carts.view(cart_id))


@router.put(
    "/carts/{cart_id}/items/{product_id}",
    response_model=Cart,
    responses={**UNREADABLE_BODY, **NOT_FOUND, 409: {"model": Problem}},
)
async def set_cart_line(
    request: Request, cart_id: CartId, product_id: ProductId, update: QuantityUpdate
) -> JSONResponse:
    """Set the quantity of a product in the cart (0 removes it). Stock is checked at checkout."""
    resources = resources_of(request)

    async def known(product_id: int) -> bool:
        return await resources.cache.exists(product_id, resources.catalog.product_document)

    try:
        cart = await resources.carts.set_quantity(cart_id, product_id, update.quantity, known)
    except UnknownProduct as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except CartFull as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    return cart_response(cart_id, cart)


@router.delete("/carts/{cart_id}/items/{product_id}", response_model=Cart)
async def remove_cart_line(
    request: Request, cart_id: CartId, product_id: ProductId
) -> JSONResponse:
    cart = await resources_of(request).carts.set_quantity(cart_id, product_id, 0)
    return cart_response(cart_id, cart)


@router.post(
    "/checkout",
    status_code=201,
    response_model=OrderEnvelope,
    responses={
        **UNREADABLE_BODY,
        402: {"model": OrderEnvelope, "description": "payment failed; the order is 'failed'"},
        404: {"model": Problem, "description": "unknown customer"},
        409: {
            "model": OutOfStock,
            "description": "not enough stock, empty cart, or the same key still in progress",
        },
        422: {
            "model": ValidationProblem,
            "description": "invalid request, or the key reused for a different request",
        },
        503: {
            "model": Problem,
            "description": "products locked too long by other checkouts, "
            "or PostgreSQL or Redis unavailable",
        },
    },
)
async def checkout(
    request: Request,
    body: CheckoutRequest,
    idempotency_key: Annotated[
        str,
        Header(
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="unique per checkout attempt; a retry with the same key and body "
            "returns the first attempt's outcome and never charges twice",
        ),
    ],
) -> JSONResponse:
    if DRY_RUN_HEADER in request.headers:
        if not is_admin(request):
            raise HTTPException(
                status_code=403, detail="Ocean-Dry-Run needs the admin listener and its token"
            )
        return send(await resources_of(request).orders.dry_run(body.cart_id))
    outcome = await resources_of(request).orders.checkout(
        cart_id=body.cart_id,
        customer_id=body.customer_id,
        payment_method=body.payment_method,
        idempotency_key=idempotency_key,
    )
    response = send(outcome)
    if outcome.status == 503:
        response.headers["Retry-After"] = "1"
    return response


@router.get("/orders/{id}", response_model=OrderEnvelope, responses=NOT_FOUND)
async def get_order(request: Request, id: Annotated[int, Path(ge=1, le=INT8_MAX)]) -> JSONResponse:
    document = await resources_of(request).orders.document(id)
    if document is None:
        raise HTTPException(status_code=404, detail=f"order {id} not found")
    return JSONResponse(b'{"order":' + document.encode() + b"}")


@router.get("/customers/{id}/orders", response_model=OrderPage, responses=NOT_FOUND)
async def customer_orders(
    request: Request,
    id: Annotated[int, Path(ge=1, le=INT8_MAX)],
    limit: Limit = 20,
    offset: Offset = 0,
) -> JSONResponse:
    """The customer's orders, newest first."""
    return send(await resources_of(request).orders.history(id, limit=limit, offset=offset))
