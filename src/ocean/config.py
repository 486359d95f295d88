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

# src/ocean/config.py → the checkout root
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORT_BASE = 18000

# Offsets from the port base. One table, so a collision is visible at a glance.
PORT_OFFSETS: dict[str, int] = {
    # HTTPS: the shop, and the operator endpoints (/prometheus/, /alertmanager/).
    "nginx": 0,
    "nginx-status": 1,
    # Plain HTTP: redirects to HTTPS, nothing else.
    "nginx-http": 2,
    "shop-blue": 10,
    "shop-green": 11,
    # Each shop's admin API (fault injection, back office): loopback only, token-guarded.
    "shop-blue-admin": 12,
    "shop-green-admin": 13,
    "postgres": 20,
    "redis-master": 30,
    "redis-replica": 31,
    "prometheus": 40,
    "alertmanager": 41,
    # The alert inbox (stack/inbox): its HTTP side (webhook and Slack receivers, the
    # /api/messages listing) and its SMTP side (STARTTLS + AUTH), where Alertmanager
    # delivers unless real receivers are configured (ocean/receivers.py).
    "alert-webhook": 42,
    "alert-smtp": 43,
    "node-exporter": 50,
    "postgres-exporter": 51,
    "redis-exporter": 52,
    "nginx-exporter": 53,
    "blackbox-exporter": 54,
}
HIGHEST_OFFSET = max(PORT_OFFSETS.values())


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


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    ports: PortPlan
    host: str = "127.0.0.1"
    repo_root: Path = field(default=REPO_ROOT)
    # None: settings made in code (tests, validation renders) run with dev's definition.
    environment: environments.Environment | None = field(default=None, compare=False)
    runtime: str = ""  # "" = the environment's (OCEAN_RUNTIME applied by from_env)

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
        return cls(
            state_dir=state.expanduser().absolute(),
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
