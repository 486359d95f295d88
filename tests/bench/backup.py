"""Backup and restore benchmark: `nox -s bench -- backup` (= python -m tests.bench.backup).

On a stack of its own (PostgreSQL, the Redis master and the shop): seeds 1,000,000
orders (the `invoke seed` procedure) and 100,000 Redis keys, then measures in the same
run, alternating --rounds times:

- a bare `pg_dump -Fc` of the shop database vs `backup` (pg_dump in an exported
  snapshot with table checksums beside it, Redis BGSAVE, configs, GPG encryption,
  sha256 per file, signed manifest). Target (the backup issue): ≤ 1.5×.
- a bare `pg_restore --jobs=2` of that dump into a fresh database vs `backup-verify`
  (integrity checks, decryption, scratch PostgreSQL + Redis, restore, checksums,
  comparison, teardown). Target: ≤ 3×.

Then the round trip at full size: more orders and changed keys, `restore`, and the live
data compared with the manifest (tables, checksums, key counts, sampled values).

Prints a Markdown table for docs/benchmarks.md and writes JSON (--json-out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis

from ocean import secrets
from ocean.backup import manifest as manifests
from ocean.config import PortPlan, Settings
from ocean.procedures import backup as backups
from ocean.procedures import stack
from ocean.procedures.seed import seed
from ocean.runtime.local import LocalRuntime
from tests.helpers import free_port_base

BACKUP_TARGET = 1.5
VERIFY_TARGET = 3.0


def drain(steps):
    try:
        while True:
            next(steps)
    except StopIteration as done:
        return done.value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="ocean-bench-backup-"))
    runtime = LocalRuntime(Settings(state_dir=state, ports=PortPlan(free_port_base())))
    password = secrets.load_or_create(runtime.settings.secrets_file)["POSTGRES_PASSWORD"]
    s = runtime.settings
    conninfo = {"host": s.host, "port": s.ports["postgres"], "user": "postgres"}
    env = {
        **os.environ,
        "PGHOST": s.host,
        "PGPORT": str(s.ports["postgres"]),
        "PGUSER": "postgres",
        "PGPASSWORD": password,
    }
    results: dict = {
        "date": datetime.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "orders": args.orders,
        "redis_keys": args.keys,
    }
    try:
        drain(stack.up(runtime, "shop-blue"))
        started = time.monotonic()
        drain(seed(runtime, 0, 10_000, args.orders, 1))
        results["seed_s"] = round(time.monotonic() - started, 1)
        with psycopg.connect(**conninfo, password=password, dbname="shop", autocommit=True) as c:
            # Settle seeded pending orders (the shop's upkeep would fail them after the
            # restore restarts it, and the live data would no longer equal the manifest).
            c.execute("UPDATE orders SET status = 'failed' WHERE status = 'pending'")
            c.execute("VACUUM ANALYZE")
            results["db_size_mib"] = round(
                c.execute("SELECT pg_database_size('shop')").fetchone()[0] / 2**20
            )
        client = redis.Redis.from_url(runtime.redis_url())
        pipe = client.pipeline(transaction=False)
        for i in range(args.keys):
            pipe.set(f"bench:{i}", f"value-{i}-" + "x" * 32)
            if i % 10_000 == 9_999:
                pipe.execute()
        pipe.execute()

        work = state / "bare"
        work.mkdir()
        bare_dump, verify_s, backup_s, restore_s = [], [], [], []
        manifest = None
        for round_ in range(args.rounds):
            dump = work / "shop.dump"
            started = time.monotonic()
            subprocess.run(
                ["pg_dump", "--format=custom", f"--file={dump}", "shop"], env=env, check=True
            )
            bare_dump.append(time.monotonic() - started)
            results["bare_dump_bytes"] = dump.stat().st_size

            started = time.monotonic()
            manifest = drain(backups.backup(runtime, f"bench-{round_}"))
            backup_s.append(time.monotonic() - started)

            with psycopg.connect(**conninfo, password=password, autocommit=True) as c:
                c.execute("DROP DATABASE IF EXISTS bare_restore")
                c.execute("CREATE DATABASE bare_restore")
            started = time.monotonic()
            subprocess.run(
                ["pg_restore", "--jobs=2", "--no-owner", "--dbname=bare_restore", str(dump)],
                env=env,
                check=True,
            )
            restore_s.append(time.monotonic() - started)
            with psycopg.connect(**conninfo, password=password, autocommit=True) as c:
                c.execute("DROP DATABASE bare_restore")
            dump.unlink()

            started = time.monotonic()
            drain(backups.verify(runtime, manifest.id))
            verify_s.append(time.monotonic() - started)
            print(
                f"round {round_ + 1}: pg_dump {bare_dump[-1]:.1f}s backup {backup_s[-1]:.1f}s "
                f"pg_restore {restore_s[-1]:.1f}s verify {verify_s[-1]:.1f}s",
                flush=True,
            )
        assert manifest is not None
        results.update(
            bare_dump_s=[round(x, 2) for x in bare_dump],
            backup_s=[round(x, 2) for x in backup_s],
            bare_restore_s=[round(x, 2) for x in restore_s],
            verify_s=[round(x, 2) for x in verify_s],
            backup_ratio=round(statistics.median(backup_s) / statistics.median(bare_dump), 2),
            verify_ratio=round(statistics.median(verify_s) / statistics.median(restore_s), 2),
            set_bytes={part: e.size for part, e in manifest.files.items()},
            set_total_bytes=manifest.size,
        )

        # Round trip at full size: write more, restore, compare.
        drain(seed(runtime, 0, 0, 10_000, 2))
        client.set("bench:1", "changed")
        client.delete("bench:2")
        started = time.monotonic()
        drain(backups.restore(runtime, manifest.id, yes=True))
        results["restore_s"] = round(time.monotonic() - started, 2)
        tables, stats = runtime.live_stats(backups._samples(manifest))
        problems = manifests.compare_postgres(manifest.postgres, tables)
        problems += manifests.compare_redis(manifest.redis, stats)
        results["round_trip_problems"] = problems
        results["orders_restored"] = tables["public.orders"]["rows"]
        results["keys_restored"] = stats["databases"]["0"]["keys"]
        results["samples_compared"] = sum(len(v) for v in manifest.redis["samples"].values())
        client.close()
    finally:
        drain(stack.down(runtime, purge=True, yes=True))

    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    med = statistics.median
    print("| measure | figure |")
    print("|---|---|")
    print(f"| database (1M orders) | {results['db_size_mib']} MiB |")
    print(
        f"| bare `pg_dump -Fc` | {med(bare_dump):.1f} s, "
        f"{results['bare_dump_bytes'] / 2**20:.0f} MiB |"
    )
    print(
        f"| `backup` (encrypted, checksummed) | {med(backup_s):.1f} s, "
        f"{manifest.size / 2**20:.0f} MiB — {results['backup_ratio']}× "
        f"(target ≤ {BACKUP_TARGET}×) |"
    )
    print(f"| bare `pg_restore --jobs=2` | {med(restore_s):.1f} s |")
    print(
        f"| `backup-verify` | {med(verify_s):.1f} s — {results['verify_ratio']}× "
        f"(target ≤ {VERIFY_TARGET}×) |"
    )
    print(f"| `restore` (with safety backup) | {results['restore_s']:.1f} s |")
    print(
        f"| round trip | {results['orders_restored']:,} orders, "
        f"{results['keys_restored']:,} keys; problems: {problems or 'none'} |"
    )


if __name__ == "__main__":
    main()
