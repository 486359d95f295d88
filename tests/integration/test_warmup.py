"""The deploy's warm-up against a real shop process (with its admin listener), and the
shop's dry-run checkout it relies on: every route class is warmed, no order, product,
customer, cart, lock or stock change is left behind, no order is counted, and the
rounds stop once the latency settles.

Behaviour, never speed: the machine may be busy, so settling is asserted with a rule
any latency satisfies (a huge floor) or as "settled or said why not".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from redis import Redis

from ocean.errors import OceanError
from ocean.rollout import warmup
from tests.integration.shop_support import ShopProcess, query, samples, shop_processes, value

pytestmark = pytest.mark.integration

# Everything a checkout could leave behind in PostgreSQL.
FOOTPRINT = """
SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_items),
       (SELECT count(*) FROM order_events), (SELECT count(*) FROM payments),
       (SELECT count(*) FROM customers), (SELECT count(*) FROM categories),
       (SELECT count(*) FROM products), (SELECT sum(stock) FROM products),
       (SELECT sum(version) FROM products)
"""


@pytest.fixture
def green(schema_url: str, redis_url: str, redis_client: Redis) -> Iterator[ShopProcess]:
    with shop_processes(
        schema_url,
        redis_url,
        colors=("green",),
        SHOP_SEED_PRODUCTS="60",
        SHOP_SEED_CUSTOMERS="5",
        SHOP_PAYMENT_LATENCY_MS="0",
    ) as (shop,):
        yield shop


def admin_of(shop: ShopProcess) -> warmup.Admin:
    return warmup.Admin(shop.admin_url, shop.admin_token)


def leftovers(redis_client: Redis) -> list[bytes]:
    """Carts and inventory locks in the shop's Redis database."""
    return [*redis_client.scan_iter("shop:cart:*"), *redis_client.scan_iter("shop:lock:*")]


def requests_by_route(metrics: str) -> dict[tuple[str, str, str], float]:
    return {
        (labels["route"], labels["method"], labels["status"]): count
        for labels, count in samples(metrics, "shop_http_requests_total")
    }


def test_warm_up_covers_every_route_class_and_leaves_nothing_behind(
    green: ShopProcess, schema_url: str, redis_client: Redis
):
    before = query(schema_url, FOOTPRINT)
    # A floor no latency misses: the rounds stop at the first settled one (round 2).
    done = warmup.warm_up(green.url, 600, 10, admin=admin_of(green), floor_s=3600)
    assert done.settled and done.stopped == "settled"
    assert len(done.rounds) == warmup.MIN_ROUNDS
    assert done.requests == 2 + sum(r.requests for r in done.rounds)
    assert set(done.classes) == set(warmup.ROUTE_CLASSES)
    assert all(done.classes[name] > 0 for name in warmup.ROUTE_CLASSES), done.classes
    assert "settled at p90" in done.summary() and "checkout " in done.summary()

    metrics = httpx.get(f"{green.url}/metrics").text
    served = requests_by_route(metrics)
    for route, method in [
        ("/api/products/{id}", "GET"),
        ("/api/products", "GET"),
        ("/api/categories", "GET"),
        ("/api/search", "GET"),
        ("/api/carts/{cart_id}/items/{product_id}", "PUT"),
        ("/api/carts/{cart_id}", "GET"),
        ("/api/carts/{cart_id}/items/{product_id}", "DELETE"),
        ("/api/checkout", "POST"),
        ("/", "GET"),
        ("/products/{product_id}", "GET"),
        ("/categories/{name}", "GET"),
        ("/search", "GET"),
        ("/cart", "GET"),
    ]:
        assert served.get((route, method, "2xx"), 0) > 0, (route, method, served)
    assert not [key for key in served if key[2] != "2xx"], served  # nothing but 2xx
    api = sum(n for (route, _, _), n in served.items() if route.startswith("/api/"))
    assert api == done.api_requests  # what the deploy waits for Prometheus to count

    # Checkouts ran as dry runs: none counted as an order, a payment or a checkout.
    assert value(metrics, "shop_checkout_dry_runs_total") == done.classes["checkout"]
    assert value(metrics, "shop_orders_created_total") == 0
    assert sum(n for labels, n in samples(metrics, "shop_checkout_duration_seconds_count")) == 0
    assert sum(n for labels, n in samples(metrics, "shop_payment_failures_total")) == 0

    assert query(schema_url, FOOTPRINT) == before  # no order, customer, product, stock
    assert leftovers(redis_client) == []  # no cart, no lock


def test_warm_up_stops_at_its_limits_and_says_it_did_not_settle(green: ShopProcess):
    # No time at all: one round, then the time limit; reported, not raised.
    done = warmup.warm_up(green.url, 600, 10, admin=admin_of(green), seconds=0)
    assert not done.settled and done.stopped == "time limit"
    assert len(done.rounds) == 1
    assert done.summary().startswith("NOT settled (time limit)")
    # A rule nothing satisfies: the request budget ends it (2 reads + 2 rounds of 9).
    done = warmup.warm_up(green.url, 20, 4, admin=admin_of(green), tolerance=-1, floor_s=-1)
    assert not done.settled and done.stopped == "request budget"
    assert [r.requests for r in done.rounds] == [9, 9] and done.requests == 20


def test_warm_up_fails_in_one_line_on_an_error(green: ShopProcess, redis_client: Redis):
    fault = httpx.put(
        f"{green.admin_url}/admin/faults", json={"error_rate": 1.0}, headers=green.admin_headers
    )
    assert fault.status_code == 200
    with pytest.raises(OceanError, match=r"^warm-up: GET /api/products\?limit=50 answered 500"):
        warmup.warm_up(green.url, 100, 10, admin=admin_of(green))
    # A failing checkout alone (the admin listener) fails it too.
    httpx.delete(f"{green.admin_url}/admin/faults", headers=green.admin_headers)
    wrong = warmup.Admin(green.admin_url, "not-the-token")
    with pytest.raises(OceanError) as failure:
        warmup.warm_up(green.url, 100, 10, admin=wrong)
    assert "POST /api/checkout answered 403" in str(failure.value)
    assert "\n" not in str(failure.value)
    assert leftovers(redis_client) == []  # the carts of the round still went away


# -- the shop's dry-run checkout -------------------------------------------------------


def dry_run(url: str, cart: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{url}/api/checkout",
        json={"cart_id": cart, "customer_id": 1},
        headers={"Ocean-Dry-Run": "1", "Idempotency-Key": uuid.uuid4().hex, **headers},
    )


def test_dry_run_checkout_rehearses_an_order_and_keeps_nothing(
    green: ShopProcess, schema_url: str, redis_client: Redis
):
    before = query(schema_url, FOOTPRINT)
    cart = f"dry-{uuid.uuid4().hex}"
    response = dry_run(green.admin_url, cart, green.admin_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is True
    order = body["order"]
    assert order["status"] == "paid" and [e["status"] for e in order["events"]] == [
        "pending",
        "paid",
    ]
    (item,) = order["items"]
    assert item["quantity"] == 1 and item["price_cents"] == 100
    assert httpx.get(f"{green.url}/api/products/{item['product_id']}").status_code == 404
    assert httpx.get(f"{green.url}/api/orders/{order['id']}").status_code == 404
    assert query(schema_url, FOOTPRINT) == before
    assert leftovers(redis_client) == []
    metrics = httpx.get(f"{green.url}/metrics").text
    assert value(metrics, "shop_checkout_dry_runs_total") == 1
    assert value(metrics, "shop_orders_created_total") == 0


def test_dry_run_checkout_is_for_the_admin_listener_with_its_token_only(
    green: ShopProcess, schema_url: str, redis_client: Redis
):
    before = query(schema_url, FOOTPRINT)
    cart = f"dry-{uuid.uuid4().hex}"
    put = httpx.put(f"{green.url}/api/carts/{cart}/items/3", json={"quantity": 1})
    assert put.status_code == 200
    # Never a real checkout instead: the public listener, even with the token, refuses.
    for url, headers in [
        (green.url, {}),
        (green.url, green.admin_headers),
        (green.admin_url, {}),
        (green.admin_url, {"Authorization": "Bearer not-the-token"}),
    ]:
        refused = dry_run(url, cart, headers)
        assert refused.status_code == 403, (url, headers, refused.text)
        assert "admin listener" in refused.json()["detail"]
    # A cart holding anything else is refused; its line stays, the scratch one goes.
    busy = dry_run(green.admin_url, cart, green.admin_headers)
    assert busy.status_code == 409 and "empty cart" in busy.json()["detail"]
    lines = httpx.get(f"{green.url}/api/carts/{cart}").json()["lines"]
    assert lines == [{"product_id": 3, "quantity": 1}]
    assert query(schema_url, FOOTPRINT) == before
    assert [k for k in leftovers(redis_client) if b"lock" in k] == []
