"""Database passwords never reach pg_stat_statements or the PostgreSQL log (issue 25,
Medium 9): `CREATE ROLE shop LOGIN PASSWORD '…'` used to stay in pg_stat_statements
with the shop's password in it, readable by anyone granted pg_read_all_stats.

Real PostgreSQL: a stack of its own with only what the shop's database needs
(PostgreSQL, the Redis master, shop-blue), brought up as `up --services shop-blue` does.
"""

from __future__ import annotations

import secrets as random
import time
from collections.abc import Iterator

import psycopg
import pytest

from ocean import pg_passwords, secrets
from ocean.procedures import stack as stack_procedures
from ocean.runtime.local import LocalRuntime
from ocean.services import BY_NAME
from tests.conftest import make_runtime

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    runtime = make_runtime(tmp_path_factory, "pgpw")
    try:
        list(stack_procedures.up(runtime, "shop-blue"))
        yield runtime
    finally:
        list(stack_procedures.down(runtime))


def superuser(runtime: LocalRuntime, **options) -> psycopg.Connection:
    """The superuser in the database that holds pg_stat_statements (``postgres``)."""
    return psycopg.connect(
        host=runtime.settings.host,
        port=runtime.settings.ports["postgres"],
        user="postgres",
        password=secrets.load_or_create(runtime.settings.secrets_file)["POSTGRES_PASSWORD"],
        dbname="postgres",
        autocommit=True,
        **options,
    )


def tracked_statements(runtime: LocalRuntime) -> list[str]:
    with superuser(runtime) as conn:
        return [query for (query,) in conn.execute("SELECT query FROM pg_stat_statements")]


def postgres_log(runtime: LocalRuntime, until: str) -> str:
    """PostgreSQL's log, read once it holds ``until`` (it reaches the file through
    supervisord a moment after the server writes it)."""
    path = runtime.log_path(BY_NAME["postgres"])
    deadline = time.monotonic() + 10
    while until not in (text := path.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"{until!r} never reached {path}"
        time.sleep(0.1)
    return text


def can_log_in(runtime: LocalRuntime, role: str, password: str) -> bool:
    try:
        with psycopg.connect(
            host=runtime.settings.host,
            port=runtime.settings.ports["postgres"],
            user=role,
            password=password,
            dbname="postgres",
            connect_timeout=5,
        ):
            return True
    except psycopg.OperationalError:
        return False


def test_bring_up_leaves_the_shop_password_nowhere(stack: LocalRuntime):
    password = secrets.load_or_create(stack.settings.secrets_file)["SHOP_DB_PASSWORD"]
    leaked = [query for query in tracked_statements(stack) if password in query]
    assert leaked == []
    marker = f"ocean-test-marker-{random.token_hex(4)}"
    with superuser(stack, options="-c log_statement=all") as conn:
        (stored,) = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'shop'"
        ).fetchone()
        conn.execute(f"SELECT '{marker}'")
    assert stored.startswith("SCRAM-SHA-256$4096:")
    assert password not in postgres_log(stack, until=marker)
    assert can_log_in(stack, "shop", password)  # the verifier is the password's


def test_a_password_set_with_every_statement_logged_is_still_not_logged(stack: LocalRuntime):
    """The worst case: a server logging every statement and every duration. The
    password (and even its verifier) is neither logged nor tracked, and it works."""
    role = f"ocean_test_{random.token_hex(4)}"
    first, second = random.token_urlsafe(24), random.token_urlsafe(24)
    marker = f"ocean-test-marker-{random.token_hex(4)}"
    loud = "-c log_statement=all -c log_min_duration_statement=0"
    try:
        with superuser(stack, options=loud) as conn:
            pg_passwords.set_password(conn, role, first, create=True)
            assert can_log_in(stack, role, first)
            pg_passwords.set_password(conn, role, second, create=False)
            (verifier,) = conn.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
            ).fetchone()
            conn.execute(f"SELECT '{marker}'")
        assert can_log_in(stack, role, second) and not can_log_in(stack, role, first)
        log = postgres_log(stack, until=marker)
        tracked = "\n".join(tracked_statements(stack))
        for secret in (first, second, verifier):
            assert secret not in log
            assert secret not in tracked
        assert f"ROLE {role}" not in log  # the statement itself went unlogged
    finally:
        with superuser(stack) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_an_older_toolkits_plaintext_entry_is_forgotten(stack: LocalRuntime):
    """Stacks brought up before the fix hold `CREATE ROLE shop … PASSWORD '<plain>'`
    in pg_stat_statements (which survives restarts): the next `up` drops it."""
    role = f"ocean_test_{random.token_hex(4)}"
    plain = random.token_urlsafe(24)
    try:
        with superuser(stack) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{plain}'")  # the old way
            assert any(plain in query for query in tracked_statements(stack))
            assert pg_passwords.forget_password_statements(conn) >= 1
        assert not any(plain in query for query in tracked_statements(stack))
    finally:
        with superuser(stack) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")
