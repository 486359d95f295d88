"""Backups that are proven by restoring: backup, backups, backup-verify, restore, prune.

    backup:  pg_dump (one exported snapshot, its table checksums beside it) → Redis BGSAVE
             → configs → encrypt (GPG) → sha256 per file → HMAC-signed manifest → rename
    verify:  checks → decrypt → scratch PostgreSQL and Redis on free ports → compare with
             the manifest → metric → remove the scratch instances
    restore: checks → config validation → decrypt → safety backup → stop writes → load
             PostgreSQL beside the shop's, compare, swap → Redis → configs → compare the
             live data with the manifest → traffic back → health check

Nothing is changed until every check passed (a tampered, truncated or wrong-key set is
refused naming the file and the check). A restore holds the deploy lock, so deploys and
restores never overlap. A restore that fails before traffic returns puts the safety
backup back; one that is killed (kill -9) leaves a marker, and the next restore redoes
the work (its safety backup is kept, and writes stay stopped until a restore succeeds).
Plain data (a dump before encryption, a decrypted set) lives only in 0700 work dirs
(``.partial-*``, ``.verify-*``, ``.restore-*``) removed on every exit path; what a kill
left of them, and any scratch server still running, is swept by the next backup, verify
or restore (ocean/workdirs.py). See docs/backup.md.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ocean import textfile, workdirs
from ocean.backup import manifest as manifests
from ocean.backup import sets as backup_sets
from ocean.backup.crypto import BackupKeys, sha256_file
from ocean.backup.manifest import PARTS, FileEntry, Manifest
from ocean.backup.retention import Policy, select_restorable
from ocean.errors import OceanError
from ocean.fsys import private_dir, writable_problem, write_private
from ocean.model import Step, StepStatus
from ocean.rollout.journal import Journal
from ocean.runtime.base import Runtime

# Tests kill a restore (SIGKILL) at a named point with this: writes-stopped,
# postgres-loaded, postgres-swapped, redis-flushed, redis-restored.
FAILPOINT_ENV = "OCEAN_BACKUP_FAILPOINT"
SPACE_MARGIN = 1.1  # decrypting needs the plain sizes plus this much headroom
# The backup dir's work in progress (backup/sets.py skips them): plain data, 0700.
WORK_PREFIXES = (".partial-", ".verify-", ".restore-")


def failpoint(name: str) -> None:
    """Die here, as kill -9 would, when OCEAN_BACKUP_FAILPOINT names this point."""
    if name in os.environ.get(FAILPOINT_ENV, "").split(","):
        os.kill(os.getpid(), signal.SIGKILL)


class Store:
    """The backup sets of a runtime's stack, and the keys that sign and open them."""

    def __init__(self, runtime: Runtime) -> None:
        self.root = runtime.backup_location()
        self.keys = BackupKeys(runtime.backup_key_dir())
        self.marker = runtime.settings.state_dir / "restore-in-progress.json"
        self.in_state = self.root.is_relative_to(runtime.settings.state_dir)

    def ids(self) -> list[str]:
        """The whole sets (with a manifest)."""
        return backup_sets.scan(self.root).whole

    def damaged_ids(self) -> list[str]:
        """Sets whose manifest is gone (backup/sets.py)."""
        return backup_sets.scan(self.root).damaged

    def path(self, backup_id: str) -> Path:
        found = backup_sets.scan(self.root)
        if backup_id in found.damaged:
            raise OceanError(
                f"backup {backup_id!r} is damaged: {self.root / backup_id / manifests.MANIFEST} "
                "is missing, so it cannot be verified or restored; `invoke backup-prune` "
                "removes it"
            )
        if backup_id not in found.whole:
            raise OceanError(
                f"unknown backup {backup_id!r} in {self.root}: `invoke backups` lists them"
            )
        return self.root / backup_id

    def read_marker(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.marker.read_text())
        except FileNotFoundError:
            return None

    def write_marker(self, data: dict[str, Any]) -> None:
        tmp = self.marker.with_suffix(".tmp")
        write_private(tmp, json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.marker)

    def sweep(self, runtime: Runtime) -> Iterator[Step]:
        """Remove what killed runs left: work dirs holding plain data, and scratch
        servers with their files (ocean/workdirs.py); a step when there was any."""
        swept = workdirs.sweep(self.root, WORK_PREFIXES) + runtime.sweep_scratch()
        if swept:
            # An older toolkit's killed decrypt left the home's detached agent running
            # (ours dies with the toolkit: backup/crypto.py).
            self.keys.stop_agent()
            names = ", ".join(path.name for path in swept[:3])
            more = f" and {len(swept) - 3} more" if swept[3:] else ""
            yield Step("sweep", StepStatus.INFO, f"removed what killed runs left: {names}{more}")

    def work_dir(self, name: str, keep: bool = False) -> contextlib.AbstractContextManager[Path]:
        """A private work dir (0700) in the backup dir, removed when the block ends."""
        # Ours (in the state dir, or made now): 0700. An OCEAN_BACKUP_DIR that exists
        # keeps its mode: every set and work dir in it is 0700 anyway.
        if self.in_state or not self.root.exists():
            private_dir(self.root)
        return workdirs.claim(self.root / name, keep=keep)


# -- backup ---------------------------------------------------------------------------


def _before_backup(runtime: Runtime, store: Store) -> None:
    """Fail before anything is written (GPG keys take seconds to make and would be left
    in a state dir that may not even exist): the stack holds data to back up, and the
    set and key directories can be written."""
    state = runtime.settings.state_dir
    if not state.is_dir():
        raise OceanError(f"state dir {state} does not exist: no stack to back up (./ocean up)")
    missing = sorted({"postgres", "redis-master"} - runtime.running())
    if missing:
        raise OceanError(f"{' and '.join(missing)} not running: start the stack with ./ocean up")
    for what, folder in (("backup dir", store.root), ("backup key dir", store.keys.dir)):
        if problem := writable_problem(folder):
            raise OceanError(f"{what} {folder} {problem}")


def backup(
    runtime: Runtime, label: str = "", encrypt: bool = True, _safety: bool = False
) -> Iterator[Step]:
    """Take one backup set; the generator returns its Manifest."""
    store = Store(runtime)
    if not _safety and (marker := store.read_marker()):
        raise OceanError(
            f"a restore of {marker['id']} is in progress or was interrupted: finish it with "
            f"`invoke restore {marker['id']} --yes` before taking new backups"
        )
    if not _safety:  # a restore's safety backup runs with the stack up, checked there
        _before_backup(runtime, store)
        yield from store.sweep(runtime)  # (a restore swept before its safety backup)
    started = time.time()
    clock = time.monotonic()
    recipient = store.keys.ensure(encrypt)
    backup_id = manifests.new_id(started, label, set(store.ids()))
    partial = store.root / f".partial-{backup_id}"
    try:
        with store.work_dir(partial.name, keep=True):
            made = _take(runtime, store, partial, backup_id, label, started, recipient)
            manifest = yield from made
            os.rename(partial, store.root / backup_id)
    except BaseException as exc:
        textfile.record_backup(runtime.settings, backup_id, 0, False)
        if _no_space(exc):
            free = _free_mib(store.root)
            raise OceanError(
                f"no space left on {store.root} ({free} MiB free) while writing backup "
                f"{backup_id}: removed the partial set, nothing else changed; free space "
                "or set OCEAN_BACKUP_DIR"
            ) from None
        raise
    seconds = time.monotonic() - clock
    textfile.record_backup(
        runtime.settings, backup_id, manifest.size, True, at=manifest.ended, duration_s=seconds
    )
    yield Step(
        "backup",
        detail=f"{backup_id}: {manifest.size / 2**20:.1f} MiB in {store.root}",
        seconds=seconds,
        data={"id": backup_id, "size": manifest.size, "path": str(store.root / backup_id)},
    )
    return manifest


def _take(
    runtime: Runtime,
    store: Store,
    partial: Path,
    backup_id: str,
    label: str,
    started: float,
    recipient: str | None,
) -> Iterator[Step]:
    """The set's files in ``partial`` (0700, plain data 0600); returns its Manifest."""
    step_clock = time.monotonic()
    postgres = runtime.dump_postgres(partial / "postgres.dump")
    rows = sum(t["rows"] for t in postgres["tables"].values())
    yield Step(
        "pg_dump",
        detail=f"{len(postgres['tables'])} tables, {rows:,} rows, PostgreSQL {postgres['version']}",
        seconds=time.monotonic() - step_clock,
    )
    step_clock = time.monotonic()
    redis_info = runtime.snapshot_redis(partial / "redis.rdb")
    keys = sum(d["keys"] for d in redis_info["databases"].values())
    yield Step(
        "redis snapshot",
        detail=f"{keys:,} keys in {len(redis_info['databases'])} databases",
        seconds=time.monotonic() - step_clock,
    )
    configs = runtime.export_configs(partial / "configs.tar")
    yield Step("configs", detail=f"{len(configs['files'])} files and a secrets template")
    step_clock = time.monotonic()
    files = {part: _seal(store.keys, partial / part, recipient) for part in PARTS}
    yield Step(
        "encrypt and checksum" if recipient else "checksum",
        detail=f"GPG to {recipient[-16:]}" if recipient else "not encrypted (--no-encrypt)",
        seconds=time.monotonic() - step_clock,
    )
    manifest = Manifest(
        id=backup_id,
        label=label,
        created=started,
        ended=time.time(),
        encrypted=bool(recipient),
        recipient=recipient,
        source=runtime.source_info(),
        postgres=postgres,
        redis=redis_info,
        files=files,
    )
    manifests.write(partial, manifest, store.keys)
    return manifest


def _seal(keys: BackupKeys, plain: Path, recipient: str | None) -> FileEntry:
    plain_sha, plain_size = sha256_file(plain)
    if not recipient:
        return FileEntry(plain.name, plain_size, plain_sha, plain_size, plain_sha)
    sealed = plain.with_name(plain.name + ".gpg")
    sha, size = keys.encrypt(plain, sealed, recipient)
    plain.unlink()
    return FileEntry(sealed.name, size, sha, plain_size, plain_sha)


def _no_space(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return isinstance(exc, OceanError) and "No space left" in str(exc)


def _free_mib(path: Path) -> int:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free // 2**20
    return 0


# -- list -----------------------------------------------------------------------------


def list_backups(runtime: Runtime) -> list[dict[str, Any]]:
    """Every set, oldest first: id, label, created, age, size, encryption, verification.

    A damaged set (manifest missing or unreadable) is a row too, with ``damaged``,
    ``problem`` and the time its id says it was made: it is shown, never hidden."""
    store = Store(runtime)
    now = time.time()
    found = backup_sets.scan(store.root)
    missing = f"{manifests.MANIFEST} is missing"
    rows = [_damaged_row(store.root / backup_id, missing) for backup_id in found.damaged]
    for backup_id in found.whole:
        set_dir = store.root / backup_id
        try:
            manifest = manifests.read_unverified(set_dir)
        except OceanError as exc:
            rows.append(_damaged_row(set_dir, str(exc)))
            continue
        rows.append(
            {
                "id": backup_id,
                "label": manifest.label,
                "created": manifest.created,
                "age_s": round(now - manifest.created),
                "size": manifest.size,
                "encrypted": manifest.encrypted,
                "duration_s": round(manifest.duration, 2),
                "postgres": manifest.postgres["version"],
                "orders": manifest.postgres["tables"].get("public.orders", {}).get("rows"),
                "redis_keys": sum(d["keys"] for d in manifest.redis["databases"].values()),
                "source": manifest.source,
                "verified": _verified(set_dir),
            }
        )
    return sorted(rows, key=lambda r: (r.get("created", 0), r["id"]))


def _damaged_row(set_dir: Path, why: str) -> dict[str, Any]:
    created = backup_sets.created_from_id(set_dir)
    return {
        "id": set_dir.name,
        "damaged": True,
        "problem": f"damaged ({why}): cannot be verified or restored",
        "created": created,
        "age_s": round(time.time() - created),
        "verified": {"status": "damaged"},
    }


def _verified(set_dir: Path) -> dict[str, Any]:
    try:
        record = json.loads((set_dir / manifests.VERIFIED).read_text())
    except (FileNotFoundError, ValueError):
        return {"status": "never"}
    if record.get("status") == "running":
        # Its work dir is held while the verify lives (ocean/workdirs.py).
        workdir = set_dir.parent / str(record.get("workdir") or ".verify-?")
        if not workdir.is_dir() or workdirs.abandoned(workdir):
            record = {**record, "status": "interrupted", "error": "the verify was killed"}
    return record


# -- checks shared by verify and restore ------------------------------------------------


def _preflight(runtime: Runtime, store: Store, set_dir: Path) -> Iterator[Step]:
    """Signature, sizes, checksums, key, PostgreSQL major, free space: before anything."""
    started = time.monotonic()
    manifest = manifests.check(set_dir, store.keys)
    ours = runtime.pg_major()
    theirs = int(manifest.postgres["major"])
    if theirs > ours:
        raise OceanError(
            f"{set_dir / manifests.MANIFEST}: backup {manifest.id} is from PostgreSQL {theirs}, "
            f"newer than this stack's {ours}: pg_restore cannot load it; restore it on a "
            f"PostgreSQL {theirs} stack. Nothing was changed"
        )
    need = int(sum(e.plain_size for e in manifest.files.values()) * SPACE_MARGIN)
    free = shutil.disk_usage(store.root).free
    if manifest.encrypted and need > free:
        raise OceanError(
            f"no space to decrypt backup {manifest.id}: it needs {need / 2**20:.0f} MiB in "
            f"{store.root}, {free / 2**20:.0f} MiB free. Nothing was changed"
        )
    yield Step(
        "integrity",
        detail=f"{manifest.id}: HMAC, {len(manifest.files)} files (size, sha256)"
        + (", key present" if manifest.encrypted else "")
        + f", PostgreSQL {theirs} ≤ {ours}",
        seconds=time.monotonic() - started,
    )
    return manifest


def _open(store: Store, set_dir: Path, manifest: Manifest, workdir: Path) -> Iterator[Step]:
    """The set's plain files in ``workdir`` (decrypted and checked); returns part → path."""
    started = time.monotonic()
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = {}
    for part, entry in manifest.files.items():
        source = set_dir / entry.name
        if manifest.encrypted:
            target = workdir / part
            try:
                digest, size = store.keys.decrypt(source, target)
            except OceanError as exc:
                raise manifests.IntegrityError(source, "decrypt", str(exc)) from None
            manifests.check_plain(source, entry, digest, size)
            paths[part] = target
        else:
            paths[part] = source  # checked by _preflight already
    yield Step(
        "decrypt" if manifest.encrypted else "open",
        detail=f"{len(paths)} files checked",
        seconds=time.monotonic() - started,
    )
    return paths


def _samples(manifest: Manifest) -> dict[str, list[str]]:
    return {db: list(keys) for db, keys in manifest.redis.get("samples", {}).items()}


# -- verify ---------------------------------------------------------------------------


def verify(runtime: Runtime, backup_id: str) -> Iterator[Step]:
    """Restore a set into scratch PostgreSQL and Redis, compare with its manifest,
    publish the result (ocean_restore_test_*), remove the scratch instances."""
    store = Store(runtime)
    set_dir = store.path(backup_id)
    yield from store.sweep(runtime)
    started = time.monotonic()
    name = f".verify-{backup_id}-{os.getpid()}"
    try:
        with store.work_dir(name) as workdir:
            # Until it ends, the set's record says a verify runs (in ``name``): killed,
            # it reads as interrupted (_verified), never as the last verify's ok.
            _write_verified(set_dir, "running", 0, "", workdir=name)
            manifest = yield from _preflight(runtime, store, set_dir)
            paths = yield from _open(store, set_dir, manifest, workdir)
            tables, redis_stats = yield from runtime.scratch_restore(
                paths["postgres.dump"], paths["redis.rdb"], _samples(manifest)
            )
        problems = manifests.compare_postgres(manifest.postgres, tables)
        problems += manifests.compare_redis(manifest.redis, redis_stats)
        if problems:
            raise OceanError(
                f"backup {backup_id} does not restore to what its manifest records: "
                + "; ".join(problems[:3])
            )
    except (Exception, KeyboardInterrupt) as exc:
        seconds = time.monotonic() - started
        textfile.record_restore_test(runtime.settings, False, seconds)
        interrupted = isinstance(exc, KeyboardInterrupt)
        _write_verified(set_dir, "interrupted" if interrupted else "failed", seconds, str(exc))
        raise
    seconds = time.monotonic() - started
    textfile.record_restore_test(runtime.settings, True, seconds)
    _write_verified(set_dir, "ok", seconds, "")
    rows = sum(t["rows"] for t in tables.values())
    keys = sum(d["persistent"] for d in redis_stats["databases"].values())
    yield Step(
        "verify",
        detail=f"{backup_id}: {len(tables)} tables ({rows:,} rows) and {keys:,} Redis keys "
        "equal the manifest; scratch instances removed",
        seconds=seconds,
        data={"id": backup_id, "tables": len(tables), "rows": rows, "redis_keys": keys},
    )


def _write_verified(
    set_dir: Path, status: str, seconds: float, error: str, workdir: str = ""
) -> None:
    record = {"status": status, "at": time.time(), "seconds": round(seconds, 2), "error": error}
    if workdir:
        record["workdir"] = workdir
    with contextlib.suppress(OSError):  # a read-only destination: the metric says it
        target = set_dir / manifests.VERIFIED
        tmp = target.with_name(f".{target.name}.tmp")
        write_private(tmp, json.dumps(record) + "\n")
        os.replace(tmp, target)  # a kill never leaves half a record


# -- restore --------------------------------------------------------------------------


def restore(runtime: Runtime, backup_id: str, yes: bool, validate: bool = True) -> Iterator[Step]:
    """Replace the shop's PostgreSQL and Redis data (and configs) with a backup's."""
    if not yes:
        raise OceanError(
            f"restore replaces the shop's data with backup {backup_id}: confirm with --yes"
        )
    store = Store(runtime)
    set_dir = store.path(backup_id)
    with Journal(runtime.settings.state_dir).lock(f"restore {backup_id}"):
        yield from store.sweep(runtime)
        manifest = yield from _preflight(runtime, store, set_dir)
        if validate:
            from ocean.procedures.deploy_gates import validation_gate

            yield from validation_gate(runtime)
        started = time.monotonic()
        with store.work_dir(f".restore-{backup_id}-{os.getpid()}") as workdir:
            paths = yield from _open(store, set_dir, manifest, workdir)
            marker = store.read_marker()
            if marker:
                safety = marker.get("safety")
                colors = marker.get("colors", [])
                yield Step(
                    "resume",
                    StepStatus.INFO,
                    f"a restore of {marker['id']} was interrupted at {marker.get('step')}: "
                    f"redoing it; safety backup {safety} is kept",
                )
            else:
                safe = yield from backup(
                    runtime, label=f"pre-restore-{backup_id}"[:40], _safety=True
                )
                safety, colors = safe.id, []
            marker = {"id": backup_id, "safety": safety, "colors": colors, "step": "stop writes"}
            store.write_marker(marker)
            colors = sorted({*colors, *runtime.stop_writes()})
            store.write_marker({**marker, "colors": colors})
            yield Step("writes stopped", detail=f"shop stopped: {', '.join(colors) or 'none ran'}")
            try:
                yield from _put_in_place(runtime, store, manifest, paths, marker)
            except (Exception, KeyboardInterrupt) as exc:
                yield Step("restore", StepStatus.FAILED, str(exc))
                yield from _back_to_safety(runtime, store, safety, workdir / "safety")
                yield from runtime.resume_writes(colors)
                yield from runtime.health_check()
                store.marker.unlink(missing_ok=True)
                raise OceanError(
                    f"restore of {backup_id} failed ({exc}); the pre-restore state is back "
                    f"(safety backup {safety}) and traffic flows again"
                ) from None
            yield from runtime.resume_writes(colors)
            yield Step("traffic back", detail=f"shop-{runtime.live_color()} serves")
            yield from runtime.health_check()
            runtime.drop_previous_postgres()
            store.marker.unlink(missing_ok=True)
        rows = sum(t["rows"] for t in manifest.postgres["tables"].values())
        yield Step(
            "restore",
            detail=f"{backup_id}: {rows:,} rows and the Redis keys equal the manifest; "
            f"safety backup {safety}",
            seconds=time.monotonic() - started,
            data={"id": backup_id, "safety": safety},
        )


def _put_in_place(
    runtime: Runtime,
    store: Store,
    manifest: Manifest,
    paths: dict[str, Path],
    marker: dict[str, Any],
    kill: Callable[[str], None] = failpoint,
) -> Iterator[Step]:
    def at(step: str) -> None:
        store.write_marker({**(store.read_marker() or marker), "step": step})
        kill(step)

    at("writes-stopped")
    tables = yield from runtime.load_postgres(paths["postgres.dump"])
    problems = manifests.compare_postgres(manifest.postgres, tables)
    if problems:
        raise OceanError(
            "the loaded database differs from the manifest: " + "; ".join(problems[:3])
        )
    at("postgres-loaded")
    yield from runtime.swap_postgres()
    at("postgres-swapped")
    yield from runtime.restore_redis(paths["redis.rdb"], kill)
    at("redis-restored")
    yield from runtime.restore_configs(paths["configs.tar"])
    tables, redis_stats = runtime.live_stats(_samples(manifest))
    problems = manifests.compare_postgres(manifest.postgres, tables)
    problems += manifests.compare_redis(manifest.redis, redis_stats)
    if problems:
        raise OceanError("the restored data differs from the manifest: " + "; ".join(problems[:3]))
    yield Step(
        "compare", detail="tables (rows, checksums), Redis keys and samples equal the manifest"
    )


def _back_to_safety(runtime: Runtime, store: Store, safety: str, workdir: Path) -> Iterator[Step]:
    """Put the safety backup back (PostgreSQL, Redis) after a failed restore."""
    set_dir = store.path(safety)
    manifest = manifests.check(set_dir, store.keys)
    paths = yield from _open(store, set_dir, manifest, workdir)
    yield from runtime.load_postgres(paths["postgres.dump"])
    yield from runtime.swap_postgres()
    yield from runtime.restore_redis(paths["redis.rdb"])
    yield Step("safety backup restored", detail=safety)


# -- prune ----------------------------------------------------------------------------


def prune(runtime: Runtime, policy: Policy, dry_run: bool = False) -> Iterator[Step]:
    """Remove the sets the policy does not keep (any rule keeping a set keeps it).

    Rules count restorable sets only and the newest verified set always stays
    (retention.select_restorable); damaged sets are removed, each named with its
    problem."""
    if policy.empty:
        raise OceanError(
            "say what to keep: --keep-last, --keep-daily, --keep-weekly and/or --keep-monthly"
        )
    store = Store(runtime)
    rows = list_backups(runtime)  # oldest first
    status = {row["id"]: row["verified"].get("status", "never") for row in rows}
    damaged = [row["id"] for row in rows if row.get("damaged")]
    kept = select_restorable(
        [(row["id"], row["created"], status[row["id"]]) for row in rows if not row.get("damaged")],
        policy,
    )
    marker = store.read_marker()
    if marker and marker.get("safety"):
        kept.setdefault(marker["safety"], []).append("safety backup of an unfinished restore")
    removed = 0
    verb = "would remove" if dry_run else "remove"
    for row in rows:
        backup_id = row["id"]
        if backup_id in kept:
            yield Step(f"keep {backup_id}", StepStatus.SKIPPED, ", ".join(kept[backup_id]))
            continue
        if not dry_run:
            shutil.rmtree(store.root / backup_id)
        removed += 1
        if row.get("damaged"):  # named with its problem: it may be the set someone seeks
            yield Step(f"{verb} {backup_id}", StepStatus.INFO, row["problem"])
        elif status[backup_id] == "failed":
            yield Step(f"{verb} {backup_id}", detail="its verification failed: no rule keeps it")
        else:
            yield Step(f"{verb} {backup_id}")
    yield Step(
        "prune",
        detail=f"{'would remove' if dry_run else 'removed'} {removed}, kept {len(kept)}"
        + (f", {len(damaged)} damaged" if damaged else "")
        + (" (dry run)" if dry_run else ""),
        data={
            "removed": removed,
            "kept": sorted(kept),
            "damaged": damaged,
            "policy": asdict(policy),
        },
    )
