"""The services of the Ocean Shopping Center stack, as every runtime knows them.

A runtime adds how to run each one; procedures only ever use these names.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocean.errors import OceanError


@dataclass(frozen=True)
class Service:
    name: str
    summary: str
    probe: str  # how health is checked: http, postgres, redis, redis-replica
    path: str = ""  # HTTP path for http probes
    # Started by `up` only when asked for, or when it is the live color.
    on_demand: bool = False
    # Services that must be ready before this one starts.
    needs: tuple[str, ...] = ()
    # The port-plan entry the probe talks to, when not the service's own.
    probe_port: str = ""
    scheme: str = "http"
    # Its HTTP port requires the operator's basic auth (ocean/access.py).
    auth: bool = False
    # Its port is HTTPS and requires the scrape client certificate (ocean/scrape_tls.py).
    client_cert: bool = False
    # Its port-plan entry, when not its name (the alert inbox listens on alert-webhook,
    # the port Alertmanager's receivers have always posted to).
    port: str = ""

    @property
    def port_name(self) -> str:
        """The port-plan entry of its main listener (its url(), status, scrape target)."""
        return self.port or self.name

    @property
    def probe_port_name(self) -> str:
        """The port-plan entry its health probe talks to."""
        return self.probe_port or self.port_name


SERVICES: tuple[Service, ...] = (
    Service("postgres", "PostgreSQL: catalogue, orders", "postgres", scheme="postgresql"),
    Service("redis-master", "Redis master: cache, carts, locks", "redis", scheme="redis"),
    Service(
        "redis-replica",
        "Redis replica",
        "redis-replica",
        needs=("redis-master",),
        scheme="redis",
    ),
    # The colors: `up` starts the live one (blue until a deploy says otherwise); the
    # other runs only while a deploy brings it up or drains the old one.
    Service(
        "shop-blue",
        "shop API, blue color",
        "http",
        "/readyz",
        on_demand=True,
        needs=("postgres", "redis-master"),
    ),
    Service(
        "shop-green",
        "shop API, green color",
        "http",
        "/readyz",
        on_demand=True,
        needs=("postgres", "redis-master"),
    ),
    # nginx's own health: its status port answers (the shop behind it has its own
    # probe; stub_status there requires the operator's credentials, /healthz does not).
    # Its url() is the HTTPS front (the shop, /prometheus/, /alertmanager/).
    Service(
        "nginx",
        "nginx load balancer",
        "http",
        "/healthz",
        probe_port="nginx-status",
        scheme="https",
    ),
    Service("prometheus", "Prometheus", "http", "/-/ready", auth=True),
    Service("alertmanager", "Alertmanager", "http", "/-/ready", auth=True),
    # Where Alertmanager delivers when no real SMTP server, Slack or pager is configured
    # (stack/inbox; its SMTP side is on alert-smtp). Left off by a stack whose every
    # receiver is real (LocalRuntime.skipped_services).
    Service(
        "alert-inbox",
        "alert inbox: SMTP (STARTTLS, AUTH) and webhook receivers",
        "http",
        "/healthz",
        port="alert-webhook",
    ),
    Service("node-exporter", "node exporter", "http", "/metrics", auth=True),
    Service("postgres-exporter", "PostgreSQL exporter", "http", "/metrics", auth=True),
    # No basic auth in redis_exporter 1.45: mutual TLS instead (ocean/scrape_tls.py).
    Service(
        "redis-exporter", "Redis exporter", "http", "/metrics", scheme="https", client_cert=True
    ),
    # It exits at start when stub_status does not answer yet: start it after nginx. Its
    # port is nginx's (basic auth), in front of the exporter's private unix socket.
    Service("nginx-exporter", "nginx exporter", "http", "/metrics", needs=("nginx",), auth=True),
    Service("blackbox-exporter", "blackbox exporter", "http", "/-/healthy", auth=True),
)
BY_NAME = {service.name: service for service in SERVICES}


COLORS = ("blue", "green")


def select(
    names: str | list[str] | None, live: str = "blue", skipped: frozenset[str] = frozenset()
) -> list[Service]:
    """Services named in a comma-separated list (when empty: the stack, with the
    ``live`` color of the shop, less the ``skipped`` ones this stack does not run).

    Dependencies come along, in stack order. An unknown name is an error that lists
    the known ones.
    """
    if not names:
        live_name = f"shop-{live}"
        return [
            s
            for s in SERVICES
            if (not s.on_demand or s.name == live_name) and s.name not in skipped
        ]
    wanted = [n.strip() for n in names.split(",")] if isinstance(names, str) else names
    wanted = [n for n in wanted if n]
    if not wanted:  # `--services ,` once "succeeded" with nothing started
        raise OceanError(f"--services {names!r} names no service: list some, or leave it out")
    for name in wanted:
        get(name)
    chosen: set[str] = set()
    pending = list(wanted)
    while pending:
        name = pending.pop()
        if name not in chosen:
            chosen.add(name)
            pending.extend(BY_NAME[name].needs)
    return [service for service in SERVICES if service.name in chosen]


def get(name: str) -> Service:
    """One service by name; an unknown name is an error that lists the known ones."""
    if name not in BY_NAME:
        raise OceanError(f"unknown service {name}: choose from {', '.join(BY_NAME)}")
    return BY_NAME[name]
