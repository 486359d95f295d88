"""The storefront: server-rendered HTML pages over the same domain code as the API.

home, category listing, product, search, cart, checkout and order status. Forms are
plain POSTs answered with a redirect (303), so every page works without JavaScript;
the order page follows the order's WebSocket feed when JavaScript runs, and has a
refresh link otherwise. The cart id is held in a cookie. Catalogue pages carry
nothing per shopper, so browsers may keep them briefly (CATALOGUE_CACHE); cart,
checkout and order pages are never stored. Not in /openapi.json: that documents
the JSON API only.
"""

from __future__ import annotations

import math
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ocean_shop.assets import IMMUTABLE, Assets
from ocean_shop.cart import CartFull, UnknownProduct
from ocean_shop.payments import PAYMENT_METHODS
from ocean_shop.resources import Resources
from ocean_shop.schemas import CART_ID_PATTERN, INT8_MAX, MAX_QUANTITY

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["money"] = lambda cents: f"${cents / 100:,.2f}"
ASSETS = Assets()
templates.env.globals["asset"] = ASSETS.url

CART_COOKIE = "cart"
PAGE_SIZE = 24
FEATURED = 12
MAX_PAGE = 10_000
CART_ID = re.compile(CART_ID_PATTERN)
# Catalogue pages are the same for every shopper: a browser may reuse one for a few
# seconds (prices and stock shown may be that old; checkout re-checks both).
CATALOGUE_CACHE = "public, max-age=10"
PRIVATE = "no-store"


def resources_of(request: Request) -> Resources:
    return request.app.state.resources


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    cache: str = CATALOGUE_CACHE,
) -> HTMLResponse:
    context = {"version": request.app.state.settings.version, **context}
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers["Cache-Control"] = cache
    return response


def message(request: Request, status: int, heading: str, text: str) -> HTMLResponse:
    return render(
        request, "message.html", {"heading": heading, "message": text}, status=status, cache=PRIVATE
    )


def page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return min(int(raw), MAX_PAGE) if raw.isdigit() and int(raw) >= 1 else 1


def pager(base: str, params: dict[str, str], page: int, total: int) -> dict[str, Any] | None:
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if pages == 1:
        return None

    def link(number: int) -> str:
        return f"{base}?{urlencode({**params, 'page': number})}"

    return {
        "page": page,
        "pages": pages,
        "previous": link(page - 1) if page > 1 else None,
        "next": link(page + 1) if page < pages else None,
    }


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    resources = resources_of(request)
    items, _ = await resources.catalog.page(category=None, limit=FEATURED, offset=0)
    categories = orjson.loads(await resources.catalog.categories())
    return render(request, "home.html", {"products": orjson.loads(items), "categories": categories})


@router.get("/categories/{name}", response_class=HTMLResponse)
async def category(request: Request, name: str) -> HTMLResponse:
    if "\x00" in name or len(name) > 200:
        return message(request, 404, "Not found", "No such category.")
    page = page_number(request)
    items, total = await resources_of(request).catalog.page(
        category=name, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    if total == 0:
        return message(request, 404, "Not found", f"No category named {name!r}.")
    return render(
        request,
        "listing.html",
        {
            "heading": name,
            "total": total,
            "products": orjson.loads(items),
            "pager": pager(request.url.path, {}, page, total),
        },
    )


@router.get("/products/{product_id}", response_class=HTMLResponse)
async def product(request: Request, product_id: str) -> HTMLResponse:
    document = await product_document(resources_of(request), product_id)
    if document is None:
        return message(request, 404, "Not found", "No such product.")
    return render(request, "product.html", {"product": document})


async def product_document(resources: Resources, product_id: str | int) -> dict | None:
    if isinstance(product_id, str):
        if not product_id.isdigit() or not 1 <= int(product_id) <= INT8_MAX:
            return None
        product_id = int(product_id)
    body = await resources.cache.get_or_load(product_id, resources.catalog.product_document)
    return None if body is None else orjson.loads(body)


@router.get("/search", response_class=HTMLResponse)
async def search(request: Request) -> HTMLResponse:
    query = request.query_params.get("q", "").strip()[:200].replace("\x00", "")
    context: dict[str, Any] = {"query": query, "heading": "Search", "total": 0, "products": []}
    if query:
        page = page_number(request)
        items, total = await resources_of(request).catalog.search(
            query, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
        context |= {
            "heading": f"Results for “{query}”",
            "total": total,
            "products": orjson.loads(items),
            "pager": pager("/search", {"q": query}, page, total),
        }
    return render(request, "listing.html", context)


# -- cart, checkout, order --------------------------------------------------------


def cart_id_of(request: Request) -> str | None:
    cart_id = request.cookies.get(CART_COOKIE)
    return cart_id if cart_id and CART_ID.fullmatch(cart_id) else None


async def form_of(request: Request) -> dict[str, str]:
    """An urlencoded form body (the only kind these pages send), first value per field."""
    body = (await request.body())[:65_536].decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


def number(form: dict[str, str], field: str, low: int, high: int) -> int | None:
    raw = form.get(field, "").strip()
    return int(raw) if raw.isdigit() and low <= int(raw) <= high else None


async def cart_contents(resources: Resources, cart_id: str | None) -> tuple[list[dict], int]:
    if cart_id is None:
        return [], 0
    view = await resources.carts.view(cart_id)
    lines = []
    for product_id, quantity in view.lines.items():
        document = await product_document(resources, product_id)
        if document is not None:
            lines.append({"product": document, "quantity": quantity})
    total = sum(line["product"]["price_cents"] * line["quantity"] for line in lines)
    return lines, total


@router.get("/cart", response_class=HTMLResponse)
async def cart(request: Request) -> HTMLResponse:
    lines, total = await cart_contents(resources_of(request), cart_id_of(request))
    return render(request, "cart.html", {"lines": lines, "total": total}, cache=PRIVATE)


@router.post("/cart/items")
async def set_cart_line(request: Request) -> Response:
    """Add (or, with quantity 0, remove) a product; then to the cart page (303)."""
    form = await form_of(request)
    product_id = number(form, "product_id", 1, INT8_MAX)
    quantity = number(form, "quantity", 0, MAX_QUANTITY)
    if product_id is None or quantity is None:
        return message(request, 422, "Cannot update the cart", "Invalid product or quantity.")
    resources = resources_of(request)
    cart_id = cart_id_of(request) or uuid.uuid4().hex

    async def known(product_id: int) -> bool:
        return await resources.cache.exists(product_id, resources.catalog.product_document)

    try:
        await resources.carts.set_quantity(cart_id, product_id, quantity, known)
    except UnknownProduct:
        return message(request, 404, "Not found", "No such product.")
    except CartFull as exc:
        return message(request, 409, "Cart full", str(exc))
    response = RedirectResponse("/cart", status_code=303)
    response.set_cookie(
        CART_COOKIE,
        cart_id,
        max_age=request.app.state.settings.cart_ttl,
        httponly=True,
        samesite="lax",
    )
    return response


def checkout_page(
    request: Request,
    lines: list[dict],
    total: int,
    *,
    status: int = 200,
    error: str | None = None,
    customer_id: int = 1,
    payment_method: str = "card",
) -> HTMLResponse:
    context = {
        "count": sum(line["quantity"] for line in lines),
        "total": total,
        "error": error,
        # A fresh key per rendered form: a resubmitted form (double click, reload)
        # replays the first attempt instead of charging twice.
        "idempotency_key": uuid.uuid4().hex,
        "customer_id": customer_id,
        "payment_method": payment_method,
        "payment_methods": PAYMENT_METHODS,
    }
    return render(request, "checkout.html", context, status=status, cache=PRIVATE)


@router.get("/checkout", response_class=HTMLResponse)
async def checkout_form(request: Request) -> Response:
    lines, total = await cart_contents(resources_of(request), cart_id_of(request))
    if not lines:
        return RedirectResponse("/cart", status_code=303)
    return checkout_page(request, lines, total)


@router.post("/checkout")
async def checkout(request: Request) -> Response:
    """Place the order (Idempotency-Key from the form's hidden field), then its page (303)."""
    form = await form_of(request)
    resources = resources_of(request)
    cart_id = cart_id_of(request)
    key = form.get("idempotency_key", "")
    customer_id = number(form, "customer_id", 1, 2**53 - 1)
    method = form.get("payment_method", "card")
    if cart_id is None:
        return RedirectResponse("/cart", status_code=303)
    if customer_id is None or method not in PAYMENT_METHODS or not re.fullmatch(r"\w{8,64}", key):
        lines, total = await cart_contents(resources, cart_id)
        return checkout_page(request, lines, total, status=422, error="Please check the form.")
    outcome = await resources.orders.checkout(
        cart_id=cart_id, customer_id=customer_id, payment_method=method, idempotency_key=key
    )
    body = orjson.loads(outcome.body)
    if "order" in body:  # paid (201) or payment failed (402): the order page tells
        return RedirectResponse(f"/orders/{body['order']['id']}", status_code=303)
    lines, total = await cart_contents(resources, cart_id)
    if not lines:
        return RedirectResponse("/cart", status_code=303)
    return checkout_page(
        request,
        lines,
        total,
        status=outcome.status,
        error=body.get("detail", "The order could not be placed."),
        customer_id=customer_id,
        payment_method=method,
    )


@router.get("/orders/{order_id}", response_class=HTMLResponse)
async def order(request: Request, order_id: str) -> HTMLResponse:
    document = None
    if order_id.isdigit() and 1 <= int(order_id) <= INT8_MAX:
        document = await resources_of(request).orders.document(int(order_id))
    if document is None:
        return message(request, 404, "Not found", "No such order.")
    return render(request, "order.html", {"order": orjson.loads(document)}, cache=PRIVATE)


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """A fingerprinted asset (nginx serves these from disk; this is its fallback)."""
    asset = ASSETS.files.get(name)
    if asset is None:
        return Response(b"not found\n", status_code=404, media_type="text/plain")
    return Response(
        asset.content, media_type=asset.media_type, headers={"Cache-Control": IMMUTABLE}
    )
