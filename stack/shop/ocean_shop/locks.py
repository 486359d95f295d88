"""Token-owned Redis locks on products, taken all at once, released by compare-and-delete.

PostgreSQL's row locks (``place_order`` takes them FOR UPDATE) and the
``CHECK (stock >= 0)`` are what make overselling impossible. The Redis lock
sits in front of them for a different reason: checkouts contending for a hot
product queue here, in the event loop, instead of each holding a pooled
PostgreSQL connection while it waits on a row lock, which would starve every
other request of connections.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from ocean_shop.metrics import ShopMetrics

# All or nothing, in one round trip: holding some keys while waiting for the
# others is how lock-ordering deadlocks start.
ACQUIRE_ALL = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
end
return 1
"""
# Delete only keys this token still owns: a holder that outlived its TTL must
# not release a lock that another checkout has since taken.
RELEASE_OWNED = """
local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    released = released + 1
  end
end
return released
"""
# The first attempt of a checkout reads its cart and locks the cart's products in
# the same round trip. It derives the lock keys from the cart, which only works on
# a single Redis primary (ours): Redis Cluster wants every key declared up front.
# Retries after contention use ACQUIRE_ALL with the keys declared.
# KEYS[1] cart; ARGV[1] token, ARGV[2] ttl ms, ARGV[3] lock key prefix.
# Returns {status, field, value, ...}: 1 locked, -1 contended, 0 empty cart.
READ_CART_AND_ACQUIRE = """
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return {0} end
local locks = {}
for i = 1, #flat, 2 do locks[#locks + 1] = ARGV[3] .. flat[i] end
local status = 1
for _, key in ipairs(locks) do
  if redis.call('EXISTS', key) == 1 then status = -1 break end
end
if status == 1 then
  for _, key in ipairs(locks) do redis.call('SET', key, ARGV[1], 'PX', ARGV[2]) end
end
table.insert(flat, 1, status)
return flat
"""
LOCK_PREFIX = "shop:lock:product:"
FIRST_BACKOFF = 0.001
MAX_BACKOFF = 0.02


class LockTimeout(Exception):
    """The products stayed locked by other checkouts for the whole wait."""


def lock_key(product_id: int) -> str:
    return f"{LOCK_PREFIX}{product_id}"


@dataclass(frozen=True, slots=True)
class HeldLocks:
    keys: list[str]
    token: str
    acquired_at: float


class ProductLocks:
    def __init__(self, redis: Redis, *, ttl_ms: int, wait_ms: int, metrics: ShopMetrics) -> None:
        self.ttl_ms = ttl_ms
        self.wait = wait_ms / 1000
        self._acquire = redis.register_script(ACQUIRE_ALL)
        self._read_cart_and_acquire = redis.register_script(READ_CART_AND_ACQUIRE)
        self._metrics = metrics

    async def acquire_cart(self, cart_key: str) -> tuple[dict[int, int], HeldLocks | None]:
        """Read the cart and lock its products, waiting up to the configured time.

        Returns the cart's lines (product id → quantity, in id order) and the held
        locks; ({}, None) for an empty cart. Raises LockTimeout when other checkouts
        keep any of the products locked that long.
        """
        token = secrets.token_hex(16)
        started = time.perf_counter()
        reply = await self._read_cart_and_acquire(
            keys=[cart_key], args=[token, self.ttl_ms, LOCK_PREFIX]
        )
        status, flat = reply[0], reply[1:]
        if status == 0:
            return {}, None
        lines = dict(sorted((int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)))
        keys = [lock_key(product_id) for product_id in lines]
        if status != 1:
            self._metrics.lock_contention.inc()
            await self._wait_for(keys, token, started)
        acquired = time.perf_counter()
        self._metrics.lock_wait.observe(acquired - started)
        return lines, HeldLocks(keys, token, acquired)

    async def _wait_for(self, keys: list[str], token: str, started: float) -> None:
        """Retry with jittered backoff until the keys are ours or the wait is over."""
        deadline = started + self.wait
        backoff = FIRST_BACKOFF
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                self._metrics.lock_timeouts.inc()
                self._metrics.lock_wait.observe(time.perf_counter() - started)
                raise LockTimeout(f"products locked by other checkouts for {self.wait:g} s")
            # Jitter keeps waiters from retrying in lockstep.
            # B311: retry jitter, not a secret
            await asyncio.sleep(min(remaining, backoff * random.uniform(0.5, 1.5)))  # nosec B311
            backoff = min(backoff * 2, MAX_BACKOFF)
            if await self._acquire(keys=keys, args=[token, self.ttl_ms]):
                return

    def release(self, held: HeldLocks, pipe: Pipeline) -> None:
        """Queue the release on `pipe`, so it shares a round trip with the writes after it."""
        # EVAL, not the registered Script: redis-py checks a pipeline's Scripts
        # with an extra SCRIPT EXISTS round trip on every execute.
        pipe.eval(RELEASE_OWNED, len(held.keys), *held.keys, held.token)
        self._metrics.lock_hold.observe(time.perf_counter() - held.acquired_at)
