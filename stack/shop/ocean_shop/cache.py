"""Redis read-through cache for product JSON.

The cache holds the exact response body, so a hit is served without parsing
or serialising anything. Redis is an optimisation, never a dependency of a
correct answer: any Redis failure falls through to PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ocean_shop.metrics import ShopMetrics

log = logging.getLogger(__name__)

# TimeoutError and ConnectionRefusedError are OSErrors; redis-py wraps most
# but not all socket failures in RedisError.
CACHE_ERRORS = (RedisError, OSError)
# Redis is local; a command slower than this is better answered by PostgreSQL
# than waited for, given a 200 ms p99 target.
REDIS_TIMEOUT = 0.25


def connect_redis(url: str) -> Redis:
    """A lazily connecting client: creating it never fails if Redis is down."""
    return Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
        # redis-py retries failed commands with backoff by default; for a
        # cache that only delays the PostgreSQL fallback.
        retry=Retry(NoBackoff(), 0),
    )


class ProductCache:
    def __init__(self, redis: Redis, ttl: int, metrics: ShopMetrics) -> None:
        self.redis = redis
        self.ttl = ttl
        self._hit = metrics.product_cache["hit"]
        self._miss = metrics.product_cache["miss"]
        self._error = metrics.product_cache["error"]
        # Log outage transitions only; one line per failed request would flood
        # the logs at the request rates this path is built for.
        self._failing = False

    async def get_or_load(
        self, product_id: int, load: Callable[[int], Awaitable[bytes | None]]
    ) -> bytes | None:
        """The product's JSON body from Redis, else from `load` (then cached).

        Unknown ids (load returns None) are not cached: ids are sequential, so
        an unknown id is a typo or a product about to be created, and a cached
        "absent" would hide a new product for a whole TTL with nothing yet to
        invalidate it. A primary-key miss in PostgreSQL is cheap enough.
        """
        key = f"shop:product:{product_id}"
        try:
            body = await self.redis.get(key)
        except CACHE_ERRORS as exc:
            self._error.inc()
            self._mark_failing(exc)
            return await load(product_id)
        if body is not None:
            self._hit.inc()
            self._mark_healthy()
            return body
        self._miss.inc()
        self._mark_healthy()
        body = await load(product_id)
        if body is not None:
            try:
                await self.redis.set(key, body, ex=self.ttl)
            except CACHE_ERRORS as exc:
                self._mark_failing(exc)
        return body

    def _mark_failing(self, exc: Exception) -> None:
        if not self._failing:
            self._failing = True
            log.warning(
                "Redis cache unavailable, reading PostgreSQL: %s: %s", type(exc).__name__, exc
            )

    def _mark_healthy(self) -> None:
        if self._failing:
            self._failing = False
            log.info("Redis cache available again")
