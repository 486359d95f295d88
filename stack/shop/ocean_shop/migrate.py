"""Apply the SQL files in ocean_shop/migrations/ in order, each exactly once."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

log = logging.getLogger(__name__)

FILENAME = re.compile(r"(\d{4})_(\w+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: bytes


def load_migrations() -> list[Migration]:
    migrations = []
    for entry in (resources.files("ocean_shop") / "migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = FILENAME.fullmatch(entry.name)
        if match is None:
            raise ValueError(f"migration file {entry.name!r} is not named NNNN_name.sql")
        migrations.append(Migration(int(match[1]), match[2], entry.read_bytes()))
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {versions}")
    return migrations


async def apply_migrations(conn: psycopg.AsyncConnection) -> list[Migration]:
    """Apply pending migrations; return those applied by this call.

    The caller must hold the migration advisory lock: the CREATE TABLE IF NOT
    EXISTS below is not safe against a concurrent creator on its own.
    """
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY,"
        " name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    cur = await conn.execute("SELECT version FROM schema_migrations")
    done = {version for (version,) in await cur.fetchall()}
    applied = []
    for migration in load_migrations():
        if migration.version in done:
            continue
        # One transaction per file: a failing migration leaves no half-applied
        # schema and no schema_migrations row, so a fixed file can be rerun.
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
        log.info("applied migration %04d_%s", migration.version, migration.name)
        applied.append(migration)
    return applied
