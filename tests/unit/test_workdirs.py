"""Private work dirs and the sweep of what a killed run left (ocean/workdirs.py), and
the private modes of fsys (issue 25, Medium 4 and 5)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocean import workdirs
from ocean.fsys import copy_private, open_private, remove_other_access
from ocean.procfs import read_stat

# Holds a work dir (the lock), starts a child working in it, says so, then waits.
HOLDER = """
import subprocess, sys, time
from pathlib import Path
from ocean import workdirs
with workdirs.claim(Path(sys.argv[1])) as path:
    child = subprocess.Popen(["sleep", "300"], cwd=path)
    (path / "plain.dump").write_text("secret")
    print(child.pid, flush=True)
    time.sleep(300)
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def alive(pid: int) -> bool:
    found = read_stat(pid)
    return found is not None and found.state != "Z"


def test_claim_makes_a_private_dir_and_removes_it_on_every_exit(tmp_path: Path):
    with workdirs.claim(tmp_path / ".verify-a") as path:
        assert mode(path) == 0o700
        assert not workdirs.abandoned(path)  # we hold it
    assert not path.exists()
    with pytest.raises(KeyboardInterrupt), workdirs.claim(tmp_path / ".verify-b") as path:
        raise KeyboardInterrupt
    assert not path.exists()
    with workdirs.claim(tmp_path / ".partial-c", keep=True) as path:
        path.rename(tmp_path / "c")  # a set put in place keeps its files
    assert (tmp_path / "c").is_dir()


def test_a_killed_runs_dir_is_swept_with_what_still_works_in_it(tmp_path: Path):
    held = tmp_path / ".verify-x-1"
    run = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(held)], stdout=subprocess.PIPE, text=True
    )
    orphan = int(run.stdout.readline())
    live = tmp_path / ".verify-y-2"
    live.mkdir()
    other_fd = workdirs.lock(live)  # another live run's
    try:
        assert workdirs.sweep(tmp_path, (".verify-",)) == []  # both held
        run.kill()
        run.wait()
        assert alive(orphan)  # a `sleep` does not die with its parent
        assert workdirs.abandoned(held)
        assert workdirs.sweep(tmp_path, (".verify-",)) == [held]
        assert not held.exists() and live.is_dir()
        deadline = time.monotonic() + 5
        while alive(orphan) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(orphan)
    finally:
        os.close(other_fd)
        run.stdout.close()


def test_private_files_whatever_was_there(tmp_path: Path):
    (tmp_path / "dump").write_text("older")
    os.chmod(tmp_path / "dump", 0o644)
    with open_private(tmp_path / "dump") as out:
        out.write(b"plain")
    (tmp_path / "src").write_text("rdb")
    os.chmod(tmp_path / "src", 0o644)
    copy_private(tmp_path / "src", tmp_path / "copy")
    assert (tmp_path / "dump").read_text() == "plain"
    assert mode(tmp_path / "dump") == 0o600 and mode(tmp_path / "copy") == 0o600


def test_remove_other_access_keeps_owner_and_group_bits(tmp_path: Path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    os.chmod(tmp_path / "d", 0o755)
    os.chmod(tmp_path / "d" / "f", 0o644)
    (tmp_path / "link").symlink_to("/etc/hostname")
    assert remove_other_access(tmp_path / "d") == 2
    assert mode(tmp_path / "d") == 0o750 and mode(tmp_path / "d" / "f") == 0o640
    assert remove_other_access(tmp_path) == 0  # the link is never followed
    assert mode(Path("/etc/hostname")) & 0o004
