"""Shop API (stack/shop) against real PostgreSQL and Redis.

Infrastructure comes only from the session fixtures (tests/conftest.py and
tests/integration/conftest.py): each test runs the shop in a schema of its
own, with the shop's Redis keys deleted first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from ocean_shop.app import create_app
from ocean_shop.config import ConfigError, Settings
from ocean_shop.migrate import apply_migrations, load_migrations
from ocean_shop.resources import prepare_database
from ocean_shop.seed import seed_products
from redis import Redis

from tests.integration.shop_support import (
    Proxy,
    cache_counts,
    free_port,
    proxied,
    query,
    samples,
    scrape,
    serve,
    serve_app,
    value,
)

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

SEEDED = 1000
PRODUCT_KEYS = {
    "id",
    "sku",
    "name",
    "description",
    "category",
    "price_cents",
    "stock",
    "version",
    "updated_at",
}


# --- startup: migrations and seed -------------------------------------------


async def test_migrations_apply_once_each_and_rerun_as_no_ops(settings: Settings) -> None:
    for _ in range(2):  # the second startup finds everything applied
        async with serve(settings) as client:
            assert (await client.get("/healthz")).status_code == 200

    async with await psycopg.AsyncConnection.connect(
        settings.database_url, autocommit=True
    ) as conn:
        assert await apply_migrations(conn) == []
        assert await apply_migrations(conn) == []

    recorded = query(settings.database_url, "SELECT version, name FROM schema_migrations")
    expected = [(m.version, m.name) for m in load_migrations()]
    assert sorted(recorded) == expected
    assert expected[0] == (1, "catalog")
    tables = query(
        settings.database_url,
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = current_schema() ORDER BY table_name",
    )
    assert [name for (name,) in tables] == [
        "categories",
        "customers",
        "order_events",
        "order_items",
        "orders",
        "payments",
        "product_documents",  # a view
        "products",
        "schema_migrations",
    ]


async def test_seed_fills_an_empty_table_once(settings: Settings) -> None:
    async with serve(settings) as client:
        assert (await client.get("/api/products?limit=1")).json()["total"] == SEEDED
    first = query(settings.database_url, "SELECT id, sku, updated_at FROM products ORDER BY id")
    assert [row[0] for row in first] == list(range(1, SEEDED + 1))
    assert first[0][1] == "SKU-000001"

    # A non-empty table is left alone, whatever SHOP_SEED_PRODUCTS now says.
    async with serve(dataclasses.replace(settings, seed_products=50)) as client:
        assert (await client.get("/api/products?limit=1")).json()["total"] == SEEDED
    again = query(settings.database_url, "SELECT id, sku, updated_at FROM products ORDER BY id")
    assert again == first


async def test_seeding_1000_products_streams_them_in_one_copy(
    schema_url: str, tmp_path: Path
) -> None:
    """Seeding is fast because its rows go in one COPY, not a statement each: counted in
    libpq's protocol trace (what the client sent), not timed (a busy machine stretches
    any timing; the speed itself is a benchmark's)."""
    trace = tmp_path / "libpq.trace"
    async with await psycopg.AsyncConnection.connect(schema_url, autocommit=True) as conn:
        await apply_migrations(conn)
        with trace.open("w") as sink:
            conn.pgconn.trace(sink.fileno())
            assert await seed_products(conn, 1000) == 1000
            conn.pgconn.untrace()
        assert await seed_products(conn, 1000) == 0
        cur = await conn.execute("SELECT count(DISTINCT sku), count(category_id) FROM products")
        assert await cur.fetchone() == (1000, 1000)
    # A trace line: timestamp, F(rontend) or B(ackend), length, message type, contents.
    lines = [line.split("\t") for line in trace.read_text().splitlines()]
    sent = [fields[3] for fields in lines if len(fields) > 3 and fields[1] == "F"]
    statements = [kind for kind in sent if kind.startswith(("Query", "Parse"))]
    assert sent.count("CopyDone") == 1 and len(statements) <= 10, statements
    assert sum(kind == "CopyData" for kind in sent) >= 1


async def test_blue_and_green_starting_together_migrate_and_seed_once(
    settings: Settings,
) -> None:
    deadline = time.monotonic() + 10
    green = dataclasses.replace(settings, color="green")
    await asyncio.gather(prepare_database(settings, deadline), prepare_database(green, deadline))

    assert query(settings.database_url, "SELECT count(*) FROM schema_migrations") == [
        (len(load_migrations()),)
    ]
    assert query(settings.database_url, "SELECT count(*) FROM products") == [(SEEDED,)]


async def test_startup_gives_up_when_postgres_never_answers(redis_url: str) -> None:
    settings = Settings(
        database_url=f"postgresql://shop@127.0.0.1:{free_port()}/shop",
        redis_url=redis_url,
        startup_timeout=0.5,
    )
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"PostgreSQL not reachable after .* refused"):
        await prepare_database(settings, started + settings.startup_timeout)
    assert 0.5 <= time.monotonic() - started < 2  # it retried until, and only until, the limit


# --- products -----------------------------------------------------------------


async def test_list_products_pages_in_id_order(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/products")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    page = response.json()
    assert (page["total"], page["limit"], page["offset"]) == (SEEDED, 20, 0)
    assert [item["id"] for item in page["items"]] == list(range(1, 21))
    assert set(page["items"][0]) == PRODUCT_KEYS

    page = (await client.get("/api/products?limit=5&offset=10")).json()
    assert [item["id"] for item in page["items"]] == [11, 12, 13, 14, 15]
    assert (page["total"], page["limit"], page["offset"]) == (SEEDED, 5, 10)

    last = (await client.get(f"/api/products?limit=100&offset={SEEDED - 1}")).json()
    assert [item["id"] for item in last["items"]] == [SEEDED]
    beyond = (await client.get(f"/api/products?offset={SEEDED}")).json()
    assert beyond["items"] == [] and beyond["total"] == SEEDED


async def test_list_products_filters_by_category(client: httpx.AsyncClient) -> None:
    everything = (await client.get("/api/products?limit=100")).json()["items"]
    categories = {item["category"] for item in everything}
    assert len(categories) > 1

    totals = 0
    for category in categories:
        page = (await client.get("/api/products", params={"category": category})).json()
        assert page["items"], category
        assert {item["category"] for item in page["items"]} == {category}
        ids = [item["id"] for item in page["items"]]
        assert ids == sorted(ids)
        totals += page["total"]
    assert totals == SEEDED  # every product is in exactly one category

    unknown = (await client.get("/api/products?category=no-such-thing")).json()
    assert (unknown["items"], unknown["total"]) == ([], 0)


@pytest.mark.parametrize(
    ("query_string", "field", "message"),
    [
        ("limit=0", "limit", "greater than or equal to 1"),
        ("limit=101", "limit", "less than or equal to 100"),
        ("limit=ten", "limit", "valid integer"),
        ("offset=-1", "offset", "greater than or equal to 0"),
    ],
)
async def test_list_products_rejects_bad_paging(
    client: httpx.AsyncClient, query_string: str, field: str, message: str
) -> None:
    response = await client.get(f"/api/products?{query_string}")
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", field]
    assert message in error["msg"]


async def test_product_read_is_a_cache_miss_then_a_hit(
    client: httpx.AsyncClient, redis_client: Redis, settings: Settings
) -> None:
    assert await cache_counts(client) == {"hit": 0, "miss": 0, "error": 0}

    first = await client.get("/api/products/7")
    assert first.status_code == 200
    product = first.json()
    assert set(product) == PRODUCT_KEYS
    assert (product["id"], product["sku"]) == (7, "SKU-000007")
    assert product["price_cents"] >= 0 and product["stock"] >= 0
    assert await cache_counts(client) == {"hit": 0, "miss": 1, "error": 0}
    # The entry is the response body behind its version (see ocean_shop.cache).
    assert redis_client.get("shop:product:7") == b"%d\n%s" % (product["version"], first.content)
    assert 0 < redis_client.ttl("shop:product:7") <= settings.cache_ttl

    second = await client.get("/api/products/7")
    assert second.status_code == 200
    assert second.json() == product
    assert await cache_counts(client) == {"hit": 1, "miss": 1, "error": 0}

    # Only the miss reached PostgreSQL.
    text = await scrape(client)
    assert value(text, "shop_db_query_duration_seconds_count", query="product_by_id") == 1


async def test_unknown_product_is_404_and_not_cached(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    response = await client.get("/api/products/987654")
    assert response.status_code == 404
    assert response.json() == {"detail": "product 987654 not found"}
    assert redis_client.exists("shop:product:987654") == 0

    for bad_id in ("0", "-3", "abc", str(2**63)):
        assert (await client.get(f"/api/products/{bad_id}")).status_code == 422, bad_id


async def test_fast_product_path_answers_exactly_like_the_api_route(
    client: httpx.AsyncClient,
) -> None:
    """ocean_shop.fastpath serves plain ids; anything else reaches FastAPI's route."""
    fast = await client.get("/api/products/7")  # the fast path
    routed = await client.get("/api/products/007")  # leading zero: FastAPI's route
    assert fast.status_code == routed.status_code == 200
    assert fast.content == routed.content
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    assert fast.headers["content-length"] == routed.headers["content-length"]
    missing_fast = await client.get("/api/products/987654")
    missing_routed = await client.get("/api/products/0987654")
    assert missing_fast.status_code == missing_routed.status_code == 404
    assert missing_fast.json() == missing_routed.json()
    assert (await client.head("/api/products/7")).status_code == 405  # as the route says
    text = await scrape(client)
    route = {"route": "/api/products/{id}", "method": "GET", "color": "blue"}
    assert value(text, "shop_http_requests_total", status="2xx", **route) == 2
    assert value(text, "shop_http_requests_total", status="4xx", **route) == 2


# --- operations ---------------------------------------------------------------


async def test_healthz_and_readyz_when_everything_is_up(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})

    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


async def test_redis_outage_reports_not_ready_but_still_serves_products(
    settings: Settings,
) -> None:
    redis_down = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with serve(redis_down) as client:  # starting must not need Redis
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["failed"] == ["redis"]
        assert body["checks"]["postgres"] == "ok"
        assert body["checks"]["redis"] != "ok"
        assert (await client.get("/healthz")).status_code == 200

        for _ in range(3):
            response = await client.get("/api/products/3")
            assert response.status_code == 200
            assert response.json()["id"] == 3
        assert (await client.get("/api/products/987654")).status_code == 404

        assert await cache_counts(client) == {"hit": 0, "miss": 0, "error": 4}
        text = await scrape(client)
        # /readyz's 503 is the only 5xx: product reads never fail for the cache.
        assert [
            labels["route"]
            for labels, _ in samples(text, "shop_http_requests_total")
            if labels["status"] == "5xx"
        ] == ["/readyz"]
        assert (
            value(
                text,
                "shop_http_requests_total",
                route="/api/products/{id}",
                method="GET",
                status="2xx",
            )
            == 3
        )


async def test_a_redis_stall_delays_carts_and_skips_the_cache(settings: Settings) -> None:
    """Redis answering 0.5 s late: product reads give up on the cache after 0.25 s and
    read PostgreSQL; carts, which have no fallback, wait for it instead of a 503."""
    proxy = Proxy(urlsplit(settings.redis_url).port)
    try:
        stalled = dataclasses.replace(settings, redis_url=proxied(settings.redis_url, proxy.port))
        async with serve(stalled) as client:
            assert (await client.get("/api/products/3")).status_code == 200  # cached
            assert (
                await client.put("/api/carts/stalled-cart/items/3", json={"quantity": 2})
            ).is_success
            proxy.delay = 0.5

            product = await client.get("/api/products/3")
            started = time.monotonic()
            cart = await client.get("/api/carts/stalled-cart")
            cart_s = time.monotonic() - started

            assert product.status_code == 200 and product.json()["id"] == 3
            # Did not wait for the cache: a read that waited would have had Redis' answer
            # (a hit); the error says it gave up first. Told by the counters, not by a
            # stopwatch a busy machine stretches.
            assert await cache_counts(client) == {"hit": 0, "miss": 1, "error": 1}
            assert cart.status_code == 200, cart.text
            assert [(line["product_id"], line["quantity"]) for line in cart.json()["lines"]] == [
                (3, 2)
            ]
            assert cart_s >= proxy.delay  # waited for Redis rather than failing
    finally:
        proxy.cut()


async def test_database_outage_is_503_while_cached_products_still_serve(
    settings: Settings,
) -> None:
    app = create_app(settings)
    async with serve_app(app) as client:
        assert (await client.get("/api/products/4")).status_code == 200  # now cached
        # A closed pool fails every checkout with an OperationalError, as
        # lost connections and pool timeouts do during a real outage.
        await app.state.resources.pool.close()

        assert (await client.get("/api/products/4")).status_code == 200
        for path in ("/api/products/8", "/api/products"):
            response = await client.get(path)
            assert response.status_code == 503, path
            assert response.json() == {"detail": "database unavailable"}
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["failed"] == ["postgres"]
        assert await cache_counts(client) == {"hit": 1, "miss": 2, "error": 0}


async def test_version_color_and_build_info(settings: Settings) -> None:
    green = dataclasses.replace(settings, color="green", version="9.8.7")
    async with serve(green) as client:
        response = await client.get("/version")
        assert response.json() == {"version": "9.8.7", "color": "green"}
        text = await scrape(client)
    assert value(text, "shop_build_info", version="9.8.7", color="green") == 1
    assert value(text, "shop_http_requests_total", route="/version", status="2xx") == 1
    assert {labels["color"] for labels, _ in samples(text, "shop_http_requests_total")} == {"green"}


async def test_http_metrics_are_labelled_by_route_template(client: httpx.AsyncClient) -> None:
    for path in ("/api/products/5", "/api/products/6", "/api/products/987654", "/no/such/page"):
        await client.get(path)
    text = await scrape(client)

    by_id = {"route": "/api/products/{id}", "method": "GET", "color": "blue"}
    assert value(text, "shop_http_requests_total", status="2xx", **by_id) == 2
    assert value(text, "shop_http_requests_total", status="4xx", **by_id) == 1
    assert value(text, "shop_http_request_duration_seconds_count", **by_id) == 3
    assert value(text, "shop_http_request_duration_seconds_bucket", le="+Inf", **by_id) == 3
    assert value(text, "shop_http_requests_total", route="other", status="4xx") == 1

    routes = {labels["route"] for labels, _ in samples(text, "shop_http_requests_total")}
    assert not any(route.startswith("/api/products/") and "{" not in route for route in routes)
    assert "/no/such/page" not in routes


def test_settings_come_from_the_environment() -> None:
    env = {"SHOP_DATABASE_URL": "postgresql://db", "SHOP_REDIS_URL": "redis://cache"}
    settings = Settings.from_env(env)
    assert (settings.host, settings.port, settings.color) == ("127.0.0.1", 8000, "blue")
    assert (settings.seed_products, settings.cache_ttl, settings.db_pool_max) == (1000, 300, 10)
    assert settings.startup_timeout == 30

    custom = Settings.from_env({**env, "SHOP_COLOR": "green", "SHOP_PORT": "9001"})
    assert (custom.color, custom.port) == ("green", 9001)
    with pytest.raises(ConfigError, match="SHOP_PORT"):
        Settings.from_env({**env, "SHOP_PORT": "eighty"})
    with pytest.raises(ConfigError, match="SHOP_DATABASE_URL"):
        Settings.from_env({"SHOP_REDIS_URL": "redis://cache"})


def test_bad_color_exits_with_a_one_line_error() -> None:
    env = {
        **os.environ,
        "SHOP_DATABASE_URL": "postgresql://db",
        "SHOP_REDIS_URL": "redis://cache",
        "SHOP_COLOR": "purple",
    }
    result = subprocess.run(
        [sys.executable, "-m", "ocean_shop"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "ocean-shop: SHOP_COLOR must be one of blue|green, got 'purple'"
    ]
