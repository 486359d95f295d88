"""Backup and restore on a real stack of its own: round trip, tampering, a killed
restore, backups under write load, bad input, the disaster-recovery runbook.

Small scale (10k orders, ~1.5k Redis keys) to stay fast; tests/bench/backup.py runs
the full-size round trip (1M orders, 100k keys).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from ocean import secrets
from ocean.backup import manifest as manifests
from ocean.backup.crypto import BackupKeys
from ocean.backup.manifest import IntegrityError, Manifest
from ocean.config import REPO_ROOT
from ocean.errors import OceanError
from ocean.procedures import backup as backups
from ocean.procedures.seed import seed as seed_orders
from ocean.runtime.local import LocalRuntime
from tests.conftest import own_stack
from tests.helpers import cli

RUNBOOK = REPO_ROOT / "docs" / "runbooks" / "DisasterRecovery.md"


def fill_redis(runtime: LocalRuntime, ttl_keys: int) -> None:
    """Keys of every kind the backup must keep: strings, hashes, lists, keys with a TTL
    (``ttl_keys`` of them), and a second database."""
    pipe = rkv(runtime).pipeline(transaction=False)
    for i in range(1000):
        pipe.set(f"test:str:{i}", f"value {i}")
    for i in range(200):
        pipe.hset(f"test:hash:{i}", mapping={"a": i, "b": str(i) * 3})
        pipe.rpush(f"test:list:{i}", *range(i % 7 + 1))
    for i in range(ttl_keys):
        pipe.set(f"test:ttl:{i}", i, ex=3600)
    pipe.execute()
    rkv(runtime, db=3).mset({f"db3:{i}": i for i in range(50)})


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with own_stack(tmp_path_factory, "backup", wait_targets=False) as runtime:
        add_orders(runtime, 10_000, customers=1000)
        fill_redis(runtime, ttl_keys=100)
        yield runtime


def add_orders(runtime: LocalRuntime, orders: int, customers: int = 0, seed: int = 1) -> None:
    """Seed orders. Their ≈ 3 % pending ones stay as seeded: the shop's upkeep, which
    runs again whenever a restore restarts the shop, fails abandoned checkouts only,
    never seeded history (issue 25, Medium 6), so the data still equals the manifest."""
    list(seed_orders(runtime, products=0, customers=customers, orders=orders, seed=seed))


def write_after_backup(runtime: LocalRuntime, orders: int) -> None:
    """What a restore must undo: more orders, a changed, a dropped and 300 new keys."""
    add_orders(runtime, orders, seed=2)
    client = rkv(runtime)
    client.set("test:str:1", "changed")
    client.delete("test:str:2")
    client.mset({f"later:{i}": i for i in range(300)})


def rkv(runtime: LocalRuntime, db: int = 0) -> redis.Redis:
    return redis.Redis.from_url(runtime.redis_url(db=db))


def pg(runtime: LocalRuntime, dbname: str = "shop") -> psycopg.Connection:
    return runtime._pg_connect(dbname, autocommit=True)  # the superuser, as the runtime


def count(runtime: LocalRuntime, table: str = "orders") -> int:
    with pg(runtime) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def take(runtime: LocalRuntime, label: str = "", encrypt: bool = True) -> Manifest:
    steps = backups.backup(runtime, label, encrypt)
    try:
        while True:
            next(steps)
    except StopIteration as done:
        return done.value


def assert_equals_manifest(runtime: LocalRuntime, manifest: Manifest) -> None:
    tables, stats = runtime.live_stats(backups._samples(manifest))
    assert manifests.compare_postgres(manifest.postgres, tables) == []
    assert manifests.compare_redis(manifest.redis, stats) == []
    assert tables["public.orders"]["rows"] == manifest.postgres["tables"]["public.orders"]["rows"]


def shop_pid(runtime: LocalRuntime) -> int:
    return runtime.supervisor.processes()[f"shop-{runtime.live_color()}"]["pid"]


def copy_set(runtime: LocalRuntime, manifest: Manifest, name: str) -> Path:
    root = runtime.backup_location()
    target = root / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(root / manifest.id, target)
    (target / manifests.VERIFIED).unlink(missing_ok=True)
    return target


# -- round trip ---------------------------------------------------------------------------


def test_round_trip_restores_exactly_the_manifest(stack: LocalRuntime):
    runtime = stack
    manifest = take(runtime, "round-trip")
    assert manifest.encrypted and all(e.name.endswith(".gpg") for e in manifest.files.values())
    assert manifest.postgres["tables"]["public.orders"]["rows"] >= 10_000
    assert manifest.redis["databases"]["0"]["persistent"] >= 1400
    assert manifest.redis["databases"]["3"]["keys"] == 50
    assert manifest.redis["databases"]["0"]["expires"] >= 100
    assert sum(len(s) for s in manifest.redis["samples"].values()) >= 100
    metrics = (runtime.settings.data / "textfile" / "ocean_backup.prom").read_text()
    assert f"ocean_backup_size_bytes {manifest.size}" in metrics
    assert "ocean_backup_duration_seconds" in metrics
    # Nothing secret is in the set in the clear, and no plain dump is left behind.
    set_dir = runtime.backup_location() / manifest.id
    assert sorted(p.name for p in set_dir.iterdir()) == sorted(
        ["manifest.json", "manifest.hmac", *(e.name for e in manifest.files.values())]
    )
    password = secrets.load_or_create(runtime.settings.secrets_file)["POSTGRES_PASSWORD"]
    assert password.encode() not in (set_dir / "manifest.json").read_bytes()

    write_after_backup(runtime, orders=500)
    assert count(runtime) == manifest.postgres["tables"]["public.orders"]["rows"] + 500

    result = cli(runtime, "restore", manifest.id, "--yes", "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    steps = json.loads(result.stdout)["steps"]
    names = [s["name"] for s in steps]
    for expected in ("integrity", "config validation", "backup", "writes stopped", "compare",
                     "traffic back", "health check", "restore"):  # fmt: skip
        assert expected in names, names
    assert_equals_manifest(runtime, manifest)
    client = rkv(runtime)
    assert client.get("test:str:1") == b"value 1"
    assert client.get("test:str:2") == b"value 2"
    assert client.exists("later:1") == 0
    assert client.ttl("test:ttl:1") > 3000  # TTLs come back with their keys
    assert rkv(runtime, db=3).dbsize() == 50
    # The replica follows the restored master.
    replica = redis.Redis.from_url(runtime.redis_url("redis-replica"))
    deadline = time.monotonic() + 10
    while replica.get("test:str:1") != b"value 1" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert replica.get("test:str:1") == b"value 1"
    with pg(runtime, "postgres") as conn:
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
    assert not names & {"shop_restoring", "shop_prerestore"}
    assert not (runtime.settings.state_dir / "restore-in-progress.json").exists()

    # The restored stack backs up again, and the set verifies in scratch instances.
    verify = cli(runtime, "backup-verify", manifest.id, "--json")
    assert verify.returncode == 0, verify.stderr
    metrics = (runtime.settings.data / "textfile" / "ocean_restore_test.prom").read_text()
    assert "ocean_restore_test_success 1" in metrics
    listing = json.loads(cli(runtime, "backups", "--json").stdout)["backups"]
    row = next(r for r in listing if r["id"] == manifest.id)
    assert row["verified"]["status"] == "ok" and row["encrypted"]
    assert any(r["label"].startswith("pre-restore") for r in listing)  # the safety backup
    assert not list((runtime.settings.state_dir / "scratch").iterdir())  # scratch removed


# -- refused before anything is touched ----------------------------------------------------


def corrupt_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "file", "check"),
    [
        ("tamper", "postgres.dump.gpg", "sha256"),
        ("truncate", "redis.rdb.gpg", "size"),
        ("manifest", "manifest.json", "hmac"),
        ("wrong-key", "postgres.dump.gpg", "key"),
    ],
)
def test_damaged_or_wrong_key_set_is_refused_before_anything(
    stack: LocalRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage, file, check
):
    runtime = stack
    sets = backups.Store(runtime).ids()
    good = manifests.read_unverified(runtime.backup_location() / sets[0])
    target = copy_set(runtime, good, f"damaged-{damage}")
    if damage == "tamper":
        corrupt_byte(target / file)
    elif damage == "truncate":
        with (target / file).open("r+b") as handle:
            handle.truncate((target / file).stat().st_size // 2)
    elif damage == "manifest":
        text = (target / file).read_text()
        (target / file).write_text(text.replace('"rows": ', '"rows": 1', 1))
    else:  # the same HMAC key, another GPG key pair
        keys = BackupKeys(tmp_path / "other-keys")
        keys.ensure(encrypt=False)
        shutil.copy(BackupKeys(runtime.backup_key_dir()).hmac_path, keys.hmac_path)
        keys.ensure(encrypt=True)
        monkeypatch.setenv("OCEAN_BACKUP_KEY_DIR", str(keys.dir))
    before_pid, before_orders = shop_pid(runtime), count(runtime)
    before_sets = set(backups.Store(runtime).ids())
    with pytest.raises(IntegrityError) as failure:
        list(backups.restore(runtime, target.name, yes=True, validate=False))
    message = str(failure.value)
    assert failure.value.check == check and file in message and check in message
    assert "nothing was changed" in message
    assert shop_pid(runtime) == before_pid and count(runtime) == before_orders
    assert set(backups.Store(runtime).ids()) == before_sets  # not even a safety backup
    # backup-verify refuses it the same way, and the failure is a metric.
    with pytest.raises(IntegrityError):
        list(backups.verify(runtime, target.name))
    metrics = (runtime.settings.data / "textfile" / "ocean_restore_test.prom").read_text()
    assert "ocean_restore_test_success 0" in metrics
    shutil.rmtree(target)


# -- a restore killed midway ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "then"), [("postgres-loaded", "same set"), ("redis-flushed", "safety backup")]
)
def test_killed_restore_leaves_the_stack_restorable(stack: LocalRuntime, point: str, then: str):
    """kill -9 midway (OCEAN_BACKUP_FAILPOINT); the next restore of the same set, or of
    the safety backup the killed one took, succeeds."""
    runtime = stack
    manifest = take(runtime, f"before-kill-{point}")
    add_orders(runtime, 100, seed=3)
    killed = cli(runtime, "restore", manifest.id, "--yes", OCEAN_BACKUP_FAILPOINT=point)
    assert killed.returncode == -9, killed.stderr
    marker = json.loads((runtime.settings.state_dir / "restore-in-progress.json").read_text())
    assert marker["id"] == manifest.id and marker["safety"]
    assert not runtime.color_ready(runtime.live_color())  # writes stay stopped
    # A new backup would capture a half-restored state: refused until the restore ends.
    with pytest.raises(OceanError, match="in progress or was interrupted"):
        list(backups.backup(runtime))
    target = manifest.id if then == "same set" else marker["safety"]
    again = cli(runtime, "restore", target, "--yes", "--json")
    assert again.returncode == 0, again.stderr
    steps = json.loads(again.stdout)["steps"]
    assert any(s["name"] == "resume" for s in steps)
    assert not any(s["name"] == "backup" for s in steps)  # the first safety backup is kept
    expected = manifests.read_unverified(runtime.backup_location() / target)
    assert_equals_manifest(runtime, expected)
    orders = manifest.postgres["tables"]["public.orders"]["rows"]
    assert count(runtime) == orders + (100 if then == "safety backup" else 0)
    assert runtime.color_ready(runtime.live_color())


def test_unencrypted_backup_verifies(stack: LocalRuntime):
    result = cli(stack, "backup", "--no-encrypt", "--label", "plain", "--json")
    assert result.returncode == 0, result.stderr
    backup_id = json.loads(result.stdout)["steps"][-1]["data"]["id"]
    manifest = manifests.read_unverified(stack.backup_location() / backup_id)
    assert not manifest.encrypted and manifest.files["postgres.dump"].name == "postgres.dump"
    verify = cli(stack, "backup-verify", backup_id)
    assert verify.returncode == 0, verify.stderr
    assert "equal the manifest" in verify.stderr


def test_restore_failure_puts_the_safety_backup_back(
    stack: LocalRuntime, monkeypatch: pytest.MonkeyPatch
):
    """Redis fails midway (after PostgreSQL was swapped): the pre-restore state is back."""
    runtime = stack
    manifest = take(runtime, "to-fail")
    add_orders(runtime, 50, seed=4)
    before = count(runtime)
    rkv(runtime).set("test:marker", "pre-restore")
    real = LocalRuntime.restore_redis
    calls = []

    def broken(self, rdb, failpoint=None):
        calls.append(rdb)
        if len(calls) == 1:
            raise OceanError("simulated: redis went away")
        yield from real(self, rdb, failpoint)

    monkeypatch.setattr(LocalRuntime, "restore_redis", broken)
    with pytest.raises(OceanError, match="pre-restore state is back") as failure:
        list(backups.restore(runtime, manifest.id, yes=True, validate=False))
    assert "simulated" in str(failure.value)
    assert count(runtime) == before
    assert rkv(runtime).get("test:marker") == b"pre-restore"
    assert runtime.color_ready(runtime.live_color())
    rkv(runtime).delete("test:marker")


# -- consistency under write load -------------------------------------------------------------


def test_backup_under_write_load_is_consistent(stack: LocalRuntime):
    """Shoppers check out through nginx (cart in Redis, then the shop's checkout: order,
    items, event, stock and payment in PostgreSQL) while the backup is taken: the
    restored data has no order without its items, and every product's stock plus what
    its non-failed orders hold is what it was before the load."""
    runtime = stack
    with pg(runtime) as conn:
        max_order = conn.execute("SELECT max(id) FROM orders").fetchone()[0]
        customer = conn.execute("SELECT min(id) FROM customers").fetchone()[0]
        conn.execute("UPDATE products SET stock = stock + 100000")  # room for the load
        stock0 = dict(conn.execute("SELECT id, stock FROM products").fetchall())
    products = sorted(stock0)[:50]
    stop = threading.Event()
    placed: list[int] = []
    errors: list[str] = []

    def shopper(worker: int) -> None:
        with runtime.http("nginx", "/api", timeout=10) as http:
            n = 0
            while not stop.is_set():
                created = http.post("/carts")
                if created.status_code != 201:
                    errors.append(f"POST /carts: {created.status_code} {created.text[:200]}")
                    break
                cart = created.json()["cart_id"]
                for product in {products[n % 50], products[(n * 7 + worker) % 50]}:
                    http.put(f"/carts/{cart}/items/{product}", json={"quantity": 2})
                response = http.post(
                    "/checkout",
                    json={"cart_id": cart, "customer_id": customer},
                    headers={"Idempotency-Key": f"load-{worker}-{n}-{time.time()}"},
                )
                if response.status_code in (201, 402):  # 402: payment failed, stock back
                    placed.append(response.json()["order"]["id"])
                elif response.status_code != 409:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                n += 1

    threads = [threading.Thread(target=shopper, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        manifest = take(runtime, "under-load")
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors[:3]
    assert len(placed) > 0, "the load placed no order"
    list(backups.restore(runtime, manifest.id, yes=True, validate=False))
    assert_equals_manifest(runtime, manifest)
    with pg(runtime) as conn:
        orphans = conn.execute(
            "SELECT count(*) FROM orders o WHERE NOT EXISTS "
            "(SELECT 1 FROM order_items i WHERE i.order_id = o.id)"
        ).fetchone()[0]
        assert orphans == 0
        rows = conn.execute(
            "SELECT p.id, p.stock + "
            "coalesce(sum(i.quantity) FILTER (WHERE o.status <> 'failed'), 0) "
            "FROM products p LEFT JOIN order_items i ON i.product_id = p.id AND i.order_id > %s "
            "LEFT JOIN orders o ON o.id = i.order_id GROUP BY p.id",
            (max_order,),
        ).fetchall()
        restored_orders = conn.execute(
            "SELECT count(*) FROM orders WHERE id > %s", (max_order,)
        ).fetchone()[0]
    assert {pid: total for pid, total in rows} == stock0
    # Taken mid-load: some orders made it into the backup, later ones did not.
    assert 0 < restored_orders < len(placed)


# -- bad input --------------------------------------------------------------------------------


def test_unknown_id_and_missing_confirmation(stack: LocalRuntime):
    result = cli(stack, "restore", "20990101T000000Z", "--yes")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "unknown backup" in result.stderr
    result = cli(stack, "backup-verify", "nope")
    assert result.returncode == 1 and "unknown backup 'nope'" in result.stderr
    sets = backups.Store(stack).ids()
    result = cli(stack, "restore", sets[0])
    assert result.returncode == 1 and "--yes" in result.stderr


def test_missing_key_is_refused(stack: LocalRuntime, tmp_path: Path):
    sets = backups.Store(stack).ids()
    before = count(stack)
    result = cli(stack, "restore", sets[0], "--yes", OCEAN_BACKUP_KEY_DIR=str(tmp_path / "none"))
    assert result.returncode == 1
    assert "no backup key" in result.stderr and "hmac.key" in result.stderr
    assert count(stack) == before


def test_backup_from_a_newer_postgres_is_refused(stack: LocalRuntime):
    runtime = stack
    good = manifests.read_unverified(runtime.backup_location() / backups.Store(runtime).ids()[0])
    target = copy_set(runtime, good, "from-pg-99")
    manifest = manifests.read_unverified(target)
    manifest.postgres["major"] = 99  # re-signed: a genuine set from a newer server
    manifests.write(target, manifest, BackupKeys(runtime.backup_key_dir()))
    before = shop_pid(runtime)
    result = cli(runtime, "restore", "from-pg-99", "--yes")
    assert result.returncode == 1
    assert "PostgreSQL 99, newer than this stack's" in result.stderr
    assert "Nothing was changed" in result.stderr
    assert shop_pid(runtime) == before
    shutil.rmtree(target)


def test_no_space_left_keeps_nothing(stack: LocalRuntime, tmp_path: Path):
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        result = cli(stack, "backup", OCEAN_BACKUP_DIR=str(small))
        assert result.returncode == 1
        assert "no space left on" in result.stderr and "nothing else changed" in result.stderr
        assert list(small.iterdir()) == []  # the partial set is gone
        assert stack.color_ready(stack.live_color())
    finally:
        subprocess.run(["umount", str(small)], check=True)


# -- runbook, wrapper, listing, prune ------------------------------------------------------------


def test_disaster_recovery_runbook_walks(stack: LocalRuntime, tmp_path: Path):
    """Run every `./ocean` and `scripts/backup-restore.sh` command of the runbook's
    numbered steps, in order (<ID> = the newest set). `./ocean` is `invoke` in the venv
    (plus a first-use venv setup): the test runs that invoke through a shim."""
    text = RUNBOOK.read_text().split("## Steps", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\s*((?:\./ocean|scripts/backup-restore\.sh) [^\n#]+)", text, re.M)
    assert len(commands) >= 5, commands
    shim = tmp_path / "ocean"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m invoke --search-root {REPO_ROOT} "$@"\n')
    shim.chmod(0o755)
    env = {
        **os.environ,
        "OCEAN_STATE_DIR": str(stack.settings.state_dir),
        "OCEAN_PORT_BASE": str(stack.settings.ports.base),
        "OCEAN_BIN": str(shim),
    }
    for command in commands:
        argv = command.strip().replace("<ID>", backups.Store(stack).ids()[-1]).split()
        program = str(shim) if argv[0] == "./ocean" else str(REPO_ROOT / argv[0])
        result = subprocess.run(
            [program, *argv[1:]], capture_output=True, text=True, env=env, timeout=240
        )
        assert result.returncode == 0, f"{command}: {result.stderr}"
    assert stack.color_ready(stack.live_color())
    assert "after-recovery" in backups.Store(stack).ids()[-1]


def test_prune_keeps_what_the_policy_says(stack: LocalRuntime):
    while len(backups.Store(stack).ids()) < 3:
        take(stack, "for-prune")
    before = backups.Store(stack).ids()
    listing = cli(stack, "backups")
    assert listing.returncode == 0 and "verified" in listing.stderr, listing.stderr
    dry = cli(stack, "backup-prune", "--keep-last", "2", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert backups.Store(stack).ids() == before
    rows = backups.list_backups(stack)
    proven = [(r["created"], r["id"]) for r in rows if r["verified"]["status"] == "ok"]
    # The two newest, and the newest set a verification proved (if any).
    newest = {r["id"] for r in rows[-2:]} | ({max(proven)[1]} if proven else set())
    result = cli(stack, "backup-prune", "--keep-last", "2", "--json")
    assert result.returncode == 0, result.stderr
    after = backups.Store(stack).ids()
    assert after == sorted(newest)
    # No --keep-*: the environment's backup.retention (dev: the last 2, 2 daily).
    by_env = cli(stack, "backup-prune", "--dry-run", "--json")
    assert by_env.returncode == 0, by_env.stderr
    policy = json.loads(by_env.stdout)["steps"][-1]["data"]["policy"]
    assert policy == {"last": 2, "daily": 2, "weekly": 0, "monthly": 0}


def test_prune_prefers_verified_sets_and_reports_damaged_ones(stack: LocalRuntime):
    """Issue 25, Medium 10: `--keep-last 1` kept the newest set although its verification
    had failed and removed the older verified one; a set whose manifest was deleted
    vanished from `backups`, was "unknown" to verify and restore, and was never pruned."""
    runtime = stack
    verified = take(runtime, "proven")
    list(backups.verify(runtime, verified.id))
    failed = take(runtime, "fails-verify")
    with (runtime.backup_location() / failed.id / "redis.rdb.gpg").open("ab") as sealed:
        sealed.write(b"x")  # a damaged file: the verification fails on its size
    with pytest.raises(OceanError):
        list(backups.verify(runtime, failed.id))
    lost = copy_set(runtime, verified, "20260101T000000Z-manifest-lost")
    (lost / manifests.MANIFEST).unlink()

    listed = {r["id"]: r for r in json.loads(cli(runtime, "backups", "--json").stdout)["backups"]}
    assert listed[failed.id]["verified"]["status"] == "failed"
    assert (
        listed[lost.name]["damaged"] and "manifest.json is missing" in listed[lost.name]["problem"]
    )
    table = cli(runtime, "backups", COLUMNS="200").stderr  # wide: no id cut short
    assert f"{lost.name}" in table and "manifest.json is missing" in table
    refused = cli(runtime, "backup-verify", lost.name)
    assert refused.returncode == 1
    assert "is damaged" in refused.stderr and "unknown backup" not in refused.stderr

    result = cli(runtime, "backup-prune", "--keep-last", "1", "--json")
    assert result.returncode == 0, result.stderr
    steps = {step["name"]: step for step in json.loads(result.stdout)["steps"]}
    assert "newest verified set" in steps[f"keep {verified.id}"]["detail"]
    assert "verification failed" in steps[f"remove {failed.id}"]["detail"]
    assert "manifest.json is missing" in steps[f"remove {lost.name}"]["detail"]
    assert steps["prune"]["data"]["damaged"] == [lost.name]
    assert backups.Store(runtime).ids() == [verified.id]
    assert backups.Store(runtime).damaged_ids() == []


# -- from the console -------------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_console_takes_and_verifies_a_backup(stack: LocalRuntime):
    """Keys only: 3 (Backups), b, Enter (no label): the backup's Steps stream into the
    log pane and the new set is listed; then v verifies the selected (newest) set."""
    from ocean.prom import Prometheus
    from tui.app import OceanConsole
    from tui.screens.backups import BackupsScreen
    from tui.screens.confirm import Ask
    from tui.widgets.step_log import StepLog

    before = {row["id"] for row in backups.list_backups(stack)}
    prom = Prometheus.of(stack)
    app = OceanConsole(stack, prom, refresh=2.0)

    async def wait_for(screen, words: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            await pilot.pause(0.3)
            text = "\n".join(str(line.text) for line in screen.query_one(StepLog).lines)
            if words in text or "✗" in text:
                break
        return text

    try:
        async with app.run_test(size=(140, 44)) as pilot:
            await pilot.press("3", "b")
            await pilot.pause(0.2)
            assert isinstance(app.screen, Ask)
            await pilot.press("enter")
            await pilot.pause(0.2)
            screen = app.screen
            assert isinstance(screen, BackupsScreen)
            text = await wait_for(screen, "backup done")
            assert "backup done" in text, text
            await pilot.pause(1.0)  # the list refreshes after the procedure
            new = {row["id"] for row in backups.list_backups(stack)} - before
            assert len(new) == 1
            assert screen.selected() == new.pop()  # newest first, cursor on it
            await pilot.press("v")
            text = await wait_for(screen, "verify done")
            assert "verify done" in text, text
    finally:
        prom.close()
