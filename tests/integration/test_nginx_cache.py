"""nginx in front of the shop: the catalogue micro-cache, what it never caches, the
WebSocket proxy, request ids and the static baseline, on the session's real stack."""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
import psycopg
import pytest
import redis
from websockets.sync.client import connect as ws_connect

from ocean.runtime.local import LocalRuntime

pytestmark = pytest.mark.integration

# The micro-cache is bounded at 1 s; allow one poll interval and the request itself.
STALENESS_LIMIT = 1.1


@pytest.fixture(scope="module")
def front(stack: LocalRuntime) -> httpx.Client:
    with stack.http("nginx", timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def shop_db(pg_superuser: dict) -> psycopg.Connection:
    with psycopg.connect(**pg_superuser, dbname="shop", autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def shop_redis(stack: LocalRuntime) -> redis.Redis:
    client = redis.Redis.from_url(stack.redis_url(db=0))
    yield client
    client.close()


def early_in_a_second() -> None:
    """Wait for the start of a wall-clock second: two requests made now share a
    micro-cache bucket (keys whose URI ends in a non-digit start theirs on the second)."""
    while time.time() % 1 > 0.2:
        time.sleep(0.01)


def unique() -> str:
    return uuid.uuid4().hex


def checkout(front: httpx.Client, product_id: int) -> dict:
    cart = unique()
    put = front.put(f"/api/carts/{cart}/items/{product_id}", json={"quantity": 1})
    assert put.status_code == 200, put.text
    response = front.post(
        "/api/checkout",
        json={"cart_id": cart, "customer_id": 1, "payment_method": "card"},
        headers={"Idempotency-Key": unique()},
    )
    assert response.status_code == 201, response.text
    assert "X-Cache-Status" not in response.headers
    return response.json()["order"]


@pytest.mark.parametrize(
    "path",
    ["/api/products/11", "/api/products?limit=5", "/api/categories", "/api/search?q=mask"],
)
def test_second_catalogue_read_is_a_micro_cache_hit(front: httpx.Client, path: str):
    # A query parameter of its own gives the test a key no other reader has filled.
    url = f"{path}{'&' if '?' in path else '?'}probe={unique()}x"
    early_in_a_second()
    first, second = front.get(url), front.get(url)
    assert first.status_code == second.status_code == 200, first.text
    assert first.headers["X-Cache-Status"] == "MISS"
    assert second.headers["X-Cache-Status"] == "HIT"
    assert first.content == second.content
    # A HEAD is answered from the same entry.
    assert front.head(url).headers["X-Cache-Status"] == "HIT"


def test_a_cached_read_is_at_most_one_second_stale(
    front: httpx.Client, shop_db: psycopg.Connection, shop_redis: redis.Redis
):
    # The worst case: the stock changes right after nginx cached the product (its first
    # read in a new bucket, a MISS). Ids ending in different digits: their buckets
    # start at different tenths of a second.
    for product_id in (31, 34, 38):
        path = f"/api/products/{product_id}"
        deadline = time.monotonic() + 5
        # Cached, then the first MISS after: a fill at the very start of a bucket.
        for status in ("HIT", "MISS"):
            while (filled := front.get(path)).headers["X-Cache-Status"] != status:
                assert time.monotonic() < deadline, f"no micro-cache {status} seen"
                time.sleep(0.002)
        stock = filled.json()["stock"] + 1000
        # The change a writer makes: the row, then the shop's Redis entry (the shop
        # replaces it on its own writes; this one bypasses the shop altogether).
        shop_db.execute(
            "UPDATE products SET stock = %s, version = version + 1, updated_at = now()"
            " WHERE id = %s",
            (stock, product_id),
        )
        shop_redis.delete(f"shop:product:{product_id}")
        changed = time.monotonic()
        stale_reads = 0
        while front.get(path).json()["stock"] != stock:
            elapsed = time.monotonic() - changed
            assert elapsed <= STALENESS_LIMIT, f"still the old stock {elapsed:.3f} s later"
            stale_reads += 1
            time.sleep(0.01)
        elapsed = time.monotonic() - changed
        assert elapsed <= STALENESS_LIMIT, f"new stock showed {elapsed:.3f} s after the change"
        assert stale_reads > 0, "the micro-cache never answered with the cached entry"


def test_errors_are_never_cached(front: httpx.Client):
    url = f"/api/products/999999?probe={unique()}x"
    early_in_a_second()
    first, second = front.get(url), front.get(url)
    assert first.status_code == second.status_code == 404
    assert second.headers["X-Cache-Status"] == "MISS"


def test_carts_checkout_and_orders_are_never_cached(front: httpx.Client):
    cart = unique()
    for quantity in (1, 2, 3):
        put = front.put(f"/api/carts/{cart}/items/5", json={"quantity": quantity})
        assert put.status_code == 200, put.text
        got = front.get(f"/api/carts/{cart}")
        assert got.status_code == 200
        assert "X-Cache-Status" not in got.headers
        assert got.json()["lines"] == [{"product_id": 5, "quantity": quantity}]
    order = checkout(front, 5)
    for _ in range(2):
        got = front.get(f"/api/orders/{order['id']}")
        assert got.status_code == 200
        assert "X-Cache-Status" not in got.headers
        assert got.json()["order"]["status"] == "paid"


def test_stock_after_checkout_is_exact_within_one_second(front: httpx.Client):
    # The shop replaces its Redis entry when checkout commits; nginx adds at most 1 s.
    path = "/api/products/42"
    before = front.get(path).json()["stock"]
    checkout(front, 42)
    done = time.monotonic()
    while front.get(path).json()["stock"] != before - 1:
        assert time.monotonic() - done < STALENESS_LIMIT, "stale stock after checkout"
        time.sleep(0.02)


def test_websocket_order_feed_through_nginx(stack: LocalRuntime, front: httpx.Client):
    order = checkout(front, 6)
    url = stack.url("nginx").replace("https://", "wss://") + f"/ws/orders/{order['id']}"
    context = stack.access().ssl_context()
    with ws_connect(url, open_timeout=5, close_timeout=2, ssl=context) as ws:
        first = json.loads(ws.recv(timeout=5))
    assert first.get("order_id", first.get("id")) == order["id"]
    assert first["status"] == "paid"


def test_nginx_sends_its_request_id_to_the_shop(stack: LocalRuntime, front: httpx.Client):
    response = front.get(f"/api/carts/{unique()}")
    request_id = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    # The shop adopts a 32-hex X-Request-ID as its trace id and answers with it; nginx
    # logs that answer as trace_id (its buffered access log flushes every second).
    log = stack.settings.logs / "nginx-access.log"
    deadline = time.monotonic() + 5
    while f"request_id={request_id}" not in log.read_text():
        assert time.monotonic() < deadline, "request not in the access log"
        time.sleep(0.2)
    line = next(x for x in log.read_text().splitlines() if f"request_id={request_id}" in x)
    assert f"trace_id={request_id}" in line


def test_a_cached_answer_carries_its_own_request_id(front: httpx.Client):
    url = f"/api/products/12?probe={unique()}x"
    early_in_a_second()
    first, second = front.get(url), front.get(url)
    assert second.headers["X-Cache-Status"] == "HIT"
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    assert len(second.headers.get_list("X-Request-ID")) == 1


def test_static_baseline_is_on_the_status_port_only(stack: LocalRuntime):
    baseline = httpx.get(f"{stack.url('nginx-status')}/__static_baseline", timeout=5)
    assert baseline.status_code == 200 and baseline.text == "ok\n"
    public = stack.http("nginx", timeout=5).get("/__static_baseline")
    assert public.status_code == 404
