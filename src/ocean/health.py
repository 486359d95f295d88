"""Health probes: is a service not only running but doing its job?"""

from __future__ import annotations

import httpx
import psycopg
import redis

from ocean.services import Service

TIMEOUT = 1.0


def probe(
    service: Service,
    host: str,
    port: int,
    password: str = "",
    auth: tuple[str, str] | None = None,
) -> tuple[bool, str]:
    """(healthy, one-line detail) for ``service`` listening on host:port.

    ``password``: PostgreSQL's superuser or Redis' default user; ``auth``: the
    operator's basic auth, sent to services that require it (``service.auth``).
    """
    try:
        if service.probe == "http":
            return _http(service, host, port, auth if service.auth else None)
        return _PROBES[service.probe](service, host, port, password)
    except Exception as exc:  # a probe reports, it never raises
        return False, _one_line(exc)


def _http(service: Service, host: str, port: int, auth: tuple[str, str] | None) -> tuple[bool, str]:
    response = httpx.get(f"http://{host}:{port}{service.path}", timeout=TIMEOUT, auth=auth)
    return response.status_code == 200, f"GET {service.path} → {response.status_code}"


def _postgres(_service: Service, host: str, port: int, password: str) -> tuple[bool, str]:
    with psycopg.connect(
        host=host,
        port=port,
        user="postgres",
        dbname="postgres",
        password=password,
        connect_timeout=1,
    ) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    return True, f"PostgreSQL {version} accepting connections"


def _redis(_service: Service, host: str, port: int, password: str) -> tuple[bool, str]:
    client = redis.Redis(host=host, port=port, password=password or None, socket_timeout=TIMEOUT)
    try:
        client.ping()
        return True, "PONG"
    finally:
        client.close()


def _redis_replica(_service: Service, host: str, port: int, password: str) -> tuple[bool, str]:
    client = redis.Redis(host=host, port=port, password=password or None, socket_timeout=TIMEOUT)
    try:
        info = client.info("replication")
    finally:
        client.close()
    link = info.get("master_link_status", "n/a")
    return link == "up", f"role {info.get('role')}, master link {link}"


_PROBES = {
    "postgres": _postgres,
    "redis": _redis,
    "redis-replica": _redis_replica,
}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()
