"""Backup sets without services: manifest signing and checks, GPG round trip, retention."""

from __future__ import annotations

import calendar
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from ocean.backup import manifest as manifests
from ocean.backup import sets as backup_sets
from ocean.backup.crypto import BackupKeys, sha256_file
from ocean.backup.manifest import FileEntry, IntegrityError, Manifest
from ocean.backup.retention import Policy, select, select_restorable
from ocean.errors import OceanError
from ocean.procfs import process_table

DAY = 86400.0


def make_set(tmp_path: Path, keys: BackupKeys, encrypt: bool = False) -> tuple[Path, Manifest]:
    set_dir = tmp_path / "set"
    set_dir.mkdir()
    recipient = keys.ensure(encrypt)
    files = {}
    for part, body in (
        ("postgres.dump", b"dump" * 1000),
        ("redis.rdb", b"rdb"),
        ("configs.tar", b"c"),
    ):
        plain = set_dir / part
        plain.write_bytes(body)
        plain_sha, plain_size = sha256_file(plain)
        if recipient:
            sealed = set_dir / f"{part}.gpg"
            sha, size = keys.encrypt(plain, sealed, recipient)
            plain.unlink()
            files[part] = FileEntry(sealed.name, size, sha, plain_size, plain_sha)
        else:
            files[part] = FileEntry(part, plain_size, plain_sha, plain_size, plain_sha)
    manifest = Manifest(
        id="20261128T000000Z",
        label="",
        created=time.time(),
        ended=time.time(),
        encrypted=bool(recipient),
        recipient=recipient,
        source={"color": "blue"},
        postgres={
            "major": 15,
            "version": "15",
            "tables": {"public.orders": {"rows": 3, "checksum": "9"}},
        },
        redis={"databases": {"0": {"keys": 2, "expires": 1, "persistent": 1}}, "samples": {}},
        files=files,
    )
    manifests.write(set_dir, manifest, keys)
    return set_dir, manifest


def test_manifest_round_trip_and_clean_set_passes(tmp_path: Path):
    keys = BackupKeys(tmp_path / "keys")
    set_dir, manifest = make_set(tmp_path, keys)
    assert manifests.check(set_dir, keys) == manifest
    assert (keys.hmac_path.stat().st_mode & 0o777) == 0o600
    assert manifest.size == sum(e.size for e in manifest.files.values())


@pytest.mark.parametrize(
    ("damage", "file", "check"),
    [
        (lambda d: (d / "redis.rdb").write_bytes(b"RDB"), "redis.rdb", "sha256"),
        (lambda d: (d / "postgres.dump").write_bytes(b"dump"), "postgres.dump", "size"),
        (lambda d: (d / "configs.tar").unlink(), "configs.tar", "presence"),
        (
            lambda d: (d / "manifest.json").write_text(
                (d / "manifest.json").read_text().replace('"rows": 3', '"rows": 4')
            ),
            "manifest.json",
            "hmac",
        ),
    ],
)
def test_damaged_set_is_refused_naming_file_and_check(tmp_path: Path, damage, file, check):
    keys = BackupKeys(tmp_path / "keys")
    set_dir, _ = make_set(tmp_path, keys)
    damage(set_dir)
    with pytest.raises(IntegrityError) as failure:
        manifests.check(set_dir, keys)
    assert failure.value.file.name == file
    assert failure.value.check == check
    assert file in str(failure.value) and check in str(failure.value)


def test_other_hmac_key_is_refused(tmp_path: Path):
    set_dir, _ = make_set(tmp_path, BackupKeys(tmp_path / "keys"))
    other = BackupKeys(tmp_path / "other")
    other.ensure(encrypt=False)
    with pytest.raises(IntegrityError, match="hmac"):
        manifests.check(set_dir, other)
    with pytest.raises(OceanError, match="no backup key"):
        manifests.check(set_dir, BackupKeys(tmp_path / "missing-dir"))


def test_gpg_round_trip_and_wrong_key(tmp_path: Path):
    keys = BackupKeys(tmp_path / "keys")
    set_dir, manifest = make_set(tmp_path, keys, encrypt=True)
    assert manifest.encrypted and manifest.recipient
    assert (keys.gnupg.stat().st_mode & 0o777) == 0o700
    assert manifests.check(set_dir, keys) == manifest
    entry = manifest.files["postgres.dump"]
    out = tmp_path / "plain"
    digest, size = keys.decrypt(set_dir / entry.name, out)
    assert (digest, size) == (entry.plain_sha256, entry.plain_size)
    assert out.read_bytes() == b"dump" * 1000
    # The same HMAC key but another GPG key pair: refused before decrypting.
    other = BackupKeys(tmp_path / "other")
    other.ensure(encrypt=False)
    other.hmac_path.write_text(keys.hmac_path.read_text())
    other.ensure(encrypt=True)
    with pytest.raises(IntegrityError) as failure:
        manifests.check(set_dir, other)
    assert failure.value.check == "key"
    assert failure.value.file.name.endswith(".gpg")


def test_compare_reports_rows_checksums_keys_and_samples():
    expected_pg = {"tables": {"a": {"rows": 1, "checksum": "1"}, "b": {"rows": 2, "checksum": "2"}}}
    assert manifests.compare_postgres(expected_pg, expected_pg["tables"]) == []
    problems = manifests.compare_postgres(
        expected_pg, {"a": {"rows": 2, "checksum": "1"}, "b": {"rows": 2, "checksum": "x"}}
    )
    assert problems == ["a: 2 rows, the manifest says 1", "b: checksum differs from the manifest"]
    expected = {
        "databases": {"0": {"keys": 5, "expires": 2, "persistent": 3}},
        "samples": {"0": {"k": "d1"}},
    }
    # Keys with a TTL may have expired since: only keys without TTL are counted.
    same = {
        "databases": {"0": {"keys": 3, "expires": 0, "persistent": 3}},
        "samples": {"0": {"k": "d1"}},
    }
    assert manifests.compare_redis(expected, same) == []
    worse = {
        "databases": {"0": {"keys": 2, "expires": 0, "persistent": 2}},
        "samples": {"0": {"k": "d2"}},
    }
    assert len(manifests.compare_redis(expected, worse)) == 2


def test_ids_are_unique_and_labels_cleaned():
    at = time.mktime((2026, 11, 28, 8, 30, 0, 0, 0, 0)) - time.timezone
    assert manifests.new_id(at, "", set()) == "20261128T083000Z"
    assert manifests.new_id(at, "pre migrate/2", set()) == "20261128T083000Z-pre-migrate-2"
    assert manifests.new_id(at, "", {"20261128T083000Z"}) == "20261128T083000Z-2"


def test_retention_keeps_last_daily_weekly_monthly():
    now = time.mktime((2026, 11, 28, 12, 0, 0, 0, 0, 0))
    # Two sets a day for 90 days, newest first.
    sets = [(f"s{i:03d}", now - i * DAY / 2) for i in range(180)]
    kept = select(sets, Policy(last=3, daily=7, weekly=4, monthly=3))
    assert {"s000", "s001", "s002"} <= set(kept)
    daily = [sid for sid, why in kept.items() if any(w.startswith("daily") for w in why)]
    assert len(daily) == 7
    weekly = [sid for sid, why in kept.items() if any(w.startswith("weekly") for w in why)]
    monthly = [sid for sid, why in kept.items() if any(w.startswith("monthly") for w in why)]
    assert len(weekly) == 4 and len(monthly) == 3
    assert len(kept) < 3 + 7 + 4 + 3  # rules overlap: the newest set is last, daily, weekly …
    # All zeros keeps everything (prune refuses such a policy anyway).
    assert len(select(sets, Policy())) == len(sets)
    with pytest.raises(ValueError):
        Policy(last=-1)


def test_prune_prefers_the_newest_verified_set_to_a_failed_one():
    """Issue 25, Medium 10: with --keep-last 1, a newer set whose verification failed
    used to be kept and the older verified one removed."""
    sets = [("old-ok", 1.0, "ok"), ("mid-never", 2.0, "never"), ("new-failed", 3.0, "failed")]
    assert select_restorable(sets, Policy(last=1)) == {
        "mid-never": ["last"],
        "old-ok": ["newest verified set"],
    }
    assert set(select_restorable(sets, Policy(last=2))) == {"mid-never", "old-ok"}
    # A failed set fills no rule's place; nothing verified: the rules alone.
    unproven = [("a", 1.0, "never"), ("b", 2.0, "failed")]
    assert select_restorable(unproven, Policy(last=1)) == {"a": ["last"]}
    assert set(select_restorable(sets, Policy())) == {"old-ok", "mid-never", "new-failed"}


def test_a_set_without_its_manifest_is_found_as_damaged(tmp_path: Path):
    whole, lost = tmp_path / "20261201T000000Z", tmp_path / "20261202T030405Z-x"
    for folder in (whole, lost, tmp_path / ".partial-20261203T000000Z", tmp_path / "other"):
        folder.mkdir()
    (whole / "manifest.json").write_text("{}")
    (lost / "postgres.dump.gpg").write_bytes(b"sealed")
    assert backup_sets.scan(tmp_path) == backup_sets.Found([whole.name], [lost.name])
    assert backup_sets.created_from_id(lost) == calendar.timegm((2026, 12, 2, 3, 4, 5))


def test_decrypt_survives_an_agent_that_goes_away_as_gpg_connects(tmp_path: Path):
    """A dying gpg-agent: its socket accepts a connection and closes it ("can't connect
    to the agent: End of file", seen once in CI between two decrypts). The decrypt
    asks it to stop and replaces its socket with its own agent's."""
    keys = BackupKeys(Path(tempfile.mkdtemp(prefix="k", dir="/tmp")))  # socket path < 108
    set_dir, manifest = make_set(tmp_path, keys, encrypt=True)
    entry = manifest.files["postgres.dump"]
    socket_path = subprocess.run(
        ["gpgconf", "--homedir", str(keys.gnupg), "--list-dirs", "agent-socket"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dying = socket.socket(socket.AF_UNIX)
    dying.bind(socket_path)
    dying.listen()
    accepted: list[int] = []

    def accept_once_then_go() -> None:
        conn, _ = dying.accept()
        accepted.append(1)
        dying.close()
        os.unlink(socket_path)
        conn.close()

    thread = threading.Thread(target=accept_once_then_go, daemon=True)
    thread.start()
    try:
        digest, size = keys.decrypt(set_dir / entry.name, tmp_path / "plain")
    finally:
        thread.join(timeout=5)
        shutil.rmtree(keys.dir, ignore_errors=True)
    assert accepted == [1]  # the dying agent was met first
    assert (digest, size) == (entry.plain_sha256, entry.plain_size)


def test_the_agent_dies_with_the_toolkit(tmp_path: Path):
    """kill -9 of a process that reached the secret key through the home's gpg-agent
    leaves no agent running (issue 25, Medium 4): the agent is the toolkit's child with
    a parent-death signal, not the detached daemon gpg starts by itself."""
    keys = BackupKeys(Path(tempfile.mkdtemp(prefix="k", dir="/tmp")))  # socket path < 108
    _, manifest = make_set(tmp_path, keys, encrypt=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_AGENT, str(keys.dir), manifest.recipient],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        assert agents_of(keys), "no agent while the key is in use"
        holder.kill()
        holder.wait()
        deadline = time.monotonic() + 5
        while (left := agents_of(keys)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"gpg-agent {left} outlived the killed toolkit"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        for pid in agents_of(keys):  # only if the assertion failed
            os.kill(pid, 9)
        shutil.rmtree(keys.dir, ignore_errors=True)


# Asks for the secret key (which starts the agent), then waits inside the agent's block.
HOLD_THE_AGENT = """
import sys, time
from pathlib import Path
from ocean.backup.crypto import BackupKeys
keys = BackupKeys(Path(sys.argv[1]))
with keys._agent():
    print(keys._fingerprint(sys.argv[2], secret=True) == sys.argv[2], flush=True)
    time.sleep(60)
"""


def agents_of(keys: BackupKeys) -> list[int]:
    """Live gpg-agents serving ``keys``' home (they name it on their command line)."""
    found = []
    for pid, stat in process_table().items():
        if stat.comm != "gpg-agent" or stat.state == "Z":
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(keys.gnupg).encode() in cmdline:
            found.append(pid)
    return found
