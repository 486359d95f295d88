"""PostgreSQL connections: startup wait, migration lock and the request pool."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager

import psycopg
from prometheus_client import Histogram
from prometheus_client.context_managers import Timer
from psycopg_pool import AsyncConnectionPool

Params = Sequence[object] | Mapping[str, object]

log = logging.getLogger(__name__)

RETRY_INTERVAL = 0.1


async def wait_for_postgres(url: str, timeout: float) -> psycopg.AsyncConnection:
    """Connect, retrying every 0.1 s until `timeout` seconds have passed.

    PostgreSQL is often still starting when the shop does (same compose file,
    same CI job), so refusing the first connection is normal, not fatal.
    """
    started = time.monotonic()
    deadline = started + timeout
    attempts = 0
    while True:
        attempts += 1
        try:
            conn = await psycopg.AsyncConnection.connect(
                url,
                autocommit=True,
                # libpq counts whole seconds (and at least 2); a refused
                # connection returns at once, so this only bounds a silent host.
                connect_timeout=max(2, math.ceil(deadline - time.monotonic())),
            )
        except psycopg.OperationalError as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waited = time.monotonic() - started
                reason = " ".join(str(exc).split())  # libpq's message spans lines
                raise TimeoutError(
                    f"PostgreSQL not reachable after {waited:.1f} s ({attempts} attempts): {reason}"
                ) from exc
            await asyncio.sleep(min(RETRY_INTERVAL, remaining))
        else:
            if attempts > 1:
                log.info("PostgreSQL accepted a connection after %d attempts", attempts)
            return conn


@asynccontextmanager
async def advisory_lock(
    conn: psycopg.AsyncConnection, key: int, timeout: float
) -> AsyncIterator[None]:
    """Hold a session-level advisory lock, waiting at most `timeout` seconds.

    A blue and a green instance starting together both try to migrate and
    seed; the lock makes the second wait and then find nothing left to do.
    The lock dies with the session, so a crashed holder cannot wedge it.
    """
    # lock_timeout 0 would mean "wait forever", so never go below 1 ms.
    await conn.execute(f"SET lock_timeout = '{max(1, int(timeout * 1000))}ms'".encode())
    await conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


# A connection unused this long is closed (down to the pool's min_size).
MAX_IDLE_S = 10.0


async def open_pool(url: str, min_size: int, max_size: int, timeout: float) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(
        url,
        # Each open connection is a PostgreSQL backend (12-17 MB RSS); the pool grows
        # to max_size under load and shrinks back to min_size once idle. With
        # min_size 0 (the default) an idle shop holds no backend at all; the first
        # request after a quiet spell pays one connect (a few ms on loopback).
        min_size=min_size,
        max_size=max_size,
        max_idle=MAX_IDLE_S,
        # Requests wait this long for a free connection before failing,
        # rather than psycopg_pool's 30 s, which would outlive any client.
        timeout=5.0,
        name="shop",
        # Every request query is one statement (multi-statement work lives in
        # SQL functions), so autocommit saves the BEGIN/COMMIT round trips.
        kwargs={"autocommit": True},
        open=False,
    )
    await pool.open(wait=True, timeout=timeout)
    return pool


class NamedQueries:
    """Single-statement queries on the pool, each timed under its name in
    shop_db_query_duration_seconds (the names are resolved to metric children once)."""

    def __init__(self, pool: AsyncConnectionPool, histogram: Histogram, names: Iterable[str]):
        self.pool = pool
        self._timers = {name: histogram.labels(name).time for name in names}

    def timer(self, name: str) -> Timer:
        return self._timers[name]()

    async def fetchone(self, name: str, query: str, args: Params = ()) -> tuple | None:
        async with self.pool.connection() as conn:
            with self._timers[name]():
                cur = await conn.execute(query, args)
                return await cur.fetchone()

    async def fetchall(self, name: str, query: str, args: Params = ()) -> list[tuple]:
        async with self.pool.connection() as conn:
            with self._timers[name]():
                cur = await conn.execute(query, args)
                return await cur.fetchall()
