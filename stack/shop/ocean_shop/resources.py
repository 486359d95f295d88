"""Startup and shutdown of what the endpoints use: schema, pool, cache."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from ocean_shop.cache import CACHE_TIMEOUT, STORE_TIMEOUT, ProductCache, connect_redis
from ocean_shop.cart import Carts
from ocean_shop.catalog import Catalog
from ocean_shop.config import Settings
from ocean_shop.db import advisory_lock, open_pool, wait_for_postgres
from ocean_shop.events import OrderFeed
from ocean_shop.locks import ProductLocks
from ocean_shop.maintenance import Maintenance
from ocean_shop.metrics import ShopMetrics
from ocean_shop.migrate import apply_migrations
from ocean_shop.orders import Orders
from ocean_shop.payments import SimulatedProvider
from ocean_shop.seed import seed_customers, seed_products

log = logging.getLogger(__name__)

# Arbitrary but fixed: every shop instance on a database must use the same key.
MIGRATION_LOCK_KEY = 0x0CEA_5409


@dataclass(frozen=True, slots=True)
class Resources:
    pool: AsyncConnectionPool
    redis: Redis
    catalog: Catalog
    cache: ProductCache
    carts: Carts
    orders: Orders
    feed: OrderFeed
    maintenance: Maintenance


async def prepare_database(settings: Settings, deadline: float) -> None:
    """Wait for PostgreSQL, then migrate and seed under one advisory lock."""
    conn = await wait_for_postgres(settings.database_url, deadline - time.monotonic())
    async with conn, advisory_lock(conn, MIGRATION_LOCK_KEY, deadline - time.monotonic()):
        await apply_migrations(conn)
        await seed_products(conn, settings.seed_products)
        await seed_customers(conn, settings.seed_customers)


@asynccontextmanager
async def open_resources(settings: Settings, metrics: ShopMetrics) -> AsyncIterator[Resources]:
    started = time.monotonic()
    deadline = started + settings.startup_timeout
    await prepare_database(settings, deadline)
    pool = await open_pool(
        settings.database_url,
        settings.db_pool_min,
        settings.db_pool_max,
        max(1.0, deadline - time.monotonic()),
    )
    # Redis is not waited for: the cache degrades to PostgreSQL reads and
    # /readyz reports it, so a Redis outage must not stop the shop starting.
    redis = connect_redis(settings.redis_url, STORE_TIMEOUT)
    # The cache has a client of its own with a shorter timeout: a slow read falls
    # back to PostgreSQL, while the cart and the locks on `redis` wait a while longer.
    cache_redis = connect_redis(settings.redis_url, CACHE_TIMEOUT)
    catalog = Catalog(pool, metrics)
    cache = ProductCache(cache_redis, settings.cache_ttl, metrics)
    carts = Carts(redis, settings.cart_ttl)
    feed = OrderFeed(settings.redis_url, redis)
    orders = Orders(
        pool=pool,
        redis=redis,
        carts=carts,
        locks=ProductLocks(
            redis, ttl_ms=settings.lock_ttl_ms, wait_ms=settings.lock_wait_ms, metrics=metrics
        ),
        cache=cache,
        provider=SimulatedProvider(
            latency_ms=settings.payment_latency_ms, failure_rate=settings.payment_failure_rate
        ),
        feed=feed,
        metrics=metrics,
    )
    maintenance = Maintenance(catalog, orders, metrics, settings.low_stock_threshold)
    maintenance.start()
    log.info("started in %.0f ms", (time.monotonic() - started) * 1000)
    try:
        yield Resources(
            pool=pool,
            redis=redis,
            catalog=catalog,
            cache=cache,
            carts=carts,
            orders=orders,
            feed=feed,
            maintenance=maintenance,
        )
    finally:
        await maintenance.stop()
        await feed.close()
        await cache_redis.aclose()
        await redis.aclose()
        await pool.close(timeout=1.0)
