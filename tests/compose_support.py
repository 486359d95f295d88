"""Shared fixtures of the compose-runtime tests (issue 8): one real Docker engine for the
whole session, and a compose stack of its own per test module.

The tests run only with OCEAN_COMPOSE_TESTS=1, as root (`.ci/run` sets it): the engine
fixture installs docker.io and debootstrap when missing, starts dockerd under
OCEAN_DOCKER_ROOT (default /var/lib/ocean-docker) and the stack builds the local images
(≈ 2.5 min on a fresh machine, seconds once they exist). An engine the session started
is stopped at the end with every container removed and nothing left mounted; one that
was already running is left running, with none of our containers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ocean.config import PortPlan, Settings
from ocean.procedures import stack as stack_procedures
from ocean.runtime import engine
from ocean.runtime.compose import ComposeRuntime
from tests.helpers import free_port_base

ENABLED = os.environ.get("OCEAN_COMPOSE_TESTS") == "1"
# For pytestmark of every compose module.
requires_engine = pytest.mark.skipif(
    not ENABLED, reason="a real Docker engine: set OCEAN_COMPOSE_TESTS=1 (as root) to run"
)


def mounts() -> list[str]:
    with open("/proc/self/mounts") as handle:
        return [line.split()[1] for line in handle]


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[engine.Engine]:
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
            assert not [m for m in mounts() if m.startswith(str(eng.root) + "/")]


def compose_runtime(
    tmp_path_factory: pytest.TempPathFactory, eng: engine.Engine, name: str = "compose"
) -> ComposeRuntime:
    settings = Settings(state_dir=tmp_path_factory.mktemp(name), ports=PortPlan(free_port_base()))
    return ComposeRuntime(settings, eng)


@contextmanager
def own_compose_stack(
    tmp_path_factory: pytest.TempPathFactory, eng: engine.Engine, name: str = "compose"
) -> Iterator[ComposeRuntime]:
    """A compose stack for one test module, all targets up; removed (containers and
    state) afterwards. Its alert inbox service receives the notifications, as in
    tests/conftest.py own_stack."""
    runtime = compose_runtime(tmp_path_factory, eng, name)
    try:
        steps = list(stack_procedures.up(runtime, None, True, True))
        assert steps[-1].name == "stack up"
        yield runtime
    finally:
        list(stack_procedures.down(runtime))
        assert not runtime._containers(), "compose containers left behind"
