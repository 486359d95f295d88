"""Scratch PostgreSQL and Redis servers of the local runtime (backup-verify, restore),
and what a killed run left of them (issue 25, Medium 5).

A scratch server works in ``<state>/scratch/<what>-*`` (0700, held by the run: see
ocean/workdirs.py) and dies with the toolkit, even when the toolkit is killed with
SIGKILL: its parent-death signal is armed after Popen switched to the postgres user
(Python runs ``preexec_fn`` after setuid), so Linux keeps it. The next backup, verify or
restore sweeps whatever a kill still left (``sweep_scratch``), and ``down --purge``
stops every scratch server of the stack before it deletes its files.

A mixin of ``LocalBackup``; ``ComposeBackup`` runs the same servers in containers.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import psycopg
import redis

from ocean import workdirs
from ocean.errors import OceanError
from ocean.fsys import copy_private, open_private, private_dir
from ocean.procfs import signal_on_parent_death, stop_child
from ocean.render import write_atomic
from ocean.runtime.private_state import grant_traverse

SCRATCH = "scratch"  # below the state dir


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _wait_loaded(client: redis.Redis, proc: subprocess.Popen, log: Path) -> None:
    """Until the scratch Redis answers, having loaded its RDB (at most 120 s)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            if client.ping():
                return
        except redis.BusyLoadingError:
            pass
        except redis.ConnectionError:
            if proc.poll() is not None:
                raise OceanError(
                    f"scratch redis did not start: {last_lines(log.read_text(errors='replace'))}"
                ) from None
        if time.monotonic() > deadline:
            raise OceanError("scratch redis did not load the snapshot in 120s")
        time.sleep(0.02)


def last_lines(text: str | bytes, lines: int = 2) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return " ".join(text.strip().splitlines()[-lines:])


class LocalScratch:
    """Scratch servers on this machine (``LocalRuntime`` provides settings, secrets,
    binaries and ``_run_tool``)."""

    def sweep_scratch(self, everything: bool = False) -> list[Path]:
        """Remove the scratch dirs no live run holds, killing the servers still running
        in them (``everything``: every scratch dir, held or not, for ``down --purge``)."""
        base = self.settings.state_dir / SCRATCH
        if not everything:
            return workdirs.sweep(base, ("postgres-", "redis-"))
        try:
            entries = list(base.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        # The servers only (they run in their data dirs): a live verify that holds its
        # dir is a toolkit, maybe the console, which sees its server go and fails.
        workdirs.kill_holders(entries, open_files=False)
        for entry in entries:
            shutil.rmtree(entry, ignore_errors=True)
        return entries

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
        """Run a scratch server (redis-server, postgres) on files below ``workdir``,
        listening on ``port``, its output to ``log``; when the block ends, ``stop_signal``,
        then SIGKILL after ``stop_timeout`` s. ``death_signal`` reaches it when we die,
        even by SIGKILL, run as ``owner`` or not (see the module's docstring)."""
        proc = subprocess.Popen(
            [self._bin(argv[0]), *argv[1:]],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=signal_on_parent_death(death_signal),
            **self._as_pg_user(owner),
        )
        try:
            yield proc
        finally:
            stop_child(proc, stop_signal, stop_timeout)

    @contextmanager
    def _scratch_dir(self, what: str) -> Iterator[Path]:
        """A new private directory below <state>/scratch, held while the block runs
        (ocean/workdirs.py), removed when it ends."""
        base = private_dir(self.settings.state_dir / SCRATCH)
        with workdirs.claim(base / f"{what}-{secrets.token_hex(4)}") as path:
            yield path

    @contextmanager
    def _scratch_redis(self, rdb: Path) -> Iterator[redis.Redis]:
        """A Redis on a free port that loaded ``rdb`` (appendonly off: it loads the RDB)."""
        host = self.settings.host
        with self._scratch_dir("redis") as workdir:
            copy_private(rdb, workdir / "dump.rdb")
            port = _free_port(host)
            argv = [
                "redis-server",
                "--bind", host, "--port", str(port), "--dir", str(workdir),
                "--dbfilename", "dump.rdb", "--appendonly", "no", "--save", "",
                "--daemonize", "no", "--logfile", "", "--maxmemory", "0",
            ]  # fmt: skip
            with (
                open_private(workdir / "redis.log") as log,
                self._scratch_server(argv, workdir, port, log, signal.SIGTERM, 10) as proc,
            ):
                client = redis.Redis(host=host, port=port)
                try:
                    _wait_loaded(client, proc, workdir / "redis.log")
                    yield client
                finally:
                    client.close()

    @contextmanager
    def _scratch_postgres(self) -> Iterator[dict[str, Any]]:
        """A throwaway PostgreSQL cluster on a free port (fsync off); yields conninfo."""
        owner = self._pg_owner()
        host = self.settings.host
        with self._scratch_dir("postgres") as workdir:
            if owner:
                grant_traverse(workdir, owner.pw_name)
                os.chown(workdir, owner.pw_uid, owner.pw_gid)
            data = workdir / "data"
            password = self._secret("POSTGRES_PASSWORD")
            pwfile = workdir / "pw"
            write_atomic(pwfile, password + "\n", mode=0o600)
            if owner:
                os.chown(pwfile, owner.pw_uid, owner.pw_gid)
            init = self._run_tool(
                [
                    "initdb", "-D", str(data), "-U", "postgres",
                    f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=peer",
                    "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
                ],
                mount=workdir, owner=owner,
            )  # fmt: skip
            pwfile.unlink()
            if init.returncode != 0:
                raise OceanError(f"scratch initdb failed: {last_lines(init.stderr or init.stdout)}")
            port = _free_port(host)
            argv = [
                "postgres", "-D", str(data), "-p", str(port),
                "-c", f"listen_addresses={host}", "-c", "unix_socket_directories=",
                "-c", "fsync=off", "-c", "full_page_writes=off",
                "-c", "synchronous_commit=off", "-c", "max_wal_size=2GB",
                "-c", "shared_buffers=64MB", "-c", "maintenance_work_mem=128MB",
            ]  # fmt: skip
            conninfo = {
                "host": host,
                "port": port,
                "user": "postgres",
                "password": password,
                "dbname": "postgres",
            }
            with (
                open_private(workdir / "postgres.log") as log,
                # SIGINT: PostgreSQL's fast shutdown; SIGQUIT, its immediate one, when we
                # die: nothing of a scratch cluster is worth a checkpoint.
                self._scratch_server(
                    argv, workdir, port, log, signal.SIGINT, 20, owner, signal.SIGQUIT
                ) as proc,
            ):
                deadline = time.monotonic() + 30
                while True:
                    try:
                        psycopg.connect(**conninfo, connect_timeout=2).close()
                        break
                    except psycopg.OperationalError:
                        if proc.poll() is not None or time.monotonic() > deadline:
                            text = (workdir / "postgres.log").read_text(errors="replace")
                            raise OceanError(
                                f"scratch postgres did not start: {last_lines(text)}"
                            ) from None
                        time.sleep(0.05)
                yield conninfo
