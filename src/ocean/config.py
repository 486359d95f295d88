"""Where the stack lives and which ports it uses: one port plan, one state dir.

Both come from the environment (``OCEAN_STATE_DIR``, ``OCEAN_PORT_BASE``) so that two
stacks can run side by side: the integration tests rely on it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

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
    # Nothing of ours listens here: Alertmanager's receivers post to it by default,
    # so a local webhook receiver (a test's, or an operator's) can pick alerts up.
    "alert-webhook": 42,
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

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        state = Path(env.get("OCEAN_STATE_DIR") or REPO_ROOT / ".ocean")
        raw_base = env.get("OCEAN_PORT_BASE") or str(DEFAULT_PORT_BASE)
        try:
            base = int(raw_base)
        except ValueError:
            raise OceanError(f"OCEAN_PORT_BASE={raw_base!r} is not a number") from None
        return cls(state_dir=state.expanduser().absolute(), ports=PortPlan(base))

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
    def tls_dir(self) -> Path:
        """The CA and server certificate (ocean/tls.py); keys 0600."""
        return self.state_dir / "tls"
