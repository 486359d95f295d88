"""Shop fault injection, admin guard, trace ids and settings: in-process, no services.

The app's lifespan is not run (no PostgreSQL, no Redis): only routes that need no
resources are called, or requests that fault injection answers before the endpoint.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging

import httpx
import pytest
from ocean_shop.app import create_app
from ocean_shop.config import ConfigError, Settings
from ocean_shop.faults import Faults, FaultSettings
from ocean_shop.logs import (
    JSONFormatter,
    TraceContextFilter,
    TraceIdMiddleware,
    current_trace_id,
    new_trace_id,
    request_id_trace_id,
    trace_id_from_headers,
    traceparent_trace_id,
)
from ocean_shop.metrics import ShopMetrics
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TOKEN = "t" * 24
ENV = {"SHOP_DATABASE_URL": "postgresql://db", "SHOP_REDIS_URL": "redis://cache"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- trace ids from headers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"00-{TRACE_ID}-00f067aa0ba902b7-01", TRACE_ID),
        (f" 00-{TRACE_ID}-00f067aa0ba902b7-00 ", TRACE_ID),
        (f"01-{TRACE_ID}-00f067aa0ba902b7-01-future", TRACE_ID),  # later versions may extend
        (f"00-{TRACE_ID}-00f067aa0ba902b7-01-extra", None),  # version 00 may not
        (f"ff-{TRACE_ID}-00f067aa0ba902b7-01", None),
        (f"00-{'0' * 32}-00f067aa0ba902b7-01", None),
        (f"00-{TRACE_ID}-{'0' * 16}-01", None),
        (f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01", None),
        (f"00-{TRACE_ID}-00f067aa0ba902b7", None),
        ("garbage", None),
        ("", None),
    ],
)
def test_traceparent_trace_id(value: str, expected: str | None) -> None:
    assert traceparent_trace_id(value.encode()) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (TRACE_ID, TRACE_ID),
        (TRACE_ID.upper(), TRACE_ID),
        ("4bf92f35-77b3-4da6-a3ce-929d0e0e4736", TRACE_ID),  # a UUID
        ("0" * 32, None),
        (TRACE_ID + "0", None),
        ("req-42", None),
        ("x" * 5000, None),
    ],
)
def test_request_id_trace_id(value: str, expected: str | None) -> None:
    assert request_id_trace_id(value.encode()) == expected


def test_traceparent_wins_then_request_id_then_a_fresh_id() -> None:
    request_id = "a" * 32
    traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01".encode()
    both = [(b"x-request-id", request_id.encode()), (b"traceparent", traceparent)]
    assert trace_id_from_headers(both) == TRACE_ID
    assert trace_id_from_headers([(b"traceparent", b"bad"), both[0]]) == request_id
    fresh = {trace_id_from_headers([(b"x-request-id", b"nope")]) for _ in range(50)}
    assert len(fresh) == 50
    assert all(len(i) == 32 and int(i, 16) for i in fresh | {new_trace_id()})


# --- log lines ----------------------------------------------------------------------------


def log_line(logger: logging.Logger, stream: io.StringIO, *args, **kwargs) -> dict:
    logger.warning(*args, **kwargs)
    return json.loads(stream.getvalue().splitlines()[-1])


@pytest.fixture
def json_logger() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter("green"))
    handler.addFilter(TraceContextFilter())
    logger = logging.getLogger(f"test.shop.{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    return logger, stream


def test_log_lines_carry_the_current_trace_id_and_extra_fields(json_logger) -> None:
    logger, stream = json_logger
    line = log_line(logger, stream, "outside %s", "requests")
    assert line["message"] == "outside requests" and "trace_id" not in line

    token = current_trace_id.set(TRACE_ID)
    try:
        line = log_line(
            logger, stream, "inside", extra={"fields": {"client": "1.2.3.4:5", "level": "x"}}
        )
    finally:
        current_trace_id.reset(token)
    assert line["trace_id"] == TRACE_ID
    assert line["client"] == "1.2.3.4:5"
    assert (line["level"], line["color"]) == ("WARNING", "green")  # never overridden


def test_with_tracing_the_span_ids_win(json_logger) -> None:
    logger, stream = json_logger
    handler = logger.handlers[0]
    handler.filters[:] = [TraceContextFilter(lambda: ("b" * 32, "c" * 16))]
    token = current_trace_id.set(TRACE_ID)
    try:
        line = log_line(logger, stream, "traced")
    finally:
        current_trace_id.reset(token)
    assert (line["trace_id"], line["span_id"]) == ("b" * 32, "c" * 16)


@pytest.mark.anyio
async def test_trace_id_middleware_sets_the_id_for_logs_and_echoes_it() -> None:
    seen: list[str | None] = []

    async def app(scope, receive, send) -> None:
        seen.append(current_trace_id.get())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    transport = httpx.ASGITransport(app=TraceIdMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        response = await client.get("/", headers={"X-Request-ID": TRACE_ID.upper()})
        assert response.headers["x-request-id"] == TRACE_ID
        fresh = (await client.get("/")).headers["x-request-id"]
    assert seen == [TRACE_ID, fresh]
    assert current_trace_id.get() is None  # reset once the request is done


@pytest.mark.anyio
async def test_each_request_but_probes_logs_one_line_with_its_trace_id(json_logger) -> None:
    logger, stream = json_logger
    access = logging.getLogger("ocean_shop.access")
    access.addHandler(logger.handlers[0])
    access.setLevel(logging.INFO)

    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    transport = httpx.ASGITransport(app=TraceIdMiddleware(app, access_log=True))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            await client.post("/api/cart", headers={"X-Request-ID": TRACE_ID})
            await client.get("/healthz")
            await client.get("/metrics")
    finally:
        access.removeHandler(logger.handlers[0])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["message"] == "POST /api/cart 201" and line["trace_id"] == TRACE_ID
    assert (line["method"], line["path"], line["status"]) == ("POST", "/api/cart", 201)
    assert line["duration_ms"] >= 0 and line["logger"] == "ocean_shop.access"


def test_the_access_log_is_on_unless_turned_off() -> None:
    base = {"SHOP_DATABASE_URL": "postgresql://db", "SHOP_REDIS_URL": "redis://cache"}
    assert Settings.from_env(base).access_log
    assert not Settings.from_env({**base, "SHOP_ACCESS_LOG": "0"}).access_log


# --- fault injection, metrics and the admin guard (real app, no lifespan) ---------------


def scrape(app) -> dict[tuple[str, tuple], float]:
    text = generate_latest(app.state.metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_total(app, route: str, status: str) -> float:
    labels = (("color", "blue"), ("method", "GET"), ("route", route), ("status", status))
    return scrape(app).get(("shop_http_requests_total", labels), 0.0)


def settings(**changes) -> Settings:
    return Settings(database_url="postgresql://db", redis_url="redis://cache", **changes)


@pytest.mark.anyio
async def test_an_injected_500_counts_as_a_5xx_of_its_route() -> None:
    app = create_app(settings())
    app.state.faults.apply(FaultSettings(error_rate=1.0))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        for path in ("/api/products/5", "/api/products/6", "/version", "/no/such/page"):
            response = await client.get(path)
            assert (response.status_code, response.json()) == (500, {"detail": "injected fault"})
            assert response.headers["x-request-id"]
        assert (await client.get("/healthz")).status_code == 200  # exempt
    # HTTPMetricsMiddleware (outside the fault middleware) saw each with its route.
    assert requests_total(app, "/api/products/{id}", "5xx") == 2
    assert requests_total(app, "/version", "5xx") == 1
    assert requests_total(app, "other", "5xx") == 1
    assert requests_total(app, "/healthz", "2xx") == 1
    injected = (("kind", "error"),)
    assert scrape(app)[("shop_injected_faults_total", injected)] == 4


@pytest.mark.anyio
async def test_requests_in_flight_count_while_served_and_the_process_cpu_is_exported() -> None:
    # The autoscaler's signals (issue 22): a request held by injected latency is in flight
    # until it is answered, whatever its outcome; the process' CPU time is exported.
    import anyio

    app = create_app(settings())
    app.state.faults.apply(FaultSettings(error_rate=1.0, latency_ms=300))  # no database here
    in_flight = ("shop_http_requests_in_flight", (("color", "blue"),))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        assert scrape(app)[in_flight] == 0
        async with anyio.create_task_group() as tasks:
            for path in ("/api/products/5", "/version"):
                tasks.start_soon(client.get, path)
            await anyio.sleep(0.1)
            assert scrape(app)[in_flight] == 2
            scraped = (await client.get("/metrics")).text  # as Prometheus reads it
            assert 'shop_http_requests_in_flight{color="blue"} 2.0' in scraped
    assert scrape(app)[in_flight] == 0
    assert scrape(app)[("process_cpu_seconds_total", ())] > 0


@pytest.mark.anyio
async def test_admin_routes_need_the_admin_listener_and_the_token() -> None:
    app = create_app(settings(admin_token=TOKEN, admin_port=9100))
    transport = httpx.ASGITransport(app=app)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as public,
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9100") as admin,
        httpx.AsyncClient(transport=transport, base_url="http://0.0.0.0:9100") as wrong_host,
    ):
        assert (await public.get("/admin/faults", headers=auth)).status_code == 404
        assert (await wrong_host.get("/admin/faults", headers=auth)).status_code == 404
        assert (await admin.get("/admin/faults")).status_code == 401
        response = await admin.put("/admin/faults", json={"latency_ms": 3}, headers=auth)
        assert response.json() == {"error_rate": 0.0, "latency_ms": 3, "fail_readiness": False}
    assert app.state.faults.settings == FaultSettings(latency_ms=3)


@pytest.mark.anyio
async def test_without_a_token_admin_routes_do_not_exist() -> None:
    app = create_app(settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9000") as admin:
        response = await admin.get("/admin/faults", headers={"Authorization": "Bearer x"})
    assert response.status_code == 404


def test_fault_settings_bounds_and_gauges() -> None:
    for bad in ({"error_rate": 1.01}, {"error_rate": -1}, {"latency_ms": 60_001}):
        with pytest.raises(ValueError):
            FaultSettings(**bad)
    metrics = ShopMetrics(version="1", color="blue")
    faults = Faults(metrics)
    assert not faults.requests_affected
    previous = faults.apply(FaultSettings(error_rate=0.5, fail_readiness=True))
    assert previous == FaultSettings() and faults.requests_affected
    assert metrics.fault_settings["error_rate"]._value.get() == 0.5
    assert metrics.fault_settings["fail_readiness"]._value.get() == 1
    faults.apply(FaultSettings(fail_readiness=True))
    assert not faults.requests_affected  # readiness alone leaves requests alone
    faults.reset()
    assert faults.settings == FaultSettings()
    assert metrics.fault_settings["fail_readiness"]._value.get() == 0


# --- settings -----------------------------------------------------------------------------


def test_admin_and_tracing_settings_from_the_environment() -> None:
    plain = Settings.from_env(ENV)
    assert (plain.admin_token, plain.admin_port, plain.otlp_endpoint) == (None, 9000, None)
    assert Settings.from_env({**ENV, "SHOP_PORT": "8081"}).admin_port == 9081

    custom = Settings.from_env(
        {
            **ENV,
            "SHOP_ADMIN_TOKEN": f" {TOKEN} ",
            "SHOP_ADMIN_PORT": "7000",
            "SHOP_OTLP_ENDPOINT": "http://jaeger:4318",
        }
    )
    assert (custom.admin_token, custom.admin_port) == (TOKEN, 7000)
    assert custom.otlp_endpoint == "http://jaeger:4318"
    assert TOKEN not in repr(custom)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"SHOP_ADMIN_TOKEN": "short"}, "SHOP_ADMIN_TOKEN must be at least 16"),
        ({"SHOP_ADMIN_TOKEN": TOKEN, "SHOP_ADMIN_PORT": "8000"}, "must differ from SHOP_PORT"),
        ({"SHOP_ADMIN_TOKEN": TOKEN, "SHOP_ADMIN_PORT": "70000"}, "SHOP_ADMIN_PORT must be"),
        ({"SHOP_ADMIN_TOKEN": TOKEN, "SHOP_ADMIN_PORT": "0"}, "SHOP_ADMIN_PORT must be"),
        ({"SHOP_ADMIN_PORT": "admin"}, "SHOP_ADMIN_PORT must be a int"),
        ({"SHOP_OTLP_ENDPOINT": "jaeger:4318"}, "SHOP_OTLP_ENDPOINT"),
        ({"SHOP_OTLP_ENDPOINT": "http://:4318"}, "SHOP_OTLP_ENDPOINT"),
        ({"SHOP_OTLP_ENDPOINT": "http://jaeger:port"}, "SHOP_OTLP_ENDPOINT"),
    ],
)
def test_bad_admin_and_tracing_settings(variables: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({**ENV, **variables})


def test_an_admin_port_beyond_65535_matters_only_with_a_token() -> None:
    assert Settings.from_env({**ENV, "SHOP_PORT": "65000"}).admin_port == 66000
    with pytest.raises(ConfigError, match=r"SHOP_ADMIN_PORT must be 1\.\.65535"):
        Settings.from_env({**ENV, "SHOP_PORT": "65000", "SHOP_ADMIN_TOKEN": TOKEN})
    moved = dataclasses.replace(settings(), port=8100, admin_port=None)
    assert moved.admin_port == 9100


# --- tracing helpers (imports the SDK into this test process only) -----------------------


def test_traces_url_and_request_id_propagation() -> None:
    from ocean_shop.tracing import RequestIdPropagator, traces_url
    from opentelemetry import trace

    assert traces_url("http://jaeger:4318") == "http://jaeger:4318/v1/traces"
    assert traces_url("http://jaeger:4318/") == "http://jaeger:4318/v1/traces"
    assert traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"

    propagator = RequestIdPropagator()

    def trace_id(headers: dict[str, str]) -> str | None:
        context = trace.get_current_span(propagator.extract(headers)).get_span_context()
        return f"{context.trace_id:032x}" if context.is_valid else None

    traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    assert trace_id({"traceparent": traceparent, "x-request-id": "a" * 32}) == TRACE_ID
    assert trace_id({"x-request-id": "A" * 32}) == "a" * 32
    assert trace_id({"x-request-id": "nope"}) is None
    assert trace_id({}) is None
    carrier: dict[str, str] = {}
    propagator.inject(carrier, propagator.extract({"traceparent": traceparent}))
    assert carrier["traceparent"].split("-")[1] == TRACE_ID


# --- local runtime wiring -------------------------------------------------------------------


def test_the_local_runtime_checks_and_reserves_the_admin_ports(tmp_path) -> None:
    from ocean import secrets as stack_secrets
    from ocean.config import PortPlan
    from ocean.config import Settings as StackSettings
    from ocean.runtime.local import LocalRuntime
    from ocean.services import BY_NAME

    runtime = LocalRuntime(StackSettings(state_dir=tmp_path, ports=PortPlan(30000)))
    assert runtime._ports_of(BY_NAME["shop-blue"]) == [30010, 30012]
    assert runtime._ports_of(BY_NAME["shop-green"]) == [30011, 30013]
    assert runtime._ports_of(BY_NAME["postgres"]) == [30020]
    token = stack_secrets.load_or_create(tmp_path / "secrets.env")["SHOP_ADMIN_TOKEN"]
    assert len(token) >= 16  # what the shop requires of SHOP_ADMIN_TOKEN
