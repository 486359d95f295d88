"""The port plan's table: each service's offset from the port base, and the ephemeral
ports the plan must stay out of.

Its own module, below both ``config`` (which makes a plan from a base) and
``environments_schema`` (which checks an environment's ``port_base`` against it), so
neither has to import the other (issue 23: config ↔ environments ↔ environments_schema
was an import loop).
"""

from __future__ import annotations

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

# Linux's default ephemeral ports (net.ipv4.ip_local_port_range): outgoing connections
# take their local port from here, so a service stopped for a moment (a deploy's idle
# color) can find its port held by somebody's client socket and fail to start again.
EPHEMERAL_PORTS = range(32768, 61000)
