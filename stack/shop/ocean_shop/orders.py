"""Checkout and the order lifecycle: pending → paid → shipped, or pending → failed.

A checkout is, in order:
1. the cart, read from Redis, and the inventory locks of its products (token-owned)
   taken in the same round trip; an empty cart may be a retry after success: replayed;
2. (no key lookup: the key's UNIQUE constraint in step 4 detects a repeat, whose
   first outcome is then returned again; a different request under it is refused);
3. (a contended product: retried with backoff up to SHOP_LOCK_WAIT_MS, then 503);
4. ``place_order``: stock reserved and a pending order created in one
   PostgreSQL transaction; the key's UNIQUE constraint settles racing retries;
5. the locks released and the changed products' cache entries replaced;
6. the charge (simulated provider, same idempotency key);
7. ``mark_paid`` or ``fail_order`` (which gives the stock back), and the
   change published for the order's WebSocket feeds.

``dry_run`` rehearses steps 1, 4, 5 and 7 on a scratch product and undoes them all,
for the deploy's warm-up (see its docstring).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson
from psycopg import errors
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from ocean_shop.cache import CACHE_ERRORS, ProductCache
from ocean_shop.cart import Carts, cart_key
from ocean_shop.db import NamedQueries
from ocean_shop.events import OrderFeed
from ocean_shop.locks import HeldLocks, LockTimeout, ProductLocks
from ocean_shop.metrics import ShopMetrics
from ocean_shop.payments import SimulatedProvider

log = logging.getLogger(__name__)

# A pending order older than this lost its checkout (the process died between
# reserving and charging); the maintenance loop fails it and returns the stock.
ABANDONED_AFTER_S = 300
# Orders failed per query, and queries per pass at most: a crash during heavy load
# leaves more than one batch, and each must go within its 5 minutes, not at 100 a
# minute; the cap keeps one pass short however many there are.
ABANDONED_BATCH = 100
ABANDONED_BATCHES_PER_PASS = 20
STATUS_CODES = {"paid": 201, "shipped": 201, "failed": 402}

LOOKUP_BY_KEY = "SELECT id, request_hash, status FROM orders WHERE idempotency_key = %s"
PLACE = "SELECT * FROM place_order(%s, %s, %s, %s, %s)"
MARK_PAID = "SELECT mark_paid(%s, %s)"
FAIL = "SELECT * FROM fail_order(%s, %s, %s)"
SHIP = "SELECT ship_order(%s)"
DOCUMENT = "SELECT order_document(%s)"
CUSTOMER_ORDERS = """
SELECT (SELECT count(*) FROM orders WHERE customer_id = %(c)s),
       coalesce(string_agg(order_document(id), ',' ORDER BY id DESC), '')
FROM (SELECT id FROM orders WHERE customer_id = %(c)s ORDER BY id DESC
      LIMIT %(limit)s OFFSET %(offset)s) page
"""
# A dry run's scratch category, product (1 in stock) and customer; never committed.
DRY_RUN_SCRATCH = """
WITH category AS (
    INSERT INTO categories (name) VALUES ('ocean-dry-run-' || %(token)s) RETURNING id
), product AS (
    INSERT INTO products (sku, name, description, category_id, price_cents, stock)
    SELECT 'ocean-dry-run-' || %(token)s, 'Dry-run scratch product',
           'never committed: a checkout rehearsal', id, 100, 1
      FROM category
    RETURNING id
), customer AS (
    INSERT INTO customers (email, name)
    VALUES ('ocean-dry-run-' || %(token)s || '@example.invalid', 'Dry run')
    RETURNING id
)
SELECT product.id, customer.id FROM product, customer
"""
CUSTOMER_EXISTS = "SELECT EXISTS (SELECT 1 FROM customers WHERE id = %s)"
# Checkouts only (idempotency_key set): seeded history has none, took no stock and
# is not abandoned. Oldest first, from the partial index of migration 0003.
ABANDONED = """
SELECT id FROM orders
 WHERE status = 'pending' AND idempotency_key IS NOT NULL
   AND created_at < now() - make_interval(secs => %s)
 ORDER BY created_at, id LIMIT %s
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the API answers: a status code and a JSON body (as bytes)."""

    status: int
    body: bytes
    headers: dict[str, str] | None = None


def problem(status: int, detail: str, **extra: Any) -> Outcome:
    return Outcome(status, orjson.dumps({"detail": detail, **extra}))


def order_outcome(document: str) -> Outcome:
    status = orjson.loads(document)["status"]
    if status == "pending":
        return problem(
            409, "a checkout with this Idempotency-Key is still in progress; retry shortly"
        )
    return Outcome(STATUS_CODES[status], b'{"order":' + document.encode() + b"}")


def request_hash(cart_id: str, customer_id: int, payment_method: str) -> str:
    return hashlib.sha256(f"{cart_id}\0{customer_id}\0{payment_method}".encode()).hexdigest()


class Orders:
    def __init__(
        self,
        *,
        pool: AsyncConnectionPool,
        redis: Redis,
        carts: Carts,
        locks: ProductLocks,
        cache: ProductCache,
        provider: SimulatedProvider,
        feed: OrderFeed,
        metrics: ShopMetrics,
    ) -> None:
        self.redis = redis
        self.carts = carts
        self.locks = locks
        self.cache = cache
        self.provider = provider
        self.feed = feed
        self.metrics = metrics
        self.queries = NamedQueries(
            pool,
            metrics.db_query,
            (
                "order_by_key",
                "order_place",
                "order_mark_paid",
                "order_fail",
                "order_ship",
                "order_document",
                "customer_orders",
                "orders_abandoned",
            ),
        )
        self._fetch = self.queries.fetchone

    async def checkout(
        self, *, cart_id: str, customer_id: int, payment_method: str, idempotency_key: str
    ) -> Outcome:
        started = time.perf_counter()
        outcome, label = await self._checkout(cart_id, customer_id, payment_method, idempotency_key)
        self.metrics.checkout_duration[label].observe(time.perf_counter() - started)
        return outcome

    async def _checkout(
        self, cart_id: str, customer_id: int, method: str, key: str
    ) -> tuple[Outcome, str]:
        fingerprint = request_hash(cart_id, customer_id, method)
        try:
            lines, held = await self.locks.acquire_cart(cart_key(cart_id))
        except LockTimeout as exc:
            return problem(503, f"{exc}; retry shortly"), "lock_timeout"
        if held is None:
            # A retry after success finds its cart already cleared: replay it.
            replay = await self._replay(key, fingerprint)
            if replay is not None:
                return replay, "replayed"
            return problem(409, f"cart {cart_id} is empty or has expired"), "rejected"

        row = None
        try:
            # No lookup of the key first: the key's UNIQUE constraint makes
            # place_order fail for a repeated key, and only then is it replayed.
            # That keeps the common path to one round trip.
            row = await self._fetch(
                "order_place",
                PLACE,
                (customer_id, key, fingerprint, list(lines), list(lines.values())),
            )
        except errors.UniqueViolation:
            pass  # the key's first attempt placed its order: replayed below
        except errors.ForeignKeyViolation:
            return problem(404, f"customer {customer_id} not found"), "rejected"
        finally:
            # Shielded: a cancelled request must still release its locks and
            # replace the cache entries of what it committed.
            await asyncio.shield(self._after_place(held, row))

        if row is None:
            replay = await self._replay(key, fingerprint)
            return replay or problem(409, "checkout conflict; retry"), "replayed"
        order_id, total, short_ids, _, _ = row
        if order_id is None:
            return (
                problem(409, "not enough stock", short_product_ids=short_ids),
                "out_of_stock",
            )
        self.metrics.orders_created.inc()
        # Shielded: once stock is reserved, the request being cancelled (the
        # client hung up) must not leave the order pending with stock held.
        return await asyncio.shield(self._settle(order_id, total, method, key, cart_id))

    async def dry_run(self, cart_id: str) -> Outcome:
        """Rehearse a checkout and undo it: 200 with the order as it would have been.

        For the deploy's warm-up, so that a fresh instance has run the checkout's code,
        SQL functions and Redis scripts before live traffic does, without any business
        data: inside ONE PostgreSQL transaction that is always rolled back, a scratch
        category, product and customer are created; the product goes into ``cart_id``
        (a throwaway cart, which must hold nothing else: 409) through the cart script;
        the cart is read and its locks taken as a checkout does; ``place_order`` and
        ``mark_paid`` run. Then the rollback, the locks released and the cart line
        removed. No charge is attempted, no cache entry written, no event published,
        no order counted (only ``shop_checkout_dry_runs_total``). Real products are
        never locked. What remains: the ids the sequences handed out.
        """
        token = secrets.token_hex(8)
        product_id = None
        held = None
        try:
            async with (
                self.queries.pool.connection() as conn,
                conn.transaction(force_rollback=True),
            ):
                cur = await conn.execute(DRY_RUN_SCRATCH, {"token": token})
                product_id, customer_id = await cur.fetchone()
                cart = await self.carts.set_quantity(cart_id, product_id, 1)
                if list(cart.lines) != [product_id]:
                    return problem(409, f"a dry run needs an empty cart; {cart_id} is not")
                lines, held = await self.locks.acquire_cart(cart_key(cart_id))
                key = f"ocean-dry-run-{token}"
                fingerprint = request_hash(cart_id, customer_id, "card")
                with self.queries.timer("order_place"):
                    cur = await conn.execute(
                        PLACE, (customer_id, key, fingerprint, list(lines), list(lines.values()))
                    )
                    order_id = (await cur.fetchone())[0]
                await asyncio.shield(self._release(held))
                held = None
                if order_id is None:  # cannot happen: the product is ours alone
                    return problem(409, "dry run: the scratch product was short")
                with self.queries.timer("order_mark_paid"):
                    cur = await conn.execute(MARK_PAID, (order_id, f"dry-run-{token}"))
                    (document,) = await cur.fetchone()
        finally:
            await asyncio.shield(self._undo_dry_run(cart_id, product_id, held))
        self.metrics.checkout_dry_runs.inc()
        return Outcome(200, b'{"order":' + document.encode() + b',"dry_run":true}')

    async def _release(self, held: HeldLocks) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            self.locks.release(held, pipe)
            await pipe.execute()

    async def _undo_dry_run(self, cart_id: str, product_id: int | None, held: HeldLocks | None):
        """Release the dry run's locks (if still held) and remove its cart line."""
        if held is not None:
            await self._release(held)
        if product_id is not None:
            await self.carts.set_quantity(cart_id, product_id, 0)

    async def _after_place(self, held: HeldLocks, row: tuple | None) -> None:
        """Release the locks and tombstone the changed products: one round trip."""
        changed = [] if row is None or row[0] is None else list(zip(row[3], row[4], strict=True))
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                self.locks.release(held, pipe)
                self.cache.invalidate_on(pipe, changed)
                await pipe.execute()
        except CACHE_ERRORS as exc:
            # The locks expire by themselves (SHOP_LOCK_TTL_MS); cache entries by TTL.
            self.cache.invalidation_failed(changed, exc)

    async def _settle(
        self, order_id: int, total: int, method: str, key: str, cart_id: str
    ) -> tuple[Outcome, str]:
        charge = await self.provider.charge(amount_cents=total, method=method, idempotency_key=key)
        if charge.ok:
            (document,) = await self._fetch(
                "order_mark_paid", MARK_PAID, (order_id, charge.reference)
            ) or (None,)
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    self.feed.publish_on(pipe, order_id, "paid")
                    self.carts.clear(cart_id, pipe)
                    await pipe.execute()
            except CACHE_ERRORS as exc:
                log.warning(
                    "order %d paid; feed not told, cart %s kept: %s", order_id, cart_id, exc
                )
            return order_outcome(document or await self.document(order_id)), "paid"
        self.metrics.payment_failures[charge.reason].inc()
        document = await self.fail(order_id, charge.reason, payment_attempted=True)
        # The cart is kept: the shopper may retry with another payment method.
        return order_outcome(document or await self.document(order_id)), "payment_failed"

    async def _replay(self, key: str, fingerprint: str) -> Outcome | None:
        row = await self._fetch("order_by_key", LOOKUP_BY_KEY, (key,))
        if row is None:
            return None
        order_id, stored_hash, _ = row
        if stored_hash != fingerprint:
            return problem(422, "Idempotency-Key was already used for a different checkout request")
        return order_outcome(await self.document(order_id))

    async def fail(self, order_id: int, reason: str, *, payment_attempted: bool) -> str | None:
        """pending → failed with the stock given back; the document, or None if not pending."""
        row = await self._fetch("order_fail", FAIL, (order_id, reason, payment_attempted))
        if row is None:
            return None
        product_ids, versions, document = row
        await self.cache.invalidate(zip(product_ids or (), versions or (), strict=True))
        await self.feed.publish(order_id, "failed", reason)
        return document

    async def ship(self, order_id: int) -> Outcome:
        (document,) = await self._fetch("order_ship", SHIP, (order_id,)) or (None,)
        if document is None:
            current = await self.document(order_id)
            if current is None:
                return problem(404, f"order {order_id} not found")
            status = orjson.loads(current)["status"]
            return problem(409, f"order {order_id} is {status}; only a paid order can ship")
        await self.feed.publish(order_id, "shipped")
        return Outcome(200, b'{"order":' + document.encode() + b"}")

    async def document(self, order_id: int) -> str | None:
        row = await self._fetch("order_document", DOCUMENT, (order_id,))
        return None if row is None else row[0]

    async def history(self, customer_id: int, *, limit: int, offset: int) -> Outcome:
        exists = await self._fetch("customer_orders", CUSTOMER_EXISTS, (customer_id,))
        if not exists or not exists[0]:
            return problem(404, f"customer {customer_id} not found")
        total, items = await self._fetch(
            "customer_orders",
            CUSTOMER_ORDERS,
            {"c": customer_id, "limit": limit, "offset": offset},
        ) or (0, "")
        body = b'{"items":[%s],"total":%d,"limit":%d,"offset":%d}' % (
            items.encode(),
            total,
            limit,
            offset,
        )
        return Outcome(200, body)

    async def fail_abandoned(self) -> int:
        """Fail pending orders whose checkout died before settling, oldest first, and
        give their stock back; how many were failed."""
        failed = 0
        for _ in range(ABANDONED_BATCHES_PER_PASS):
            rows = await self.queries.fetchall(
                "orders_abandoned", ABANDONED, (ABANDONED_AFTER_S, ABANDONED_BATCH)
            )
            for (order_id,) in rows:
                if await self.fail(order_id, "abandoned", payment_attempted=False) is not None:
                    failed += 1
            if len(rows) < ABANDONED_BATCH:
                break
        if failed:
            log.warning("failed %d abandoned pending orders, stock returned", failed)
        return failed
