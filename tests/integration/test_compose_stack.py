"""The compose runtime on a real Docker engine (issue 8): bring-up to all Prometheus
targets up, `invoke status`, host networking only, bad input, and nothing left behind.

Opt-in: runs only with OCEAN_COMPOSE_TESTS=1, as root (it installs docker.io and
debootstrap when missing, starts its own dockerd under OCEAN_DOCKER_ROOT, default
/var/lib/ocean-docker, and builds the local images: ≈ 2 min on a fresh machine, seconds
once the images exist). An engine the test started is stopped at the end, with every
container removed; one that was already running is left running with none of ours.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator

import pytest

from ocean.config import PortPlan, Settings
from ocean.errors import OceanError
from ocean.procedures import stack as stack_procedures
from ocean.runtime import engine
from ocean.runtime.compose import ComposeRuntime
from ocean.services import select
from tests.helpers import FakeReceiver, cli, free_port_base

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("OCEAN_COMPOSE_TESTS") != "1",
        reason="a real Docker engine: set OCEAN_COMPOSE_TESTS=1 (as root) to run",
    ),
    pytest.mark.timeout(900),
]


@pytest.fixture(scope="module")
def engine_() -> Iterator[engine.Engine]:
    if os.geteuid() != 0:
        pytest.skip("the compose tests start dockerd: run them as root")
    eng = engine.Engine.from_env()
    was_running = bool(eng.pid() and eng.answers())
    list(eng.install())
    list(eng.start())
    try:
        yield eng
    finally:
        if not was_running:
            list(eng.stop())
            assert eng.pid() is None
            assert not [m for m in _mounts() if m.startswith(str(eng.root) + "/")]


def _mounts() -> list[str]:
    with open("/proc/self/mounts") as handle:
        return [line.split()[1] for line in handle]


def _runtime(tmp_path_factory: pytest.TempPathFactory, eng: engine.Engine) -> ComposeRuntime:
    settings = Settings(
        state_dir=tmp_path_factory.mktemp("compose"), ports=PortPlan(free_port_base())
    )
    return ComposeRuntime(settings, eng)


@pytest.fixture(scope="module")
def compose_stack(
    tmp_path_factory: pytest.TempPathFactory, engine_: engine.Engine
) -> Iterator[ComposeRuntime]:
    runtime = _runtime(tmp_path_factory, engine_)
    sink = FakeReceiver(runtime.settings.ports["alert-webhook"])
    try:
        steps = list(stack_procedures.up(runtime, None, True, True))
        assert steps[-1].name == "stack up"
        yield runtime
    finally:
        list(stack_procedures.down(runtime))
        sink.close()
        assert not runtime._containers()


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


def test_only_host_networking(compose_stack: ComposeRuntime) -> None:
    assert compose_stack.engine.networks() == ["host", "none"]
    for info in compose_stack._containers().values():
        assert info["container"].attrs["HostConfig"]["NetworkMode"] == "host"


def test_shop_answers_through_nginx(compose_stack: ComposeRuntime) -> None:
    with compose_stack.http("nginx", timeout=5) as front:
        response = front.get("/api/products?limit=1")
    assert response.status_code == 200


def test_a_taken_port_starts_nothing(
    tmp_path_factory: pytest.TempPathFactory, engine_: engine.Engine
) -> None:
    runtime = _runtime(tmp_path_factory, engine_)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", runtime.settings.ports["prometheus"]))
        taken.listen()
        with pytest.raises(OceanError, match=r"already in use.*choose another OCEAN_PORT_BASE"):
            list(stack_procedures.up(runtime, None, True, False))
    assert not runtime._containers()


def test_deploy_says_it_is_not_implemented_yet(compose_stack: ComposeRuntime) -> None:
    with pytest.raises(OceanError, match="not implemented for the compose runtime yet"):
        list(compose_stack.start_color("green", compose_stack.color_build("green"), 5))
    assert "shop-green" not in compose_stack.running()


def test_restart_one_service(compose_stack: ComposeRuntime) -> None:
    steps = list(compose_stack.restart(select("redis-replica")[-1]))
    assert steps[-1].name == "restart redis-replica"
