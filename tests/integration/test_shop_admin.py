"""The shop's admin listener, fault injection, trace ids in logs, and OpenTelemetry export.

These run the real `python -m ocean_shop` as a subprocess: the two listeners (public
and 127.0.0.1 admin) exist only there. Infrastructure comes from the session fixtures
`database_url` and `redis_url` (tests/conftest.py); the shops here use a schema of
their own and Redis database 2, so they never share cached products with
test_shop_app.py (database 1).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psycopg
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from redis import Redis

from ocean import secrets as stack_secrets
from ocean.runtime.local import LocalRuntime
from tests.integration.shop_support import free_port

pytestmark = pytest.mark.integration

HEX32 = re.compile(r"[0-9a-f]{32}")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Shop:
    """One `python -m ocean_shop` process and how to reach it."""

    proc: subprocess.Popen
    port: int
    admin_port: int
    token: str | None
    log_path: Path
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def admin_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.admin_port}{path}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def admin(self, method: str, path: str = "/admin/faults", **kwargs) -> httpx.Response:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return self.client.request(method, self.admin_url(path), headers=headers, **kwargs)

    def set_faults(self, **settings) -> None:
        response = self.admin("PUT", json=settings)
        assert response.status_code == 200, response.text

    def metric(self, name: str, **labels: str) -> float:
        text = self.client.get(self.url("/metrics")).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def logs(self) -> list[dict]:
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stop(self, timeout: float = 10) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


@pytest.fixture(scope="module")
def shop_env(database_url: str, redis_url: str) -> Iterator[dict[str, str]]:
    """SHOP_* variables for a schema of this module's own and Redis database 2."""
    schema = f"shop_admin_{secrets.token_hex(4)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    params = conninfo_to_dict(database_url)
    params["options"] = f"-c search_path={schema}"
    redis_db2 = redis_url.rsplit("/", 1)[0] + "/2"
    Redis.from_url(redis_db2).flushdb()
    yield {
        "SHOP_DATABASE_URL": make_conninfo(**params),
        "SHOP_REDIS_URL": redis_db2,
        "SHOP_SEED_PRODUCTS": "50",
        "SHOP_STARTUP_TIMEOUT": "20",
    }
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def start_shop(env: dict[str, str], tmp_path: Path, *, token: bool = True, **extra: str) -> Shop:
    port, admin_port = free_port(), free_port()
    admin_token = secrets.token_urlsafe(24) if token else None
    full_env = {
        **os.environ,
        **env,
        "SHOP_PORT": str(port),
        "SHOP_ADMIN_PORT": str(admin_port),
        **({"SHOP_ADMIN_TOKEN": admin_token} if admin_token else {}),
        **extra,
    }
    for name in ("SHOP_OTLP_ENDPOINT", "SHOP_ADMIN_TOKEN"):
        if not full_env.get(name):
            full_env.pop(name, None)
    log_path = tmp_path / f"shop-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ocean_shop"], env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    shop = Shop(proc, port, admin_port, admin_token, log_path)
    deadline = time.monotonic() + 30
    while not (listening(port) and (not token or listening(admin_port))):
        if proc.poll() is not None or time.monotonic() > deadline:
            shop.stop()
            pytest.fail(f"shop did not start:\n{log_path.read_text()}")
        time.sleep(0.05)
    return shop


@pytest.fixture(scope="module")
def shop(shop_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """One shop with an admin token for the module; faults are reset around each test."""
    shop = start_shop(shop_env, tmp_path_factory.mktemp("shop"))
    yield shop
    assert shop.stop() == 0


@pytest.fixture
def admin_shop(shop: Shop) -> Iterator[Shop]:
    assert shop.admin("DELETE").status_code == 200
    yield shop
    shop.admin("DELETE")


# --- the admin listener and its token -------------------------------------------------


def test_admin_api_needs_the_token(admin_shop: Shop) -> None:
    url = admin_shop.admin_url("/admin/faults")
    for headers in (
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": f"Bearer {admin_shop.token}x"},
        {"Authorization": f"Basic {admin_shop.token}"},
        {"Authorization": admin_shop.token},
    ):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401, headers
        assert response.json() == {"detail": "admin token required"}
        assert response.headers["www-authenticate"] == "Bearer"

    response = admin_shop.admin("GET")
    assert response.status_code == 200
    assert response.json() == {"error_rate": 0.0, "latency_ms": 0, "fail_readiness": False}


def test_admin_routes_are_404_on_the_public_listener(admin_shop: Shop) -> None:
    unknown = httpx.get(admin_shop.url("/no/such/route"))
    # POST and OPTIONS match no admin route's method: a 405 would reveal the route.
    for method in ("GET", "PUT", "DELETE", "POST", "OPTIONS"):
        response = httpx.request(
            method,
            admin_shop.url("/admin/faults"),
            headers=admin_shop.auth,  # even with the right token
            json={"error_rate": 1.0},
        )
        assert response.status_code == 404, method
        assert response.json() == unknown.json() == {"detail": "Not Found"}
    assert admin_shop.admin("GET").json()["error_rate"] == 0.0  # the PUT changed nothing
    schema = httpx.get(admin_shop.url("/openapi.json")).json()
    assert not [path for path in schema["paths"] if path.startswith("/admin")]


@pytest.mark.parametrize(
    "body",
    [
        {"error_rate": 1.5},
        {"error_rate": -0.1},
        {"error_rate": "often"},
        {"latency_ms": 60_001},
        {"latency_ms": -1},
        {"latency_ms": 1.5},
        {"fail_readiness": "maybe"},
        {"error-rate": 1.0},  # a misspelt key must not silently turn everything off
        [0.5, 0, False],
    ],
)
def test_fault_settings_are_validated(admin_shop: Shop, body: object) -> None:
    admin_shop.set_faults(latency_ms=5)
    response = admin_shop.admin("PUT", json=body)
    assert response.status_code == 422, response.text
    assert admin_shop.admin("GET").json()["latency_ms"] == 5  # unchanged


def test_put_replaces_every_setting_and_delete_resets(admin_shop: Shop) -> None:
    admin_shop.set_faults(error_rate=0.25, latency_ms=10, fail_readiness=True)
    assert admin_shop.admin("GET").json() == {
        "error_rate": 0.25,
        "latency_ms": 10,
        "fail_readiness": True,
    }
    assert admin_shop.metric("shop_fault_injection_active", setting="error_rate") == 0.25
    assert admin_shop.metric("shop_fault_injection_active", setting="latency_ms") == 10
    assert admin_shop.metric("shop_fault_injection_active", setting="fail_readiness") == 1

    admin_shop.set_faults(latency_ms=20)  # what is left out is turned off
    assert admin_shop.admin("GET").json() == {
        "error_rate": 0.0,
        "latency_ms": 20,
        "fail_readiness": False,
    }
    response = admin_shop.admin("DELETE")
    assert response.json() == {"error_rate": 0.0, "latency_ms": 0, "fail_readiness": False}
    for setting in ("error_rate", "latency_ms", "fail_readiness"):
        assert admin_shop.metric("shop_fault_injection_active", setting=setting) == 0


def test_the_local_stack_gives_each_shop_its_admin_listener(stack: LocalRuntime) -> None:
    token = stack_secrets.load_or_create(stack.settings.secrets_file)["SHOP_ADMIN_TOKEN"]
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{stack.url('shop-blue-admin')}/admin/faults"
    assert stack.url("shop-blue-admin").startswith("http://127.0.0.1:")
    assert httpx.get(url).status_code == 401
    response = httpx.get(url, headers=auth)
    assert response.status_code == 200
    assert response.json()["error_rate"] == 0.0
    public = httpx.get(f"{stack.url('shop-blue')}/admin/faults", headers=auth)
    assert public.status_code == 404


# --- injected faults ------------------------------------------------------------------


def test_error_rate_one_fails_every_public_request_as_a_counted_5xx(admin_shop: Shop) -> None:
    by_id = {"route": "/api/products/{id}", "method": "GET"}
    errors_before = admin_shop.metric("shop_http_requests_total", status="5xx", **by_id)
    injected_before = admin_shop.metric("shop_injected_faults_total", kind="error")
    admin_shop.set_faults(error_rate=1.0)

    for product in range(1, 21):
        response = admin_shop.client.get(admin_shop.url(f"/api/products/{product}"))
        assert response.status_code == 500
        assert response.json() == {"detail": "injected fault"}
    listing = admin_shop.client.get(admin_shop.url("/api/products"))
    assert listing.status_code == 500
    # Probes, scrapes and the admin API are never failed.
    for path in ("/healthz", "/readyz", "/metrics"):
        assert admin_shop.client.get(admin_shop.url(path)).status_code == 200, path
    assert admin_shop.admin("GET").status_code == 200

    # Counted as 5xx of the route the request was for (the deploy analysis compares
    # error ratios by color from this counter), not as "other".
    assert admin_shop.metric("shop_http_requests_total", status="5xx", **by_id) == (
        errors_before + 20
    )
    assert (
        admin_shop.metric(
            "shop_http_requests_total", route="/api/products", method="GET", status="5xx"
        )
        >= 1
    )
    assert admin_shop.metric("shop_injected_faults_total", kind="error") == injected_before + 21

    admin_shop.admin("DELETE")
    assert admin_shop.client.get(admin_shop.url("/api/products/1")).status_code == 200


def test_error_rate_half_fails_about_half(admin_shop: Shop) -> None:
    admin_shop.set_faults(error_rate=0.5)
    statuses = [
        admin_shop.client.get(admin_shop.url("/api/products/3")).status_code for _ in range(400)
    ]
    assert set(statuses) == {200, 500}
    # Binomial(400, 0.5): mean 200, sd 10; 140..260 is six sd either side.
    assert 140 <= statuses.count(500) <= 260, statuses.count(500)


def test_latency_is_added_to_public_requests_only(admin_shop: Shop) -> None:
    admin_shop.client.get(admin_shop.url("/api/products/2"))  # warm: cached from now on
    delayed_before = admin_shop.metric("shop_injected_faults_total", kind="latency")
    admin_shop.set_faults(latency_ms=300)

    started = time.monotonic()
    response = admin_shop.client.get(admin_shop.url("/api/products/2"))
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert 0.3 <= elapsed < 2, elapsed

    started = time.monotonic()
    assert admin_shop.client.get(admin_shop.url("/healthz")).status_code == 200
    assert admin_shop.admin("GET").status_code == 200
    assert time.monotonic() - started < 0.3
    assert admin_shop.metric("shop_injected_faults_total", kind="latency") == delayed_before + 1


def test_fail_readiness_until_reset(admin_shop: Shop) -> None:
    admin_shop.set_faults(fail_readiness=True)
    ready = admin_shop.client.get(admin_shop.url("/readyz"))
    assert ready.status_code == 503
    body = ready.json()
    assert body["failed"] == ["fault_injection"]
    assert "PUT /admin/faults" in body["checks"]["fault_injection"]
    assert body["checks"]["postgres"] == body["checks"]["redis"] == "ok"
    # Only readiness fails: requests are still served.
    assert admin_shop.client.get(admin_shop.url("/api/products/1")).status_code == 200
    assert admin_shop.client.get(admin_shop.url("/healthz")).status_code == 200

    admin_shop.admin("DELETE")
    ready = admin_shop.client.get(admin_shop.url("/readyz"))
    assert ready.status_code == 200
    assert "fault_injection" not in ready.json()["checks"]


# --- logs and trace ids ---------------------------------------------------------------


def last_change(shop: Shop) -> dict:
    changes = [line for line in shop.logs() if line.get("event") == "fault_injection"]
    assert changes, shop.logs()[-5:]
    return changes[-1]


def test_every_change_is_logged_with_its_client_and_trace_id(admin_shop: Shop) -> None:
    request_id = secrets.token_hex(16)
    response = admin_shop.admin(
        "PUT", json={"latency_ms": 7}, headers={"X-Request-ID": request_id.upper()}
    )
    assert response.headers["x-request-id"] == request_id
    line = last_change(admin_shop)
    assert line["level"] == "WARNING"
    assert line["trace_id"] == request_id
    assert re.fullmatch(r"127\.0\.0\.1:\d+", line["client"])
    assert line["before"]["latency_ms"] == 0 and line["after"]["latency_ms"] == 7
    assert "latency_ms 0 -> 7" in line["message"] and line["client"] in line["message"]

    # A W3C traceparent wins over X-Request-ID.
    response = admin_shop.admin(
        "DELETE", headers={"traceparent": TRACEPARENT, "X-Request-ID": request_id}
    )
    assert response.headers["x-request-id"] == TRACE_ID
    line = last_change(admin_shop)
    assert line["trace_id"] == TRACE_ID
    assert line["message"].startswith("fault injection reset by 127.0.0.1:")

    # Neither (or an unusable X-Request-ID): a fresh id, echoed to the client.
    response = admin_shop.admin("DELETE", headers={"X-Request-ID": "not an id"})
    fresh = response.headers["x-request-id"]
    assert HEX32.fullmatch(fresh) and fresh != request_id
    assert last_change(admin_shop)["trace_id"] == fresh


def test_public_responses_carry_the_request_id(admin_shop: Shop) -> None:
    request_id = secrets.token_hex(16)
    for path in ("/api/products/1", "/healthz", "/no/such/page"):
        response = admin_shop.client.get(admin_shop.url(path), headers={"X-Request-ID": request_id})
        assert response.headers["x-request-id"] == request_id, path
    admin_shop.set_faults(error_rate=1.0)
    response = admin_shop.client.get(
        admin_shop.url("/api/products/1"), headers={"traceparent": TRACEPARENT}
    )
    assert (response.status_code, response.headers["x-request-id"]) == (500, TRACE_ID)


# --- process behaviour ----------------------------------------------------------------


def test_sigterm_stops_both_listeners_at_once(shop_env: dict[str, str], tmp_path: Path) -> None:
    shop = start_shop(shop_env, tmp_path)
    assert shop.admin("GET").status_code == 200
    started = time.monotonic()
    assert shop.stop() == 0
    assert time.monotonic() - started < 3
    assert not listening(shop.port) and not listening(shop.admin_port)
    assert any(line["message"] == "Application shutdown complete." for line in shop.logs())


def test_without_a_token_there_is_no_admin_listener(
    shop_env: dict[str, str], tmp_path: Path
) -> None:
    shop = start_shop(shop_env, tmp_path, token=False)
    try:
        assert not listening(shop.admin_port)
        response = httpx.get(shop.url("/admin/faults"), headers={"Authorization": "Bearer x"})
        assert response.status_code == 404
        assert httpx.get(shop.url("/api/products/1")).status_code == 200
    finally:
        assert shop.stop() == 0


def test_a_taken_admin_port_is_a_one_line_error(shop_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            **shop_env,
            "SHOP_PORT": str(free_port()),
            "SHOP_ADMIN_PORT": str(port),
            "SHOP_ADMIN_TOKEN": secrets.token_urlsafe(24),
        }
        result = subprocess.run(
            [sys.executable, "-m", "ocean_shop"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"ocean-shop: cannot listen on 127.0.0.1:{port} (SHOP_ADMIN_PORT): Address already in use"
    ]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"SHOP_ADMIN_TOKEN": "short"}, "SHOP_ADMIN_TOKEN must be at least 16 characters"),
        (
            {"SHOP_ADMIN_TOKEN": "x" * 20, "SHOP_PORT": "9000", "SHOP_ADMIN_PORT": "9000"},
            "SHOP_ADMIN_PORT must differ from SHOP_PORT (9000)",
        ),
        ({"SHOP_OTLP_ENDPOINT": "jaeger:4318"}, "SHOP_OTLP_ENDPOINT must be an http(s) URL"),
    ],
)
def test_bad_admin_or_tracing_settings_exit_with_one_line(variables: dict, message: str) -> None:
    env = {**os.environ, "SHOP_DATABASE_URL": "postgresql://db", "SHOP_REDIS_URL": "redis://c"}
    result = subprocess.run(
        [sys.executable, "-m", "ocean_shop"],
        env={**env, **variables},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"ocean-shop: {message}")


# --- OpenTelemetry --------------------------------------------------------------------


class FakeCollector:
    """An OTLP/HTTP trace receiver on 127.0.0.1, standing in for Jaeger (which cannot be
    installed here): it decodes each ExportTraceServiceRequest and keeps its spans."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        self.paths: list[str] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server calls it by this name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                collector.receive(self.path, body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.lock = threading.Lock()

    def receive(self, path: str, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: any_value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        {
                            "name": span.name,
                            "kind": span.kind,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "attributes": {a.key: any_value(a.value) for a in span.attributes},
                            "resource": resource,
                            "scope": scope_spans.scope.name,
                        }
                    )
        with self.lock:
            self.paths.append(path)
            self.spans.extend(spans)

    def wait_for(self, predicate, timeout: float = 10) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [span for span in self.spans if predicate(span)]
            if found:
                return found
            time.sleep(0.05)
        with self.lock:
            names = [(s["name"], s["trace_id"]) for s in self.spans]
        pytest.fail(f"no matching span in {len(names)} received: {names}")

    def __enter__(self) -> FakeCollector:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def any_value(value) -> object:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind


def db_system(span: dict) -> str | None:
    attributes = span["attributes"]
    return attributes.get("db.system.name") or attributes.get("db.system")


def test_spans_for_http_sql_and_redis_reach_the_collector(
    shop_env: dict[str, str], tmp_path: Path
) -> None:
    with FakeCollector() as collector:
        shop = start_shop(
            shop_env,
            tmp_path,
            SHOP_OTLP_ENDPOINT=collector.url,
            SHOP_COLOR="green",
            SHOP_VERSION="7.7.7",
            OTEL_BSP_SCHEDULE_DELAY="100",  # export every 0.1 s rather than 5 s
        )
        try:
            # A product read misses the cache: Redis GET, then SQL, then a Redis write.
            # Earlier tests in this module share Redis database 2 and may have cached
            # the product (CI drew one that was: no SQL span), so its key goes first.
            product_id = secrets.randbelow(50) + 1
            Redis.from_url(shop_env["SHOP_REDIS_URL"]).delete(f"shop:product:{product_id}")
            response = shop.client.get(
                shop.url(f"/api/products/{product_id}"),
                headers={"traceparent": TRACEPARENT},
            )
            assert response.status_code == 200
            assert response.headers["x-request-id"] == TRACE_ID

            def in_trace(span: dict) -> bool:
                return span["trace_id"] == TRACE_ID

            [server] = collector.wait_for(lambda s: in_trace(s) and s["kind"] == SERVER)
            assert server["attributes"]["http.route"] == "/api/products/{id}"
            assert server["parent_span_id"] == "00f067aa0ba902b7"  # continues the caller's
            assert server["resource"]["service.name"] == "ocean-shop"
            assert server["resource"]["service.version"] == "7.7.7"
            assert server["resource"]["deployment.color"] == "green"
            sql = collector.wait_for(lambda s: in_trace(s) and db_system(s) == "postgresql")
            cache = collector.wait_for(lambda s: in_trace(s) and db_system(s) == "redis")
            assert all(s["kind"] == CLIENT for s in sql + cache)
            assert collector.paths[0] == "/v1/traces"

            # Without traceparent, nginx's X-Request-ID becomes the trace id.
            request_id = secrets.token_hex(16)
            shop.client.get(shop.url("/api/products/1"), headers={"X-Request-ID": request_id})
            collector.wait_for(lambda s: s["trace_id"] == request_id and s["kind"] == SERVER)

            # Log lines carry the span's ids.
            shop.admin("PUT", json={"latency_ms": 1}, headers={"traceparent": TRACEPARENT})
            line = last_change(shop)
            assert line["trace_id"] == TRACE_ID and re.fullmatch(r"[0-9a-f]{16}", line["span_id"])

            # Probes and scrapes are not traced.
            shop.client.get(shop.url("/healthz"), headers={"traceparent": TRACEPARENT})
            shop.client.get(shop.url("/metrics"))
        finally:
            assert shop.stop() == 0  # flushes what is queued
        names = {span["attributes"].get("http.route") for span in collector.spans}
        assert not names & {"/healthz", "/readyz", "/metrics"}
        # One server span per traced request: FastAPI's own telemetry stays off.
        servers = [s for s in collector.spans if s["trace_id"] == TRACE_ID and s["kind"] == SERVER]
        assert len(servers) == 2  # the product read and the admin PUT


OTEL_PROBE = textwrap.dedent(
    """
    import json, os, runpy, signal, sys, threading, time, urllib.request

    port = os.environ["SHOP_PORT"]

    def probe():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/products/1").read()
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz").read()
                break
            except OSError:
                time.sleep(0.05)
        loaded = sorted(
            name for name, module in list(sys.modules.items())
            if module is not None and name.startswith(
                ("opentelemetry.sdk", "opentelemetry.instrumentation", "opentelemetry.exporter")
            )
        )
        print("LOADED " + json.dumps(loaded), file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=probe, daemon=True).start()
    sys.argv = ["ocean_shop"]
    runpy.run_module("ocean_shop", run_name="__main__", alter_sys=True)
    """
)


@pytest.mark.parametrize("tracing", [False, True])
def test_opentelemetry_sdk_is_loaded_only_with_an_endpoint(
    shop_env: dict[str, str], tracing: bool
) -> None:
    """`python -m ocean_shop`, run in-process by runpy, reports its modules once serving."""
    env = {**os.environ, **shop_env, "SHOP_PORT": str(free_port())}
    env.pop("SHOP_OTLP_ENDPOINT", None)
    if tracing:  # nothing listens there: the spans are dropped, which is fine here
        env["SHOP_OTLP_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-c", OTEL_PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    [report] = [line for line in result.stderr.splitlines() if line.startswith("LOADED ")]
    loaded = json.loads(report.removeprefix("LOADED "))
    if tracing:
        assert "opentelemetry.sdk.trace" in loaded
        assert "opentelemetry.instrumentation.psycopg" in loaded
    else:
        assert loaded == []
    assert result.returncode == 0, result.stdout[-2000:]
