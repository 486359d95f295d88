"""The compose runtime on a real Docker engine (issue 8): bring-up to all Prometheus
targets up, `invoke status`, host networking only, bad input, and nothing left behind.
Opt-in: OCEAN_COMPOSE_TESTS=1 as root (tests/compose_support.py).
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from ocean import secrets as ocean_secrets
from ocean.errors import OceanError
from ocean.procedures import stack as stack_procedures
from ocean.runtime import engine
from ocean.runtime.compose import ComposeRuntime
from ocean.services import select
from tests.compose_support import compose_runtime, own_compose_stack, requires_engine
from tests.helpers import cli, readable_by_others, wait_for_delivery

pytestmark = [pytest.mark.integration, requires_engine, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def compose_stack(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: engine.Engine
) -> Iterator[ComposeRuntime]:
    with own_compose_stack(tmp_path_factory, docker_engine) as runtime:
        yield runtime


def test_all_prometheus_targets_up(compose_stack: ComposeRuntime) -> None:
    with compose_stack.http("prometheus", timeout=5) as prometheus:
        targets = prometheus.get("/api/v1/targets").json()["data"]["activeTargets"]
    assert targets and all(t["health"] == "up" for t in targets), [
        (t["labels"]["job"], t["health"], t["lastError"]) for t in targets
    ]


def test_status_shows_the_compose_stack(compose_stack: ComposeRuntime) -> None:
    result = cli(compose_stack, "status", "--json", OCEAN_RUNTIME="compose")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["runtime"] == "compose"
    assert {s["name"] for s in report["services"]} >= {"postgres", "nginx", "shop-blue"}
    assert all(s["healthy"] and s["state"] == "running" for s in report["services"])


def test_alertmanager_delivers_to_the_inbox_container(compose_stack: ComposeRuntime) -> None:
    """The alert inbox runs as a compose service: Alertmanager's container mails it over
    STARTTLS with AUTH and posts Slack's format to it; the dead man's switch arrives."""
    assert compose_stack._containers()["alert-inbox"]["state"] == "running"
    since = time.time()
    alerts = [
        {"labels": {"alertname": "ComposeMailTest", "severity": "warning", "team": "business"}},
        {"labels": {"alertname": "ComposeChatTest", "severity": "warning"}},
    ]
    with compose_stack.http("alertmanager", timeout=5) as alertmanager:
        alertmanager.post("/api/v2/alerts", json=alerts).raise_for_status()
    mail = wait_for_delivery(compose_stack, "ComposeMailTest", "firing", since, 30, "email")
    assert mail["tls"] is True and mail["user"] == "alertmanager"
    wait_for_delivery(compose_stack, "ComposeChatTest", "firing", since, 30, "chat")
    wait_for_delivery(compose_stack, "Watchdog", "firing", 0, 60, "watchdog")


def test_the_drill_delivers_every_route_on_compose(compose_stack: ComposeRuntime) -> None:
    """`alerts drill` against the containers: every route ends in the inbox container
    within group_wait + 2 s, the e-mail over TLS (issue 20)."""
    result = cli(compose_stack, "alerts.drill", "--json", OCEAN_RUNTIME="compose")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {r["route"]: r for r in json.loads(result.stdout)["routes"]}
    assert set(rows) == {"deadman", "pager", "email", "chat"}
    for row in rows.values():
        assert row["delivered"] and row["via"] == "inbox", row
        assert row["latency_s"] <= row["budget_s"], row
    assert rows["email"]["tls"] is True


def test_nothing_in_the_state_dir_is_readable_by_others(compose_stack: ComposeRuntime) -> None:
    """The containers write into the bind-mounted state dir as root, postgres, nobody,
    the shop's and the inbox's users: each starts under umask 077, and nginx's launcher
    makes its stub_status socket private after nginx's chmod 0666 (issue 25, Medium 4).
    After up and deliveries to the inbox (a mail and a webhook), `find <state> -perm
    /o+r` lists nothing, and what the containers made is among what it looked at."""
    runtime, state = compose_stack, compose_stack.settings.state_dir
    since = time.time()
    alerts = [
        {"labels": {"alertname": "ComposePrivateMail", "severity": "warning", "team": "business"}},
        {"labels": {"alertname": "ComposePrivateChat", "severity": "warning"}},
    ]
    with runtime.http("alertmanager", timeout=5) as alertmanager:
        alertmanager.post("/api/v2/alerts", json=alerts).raise_for_status()
    wait_for_delivery(runtime, "ComposePrivateMail", "firing", since, 30, "email")
    wait_for_delivery(runtime, "ComposePrivateChat", "firing", since, 30, "chat")
    made_by_containers = [
        state / "data" / "prometheus" / "wal",  # Prometheus, root
        state / "data" / "redis-master" / "appendonlydir",  # Redis, root
        state / "logs" / "nginx-access.log",  # nginx, root
        runtime.scrape_sockets().nginx_status,  # nginx: 0666 until the launcher's chmod
        runtime.scrape_sockets().nginx_exporter,  # the nginx exporter, nobody
        state / "data" / "inbox" / "webhooks.jsonl",  # the inbox, the state dir's owner
        next((state / "data" / "inbox" / "mail" / "new").iterdir()),  # its Maildir
    ]
    assert all(path.exists() for path in made_by_containers)
    assert readable_by_others(state) == []


def test_only_host_networking(compose_stack: ComposeRuntime) -> None:
    assert compose_stack.engine.networks() == ["host", "none"]
    for info in compose_stack._containers().values():
        assert info["container"].attrs["HostConfig"]["NetworkMode"] == "host"


def test_shop_answers_through_nginx(compose_stack: ComposeRuntime) -> None:
    with compose_stack.http("nginx", timeout=5) as front:
        response = front.get("/api/products?limit=1")
    assert response.status_code == 200


def test_a_taken_port_starts_nothing(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: engine.Engine
) -> None:
    runtime = compose_runtime(tmp_path_factory, docker_engine)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", runtime.settings.ports["prometheus"]))
        taken.listen()
        with pytest.raises(OceanError, match=r"already in use.*choose another OCEAN_PORT_BASE"):
            list(stack_procedures.up(runtime, None, True, False))
    assert not runtime._containers()


def test_engine_not_running_names_the_fix(tmp_path_factory: pytest.TempPathFactory) -> None:
    """An engine root where no dockerd runs: `up --no-install` says how to start it
    and creates nothing (no containers, no compose files)."""
    runtime = compose_runtime(tmp_path_factory, engine.Engine(tmp_path_factory.mktemp("no-engine")))
    result = cli(runtime, "up", "--no-install", OCEAN_RUNTIME="compose",
                 OCEAN_DOCKER_ROOT=str(runtime.engine.root))  # fmt: skip
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the Docker engine at ") and last.endswith("starts it"), last
    assert "is not running: start it with `invoke engine --start`" in last
    assert not runtime.compose_dir.exists()


def test_missing_image_names_the_fix(
    tmp_path_factory: pytest.TempPathFactory,
    docker_engine: engine.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = compose_runtime(tmp_path_factory, docker_engine)
    monkeypatch.setattr(engine, "STACK_IMAGE", "ocean-local/stack:never-built")
    with pytest.raises(OceanError, match=r"image ocean-local/stack:never-built is missing.*"
                       r"invoke engine --build"):  # fmt: skip
        list(stack_procedures.up(runtime, None, False, False))
    assert not runtime._containers()
    assert not runtime.compose_dir.exists()


def test_restart_one_service(compose_stack: ComposeRuntime) -> None:
    steps = list(compose_stack.restart(select("redis-replica")[-1]))
    assert steps[-1].name == "restart redis-replica"


def test_logs_trace_follows_a_request_across_the_containers(compose_stack: ComposeRuntime) -> None:
    """`invoke logs --trace ID` on compose: nginx's access line (its log file in the
    mounted state dir) and the live shop container's lines with the response's
    X-Request-ID, in time order; an unknown id is one line and exit 1."""
    access = compose_stack.access()
    with access.http_client(compose_stack.url("nginx"), timeout=10) as client:
        # A query of its own: nginx's micro-cache cannot answer it, the shop does.
        response = client.get("/api/products", params={"q": f"trace-{time.time_ns()}"})
    assert response.status_code == 200
    trace_id = response.headers["x-request-id"]
    live = f"shop-{compose_stack.live_color()}"
    deadline = time.monotonic() + 15  # nginx flushes its access log every second
    while True:
        result = cli(compose_stack, "logs", "--trace", trace_id, "--json", OCEAN_RUNTIME="compose")
        lines = json.loads(result.stdout) if result.returncode == 0 else []
        sources = [line["source"] for line in lines]
        if {"nginx", live} <= set(sources) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {"nginx", live} <= set(sources), (result.stderr, lines)
    assert sources[-1] == "nginx"  # nginx logs when the answer has left: last
    shop_lines = [line["line"] for line in lines if line["source"] == live]
    assert any('"message":"GET /api/products 200"' in line for line in shop_lines), shop_lines
    unknown = cli(compose_stack, "logs", "--trace", "0" * 31 + "1", OCEAN_RUNTIME="compose")
    assert unknown.returncode == 1 and "no lines with trace id" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr


def test_logs_show_and_follow_a_container(compose_stack: ComposeRuntime) -> None:
    """`invoke logs` shows the container's output; following it picks up a request's
    log line (its X-Request-ID) within seconds, and stops when asked."""
    result = cli(compose_stack, "logs", "shop-blue", "--lines=5", OCEAN_RUNTIME="compose")
    assert result.returncode == 0, result.stderr
    assert 0 < len(result.stdout.splitlines()) <= 5, result.stdout
    request_id = secrets.token_hex(16)
    deadline = time.monotonic() + 15
    lines = stack_procedures.log_lines(
        compose_stack, "shop-blue", 0, follow=True, poll=0.1,
        stop=lambda: time.monotonic() > deadline,
    )  # fmt: skip
    # The request comes once the follow has begun (the generator starts on next()).
    # Resetting fault injection is logged (a warning carrying the request's trace id).
    token = ocean_secrets.load_or_create(compose_stack.settings.secrets_file)["SHOP_ADMIN_TOKEN"]
    headers = {"X-Request-ID": request_id, "Authorization": f"Bearer {token}"}
    request = threading.Timer(
        1.0,
        httpx.delete,
        [compose_stack.url("shop-blue-admin") + "/admin/faults"],
        {"headers": headers, "timeout": 5},
    )
    request.start()
    seen = next((line for line in lines if request_id in line), None)
    request.join()
    assert seen is not None, "the request's log line never came"
    assert time.monotonic() < deadline
