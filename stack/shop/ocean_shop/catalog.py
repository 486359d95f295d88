"""Catalogue queries. Each is timed under a short name in shop_db_query_duration_seconds.

Product JSON is built by PostgreSQL (the ``product_documents`` view), so a
page, a single product and a cache entry carry the same bytes for a product,
and Python never decodes or re-encodes them.
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from ocean_shop.db import NamedQueries
from ocean_shop.metrics import ShopMetrics

DOCUMENT_BY_ID = "SELECT version, body FROM product_documents WHERE id = %s"
# A page is the documents joined by commas inside one string_agg: the list
# endpoint wraps it in [ ] and sends it as it is.
PAGE = """
SELECT coalesce(string_agg(body, ',' ORDER BY id), '') FROM (
    SELECT id, body FROM product_documents {where} ORDER BY id LIMIT %s OFFSET %s
) page
"""
ALL_PAGE = PAGE.format(where="")
CATEGORY_PAGE = PAGE.format(where="WHERE category = %s")
COUNT = "SELECT count(*) FROM products"
CATEGORY_COUNT = (
    "SELECT count(*) FROM products p JOIN categories c ON c.id = p.category_id WHERE c.name = %s"
)
# websearch_to_tsquery never raises on user input (unbalanced quotes, stray
# operators): it is the parser meant for a search box.
SEARCH_PAGE = """
WITH q AS (SELECT websearch_to_tsquery('english', %s) AS query)
SELECT coalesce(string_agg(body, ',' ORDER BY rank DESC, id), ''), max(total) FROM (
    SELECT d.id, d.body, ts_rank(d.search, q.query) AS rank, count(*) OVER () AS total
    FROM product_documents d, q
    WHERE d.search @@ q.query
    ORDER BY rank DESC, d.id
    LIMIT %s OFFSET %s
) hits
"""
SEARCH_COUNT = """
SELECT count(*) FROM products WHERE search @@ websearch_to_tsquery('english', %s)
"""
CATEGORIES = """
SELECT coalesce(json_agg(json_build_object('name', name, 'product_count', n) ORDER BY name),
                '[]')::text
FROM (SELECT c.name, count(p.id) AS n
      FROM categories c LEFT JOIN products p ON p.category_id = c.id GROUP BY c.name) counted
"""
# Admin changes bump the version like checkout does, so the cache drops the old body.
UPDATE_PRODUCT = """
UPDATE products
   SET stock = coalesce(%(stock)s, stock),
       price_cents = coalesce(%(price_cents)s, price_cents),
       version = version + 1, updated_at = now()
 WHERE id = %(id)s
RETURNING version
"""
LOW_STOCK = "SELECT count(*) FROM products WHERE stock < %s"


class Catalog:
    def __init__(self, pool: AsyncConnectionPool, metrics: ShopMetrics) -> None:
        self.pool = pool
        self.queries = NamedQueries(
            pool,
            metrics.db_query,
            (
                "product_by_id",
                "product_list",
                "product_count",
                "product_search",
                "category_list",
                "product_update",
                "low_stock_count",
            ),
        )
        self._one = self.queries.fetchone

    async def product_document(self, product_id: int) -> tuple[int, bytes] | None:
        """(version, JSON body) of a product, the form the cache stores; None if unknown."""
        row = await self._one("product_by_id", DOCUMENT_BY_ID, (product_id,))
        return None if row is None else (row[0], row[1].encode())

    async def page(self, *, category: str | None, limit: int, offset: int) -> tuple[bytes, int]:
        """One page of product documents in id order (a JSON array), and the total."""
        if category is None:
            page_query, page_args = ALL_PAGE, (limit, offset)
            count_query, count_args = COUNT, ()
        else:
            page_query, page_args = CATEGORY_PAGE, (category, limit, offset)
            count_query, count_args = CATEGORY_COUNT, (category,)
        async with self.pool.connection() as conn:
            with self.queries.timer("product_list"):
                cur = await conn.execute(page_query, page_args)
                (items,) = await cur.fetchone() or ("",)
            with self.queries.timer("product_count"):
                cur = await conn.execute(count_query, count_args)
                (total,) = await cur.fetchone() or (0,)
        return b"[" + items.encode() + b"]", total

    async def search(self, query: str, *, limit: int, offset: int) -> tuple[bytes, int]:
        """Products matching `query` (web-search syntax), best match first, and the total."""
        async with self.pool.connection() as conn:
            with self.queries.timer("product_search"):
                cur = await conn.execute(SEARCH_PAGE, (query, limit, offset))
                items, total = await cur.fetchone() or ("", None)
                if total is None:  # an empty page: past the end, or no match at all
                    cur = await conn.execute(SEARCH_COUNT, (query,))
                    (total,) = await cur.fetchone() or (0,)
        return b"[" + items.encode() + b"]", total

    async def categories(self) -> bytes:
        row = await self._one("category_list", CATEGORIES)
        return row[0].encode() if row else b"[]"

    async def update_product(
        self, product_id: int, *, stock: int | None, price_cents: int | None
    ) -> int | None:
        """Apply an admin change; the new version, or None if the product does not exist."""
        row = await self._one(
            "product_update",
            UPDATE_PRODUCT,
            {"id": product_id, "stock": stock, "price_cents": price_cents},
        )
        return None if row is None else row[0]

    async def low_stock_count(self, threshold: int) -> int:
        row = await self._one("low_stock_count", LOW_STOCK, (threshold,))
        return row[0] if row else 0
