"""GET /api/products/{id} straight from the cache, without FastAPI's routing.

The product read is the hottest route (every nginx micro-cache refill lands on it)
and its work is one Redis GET. FastAPI's route matching, dependency solving and
validation cost about as much CPU again as the read itself, and on a busy machine
that CPU is what the refills queue for. This ASGI middleware answers exactly the
requests that are certainly valid product reads (GET, a plain decimal id within
bigint, no leading zero) with the same body, status and headers as the FastAPI
route in api.py; everything else, including every malformed id, goes on to FastAPI,
which answers (and validates) as before. It sits inside the trace-id, metrics and
fault-injection middlewares, so those see these requests like any other.
"""

from __future__ import annotations

import re

import orjson
import psycopg
from starlette.types import ASGIApp, Receive, Scope, Send

from ocean_shop.schemas import INT8_MAX

PRODUCT_PATH = re.compile(r"/api/products/([1-9][0-9]{0,18})")
# What HTTPMetricsMiddleware reads from scope["route"]: the route template.
ROUTE_TEMPLATE = "/api/products/{id}"
JSON = (b"content-type", b"application/json")


class _Route:
    path = ROUTE_TEMPLATE


class ProductReadFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = PRODUCT_PATH.fullmatch(scope["path"])
            if match is not None and (product_id := int(match[1])) <= INT8_MAX:
                scope["route"] = _Route
                await self._read(scope["app"].state.resources, product_id, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _read(resources, product_id: int, send: Send) -> None:
        try:
            body = await resources.cache.get_or_load(product_id, resources.catalog.product_document)
        except psycopg.OperationalError:  # as app.database_unavailable answers
            status, body = 503, b'{"detail":"database unavailable"}'
        else:
            status = 200
            if body is None:
                status = 404
                body = orjson.dumps({"detail": f"product {product_id} not found"})
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [JSON, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
