"""Bring-up, down and bad input on stacks of their own, beside the session stack."""

from __future__ import annotations

import socket
import subprocess
import time

import psycopg
import pytest
import redis

from ocean import secrets
from ocean.errors import OceanError
from ocean.procedures import stack as procedures
from ocean.runtime.local import LocalRuntime
from tests.conftest import make_runtime
from tests.helpers import run_cli

pytestmark = pytest.mark.integration


def _listening(port_base: int) -> list[str]:
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout
    ports = {str(port_base + offset) for offset in range(60)}
    return [line for line in out.splitlines() if line.split()[3].rsplit(":", 1)[1] in ports]


def test_a_second_stack_runs_beside_the_first_and_keeps_data_across_down(
    stack: LocalRuntime, tmp_path_factory
):
    second = make_runtime(tmp_path_factory, "second")
    assert second.settings.ports.base != stack.settings.ports.base
    services = "postgres,redis-replica,nginx,prometheus"
    list(procedures.up(second, services))
    try:
        password = secrets.load_or_create(second.settings.secrets_file)["POSTGRES_PASSWORD"]
        pg = {
            "host": "127.0.0.1",
            "port": second.settings.ports["postgres"],
            "user": "postgres",
            "password": password,
            "dbname": "postgres",
        }
        with psycopg.connect(**pg, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
        master = redis.Redis.from_url(second.redis_url())
        master.set("kept", "still here")
        master.close()
        # Both stacks are healthy at once.
        assert procedures.status(stack)["healthy"]

        pids = [s.pid for s in second.status() if s.pid]
        list(procedures.down(second))
        assert _listening(second.settings.ports.base) == []
        assert not any(_alive(pid) for pid in pids)
        assert procedures.status(stack)["healthy"], "down of one stack touched the other"

        list(procedures.up(second, services))
        with psycopg.connect(**pg) as conn:
            assert conn.execute("SELECT v FROM kept").fetchone() == ("still here",)
        master = redis.Redis.from_url(second.redis_url())
        assert master.get("kept") == b"still here"
        master.close()
    finally:
        list(procedures.down(second))


def test_purge_needs_yes_and_then_deletes_the_state_dir(tmp_path_factory):
    runtime = make_runtime(tmp_path_factory, "purge")
    list(procedures.up(runtime, "redis-master"))
    with pytest.raises(OceanError, match="--yes"):
        list(procedures.down(runtime, purge=True))
    assert runtime.settings.state_dir.exists()
    list(procedures.down(runtime, purge=True, yes=True))
    assert not runtime.settings.state_dir.exists()


def test_taken_port_is_one_clear_error_and_nothing_starts(tmp_path_factory):
    runtime = make_runtime(tmp_path_factory, "busy")
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", runtime.settings.ports["redis-replica"]))
    squatter.listen()
    try:
        result = run_cli(
            "up", state_dir=runtime.settings.state_dir, port_base=runtime.settings.ports.base
        )
    finally:
        squatter.close()
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(
        f"error: port {runtime.settings.ports['redis-replica']} for redis-replica is already in use"
    )
    assert not runtime.supervisor.alive()
    assert _listening(runtime.settings.ports.base) == []


def test_unknown_service_is_one_clear_error(tmp_path_factory):
    runtime = make_runtime(tmp_path_factory, "unknown")
    result = run_cli(
        "up",
        "--services",
        "postgres,nope",
        state_dir=runtime.settings.state_dir,
        port_base=runtime.settings.ports.base,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: unknown service nope: choose from postgres, redis-master, redis-replica, "
        "shop-blue, shop-green, nginx, prometheus, alertmanager, alert-inbox, node-exporter, "
        "postgres-exporter, redis-exporter, nginx-exporter, blackbox-exporter"
    )
    assert not runtime.supervisor.alive()


def test_unwritable_state_dir_is_one_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_cli("up", state_dir=blocker / "state", port_base=21000)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"error: state dir {blocker / 'state'} is not writable")


def test_missing_programs_name_the_apt_command(tmp_path_factory):
    runtime = make_runtime(tmp_path_factory, "missing")
    bare = LocalRuntime(runtime.settings, search_path=str(runtime.settings.state_dir))
    with pytest.raises(OceanError) as error:
        list(procedures.up(bare, "redis-replica", install=False))
    assert str(error.value) == (
        "missing programs: redis-server; install them with: "
        "apt-get install -y --no-install-recommends redis-server"
    )
    assert not bare.supervisor.alive()


def test_a_failed_start_leaves_nothing_running(tmp_path_factory):
    runtime = make_runtime(tmp_path_factory, "broken")
    list(procedures.up(runtime, "postgres"))
    list(procedures.down(runtime))
    # A damaged cluster: postgres refuses to start, so up must fail and clean up.
    (runtime.settings.data / "postgres" / "PG_VERSION").write_text("9\n")
    runtime.start_timeout = 3.0
    with pytest.raises(OceanError, match="postgres did not become healthy in 3s"):
        list(procedures.up(runtime, "postgres,redis-master,nginx"))
    assert not runtime.supervisor.alive()
    assert _listening(runtime.settings.ports.base) == []


def _alive(pid: int) -> bool:
    from ocean.runtime.local_supervisord import pid_alive

    deadline = time.monotonic() + 1
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    return pid_alive(pid)
