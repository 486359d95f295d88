"""Issue 25, High 2, as the attacker did it, on a live stack of its own: any local user
could read all of Redis. The chain: the redis exporter answered anyone and scraped any
`/scrape?target=`, sending its AUTH there; its Redis user could `CONFIG GET
masterauth` on the replica; the replication password then bought `PSYNC ? -1` on the
master, a full copy. Each link is tested on its own; the nginx exporter and stub_status,
anonymous too, with them. The attacks use only what any local user has (ports, httpx,
redis-py, sockets), so they run unchanged against a stack without the fix and fail there.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from ocean import access, secrets
from ocean.prom import Prometheus
from ocean.runtime.local import LocalRuntime
from tests.conftest import own_stack

pytestmark = pytest.mark.integration

# Generous: the machine may be busy (other stacks, a CPU hog), never a verdict on speed.
SCRAPE_TIMEOUT = 30.0
SETTLE_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with own_stack(tmp_path_factory, "exporters") as runtime:
        yield runtime


@pytest.fixture(scope="module")
def secret_values(stack: LocalRuntime) -> dict[str, str]:
    return secrets.load_or_create(stack.settings.secrets_file)


class Listener:
    """A TCP listener of the attacker's own on loopback: records what each connection
    sends first (a Redis client's AUTH comes first), answers +OK, hangs up."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received = bytearray()
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(5)
                try:
                    self.received += conn.recv(65536)
                    conn.sendall(b"+OK\r\n")
                    self.received += conn.recv(65536)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    own = Listener()
    try:
        yield own
    finally:
        own.close()


def _exporter(stack: LocalRuntime, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{stack.settings.ports['redis-exporter']}"


def _anonymous_get(url: str, **kwargs) -> httpx.Response | None:
    """What a local user gets: a response, or None when the server refused to talk
    (a TLS handshake it failed, a reset)."""
    try:
        return httpx.get(url, timeout=SCRAPE_TIMEOUT, **kwargs)
    except (httpx.TransportError, ssl.SSLError):
        return None


# -- link 1: the exporter as a credential oracle ------------------------------------------


def test_an_anonymous_scrape_of_a_foreign_target_gets_no_credentials(
    stack: LocalRuntime, listener: Listener, secret_values: dict[str, str]
):
    target = f"redis://127.0.0.1:{listener.port}"
    for scheme, verify in (("http", True), ("https", False)):
        response = _anonymous_get(
            f"{_exporter(stack, scheme)}/scrape", params={"target": target}, verify=verify
        )
        assert response is None or response.status_code != 200, response.text[:200]
    time.sleep(1)  # a scrape that did go out has reached the listener by now
    password = secret_values["REDIS_EXPORTER_PASSWORD"].encode()
    assert password not in listener.received
    assert b"AUTH" not in listener.received.upper()


def test_even_an_authorised_scrape_sends_credentials_to_the_stacks_redis_only(
    stack: LocalRuntime, listener: Listener, secret_values: dict[str, str]
):
    """Prometheus (holding the client certificate) asking for a foreign target: the
    exporter may connect, but it has no password for that address."""
    with stack.access().scrape_client(_exporter(stack, "https"), timeout=SCRAPE_TIMEOUT) as client:
        client.get("/scrape", params={"target": f"redis://127.0.0.1:{listener.port}"})
        own = client.get("/scrape", params={"target": stack.spec.redis_scrape_targets()[0]})
    deadline = time.monotonic() + 10
    while not listener.connections and time.monotonic() < deadline:
        time.sleep(0.1)
    assert listener.connections, "the exporter never reached the listener: test proves nothing"
    assert secret_values["REDIS_EXPORTER_PASSWORD"].encode() not in listener.received
    assert b"AUTH" not in listener.received.upper()
    # …while the stack's own master is scraped, authenticated, as before.
    assert own.status_code == 200
    assert "redis_up 1" in own.text


# -- anonymous access to the exporters and stub_status ----------------------------------


def test_the_redis_exporter_refuses_a_client_without_our_certificate(stack: LocalRuntime):
    plain = _anonymous_get(f"{_exporter(stack)}/metrics")
    assert plain is None or plain.status_code != 200
    assert _anonymous_get(f"{_exporter(stack, 'https')}/metrics", verify=False) is None
    with stack.access().scrape_client(_exporter(stack, "https"), timeout=SCRAPE_TIMEOUT) as client:
        assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize(
    ("port", "path", "expected"),
    [
        ("nginx-exporter", "/metrics", "nginx_connections_active"),
        ("nginx-status", "/stub_status", "Active connections"),
    ],
)
def test_nginx_exporter_and_stub_status_need_the_operators_password(
    stack: LocalRuntime, port: str, path: str, expected: str
):
    url = f"http://127.0.0.1:{stack.settings.ports[port]}{path}"
    assert httpx.get(url, timeout=SCRAPE_TIMEOUT).status_code == 401
    wrong = (access.OPS_USER, "wrong")
    assert httpx.get(url, timeout=SCRAPE_TIMEOUT, auth=wrong).status_code == 401
    right = httpx.get(url, timeout=SCRAPE_TIMEOUT, auth=stack.access().ops_auth)
    assert right.status_code == 200
    assert expected in right.text


def test_prometheus_still_scrapes_every_exporter(stack: LocalRuntime):
    """With the credentials it has: every target up, and the series the rules and
    dashboards read are there (maxmemory and the replication link included)."""
    wanted = {
        "redis_up": 2,
        "redis_memory_max_bytes": 2,
        'redis_connected_slaves{role="master"}': 1,
        'redis_master_link_up{role="replica"}': 1,
        "nginx_connections_active": 1,
        "nginx_http_requests_total": 1,
    }
    deadline = time.monotonic() + SETTLE_TIMEOUT
    with Prometheus.of(stack) as prom:
        while True:
            targets = prom.targets()
            down = [t for t in targets if t.health != "up"]
            missing = {q: n for q, n in wanted.items() if len(prom.query(q)) < n}
            if (targets and not down and not missing) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert targets and not down, [(t.job, t.instance, t.last_error) for t in down]
        assert not missing, missing
        assert {r["value"][1] for r in prom.query("redis_up")} == {"1"}
        assert prom.query('redis_master_link_up{role="replica"}')[0]["value"][1] == "1"


# -- link 2: the exporter's Redis user ------------------------------------------------


@pytest.mark.parametrize("service", ["redis-master", "redis-replica"])
def test_the_exporter_user_cannot_read_the_config(
    stack: LocalRuntime, service: str, secret_values: dict[str, str]
):
    client = redis.Redis(
        port=stack.settings.ports[service],
        username="exporter",
        password=secret_values["REDIS_EXPORTER_PASSWORD"],
        socket_timeout=10,
    )
    with client:
        assert "redis_version" in client.info("server")
        for command in (
            ("CONFIG", "GET", "masterauth"),
            ("CONFIG", "GET", "*"),
            ("CLIENT", "LIST"),
            ("CLIENT", "KILL", "TYPE", "replica"),
            ("SLOWLOG", "GET", "1"),
            ("ACL", "LIST"),
            ("GET", "anything"),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command(*command)


# -- link 3: a full copy of the data set -------------------------------------------------


@pytest.mark.parametrize(
    ("user", "secret"),
    [
        ("default", "REDIS_PASSWORD"),
        ("shop", "REDIS_SHOP_PASSWORD"),
        ("exporter", "REDIS_EXPORTER_PASSWORD"),
    ],
)
@pytest.mark.parametrize("command", [("PSYNC", "?", "-1"), ("SYNC",)])
def test_only_the_replication_user_may_ask_the_master_for_a_full_copy(
    stack: LocalRuntime, secret_values: dict[str, str], user: str, secret: str, command: tuple
):
    reply = _raw(stack, user, secret_values[secret], *command)
    assert reply.startswith(b"-NOPERM"), reply[:200]


def test_the_replication_user_gets_replication_and_nothing_else(
    stack: LocalRuntime, secret_values: dict[str, str]
):
    password = secret_values["REDIS_REPLICA_PASSWORD"]
    assert _raw(stack, "replica", password, "PSYNC", "?", "-1").startswith(b"+FULLRESYNC")
    for command in (("GET", "x"), ("CONFIG", "GET", "masterauth"), ("INFO",), ("KEYS", "*")):
        assert _raw(stack, "replica", password, *command).startswith(b"-NOPERM"), command


def test_the_replica_still_replicates(stack: LocalRuntime):
    key, value = "hardening-test", str(time.time())
    with redis.Redis.from_url(stack.redis_url(user="shop")) as master:
        master.set(key, value, ex=600)
    deadline = time.monotonic() + SETTLE_TIMEOUT
    with redis.Redis.from_url(stack.redis_url("redis-replica")) as replica:
        while replica.get(key) != value.encode() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert replica.get(key) == value.encode()
        assert replica.info("replication")["master_link_status"] == "up"


def _raw(stack: LocalRuntime, user: str, password: str, *command: str) -> bytes:
    """AUTH, then ``command``, on a raw connection to the master; the first reply line
    (PSYNC's +FULLRESYNC is followed by the RDB stream, which we do not read)."""
    with socket.create_connection(("127.0.0.1", stack.settings.ports["redis-master"]), 10) as s:
        reader = s.makefile("rb")
        s.sendall(_resp("AUTH", user, password))
        assert reader.readline() == b"+OK\r\n"
        s.sendall(_resp(*command))
        return reader.readline()


def _resp(*parts: str) -> bytes:
    out = f"*{len(parts)}\r\n".encode()
    for part in parts:
        data = part.encode()
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return out


# -- the sockets behind nginx survive a SIGKILL -------------------------------------------


def test_a_killed_nginx_exporter_comes_back_on_its_socket(stack: LocalRuntime):
    """SIGKILL leaves the exporter's socket file behind; the restart must not trip on
    it (runtime/scrape_sockets.py) and nginx must serve the new one."""
    pid = _pid(stack, "nginx-exporter")
    os.kill(pid, signal.SIGKILL)
    url = f"http://127.0.0.1:{stack.settings.ports['nginx-exporter']}/metrics"
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        if _pid(stack, "nginx-exporter") not in (None, pid):
            response = httpx.get(url, timeout=SCRAPE_TIMEOUT, auth=stack.access().ops_auth)
            if response.status_code == 200:
                break
        time.sleep(0.5)
    assert _pid(stack, "nginx-exporter") not in (None, pid)
    assert "nginx_up 1" in response.text


def _pid(stack: LocalRuntime, name: str) -> int | None:
    return next(s.pid for s in stack.status() if s.name == name)


# The system's python: the venv's may sit below a home other users cannot enter.
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(SYSTEM_PYTHON),
    reason="needs root (to act as other local users) and the system's python",
)
def test_another_local_user_cannot_reach_the_sockets_behind_nginx(stack: LocalRuntime):
    """The exporter's socket and nginx's stub_status socket are for nginx's workers and
    the exporter (both nobody) only: any other uid is stopped at their directory."""
    sockets = stack.scrape_sockets()
    probe = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n    s.connect(sys.argv[1])\nexcept PermissionError:\n    sys.exit(13)\n"
    )

    def connect_as(user: str, group: str, path) -> int:
        argv = [SYSTEM_PYTHON, "-c", probe, str(path)]
        return subprocess.run(argv, user=user, group=group, timeout=60).returncode

    for path in (sockets.nginx_exporter, sockets.nginx_status):
        assert connect_as("daemon", "daemon", path) == 13, path
        assert connect_as("nobody", "nogroup", path) == 0, path  # the probe can tell
