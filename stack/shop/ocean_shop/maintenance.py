"""Background upkeep of one instance: the low-stock gauge and abandoned orders.

One loop, re-armed after each pass (so a slow pass delays the next instead of
overlapping it). Every instance runs it; both jobs are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ocean_shop.catalog import Catalog
from ocean_shop.metrics import ShopMetrics
from ocean_shop.orders import Orders

log = logging.getLogger(__name__)

# Once a minute: often enough for a gauge behind an alert and for orders abandoned
# 5 minutes ago, and rare enough that an idle shop holds no database connection
# most of the time (the pool closes it after 10 s unused).
INTERVAL_S = 60.0
STOP_TIMEOUT_S = 2.0


class Maintenance:
    def __init__(
        self, catalog: Catalog, orders: Orders, metrics: ShopMetrics, low_stock_threshold: int
    ) -> None:
        self.catalog = catalog
        self.orders = orders
        self.metrics = metrics
        self.threshold = low_stock_threshold
        # Stopped by an event, not by cancellation alone: psycopg and its pool
        # may absorb a cancellation that lands mid-query, and the loop would
        # then sleep on as if nothing happened.
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="maintenance")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is None:
            return
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await self._task
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.metrics.low_stock_products.set(
                    await self.catalog.low_stock_count(self.threshold)
                )
                await self.orders.fail_abandoned()
            except Exception as exc:  # an outage must not end the loop; /readyz reports it
                log.warning("maintenance pass failed: %s: %s", type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(INTERVAL_S):
                    await self._stop.wait()
