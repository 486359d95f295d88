"""Which Debian packages provide the programs the local runtime runs, and installing them."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from ocean.errors import OceanError
from ocean.services import Service

# program → Debian package
PROVIDERS: dict[str, str] = {
    "postgres": "postgresql",
    "initdb": "postgresql",
    "redis-server": "redis-server",
    "nginx": "nginx",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "prometheus-node-exporter": "prometheus-node-exporter",
    "prometheus-postgres-exporter": "prometheus-postgres-exporter",
    "prometheus-redis-exporter": "prometheus-redis-exporter",
    "prometheus-nginx-exporter": "prometheus-nginx-exporter",
    "prometheus-blackbox-exporter": "prometheus-blackbox-exporter",
    "setfacl": "acl",
    # Not a service: the backup procedure encrypts and signs with it (ocean/backup/crypto.py).
    "gpg": "gnupg",
    # Not a service: the storefront's browser tests and page-load benchmark drive it
    # (k6 browser, testing/k6/storefront_browser.js). ≈ 414 MB, ≈ 11 s to install.
    "chromium": "chromium",
}

# service → the programs it needs on this machine
PROGRAMS: dict[str, tuple[str, ...]] = {
    "postgres": ("postgres", "initdb"),
    "redis-master": ("redis-server",),
    "redis-replica": ("redis-server",),
    "nginx": ("nginx",),
    "prometheus": ("prometheus", "promtool"),
    "alertmanager": ("prometheus-alertmanager", "amtool"),
    "node-exporter": ("prometheus-node-exporter",),
    "postgres-exporter": ("prometheus-postgres-exporter",),
    "redis-exporter": ("prometheus-redis-exporter",),
    "nginx-exporter": ("prometheus-nginx-exporter",),
    "blackbox-exporter": ("prometheus-blackbox-exporter",),
}

ALL_PACKAGES = sorted(set(PROVIDERS.values()))


def binaries_for(services: list[Service], as_root: bool) -> list[str]:
    needed: list[str] = []
    for service in services:
        for program in PROGRAMS.get(service.name, ()):
            if program not in needed:
                needed.append(program)
    if as_root and any(s.name in ("postgres", "nginx") for s in services):
        # ACL entries let postgres and nginx's workers into the private state dir
        needed.append("setfacl")
    if any(s.name == "postgres" for s in services):
        needed.append("gpg")  # backups of the data it holds are encrypted
    if any(s.name == "nginx" for s in services):
        needed.append("chromium")  # the storefront's pages are measured in a real browser
    return needed


def packages_for(binaries: list[str]) -> list[str]:
    return sorted({PROVIDERS[binary] for binary in binaries})


def apt_command(pkgs: list[str]) -> str:
    return f"apt-get install -y --no-install-recommends {' '.join(pkgs)}"


def apt_install(pkgs: list[str]) -> None:
    """Install Debian packages (root only). Services must not start by themselves."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with _no_service_starts():
        _apt(pkgs, env)


def _apt(pkgs: list[str], env: dict[str, str]) -> None:
    # B607: a system tool from PATH
    update = subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True, env=env)  # nosec B607
    if update.returncode != 0:
        raise OceanError(f"apt-get update failed: {_last_line(update.stderr)}")
    result = subprocess.run(  # nosec B607  # a system tool from PATH
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *pkgs],
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        raise OceanError(f"apt-get install {' '.join(pkgs)} failed: {_last_line(result.stderr)}")


@contextlib.contextmanager
def _no_service_starts():
    """Debian starts a daemon on install (nginx on :80 …) unless policy-rc.d says no.

    Ours run under the stack's supervisor, on loopback ports of its own.
    """
    policy = Path("/usr/sbin/policy-rc.d")
    if policy.exists():  # the machine already has a policy: respect it
        yield
        return
    policy.write_text("#!/bin/sh\n# written by ocean during apt-get install\nexit 101\n")
    policy.chmod(0o755)
    try:
        yield
    finally:
        policy.unlink(missing_ok=True)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
