"""Fixtures that start real services (PostgreSQL, Redis, nginx, Prometheus …) in a
temporary state dir on a free port base, through the same local runtime users run."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
import redis
from psycopg import sql

from ocean import secrets
from ocean.config import PortPlan, Settings
from ocean.procedures import stack as stack_procedures
from ocean.runtime.local import LocalRuntime
from tests.compose_support import docker_engine
from tests.helpers import free_port_base

__all__ = ["docker_engine"]  # the compose tests' session engine (tests/compose_support.py)


def make_runtime(tmp_path_factory: pytest.TempPathFactory, name: str) -> LocalRuntime:
    settings = Settings(state_dir=tmp_path_factory.mktemp(name), ports=PortPlan(free_port_base()))
    return LocalRuntime(settings)


@contextmanager
def own_stack(
    tmp_path_factory: pytest.TempPathFactory, name: str, wait_targets: bool = True
) -> Iterator[LocalRuntime]:
    """A whole stack for one test module (tests that change it: deploys, restores…).

    Its alert inbox (a stack service) receives Alertmanager's notifications, so the
    alerts those tests provoke notify successfully (AlertmanagerNotificationsFailing
    would page otherwise).
    """
    runtime = make_runtime(tmp_path_factory, name)
    try:
        list(stack_procedures.up(runtime, None, True, wait_targets))
        yield runtime
    finally:
        list(stack_procedures.down(runtime))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    """A whole stack (every default service, all Prometheus targets up) for the session."""
    runtime = make_runtime(tmp_path_factory, "stack")
    try:
        list(stack_procedures.up(runtime))
        yield runtime
    finally:
        list(stack_procedures.down(runtime))


@pytest.fixture(scope="session")
def pg_superuser(stack: LocalRuntime) -> dict:
    password = secrets.load_or_create(stack.settings.secrets_file)["POSTGRES_PASSWORD"]
    return {
        "host": stack.settings.host,
        "port": stack.settings.ports["postgres"],
        "user": "postgres",
        "password": password,
    }


_databases = itertools.count()


@pytest.fixture(scope="session")
def database_url(pg_superuser: dict) -> str:
    """An empty database of its own in the session stack's PostgreSQL."""
    name = f"test_{next(_databases)}"
    with psycopg.connect(**pg_superuser, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    p = pg_superuser
    return f"postgresql://{p['user']}:{p['password']}@{p['host']}:{p['port']}/{name}"


@pytest.fixture(scope="session")
def redis_url(stack: LocalRuntime) -> str:
    """Database 1 of the session stack's Redis master (the shop itself uses 0), emptied."""
    url = stack.redis_url(db=1)  # the toolkit's ACL user, with its password
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url
