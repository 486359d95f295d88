"""The compose runtime's files, without I/O on an engine: the local override, its env
file, the project name and the compose command lines (unit-tested offline).

The production file (stack/docker-compose.prod.yml) runs official images on compose's
default network. On the test machine there is no registry and no bridge, so the runtime
renders an override into ``<state>/compose/``: every service on host networking with
the port plan, the local images (ocean/runtime/engine.py), the configs the local
runtime renders (mounted at their own paths), and no ports, networks, builds or
depends_on left over from the production file (``!reset`` / ``!override``, Compose
v2.24+). Rendered, not committed, because the port plan and the state dir belong to one
stack (OCEAN_PORT_BASE, OCEAN_STATE_DIR).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ocean.config import REPO_ROOT, Settings
from ocean.scrape_tls import ScrapeTls
from ocean.services import Service

PROD_FILE = REPO_ROOT / "stack" / "docker-compose.prod.yml"
ENV_TEMPLATE = REPO_ROOT / "stack" / ".env.template"
# The idle color's profile: named on every command so `down` sees shop-green too.
GREEN_PROFILE = "green"
HEALTH_INTERVAL = "2s"
# Every container starts its program under umask 077, as supervisord starts the local
# runtime's (issue 25, Medium 4): the containers write into the bind-mounted state dir,
# and Docker's default umask 022 made Redis' AOF, Prometheus' TSDB, nginx's logs and
# the inbox's mail readable by every local user.
UMASK_THEN_EXEC = 'umask 077 && exec "$0" "$@"'


class Reset:
    """``!reset``: drop what the production file set."""

    def __init__(self, empty: Any) -> None:
        self.empty = empty


class Override:
    """``!override``: replace (not merge) what the production file set."""

    def __init__(self, value: Any) -> None:
        self.value = value


class _Dumper(yaml.SafeDumper):
    pass


def _reset(dumper: yaml.SafeDumper, data: Reset) -> yaml.Node:
    if isinstance(data.empty, dict):
        return dumper.represent_mapping("!reset", {})
    if isinstance(data.empty, list):
        return dumper.represent_sequence("!reset", [])
    return dumper.represent_scalar("!reset", "")


def _override(dumper: yaml.SafeDumper, data: Override) -> yaml.Node:
    if isinstance(data.value, dict):
        return dumper.represent_mapping("!override", data.value)
    return dumper.represent_sequence("!override", data.value)


_Dumper.add_representer(Reset, _reset)
_Dumper.add_representer(Override, _override)


@dataclass(frozen=True)
class LocalService:
    """How one service runs in the local override."""

    name: str
    image: str
    command: list[str]
    healthcheck: list[str]
    user: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    stop_signal: str = "SIGTERM"
    stop_grace_seconds: int = 10


def project_name(settings: Settings) -> str:
    """One compose project per state dir: two stacks never share containers."""
    digest = hashlib.sha256(str(settings.state_dir).encode()).hexdigest()[:8]
    return f"ocean-{digest}"


def prod_services(path: Path = PROD_FILE) -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(path.read_text()) or {}
    return data.get("services") or {}


def profile_only(path: Path = PROD_FILE) -> dict[str, list[str]]:
    """Services that only a profile other than the idle color's starts (no local build)."""
    return {
        name: profiles
        for name, service in prod_services(path).items()
        if (profiles := service.get("profiles")) and GREEN_PROFILE not in profiles
    }


def healthcheck_test(
    service: Service,
    host: str,
    port: int,
    python: bool = False,
    netrc: Path | None = None,
    scrape: ScrapeTls | None = None,
) -> list[str]:
    """A healthcheck that runs inside the local image (the same probe as the runtime's).

    Credentials never appear here (docker inspect shows the test): redis-cli reads
    REDISCLI_AUTH from the container's environment, curl the operator's password
    from ``netrc`` (a 0600 file in the mounted state dir) for services that need it,
    and the scrape client certificate's files (``scrape``) where one is required."""
    if service.probe == "postgres":
        return ["CMD", "pg_isready", "-q", "-h", host, "-p", str(port)]
    if service.probe == "redis":
        return ["CMD-SHELL", f"redis-cli -h {host} -p {port} ping | grep -q PONG"]
    if service.probe == "redis-replica":
        return [
            "CMD-SHELL",
            f"redis-cli -h {host} -p {port} info replication | grep -q master_link_status:up",
        ]
    url = f"http://{host}:{port}{service.path}"
    if python:  # the shop image has python, not curl
        return ["CMD", "python", "-c", f"import urllib.request as u; u.urlopen({url!r}, timeout=2)"]
    if service.auth and netrc is not None:
        return ["CMD", "curl", "-fsS", "--netrc-file", str(netrc), "-o", "/dev/null", url]
    if service.client_cert and scrape is not None:
        return [
            "CMD",
            "curl",
            "-fsS",
            "--cacert",
            str(scrape.ca_cert),
            "--cert",
            str(scrape.client_cert),
            "--key",
            str(scrape.client_key),
            "-o",
            "/dev/null",
            f"https://{host}:{port}{service.path}",
        ]
    return ["CMD", "curl", "-fsS", "-o", "/dev/null", url]


def override(services: list[LocalService]) -> dict[str, Any]:
    """The override document: the production services swapped for local ones."""
    out: dict[str, Any] = {}
    for s in services:
        spec: dict[str, Any] = {
            "image": s.image,
            "build": Reset(None),
            "network_mode": "host",
            "networks": Reset({}),
            "ports": Reset([]),
            "depends_on": Reset({}),
            # Files the production file mounts as secrets live in the state dir here.
            "secrets": Reset([]),
            "command": Override(private_umask(s.command)),
            "environment": Override(dict(s.env)),
            "volumes": Override(list(s.volumes)),
            "stop_signal": s.stop_signal,
            "stop_grace_period": f"{s.stop_grace_seconds}s",
            "healthcheck": Override(
                {
                    "test": list(s.healthcheck),
                    "interval": HEALTH_INTERVAL,
                    "timeout": "2s",
                    "retries": 15,
                    "start_period": "5s",
                }
            ),
        }
        if s.user:
            spec["user"] = s.user
        out[s.name] = spec
    return {"services": out}


def private_umask(argv: list[str]) -> list[str]:
    """``argv`` started through /bin/sh (every image here has it) with umask 077: what
    the program makes is its user's alone. exec keeps the program the container's PID 1,
    so it still gets the stop signal."""
    return ["/bin/sh", "-c", UMASK_THEN_EXEC, *argv]


def render_override(services: list[LocalService]) -> str:
    header = (
        "# Rendered by the compose runtime (ocean/runtime/compose_files.py): do not edit.\n"
        "# Local images, host networking, the port plan; merged over docker-compose.prod.yml.\n"
    )
    return header + yaml.dump(override(services), Dumper=_Dumper, sort_keys=False, width=120)


_ENV_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def env_file(values: dict[str, str], template: Path = ENV_TEMPLATE) -> str:
    """The template's variables (every one the production file reads), with ``values``."""
    lines = []
    for line in template.read_text().splitlines():
        match = _ENV_LINE.match(line)
        if match:
            name = match.group(1)
            lines.append(f"{name}={values.get(name, match.group(2))}")
    return "\n".join(lines) + "\n"


def compose_command(
    binary: list[str], project: str, files: list[Path], env_path: Path, *args: str
) -> list[str]:
    """``docker compose -p PROJECT -f PROD -f OVERRIDE --env-file ENV --profile green …``."""
    argv = [*binary, "--project-name", project, "--project-directory", str(files[0].parent)]
    for path in files:
        argv += ["--file", str(path)]
    return [*argv, "--env-file", str(env_path), "--profile", GREEN_PROFILE, *args]
