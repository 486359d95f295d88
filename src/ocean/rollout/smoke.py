"""Smoke requests straight to one color, before it takes any traffic.

A catalogue read, a search and a cart round trip (add a line, read it back, remove
it), plus /version to prove the instance runs the build that was asked for. Each
failure names the request and what came back.
"""

from __future__ import annotations

import time
import uuid

import httpx

from ocean.errors import OceanError


def smoke(base_url: str, color: str, label: str, timeout: float = 5.0) -> dict[str, float]:
    """Run the smoke requests; return seconds per request name. OceanError on a failure."""
    timings: dict[str, float] = {}
    with httpx.Client(base_url=base_url, timeout=timeout) as client:

        def call(name: str, method: str, path: str, expect: int = 200, **kwargs) -> httpx.Response:
            started = time.monotonic()
            try:
                response = client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise OceanError(f"smoke {name}: {method} {path} failed: {exc}") from None
            timings[name] = round(time.monotonic() - started, 4)
            if response.status_code != expect:
                raise OceanError(
                    f"smoke {name}: {method} {path} answered {response.status_code}, "
                    f"not {expect}: {response.text[:200]}"
                )
            return response

        version = call("version", "GET", "/version").json()
        if version.get("color") != color or version.get("version") != label:
            raise OceanError(f"smoke version: {base_url} runs {version}, not {color} {label}")
        call("categories", "GET", "/api/categories")
        products = call("products", "GET", "/api/products", params={"limit": 5}).json()
        call("search", "GET", "/api/search", params={"q": "ocean", "limit": 5})
        items = products.get("items") or []
        if items:  # an empty catalogue has nothing to put in a cart
            cart = f"smoke-{uuid.uuid4().hex}"
            product = items[0]["id"]
            path = f"/api/carts/{cart}/items/{product}"
            call("cart add", "PUT", path, json={"quantity": 1})
            lines = call("cart read", "GET", f"/api/carts/{cart}").json().get("lines", [])
            if [line.get("product_id") for line in lines] != [product]:
                raise OceanError(f"smoke cart read: {cart} holds {lines}, not product {product}")
            call("cart remove", "DELETE", path)
    return timings
