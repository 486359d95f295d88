"""Who each service runs as when the toolkit runs as root: PostgreSQL refuses root, and
Debian's nginx runs its workers as nobody when the master is root (no ``user``
directive). As any other user, every service runs as that user."""

from __future__ import annotations

import pwd

PG_USER = "postgres"
NGINX_WORKER_USER = "nobody"


def pg_config_group(as_root: bool) -> int | None:
    """The group postgresql.conf gets: postgres' when PostgreSQL runs as postgres."""
    return pwd.getpwnam(PG_USER).pw_gid if as_root else None


def scrape_socket_owner(as_root: bool) -> str | None:
    """Who owns the scrape sockets' directory: nginx's worker user when we are root
    (its workers and the nginx exporter run as that user), else us (None)."""
    return NGINX_WORKER_USER if as_root else None
