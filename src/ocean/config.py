"""Where the stack lives and which ports it uses: one port plan, one state dir, and the
environment (dev, staging, prod: ``ocean.environments``) whose definition drives the rest.

``Settings.from_env`` is the one place an environment becomes settings. Precedence,
highest first: a task's explicit flag (applied by the task), an OCEAN_* variable
(``OCEAN_STATE_DIR``, ``OCEAN_PORT_BASE``, ``OCEAN_RUNTIME``, …), the environment's
overlay, the base definition. The variables keep two stacks side by side: the
integration tests rely on it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

from ocean import environments
from ocean.errors import OceanError
from ocean.ports import EPHEMERAL_PORTS, HIGHEST_OFFSET, PORT_OFFSETS

# src/ocean/config.py → the checkout root
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORT_BASE = 18000


LOCAL_PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_ports() -> range:
    """The ports this machine hands to outgoing connections (Linux's default when the
    kernel does not say)."""
    try:
        low, high = (int(part) for part in LOCAL_PORT_RANGE.read_text().split())
        return range(low, high + 1)
    except (OSError, ValueError):
        return EPHEMERAL_PORTS


def check_not_ephemeral(base: int, source: str) -> None:
    """Every port of the plan must stay out of the ephemeral range: an outgoing
    connection may hold any of those ports the moment a service (a deploy's idle color)
    needs it back. OceanError (one line) otherwise."""
    plan, ephemeral = range(base, base + HIGHEST_OFFSET + 1), ephemeral_ports()
    if plan.start < ephemeral.stop and ephemeral.start < plan.stop:
        below = f"1024..{ephemeral.start - HIGHEST_OFFSET - 1}"
        above = f"{ephemeral.stop}..{65535 - HIGHEST_OFFSET}"
        choices = [r for r in (below, above) if int(r.split("..")[0]) <= int(r.split("..")[1])]
        raise OceanError(
            f"{source}={base}: its ports {plan.start}..{plan.stop - 1} overlap the "
            f"ephemeral ports {ephemeral.start}..{ephemeral.stop - 1} "
            f"(net.ipv4.ip_local_port_range): choose a base in {' or '.join(choices) or 'none'}"
        )


@dataclass(frozen=True)
class PortPlan:
    base: int

    def __post_init__(self) -> None:
        if not 1024 <= self.base <= 65535 - HIGHEST_OFFSET:
            raise OceanError(
                f"OCEAN_PORT_BASE={self.base} is out of range: use 1024..{65535 - HIGHEST_OFFSET}"
            )

    def __getitem__(self, name: str) -> int:
        return self.base + PORT_OFFSETS[name]

    def as_dict(self) -> dict[str, int]:
        return {name: self[name] for name in PORT_OFFSETS}


# Characters a state dir's path may hold besides letters and digits (any script). Its
# path goes unquoted into redis.conf (`dir`), and into nginx's, PostgreSQL's and
# supervisord's configs, where a space splits a directive, `#` starts a comment, `;`
# ends an nginx directive and `%` starts a supervisord expansion: refused up front in
# one line, rather than quoted in every config and found broken by a service that
# then never answers (issue 25, Medium 11).
PATH_PUNCTUATION = frozenset("/._-+@,=:~")


def path_problem(path: Path) -> str:
    """Why ``path`` cannot be a state dir ("" when it can)."""
    for char in str(path):
        if not (char.isalnum() or char in PATH_PUNCTUATION):
            what = "a space" if char == " " else "whitespace" if char.isspace() else repr(char)
            return (
                f"{str(path)!r} holds {what}, which the stack's configs (redis, nginx, "
                "PostgreSQL, supervisord) cannot hold unquoted: use letters, digits and "
                f"{' '.join(sorted(PATH_PUNCTUATION))} only"
            )
    return ""


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    ports: PortPlan
    host: str = "127.0.0.1"
    repo_root: Path = field(default=REPO_ROOT)
    # None: settings made in code (tests, validation renders) run with dev's definition.
    environment: environments.Environment | None = field(default=None, compare=False)
    runtime: str = ""  # "" = the environment's (OCEAN_RUNTIME applied by from_env)

    def __post_init__(self) -> None:
        if problem := path_problem(self.state_dir):
            raise OceanError(f"state dir (OCEAN_STATE_DIR) {problem}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, env_name: str = "") -> Settings:
        """Settings of environment ``env_name`` (else OCEAN_ENV, else dev), with the
        OCEAN_* variables of ``environ`` (default: the process's) on top."""
        env = os.environ if environ is None else environ
        name = env_name or env.get("OCEAN_ENV") or environments.DEFAULT_ENV
        definition = environments.load(name, REPO_ROOT)
        state = Path(env.get("OCEAN_STATE_DIR") or definition.path("state_dir", REPO_ROOT))
        raw_base = env.get("OCEAN_PORT_BASE") or str(definition["port_base"])
        try:
            base = int(raw_base)
        except ValueError:
            raise OceanError(f"OCEAN_PORT_BASE={raw_base!r} is not a number") from None
        source = "OCEAN_PORT_BASE" if env.get("OCEAN_PORT_BASE") else f"{name}'s port_base"
        check_not_ephemeral(base, source)
        state = state.expanduser().absolute()
        if state.exists() and not state.is_dir():  # e.g. /dev/null: say so, not ENOTDIR later
            raise OceanError(f"state dir (OCEAN_STATE_DIR) {state} is not a directory")
        return cls(
            state_dir=state,
            ports=PortPlan(base),
            host=definition["host"],
            environment=definition,
            runtime=env.get("OCEAN_RUNTIME") or definition["runtime"],
        )

    @property
    def env(self) -> environments.Environment:
        """The environment's definition (dev's for settings made in code)."""
        return self.environment or _dev()

    @property
    def env_name(self) -> str:
        return self.env.name

    # Everything the stack writes lives below state_dir.
    @property
    def etc(self) -> Path:
        return self.state_dir / "etc"

    @property
    def data(self) -> Path:
        return self.state_dir / "data"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run(self) -> Path:
        return self.state_dir / "run"

    @property
    def secrets_file(self) -> Path:
        return self.state_dir / "secrets.env"

    @property
    def backup_dir(self) -> Path:
        """OCEAN_BACKUP_DIR, else the environment's backup.dir, else <state>/backups."""
        chosen = os.environ.get("OCEAN_BACKUP_DIR")
        if chosen:
            return Path(chosen).absolute()
        return self.env.path("backup.dir", self.repo_root) or self.state_dir / "backups"

    @property
    def tls_dir(self) -> Path:
        """The CA and server certificate (ocean/tls.py); keys 0600."""
        return self.state_dir / "tls"


@functools.cache
def _dev() -> environments.Environment:
    return environments.load(environments.DEFAULT_ENV, REPO_ROOT)
