"""The storefront on a stack of its own: static assets (long-lived cache, gzip, served
by nginx from disk), the pages without JavaScript (plain GET/POST through nginx buys a
product), and a real browser (k6 browser + Debian's Chromium) buying one and seeing
the order paid, its live feed connected."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ocean import textfile
from ocean.procedures.seed import seed
from ocean.runtime.browser import CHROMIUM
from ocean.runtime.local import LocalRuntime
from tests.conftest import own_stack

pytestmark = pytest.mark.integration

ASSET = re.compile(r"(/static/shop\.[0-9a-f]{12}\.css)")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with own_stack(tmp_path_factory, "storefront", wait_targets=False) as runtime:
        list(seed(runtime, products=50, customers=10, orders=10))
        yield runtime


@pytest.fixture(scope="module")
def front(runtime: LocalRuntime) -> Iterator[httpx.Client]:
    with runtime.http("nginx", timeout=10) as client:
        yield client


def stylesheet(front: httpx.Client) -> str:
    home = front.get("/")
    assert home.status_code == 200
    match = ASSET.search(home.text)
    assert match, "the home page links no fingerprinted stylesheet"
    return match[1]


def test_static_assets_are_cached_long_and_compressed(front: httpx.Client, runtime: LocalRuntime):
    url = stylesheet(front)
    # Published by the shop at startup, served by nginx from disk.
    on_disk = runtime.settings.state_dir / "nginx" / "www" / url.lstrip("/")
    assert on_disk.is_file()
    response = front.get(url, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"].startswith("text/css")
    cache = response.headers["cache-control"]
    max_age = int(re.search(r"max-age=(\d+)", cache)[1])
    assert max_age >= 86_400 and "immutable" in cache
    assert response.content == on_disk.read_bytes()  # httpx decoded the gzip
    # A name no version published: nginx asks the shop, which does not know it either.
    assert front.get("/static/shop.000000000000.css").status_code == 404


def test_catalogue_pages_cache_briefly_and_private_pages_never(front: httpx.Client):
    home = front.get("/", headers={"Accept-Encoding": "gzip"})
    assert home.headers["cache-control"] == "public, max-age=10"
    assert home.headers["content-encoding"] == "gzip"
    assert front.get("/cart").headers["cache-control"] == "no-store"
    assert front.get("/products/999999999").status_code == 404
    assert front.get("/search", params={"q": "mask"}).status_code == 200
    assert "/" not in front.get("/openapi.json").json()["paths"]


def test_buying_without_javascript(runtime: LocalRuntime, front: httpx.Client):
    """GET and form POSTs only, as a browser with JavaScript off would."""
    home = front.get("/")
    category = re.search(r'href="(/categories/[^"]+)"', home.text)[1]
    listing = front.get(category)
    assert listing.status_code == 200
    product = re.search(r'href="(/products/\d+)"', listing.text)[1]
    product_id = product.rsplit("/", 1)[1]
    assert 'id="add-to-cart"' in front.get(product).text
    with runtime.http("nginx", timeout=10) as shopper:
        added = shopper.post("/cart/items", data={"product_id": product_id, "quantity": "1"})
        assert added.status_code == 303 and added.headers["location"] == "/cart"
        assert "cart" in shopper.cookies
        cart = shopper.get("/cart")
        assert f'href="/products/{product_id}"' in cart.text
        form = shopper.get("/checkout")
        key = re.search(r'name="idempotency_key" value="(\w+)"', form.text)[1]
        data = {"idempotency_key": key, "customer_id": "1", "payment_method": "card"}
        placed = shopper.post("/checkout", data=data)
        assert placed.status_code == 303, placed.text
        order_url = placed.headers["location"]
        assert re.fullmatch(r"/orders/\d+", order_url)
        # The same form sent again (a double submit) replays: the same order, one charge.
        again = shopper.post("/checkout", data=data)
        assert again.status_code == 303 and again.headers["location"] == order_url
        order = shopper.get(order_url)
        assert order.headers["cache-control"] == "no-store"
        assert 'data-status="paid"' in order.text
        # Without JavaScript the live status is a refresh link to the same page.
        assert f'<a id="refresh" href="{order_url}">Refresh</a>' in order.text
        assert "Your cart is empty" in shopper.get("/cart").text


def test_failed_payment_shows_the_failed_order(front: httpx.Client):
    cart = uuid.uuid4().hex
    front.cookies.set("cart", cart)
    try:
        assert (
            front.post("/cart/items", data={"product_id": "1", "quantity": "1"}).status_code == 303
        )
        data = {
            "idempotency_key": uuid.uuid4().hex,
            "customer_id": "1",
            "payment_method": "card_declined",
        }
        placed = front.post("/checkout", data=data)
        assert placed.status_code == 303
        assert 'data-status="failed"' in front.get(placed.headers["location"]).text
    finally:
        front.cookies.clear()


def test_browser_buys_a_product_and_sees_it_paid(runtime: LocalRuntime):
    # Bringing the stack up installed Debian's chromium (as root): no skip, CI runs this.
    assert Path(CHROMIUM).exists()
    run = runtime.run_browser(runtime.url("nginx"), iterations=1, max_duration="60s", timeout=120)
    assert run.ok, run.output
    assert run.summary["journeys"]["passes"] == 1, run.output
    figures = run.p95_ms()
    assert set(figures) == {"home", "category", "product", "cart", "checkout", "order"}
    for page, values in figures.items():
        assert 0 < values["load"] < 2000, (page, values)
        assert 0 < values["lcp"] < 2500, (page, values)
    # The console's SLO panel reads the last run from node exporter's textfile dir.
    path = textfile.record_page_load(runtime.settings, figures)
    assert 'ocean_page_load_p95_seconds{metric="lcp",page="home"}' in path.read_text()
