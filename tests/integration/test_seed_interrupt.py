"""SIGINT stops a big `seed` cleanly on a real PostgreSQL (issue 25, Medium 7): a typo'd
load must end on Ctrl-C (the terminal signals the whole process group) and on `kill
-INT` of the task alone, within seconds, in one line, with the load rolled back, no
loader left and no COPY still running in PostgreSQL.

Its own stack of PostgreSQL alone (the loader migrates the shop's schema itself).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ocean.config import REPO_ROOT
from ocean.procedures import stack as stack_procedures
from ocean.runtime.local import LocalRuntime
from tests.conftest import make_runtime
from tests.helpers import sigint_as_a_terminal_sends_it

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    runtime = make_runtime(tmp_path_factory, "seed-interrupt")
    try:
        list(stack_procedures.up(runtime, "postgres", True, False))
        yield runtime
    finally:
        list(stack_procedures.down(runtime))


def _superuser(runtime: LocalRuntime, dbname: str) -> psycopg.Connection:
    return psycopg.connect(
        host=runtime.settings.host,
        port=runtime.settings.ports["postgres"],
        user="postgres",
        password=runtime._secret("POSTGRES_PASSWORD"),
        dbname=dbname,
        autocommit=True,
    )


def _orders(runtime: LocalRuntime) -> int:
    with _superuser(runtime, "shop") as conn:
        found = conn.execute("SELECT to_regclass('orders')").fetchone()[0]
        return conn.execute("SELECT count(*) FROM orders").fetchone()[0] if found else 0


def _loaders(state: Path) -> list[int]:
    """Loader processes started for this stack (their environment names its state dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"ocean_shop.bulk" in cmdline and f"OCEAN_STATE_DIR={state}".encode() in environ:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("whom", ["process group (Ctrl-C)", "the task alone (kill -INT)"])
def test_sigint_ends_a_ten_million_order_seed(postgres_only: LocalRuntime, whom: str) -> None:
    runtime = postgres_only
    state = runtime.settings.state_dir
    env = {
        **os.environ,
        "OCEAN_STATE_DIR": str(state),
        "OCEAN_PORT_BASE": str(runtime.settings.ports.base),
    }
    env.pop("OCEAN_ENV", None)
    # Load the products and customers first, so the interrupted run is busy with orders.
    subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), "seed",
         "--products=100", "--customers=1000", "--orders=0"],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    before = _orders(runtime)
    task = subprocess.Popen(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), "seed",
         "--customers=0", "--orders=10000000"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a shell job has
        preexec_fn=sigint_as_a_terminal_sends_it,
    )  # fmt: skip
    seen: list[str] = []
    try:
        assert task.stderr is not None
        deadline = time.monotonic() + 120
        for line in task.stderr:  # the steps; the loader's progress comes as "orders N/M"
            seen.append(line)
            if "orders " in line and "/10,000,000" in line.replace("10000000", "10,000,000"):
                break
            assert time.monotonic() < deadline, "no progress within 120 s:\n" + "".join(seen)
        else:
            pytest.fail("seed ended before it was interrupted:\n" + "".join(seen))
        loaders = _loaders(state)
        assert loaders, "no loader found"
        started = time.monotonic()
        if whom.startswith("process group"):
            os.killpg(task.pid, signal.SIGINT)
        else:
            task.send_signal(signal.SIGINT)
        rest, _ = task.communicate(timeout=30)[1], None
        took = time.monotonic() - started
    finally:
        if task.poll() is None:
            task.kill()
            task.wait()
    stderr = "".join(seen) + (rest or "")
    assert task.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted", stderr
    assert "Traceback" not in stderr
    assert took < 15, f"took {took:.1f}s to stop"
    assert not _loaders(state), "a loader outlived the task"
    deadline = time.monotonic() + 10  # the server notices the closed connection
    while True:
        with _superuser(runtime, "postgres") as conn:
            copying = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'shop' "
                "AND state <> 'idle' AND query ILIKE 'COPY%'"
            ).fetchone()[0]
        if not copying or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert copying == 0, "PostgreSQL is still running the loader's COPY"
    assert _orders(runtime) == before  # rolled back: not one order of the load remains
