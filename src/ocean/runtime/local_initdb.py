"""The stack's PostgreSQL cluster, made once (initdb) before postgres first starts:
as the postgres user when the toolkit runs as root (PostgreSQL refuses root), with the
superuser's password from the secrets through a 0600 file that is removed at once."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator

from ocean.errors import OceanError
from ocean.model import Step, StepStatus
from ocean.render import write_atomic
from ocean.runtime import private_state
from ocean.stackspec.accounts import PG_USER
from ocean.stackspec.spec import StackSpec

# How initdb is run: here as a process (run_as_pg_user), by the compose runtime in a
# throwaway container of the stack image.
RunInitdb = Callable[[list[str], "pwd.struct_passwd | None"], subprocess.CompletedProcess]


def initdb(spec: StackSpec, run: RunInitdb) -> Iterator[Step]:
    """Make the cluster in <data>/postgres unless it exists; a failed one is removed."""
    settings = spec.settings
    pg_dir = settings.data / "postgres"
    if (pg_dir / "PG_VERSION").exists():
        yield Step("initdb", StepStatus.SKIPPED, "cluster exists")
        return
    started = time.monotonic()
    owner = pg_owner(spec.as_root)
    if spec.as_root:
        private_state.grant_traverse(pg_dir.parent, PG_USER)
    pg_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    pwfile = settings.data / ".pg-initial-password"
    write_atomic(pwfile, spec.secret("POSTGRES_PASSWORD") + "\n", mode=0o600)
    try:
        if owner:
            os.chown(pg_dir, owner.pw_uid, owner.pw_gid)
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        result = run(
            [
                spec.binary("initdb"),
                "-D",
                str(pg_dir),
                "-U",
                "postgres",
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=peer",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            owner,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        shutil.rmtree(pg_dir, ignore_errors=True)  # never leave a half-made cluster
        last = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise OceanError(f"initdb failed: {' '.join(last)}")
    yield Step("initdb", detail=str(pg_dir), seconds=time.monotonic() - started)


def run_as_pg_user(argv: list[str], owner: pwd.struct_passwd | None) -> subprocess.CompletedProcess:
    """Run initdb as the postgres user (``owner``; None: as we are)."""
    return subprocess.run(argv, capture_output=True, text=True, **as_pg_user(owner))


def pg_owner(as_root: bool) -> pwd.struct_passwd | None:
    """The postgres user when we are root (it owns the cluster), else None."""
    if not as_root:
        return None
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        raise OceanError(f"user {PG_USER} does not exist: install the postgresql package") from None


def as_pg_user(owner: pwd.struct_passwd | None) -> dict:
    """subprocess' arguments that run a tool as ``owner`` (None: as we are)."""
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
