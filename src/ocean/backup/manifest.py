"""A backup set's manifest: what the set holds and what the data looked like.

A set is one directory ``<backups>/<id>/``::

    manifest.json         this, as JSON (sorted keys, so its bytes are stable)
    manifest.hmac         HMAC-SHA256 of manifest.json with the stack's backup key
    postgres.dump[.gpg]   pg_dump -Fc of the shop database
    redis.rdb[.gpg]       the Redis master's RDB snapshot (BGSAVE)
    configs.tar[.gpg]     the rendered configs (etc/) and a secrets template
    verified.json         the last backup-verify's result (status, not signed)

Integrity is checked in this order, each failure naming the file and the check, and
all of it before anything is decrypted, restored or stopped: the manifest's HMAC, then
each file's presence, size and sha256 (of the bytes on disk: encrypted or not), then
the key (the recipient's secret key must be in the keyring). After decryption each
plain file's sha256 is checked again.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ocean.backup.crypto import BackupKeys, sha256_file
from ocean.errors import OceanError
from ocean.fsys import write_private

FORMAT = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.hmac"
VERIFIED = "verified.json"
# The parts of a set, in restore order.
PARTS = ("postgres.dump", "redis.rdb", "configs.tar")
SAMPLE_KEYS = 100  # Redis keys whose values the manifest records (a digest each)


@dataclass
class FileEntry:
    name: str  # the file in the set (with .gpg when encrypted)
    size: int  # bytes on disk
    sha256: str  # of the bytes on disk
    plain_size: int
    plain_sha256: str  # of the decrypted content (= sha256 when not encrypted)


@dataclass
class Manifest:
    id: str
    label: str
    created: float  # unix time the backup started
    ended: float
    encrypted: bool
    recipient: str | None  # GPG fingerprint the files are encrypted to
    source: dict[str, Any]  # version, color, host, state dir
    postgres: dict[str, Any]  # version, major, database, format, tables {name: {rows, checksum}}
    redis: dict[str, Any]  # version, databases {db: {keys, expires, persistent}}, samples
    files: dict[str, FileEntry] = field(default_factory=dict)  # part → entry
    format: int = FORMAT

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.files.values())

    @property
    def duration(self) -> float:
        return self.ended - self.created

    def to_bytes(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        raw = json.loads(data)
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r} (this toolkit reads {FORMAT})")
        raw["files"] = {part: FileEntry(**entry) for part, entry in raw["files"].items()}
        return cls(**raw)


ID_STAMP = "%Y%m%dT%H%M%SZ"  # how every set id starts (backup/sets.py reads it back)


def new_id(created: float, label: str, taken: set[str]) -> str:
    """``20261128T083000Z[-label]``, unique among ``taken``."""
    stamp = time.strftime(ID_STAMP, time.gmtime(created))
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.")[:40]
    base = f"{stamp}-{clean}" if clean else stamp
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def write(set_dir: Path, manifest: Manifest, keys: BackupKeys) -> None:
    data = manifest.to_bytes()
    write_private(set_dir / MANIFEST, data)
    write_private(set_dir / SIGNATURE, keys.sign(data) + "\n")


def read_unverified(set_dir: Path) -> Manifest:
    """The manifest without checking its signature (for listing only)."""
    try:
        return Manifest.from_bytes((set_dir / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise OceanError(f"{set_dir / MANIFEST}: missing") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise OceanError(f"{set_dir / MANIFEST}: unreadable ({exc})") from None


class IntegrityError(OceanError):
    """A file of a set failed a check: ``file`` and ``check`` say which."""

    def __init__(self, file: Path, check: str, detail: str) -> None:
        self.file, self.check = file, check
        super().__init__(f"{file} failed the {check} check: {detail}; nothing was changed")


def check(set_dir: Path, keys: BackupKeys) -> Manifest:
    """Everything that can be checked before decrypting (see the module doc)."""
    path = set_dir / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IntegrityError(path, "presence", "the manifest is missing") from None
    try:
        signature = (set_dir / SIGNATURE).read_text()
    except FileNotFoundError:
        raise IntegrityError(set_dir / SIGNATURE, "presence", "the signature is missing") from None
    if not keys.signature_ok(data, signature):
        raise IntegrityError(
            path,
            "hmac",
            f"the signature does not match: the manifest was changed, or it was made with "
            f"another backup key than {keys.hmac_path}",
        )
    try:
        manifest = Manifest.from_bytes(data)
    except (ValueError, TypeError, KeyError) as exc:
        raise IntegrityError(path, "format", str(exc)) from None
    for entry in manifest.files.values():
        check_file(set_dir / entry.name, entry)
    if manifest.encrypted and not (manifest.recipient and keys.has_secret_key(manifest.recipient)):
        first = manifest.files.get(PARTS[0]) or next(iter(manifest.files.values()))
        raise IntegrityError(
            set_dir / first.name,
            "key",
            f"encrypted for GPG key {manifest.recipient}, whose secret key is not in "
            f"{keys.gnupg} (wrong or missing key; set OCEAN_BACKUP_KEY_DIR)",
        )
    return manifest


def check_file(path: Path, entry: FileEntry) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise IntegrityError(path, "presence", "the file is missing") from None
    if size != entry.size:
        raise IntegrityError(
            path, "size", f"{size} bytes, the manifest says {entry.size} (truncated?)"
        )
    digest, _ = sha256_file(path)
    if digest != entry.sha256:
        raise IntegrityError(path, "sha256", f"sha256 {digest[:16]}… ≠ {entry.sha256[:16]}…")


def check_plain(path: Path, entry: FileEntry, digest: str, size: int) -> None:
    if size != entry.plain_size or digest != entry.plain_sha256:
        raise IntegrityError(
            path, "plain sha256", "the decrypted content differs from what was backed up"
        )


# -- comparing data with the manifest ----------------------------------------------------


def compare_postgres(expected: dict[str, Any], actual: dict[str, dict[str, Any]]) -> list[str]:
    """Differences between the manifest's tables and ``actual`` ({table: {rows, checksum}})."""
    wanted = expected["tables"]
    problems = [f"table {t} is missing" for t in sorted(set(wanted) - set(actual))]
    problems += [f"table {t} is not in the backup" for t in sorted(set(actual) - set(wanted))]
    for table in sorted(set(wanted) & set(actual)):
        want, got = wanted[table], actual[table]
        if want["rows"] != got["rows"]:
            problems.append(f"{table}: {got['rows']} rows, the manifest says {want['rows']}")
        elif want["checksum"] != got["checksum"]:
            problems.append(f"{table}: checksum differs from the manifest")
    return problems


def compare_redis(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Differences in persistent key counts per database and in the sampled values.

    Keys with a TTL are not compared by count: they expire by themselves between the
    backup and the check (the manifest still records how many there were).
    """
    problems = []
    want_dbs, got_dbs = expected["databases"], actual["databases"]
    for db in sorted(set(want_dbs) | set(got_dbs)):
        want = want_dbs.get(db, {}).get("persistent", 0)
        got = got_dbs.get(db, {}).get("persistent", 0)
        if want != got:
            problems.append(f"redis db {db}: {got} keys without TTL, the manifest says {want}")
    for db, samples in expected.get("samples", {}).items():
        got_samples = actual.get("samples", {}).get(db, {})
        bad = [key for key, digest in samples.items() if got_samples.get(key) != digest]
        if bad:
            problems.append(f"redis db {db}: {len(bad)} sampled values differ (e.g. {bad[0]!r})")
    return problems
