"""Deterministic demo catalogue, loaded once into an empty products table.

Deterministic so that benchmarks and tests can name products by id and know
their contents on every fresh database.
"""

from __future__ import annotations

import logging
import time

import psycopg

log = logging.getLogger(__name__)

CATEGORIES = ("diving", "sailing", "fishing", "navigation", "safety", "apparel")
ADJECTIVES = ("Tidal", "Coral", "Abyssal", "Reef", "Harbor", "Storm", "Pelagic")
NOUNS = ("Mask", "Fin", "Line", "Compass", "Buoy", "Jacket", "Lantern", "Rope", "Net")


def product_row(n: int, category_ids: list[int]) -> tuple[str, str, str, int, int, int]:
    """Product number n (1-based) as (sku, name, description, category_id, price, stock)."""
    name = f"{ADJECTIVES[n % len(ADJECTIVES)]} {NOUNS[n % len(NOUNS)]} {n}"
    return (
        f"SKU-{n:06d}",
        name,
        f"{name}: seeded demo product.",
        category_ids[n % len(category_ids)],
        99 + (n * 7919) % 49_900,  # 0.99 .. 499.98
        (n * 37) % 250,  # includes some out-of-stock items
    )


async def seed_products(conn: psycopg.AsyncConnection, count: int) -> int:
    """Insert `count` products if the table is empty; return how many were inserted.

    The caller must hold the migration advisory lock, or two instances could
    both see an empty table.
    """
    if count <= 0:
        return 0
    cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM products)")
    row = await cur.fetchone()
    if row is not None and row[0]:
        return 0
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO categories (name) SELECT unnest(%s::text[]) ON CONFLICT (name) DO NOTHING",
            (list(CATEGORIES),),
        )
        cur = await conn.execute(
            "SELECT id FROM categories WHERE name = ANY(%s) ORDER BY name", (list(CATEGORIES),)
        )
        category_ids = [category_id for (category_id,) in await cur.fetchall()]
        # COPY streams all rows in one round trip; 1000 rows load in a few ms.
        async with (
            conn.cursor() as copy_cur,
            copy_cur.copy(
                "COPY products (sku, name, description, category_id, price_cents, stock) FROM STDIN"
            ) as copy,
        ):
            for n in range(1, count + 1):
                await copy.write_row(product_row(n, category_ids))
    log.info("seeded %d products in %.0f ms", count, (time.perf_counter() - started) * 1000)
    return count


async def seed_customers(conn: psycopg.AsyncConnection, count: int) -> int:
    """Insert `count` demo customers (ids 1..count) if there are none; return how many.

    Same locking rule as seed_products: the caller holds the migration lock.
    """
    if count <= 0:
        return 0
    cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM customers)")
    row = await cur.fetchone()
    if row is not None and row[0]:
        return 0
    await conn.execute(
        "INSERT INTO customers (email, name)"
        " SELECT format('customer%%s@example.com', n), format('Customer %%s', n)"
        " FROM generate_series(1, %s) AS n ORDER BY n",
        (count,),
    )
    log.info("seeded %d customers", count)
    return count
