"""Bulk seed data (ocean_shop.bulk, `invoke seed`) against the session stack's PostgreSQL.

Each test loads into databases of its own (created here, dropped afterwards), so the
checksums compare whole databases that started out identical.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from ocean_shop.bulk import BulkError, Plan
from ocean_shop.bulk import seed as bulk_seed
from ocean_shop.migrate import apply_migrations
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ocean.procedures.seed import seed as seed_procedure
from ocean.runtime.local import LocalRuntime
from tests.helpers import free_port_base, run_cli

pytestmark = pytest.mark.integration

SMALL = Plan(products=40, customers=150, orders=1500, seed=7)
# Primary key of every table the loader writes: the order rows are compared in.
KEYS = {
    "categories": "id",
    "products": "id",
    "customers": "id",
    "orders": "id",
    "order_items": "order_id, product_id",
    "order_events": "id",
    "payments": "id",
}


@pytest.fixture
def new_database(pg_superuser: dict) -> Iterator[Callable[[], str]]:
    """A factory of empty databases (URLs); all are dropped at the end of the test."""
    names: list[str] = []

    def make() -> str:
        name = f"seed_{secrets.token_hex(4)}"
        with psycopg.connect(**pg_superuser, dbname="postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        names.append(name)
        return make_conninfo(**pg_superuser, dbname=name)

    yield make
    with psycopg.connect(**pg_superuser, dbname="postgres", autocommit=True) as conn:
        for name in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def load(url: str, plan: Plan) -> dict:
    return asyncio.run(bulk_seed(url, plan)).as_dict()


def checksums(url: str) -> dict[str, tuple[int, str]]:
    """Row count and md5 of every row's text, in primary-key order, per table."""
    out = {}
    with psycopg.connect(url) as conn:
        for table, key in KEYS.items():
            count, digest = conn.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {}), ''))"
                    " FROM {} t"
                ).format(sql.SQL(key), sql.Identifier(table))
            ).fetchone()
            out[table] = (count, digest)
    return out


SCHEMA = """
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' '
       || is_nullable || ' ' || coalesce(column_default, '') || ' '
       || coalesce(generation_expression, '')
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' '
       || pg_get_constraintdef(oid) || ' validated=' || convalidated
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'triggers ' || tgrelid::regclass || ' ' || count(*) || ' internal=' || tgisinternal
  FROM pg_trigger GROUP BY tgrelid, tgisinternal
UNION ALL
SELECT 'sequence ' || sequencename || ' ' || data_type || ' ' || increment_by
  FROM pg_sequences WHERE schemaname = 'public'
UNION ALL
SELECT 'function ' || pg_get_functiondef(oid)
  FROM pg_proc WHERE pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'view ' || viewname || ' ' || definition FROM pg_views WHERE schemaname = 'public'
ORDER BY 1
"""


def schema(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = [row[0] for row in conn.execute(SCHEMA).fetchall()]
    # Internal (foreign-key) trigger counts belong to tables, whose regclass text is
    # the same in any database: the list is comparable as it is.
    return rows


def migrate_only(url: str) -> None:
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await apply_migrations(conn)

    asyncio.run(run())


def scalar(url: str, query: str, params: tuple = ()) -> object:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchone()[0]


def test_same_seed_same_rows_other_seed_other_rows(new_database):
    first, second, other = new_database(), new_database(), new_database()
    load(first, SMALL)
    load(second, SMALL)
    load(other, Plan(SMALL.products, SMALL.customers, SMALL.orders, seed=SMALL.seed + 1))
    same = checksums(first)
    assert same == checksums(second)
    assert same["orders"][0] == SMALL.orders and same["products"][0] == SMALL.products
    different = checksums(other)
    for table in ("products", "customers", "orders", "order_items"):
        assert different[table][1] != same[table][1], table


def test_schema_is_exactly_the_migrated_one(new_database):
    migrated, seeded = new_database(), new_database()
    migrate_only(migrated)
    assert load(seeded, SMALL)["foreign_keys"] == "re-created"
    expected = schema(migrated)
    assert any(line.startswith("constraint order_items") for line in expected)
    assert schema(seeded) == expected
    # Big enough to drop the keys again, then so small that each row is checked.
    assert load(seeded, Plan(3, 0, SMALL.orders, seed=2))["foreign_keys"] == "re-created"
    assert schema(seeded) == expected
    assert load(seeded, Plan(3, 0, 100, seed=3))["foreign_keys"] == "checked per row"
    assert schema(seeded) == expected


def test_data_is_consistent(new_database):
    url = new_database()
    load(url, SMALL)
    checks = {
        "total is not the sum of its items": """
            SELECT count(*) FROM orders o
             WHERE o.total_cents <> (SELECT sum(i.quantity::bigint * i.price_cents)
                                       FROM order_items i WHERE i.order_id = o.id)""",
        "order without 1-3 items": """
            SELECT count(*) FROM orders o
             WHERE (SELECT count(*) FROM order_items i WHERE i.order_id = o.id)
                   NOT BETWEEN 1 AND 3""",
        "item price is not its product's": """
            SELECT count(*) FROM order_items i JOIN products p ON p.id = i.product_id
             WHERE i.price_cents <> p.price_cents""",
        "negative stock": "SELECT count(*) FROM products WHERE stock < 0",
        "order without exactly one event for its status": """
            SELECT count(*) FROM orders o
             WHERE (SELECT count(*) FROM order_events e
                     WHERE e.order_id = o.id AND e.status = o.status) <> 1
                OR (SELECT count(*) FROM order_events e WHERE e.order_id = o.id) <> 1""",
        "payment missing or wrong for a paid/shipped order": """
            SELECT count(*) FROM orders o LEFT JOIN payments p ON p.order_id = o.id
             WHERE (o.status IN ('paid', 'shipped'))
                   <> (p.id IS NOT NULL AND p.amount_cents = o.total_cents
                       AND p.status = 'succeeded')""",
        "failed order without a reason": """
            SELECT count(*) FROM orders
             WHERE (status = 'failed') <> (failure_reason IS NOT NULL)""",
        "seeded order with an idempotency key": """
            SELECT count(*) FROM orders WHERE idempotency_key IS NOT NULL""",
    }
    failures = {name: n for name, query in checks.items() if (n := scalar(url, query))}
    assert failures == {}
    with psycopg.connect(url) as conn:
        shares = dict(conn.execute("SELECT status, count(*) FROM orders GROUP BY 1").fetchall())
    assert set(shares) == {"pending", "paid", "shipped", "failed"}
    assert shares["shipped"] > shares["paid"] > shares["failed"] > shares["pending"]


def test_the_shop_can_insert_afterwards(new_database):
    url = new_database()
    load(url, SMALL)
    tables = ("products", "customers", "orders", "order_events", "payments")
    with psycopg.connect(url, autocommit=True) as conn:

        def one(query: str, params: tuple = ()) -> tuple:
            return conn.execute(query, params).fetchone()

        top = {t: one(f"SELECT max(id) FROM {t}")[0] for t in tables}
        product = one(
            "INSERT INTO products (sku, name, category_id, price_cents, stock)"
            " VALUES ('NEW-1', 'New', (SELECT min(id) FROM categories), 500, 10) RETURNING id"
        )[0]
        customer = one(
            "INSERT INTO customers (email, name) VALUES ('new@example.test', 'New') RETURNING id"
        )[0]
        assert (product, customer) == (top["products"] + 1, top["customers"] + 1)
        seeded, price = one("SELECT id, price_cents FROM products WHERE stock > 0 LIMIT 1")
        # The shop's own checkout path: order, items, event and stock in one call.
        order, total, short = one(
            "SELECT order_id, total_cents, short_ids FROM place_order(%s, 'key-1', 'hash',"
            " ARRAY[%s, %s]::bigint[], ARRAY[2, 1])",
            (customer, product, seeded),
        )[:3]
        assert short == [] and order == top["orders"] + 1 and total == 2 * 500 + price
        event = one("SELECT max(id) FROM order_events WHERE order_id = %s", (order,))[0]
        assert event == top["order_events"] + 1
        payment = one(
            "INSERT INTO payments (order_id, amount_cents, status) VALUES (%s, %s, 'succeeded')"
            " RETURNING id",
            (order, total),
        )[0]
        assert payment == top["payments"] + 1


def test_seed_adds_on_top_and_reuses_what_exists(new_database):
    url = new_database()
    first = load(url, SMALL)
    assert first["first_ids"]["orders"] == 1
    # No new products or customers: the orders use the existing ones.
    second = load(url, Plan(products=0, customers=0, orders=200, seed=1))
    assert second["rows"]["products"] == second["rows"]["customers"] == 0
    assert second["first_ids"]["orders"] == SMALL.orders + 1
    assert scalar(url, "SELECT count(*) FROM orders") == SMALL.orders + 200
    # New products: that run's orders use only them.
    third = load(url, Plan(products=5, customers=0, orders=300, seed=1))
    new_first = third["first_ids"]["products"]
    assert new_first == SMALL.products + 1
    assert (
        scalar(
            url,
            "SELECT count(*) FROM order_items WHERE order_id >= %s AND product_id < %s",
            (third["first_ids"]["orders"], new_first),
        )
        == 0
    )
    assert scalar(url, "SELECT count(DISTINCT email) FROM customers") == SMALL.customers


def test_orders_without_products_fail_clearly_and_change_nothing(new_database):
    url = new_database()
    with pytest.raises(BulkError, match="no products"):
        load(url, Plan(products=0, customers=10, orders=10, seed=1))
    assert scalar(url, "SELECT count(*) FROM customers") == 0
    load(url, Plan(products=2, customers=0, orders=0, seed=1))
    with pytest.raises(BulkError, match="no customers"):
        load(url, Plan(products=0, customers=0, orders=10, seed=1))


def test_loader_command_line_reads_the_url_from_the_environment(new_database):
    url = new_database()
    env = {**os.environ, "SHOP_DATABASE_URL": url}
    command = [sys.executable, "-m", "ocean_shop.bulk", "--products=3", "--customers=4"]
    done = subprocess.run(
        [*command, "--orders=20", "--json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] and result["rows"]["orders"] == 20
    assert "orders 20/20" in done.stderr  # progress goes to stderr
    failed = subprocess.run(
        [*command[:3], "--orders=-1"], capture_output=True, text=True, env=env, timeout=60
    )
    assert failed.returncode == 2 and "must be 0 or more" in failed.stderr


def test_seed_procedure_through_the_runtime(stack: LocalRuntime):
    """The shop's own database, its own login (the URL only in the environment)."""
    steps = list(seed_procedure(stack, products=2, customers=3, orders=30, seed=5))
    summary = steps[-1]
    assert summary.name == "seed" and summary.data["ok"] is True
    assert summary.data["rows"]["orders"] == 30
    assert any(s.detail.startswith("orders 30/30") for s in steps)


def test_task_rejects_bad_input_in_one_line(tmp_path: Path):
    done = run_cli("seed", "--orders", "-5", state_dir=tmp_path, port_base=free_port_base())
    assert done.returncode == 1
    assert done.stderr.strip() == "error: --orders must be 0 or more, not -5"


def test_task_refuses_when_postgres_is_not_running(tmp_path: Path):
    done = run_cli("seed", "--orders", "5", state_dir=tmp_path, port_base=free_port_base())
    assert done.returncode == 1
    assert done.stderr.strip() == "error: postgres is not running: start the stack with ./ocean up"
