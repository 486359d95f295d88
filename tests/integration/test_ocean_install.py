"""A first install killed in the middle of pip is repaired by the next `./ocean` command
(issue 23), with the real pip and the real packages.

tests/unit/test_ocean_bootstrap.py covers the script's branches with stand-ins in
milliseconds; this one kills a real `pip install` in a clone at its worst moment, while
it writes packages into site-packages, and runs `./ocean` again (≈ 2–3 min of pip).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ocean.config import REPO_ROOT

pytestmark = pytest.mark.integration

INSTALL_TIMEOUT_S = 600


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _installed(site: Path) -> set[str]:
    return {p.name for p in site.glob("*.dist-info")}


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    target = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(target)], check=True)
    return target


def test_a_first_install_killed_inside_pip_is_repaired_by_the_next_command(clone: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    first = subprocess.Popen(
        ["sh", str(clone / "ocean"), "--version"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + INSTALL_TIMEOUT_S
    pip = site = before = None
    try:
        while time.monotonic() < deadline and first.poll() is None:
            if pip is None:
                pip = next(
                    (c for c in _children(first.pid) if "-m pip install" in _cmdline(c)), None
                )
            elif site is None:  # the venv's site-packages, whatever the Python
                site = next(clone.glob(".venv/lib/python3*/site-packages"), None)
                before = _installed(site) if site else None
            elif _installed(site) - before:  # pip is writing packages: kill it there
                os.kill(pip, signal.SIGKILL)
                break
            time.sleep(0.05)
        output = first.communicate(timeout=60)[0].decode(errors="replace")
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert pip is not None, f"pip never started: {output[-500:]}"
    assert first.returncode != 0, "pip finished before it was killed: nothing was interrupted"
    assert not (clone / ".venv/.ocean-installed").exists()

    second = subprocess.run(
        ["sh", str(clone / "ocean"), "--version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=INSTALL_TIMEOUT_S,
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout.startswith("Invoke "), second.stdout
    assert "preparing" in second.stderr  # it saw the broken install and installed again
    assert (clone / ".venv/.ocean-installed").exists()
    # The repaired venv runs the toolkit, not only invoke: a task lists.
    listed = subprocess.run(
        ["sh", str(clone / "ocean"), "--list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "deploy" in listed.stdout and "preparing" not in listed.stderr
