"""Backup and restore on the local runtime: pg_dump/pg_restore, Redis BGSAVE and
MIGRATE; the scratch PostgreSQL and Redis instances on free ports are local_scratch.py's.

A mixin of ``LocalRuntime`` (which provides settings, secrets, binaries, supervisor).
Every secret travels in the environment (PGPASSWORD) or a 0600 file, never on a
command line. Plain data (dumps, RDB copies) is written 0600, and every tool dies with
the toolkit (a parent-death signal), so a killed backup leaves no pg_dump writing on.
"""

from __future__ import annotations

import hashlib
import io
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg import sql

from ocean.backup.manifest import SAMPLE_KEYS
from ocean.errors import OceanError
from ocean.fsys import open_private
from ocean.model import Step, StepStatus
from ocean.procfs import signal_on_parent_death
from ocean.render import write_atomic
from ocean.runtime.local_scratch import LocalScratch, last_lines
from ocean.secrets import NAMES as SECRET_NAMES
from ocean.services import BY_NAME, COLORS
from ocean.stackspec import accounts

SHOP_DB = "shop"
RESTORING_DB = "shop_restoring"  # a restore loads here, then swaps it in
PREVIOUS_DB = "shop_prerestore"  # the database a restore replaced, until it succeeds
PG_JOBS = 2  # pg_restore --jobs (the machine has 2 cores)
# Rendered from secrets (re-made by `up`) or owned by the deploy procedure (which color
# runs which build): not part of a config restore.
CONFIG_SKIP = {"supervisord.conf", "alertmanager.yml", "upstream.conf", "shop-builds.json"}
CONFIG_SKIP_DIRS = {"alertmanager", "targets"}
READY_TIMEOUT = 60.0

TABLES_SQL = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
 ORDER BY 1, 2
"""


def table_stats(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    """Row count and an order-independent checksum (sum of 64-bit row hashes) per table."""
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET extra_float_digits = 1")
    stats = {}
    for schema, table in conn.execute(TABLES_SQL).fetchall():
        query = sql.SQL(
            "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM {}.{} t"
        ).format(sql.Identifier(schema), sql.Identifier(table))
        rows, checksum = conn.execute(query).fetchone()
        stats[f"{schema}.{table}"] = {"rows": rows, "checksum": checksum}
    return stats


def redis_stats(client: redis.Redis, samples: dict[str, list[str]] | None = None) -> dict:
    """Key counts per database and digests of sampled values.

    With ``samples`` ({db: [keys]}) the digests are of those keys; without, up to
    SAMPLE_KEYS keys without TTL per database are chosen (evenly spread, sorted)."""
    info = client.info("keyspace")
    databases = {}
    for name, counts in info.items():
        db = name.removeprefix("db")
        keys, expires = int(counts["keys"]), int(counts.get("expires", 0))
        databases[db] = {"keys": keys, "expires": expires, "persistent": keys - expires}
    digests: dict[str, dict[str, str]] = {}
    for db in databases:
        one = client.connection_pool.connection_kwargs
        dbc = redis.Redis(
            host=one["host"],
            port=one["port"],
            db=int(db),
            username=one.get("username"),
            password=one.get("password"),
        )
        try:
            chosen = _choose_samples(dbc) if samples is None else samples.get(db, [])
            digests[db] = {key: _value_digest(dbc, key) for key in chosen}
        finally:
            dbc.close()
    if samples is not None:
        for db, keys in samples.items():
            digests.setdefault(db, {key: "" for key in keys})
    return {
        "version": client.info("server")["redis_version"],
        "databases": databases,
        "samples": digests,
    }


def _choose_samples(client: redis.Redis) -> list[str]:
    keys = sorted(k.decode(errors="surrogateescape") for k in client.scan_iter(count=1000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.pttl(key)
    persistent = [k for k, ttl in zip(keys, pipe.execute(), strict=True) if ttl == -1]
    step = max(1, len(persistent) // SAMPLE_KEYS)
    return persistent[::step][:SAMPLE_KEYS]


def _value_digest(client: redis.Redis, key: str) -> str:
    """sha256 of a key's type and value (order-normalised for hashes, sets, zsets)."""
    kind = client.type(key).decode()
    if kind == "string":
        value: Any = client.get(key)
    elif kind == "hash":
        value = sorted(client.hgetall(key).items())
    elif kind == "list":
        value = client.lrange(key, 0, -1)
    elif kind == "set":
        value = sorted(client.smembers(key))
    elif kind == "zset":
        value = client.zrange(key, 0, -1, withscores=True)
    elif kind == "stream":
        value = client.xrange(key)
    else:
        value = None  # gone (expired) or a module type
    return hashlib.sha256(repr((kind, value)).encode()).hexdigest()[:32]


def check_pg_restore(returncode: int, stderr: str | bytes) -> None:
    """Raise OceanError with the end of pg_restore's stderr unless it succeeded."""
    if returncode != 0:
        raise OceanError(f"pg_restore failed (exit {returncode}): {last_lines(stderr)}")


def _migrate_keys(source: redis.Redis, host: str, port: int, db: int, password: str) -> int:
    """MIGRATE (copy, replace) every key of ``source`` into database ``db`` of the Redis
    at ``host``:``port``, 1,000 keys per call; returns how many moved."""
    moved = 0
    batch: list[bytes] = []
    for key in source.scan_iter(count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            source.migrate(host, port, batch, db, 30_000, copy=True, replace=True, auth=password)
            moved, batch = moved + len(batch), []
    if batch:
        source.migrate(host, port, batch, db, 30_000, copy=True, replace=True, auth=password)
        moved += len(batch)
    return moved


class LocalBackup(LocalScratch):
    """The backup and restore methods of ``LocalRuntime`` (see ``Runtime``)."""

    # -- where --------------------------------------------------------------------------

    def backup_location(self) -> Path:
        return self.settings.backup_dir

    def backup_key_dir(self) -> Path:
        env = os.environ.get("OCEAN_BACKUP_KEY_DIR")
        return Path(env).absolute() if env else self.settings.state_dir / "backup-keys"

    def pg_major(self) -> int:
        out = self._run_tool(["postgres", "--version"]).stdout
        return int(out.split()[-1].split(".")[0])

    def source_info(self) -> dict[str, Any]:
        color = self.live_color()
        return {
            "color": color,
            "version": self.color_build(color).label,
            "host": socket.gethostname(),
            "state_dir": str(self.settings.state_dir),
        }

    # -- connections --------------------------------------------------------------------

    def _pg_env(self) -> dict[str, str]:
        s = self.settings
        return {
            **os.environ,
            "PGHOST": s.host,
            "PGPORT": str(s.ports["postgres"]),
            "PGUSER": "postgres",
            "PGPASSWORD": self._secret("POSTGRES_PASSWORD"),
        }

    def _pg_connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection:
        s = self.settings
        return psycopg.connect(
            host=s.host,
            port=s.ports["postgres"],
            user="postgres",
            password=self._secret("POSTGRES_PASSWORD"),
            dbname=dbname,
            **kwargs,
        )

    def _redis(self) -> redis.Redis:
        """The master as the toolkit's ACL user (BGSAVE, FLUSHALL: admin commands)."""
        return redis.Redis.from_url(self.redis_url())

    def _require_running(self, *names: str) -> None:
        active = self.active_names()
        missing = [n for n in names if n not in active]
        if missing:
            raise OceanError(f"{', '.join(missing)} not running: start the stack with ./ocean up")

    # -- where the tools run: host programs here, containers in ComposeBackup ------------

    def _run_tool(
        self,
        argv: list[str],
        mount: Path | None = None,
        owner: pwd.struct_passwd | None = None,
    ) -> subprocess.CompletedProcess:
        """Run one of the stack's programs to its end (``postgres --version``, initdb,
        redis-check-rdb) on files below ``mount``, as ``owner`` (None: as we run);
        output captured as text."""
        return subprocess.run(
            [self._bin(argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            preexec_fn=signal_on_parent_death(signal.SIGTERM),
            **self._as_pg_user(owner),
        )

    def _pg_client(self, argv: list[str], env: dict[str, str], **popen: Any) -> subprocess.Popen:
        """Start pg_dump or pg_restore (``argv[0]``) against the server ``env`` names
        (PGHOST, PGPORT, PGUSER, PGPASSWORD); ``popen``: its stdin, stdout, stderr."""
        return subprocess.Popen(
            [self._bin(argv[0]), *argv[1:]],
            env=env,
            preexec_fn=signal_on_parent_death(signal.SIGTERM),
            **popen,
        )

    def _copy_redis_rdb(self, source: Path, dest: Path) -> None:
        """Copy the master's RDB (``source``, a path where the master runs) to ``dest``."""
        # Redis replaces the file by rename: the open file stays this snapshot.
        with source.open("rb") as rdb, open_private(dest) as out:
            shutil.copyfileobj(rdb, out, 1 << 20)

    # -- backup -------------------------------------------------------------------------

    def dump_postgres(self, dest: Path) -> dict[str, Any]:
        """pg_dump -Fc of the shop database into ``dest``, with the row counts and
        checksums of exactly that snapshot (exported, shared with pg_dump)."""
        self._require_running("postgres")
        with self._pg_connect(SHOP_DB) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            version = conn.execute("SHOW server_version").fetchone()[0]
            major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
            # To stdout, which works wherever pg_dump runs (a regular file stays seekable,
            # so the archive keeps its data offsets, as with --file).
            with open_private(dest) as out:
                proc = self._pg_client(
                    ["pg_dump", "--format=custom", f"--snapshot={snapshot}", SHOP_DB],
                    self._pg_env(),
                    stdout=out,
                    stderr=subprocess.PIPE,
                )
                try:
                    tables = table_stats(conn)  # meanwhile, in the same snapshot
                finally:
                    _, err = proc.communicate()
            conn.rollback()
        if proc.returncode != 0:
            raise OceanError(f"pg_dump failed (exit {proc.returncode}): {last_lines(err)}")
        return {
            "version": version,
            "major": major,
            "database": SHOP_DB,
            "format": "custom",
            "tables": tables,
        }

    def snapshot_redis(self, dest: Path) -> dict[str, Any]:
        """BGSAVE on the master, copy its RDB once saved, check it, and count its keys
        in a scratch instance (so the manifest describes exactly this file)."""
        self._require_running("redis-master")
        client = self._redis()
        try:
            before = int(client.info("persistence")["rdb_saves"])
            deadline = time.monotonic() + 120
            while True:
                try:
                    client.bgsave()
                    break
                except redis.ResponseError as exc:  # a save or rewrite is running
                    if time.monotonic() > deadline:
                        raise OceanError(f"redis BGSAVE refused: {exc}") from None
                    time.sleep(0.05)
            while True:
                info = client.info("persistence")
                if not info["rdb_bgsave_in_progress"] and int(info["rdb_saves"]) > before:
                    break
                if time.monotonic() > deadline:
                    raise OceanError("redis BGSAVE did not finish in 120s")
                time.sleep(0.02)
            if info["rdb_last_bgsave_status"] != "ok":
                raise OceanError("redis BGSAVE failed: see the redis-master log")
            rdb_dir = Path(client.config_get("dir")["dir"])
            rdb_name = client.config_get("dbfilename")["dbfilename"]
        finally:
            client.close()
        self._copy_redis_rdb(rdb_dir / rdb_name, dest)
        check = self._run_tool(["redis-check-rdb", str(dest)], mount=dest.parent)
        if check.returncode != 0:
            raise OceanError(f"redis-check-rdb refused the snapshot: {last_lines(check.stdout)}")
        with self._scratch_redis(dest) as scratch:
            return redis_stats(scratch)

    def export_configs(self, dest: Path) -> dict[str, Any]:
        """The rendered configs (without the files that hold secrets) and a secrets
        template (names only) as a tar."""
        etc = self.settings.etc
        names = []
        with open_private(dest) as out, tarfile.open(fileobj=out, mode="w") as tar:
            for path in sorted(etc.rglob("*")):
                rel = path.relative_to(etc)
                # 0600 files carry secrets (`up` renders them from secrets.env); the
                # others are 0640 (render.py).
                if not path.is_file() or path.stat().st_mode & 0o077 == 0:
                    continue
                tar.add(path, arcname=f"etc/{rel}")
                names.append(str(rel))
            template = "".join(f"{name}=\n" for name in SECRET_NAMES).encode()
            info = tarfile.TarInfo("secrets.env.template")
            info.size = len(template)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(template))
        return {"files": names}

    def _pg_restore(self, dump: Path, env: dict[str, str], dbname: str, *extra: str) -> None:
        proc = self._pg_client(
            [
                "pg_restore",
                f"--jobs={PG_JOBS}",
                "--exit-on-error",
                f"--dbname={dbname}",
                *extra,
                str(dump),
            ],
            env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _, err = proc.communicate()
        check_pg_restore(proc.returncode, err)

    def scratch_restore(
        self, dump: Path, rdb: Path, samples: dict[str, list[str]]
    ) -> Iterator[Step]:
        """Restore into a scratch PostgreSQL and Redis on free ports, measure them, remove
        them. The generator returns (postgres tables, redis stats)."""
        started = time.monotonic()
        with self._scratch_postgres() as conninfo:
            yield Step(
                "scratch postgres",
                detail=f"port {conninfo['port']}",
                seconds=time.monotonic() - started,
            )
            started = time.monotonic()
            with psycopg.connect(**conninfo, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {SHOP_DB}")
            env = {
                **os.environ,
                "PGHOST": conninfo["host"],
                "PGPORT": str(conninfo["port"]),
                "PGUSER": "postgres",
                "PGPASSWORD": conninfo["password"],
            }
            self._pg_restore(dump, env, SHOP_DB, "--no-owner", "--no-privileges")
            yield Step("pg_restore", detail="into scratch", seconds=time.monotonic() - started)
            started = time.monotonic()
            with psycopg.connect(**{**conninfo, "dbname": SHOP_DB}) as conn:
                tables = table_stats(conn)
            yield Step(
                "table checksums",
                detail=f"{len(tables)} tables",
                seconds=time.monotonic() - started,
            )
        started = time.monotonic()
        with self._scratch_redis(rdb) as client:
            stats = redis_stats(client, samples)
        yield Step("scratch redis", detail="loaded and counted", seconds=time.monotonic() - started)
        return tables, stats

    # -- restore ------------------------------------------------------------------------

    def stop_writes(self) -> list[str]:
        """Stop every running shop color (nginx answers 502 meanwhile); returns them."""
        running = self.active_names()
        colors = [c for c in COLORS if f"shop-{c}" in running]
        self._stop_shops([f"shop-{c}" for c in colors])
        return colors

    def _stop_shops(self, names: list[str]) -> None:
        """Stop these shop services (all at once) and wait until they have stopped."""
        for name in names:
            self.supervisor.stop(name)
        self._wait_stopped(names)

    def resume_writes(self, colors: list[str]) -> Iterator[Step]:
        """Start the live color (and ``colors``) again and wait until each is ready."""
        wanted = {self.live_color(), *colors}
        services = [BY_NAME[f"shop-{c}"] for c in COLORS if c in wanted]
        yield from self.start(services)

    def _terminate(self, conn: psycopg.Connection, dbname: str) -> None:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        )

    def _databases(self, conn: psycopg.Connection) -> set[str]:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database").fetchall()}

    def load_postgres(self, dump: Path) -> Iterator[Step]:
        """pg_restore ``dump`` into a fresh database beside the shop's; returns its tables'
        stats. Repairs what a killed restore left (a database still renamed aside)."""
        self._require_running("postgres")
        started = time.monotonic()
        with self._pg_connect(autocommit=True) as conn:
            names = self._databases(conn)
            if SHOP_DB not in names and PREVIOUS_DB in names:
                conn.execute(f"ALTER DATABASE {PREVIOUS_DB} RENAME TO {SHOP_DB}")
                yield Step("repair", StepStatus.INFO, f"put {PREVIOUS_DB} back as {SHOP_DB}")
            self._terminate(conn, RESTORING_DB)
            conn.execute(f"DROP DATABASE IF EXISTS {RESTORING_DB}")
            conn.execute(f"CREATE DATABASE {RESTORING_DB} OWNER shop")
        self._pg_restore(dump, self._pg_env(), RESTORING_DB)
        with self._pg_connect(RESTORING_DB) as conn:
            tables = table_stats(conn)
        yield Step("pg_restore", detail=f"into {RESTORING_DB}", seconds=time.monotonic() - started)
        return tables

    def swap_postgres(self) -> Iterator[Step]:
        """Make the loaded database the shop's (two renames); the old one stays aside
        until ``drop_previous_postgres``."""
        started = time.monotonic()
        with self._pg_connect(autocommit=True) as conn:
            names = self._databases(conn)
            if PREVIOUS_DB in names and SHOP_DB in names:
                conn.execute(f"DROP DATABASE {PREVIOUS_DB} WITH (FORCE)")
            if SHOP_DB in names:
                self._terminate(conn, SHOP_DB)
                conn.execute(f"ALTER DATABASE {SHOP_DB} RENAME TO {PREVIOUS_DB}")
            conn.execute(f"ALTER DATABASE {RESTORING_DB} RENAME TO {SHOP_DB}")
        yield Step(
            "swap database",
            detail=f"{RESTORING_DB} → {SHOP_DB}",
            seconds=time.monotonic() - started,
        )

    def drop_previous_postgres(self) -> None:
        with self._pg_connect(autocommit=True) as conn:
            if SHOP_DB in self._databases(conn):
                conn.execute(f"DROP DATABASE IF EXISTS {PREVIOUS_DB} WITH (FORCE)")

    def restore_redis(self, rdb: Path, failpoint: Any = None) -> Iterator[Step]:
        """Replace the master's data with ``rdb``'s: FLUSHALL, then MIGRATE every key
        from a scratch instance that loaded it. The master never restarts, so its AOF
        (appendonly yes) records the restored data and the replica follows; swapping
        dump.rdb under a server with AOF on would start it empty (the AOF trap)."""
        self._require_running("redis-master")
        started = time.monotonic()
        host, port = self.settings.host, self.settings.ports["redis-master"]
        with self._scratch_redis(rdb) as scratch:
            master = self._redis()
            try:
                master.flushall()
                if failpoint:
                    failpoint("redis-flushed")
                moved = 0
                for name in scratch.info("keyspace"):
                    db = int(name.removeprefix("db"))
                    source = redis.Redis(
                        host=host, port=scratch.connection_pool.connection_kwargs["port"], db=db
                    )
                    try:
                        moved += _migrate_keys(
                            source, host, port, db, self._secret("REDIS_PASSWORD")
                        )
                    finally:
                        source.close()
            finally:
                master.close()
        yield Step("restore redis", detail=f"{moved} keys", seconds=time.monotonic() - started)

    def restore_configs(self, archive: Path) -> Iterator[Step]:
        """Put the archived configs back into etc/ (not the secret-bearing ones, which
        `up` renders from secrets.env, nor the deploy's color and builds)."""
        etc = self.settings.etc
        changed = 0
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if not member.isfile() or not member.name.startswith("etc/"):
                    continue
                rel = Path(member.name[4:])
                if ".." in rel.parts or rel.is_absolute():
                    raise OceanError(f"{archive}: unsafe path {member.name}")
                if rel.name in CONFIG_SKIP or (rel.parts and rel.parts[0] in CONFIG_SKIP_DIRS):
                    continue
                data = tar.extractfile(member).read().decode()
                # PostgreSQL reads its config as postgres (runtime/private_state.py).
                pg_conf = rel == Path("postgresql.conf")
                group = accounts.pg_config_group(self.as_root) if pg_conf else None
                changed += write_atomic(etc / rel, data, group=group)
        yield Step("restore configs", detail=f"{changed} changed")

    def live_stats(self, samples: dict[str, list[str]]) -> tuple[dict, dict]:
        """The shop database's table stats and the Redis master's stats, now."""
        with self._pg_connect(SHOP_DB) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            tables = table_stats(conn)
            conn.rollback()
        client = self._redis()
        try:
            stats = redis_stats(client, samples)
        finally:
            client.close()
        return tables, stats

    def health_check(self) -> Iterator[Step]:
        """Every running service healthy, the live color ready."""
        bad = [s for s in self.status() if s.state == "running" and not s.healthy]
        if bad:
            raise OceanError(
                "unhealthy after restore: "
                + ", ".join(f"{s.name} ({s.health_detail})" for s in bad)
            )
        live = self.live_color()
        deadline = time.monotonic() + READY_TIMEOUT  # RUNNING only after startsecs
        while not self.color_ready(live):
            if time.monotonic() > deadline:
                raise OceanError(f"shop-{live} is not ready after the restore")
            time.sleep(0.1)
        yield Step("health check", detail=f"all running services healthy, shop-{live} ready")
