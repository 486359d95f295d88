"""File-system trouble ends in one line, not a traceback (issue 25, Medium 12), and a
backup fails before it makes anything (issue 25, Low: GPG keys were made first).

"Read-only" is a read-only bind mount: these tests run as root, and root writes into a
chmod 0555 directory anyway, so a mode would prove nothing. Without the privilege to
mount, the read-only cases are skipped. The stack is never started: where a task must
get past "is the stack running?", `running()` is stubbed to say it is.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocean import statedir
from ocean.config import REPO_ROOT
from tests.task_runner import Outcome, run_task

PORT_BASE = "32500"  # hand-picked; nothing listens or connects


@pytest.fixture
def readonly(tmp_path: Path) -> Iterator[Path]:
    """A marked state dir (with a file), mounted read-only on itself."""
    folder = tmp_path / "ro"
    statedir.claim(folder, REPO_ROOT)
    (folder / "secrets.env").write_text("X=1\n")
    mount = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True, text=True
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {mount.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def stack_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "ocean.runtime.local.LocalRuntime.running", lambda self: {"postgres", "redis-master"}
    )


def _one_line(outcome: Outcome, *words: str) -> str:
    assert not outcome.traceback, outcome.traceback
    assert outcome.code == 1, outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), outcome.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _task(*args: str, state: Path | str, **env: str) -> Outcome:
    return run_task(*args, env={"OCEAN_STATE_DIR": str(state), "OCEAN_PORT_BASE": PORT_BASE, **env})


def test_backup_with_a_read_only_state_dir(readonly: Path, stack_running: None) -> None:
    _one_line(_task("backup", state=readonly), "read-only file system")


def test_backup_into_a_read_only_backup_dir_makes_no_keys(
    tmp_path: Path, readonly: Path, stack_running: None
) -> None:
    state = tmp_path / "state"
    statedir.claim(state, REPO_ROOT)
    _one_line(
        _task("backup", state=state, OCEAN_BACKUP_DIR=str(readonly / "sets")),
        "backup dir",
        "read-only file system",
    )
    assert sorted(p.name for p in state.iterdir()) == [statedir.MARKER]  # no backup-keys


def test_down_purge_of_a_read_only_state_dir(readonly: Path) -> None:
    _one_line(_task("down", "--purge", "--yes", state=readonly), "read-only file system")
    assert (readonly / "secrets.env").exists()


def test_plain_down_on_a_read_only_state_dir(readonly: Path) -> None:
    _one_line(_task("down", state=readonly), "Read-only file system")


@pytest.mark.parametrize("state", ["/dev/null", "/dev/null/below"])
def test_status_with_a_state_dir_that_is_no_directory(state: str) -> None:
    _one_line(_task("status", state=state), "ot a directory")


def test_backup_of_a_state_dir_that_does_not_exist_makes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "nowhere"
    _one_line(_task("backup", state=state), "does not exist")
    assert not state.exists()  # before: backup-keys/ with a fresh GPG key pair, backups/, data/


def test_backup_without_a_stack_makes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "idle"
    statedir.claim(state, REPO_ROOT)
    _one_line(_task("backup", state=state), "not running")
    assert sorted(p.name for p in state.iterdir()) == [statedir.MARKER]
