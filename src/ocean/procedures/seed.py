"""Bulk seed data: products, customers and orders, fast and repeatable (same seed, same rows).

The loader belongs to the shop (``python -m ocean_shop.bulk``): it knows the shop's
schema and runs where the shop runs. This procedure checks the input, runs it through
the runtime (the only code that spawns processes) and turns its output into Steps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from ocean import limits
from ocean.errors import OceanError
from ocean.model import Step, StepStatus
from ocean.runtime.base import Runtime

LOADER = "ocean_shop.bulk"


def seed(
    runtime: Runtime, products: int, customers: int, orders: int, seed: int = 1
) -> Iterator[Step]:
    """Add ``products``, ``customers`` and ``orders`` rows to the shop's database.

    Rows are added on top of what exists (ids continue); orders refer to the products
    and customers made by the same run, or to existing ones when that count is 0.
    """
    # Bounded (ocean/limits.py): an unbounded count once grew PostgreSQL by 14 GB.
    products = limits.count(products, "products", 0, limits.MAX_SEED_PRODUCTS)
    customers = limits.count(customers, "customers", 0, limits.MAX_SEED_CUSTOMERS)
    orders = limits.count(orders, "orders", 0, limits.MAX_SEED_ORDERS)
    seed = limits.count(seed, "seed", 0, limits.MAX_SEED)
    started = time.monotonic()
    args = [
        LOADER,
        f"--products={products}",
        f"--customers={customers}",
        f"--orders={orders}",
        f"--seed={seed}",
        "--json",
    ]
    summary: dict[str, Any] | None = None
    for step in runtime.shop_command(args):
        if step.name != LOADER:
            yield step  # the runtime's own steps (e.g. the shop database exists)
            continue
        if step.status != StepStatus.INFO:
            continue  # the loader exited 0: the summary says more
        result = _result(step.detail)
        if result is None:
            if step.detail and not step.detail.startswith("error: "):
                yield Step("seed", StepStatus.INFO, step.detail)
        elif not result.get("ok"):
            raise OceanError(result.get("error") or f"{LOADER} failed")
        else:
            summary = result
    if summary is None:
        raise OceanError(f"{LOADER} printed no summary")
    rate = summary["rows_per_second"] or 0
    tables = ", ".join(f"{table} {n:,}" for table, n in summary["rows"].items() if n)
    yield Step(
        "seed",
        detail=f"{summary['total_rows']:,} rows ({rate:,} rows/s), seed {seed}: {tables}",
        seconds=time.monotonic() - started,
        data=summary,
    )


def _result(line: str) -> dict[str, Any] | None:
    """The loader's final JSON object, or None for a progress line."""
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "ok" in value else None
