"""Redis read-through cache for product JSON, replaced by version, never by age alone.

An entry is ``b"<version>\\n<body>"``: the exact response body, so a hit is
served without parsing or serialising anything. A writer (checkout, an admin
change) that commits a new version puts a *tombstone* ``b"<version>\\n"`` in its
place. Every write goes through one Lua script that refuses to replace a newer
version, so a reader that loaded the old row just before the writer committed
cannot put it back after the writer's tombstone: the classic read-through race
that a plain DEL leaves open.

Redis is an optimisation, never a dependency of a correct answer: any Redis
failure falls through to PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ocean_shop.metrics import ShopMetrics

log = logging.getLogger(__name__)

# TimeoutError and ConnectionRefusedError are OSErrors; redis-py wraps most
# but not all socket failures in RedisError.
CACHE_ERRORS = (RedisError, OSError)
# Redis is local; a cache read slower than this is better answered by PostgreSQL
# than waited for, given a 200 ms p99 target.
CACHE_TIMEOUT = 0.25
# Carts, locks and idempotency records live only in Redis: there is no fallback,
# so waiting out a stall (an AOF fsync on a busy disk, a cold connection on a
# loaded host) beats answering 503. Still well inside any client's timeout.
STORE_TIMEOUT = 1.0

# KEYS[1] entry; ARGV[1] version, ARGV[2] entry bytes, ARGV[3] ttl seconds.
# Refuse when the cached version is newer, or equal and already has a body
# (an equal-version tombstone is what a reader is meant to fill in).
SET_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  local v, rest = string.match(current, '^(%d+)\\n(.*)$')
  if v then
    v = tonumber(v)
    local new = tonumber(ARGV[1])
    if v > new or (v == new and #rest > 0) then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""

Loader = Callable[[int], Awaitable[tuple[int, bytes] | None]]


def connect_redis(url: str, timeout: float) -> Redis:
    """A lazily connecting client whose connects and commands give up after ``timeout``
    seconds: creating it never fails if Redis is down."""
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # redis-py retries failed commands with backoff by default; for a
        # cache that only delays the PostgreSQL fallback.
        retry=Retry(NoBackoff(), 0),
    )


def product_key(product_id: int) -> str:
    return f"shop:product:{product_id}"


class ProductCache:
    def __init__(self, redis: Redis, ttl: int, metrics: ShopMetrics) -> None:
        self.redis = redis
        self.ttl = ttl
        self._set_if_newer = redis.register_script(SET_IF_NEWER)
        self._hit = metrics.product_cache["hit"]
        self._miss = metrics.product_cache["miss"]
        self._error = metrics.product_cache["error"]
        # Log outage transitions only; one line per failed request would flood
        # the logs at the request rates this path is built for.
        self._failing = False

    async def get_or_load(self, product_id: int, load: Loader) -> bytes | None:
        """The product's JSON body from Redis, else from `load` (then cached).

        Unknown ids (load returns None) are not cached: ids are sequential, so
        an unknown id is a typo or a product about to be created, and a cached
        "absent" would hide a new product with nothing yet to invalidate it.
        A primary-key miss in PostgreSQL is cheap enough.
        """
        key = product_key(product_id)
        try:
            entry = await self.redis.get(key)
        except CACHE_ERRORS as exc:
            self._error.inc()
            self._mark_failing(exc)
            loaded = await load(product_id)
            return None if loaded is None else loaded[1]
        self._mark_healthy()
        if entry is not None:
            body = entry.partition(b"\n")[2]
            if body:
                self._hit.inc()
                return body
        self._miss.inc()
        loaded = await load(product_id)
        if loaded is None:
            return None
        version, body = loaded
        try:
            await self._set_if_newer(
                keys=[key], args=[version, b"%d\n%s" % (version, body), self.ttl]
            )
        except CACHE_ERRORS as exc:
            self._mark_failing(exc)
        return body

    async def exists(self, product_id: int, load: Loader) -> bool:
        """Whether the product exists. A tombstone answers too: it is only ever
        written for a product a writer has just changed."""
        try:
            if await self.redis.exists(product_key(product_id)):
                return True
        except CACHE_ERRORS as exc:
            self._mark_failing(exc)
        return await self.get_or_load(product_id, load) is not None

    async def invalidate(self, changed: Iterable[tuple[int, int]]) -> None:
        """Tombstone each (product id, new version) a writer has just committed.

        A failure is logged, not raised: the writer's transaction is already
        committed, and the entry will still expire within the TTL.
        """
        changed = list(changed)
        if not changed:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                self.invalidate_on(pipe, changed)
                await pipe.execute()
        except CACHE_ERRORS as exc:
            self.invalidation_failed(changed, exc)

    def invalidate_on(self, pipe: Pipeline, changed: Iterable[tuple[int, int]]) -> None:
        """Queue the tombstones on `pipe`, to share a round trip with other writes."""
        # EVAL, not the registered Script: redis-py checks a pipeline's Scripts
        # with an extra SCRIPT EXISTS round trip on every execute.
        for product_id, version in changed:
            pipe.eval(
                SET_IF_NEWER, 1, product_key(product_id), version, b"%d\n" % version, self.ttl
            )

    def invalidation_failed(self, changed: Iterable[tuple[int, int]], exc: Exception) -> None:
        self._mark_failing(exc)
        log.warning(
            "could not invalidate cached products %s (stale for up to %d s): %s",
            [product_id for product_id, _ in changed],
            self.ttl,
            exc,
        )

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
