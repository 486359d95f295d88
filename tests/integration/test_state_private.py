"""The state dir is its user's alone, and a killed backup-verify leaves nothing behind
(issue 25, Medium 4 and 5), on a real stack of its own.

- Medium 4: after a backup (encrypted and not), a verify and a restore, and in the
  middle of a verify (decrypted set, scratch servers running), `find <state> -perm
  /o+r` lists nothing.
- Medium 5: `kill -9` of backup-verify while its scratch PostgreSQL runs leaves no
  scratch server running, verified.json does not say ok, and the next verify succeeds
  and sweeps the leftovers; `down --purge` stops the scratch servers that still run.
- Medium 4: `kill -9` of backup midway leaves no pg_dump or gpg writing on, and the
  next backup removes the plain partial set.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocean.config import REPO_ROOT
from ocean.procedures import backup as backups
from ocean.procfs import read_stat
from ocean.runtime.local import LocalRuntime
from tests.conftest import own_stack
from tests.helpers import cli, readable_by_others
from tests.integration.test_backup import take


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with own_stack(tmp_path_factory, "private", wait_targets=False) as runtime:
        client = runtime._redis()
        client.mset({f"private:{i}": i for i in range(100)})
        client.close()
        yield runtime


def scratch_servers(runtime: LocalRuntime) -> set[int]:
    """Live processes working below the state dir's scratch/ (a scratch server's cwd is
    its data directory; zombies are dead)."""
    scratch = os.path.realpath(runtime.settings.state_dir / "scratch") + os.sep
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd") + os.sep
        except OSError:
            continue
        stat = read_stat(entry.name)
        if cwd.startswith(scratch) and stat and stat.state != "Z":
            found.add(int(entry.name))
    return found


def verified(runtime: LocalRuntime, backup_id: str) -> dict:
    rows = {row["id"]: row for row in backups.list_backups(runtime)}
    return rows[backup_id]["verified"]


def test_nothing_in_the_state_dir_is_readable_by_others(stack: LocalRuntime):
    runtime, state = stack, stack.settings.state_dir
    assert readable_by_others(state) == [], "after up"
    manifest = take(runtime, "private")
    plain = take(runtime, "private-plain", encrypt=False)
    assert readable_by_others(state) == [], "after a backup (encrypted and --no-encrypt)"

    # In the middle of a verify: the set decrypted, the scratch servers running.
    seen_midway = None
    for step in backups.verify(runtime, manifest.id):
        if step.name == "pg_restore":
            assert list((runtime.backup_location()).glob(".verify-*/*")), "decrypted files"
            seen_midway = readable_by_others(state)
    assert seen_midway == [], "during a verify"
    list(backups.verify(runtime, plain.id))
    assert readable_by_others(state) == [], "after a verify"

    list(backups.restore(runtime, manifest.id, yes=True, validate=False))
    assert readable_by_others(state) == [], "after a restore"
    assert runtime.color_ready(runtime.live_color())  # and the stack still serves,
    # its assets too: nginx's workers (nobody, as we are root) read them through an ACL.
    asset = next((state / "nginx" / "www" / "static").iterdir())
    with runtime.http("nginx", timeout=10) as front:
        served = front.get(f"/static/{asset.name}")
    assert served.status_code == 200 and served.content == asset.read_bytes()


def test_a_killed_verify_leaves_no_scratch_server_and_is_not_ok(stack: LocalRuntime):
    runtime = stack
    manifest = take(runtime, "killed-verify")
    assert cli(runtime, "backup-verify", manifest.id).returncode == 0
    assert verified(runtime, manifest.id)["status"] == "ok"

    running = kill_task_when(
        runtime, ["backup-verify", manifest.id], lambda: scratch_servers(runtime), 0.05
    )  # its scratch PostgreSQL runs

    deadline = time.monotonic() + 10
    while (left := scratch_servers(runtime)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"scratch server processes still run: {sorted(running)}"
    record = verified(runtime, manifest.id)
    assert record["status"] == "interrupted", record

    # The next verify succeeds and sweeps what the killed one left.
    again = cli(runtime, "backup-verify", manifest.id, "--json")
    assert again.returncode == 0, again.stderr
    steps = json.loads(again.stdout)["steps"]
    assert any(s["name"] == "sweep" for s in steps), steps
    assert verified(runtime, manifest.id)["status"] == "ok"
    assert not list(runtime.backup_location().glob(".verify-*"))
    assert not list((runtime.settings.state_dir / "scratch").iterdir())


def test_a_killed_backups_plain_dump_is_swept_by_the_next_backup(stack: LocalRuntime):
    runtime = stack
    root = runtime.backup_location()
    begun = lambda: list(root.glob(".partial-*/postgres.dump*"))  # noqa: E731
    kill_task_when(runtime, ["backup"], begun, 0.005)  # pg_dump has begun
    left = list(root.glob(".partial-*"))
    assert left  # what the kill left, plain dump and all
    deadline = time.monotonic() + 10
    while (working := holders_below(left)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not working, f"processes still write the killed backup's files: {working}"

    again = cli(runtime, "backup", "--json")
    assert again.returncode == 0, again.stderr
    assert any(s["name"] == "sweep" for s in json.loads(again.stdout)["steps"])
    assert not list(root.glob(".partial-*"))


def kill_task_when(runtime: LocalRuntime, args: list[str], ready, poll: float):
    """Start the task ``args`` as a user would, SIGKILL it as soon as ``ready()`` gives
    something (within 60 s); returns what ``ready()`` gave."""
    task = subprocess.Popen(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), *args],
        env=task_env(runtime),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (seen := ready()):
            assert task.poll() is None, f"{args[0]} ended before it was killed"
            assert time.monotonic() < deadline, f"{args[0]}: nothing to kill at within 60 s"
            time.sleep(poll)
        task.send_signal(signal.SIGKILL)
        task.wait()
        return seen
    finally:
        if task.poll() is None:
            task.kill()
            task.wait()


def task_env(runtime: LocalRuntime) -> dict[str, str]:
    return {
        **os.environ,
        "OCEAN_STATE_DIR": str(runtime.settings.state_dir),
        "OCEAN_PORT_BASE": str(runtime.settings.ports.base),
    }


def holders_below(paths: list[Path]) -> list[str]:
    """Live processes with a file open below ``paths`` (pid and name)."""
    roots = [os.path.realpath(p) + os.sep for p in paths]
    found = []
    for entry in Path("/proc").iterdir():
        stat = read_stat(entry.name) if entry.name.isdigit() else None
        if stat is None or stat.state == "Z":
            continue
        try:
            targets = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:
            continue
        if any(t.startswith(root) for t in targets for root in roots):
            found.append(f"{entry.name} {stat.comm}")
    return found


def test_down_purge_stops_the_scratch_servers_that_still_run(stack: LocalRuntime):
    """Last in this module: it deletes the stack.

    A verify still running (this process, midway) has a scratch PostgreSQL and a scratch
    Redis: `down --purge` returns only once both are gone. The regression test of
    Medium 5's purge: main deletes the files under them and leaves them running. Its
    Redis never notices (measured: still there 10 s later); its PostgreSQL exits by
    itself about 8 s later, so the check comes as the purge returns, with no grace."""
    runtime = stack
    rdb = runtime.backup_location() / take(runtime, "purge", encrypt=False).id / "redis.rdb"
    with contextlib.ExitStack() as verify_midway:
        verify_midway.enter_context(runtime._scratch_postgres())
        verify_midway.enter_context(runtime._scratch_redis(rdb))
        pids = scratch_servers(runtime)
        names = {read_stat(pid).comm for pid in pids}
        assert {"postgres", "redis-server"} <= names, names
        assert cli(runtime, "down").returncode == 0
        purged = cli(runtime, "down", "--purge", "--yes")
        assert purged.returncode == 0, purged.stderr
        left = pids & scratch_servers(runtime)
        assert not left, f"scratch servers {sorted(left)} survived down --purge"
        # (the state dir is made again for the audit log's record of the purge)
        assert not (runtime.settings.state_dir / "scratch").exists()
