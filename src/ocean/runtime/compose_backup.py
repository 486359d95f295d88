"""Backup and restore on the compose runtime (issue 8): the same tools as the local
runtime (pg_dump, pg_restore, redis-check-rdb, scratch servers), run inside containers.

Mixed into ComposeRuntime before LocalRuntime, so each method here replaces the local
one of ocean/runtime/local_backup.py. LocalBackup keeps the whole procedure (exported
snapshot, checksums, BGSAVE, MIGRATE, database swap); what differs is only where a tool
runs, and that is what these hooks say:

- pg_dump and pg_restore: ``docker exec`` in the container of the server they talk to,
  the stack's postgres container or a scratch server's; the dump streams through
  stdout and stdin, so nothing depends on the backup dir being mounted. (A pipe is not
  seekable: pg_restore runs with one job here instead of PG_JOBS.)
- ``postgres --version``, initdb, redis-check-rdb and the scratch PostgreSQL and Redis:
  throwaway containers of the stack image (``docker run --rm --pull never``, host
  networking, the scratch dir mounted at its own path), named after this stack and
  labelled ``ocean.scratch=<project>``. Each is removed when its step ends, even when
  its docker CLI was killed; the CLI runs attached and forwards signals (SIGINT stops a
  scratch PostgreSQL fast), and it gets SIGTERM if the toolkit dies, so a killed
  restore does not leave a scratch server running. ``remove_scratch_containers``
  removes whatever is left anyway (for stop_all and purge).
- The Redis master's RDB comes out of its container through ``docker exec cat``.
- Writes stop with ``compose rm --stop`` of the shop colors (``stop``); they resume
  with the runtime's own ``start``.

Secrets: the PG* variables go to ``docker exec --env NAME`` by name only; the CLI takes
the values from its environment, never from the command line.
"""

from __future__ import annotations

import os
import pwd
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ocean.errors import OceanError
from ocean.fsys import open_private
from ocean.procfs import signal_on_parent_death, stop_child
from ocean.runtime import engine
from ocean.runtime.local_backup import check_pg_restore
from ocean.runtime.local_scratch import last_lines
from ocean.services import BY_NAME

SCRATCH_LABEL = "ocean.scratch"  # value: the compose project the container served
PG_CLIENT_ENV = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD")
REMOVE_TIMEOUT = 10.0
DOCKER_RUN_FAILED = 125  # docker run's own exit code: the container could not start


def _docker_error(stderr: str) -> str:
    """The daemon's answer in a docker CLI's stderr (it ends with a usage hint)."""
    said = [line for line in stderr.splitlines() if line.startswith("docker: ")]
    return said[0].removeprefix("docker: ") if said else last_lines(stderr)


class ComposeBackup:
    """The tool-running hooks of LocalBackup, in containers (``ComposeRuntime`` provides
    engine, project, client(), _containers(), settings and the local runtime's rest)."""

    # -- one-shot tools and scratch servers: throwaway containers of the stack image ------

    def _run_tool(
        self,
        argv: list[str],
        mount: Path | None = None,
        owner: pwd.struct_passwd | None = None,
    ) -> subprocess.CompletedProcess:
        with self._throwaway(argv[0]) as name:
            result = subprocess.run(
                [*self._docker_run(name, owner, mount), *argv],
                capture_output=True,
                text=True,
                env=self.engine.env(),
                preexec_fn=signal_on_parent_death(signal.SIGTERM),
            )
        if result.returncode == DOCKER_RUN_FAILED:  # not the tool's exit: it never ran
            raise OceanError(
                f"could not run {argv[0]} in a container of {engine.STACK_IMAGE}: "
                f"{_docker_error(result.stderr)}; `invoke engine --build` makes the image"
            )
        return result

    @contextmanager
    def _scratch_server(
        self,
        argv: list[str],
        workdir: Path,
        port: int,
        log: IO[bytes],
        stop_signal: int,
        stop_timeout: float,
        owner: pwd.struct_passwd | None = None,
        death_signal: int = signal.SIGTERM,
    ) -> Iterator[subprocess.Popen]:
        """The server in a throwaway container named after its port (``_pg_client``
        finds it so). ``stop_signal`` goes to the attached docker CLI, which forwards it
        to the server; the container goes with it (--rm). The CLI always dies with the
        toolkit (``death_signal``, which it forwards to the server), whoever the server
        runs as."""
        with self._throwaway(argv[0], suffix=str(port)) as name:
            proc = subprocess.Popen(
                [*self._docker_run(name, owner, workdir), *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.engine.env(),
                preexec_fn=signal_on_parent_death(death_signal),
            )
            try:
                yield proc
            finally:
                stop_child(proc, stop_signal, stop_timeout)

    def _docker_run(
        self, name: str, owner: pwd.struct_passwd | None, mount: Path | None
    ) -> list[str]:
        """``docker run`` of a throwaway stack-image container: host networking (the
        only networking here), ``mount`` at its own path, as ``owner`` or as we run."""
        user = f"{owner.pw_uid}:{owner.pw_gid}" if owner else f"{os.getuid()}:{os.getgid()}"
        argv = [
            engine.docker_client_path(), "run", "--rm", "--name", name,
            "--label", f"{SCRATCH_LABEL}={self.project}",
            "--pull", "never",  # local images only: a missing one must not reach out
            "--network", "host", "--user", user,
        ]  # fmt: skip
        if mount is not None:
            argv += ["--volume", f"{mount}:{mount}"]
        return [*argv, engine.STACK_IMAGE]

    def _scratch_name(self, what: str, suffix: str) -> str:
        # ``what`` may be a program's path (initdb's argv[0]): names allow [a-zA-Z0-9_.-].
        return f"{self.project}-scratch-{Path(what).name}-{suffix}"

    @contextmanager
    def _throwaway(self, what: str, suffix: str | None = None) -> Iterator[str]:
        """A name for one throwaway container; whatever runs under it is gone at the end."""
        name = self._scratch_name(what, suffix or secrets.token_hex(4))
        try:
            yield name
        finally:
            self._remove_container(name)

    def _remove_container(self, name: str) -> None:
        """Remove ``name`` if it is still there (its CLI killed before --rm could act)."""
        import docker.errors

        deadline = time.monotonic() + REMOVE_TIMEOUT
        while True:
            try:
                self.client().containers.get(name).remove(force=True)
                return
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if exc.status_code != 409 or time.monotonic() > deadline:
                    raise OceanError(f"could not remove scratch container {name}: {exc}") from None
                time.sleep(0.05)  # 409: --rm is removing it right now

    def scratch_containers(self) -> list[Any]:
        """This stack's throwaway containers that exist now (Docker SDK objects)."""
        return self.client().containers.list(
            all=True, filters={"label": f"{SCRATCH_LABEL}={self.project}"}
        )

    def remove_scratch_containers(self) -> int:
        """Remove every throwaway container of this stack, running or not: what a killed
        operation's CLI could not clean up. For stop_all and purge (the stack is going
        down): it would also end another process' running backup-verify."""
        found = self.scratch_containers()
        for container in found:
            self._remove_container(container.name)
        return len(found)

    # -- PostgreSQL clients: exec in the server's container -----------------------------

    def _pg_client(self, argv: list[str], env: dict[str, str], **popen: Any) -> subprocess.Popen:
        """``docker exec`` in the container of the server ``env`` names: the stack's
        postgres, or the scratch server listening on that port."""
        port = int(env["PGPORT"])
        if port == self.settings.ports["postgres"]:
            container = self._running_container("postgres")
        else:
            container = self._scratch_name("postgres", str(port))
        interactive = ["--interactive"] if popen.get("stdin") is not None else []
        by_name = [f"--env={name}" for name in PG_CLIENT_ENV]  # values: from our env
        return subprocess.Popen(
            [engine.docker_client_path(), "exec", *interactive, *by_name, container, *argv],
            env={**self.engine.env(), **{name: env[name] for name in PG_CLIENT_ENV}},
            preexec_fn=signal_on_parent_death(signal.SIGTERM),
            **popen,
        )

    def _pg_restore(self, dump: Path, env: dict[str, str], dbname: str, *extra: str) -> None:
        """pg_restore fed the dump on stdin: the container does not see the host's file."""
        with dump.open("rb") as source:
            proc = self._pg_client(
                ["pg_restore", "--exit-on-error", f"--dbname={dbname}", *extra],
                env,
                stdin=source,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            _, err = proc.communicate()
        check_pg_restore(proc.returncode, err)

    def _running_container(self, service: str) -> str:
        info = self._containers().get(service)
        if not info or info["state"] != "running":
            raise OceanError(f"{service} not running: start the stack with ./ocean up")
        return info["container"].id

    # -- Redis: the RDB out of the master's container -----------------------------------

    def _copy_redis_rdb(self, source: Path, dest: Path) -> None:
        # One `cat` opens the file once: Redis replaces it by rename, so it stays this
        # snapshot even if another save lands meanwhile.
        with open_private(dest) as out:
            result = subprocess.run(
                [engine.docker_client_path(), "exec", self._running_container("redis-master"),
                 "cat", str(source)],
                stdout=out,
                stderr=subprocess.PIPE,
                env=self.engine.env(),
            )  # fmt: skip
        if result.returncode != 0:
            raise OceanError(
                f"copying {source} out of the redis-master container failed: "
                f"{last_lines(result.stderr)}"
            )

    # -- writes: the shop colors' containers --------------------------------------------

    def _stop_shops(self, names: list[str]) -> None:
        # compose rm --stop returns once the container is gone: nothing left to wait for.
        for name in names:
            list(self.stop(BY_NAME[name]))
