"""The compose runtime's backup hooks without an engine: the command lines that run
pg_dump, pg_restore and the scratch servers in containers (issue 8).

tests/integration/test_compose_backup.py runs them on a real engine.
"""

from __future__ import annotations

import pwd
from pathlib import Path
from typing import Any

import pytest

from ocean.config import PortPlan, Settings
from ocean.runtime import compose_backup, engine
from ocean.runtime.compose import ComposeRuntime

PASSWORD = "s3cret-not-on-argv"


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What would have been started (subprocess.Popen of the hooks, recorded)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        compose_backup.subprocess, "Popen", lambda argv, **kw: calls.append({"argv": argv, **kw})
    )
    monkeypatch.setattr(compose_backup.engine, "docker_client_path", lambda: "/usr/bin/docker")
    return calls


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ComposeRuntime:
    settings = Settings(state_dir=tmp_path / "state", ports=PortPlan(24000))
    rt = ComposeRuntime(settings, engine.Engine(tmp_path / "engine"))
    monkeypatch.setattr(rt, "_running_container", lambda service: f"id-of-{service}")
    return rt


def _pg_env(port: int) -> dict[str, str]:
    return {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(port),
        "PGUSER": "postgres",
        "PGPASSWORD": PASSWORD,
    }


def test_pg_dump_execs_in_the_postgres_container_with_the_password_by_name(
    runtime: ComposeRuntime, started: list[dict[str, Any]]
) -> None:
    runtime._pg_client(["pg_dump", "--format=custom", "shop"], _pg_env(24020), stdout=None)
    call = started[-1]
    argv = call["argv"]
    assert argv[:2] == ["/usr/bin/docker", "exec"]
    assert "--interactive" not in argv  # nothing to feed it
    assert argv[argv.index("id-of-postgres") :] == [
        "id-of-postgres",
        "pg_dump",
        "--format=custom",
        "shop",
    ]
    assert "--env=PGPASSWORD" in argv and not any(PASSWORD in arg for arg in argv)
    assert call["env"]["PGPASSWORD"] == PASSWORD  # the CLI reads it from its environment
    assert call["env"]["DOCKER_HOST"] == runtime.engine.host


def test_pg_restore_into_a_scratch_server_execs_in_its_container(
    runtime: ComposeRuntime, started: list[dict[str, Any]], tmp_path: Path
) -> None:
    dump = tmp_path / "postgres.dump"
    dump.write_bytes(b"PGDMP")
    with dump.open("rb") as source:
        runtime._pg_client(["pg_restore", "--dbname=shop"], _pg_env(45678), stdin=source)
    argv = started[-1]["argv"]
    assert "--interactive" in argv  # the dump streams in on stdin
    assert f"{runtime.project}-scratch-postgres-45678" in argv


def test_throwaway_containers_use_host_networking_local_images_our_label_and_owner(
    runtime: ComposeRuntime, started: list[dict[str, Any]], tmp_path: Path
) -> None:
    owner = pwd.struct_passwd(("postgres", "x", 101, 104, "", "/", "/bin/sh"))
    argv = runtime._docker_run("scratch-x", owner, tmp_path)
    assert argv[1:3] == ["run", "--rm"]
    assert argv[argv.index("--network") + 1] == "host"
    assert argv[argv.index("--pull") + 1] == "never"  # no registry: never reach out
    assert argv[argv.index("--label") + 1] == f"{compose_backup.SCRATCH_LABEL}={runtime.project}"
    assert argv[argv.index("--user") + 1] == "101:104"
    assert argv[argv.index("--volume") + 1] == f"{tmp_path}:{tmp_path}"
    assert argv[-1] == engine.STACK_IMAGE
    assert not {"--publish", "-p", "--privileged"} & set(argv)
