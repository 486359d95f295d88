"""Carts, checkout, payments, orders and live order feeds, on real PostgreSQL and Redis.

In-process tests drive the app through ASGI; the concurrency and cross-instance
tests run real `python -m ocean_shop` processes (a blue and a green) on one
database and one Redis, as the stack does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid

import httpx
import psycopg
import pytest
import websockets
from ocean_shop.app import create_app
from ocean_shop.bulk import Plan
from ocean_shop.bulk import seed as bulk_seed
from ocean_shop.cache import ProductCache
from ocean_shop.config import Settings
from ocean_shop.metrics import ShopMetrics
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from tests.integration.shop_support import (
    query,
    scrape,
    serve_app,
    shop_processes,
    value,
)

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

# Seeded product 250 has stock (250 * 37) % 250 = 0; product 1 has 37.
OUT_OF_STOCK_ID = 250


def new_cart() -> str:
    return uuid.uuid4().hex


def stock_of(url: str, product_id: int) -> int:
    return query(url, f"SELECT stock FROM products WHERE id = {product_id}")[0][0]


async def fill_cart(client: httpx.AsyncClient, lines: dict[int, int]) -> str:
    cart = new_cart()
    for product_id, quantity in lines.items():
        response = await client.put(
            f"/api/carts/{cart}/items/{product_id}", json={"quantity": quantity}
        )
        assert response.status_code == 200, response.text
    return cart


async def checkout(
    client: httpx.AsyncClient,
    cart: str,
    *,
    customer: int = 1,
    method: str = "card",
    key: str | None = None,
) -> httpx.Response:
    return await client.post(
        "/api/checkout",
        json={"cart_id": cart, "customer_id": customer, "payment_method": method},
        headers={"Idempotency-Key": key or uuid.uuid4().hex},
    )


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    """No simulated payment latency: these tests are about outcomes, not timing."""
    return dataclasses.replace(settings, payment_latency_ms=0)


@pytest.fixture
async def shop(fast_settings: Settings):
    app = create_app(fast_settings)
    async with serve_app(app) as client:
        client.app = app  # type: ignore[attr-defined]  # for tests that reach inside
        yield client


# --- catalogue --------------------------------------------------------------


async def test_categories_count_every_product(shop: httpx.AsyncClient) -> None:
    categories = (await shop.get("/api/categories")).json()
    assert [c["name"] for c in categories] == sorted(c["name"] for c in categories)
    assert len(categories) == 6
    assert sum(c["product_count"] for c in categories) == 1000


async def test_search_ranks_matches_and_pages(
    shop: httpx.AsyncClient, fast_settings: Settings
) -> None:
    found = (await shop.get("/api/search", params={"q": "masks", "limit": 100})).json()
    expected = query(
        fast_settings.database_url, "SELECT count(*) FROM products WHERE name LIKE '% Mask %'"
    )[0][0]
    assert found["total"] == expected > 0  # "masks" finds "Mask": stemmed
    assert len(found["items"]) == min(100, expected)
    assert all(" Mask " in item["name"] for item in found["items"])

    past_end = (await shop.get("/api/search", params={"q": "masks", "offset": 5000})).json()
    assert past_end["items"] == [] and past_end["total"] == expected

    nothing = (await shop.get("/api/search", params={"q": "submarine"})).json()
    assert nothing == {"items": [], "total": 0, "limit": 20, "offset": 0}
    # The search box syntax never errors: unbalanced quotes, stray operators.
    for q in ['"coral', "-", "or or", "!!!", "a & | b"]:
        assert (await shop.get("/api/search", params={"q": q})).status_code == 200, q
    assert (await shop.get("/api/search", params={"q": ""})).status_code == 422


# --- carts ------------------------------------------------------------------


async def test_cart_lines_are_set_listed_and_removed(
    shop: httpx.AsyncClient, redis_client: Redis, fast_settings: Settings
) -> None:
    cart = await fill_cart(shop, {5: 2, 3: 1})
    body = (await shop.get(f"/api/carts/{cart}")).json()
    assert body["lines"] == [{"product_id": 3, "quantity": 1}, {"product_id": 5, "quantity": 2}]
    assert 0 < body["expires_in"] <= fast_settings.cart_ttl
    assert 0 < redis_client.ttl(f"shop:cart:{cart}") <= fast_settings.cart_ttl

    await shop.put(f"/api/carts/{cart}/items/5", json={"quantity": 0})
    removed = await shop.delete(f"/api/carts/{cart}/items/3")
    assert removed.json() == {"cart_id": cart, "lines": [], "expires_in": None}


async def test_cart_rejects_bad_input_with_clear_4xx(shop: httpx.AsyncClient) -> None:
    cart = new_cart()
    unknown = await shop.put(f"/api/carts/{cart}/items/987654", json={"quantity": 1})
    assert unknown.status_code == 404 and "987654" in unknown.json()["detail"]
    for bad in ({"quantity": 101}, {"quantity": -1}, {"quantity": "two"}, {}, {"qty": 1}):
        response = await shop.put(f"/api/carts/{cart}/items/1", json=bad)
        assert response.status_code == 422, bad
    assert (await shop.put("/api/carts/short/items/1", json={"quantity": 1})).status_code == 422


# --- checkout ---------------------------------------------------------------


async def test_checkout_pays_reserves_stock_and_refreshes_the_cache(
    shop: httpx.AsyncClient, fast_settings: Settings
) -> None:
    url = fast_settings.database_url
    before = (await shop.get("/api/products/7")).json()  # now cached
    cart = await fill_cart(shop, {7: 3, 2: 1})

    response = await checkout(shop, cart, customer=4)
    assert response.status_code == 201, response.text
    order = response.json()["order"]
    assert order["status"] == "paid" and order["customer_id"] == 4
    assert [e["status"] for e in order["events"]] == ["pending", "paid"]
    assert {(i["product_id"], i["quantity"]) for i in order["items"]} == {(7, 3), (2, 1)}
    assert order["total_cents"] == sum(i["price_cents"] * i["quantity"] for i in order["items"])

    # The cached product was replaced, not served stale.
    after = (await shop.get("/api/products/7")).json()
    assert after["stock"] == before["stock"] - 3 == stock_of(url, 7)
    assert after["version"] > before["version"]
    assert (await shop.get(f"/api/carts/{cart}")).json()["lines"] == []

    assert query(url, "SELECT status, amount_cents FROM payments") == [
        ("succeeded", order["total_cents"])
    ]
    history = (await shop.get("/api/customers/4/orders")).json()
    assert history["total"] == 1 and history["items"][0]["id"] == order["id"]
    assert (await shop.get(f"/api/orders/{order['id']}")).json()["order"] == order

    text = await scrape(shop)
    assert value(text, "shop_orders_created_total") == 1
    assert value(text, "shop_checkout_duration_seconds_count", outcome="paid") == 1
    assert value(text, "shop_lock_wait_seconds_count") == 1
    assert value(text, "shop_lock_hold_seconds_count") == 1
    assert value(text, "shop_lock_contention_total") == 0


async def test_retry_with_the_same_key_returns_the_first_order(
    shop: httpx.AsyncClient, fast_settings: Settings
) -> None:
    cart = await fill_cart(shop, {9: 1})
    first = await checkout(shop, cart, key="retry-key-1")
    again = await checkout(shop, cart, key="retry-key-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    changed = await checkout(shop, cart, customer=2, key="retry-key-1")
    assert changed.status_code == 422 and "different" in changed.json()["detail"]
    assert query(fast_settings.database_url, "SELECT count(*) FROM orders") == [(1,)]
    assert query(fast_settings.database_url, "SELECT count(*) FROM payments") == [(1,)]
    assert value(await scrape(shop), "shop_orders_created_total") == 1


async def test_same_key_twenty_times_at_once_makes_one_order(
    shop: httpx.AsyncClient, fast_settings: Settings
) -> None:
    cart = await fill_cart(shop, {11: 1})
    responses = await asyncio.gather(*(checkout(shop, cart, key="burst") for _ in range(20)))
    codes = [r.status_code for r in responses]
    # Racing retries see the winner's order: paid (201) or still in progress (409).
    assert set(codes) <= {201, 409} and 201 in codes, codes
    ids = {r.json()["order"]["id"] for r in responses if r.status_code == 201}
    assert len(ids) == 1
    url = fast_settings.database_url
    assert query(url, "SELECT count(*) FROM orders") == [(1,)]
    assert query(url, "SELECT count(*) FROM payments") == [(1,)]


async def test_out_of_stock_is_409_and_changes_nothing(
    shop: httpx.AsyncClient, fast_settings: Settings
) -> None:
    url = fast_settings.database_url
    assert stock_of(url, OUT_OF_STOCK_ID) == 0
    stock_before = stock_of(url, 1)
    cart = await fill_cart(shop, {1: 1, OUT_OF_STOCK_ID: 1})
    response = await checkout(shop, cart)
    assert response.status_code == 409
    assert response.json()["short_product_ids"] == [OUT_OF_STOCK_ID]
    assert stock_of(url, 1) == stock_before  # all or nothing
    assert query(url, "SELECT count(*) FROM orders") == [(0,)]
    text = await scrape(shop)
    assert value(text, "shop_checkout_duration_seconds_count", outcome="out_of_stock") == 1


async def test_declined_payment_fails_the_order_and_returns_the_stock(
    shop: httpx.AsyncClient, fast_settings: Settings
) -> None:
    url = fast_settings.database_url
    stock_before = stock_of(url, 3)
    cart = await fill_cart(shop, {3: 2})
    response = await checkout(shop, cart, method="card_declined")
    assert response.status_code == 402
    order = response.json()["order"]
    assert (order["status"], order["failure_reason"]) == ("failed", "card_declined")
    assert [e["status"] for e in order["events"]] == ["pending", "failed"]
    assert stock_of(url, 3) == stock_before
    assert (await shop.get("/api/products/3")).json()["stock"] == stock_before
    assert query(url, "SELECT status, failure_reason FROM payments") == [
        ("failed", "card_declined")
    ]
    # The cart survives a failed payment, for a retry with another method.
    assert (await shop.get(f"/api/carts/{cart}")).json()["lines"] != []
    text = await scrape(shop)
    assert value(text, "shop_payment_failures_total", reason="card_declined") == 1


async def test_checkout_rejects_bad_requests(shop: httpx.AsyncClient) -> None:
    cart = await fill_cart(shop, {1: 1})
    unknown_customer = await checkout(shop, cart, customer=99_999)
    assert unknown_customer.status_code == 404
    assert "customer 99999" in unknown_customer.json()["detail"]
    empty = await checkout(shop, new_cart())
    assert empty.status_code == 409 and "empty" in empty.json()["detail"]
    no_key = await shop.post("/api/checkout", json={"cart_id": cart, "customer_id": 1})
    assert no_key.status_code == 422
    bad_method = await checkout(shop, cart, method="cash")
    assert bad_method.status_code == 422


async def test_orders_move_only_along_allowed_transitions(
    shop: httpx.AsyncClient, fast_settings: Settings
) -> None:
    orders = shop.app.state.resources.orders  # type: ignore[attr-defined]
    paid = (await checkout(shop, await fill_cart(shop, {12: 1}))).json()["order"]
    failed = (await checkout(shop, await fill_cart(shop, {13: 1}), method="provider_error")).json()[
        "order"
    ]

    shipped = await orders.ship(paid["id"])
    assert shipped.status == 200
    assert json.loads(shipped.body)["order"]["status"] == "shipped"
    assert (await orders.ship(paid["id"])).status == 409  # already shipped
    assert (await orders.ship(failed["id"])).status == 409  # failed never ships
    assert (await orders.ship(10**9)).status == 404
    # A failed order cannot be failed again (no double restock).
    assert await orders.fail(failed["id"], "again", payment_attempted=False) is None
    events = query(
        fast_settings.database_url,
        f"SELECT status FROM order_events WHERE order_id = {paid['id']} ORDER BY id",
    )
    assert [s for (s,) in events] == ["pending", "paid", "shipped"]


async def test_abandoned_pending_orders_are_failed_and_restocked(
    shop: httpx.AsyncClient, fast_settings: Settings
) -> None:
    url = fast_settings.database_url
    resources = shop.app.state.resources  # type: ignore[attr-defined]
    # The shop's own upkeep loop would race this test's calls for the order.
    await resources.maintenance.stop()
    stock_before = stock_of(url, 20)
    # A checkout that died between reserving stock and settling the payment.
    with psycopg.connect(url, autocommit=True) as conn:
        (order_id,) = conn.execute(
            "SELECT order_id FROM place_order(1, 'dead', 'x', ARRAY[20]::bigint[], ARRAY[2])"
        ).fetchone()
        conn.execute(
            "UPDATE orders SET created_at = now() - interval '1 hour' WHERE id = %s", (order_id,)
        )
    assert stock_of(url, 20) == stock_before - 2
    orders = resources.orders
    assert await orders.fail_abandoned() == 1
    assert await orders.fail_abandoned() == 0
    assert stock_of(url, 20) == stock_before
    assert query(url, f"SELECT status, failure_reason FROM orders WHERE id = {order_id}") == [
        ("failed", "abandoned")
    ]


async def test_seeded_pending_orders_neither_restock_nor_delay_real_abandoned_ones(
    shop: httpx.AsyncClient, fast_settings: Settings
) -> None:
    """Issue 25, Medium 6: ≈ 3 % of seeded orders are pending and a year old. They never
    took stock, so failing them must give none back, and a real abandoned checkout must
    not wait behind them (the sweeper took 100 a minute, lowest id first)."""
    url = fast_settings.database_url
    resources = shop.app.state.resources  # type: ignore[attr-defined]
    await resources.maintenance.stop()  # this test runs the sweep itself
    # Order history as `invoke seed` writes it: more pending orders than one batch.
    await bulk_seed(url, Plan(products=0, customers=0, orders=5000, seed=11))
    seeded_pending = "SELECT count(*) FROM orders WHERE status = 'pending'"
    (pending_before,) = query(url, seeded_pending)[0]
    assert pending_before > 100  # more than a sweep query takes
    total_stock = "SELECT sum(stock) FROM products"
    (stock_before,) = query(url, total_stock)[0]
    # A checkout that died between reserving stock and settling, 6 minutes ago.
    with psycopg.connect(url, autocommit=True) as conn:
        (order_id,) = conn.execute(
            "SELECT order_id FROM place_order(1, 'died', 'x', ARRAY[21]::bigint[], ARRAY[3])"
        ).fetchone()
        conn.execute(
            "UPDATE orders SET created_at = now() - interval '6 minutes' WHERE id = %s",
            (order_id,),
        )
    assert query(url, total_stock)[0][0] == stock_before - 3

    assert await resources.orders.fail_abandoned() == 1  # one pass: the real one, only
    assert query(url, f"SELECT status, failure_reason FROM orders WHERE id = {order_id}") == [
        ("failed", "abandoned")
    ]
    assert query(url, total_stock)[0][0] == stock_before  # its 3 back, nothing more
    assert query(url, seeded_pending)[0][0] == pending_before
    # Even failed by hand, a seeded order gives back no stock it never took.
    (seeded_id,) = query(url, "SELECT min(id) FROM orders WHERE status = 'pending'")[0]
    assert await resources.orders.fail(seeded_id, "test", payment_attempted=False) is not None
    assert query(url, total_stock)[0][0] == stock_before


async def test_stock_can_never_go_negative(fast_settings: Settings, shop: httpx.AsyncClient):
    with (
        psycopg.connect(fast_settings.database_url) as conn,
        pytest.raises(psycopg.errors.CheckViolation),
    ):
        conn.execute("UPDATE products SET stock = stock - 1 WHERE id = %s", (OUT_OF_STOCK_ID,))


async def test_cache_never_puts_back_an_older_version(redis_url: str, redis_client: Redis) -> None:
    redis = AsyncRedis.from_url(redis_url)
    cache = ProductCache(redis, 60, ShopMetrics(version="t", color="blue"))
    try:
        # A writer committed version 5 and tombstoned the entry ...
        await cache.invalidate([(42, 5)])
        assert redis_client.get("shop:product:42") == b"5\n"

        # ... a reader that loaded version 4 before that commit must not win,
        async def load_v4(_: int) -> tuple[int, bytes]:
            return 4, b'{"v":4}'

        assert await cache.get_or_load(42, load_v4) == b'{"v":4}'  # answered, not cached
        assert redis_client.get("shop:product:42") == b"5\n"

        # ... while a reader with the new version fills the tombstone in.
        async def load_v5(_: int) -> tuple[int, bytes]:
            return 5, b'{"v":5}'

        assert await cache.get_or_load(42, load_v5) == b'{"v":5}'
        assert redis_client.get("shop:product:42") == b'5\n{"v":5}'
        assert await cache.get_or_load(42, load_v4) == b'{"v":5}'  # a hit now
    finally:
        await redis.aclose()


# --- real processes: blue and green on one database and one Redis ---------------

# How often a checkout refused with "locked by other checkouts; retry shortly" is retried.
LOCK_RETRIES = 5


def shop_env(schema_url: str, redis_url: str, **extra: str):
    return shop_processes(
        schema_url,
        redis_url,
        SHOP_PAYMENT_LATENCY_MS="0",
        # Under a loaded CI machine, 200 checkouts queue behind one product's
        # lock; the wait must not be what decides who gets the last unit.
        SHOP_LOCK_WAIT_MS="20000",
        **extra,
    )


async def test_200_checkouts_over_blue_and_green_sell_exactly_the_10_left(
    schema_url: str, redis_url: str, redis_client: Redis
) -> None:
    with shop_env(schema_url, redis_url) as (blue, green):
        async with httpx.AsyncClient(timeout=60) as http:
            # The admin API sets the stock (and replaces the cached product).
            patched = await http.patch(
                f"{blue.admin_url}/admin/products/1",
                json={"stock": 10},
                headers=blue.admin_headers,
            )
            assert patched.status_code == 200 and patched.json()["stock"] == 10

            shops = [blue, green] * 100
            carts = [new_cart() for _ in shops]
            for shop, cart in zip(shops, carts, strict=True):
                response = await http.put(
                    f"{shop.url}/api/carts/{cart}/items/1", json={"quantity": 1}
                )
                assert response.status_code == 200

            async def buy(shop, cart: str) -> httpx.Response:
                """A checkout, retried with its key as the shop's 503 asks when the
                product stayed locked for the whole lock wait (200 checkouts queue on
                one product's lock: on a starved machine that outlasts even 20 s)."""
                key = uuid.uuid4().hex
                for _ in range(LOCK_RETRIES):
                    response = await http.post(
                        f"{shop.url}/api/checkout",
                        json={"cart_id": cart, "customer_id": 1 + len(cart) % 50},
                        headers={"Idempotency-Key": key},
                    )
                    if response.status_code != 503:
                        return response
                    assert "locked by other checkouts" in response.json()["detail"]
                return response

            responses = await asyncio.gather(
                *(buy(shop, cart) for shop, cart in zip(shops, carts, strict=True))
            )
            codes = [r.status_code for r in responses]
            assert codes.count(201) == 10, sorted(codes)
            assert codes.count(409) == 190, sorted(codes)
            assert all(
                r.json()["short_product_ids"] == [1] for r in responses if r.status_code == 409
            )

            contention = 0.0
            for shop in (blue, green):
                text = (await http.get(f"{shop.url}/metrics")).text
                contention += value(text, "shop_lock_contention_total")
            assert contention > 0  # the lock really was fought over
            assert (await http.get(f"{green.url}/api/products/1")).json()["stock"] == 0

    assert stock_of(schema_url, 1) == 0
    assert query(schema_url, "SELECT sum(quantity) FROM order_items WHERE product_id = 1") == [
        (10,)
    ]
    assert query(schema_url, "SELECT count(*), min(status) FROM orders") == [(10, "paid")]


async def test_same_key_twenty_times_over_both_instances_makes_one_order(
    schema_url: str, redis_url: str, redis_client: Redis
) -> None:
    with shop_env(schema_url, redis_url) as (blue, green):
        async with httpx.AsyncClient(timeout=30) as http:
            cart = new_cart()
            await http.put(f"{blue.url}/api/carts/{cart}/items/2", json={"quantity": 1})
            responses = await asyncio.gather(
                *(
                    http.post(
                        f"{shop.url}/api/checkout",
                        json={"cart_id": cart, "customer_id": 3},
                        headers={"Idempotency-Key": "one-purchase"},
                    )
                    for shop in [blue, green] * 10
                )
            )
    codes = [r.status_code for r in responses]
    assert set(codes) <= {201, 409} and 201 in codes, codes
    assert query(schema_url, "SELECT count(*) FROM orders") == [(1,)]
    assert query(schema_url, "SELECT count(*) FROM payments") == [(1,)]


async def test_feed_on_blue_sees_a_change_made_through_green(
    schema_url: str, redis_url: str, redis_client: Redis
) -> None:
    with shop_env(schema_url, redis_url) as (blue, green):
        async with httpx.AsyncClient(timeout=30) as http:
            cart = new_cart()
            await http.put(f"{green.url}/api/carts/{cart}/items/4", json={"quantity": 1})
            placed = await http.post(
                f"{green.url}/api/checkout",
                json={"cart_id": cart, "customer_id": 5},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            order_id = placed.json()["order"]["id"]

            ws_url = f"ws://127.0.0.1:{blue.port}/ws/orders/{order_id}"
            async with websockets.connect(ws_url, open_timeout=5) as feed:
                first = json.loads(await asyncio.wait_for(feed.recv(), 5))
                assert (first["id"], first["status"]) == (order_id, "paid")
                shipped = await http.post(
                    f"{green.admin_url}/admin/orders/{order_id}/ship",
                    headers=green.admin_headers,
                )
                assert shipped.status_code == 200
                change = json.loads(await asyncio.wait_for(feed.recv(), 5))
                assert change == {"order_id": order_id, "status": "shipped", "reason": None}
                # Shipped is final: the server closes the feed normally.
                with pytest.raises(websockets.ConnectionClosedOK):
                    await asyncio.wait_for(feed.recv(), 5)

            open_feeds = value(
                (await http.get(f"{blue.url}/metrics")).text, "shop_websocket_connections"
            )
            assert open_feeds == 0

            async with websockets.connect(
                f"ws://127.0.0.1:{blue.port}/ws/orders/999999", open_timeout=5
            ) as feed:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(feed.recv(), 5)
                assert closed.value.rcvd.code == 4404
