"""Carts in Redis: one hash per cart (product id → quantity), expiring when idle.

A cart is the one piece of shop state that lives only in Redis: losing it
costs a shopper a re-add, never an order or a charge. Each operation is one
round trip: a Lua script changes the cart and returns its new contents.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from ocean_shop.cache import product_key

MAX_LINES = 50
Known = Callable[[int], Awaitable[bool]]

# KEYS[1] cart, KEYS[2] the product's cache entry; ARGV[1] product id, ARGV[2]
# quantity (0 removes), ARGV[3] ttl, ARGV[4] max lines, ARGV[5] "1" to require the
# product's cache entry (a tombstone counts: it exists only for real products).
# Returns {status, ttl, field, value, ...}: status 1 done, 0 refused by the line
# limit, -1 product not in the cache (nothing changed: the caller checks PostgreSQL).
SET_LINE = """
local key, product, quantity = KEYS[1], ARGV[1], tonumber(ARGV[2])
if quantity == 0 then
  redis.call('HDEL', key, product)
else
  if ARGV[5] == '1' and redis.call('EXISTS', KEYS[2]) == 0 then return {-1} end
  if redis.call('HEXISTS', key, product) == 0
     and redis.call('HLEN', key) >= tonumber(ARGV[4]) then
    return {0}
  end
  redis.call('HSET', key, product, quantity)
  redis.call('EXPIRE', key, ARGV[3])
end
local result = {1, redis.call('TTL', key)}
for _, v in ipairs(redis.call('HGETALL', key)) do table.insert(result, v) end
return result
"""
READ = """
local result = {1, redis.call('TTL', KEYS[1])}
for _, v in ipairs(redis.call('HGETALL', KEYS[1])) do table.insert(result, v) end
return result
"""


class CartFull(Exception):
    pass


class UnknownProduct(Exception):
    pass


@dataclass(frozen=True, slots=True)
class CartView:
    lines: dict[int, int]  # product id → quantity, in product id order
    expires_in: int | None  # seconds; None for an empty (absent) cart


def cart_key(cart_id: str) -> str:
    return f"shop:cart:{cart_id}"


def _view(reply: list) -> CartView:
    ttl, flat = int(reply[1]), reply[2:]
    lines = dict(sorted((int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)))
    return CartView(lines, ttl if lines and ttl >= 0 else None)


class Carts:
    def __init__(self, redis: Redis, ttl: int) -> None:
        self.redis = redis
        self.ttl = ttl
        self._set_line = redis.register_script(SET_LINE)
        self._read = redis.register_script(READ)

    async def set_quantity(
        self, cart_id: str, product_id: int, quantity: int, product_known: Known | None = None
    ) -> CartView:
        """Set a line (quantity 0 removes it), renewing the cart's TTL; the cart after.

        A product is added only if it exists: its cache entry says so in the same
        round trip; without one, `product_known` asks PostgreSQL (and fills the
        cache). Raises UnknownProduct or CartFull.
        """
        keys = [cart_key(cart_id), product_key(product_id)]
        check = quantity > 0 and product_known is not None
        args = [product_id, quantity, self.ttl, MAX_LINES, 1 if check else 0]
        reply = await self._set_line(keys=keys, args=args)
        if reply[0] == -1 and product_known is not None:
            if not await product_known(product_id):
                raise UnknownProduct(f"product {product_id} not found")
            args[-1] = 0
            reply = await self._set_line(keys=keys, args=args)
        if reply[0] == 0:
            raise CartFull(f"a cart holds at most {MAX_LINES} different products")
        return _view(reply)

    async def view(self, cart_id: str) -> CartView:
        return _view(await self._read(keys=[cart_key(cart_id)]))

    def clear(self, cart_id: str, pipe) -> None:
        """Queue the cart's deletion on `pipe` (it goes with the order's other writes)."""
        pipe.delete(cart_key(cart_id))
