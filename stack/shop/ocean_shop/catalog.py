"""Product queries. Each is timed under a short name in shop_db_query_duration_seconds."""

from __future__ import annotations

from typing import Any

import orjson
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ocean_shop.metrics import ShopMetrics

PRODUCT_COLUMNS = """
    p.id, p.sku, p.name, p.description, c.name AS category,
    p.price_cents, p.stock, p.updated_at
FROM products p JOIN categories c ON c.id = p.category_id
"""
PRODUCT_BY_ID = "SELECT" + PRODUCT_COLUMNS + "WHERE p.id = %s"
PRODUCT_PAGE = "SELECT" + PRODUCT_COLUMNS + "ORDER BY p.id LIMIT %s OFFSET %s"
PRODUCT_COUNT = "SELECT count(*) FROM products"
# Separate statements per filter (instead of "%s IS NULL OR c.name = %s") keep
# each one simple enough for a good prepared plan.
CATEGORY_PAGE = "SELECT" + PRODUCT_COLUMNS + "WHERE c.name = %s ORDER BY p.id LIMIT %s OFFSET %s"
CATEGORY_COUNT = (
    "SELECT count(*) FROM products p JOIN categories c ON c.id = p.category_id WHERE c.name = %s"
)


class Catalog:
    def __init__(self, pool: AsyncConnectionPool, metrics: ShopMetrics) -> None:
        self.pool = pool
        self._time_by_id = metrics.db_query.labels("product_by_id").time
        self._time_list = metrics.db_query.labels("product_list").time
        self._time_count = metrics.db_query.labels("product_count").time

    async def product_json(self, product_id: int) -> bytes | None:
        """The product as a JSON body (the form the cache stores), or None."""
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            with self._time_by_id():
                await cur.execute(PRODUCT_BY_ID, (product_id,))
                row = await cur.fetchone()
        return None if row is None else orjson.dumps(row)

    async def list_products(
        self, *, category: str | None, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of products in id order, and the total matching the filter."""
        if category is None:
            page_query, page_args = PRODUCT_PAGE, (limit, offset)
            count_query, count_args = PRODUCT_COUNT, ()
        else:
            page_query, page_args = CATEGORY_PAGE, (category, limit, offset)
            count_query, count_args = CATEGORY_COUNT, (category,)
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            with self._time_list():
                await cur.execute(page_query, page_args)
                items = await cur.fetchall()
            with self._time_count():
                await cur.execute(count_query, count_args)
                counted = await cur.fetchone()
        return items, counted["count"] if counted else 0
