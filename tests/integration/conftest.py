"""Fixtures for running the shop app in-process against the session stack's
real PostgreSQL and Redis (see tests/conftest.py for the stack itself).

Each test runs the shop in a schema of its own (via search_path), so
migrations and seeding start from nothing whatever ran before, and the
shop's keys in the test Redis database are deleted before and after.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest
from ocean_shop.config import Settings
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from redis import Redis

from tests.integration.shop_support import forget_shop_keys, serve


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def schema_url(database_url: str) -> Iterator[str]:
    """A conninfo whose search_path is a new, empty schema (dropped afterwards)."""
    schema = f"shop_test_{secrets.token_hex(4)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    params = conninfo_to_dict(database_url)
    params["options"] = f"{params.get('options', '')} -c search_path={schema}".strip()
    yield make_conninfo(**params)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    forget_shop_keys(client)
    yield client
    forget_shop_keys(client)
    client.close()


@pytest.fixture
def settings(schema_url: str, redis_url: str, redis_client: Redis) -> Settings:
    return Settings(database_url=schema_url, redis_url=redis_url, startup_timeout=10)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings) as client:
        yield client
