"""Health probes: is a service not only running but doing its job?"""

from __future__ import annotations

import functools
import ssl

import httpx
import psycopg
import redis

from ocean.services import Service

# A probe that gets no answer in time is asked again, waiting longer: on a busy machine
# (CI, a CPU hog) a healthy service can take more than a second to answer, and one
# slow answer must not call it unhealthy (refuse a deploy, fail a restart). A refusal
# or a wrong answer is final at once; silence only after 1 + 2 + 4 s.
TIMEOUTS = (1.0, 2.0, 4.0)


def probe(  # nosec B107  # empty default: no password
    service: Service,
    host: str,
    port: int,
    password: str = "",
    auth: tuple[str, str] | None = None,
    client_tls: ssl.SSLContext | None = None,
) -> tuple[bool, str]:
    """(healthy, one-line detail) for ``service`` listening on host:port.

    ``password``: PostgreSQL's superuser or Redis' default user; ``auth``: the
    operator's basic auth, sent to services that require it (``service.auth``);
    ``client_tls``: the scrape CA and client certificate, for services that require
    one (``service.client_cert``).
    """
    for timeout in TIMEOUTS:
        try:
            if service.probe == "http":
                credentials = auth if service.auth else None
                tls_context = client_tls if service.client_cert else None
                return _http(service, host, port, credentials, tls_context, timeout)
            return _PROBES[service.probe](service, host, port, password, timeout)
        except Exception as exc:  # a probe reports, it never raises
            if not _timed_out(exc):
                return False, _one_line(exc)
            last = exc
    return False, f"no answer within {sum(TIMEOUTS):.0f}s ({_one_line(last)})"


def _timed_out(exc: Exception) -> bool:
    if isinstance(exc, (httpx.TimeoutException, redis.exceptions.TimeoutError)):
        return True
    return isinstance(exc, psycopg.OperationalError) and "timeout" in str(exc).lower()


def _http(
    service: Service,
    host: str,
    port: int,
    auth: tuple[str, str] | None,
    client_tls: ssl.SSLContext | None,
    timeout: float,
) -> tuple[bool, str]:
    scheme = "https" if client_tls is not None else "http"
    response = httpx.get(
        f"{scheme}://{host}:{port}{service.path}",
        timeout=timeout,
        auth=auth,
        verify=client_tls if client_tls is not None else _plain_http_context(),
    )
    return response.status_code == 200, f"GET {service.path} → {response.status_code}"


@functools.cache
def _plain_http_context() -> ssl.SSLContext:
    """The context an http:// probe hands httpx, made once. It is never used on the
    wire, but ``verify=True`` makes httpx build one per request, loading certifi's CA
    bundle each time: ≈ 17 ms of CPU a probe, and the console probes every service every
    2 s (issue 26: it idled at 18% of a core, 2-4% with one context)."""
    return ssl.create_default_context()


def _postgres(
    _service: Service, host: str, port: int, password: str, timeout: float
) -> tuple[bool, str]:
    with psycopg.connect(
        host=host,
        port=port,
        user="postgres",
        dbname="postgres",
        password=password,
        connect_timeout=max(1, round(timeout)),
    ) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    return True, f"PostgreSQL {version} accepting connections"


def _redis(
    _service: Service, host: str, port: int, password: str, timeout: float
) -> tuple[bool, str]:
    client = redis.Redis(host=host, port=port, password=password or None, socket_timeout=timeout)
    try:
        client.ping()
        return True, "PONG"
    finally:
        client.close()


def _redis_replica(
    _service: Service, host: str, port: int, password: str, timeout: float
) -> tuple[bool, str]:
    client = redis.Redis(host=host, port=port, password=password or None, socket_timeout=timeout)
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
