"""SIGINT stops `seed` cleanly (issue 25, Medium 7): the loader it spawned is gone, the
task ends within seconds with one line and exit 130.

Without a stack: the runtime's PostgreSQL checks are stubbed and the loader is a
stand-in that sleeps, so what is tested is the task's side (tasks.py, the procedure and
LocalRuntime.shop_command). The real loader's own SIGINT handling (ocean_shop.bulk rolls
the load back) needs a running PostgreSQL: not covered here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from ocean.config import REPO_ROOT
from tests.helpers import sigint_as_a_terminal_sends_it

DRIVER = textwrap.dedent(
    """
    import sys
    from invoke import Program
    from ocean.procedures import seed
    from ocean.runtime.local import LocalRuntime

    seed.LOADER = "fake_loader"  # the stand-in below, instead of ocean_shop.bulk
    LocalRuntime.active_names = lambda self: {"postgres"}
    LocalRuntime.probe = lambda self, service: (True, "stubbed")
    LocalRuntime._ensure_shop_database = lambda self: iter(())
    LocalRuntime._shop_database_url = lambda self: "postgresql://stub"
    LocalRuntime.redis_url = lambda self, user="": "redis://stub"
    Program(binary="invoke").run(["invoke", "--search-root", sys.argv[1], "seed"])
    """
)
LOADER = textwrap.dedent(
    """
    import os, sys, time
    open(os.environ["FAKE_LOADER_PID"], "w").write(str(os.getpid()))
    print("orders 0/100000", flush=True)
    time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigint_stops_seed_and_its_loader(tmp_path: Path) -> None:
    (tmp_path / "driver.py").write_text(DRIVER)
    (tmp_path / "fake_loader.py").write_text(LOADER)
    pid_file = tmp_path / "loader.pid"
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "OCEAN_STATE_DIR": str(tmp_path / "state"),
        "OCEAN_PORT_BASE": "32300",  # hand-picked; nothing connects
        "FAKE_LOADER_PID": str(pid_file),
    }
    task = subprocess.Popen(
        [sys.executable, str(tmp_path / "driver.py"), str(REPO_ROOT)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_a_terminal_sends_it,
    )
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert task.poll() is None, task.communicate()
            assert time.monotonic() < deadline, "the loader never started"
            time.sleep(0.1)
        loader = int(pid_file.read_text())
        time.sleep(0.5)  # the task is reading the loader's output now
        started = time.monotonic()
        task.send_signal(signal.SIGINT)  # the task only, as `kill -INT` does
        _, stderr = task.communicate(timeout=15)
        took = time.monotonic() - started
    finally:
        if task.poll() is None:
            task.kill()
    assert task.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted", stderr
    assert "Traceback" not in stderr
    assert took < 12  # the loader gets SIGTERM, then SIGKILL after 10 s at most
    for _ in range(50):  # reaped by the task before it exits; allow the kernel a moment
        if not _alive(loader):
            break
        time.sleep(0.1)
    assert not _alive(loader), "the loader outlived the interrupted task"
